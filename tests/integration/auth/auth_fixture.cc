#include "tests/integration/auth/auth_fixture.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

#include "config/validate.h"
#include "keys/live_keyring.h"
#include "ledger/db/migrations.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/pg_cluster.h"

namespace paygate::testing {

std::filesystem::path* AuthTest::pki_ = nullptr;
std::filesystem::path* AuthTest::secrets_ = nullptr;

namespace {

void WriteSecret(const std::filesystem::path& path, const std::string& secret) {
  std::ofstream(path) << secret << "\n";
  ::chmod(path.c_str(), 0600);
}

}  // namespace

void AuthTest::SetUpTestSuite() {
  const auto base =
      std::filesystem::temp_directory_path() / ("paygate-auth-" + std::to_string(::getpid()));
  pki_ = new std::filesystem::path(base / "pki");
  secrets_ = new std::filesystem::path(base / "secrets");
  std::filesystem::create_directories(*pki_);
  std::filesystem::create_directories(*secrets_);
  MakeDevPki(*pki_);
  for (const TestKey* key : {&kSalesKey, &kBatchKey, &kLimitedKey}) {
    WriteSecret(*secrets_ / key->key_id, key->secret);
  }
  WriteSecret(*secrets_ / "master.key", std::string(64, 'c'));
}

void AuthTest::TearDownTestSuite() {
  std::filesystem::remove_all(pki_->parent_path());
  delete pki_;
  delete secrets_;
}

void AuthTest::SetUp() {
  static int counter = 0;
  db_url_ = SharedPgCluster().CreateDatabase("auth" + std::to_string(++counter));
  ASSERT_FALSE(db_url_.empty());
  db_work_.emplace(db_ioc_.get_executor());
  db_thread_ = std::thread([this] { db_ioc_.run(); });
  pool_ = MakePool();
  auto migrated = OnDb(db::ApplyMigrations(*pool_, db::Clock::now() + std::chrono::seconds(60)));
  ASSERT_TRUE(migrated) << migrated.error().message;
  config_ = MakeConfig();
}

void AuthTest::TearDown() {
  if (pool_) pool_->Close();
  pool_.reset();
  db_work_.reset();
  if (db_thread_.joinable()) db_thread_.join();
}

std::unique_ptr<db::PgPool> AuthTest::MakePool(std::uint32_t size) {
  return std::make_unique<db::PgPool>(db_ioc_.get_executor(),
                                      db::test::MakePoolOptions(db_url_, size));
}

config::v1::Config AuthTest::MakeConfig() const {
  config::v1::Config config = TestConfig(*pki_);
  config.mutable_keys()->mutable_master_key()->set_id("auth-master");
  config.mutable_keys()->mutable_master_key()->set_file((*secrets_ / "master.key").string());
  // Each API key's secret is the keyring entry api.<key id>.
  auto add_key = [&](config::v1::Principal* p, const TestKey& key) {
    config::v1::ApiKey* k = p->add_api_keys();
    k->set_key_id(key.key_id);
    k->set_secret_key_id("api." + key.key_id);
    config::v1::KeyringEntry* entry = config.mutable_keys()->add_entries();
    entry->set_id("api." + key.key_id);
    entry->set_file((*secrets_ / key.key_id).string());
    return k;
  };
  for (auto& p : *config.mutable_principals()) {
    if (p.name() == "sales-platform") add_key(&p, kSalesKey);
  }
  config::v1::Principal* batch = config.add_principals();
  batch->set_name("batch");
  batch->add_roles(config::v1::ROLE_CLAIMS);
  add_key(batch, kBatchKey);
  config::v1::Principal* limited = config.add_principals();
  limited->set_name("limited");
  limited->add_roles(config::v1::ROLE_SALES);
  config::v1::ApiKey* limited_key = add_key(limited, kLimitedKey);
  limited_key->mutable_rate_limit()->set_requests_per_second(1);
  limited_key->mutable_rate_limit()->set_burst(2);
  config::v1::Principal* risk = config.add_principals();
  risk->set_name("risk-team");
  risk->set_client_cert_common_name("risk-team");
  risk->add_roles(config::v1::ROLE_RISK);
  risk->mutable_rate_limit()->set_requests_per_second(1);
  risk->mutable_rate_limit()->set_burst(2);
  config.mutable_api()->mutable_limits()->set_connections_per_ip_max(200);

  config::ValidateOptions options;
  options.allow_ephemeral_ports = true;
  options.env = [](std::string_view) { return std::nullopt; };
  auto errors = config::ApplyDefaultsAndValidate(&config, options);
  if (!errors.empty()) throw std::runtime_error(config::FormatErrors(errors));
  return config;
}

std::unique_ptr<RunningServer> AuthTest::StartServer(std::shared_ptr<const edge::Router> router,
                                                     db::PgPool* pool) {
  auto principals = std::make_shared<edge::PrincipalDirectory>(config_);
  auto keyring = keys::LiveKeyring::Load(config_.keys());
  if (!keyring) throw std::runtime_error(keyring.error().message);
  auto authenticator = auth::HmacAuthenticator::Create(
      config_, principals,
      std::make_shared<auth::PostgresNonceStore>(pool != nullptr ? *pool : *pool_),
      keyring.value());
  if (!authenticator) throw std::runtime_error(authenticator.error());
  return std::make_unique<RunningServer>(config_, config_.api(), std::move(router), 2,
                                         std::move(authenticator).value(), principals);
}

std::int64_t AuthTest::Sql(std::string sql) {
  auto run = [](db::PgPool& pool, std::string text) -> asio::awaitable<Result<std::int64_t>> {
    const auto deadline = db::Clock::now() + std::chrono::seconds(30);
    auto lease = co_await pool.Acquire(deadline);
    if (!lease) co_return lease.error();
    auto result = co_await lease.value()->ExecuteSimple(text, deadline);
    if (!result) co_return result.error();
    if (result.value().rows() == 0) co_return std::int64_t{0};
    co_return result.value().GetInt64(0, 0);
  };
  auto value = OnDb(run(*pool_, sql));
  EXPECT_TRUE(value) << sql << ": " << value.error().message();
  return value ? value.value() : -1;
}

ClientOptions AuthTest::As(const std::string& principal) const {
  ClientOptions options;
  options.ca = *pki_ / "ca.crt";
  options.cert = *pki_ / (principal + ".crt");
  options.key = *pki_ / (principal + ".key");
  return options;
}

ClientOptions AuthTest::Anonymous() const {
  ClientOptions options;
  options.ca = *pki_ / "ca.crt";
  return options;
}

std::int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

edge::Request MakeRequest(verb method, std::string_view target, std::string body,
                          const TestKey* key) {
  edge::Request request{method, target, 11};
  request.body() = std::move(body);
  if (!request.body().empty()) request.set(edge::http::field::content_type, "application/json");
  if (key != nullptr) Sign(request, *key, UnixNow(), auth::RandomNonce());
  return request;
}

void Sign(edge::Request& request, const TestKey& key, std::int64_t timestamp,
          std::string_view nonce) {
  request.set(edge::http::field::authorization,
              auth::SignRequest(key.key_id, key.secret, request.method_string(), request.target(),
                                request.body(), timestamp, nonce));
}

edge::Response Exchange(std::uint16_t port, const ClientOptions& options, edge::Request request) {
  TlsClient client(port, options);
  if (auto ec = client.Connect()) throw std::runtime_error("connect: " + ec.message());
  edge::Response response;
  if (auto ec = client.Send(request, &response)) throw std::runtime_error("send: " + ec.message());
  return response;
}

std::string ErrorCode(const edge::Response& response) {
  const std::string& body = response.body();
  const std::string marker = R"("code":")";
  const std::size_t at = body.find(marker);
  if (at == std::string::npos) return {};
  const std::size_t start = at + marker.size();
  return body.substr(start, body.find('"', start) - start);
}

}  // namespace paygate::testing
