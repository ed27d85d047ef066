#include "config/validate.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <gtest/gtest.h>

#include "tests/unit/config/test_util.h"

namespace paygate::config {
namespace {

using ::testing::ElementsAre;
using testing::HasError;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::NoEnv;
using ::testing::Not;
using testing::Paths;
using ::testing::UnorderedElementsAre;

// A valid configuration built in code, independent of the YAML loader.
v1::Config Valid() {
  v1::Config config;
  for (v1::Listener* listener : {config.mutable_api(), config.mutable_admin()}) {
    listener->set_address("127.0.0.1");
    listener->mutable_tls()->set_cert_file("server.crt");
    listener->mutable_tls()->set_key_file("server.key");
    listener->mutable_tls()->set_client_ca_file("ca.crt");
  }
  config.mutable_api()->set_port(8443);
  config.mutable_admin()->set_port(9443);
  config.mutable_database()->set_url("postgresql://paygate@127.0.0.1/paygate");
  v1::Principal* principal = config.add_principals();
  principal->set_name("sales-platform");
  principal->set_client_cert_common_name("sales-platform");
  principal->add_roles(v1::ROLE_SALES);
  // The keyring the *_key_id fields of the tests below name.
  config.mutable_keys()->mutable_master_key()->set_id("m");
  config.mutable_keys()->mutable_master_key()->set_file("master.key");
  for (const char* id : {"apiclient", "apiv3", "app", "sign-pfx", "sign-pfx-password", "risk-hash"}) {
    v1::KeyringEntry* entry = config.mutable_keys()->add_entries();
    entry->set_id(id);
    entry->set_file(std::string(id) + ".key");
  }
  return config;
}

FieldErrors Validate(v1::Config config, const ValidateOptions& options = NoEnv()) {
  return ApplyDefaultsAndValidate(&config, options);
}

// Every unsigned field of a message (recursively) is non-zero.
void ExpectNoZeroNumbers(const google::protobuf::Message& message, const std::string& path) {
  const google::protobuf::Descriptor& descriptor = *message.GetDescriptor();
  const google::protobuf::Reflection& reflection = *message.GetReflection();
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const google::protobuf::FieldDescriptor& field = *descriptor.field(i);
    if (field.is_repeated()) continue;
    const std::string field_path = path + "." + field.name();
    if (field.cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_UINT32) {
      EXPECT_NE(reflection.GetUInt32(message, &field), 0u) << field_path;
    } else if (field.cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_UINT64) {
      EXPECT_NE(reflection.GetUInt64(message, &field), 0u) << field_path;
    } else if (field.cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_ENUM) {
      EXPECT_NE(reflection.GetEnumValue(message, &field), 0) << field_path;
    } else if (field.cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
      ExpectNoZeroNumbers(reflection.GetMessage(message, &field), field_path);
    }
  }
}

TEST(ValidateTest, ValidConfigHasNoErrors) {
  // Proves the fixture is valid, so each failure below comes from the one change a test makes.
  EXPECT_THAT(Validate(Valid()), IsEmpty());
}

TEST(ValidateTest, DefaultsAreAppliedAsDocumented) {
  // Proves zero values become the defaults stated in paygate_config.proto.
  v1::Config config = Valid();
  ASSERT_THAT(ApplyDefaultsAndValidate(&config, NoEnv()), IsEmpty());
  EXPECT_EQ(config.server().io_threads(), 2u);
  EXPECT_EQ(config.server().drain_timeout_ms(), 10000u);
  const v1::HttpLimits& limits = config.api().limits();
  EXPECT_EQ(limits.header_size_max_bytes(), 16384u);
  EXPECT_EQ(limits.body_size_max_bytes(), 1048576u);
  EXPECT_EQ(limits.header_read_timeout_ms(), 10000u);
  EXPECT_EQ(limits.body_read_timeout_ms(), 30000u);
  EXPECT_EQ(limits.idle_timeout_ms(), 60000u);
  EXPECT_EQ(limits.handshake_timeout_ms(), 10000u);
  EXPECT_EQ(limits.write_timeout_ms(), 30000u);
  EXPECT_EQ(limits.connections_max(), 10000u);
  EXPECT_EQ(limits.connections_per_ip_max(), 1000u);
  EXPECT_EQ(limits.keepalive_requests_max(), 10000u);
  EXPECT_EQ(config.admin().limits().connections_max(), 10000u);
  EXPECT_EQ(config.api().tls().client_cert(), v1::CLIENT_CERT_MODE_OPTIONAL);
  EXPECT_EQ(config.api().tls().min_version(), v1::TLS_MIN_VERSION_1_2);
  const v1::Database& database = config.database();
  EXPECT_EQ(database.pool_size_max(), 8u);
  EXPECT_EQ(database.connect_timeout_ms(), 5000u);
  EXPECT_EQ(database.acquire_timeout_ms(), 2000u);
  EXPECT_EQ(database.statement_timeout_ms(), 10000u);
  EXPECT_EQ(database.retry_attempts_max(), 5u);
  EXPECT_EQ(database.retry_backoff_base_ms(), 10u);
  EXPECT_EQ(database.health_check_interval_ms(), 1000u);
  EXPECT_EQ(config.logging().format(), v1::LOG_FORMAT_HUMAN);
  EXPECT_EQ(config.logging().level(), "info");
  // Catches a numeric or enum field added to the schema without a default here.
  ExpectNoZeroNumbers(config, "");
}

TEST(ValidateTest, ExplicitValuesAreKept) {
  // Proves defaults fill only zero values and never overwrite what the file says.
  v1::Config config = Valid();
  config.mutable_server()->set_io_threads(7);
  config.mutable_api()->mutable_limits()->set_body_size_max_bytes(4096);
  config.mutable_api()->mutable_tls()->set_client_cert(v1::CLIENT_CERT_MODE_REQUIRED);
  config.mutable_logging()->set_level("debug");
  ASSERT_THAT(ApplyDefaultsAndValidate(&config, NoEnv()), IsEmpty());
  EXPECT_EQ(config.server().io_threads(), 7u);
  EXPECT_EQ(config.api().limits().body_size_max_bytes(), 4096u);
  EXPECT_EQ(config.api().tls().client_cert(), v1::CLIENT_CERT_MODE_REQUIRED);
  EXPECT_EQ(config.logging().level(), "debug");
}

struct RangeCase {
  std::function<void(v1::Config*)> set;
  std::string path;
};

TEST(ValidateTest, OutOfRangeValuesAreRejected) {
  // Proves each documented range is enforced, on both sides, with the field's path.
  const std::vector<RangeCase> cases = {
      {[](v1::Config* c) { c->mutable_server()->set_io_threads(65); }, "server.io_threads"},
      {[](v1::Config* c) { c->mutable_server()->set_drain_timeout_ms(99); },
       "server.drain_timeout_ms"},
      {[](v1::Config* c) { c->mutable_server()->set_drain_timeout_ms(300001); },
       "server.drain_timeout_ms"},
      {[](v1::Config* c) { c->mutable_api()->set_port(65536); }, "api.port"},
      {[](v1::Config* c) { c->mutable_api()->mutable_limits()->set_header_size_max_bytes(1023); },
       "api.limits.header_size_max_bytes"},
      {[](v1::Config* c) { c->mutable_api()->mutable_limits()->set_body_size_max_bytes(67108865); },
       "api.limits.body_size_max_bytes"},
      {[](v1::Config* c) { c->mutable_admin()->mutable_limits()->set_idle_timeout_ms(3600001); },
       "admin.limits.idle_timeout_ms"},
      {[](v1::Config* c) { c->mutable_api()->mutable_limits()->set_connections_max(1000001); },
       "api.limits.connections_max"},
      {[](v1::Config* c) { c->mutable_api()->mutable_limits()->set_write_timeout_ms(50); },
       "api.limits.write_timeout_ms"},
      {[](v1::Config* c) { c->mutable_database()->set_pool_size_max(257); },
       "database.pool_size_max"},
      {[](v1::Config* c) { c->mutable_database()->set_connect_timeout_ms(60001); },
       "database.connect_timeout_ms"},
      {[](v1::Config* c) { c->mutable_database()->set_retry_attempts_max(21); },
       "database.retry_attempts_max"},
      {[](v1::Config* c) { c->mutable_database()->set_health_check_interval_ms(99); },
       "database.health_check_interval_ms"},
  };
  for (const RangeCase& range_case : cases) {
    v1::Config config = Valid();
    range_case.set(&config);
    const FieldErrors errors = Validate(config);
    EXPECT_THAT(Paths(errors), ElementsAre(range_case.path));
    EXPECT_TRUE(HasError(errors, range_case.path, "must be between"));
  }
}

TEST(ValidateTest, RangeBoundsThemselvesAreAccepted) {
  // Proves ranges are inclusive: the stated minimum and maximum are valid values.
  v1::Config low = Valid();
  low.mutable_server()->set_io_threads(1);
  low.mutable_api()->set_port(1);
  low.mutable_api()->mutable_limits()->set_header_size_max_bytes(1024);
  low.mutable_database()->set_acquire_timeout_ms(1);
  EXPECT_THAT(Validate(low), IsEmpty());
  v1::Config high = Valid();
  high.mutable_server()->set_io_threads(64);
  high.mutable_api()->set_port(65535);
  high.mutable_api()->mutable_limits()->set_body_size_max_bytes(67108864);
  high.mutable_database()->set_pool_size_max(256);
  EXPECT_THAT(Validate(high), IsEmpty());
}

TEST(ValidateTest, RequiredSectionsAndFields) {
  // Proves the required listeners, TLS files and database URL are each reported when missing.
  EXPECT_THAT(Paths(Validate(v1::Config())), UnorderedElementsAre("api", "admin", "database.url"));

  v1::Config config = Valid();
  config.mutable_api()->clear_address();
  config.mutable_api()->clear_port();
  config.mutable_api()->mutable_tls()->clear_cert_file();
  config.mutable_api()->mutable_tls()->clear_key_file();
  config.mutable_api()->mutable_tls()->clear_client_ca_file();
  config.mutable_admin()->clear_tls();
  EXPECT_THAT(Paths(Validate(config)),
              UnorderedElementsAre("api.address", "api.port", "api.tls.cert_file",
                                   "api.tls.key_file", "api.tls.client_ca_file", "admin.tls"));
}

TEST(ValidateTest, ClientCaIsOptionalOnlyWithoutClientCerts) {
  // Proves client_ca_file may be omitted exactly when client_cert is none.
  v1::Config none = Valid();
  none.mutable_api()->mutable_tls()->clear_client_ca_file();
  none.mutable_api()->mutable_tls()->set_client_cert(v1::CLIENT_CERT_MODE_NONE);
  EXPECT_THAT(Validate(none), IsEmpty());
  v1::Config required = none;
  required.mutable_api()->mutable_tls()->set_client_cert(v1::CLIENT_CERT_MODE_REQUIRED);
  EXPECT_TRUE(HasError(Validate(required), "api.tls.client_ca_file", "required"));
}

TEST(ValidateTest, ListenerAddressMustBeAnIpAndListenersMustDiffer) {
  // Proves host names are refused as bind addresses and api/admin cannot share a socket address.
  v1::Config config = Valid();
  config.mutable_api()->set_address("localhost");
  EXPECT_THAT(Paths(Validate(config)), ElementsAre("api.address"));
  config.mutable_api()->set_address("::");
  EXPECT_THAT(Validate(config), IsEmpty());
  config.mutable_admin()->set_address("::");
  config.mutable_admin()->set_port(8443);
  EXPECT_THAT(Paths(Validate(config)), ElementsAre("admin.port"));
}

TEST(ValidateTest, EphemeralPortOnlyWhenAllowed) {
  // Proves port 0 is refused from files but allowed for in-process tests that opt in.
  v1::Config config = Valid();
  config.mutable_api()->set_port(0);
  config.mutable_admin()->set_port(0);
  EXPECT_THAT(Paths(Validate(config)), UnorderedElementsAre("api.port", "admin.port"));
  ValidateOptions options = NoEnv();
  options.allow_ephemeral_ports = true;
  EXPECT_THAT(Validate(config, options), IsEmpty());
}

TEST(ValidateTest, DatabaseUrlMayComeFromTheEnvironment) {
  // Proves database.url is optional exactly when PAYGATE_DATABASE_URL is set (and non-empty).
  v1::Config config = Valid();
  config.mutable_database()->clear_url();
  EXPECT_THAT(Paths(Validate(config)), ElementsAre("database.url"));

  std::vector<std::string> asked;
  ValidateOptions options;
  options.env = [&](std::string_view name) -> std::optional<std::string> {
    asked.emplace_back(name);
    return "postgresql:///paygate";
  };
  EXPECT_THAT(Validate(config, options), IsEmpty());
  EXPECT_THAT(asked, ElementsAre("PAYGATE_DATABASE_URL"));

  options.env = [](std::string_view) -> std::optional<std::string> { return ""; };
  EXPECT_THAT(Paths(Validate(config, options)), ElementsAre("database.url"));
}

TEST(ValidateTest, InlineDatabasePasswordIsRejected) {
  // Proves every libpq form of inline password is refused, without echoing the password.
  for (const std::string url : {
           "postgresql://paygate:s3cr3t@db:5432/paygate",
           "postgres://paygate:s3cr3t@[::1]/paygate",
           "postgresql://db/paygate?user=paygate&password=s3cr3t",
           "postgresql://db/paygate?sslmode=require&PASSWORD=s3cr3t#x",
           "host=db user=paygate password=s3cr3t dbname=paygate",
           "host=db password = 's3 cr3t' dbname=paygate",
           "password=s3cr3t",
       }) {
    v1::Config config = Valid();
    config.mutable_database()->set_url(url);
    const FieldErrors errors = Validate(config);
    EXPECT_TRUE(HasError(errors, "database.url", "database.password_key_id")) << url;
    EXPECT_THAT(FormatErrors(errors), Not(HasSubstr("s3"))) << url;
  }
}

TEST(ValidateTest, UrlsWithoutPasswordAreAccepted) {
  // Proves the password check has no false positives on ordinary connection strings.
  for (const std::string url : {
           "postgresql://paygate@db:5432/paygate",
           "postgresql:///paygate?host=/run/postgresql",
           "postgresql://[::1]:5432/paygate",
           "postgresql://paygate@db/paygate?passfile=/etc/paygate/pgpass&application_name=a:b@c",
           "host=db user=paygate dbname=paygate passfile=/etc/paygate/pgpass",
           "host=db application_name='pass word=x' dbname=paygate",
       }) {
    v1::Config config = Valid();
    config.mutable_database()->set_url(url);
    EXPECT_THAT(Validate(config), IsEmpty()) << url;
  }
}

TEST(ValidateTest, MalformedKeyValueUrlIsRejected) {
  // Proves a string that is neither a URI nor key=value is reported rather than passed to libpq.
  v1::Config config = Valid();
  config.mutable_database()->set_url("host=db paygate");
  EXPECT_TRUE(HasError(Validate(config), "database.url", "missing \"=\""));
}

TEST(ValidateTest, PrincipalRules) {
  // Proves name syntax, uniqueness of names and certificate names, and role rules.
  v1::Config config = Valid();
  auto add = [&](const std::string& name, const std::string& cn, std::vector<v1::Role> roles) {
    v1::Principal* principal = config.add_principals();
    principal->set_name(name);
    principal->set_client_cert_common_name(cn);
    for (v1::Role role : roles) principal->add_roles(role);
  };
  add("sales-platform", "other-cn", {v1::ROLE_SALES});  // [1] duplicate name
  add("Finance", "finance", {v1::ROLE_FINANCE});        // [2] upper case
  add(std::string(65, 'a'), "long", {v1::ROLE_RISK});   // [3] too long
  add("a.b_c-9", "sales-platform", {v1::ROLE_RISK});    // [4] duplicate CN
  add("no-roles", "no-roles", {});                      // [5] no role
  // [6] unspecified and duplicate roles.
  add("bad-roles", "bad-roles", {v1::ROLE_UNSPECIFIED, v1::ROLE_RISK, v1::ROLE_RISK});
  add("", "", {v1::ROLE_SALES});                                 // [7] both missing
  add(std::string(64, 'z'), "max-length", {v1::ROLE_OPERATOR});  // [8] valid
  const FieldErrors errors = Validate(config);
  EXPECT_THAT(Paths(errors),
              UnorderedElementsAre("principals[1].name", "principals[2].name", "principals[3].name",
                                   "principals[4].client_cert_common_name", "principals[5].roles",
                                   "principals[6].roles[0]", "principals[6].roles[2]",
                                   "principals[7].name", "principals[7].client_cert_common_name"));
  EXPECT_TRUE(HasError(errors, "principals[1].name", "duplicate"));
  EXPECT_TRUE(HasError(errors, "principals[2].name", "[a-z0-9_.-]{1,64}"));
}

TEST(ValidateTest, LogLevelsMustBeSpdlogNames) {
  // Proves only the documented level names pass, for the default level and per module.
  for (const std::string level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    v1::Config config = Valid();
    config.mutable_logging()->set_level(level);
    (*config.mutable_logging()->mutable_module_levels())["edge"] = level;
    EXPECT_THAT(Validate(config), IsEmpty()) << level;
  }
  v1::Config config = Valid();
  config.mutable_logging()->set_level("verbose");
  (*config.mutable_logging()->mutable_module_levels())["db"] = "INFO";
  (*config.mutable_logging()->mutable_module_levels())[""] = "info";
  EXPECT_THAT(
      Paths(Validate(config)),
      UnorderedElementsAre("logging.level", "logging.module_levels.db", "logging.module_levels."));
}

TEST(ValidateTest, FormatErrorsPrintsOneLinePerError) {
  // Proves the human-readable form used by --check-config.
  EXPECT_EQ(FormatErrors({{"api.port", "required"}, {"", "file is bad"}}),
            "api.port: required\nfile is bad\n");
}


TEST(ValidateTest, WechatPayAccountsNeedTheirKeysAndAVerifier) {
  // Proves a wechatpay account is refused, field by field, without what its adapter cannot run
  // without: merchant identity and key, the APIv3 key, and a way to verify WeChat's signatures.
  v1::Config config = Valid();
  v1::ProviderAccount* account = config.add_providers();
  account->set_provider("wechatpay");
  account->set_merchant_account("wx-main");
  account->mutable_wechatpay()->set_base_url("http://api.mch.weixin.qq.com");
  account->mutable_wechatpay()->add_public_keys()->set_id("1234");
  EXPECT_THAT(Paths(Validate(config)),
              UnorderedElementsAre("providers[0].wechatpay.base_url", "providers[0].wechatpay.mchid",
                                   "providers[0].wechatpay.appid",
                                   "providers[0].wechatpay.merchant_serial_no",
                                   "providers[0].wechatpay.merchant_private_key_id",
                                   "providers[0].wechatpay.apiv3_key_id",
                                   "providers[0].wechatpay.public_keys[0].id",
                                   "providers[0].wechatpay.public_keys[0].file"));

  v1::WechatPayAccount& wx = *account->mutable_wechatpay();
  wx.clear_base_url();
  wx.set_mchid("1900000001");
  wx.set_appid("wx8888888888888888");
  wx.set_merchant_serial_no("5F1C72E2A8931B72A2E13AF8DEE92471EB397115");
  wx.set_merchant_private_key_id("apiclient");
  wx.set_apiv3_key_id("apiv3");
  wx.clear_public_keys();
  EXPECT_THAT(Paths(Validate(config)), UnorderedElementsAre("providers[0].wechatpay.public_keys"));
  wx.add_platform_certificate_files("platform.pem");
  EXPECT_THAT(Validate(config), IsEmpty());
  account->set_provider("paypal");
  EXPECT_THAT(Paths(Validate(config)), UnorderedElementsAre("providers[0].provider"));
}

TEST(ValidateTest, AlipayAccountsNeedAnAppKeyAndExactlyOneVerificationMode) {
  // Proves an alipay account is refused, field by field, without its app and key, without a way to
  // verify Alipay's signatures, and with the two verification modes mixed or half-configured.
  v1::Config config = Valid();
  v1::ProviderAccount* account = config.add_providers();
  account->set_provider("alipay");
  account->set_merchant_account("ali-main");
  v1::AlipayAccount& alipay = *account->mutable_alipay();
  alipay.set_gateway_url("http://openapi.alipay.com/gateway.do");
  EXPECT_THAT(Paths(Validate(config)),
              UnorderedElementsAre("providers[0].alipay.gateway_url", "providers[0].alipay.app_id",
                                   "providers[0].alipay.app_private_key_id",
                                   "providers[0].alipay.alipay_public_key_file"));

  alipay.clear_gateway_url();
  alipay.set_app_id("2021000000000001");
  alipay.set_app_private_key_id("app");
  alipay.set_alipay_public_key_file("alipay.pub");
  EXPECT_THAT(Validate(config), IsEmpty());

  // Certificate mode wants all three certificates, and not the public key besides.
  alipay.set_app_cert_file("app.crt");
  EXPECT_THAT(Paths(Validate(config)),
              UnorderedElementsAre("providers[0].alipay.alipay_public_key_file",
                                   "providers[0].alipay.alipay_cert_file",
                                   "providers[0].alipay.alipay_root_cert_file"));
  alipay.clear_alipay_public_key_file();
  alipay.set_alipay_cert_file("alipay.crt");
  alipay.set_alipay_root_cert_file("root.crt");
  EXPECT_THAT(Validate(config), IsEmpty());
}

TEST(ValidateTest, UnionPayAccountsNeedTheirStoreCertificatesAndUrls) {
  // Proves a unionpay account is refused, field by field, without its gateway, merchant number,
  // signing store, UnionPay's chain and the browser's return URL; and that the close grace gets
  // its default and its range.
  v1::Config config = Valid();
  v1::ProviderAccount* account = config.add_providers();
  account->set_provider("unionpay");
  account->set_merchant_account("up-main");
  v1::UnionPayAccount& unionpay = *account->mutable_unionpay();
  unionpay.set_file_base_url("ftp://filedownload.95516.com");
  EXPECT_THAT(Paths(Validate(config)),
              UnorderedElementsAre(
                  "providers[0].unionpay.base_url", "providers[0].unionpay.file_base_url",
                  "providers[0].unionpay.front_url", "providers[0].unionpay.mer_id",
                  "providers[0].unionpay.sign_pfx_key_id",
                  "providers[0].unionpay.sign_pfx_password_key_id",
                  "providers[0].unionpay.root_cert_file", "providers[0].unionpay.middle_cert_file"));

  unionpay.clear_file_base_url();
  unionpay.set_base_url("https://gateway.95516.com");
  unionpay.set_front_url("https://pay.example.com/unionpay/return");
  unionpay.set_mer_id("777290058165621");
  unionpay.set_sign_pfx_key_id("sign-pfx");
  unionpay.set_sign_pfx_password_key_id("sign-pfx-password");
  unionpay.set_root_cert_file("root.cer");
  unionpay.set_middle_cert_file("middle.cer");
  EXPECT_THAT(ApplyDefaultsAndValidate(&config, NoEnv()), IsEmpty());
  EXPECT_EQ(config.providers(0).unionpay().close_grace_s(), 300u);

  config.mutable_providers(0)->mutable_unionpay()->set_close_grace_s(3601);
  EXPECT_THAT(Paths(Validate(config)), UnorderedElementsAre("providers[0].unionpay.close_grace_s"));
}

}  // namespace
}  // namespace paygate::config

