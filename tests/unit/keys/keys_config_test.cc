// The keys section of the configuration (config/paygate_config.proto Keys, config/validate.cc).
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
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
    const auto* field = descriptor->field(i);
    if (field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) continue;  // binary, version
    const std::string name = field->name();
    EXPECT_TRUE(name == "id" || name.ends_with("file")) << name;
  }
}

// Walks every string field reachable from `descriptor` (outside the keys section, which names the
// files), calling `check` with its path.
void ForEachStringField(const google::protobuf::Descriptor* descriptor, const std::string& path,
                        const std::function<void(const std::string&, const std::string&)>& check,
                        int depth = 0) {
  if (depth > 8 || descriptor == v1::Keys::descriptor()) return;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const auto* field = descriptor->field(i);
    const std::string at = path + "." + field->name();
    if (field->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
      ForEachStringField(field->message_type(), at, check, depth + 1);
    } else if (field->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
      check(field->name(), at);
    }
  }
}

TEST(KeysConfigTest, EverySecretFieldIsAKeyId) {
  // Proves the schema names secrets only by key id (issue 7: "Config refers to keys only by id"):
  // no field outside the keys section that is about a secret, a password or a private key holds a
  // file path or the material itself. Public certificates and CA files are not secrets.
  std::vector<std::string> key_ids;
  ForEachStringField(v1::Config::descriptor(), "", [&](const std::string& name,
                                                       const std::string& at) {
    const bool about_secret = name.find("secret") != std::string::npos ||
                              name.find("password") != std::string::npos ||
                              name.find("private_key") != std::string::npos ||
                              name.find("apiv3") != std::string::npos ||
                              name.find("hash_key") != std::string::npos ||
                              name.find("pfx") != std::string::npos;
    if (about_secret) {
      EXPECT_TRUE(name.ends_with("_key_id")) << at;
    }
    if (name.ends_with("_key_id") && name != "encrypt_key_id") key_ids.push_back(at);
  });
  // The ten references of the brief: risk, webhook, API key, database, sandbox, WeChat Pay (2),
  // Alipay, UnionPay (2).
  EXPECT_EQ(key_ids.size(), 10u) << ::testing::PrintToString(key_ids);
}

}  // namespace
}  // namespace paygate::config
