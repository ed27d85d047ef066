#include "gateway/daemon.h"

#include <cstdlib>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <prometheus/metric_family.h>

#include "config/logging.h"
#include "gateway/auth/hmac_authenticator.h"
#include "gateway/edge/http_server.h"
#include "gateway/events/dispatcher.h"
#include "gateway/events/routes.h"
#include "gateway/fraud/routes.h"
#include "gateway/fraud/service.h"
#include "gateway/idempotency/with_idempotency.h"
#include "gateway/payments/wiring.h"
#include "gateway/payouts/routes.h"
#include "gateway/payouts/wiring.h"
#include "gateway/recon/reconcilers.h"
#include "gateway/recon/routes.h"
#include "gateway/recon/scheduler.h"
#include "gateway/routes.h"
#include "keys/data_keys.h"
#include "keys/live_keyring.h"
#include "ledger/db/durability.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "ledger/ledger/postgres_ledger.h"

namespace paygate::gateway {

namespace asio = edge::asio;
using namespace std::chrono_literals;

namespace {

// Start-up checks must finish within this bound; a database that does not answer by then is
// unreachable.
constexpr auto kStartupCheckTime = 30s;
// The admin listener keeps answering /readyz with 503 while the API drains, then gets this long.
constexpr auto kAdminDrainTime = 1s;

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type,
                                std::vector<std::pair<std::string, double>> labelled,
                                const std::string& label = {}) {
  prometheus::MetricFamily family{std::move(name), std::move(help), type, {}};
  for (auto& [value_label, value] : labelled) {
    prometheus::ClientMetric metric;
    if (!label.empty()) metric.label.push_back({label, value_label});
    if (type == prometheus::MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
  }
  return family;
}

// The database pool's state at scrape time, in Prometheus terms.
std::vector<prometheus::MetricFamily> PoolFamilies(const db::PoolStats& s, std::uint32_t size_max,
                                                   bool up) {
  using prometheus::MetricType;
  return {
      Family("paygate_db_pool_connections", "Database connections by state.", MetricType::Gauge,
             {{"idle", s.idle}, {"in_use", s.in_use}}, "state"),
      Family("paygate_db_pool_size_max", "Configured database.pool_size_max.", MetricType::Gauge,
             {{"", size_max}}),
      Family("paygate_db_pool_waiting", "Requests waiting for a database connection.",
             MetricType::Gauge, {{"", s.waiting}}),
      Family("paygate_db_pool_connect_failures_total", "Failed attempts to open a connection.",
             MetricType::Counter, {{"", static_cast<double>(s.connect_failures_total)}}),
      Family("paygate_db_pool_connections_opened_total", "Connections opened.", MetricType::Counter,
             {{"", static_cast<double>(s.connections_opened_total)}}),
      Family("paygate_db_pool_connections_discarded_total", "Broken connections discarded.",
             MetricType::Counter, {{"", static_cast<double>(s.connections_discarded_total)}}),
      Family("paygate_db_pool_acquire_timeouts_total",
             "Requests that found no free connection in time.", MetricType::Counter,
             {{"", static_cast<double>(s.acquire_timeouts_total)}}),
      Family("paygate_db_up", "1 when the last database probe succeeded.", MetricType::Gauge,
             {{"", up ? 1.0 : 0.0}}),
  };
}

}  // namespace

std::string EffectiveDatabaseUrl(const config::v1::Database& database) {
  const char* env = std::getenv("PAYGATE_DATABASE_URL");
  return env != nullptr && *env != '\0' ? std::string(env) : database.url();
}

Result<db::PoolOptions, std::string> DatabasePoolOptions(const config::v1::Config& config,
                                                         const keys::Keyring* ring) {
  const config::v1::Database& database = config.database();
  keys::Secret password;
  if (!database.password_key_id().empty()) {
    std::optional<keys::Keyring> loaded;
    if (ring == nullptr) {
      auto configured = keys::LoadConfiguredKeyring(config.keys());
      if (!configured) return configured.error().message;
      loaded = std::move(configured).value();
      ring = &*loaded;
    }
    auto copied = keys::CopyCurrent(*ring, "database.password_key_id", database.password_key_id());
    if (!copied) return copied.error();
    password = std::move(copied).value();
  }
  config::v1::Database effective = database;
  effective.set_url(EffectiveDatabaseUrl(database));
  return db::PoolOptionsFromConfig(effective, std::move(password));
}

class Daemon::Impl {
 public:
  explicit Impl(config::v1::Config config)
      : config_(std::move(config)),
        ioc_(static_cast<int>(config_.server().io_threads())),
        work_(ioc_.get_executor()),
        metrics_(std::make_shared<edge::EdgeMetrics>()),
        readiness_(std::make_shared<Readiness>()),
        health_timer_(ioc_),
        keys_timer_(ioc_),
        signals_(ioc_) {}

