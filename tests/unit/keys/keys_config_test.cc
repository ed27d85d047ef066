// The keys section of the configuration (config/paygate_config.proto Keys, config/validate.cc).
#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "config/loader.h"
#include "config/redact.h"
#include "config/validate.h"

namespace paygate::config {
namespace {

ValidateOptions NoEnv() {
  ValidateOptions options;
  options.env = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  return options;
}

bool HasError(const FieldErrors& errors, std::string_view path) {
  return std::any_of(errors.begin(), errors.end(),
                     [&](const FieldError& e) { return e.path == path; });
}

FieldErrors KeysErrors(const std::string& keys_yaml) {
  v1::Config config;
  auto loaded = LoadYaml("keys:\n" + keys_yaml, NoEnv());
  if (loaded) return {};
  return loaded.error();
}

TEST(KeysConfigTest, DefaultsVersionsAndAcceptsBothSources) {
  // Proves a well-formed section passes with versions defaulted to 1, and the keys section's paths
  // are the only ones complaining in an otherwise empty config.
  const FieldErrors errors = KeysErrors(
      "  master_key: {id: m, file: /k/master.key}\n"
      "  entries:\n"
      "    - {id: webhook.claims, file: /k/a}\n"
      "    - {id: webhook.claims, version: 2, envelope_file: /k/b.env}\n");
  for (const auto& e : errors) EXPECT_NE(e.path.rfind("keys", 0), 0u) << e.path << ": " << e.message;
}

TEST(KeysConfigTest, RefusesBadIdsMissingSourcesAndDuplicates) {
  // Proves each mistake is reported at its own path.
  const FieldErrors errors = KeysErrors(
      "  master_key: {id: 'Bad Id', file: ''}\n"
      "  entries:\n"
      "    - {id: a, file: /k/a, envelope_file: /k/a.env}\n"
      "    - {id: b}\n"
      "    - {id: c, file: /k/c}\n"
      "    - {id: c, version: 1, file: /k/c2}\n");
  EXPECT_TRUE(HasError(errors, "keys.master_key.id"));
  EXPECT_TRUE(HasError(errors, "keys.master_key.file"));
  EXPECT_TRUE(HasError(errors, "keys.entries[0]"));
  EXPECT_TRUE(HasError(errors, "keys.entries[1]"));
  EXPECT_FALSE(HasError(errors, "keys.entries[2].id"));
  EXPECT_TRUE(HasError(errors, "keys.entries[3].id"));
  EXPECT_TRUE(HasError(KeysErrors("  entries: [{id: a, file: /k/a}]\n"), "keys.master_key.file"));
  EXPECT_FALSE(HasError(KeysErrors("  entries: []\n"), "keys.master_key.file"));
}

TEST(KeysConfigTest, ConfigDumpShowsReferencesOnly) {
  // Proves a config dump of the section holds ids and file paths (references), never key bytes:
  // the section has no field that could hold one.
  v1::Keys keys;
  keys.mutable_master_key()->set_id("m");
  keys.mutable_master_key()->set_file("/k/master.key");
  const std::string text = RedactedMessageText(keys);
  EXPECT_NE(text.find("/k/master.key"), std::string::npos);
  const auto* descriptor = v1::KeyringEntry::descriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const std::string name = descriptor->field(i)->name();
    EXPECT_TRUE(name == "id" || name == "version" || name.ends_with("file")) << name;
  }
}

}  // namespace
}  // namespace paygate::config