namespace paygate::config {
namespace {

// The risk section: defaults applied even when off, files required only when enabled.
TEST(ValidateRiskTest, RiskNeedsItsFilesOnlyWhenEnabled) {
  v1::Config off = Valid();
  EXPECT_THAT(ApplyDefaultsAndValidate(&off, testing::NoEnv()), ::testing::IsEmpty());
  EXPECT_EQ(off.risk().tail_interval_ms(), 500u);
  EXPECT_EQ(off.risk().history_days(), 400u);

  v1::Config on = Valid();
  on.mutable_risk()->set_enabled(true);
  const FieldErrors errors = ApplyDefaultsAndValidate(&on, testing::NoEnv());
  EXPECT_TRUE(testing::HasError(errors, "risk.rules_file", "required"));
  EXPECT_TRUE(testing::HasError(errors, "risk.hash_key_id", "required"));

  v1::Config bad = Valid();
  bad.mutable_risk()->set_tail_interval_ms(5);
  EXPECT_TRUE(testing::HasError(ApplyDefaultsAndValidate(&bad, testing::NoEnv()),
                                "risk.tail_interval_ms", ""));
}

}  // namespace
}  // namespace paygate::config

namespace paygate::config {
namespace {

// Secrets are named by key id: every *_key_id must name an entry of keys.entries, so a missing
// secret is found by --check-config instead of at start-up.
TEST(ValidateKeyRefsTest, EveryKeyIdMustNameAKeyringEntry) {
  v1::Config config = Valid();
  config.mutable_database()->set_password_key_id("db-password");  // Not in the keyring.
  config.mutable_risk()->set_enabled(true);
  config.mutable_risk()->set_rules_file("r.rules");
  config.mutable_risk()->set_hash_key_id("Risk Hash");  // Not even a key name.
  v1::ApiKey* key = config.mutable_principals(0)->add_api_keys();
  key->set_key_id("k1");
  v1::ProviderAccount* sandbox = config.add_providers();
  sandbox->set_provider("sandbox");
  sandbox->set_merchant_account("m1");
  sandbox->mutable_sandbox()->set_base_url("https://127.0.0.1:7443");
  sandbox->mutable_sandbox()->set_ca_file("ca.crt");
  sandbox->mutable_sandbox()->set_secret_key_id("risk-hash");  // Exists: accepted.
  const FieldErrors errors = Validate(config);
  EXPECT_THAT(Paths(errors), UnorderedElementsAre("database.password_key_id", "risk.hash_key_id",
                                                  "principals[0].api_keys[0].secret_key_id"));
  EXPECT_TRUE(HasError(errors, "database.password_key_id", "no keys.entries entry has id"));
  EXPECT_TRUE(HasError(errors, "principals[0].api_keys[0].secret_key_id", "required"));
}

TEST(ValidateKeyRefsTest, WebhookSecretsHaveAtMostTwoVersions) {
  // Every version signs a delivery: one, or two during a rotation; a third is refused.
  v1::Config config = Valid();
  v1::Webhook* hook = config.mutable_events()->add_webhooks();
  hook->set_principal("sales-platform");
  hook->set_url("https://sales.example/events");
  hook->set_secret_key_id("webhook.sales");
  for (std::uint32_t version = 1; version <= 2; ++version) {
    v1::KeyringEntry* entry = config.mutable_keys()->add_entries();
    entry->set_id("webhook.sales");
    entry->set_version(version);
    entry->set_file("w.key");
  }
  EXPECT_THAT(Validate(config), IsEmpty());
  v1::KeyringEntry* third = config.mutable_keys()->add_entries();
  third->set_id("webhook.sales");
  third->set_version(3);
  third->set_file("w3.key");
  EXPECT_TRUE(HasError(Validate(config), "events.webhooks[0].secret_key_id", "3 versions"));
}

TEST(ValidateKeyRefsTest, KeysDefaultsAndPiiDataKeyName) {
  v1::Config config = Valid();
  EXPECT_THAT(ApplyDefaultsAndValidate(&config, NoEnv()), IsEmpty());
  EXPECT_EQ(config.keys().pii_data_key(), "pii");
  EXPECT_EQ(config.keys().reload_interval_s(), 300u);
  v1::Config bad = Valid();
  bad.mutable_keys()->set_pii_data_key("PII");
  bad.mutable_keys()->set_reload_interval_s(86401);
  EXPECT_THAT(Paths(Validate(bad)),
              UnorderedElementsAre("keys.pii_data_key", "keys.reload_interval_s"));
}

TEST(ValidateKeyRefsTest, OldFileFieldsAreUnknown) {
  // The secret file fields are gone: a configuration still naming one fails to load, at its path.
  auto loaded = LoadYaml("risk: {hash_key_file: /k/risk-hash.key}\n", NoEnv());
  ASSERT_FALSE(loaded);
  EXPECT_TRUE(HasError(loaded.error(), "risk.hash_key_file", ""));
}

}  // namespace
}  // namespace paygate::config