  ~Impl() {
    if (!threads_.empty()) {
      BeginShutdown();
      Wait();
    }
  }

  Result<void, std::string> Start() {
    log::Configure(config_.logging());
    auto logger = log::Get("main");
    auto api_tls = MakeStore(config_.api().tls());
    if (!api_tls) return "api listener: " + api_tls.error();
    auto admin_tls = MakeStore(config_.admin().tls());
    if (!admin_tls) return "admin listener: " + admin_tls.error();

    // Every secret below comes from the keyring by id; a key that cannot be loaded stops the start.
    auto keyring = keys::LiveKeyring::Load(config_.keys());
    if (!keyring) return "refusing to start: " + keyring.error().message;
    keyring_ = std::move(keyring).value();
    const auto ring = keyring_->Current();
    auto pool_options = DatabasePoolOptions(config_, ring.get());
    if (!pool_options) return pool_options.error();
    pool_ = std::make_unique<db::PgPool>(ioc_.get_executor(), std::move(pool_options).value());

    for (std::uint32_t i = 0; i < config_.server().io_threads(); ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
    std::optional<Result<void, std::string>> checked;
    asio::co_spawn(
        ioc_, [&]() -> asio::awaitable<void> { checked.emplace(co_await StartupChecks()); },
        asio::use_future)
        .get();
    if (!*checked) return checked->error();
    readiness_->database_ok = true;
    if (auto ok = LoadPiiCipher(); !ok) return ok.error();
    ledger_ = std::make_shared<ledger::PostgresLedger>(*pool_, ioc_.get_executor(),
                                                       ledger::PostgresLedgerOptions{});
    // Collections: provider adapters (secrets read now), the payment service and its janitor.
    // The chart of accounts for every currency and provider account is created (idempotently)
    // before the first request can post to it.
    auto collections =
        payments::BuildCollections(config_, *pool_, *ledger_, ioc_.get_executor(), *ring);
    if (!collections) return collections.error();
    collections_ = std::move(collections).value();
    std::optional<Result<void>> chart;
    asio::co_spawn(
        ioc_,
        [&]() -> asio::awaitable<void> {
          chart.emplace(co_await collections_.service->EnsureChartOfAccounts());
        },
        asio::use_future)
        .get();
    if (!*chart) return "ledger chart of accounts: " + chart->error().message();
    // Claim payouts share the collections' provider accounts, callback route and janitor.
    std::optional<Result<std::shared_ptr<payouts::PayoutService>, std::string>> built;
    asio::co_spawn(
        ioc_,
        [&]() -> asio::awaitable<void> {
          // Beneficiary columns are personal data: the cipher of keys.pii_data_key (null without
          // a master key, and then payout routes are refused).
          built.emplace(co_await payouts::BuildPayouts(config_, *pool_, *ledger_,
                                                       collections_.adapters,
                                                       *collections_.service, pii_cipher_));
        },
        asio::use_future)
        .get();
    if (!*built) return built->error();
    payouts_ = std::move(built->value());
    metrics_->AddCollector(
        [counters = collections_.counters] { return payments::CallbackFamilies(*counters); });
    // Fraud rules: a ruleset that does not compile stops the start, with every positioned error.
    // The aggregates are rebuilt from stored events before the first payment is decided.
    if (config_.risk().enabled()) {
      auto setup = fraud::RiskSetupFromConfig(config_, ring.get());
      if (!setup) return setup.error();
      auto risk = fraud::RiskService::Create(*pool_, ioc_.get_executor(),
                                             std::move(setup.value().options),
                                             std::move(setup.value().hash_key));
      if (!risk) return "refusing to start: " + risk.error();
      risk_ = std::move(risk).value();
      std::optional<Result<void>> started;
      asio::co_spawn(
          ioc_, [&]() -> asio::awaitable<void> { started.emplace(co_await risk_->Start()); },
          asio::use_future)
          .get();
      if (!*started) return "risk aggregates: " + started->error().message();
      collections_.service->AttachRisk(risk_);
      if (payouts_) payouts_->AttachRisk(risk_);
      metrics_->AddCollector([risk = risk_] { return fraud::RiskFamilies(risk->counters()); });
    }
    // Reconciliation (issue 8): uploads, reports and the exceptions workflow.
    reconcilers_ = std::make_shared<recon::Reconcilers>(config_.recon(), *pool_, *ledger_);
    // The daily bill download of the accounts with recon.accounts[].download.
    bill_scheduler_ = std::make_unique<recon::BillScheduler>(
        ioc_.get_executor(), *pool_, reconcilers_,
        recon::AdapterBillFetcher(collections_.adapters),
        recon::ScheduleOptionsFromConfig(config_.recon()));
    // Events to clients: the outbox dispatcher (idle when no webhook is configured).
    auto dispatcher = events::MakeDispatcher(config_, *pool_, ioc_.get_executor(), keyring_);
    if (!dispatcher) return dispatcher.error();
    dispatcher_ = std::move(dispatcher).value();
    metrics_->AddCollector(
        [dispatcher = dispatcher_] { return events::DispatcherFamilies(dispatcher->counters()); });

    const std::uint32_t size_max = config_.database().pool_size_max();
    metrics_->AddCollector([this, size_max] {
      return PoolFamilies(pool_->Stats(), size_max, readiness_->database_ok);
    });
    auto principals = std::make_shared<edge::PrincipalDirectory>(config_);
    // API keys (secrets read here, permissions checked) and rate limits; nonces live in the
    // database so every daemon behind a load balancer refuses the same replays.
    auto authenticator = auth::HmacAuthenticator::Create(
        config_, principals, std::make_shared<auth::PostgresNonceStore>(*pool_), keyring_);
    if (!authenticator) return authenticator.error();
    api_ = std::make_shared<edge::HttpServer>(
        ioc_, config_.server().io_threads(), "api", config_.api(), config_.logging().access_log(),
        std::move(api_tls).value(), BuildApiRouterWithCollections(), metrics_, principals,
        std::move(authenticator).value());
    admin_ = std::make_shared<edge::HttpServer>(
        ioc_, config_.server().io_threads(), "admin", config_.admin(),
        config_.logging().access_log(), std::move(admin_tls).value(),
        BuildAdminRouter(metrics_, readiness_), metrics_, principals);
    if (auto ok = api_->Listen(); !ok) return ok.error();
    if (auto ok = admin_->Listen(); !ok) return ok.error();
    api_->Start();
    admin_->Start();
    collections_.janitor->Start();
    dispatcher_->Start();
    bill_scheduler_->Start();
    asio::co_spawn(ioc_, HealthLoop(), asio::detached);
    asio::co_spawn(ioc_, KeysReloadLoop(), asio::detached);
    logger->info("paygated {} ready: api https://{}:{} admin https://{}:{}", PAYGATE_VERSION,
                 config_.api().address(), api_->port(), config_.admin().address(), admin_->port());
    return outcome::success();
  }

  void HandleSignals() {
    signals_.add(SIGTERM);
    signals_.add(SIGINT);
    signals_.add(SIGHUP);
    WaitForSignal();
  }

  bool ReloadTls() {
    bool ok = true;
    for (auto* server : {api_.get(), admin_.get()}) {
      if (auto reloaded = server->tls().Reload(); !reloaded) {
        log::Get("main")->error("listener={} certificate reload failed, keeping the old one: {}",
                                server->name(), reloaded.error());
        ok = false;
      } else {
        log::Get("main")->info("listener={} certificate and key reloaded", server->name());
      }
    }
    return ok;
  }

  // SIGHUP: the rules files are read again; one that does not compile is refused (logged with
  // its positioned errors) and the running ruleset stays.
  void ReloadRisk() {
    if (!risk_) return;
    asio::co_spawn(ioc_, ReloadRiskFiles(risk_), asio::detached);
  }

  static asio::awaitable<void> ReloadRiskFiles(std::shared_ptr<fraud::RiskService> risk) {
    co_await risk->ReloadFiles();
  }

  void BeginShutdown() {
    if (shutting_down_.exchange(true)) return;
    asio::co_spawn(ioc_, Shutdown(), asio::detached);
  }

  int Wait() {
    shutdown_done_future_.wait();
    // Every listener is drained and the pool closed; what is left (lingering closes) may be
    // abandoned.
    ioc_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    return 0;
  }

  std::uint16_t api_port() const { return api_->port(); }
  std::uint16_t admin_port() const { return admin_->port(); }

  // ---- Keys (issue 7): the keyring and the cipher of personal data ----

  bool ReloadKeys() {
    std::optional<bool> ok;
    asio::co_spawn(
        ioc_, [&]() -> asio::awaitable<void> { ok.emplace(co_await ReloadKeysAsync()); },
        asio::use_future)
        .get();
    return *ok;
  }

  std::shared_ptr<keys::FieldCipher> pii_cipher() const { return pii_cipher_; }

 private:
  // With a master key configured, the data key keys.pii_data_key (created at v1 on first use)
  // unwrapped into the FieldCipher services encrypt personal data with.
  Result<void, std::string> LoadPiiCipher() {
    if (keyring_->master() == nullptr) return outcome::success();
    std::optional<Result<std::shared_ptr<keys::FieldCipher>>> cipher;
    asio::co_spawn(
        ioc_,
        [&]() -> asio::awaitable<void> {
          cipher.emplace(co_await keys::LoadFieldCipher(*pool_, *keyring_->master(),
                                                        config_.keys().pii_data_key(),
                                                        db::Clock::now() + kStartupCheckTime));
        },
        asio::use_future)
        .get();
    if (!*cipher) {
      return fmt::format("refusing to start: data key {}: {}", config_.keys().pii_data_key(),
                         cipher->error().message());
    }
    pii_cipher_ = cipher->value();
    log::Get("main")->info("keys: {} keyring entries, data key {} at v{}",
                           keyring_->Current()->List().size(), pii_cipher_->name(),
                           pii_cipher_->current_version());
    return outcome::success();
  }

  // Re-reads the keyring and adds rotated data key versions; a failure keeps what is loaded.
  asio::awaitable<bool> ReloadKeysAsync() {
    auto logger = log::Get("main");
    bool ok = true;
    if (auto reloaded = keyring_->Reload(); !reloaded) {
      logger->error("keyring reload failed, keeping the loaded keys: {}", reloaded.error().message);
      ok = false;
    }
    if (pii_cipher_) {
      const auto deadline =
          db::Clock::now() + std::chrono::milliseconds(config_.database().statement_timeout_ms());
      auto added =
          co_await keys::ReloadFieldCipher(*pool_, *keyring_->master(), *pii_cipher_, deadline);
      if (!added) {
        logger->error("data key {} reload failed, keeping v{}: {}", pii_cipher_->name(),
                      pii_cipher_->current_version(), added.error().message());
        ok = false;
      } else if (added.value() > 0) {
        logger->info("data key {} now at v{}", pii_cipher_->name(), pii_cipher_->current_version());
      }
    }
    co_return ok;
  }

  asio::awaitable<void> KeysReloadLoop() {
    // Zero only in a configuration that skipped validation: keep the default.
    const auto interval = std::chrono::seconds(
        config_.keys().reload_interval_s() != 0 ? config_.keys().reload_interval_s() : 300);
    while (!shutting_down_) {
      keys_timer_.expires_after(interval);
      boost::system::error_code ec;
      co_await keys_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (shutting_down_) break;
      co_await ReloadKeysAsync();
    }
  }

  static Result<std::shared_ptr<edge::TlsContextStore>, std::string> MakeStore(
      const config::v1::Tls& tls) {
    auto context = edge::MakeServerTlsContext(tls);
    if (!context) return context.error();
    return std::make_shared<edge::TlsContextStore>(tls, std::move(context).value());
  }

  // The API routes plus the collections' routes, every POST behind Idempotency-Key.
  std::shared_ptr<edge::Router> BuildApiRouterWithCollections() {
    auto router = BuildApiRouter(ledger_);
    auto store = std::make_shared<idempotency::PostgresIdempotencyStore>(*pool_);
    auto idempotent = [store](edge::Handler inner) {
      return idempotency::WithIdempotency(store, std::move(inner));
    };
    payments::AddPaymentRoutes(*router, collections_.service, collections_.counters, idempotent);
    events::AddEventRoutes(*router, *pool_, events::EventRoutesOptionsFromConfig(config_),
                           idempotent);
    if (risk_) fraud::AddRiskRoutes(*router, risk_, collections_.service, idempotent);
    if (payouts_) payouts::AddPayoutRoutes(*router, payouts_, idempotent);
    recon::ReconRoutesOptions recon_options;
    recon_options.accounts = recon::ConfiguredAccounts(config_);
    recon::AddReconRoutes(*router, reconcilers_, std::move(recon_options), idempotent);
    return router;
  }

  asio::awaitable<Result<void, std::string>> StartupChecks() {
    const auto deadline = db::Clock::now() + kStartupCheckTime;
    if (auto ok = co_await db::CheckDurability(*pool_, deadline); !ok) {
      co_return "refusing to start: " + ok.error().message;
    }
    if (auto ok = co_await db::CheckSchemaCurrent(*pool_, deadline); !ok) {
      co_return "refusing to start: " + ok.error().message +
          " (run `paygatectl migrate --config FILE`)";
    }
    co_return outcome::success();
  }

  asio::awaitable<void> HealthLoop() {
    const auto interval = std::chrono::milliseconds(config_.database().health_check_interval_ms());
    auto logger = log::Get("db");
    while (!shutting_down_) {
      auto ping = co_await pool_->Ping(db::Clock::now() + interval);
      const bool ok = ping.has_value();
      if (ok != readiness_->database_ok.exchange(ok)) {
        if (ok) {
          logger->info("database reachable again; ready");
        } else {
          logger->error("database unreachable, /readyz answers 503: {}", ping.error().message());
        }
      }
      health_timer_.expires_after(interval);
      boost::system::error_code ec;
      co_await health_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  void WaitForSignal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        ReloadTls();
        ReloadRisk();
        asio::co_spawn(ioc_, ReloadKeysAsync(), asio::detached);
        WaitForSignal();
        return;
      }
      log::Get("main")->info("signal {} received: draining", signal);
      BeginShutdown();
    });
  }

