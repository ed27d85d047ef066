#include "config/redact.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "config/loader.h"
#include "tests/unit/config/test_util.h"

namespace paygate::config {
namespace {

namespace pb = google::protobuf;

using ::testing::HasSubstr;
using testing::NoEnv;
using ::testing::Not;

TEST(RedactTest, DatabaseUrlIsHidden) {
  // Proves the sensitive database.url is printed as "***" while ordinary fields stay readable.
  auto loaded = LoadYaml(std::string(testing::kMinimalYaml) + "server: {io_threads: 3}\n", NoEnv());
  ASSERT_TRUE(loaded.has_value()) << FormatErrors(loaded.error());
  v1::Config config = std::move(loaded).value();
  config.mutable_database()->set_url("postgresql://paygate@db-7f3a.internal:5432/ledger");
  config.mutable_database()->set_password_key_id("db-password");

  const std::string text = RedactedText(config);
  EXPECT_THAT(text, Not(HasSubstr("db-7f3a")));
  EXPECT_THAT(text, Not(HasSubstr("ledger")));
  EXPECT_THAT(text, HasSubstr("  url: \"***\"\n"));
  // A key id is what the dump shows of a secret: its name, never its bytes.
  EXPECT_THAT(text, HasSubstr("password_key_id: \"db-password\""));
  EXPECT_THAT(text, HasSubstr("io_threads: 3"));
  EXPECT_THAT(text, HasSubstr("client_cert: CLIENT_CERT_MODE_NONE"));
}

// Sets a distinct marker in every sensitive string field reachable from `message`, recursively.
void MarkSensitiveFields(pb::Message* message, std::vector<std::string>* markers, int depth) {
  if (depth > 8) return;  // The schema is not recursive today; this keeps a future cycle finite.
  const pb::Descriptor& descriptor = *message->GetDescriptor();
  const pb::Reflection& reflection = *message->GetReflection();
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const pb::FieldDescriptor& field = *descriptor.field(i);
    if (field.is_map()) continue;
    if (field.cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      pb::Message* child = field.is_repeated() ? reflection.AddMessage(message, &field)
                                               : reflection.MutableMessage(message, &field);
      MarkSensitiveFields(child, markers, depth + 1);
    } else if (field.cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING &&
               field.options().GetExtension(v1::sensitive)) {
      std::string marker = "LEAKED-" + std::to_string(markers->size()) + "-" + field.name();
      field.is_repeated() ? reflection.AddString(message, &field, marker)
                          : reflection.SetString(message, &field, marker);
      markers->push_back(std::move(marker));
    }
  }
}

TEST(RedactTest, NoSensitiveFieldOfTheSchemaLeaks) {
  // Proves every field marked (sensitive) anywhere in the schema is hidden, found generically.
  v1::Config config;
  std::vector<std::string> markers;
  MarkSensitiveFields(&config, &markers, 0);
  ASSERT_FALSE(markers.empty()) << "the schema marks no field sensitive; database.url should be";

  const std::string text = RedactedText(config);
  for (const std::string& marker : markers) EXPECT_THAT(text, Not(HasSubstr(marker)));
  EXPECT_THAT(text, HasSubstr("\"***\""));
}

TEST(RedactTest, OutputIsYamlThatLoadsBackToTheSameConfig) {
  // Proves the dump is faithful: apart from redacted fields, loading it yields the same config.
  auto loaded = LoadFile(testing::SourceDir() / "config/examples/production.yaml", NoEnv());
  ASSERT_TRUE(loaded.has_value()) << FormatErrors(loaded.error());
  v1::Config config = std::move(loaded).value();
  // The one sensitive field is left empty so it is not part of the dump; the environment stands in.
  config.mutable_database()->clear_url();
  (*config.mutable_logging()->mutable_module_levels())["edge"] = "debug";

  const std::string text = RedactedText(config);
  ValidateOptions options = NoEnv();
  options.env = [](std::string_view) -> std::optional<std::string> { return "postgresql:///x"; };
  auto reloaded = LoadYaml(text, options);
  ASSERT_TRUE(reloaded.has_value()) << text << "\n" << FormatErrors(reloaded.error());
  std::string difference;
  pb::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&difference);
  EXPECT_TRUE(differencer.Compare(config, reloaded.value())) << difference << "\n" << text;
}

TEST(RedactTest, StringsAreQuotedAndEscaped) {
  // Proves values that YAML would misread (booleans, numbers, quotes, newlines) stay strings.
  v1::Config config;
  config.mutable_api()->set_address("on");
  config.mutable_api()->mutable_tls()->set_cert_file("a\"b\\c\nd");
  const std::string text = RedactedText(config);
  EXPECT_THAT(text, HasSubstr("address: \"on\"\n"));
  EXPECT_THAT(text, HasSubstr("cert_file: \"a\\\"b\\\\c\\nd\"\n"));
}

}  // namespace
}  // namespace paygate::config
