#include "config/loader.h"

#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/config/test_util.h"

namespace paygate::config {
namespace {

using ::testing::ElementsAre;
using testing::HasError;
using ::testing::HasSubstr;
using testing::kMinimalYaml;
using testing::LoadErrors;
using testing::NoEnv;
using testing::Paths;
using ::testing::UnorderedElementsAre;

std::string Minimal(std::string_view extra) {
  return std::string(kMinimalYaml) + std::string(extra);
}

TEST(LoaderTest, EveryExampleConfigLoadsWithoutErrors) {
  // Proves every file in config/examples/ (found at run time, so new ones are covered) is valid.
  const std::filesystem::path dir = testing::SourceDir() / "config" / "examples";
  std::vector<std::string> loaded;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const auto extension = entry.path().extension();
    if (extension != ".yaml" && extension != ".yml") continue;
    auto result = LoadFile(entry.path(), NoEnv());
    EXPECT_TRUE(result.has_value()) << entry.path() << ":\n"
                                    << (result ? "" : FormatErrors(result.error()));
    loaded.push_back(entry.path().filename().string());
  }
  // Guards against a wrong directory silently testing nothing.
  EXPECT_THAT(loaded, ::testing::IsSupersetOf({"local.yaml", "production.yaml"}));
}

TEST(LoaderTest, LocalExampleMatchesTheDevSetup) {
  // Proves local.yaml carries what deploy/local/run.sh and the dev PKI rely on.
  auto result = LoadFile(testing::SourceDir() / "config/examples/local.yaml", NoEnv());
  ASSERT_TRUE(result.has_value()) << FormatErrors(result.error());
  const v1::Config& config = result.value();
  EXPECT_EQ(config.api().address(), "127.0.0.1");
  EXPECT_EQ(config.api().port(), 8443u);
  EXPECT_EQ(config.admin().port(), 9443u);
  EXPECT_EQ(config.api().tls().cert_file(), ".paygate/pki/server.crt");
  EXPECT_EQ(config.api().tls().key_file(), ".paygate/pki/server.key");
  EXPECT_EQ(config.api().tls().client_ca_file(), ".paygate/pki/ca.crt");
  EXPECT_EQ(config.api().tls().client_cert(), v1::CLIENT_CERT_MODE_OPTIONAL);
  EXPECT_EQ(config.admin().tls().client_cert(), v1::CLIENT_CERT_MODE_NONE);
  EXPECT_EQ(config.logging().format(), v1::LOG_FORMAT_HUMAN);
  std::vector<std::string> names;
  for (const v1::Principal& principal : config.principals()) {
    names.push_back(principal.name());
    EXPECT_EQ(principal.client_cert_common_name(), principal.name());
    EXPECT_EQ(principal.roles_size(), 1);
  }
  EXPECT_THAT(names, ElementsAre("sales-platform", "claims-system", "finance", "risk-team",
                                 "approver", "operator"));
}

TEST(LoaderTest, MinimalConfigLoads) {
  // Proves the shared minimal fixture is valid, so failures elsewhere come from each test's change.
  auto result = LoadYaml(kMinimalYaml, NoEnv());
  ASSERT_TRUE(result.has_value()) << FormatErrors(result.error());
  EXPECT_EQ(result.value().api().port(), 8443u);
}

TEST(LoaderTest, UnknownKeyIsReportedWithItsPathAndASuggestion) {
  // Proves a misspelt key is an error naming its full path, not silently ignored.
  const FieldErrors errors = LoadErrors(Minimal("logging: {levle: debug}\nserverr: {}\n"));
  EXPECT_THAT(Paths(errors), UnorderedElementsAre("logging.levle", "serverr"));
  EXPECT_TRUE(HasError(errors, "logging.levle", "unknown field; did you mean \"level\"?"));
  EXPECT_TRUE(HasError(errors, "serverr", "unknown field"));
}

TEST(LoaderTest, UnknownNestedKeyNamesTheFullPath) {
  // Proves the path of an unknown key includes every enclosing field (the "api.limitz" case).
  const FieldErrors errors = LoadErrors(R"(
api:
  address: 127.0.0.1
  port: 8443
  tls: {cert_file: a.crt, key_file: a.key, client_ca_file: ca.crt}
  limitz: {connections_max: 5}
admin:
  address: 127.0.0.1
  port: 9443
  tls: {cert_file: a.crt, key_file: a.key, client_cert: none}
database: {url: "host=db"}
)");
  EXPECT_THAT(Paths(errors), ElementsAre("api.limitz"));
  EXPECT_TRUE(HasError(errors, "api.limitz", "unknown field"));
  EXPECT_TRUE(HasError(errors, "api.limitz", "line 6, column 3"));
}

struct WrongTypeCase {
  std::string yaml;  // Appended to the minimal config; later keys replace nothing (duplicates are
                     // errors), so each case uses a section the minimal config lacks.
  std::string path;
  std::string message;
};

// Names the case by its path in test output instead of dumping its bytes.
void PrintTo(const WrongTypeCase& wrong_type_case, std::ostream* out) {
  *out << wrong_type_case.path << " <- " << wrong_type_case.yaml;
}

class WrongTypeTest : public ::testing::TestWithParam<WrongTypeCase> {};

TEST_P(WrongTypeTest, IsReportedAtItsPath) {
  // Proves each kind of type mismatch is an error at the offending field's path.
  const FieldErrors errors = LoadErrors(Minimal(GetParam().yaml));
  EXPECT_TRUE(HasError(errors, GetParam().path, GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    LoaderTest, WrongTypeTest,
    ::testing::Values(
        WrongTypeCase{"server: {io_threads: \"4\"}", "server.io_threads", "got a quoted string"},
        WrongTypeCase{"server: {io_threads: four}", "server.io_threads",
                      "expected an integer (uint32), got \"four\""},
        WrongTypeCase{"server: {io_threads: 1.5}", "server.io_threads", "expected an integer"},
        WrongTypeCase{"server: {io_threads: 0x10}", "server.io_threads", "expected an integer"},
        WrongTypeCase{"server: {io_threads: -1}", "server.io_threads", "must not be negative"},
        WrongTypeCase{"server: {io_threads: 4294967296}", "server.io_threads",
                      "out of range for uint32"},
        WrongTypeCase{"server: {io_threads: 99999999999999999999999}", "server.io_threads",
                      "out of range"},
        WrongTypeCase{"server: {io_threads: {n: 1}}", "server.io_threads", "got a mapping"},
        WrongTypeCase{"server: {io_threads: [1]}", "server.io_threads", "got a sequence"},
        WrongTypeCase{"server: 3", "server", "expected a mapping, got a scalar"},
        WrongTypeCase{"server: [1, 2]", "server", "expected a mapping, got a sequence"},
        WrongTypeCase{"logging: {level: [info]}", "logging.level", "expected a string"},
        WrongTypeCase{"logging: {access_log: yes}", "logging.access_log", "expected true or false"},
        WrongTypeCase{"logging: {access_log: \"true\"}", "logging.access_log",
                      "got a quoted string"},
        WrongTypeCase{"logging: {module_levels: [edge]}", "logging.module_levels",
                      "expected a mapping"},
        WrongTypeCase{"logging: {module_levels: {edge: {a: b}}}", "logging.module_levels.edge",
                      "expected a string"},
        WrongTypeCase{"principals: {name: x}", "principals", "expected a sequence"},
        WrongTypeCase{"principals: [{name: x, client_cert_common_name: x, roles: sales}]",
                      "principals[0].roles", "expected a sequence"},
        WrongTypeCase{"principals: [{name: x, client_cert_common_name: x, roles: [[sales]]}]",
                      "principals[0].roles[0]", "got a sequence"},
        WrongTypeCase{"principals: [x]", "principals[0]", "expected a mapping"}));

TEST(LoaderTest, ReportsEveryErrorAtOnce) {
  // Proves conversion and validation errors from all over the file come back together, each once.
  const FieldErrors errors = LoadErrors(R"(
api:
  address: 127.0.0.1
  port: 70000
  limitz: {}
  tls: {cert_file: a, key_file: b, client_ca_file: c, client_cert: sometimes}
admin:
  address: 127.0.0.1
  port: x
  tls: {cert_file: a, key_file: b, client_cert: none}
  limits: {idle_timeout_ms: 5}
database:
  url: "postgresql://paygate:hunter2@db/paygate"
principals:
  - name: Bad Name
    client_cert_common_name: a
    roles: [sales, nope]
  - name: ok
    client_cert_common_name: a
    roles: []
logging:
  level: loud
)");
  EXPECT_THAT(
      Paths(errors),
      UnorderedElementsAre("api.port", "api.limitz", "api.tls.client_cert", "admin.port",
                           "admin.limits.idle_timeout_ms", "database.url", "principals[0].name",
                           "principals[0].roles[1]", "principals[1].client_cert_common_name",
                           "principals[1].roles", "logging.level"));
  // admin.port failed conversion; validation's "required" for it would only repeat that.
  EXPECT_EQ(errors.size(), Paths(errors).size()) << FormatErrors(errors);
}

TEST(LoaderTest, EnumsAcceptShortAndFullNames) {
  // Proves the schema's enum spelling rule: full name, lower-case short name, '.' for '_'.
  auto result = LoadYaml(Minimal(R"(
logging: {format: LOG_FORMAT_JSON}
principals:
  - {name: a, client_cert_common_name: a, roles: [sales, ROLE_CLAIMS, approver]}
)"),
                         NoEnv());
  ASSERT_TRUE(result.has_value()) << FormatErrors(result.error());
  EXPECT_EQ(result.value().logging().format(), v1::LOG_FORMAT_JSON);
  EXPECT_THAT(result.value().principals(0).roles(),
              ElementsAre(v1::ROLE_SALES, v1::ROLE_CLAIMS, v1::ROLE_APPROVER));

  for (const auto& [text, expected] : std::vector<std::pair<std::string, v1::TlsMinVersion>>{
           {"\"1.2\"", v1::TLS_MIN_VERSION_1_2},
           {"1_2", v1::TLS_MIN_VERSION_1_2},
           {"\"1.3\"", v1::TLS_MIN_VERSION_1_3},
           {"1.3", v1::TLS_MIN_VERSION_1_3},
           {"TLS_MIN_VERSION_1_3", v1::TLS_MIN_VERSION_1_3}}) {
    auto loaded = LoadYaml(std::string(R"(
api:
  address: 127.0.0.1
  port: 8443
  tls: {cert_file: a, key_file: b, client_cert: required, client_ca_file: c, min_version: )") +
                               text + R"(}
admin:
  address: "::1"
  port: 9443
  tls: {cert_file: a, key_file: b, client_cert: CLIENT_CERT_MODE_NONE}
database: {url: "host=db"}
)",
                           NoEnv());
    ASSERT_TRUE(loaded.has_value()) << text << ": " << FormatErrors(loaded.error());
    EXPECT_EQ(loaded.value().api().tls().min_version(), expected) << text;
    EXPECT_EQ(loaded.value().api().tls().client_cert(), v1::CLIENT_CERT_MODE_REQUIRED);
    EXPECT_EQ(loaded.value().admin().tls().client_cert(), v1::CLIENT_CERT_MODE_NONE);
  }
}

TEST(LoaderTest, EnumsRejectUnknownUnspecifiedAndWrongCase) {
  // Proves unknown values, *_UNSPECIFIED and upper-case short names are rejected, listing values.
  const FieldErrors errors = LoadErrors(Minimal(R"(
logging: {format: LOG_FORMAT_UNSPECIFIED}
principals:
  - {name: a, client_cert_common_name: a, roles: [unspecified, SALES, root, Sales, ROLE_ROOT, 1]}
)"));
  EXPECT_THAT(
      Paths(errors),
      UnorderedElementsAre("logging.format", "principals[0].roles[0]", "principals[0].roles[1]",
                           "principals[0].roles[2]", "principals[0].roles[3]",
                           "principals[0].roles[4]", "principals[0].roles[5]"));
  EXPECT_TRUE(HasError(errors, "logging.format", "accepted: human, json"));
  EXPECT_TRUE(HasError(errors, "principals[0].roles[2]",
                       "\"root\" is not a Role; accepted: sales, claims, finance, risk, approver, "
                       "operator"));
}

TEST(LoaderTest, DuplicateKeysAreErrors) {
  // Proves a repeated key is reported instead of one occurrence silently winning.
  const FieldErrors errors = LoadErrors(Minimal(R"(
logging:
  level: debug
  level: info
  module_levels: {edge: info, edge: debug}
)"));
  EXPECT_THAT(Paths(errors), UnorderedElementsAre("logging.level", "logging.module_levels.edge"));
  EXPECT_TRUE(HasError(errors, "logging.level", "duplicate key (line 15"));
}

TEST(LoaderTest, SyntaxErrorCarriesLineAndColumn) {
  // Proves a YAML syntax error is reported with its position, and nothing else is reported.
  const FieldErrors errors = LoadErrors("api:\n  address: 127.0.0.1\n  port: [8443\nadmin: {}\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "");
  EXPECT_THAT(errors[0].message, HasSubstr("YAML syntax error at line 4"));
}

TEST(LoaderTest, BadIndentationIsASyntaxError) {
  // Proves a mis-indented key is a syntax error with its line, not a silently different structure.
  const FieldErrors errors = LoadErrors("api:\n  address: 127.0.0.1\n    port: 1\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].message, HasSubstr("line 3"));
}

TEST(LoaderTest, SeveralDocumentsAreRejected) {
  // Proves a second YAML document is not silently ignored.
  const FieldErrors errors = LoadErrors(Minimal("---\nserver: {io_threads: 4}\n"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].message, HasSubstr("found 2"));
}

TEST(LoaderTest, EmptyFileReportsTheRequiredSections) {
  // Proves an empty file is validated like an empty config rather than accepted.
  const FieldErrors errors = LoadErrors("# nothing\n");
  EXPECT_THAT(Paths(errors), UnorderedElementsAre("api", "admin", "database.url"));
}

TEST(LoaderTest, TopLevelMustBeAMapping) {
  // Proves a file whose root is a list or a scalar is rejected at the root path.
  EXPECT_TRUE(HasError(LoadErrors("- a\n- b\n"), "", "expected a mapping, got a sequence"));
}

TEST(LoaderTest, NullValueMeansDefault) {
  // Proves "key:" with no value behaves like an absent key: the default applies.
  auto result = LoadYaml(Minimal("server:\n  io_threads:\nlogging: ~\n"), NoEnv());
  ASSERT_TRUE(result.has_value()) << FormatErrors(result.error());
  EXPECT_EQ(result.value().server().io_threads(), 2u);
  EXPECT_EQ(result.value().logging().level(), "info");
}

TEST(LoaderTest, MapFieldsAreMappings) {
  // Proves module_levels reads as a YAML mapping and its values are validated per key.
  auto result = LoadYaml(Minimal("logging: {module_levels: {edge: debug, db: warn}}\n"), NoEnv());
  ASSERT_TRUE(result.has_value()) << FormatErrors(result.error());
  EXPECT_EQ(result.value().logging().module_levels().at("edge"), "debug");
  EXPECT_EQ(result.value().logging().module_levels().at("db"), "warn");

  const FieldErrors errors = LoadErrors(Minimal("logging: {module_levels: {edge: chatty}}\n"));
  EXPECT_THAT(Paths(errors), ElementsAre("logging.module_levels.edge"));
}

TEST(LoaderTest, MissingFileIsAFileLevelError) {
  // Proves an unreadable file is one error with an empty path that names the file.
  auto result = LoadFile("/nonexistent/paygate.yaml", NoEnv());
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.error().size(), 1u);
  EXPECT_EQ(result.error()[0].path, "");
  EXPECT_THAT(result.error()[0].message, HasSubstr("/nonexistent/paygate.yaml"));
}

TEST(LoaderTest, DirectoryIsNotAConfigFile) {
  // Proves a directory given as the config file is rejected without trying to parse it.
  auto result = LoadFile(testing::SourceDir() / "config", NoEnv());
  ASSERT_FALSE(result.has_value());
  EXPECT_THAT(result.error()[0].message, HasSubstr("not a regular file"));
}

}  // namespace
}  // namespace paygate::config