  asio::awaitable<void> Shutdown() {
    readiness_->draining = true;
    const auto bound = std::chrono::milliseconds(config_.server().drain_timeout_ms());
    if (api_) co_await api_->Drain(bound);
    if (admin_) co_await admin_->Drain(kAdminDrainTime);
    // No request is left; the janitor finishes its round, so nothing posts any more.
    if (collections_.janitor) co_await collections_.janitor->Stop();
    if (risk_) risk_->Stop();
    if (dispatcher_) co_await dispatcher_->Stop();
    // A bill import in progress finishes (its postings go through the ledger, stopped below).
    if (bill_scheduler_) co_await bill_scheduler_->Stop();
    // Requests are drained, so nothing posts any more; the ledger finishes its last batch.
    if (ledger_) co_await ledger_->Stop();
    boost::system::error_code ignored;
    signals_.cancel(ignored);
    health_timer_.cancel();
    keys_timer_.cancel();
    if (pool_) pool_->Close();
    work_.reset();
    log::Get("main")->info("drained; exiting");
    log::Get("main")->flush();
    shutdown_done_.set_value();
  }

  config::v1::Config config_;
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::shared_ptr<edge::EdgeMetrics> metrics_;
  std::shared_ptr<Readiness> readiness_;
  std::unique_ptr<db::PgPool> pool_;
  std::shared_ptr<ledger::PostgresLedger> ledger_;
  std::shared_ptr<keys::LiveKeyring> keyring_;
  // Services that keep personal data encrypted take this (payouts: beneficiary accounts).
  std::shared_ptr<keys::FieldCipher> pii_cipher_;
  // Declared after ioc_: its HTTPS clients must go before the io_context they run on.
  payments::Collections collections_;
  std::shared_ptr<events::Dispatcher> dispatcher_;
  std::shared_ptr<fraud::RiskService> risk_;
  std::shared_ptr<payouts::PayoutService> payouts_;
  std::shared_ptr<recon::Reconcilers> reconcilers_;
  std::unique_ptr<recon::BillScheduler> bill_scheduler_;
  std::shared_ptr<edge::HttpServer> api_;
  std::shared_ptr<edge::HttpServer> admin_;
  asio::steady_timer health_timer_;
  asio::steady_timer keys_timer_;
  asio::signal_set signals_;
  std::vector<std::thread> threads_;
  std::atomic<bool> shutting_down_{false};
  std::promise<void> shutdown_done_;
  std::shared_future<void> shutdown_done_future_ = shutdown_done_.get_future().share();
};

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() = default;

Result<std::unique_ptr<Daemon>, std::string> Daemon::Start(config::v1::Config config) {
  auto impl = std::make_unique<Impl>(std::move(config));
  if (auto ok = impl->Start(); !ok) return ok.error();  // ~Impl shuts down what started.
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

std::uint16_t Daemon::api_port() const { return impl_->api_port(); }
std::uint16_t Daemon::admin_port() const { return impl_->admin_port(); }
bool Daemon::ReloadTls() { return impl_->ReloadTls(); }
bool Daemon::ReloadKeys() { return impl_->ReloadKeys(); }
std::shared_ptr<keys::FieldCipher> Daemon::pii_cipher() const { return impl_->pii_cipher(); }
void Daemon::BeginShutdown() { impl_->BeginShutdown(); }
int Daemon::Wait() { return impl_->Wait(); }

int RunDaemon(config::v1::Config config) {
  auto impl = std::make_unique<Daemon::Impl>(std::move(config));
  if (auto ok = impl->Start(); !ok) {
    log::Get("main")->critical("{}", ok.error());
    return 1;
  }
  impl->HandleSignals();
  return impl->Wait();
}

}  // namespace paygate::gateway
