// The daily bill download (gateway/recon/scheduler.h) against the WeChat Pay simulator over real
// TLS, through the real adapter and the real engine: payments made at the provider and recorded on
// our side; once the day's bill is due (the scheduler's clock a day ahead, so the simulator's day
// is "yesterday") one round downloads and imports it, matching every line; the next round imports
// nothing new; a day already uploaded by finance is never fetched.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "adapters/http/https_client.h"
#include "adapters/wechatpay/wechatpay_adapter.h"
#include "gateway/edge/asio_fwd.h"
#include "gateway/payments/service.h"
#include "gateway/recon/scheduler.h"
#include "ledger/db/migrations.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/postgres_ledger.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/wechatpay_sim.h"
#include "tests/testing/run_async.h"

namespace paygate::gateway::recon {
namespace {

namespace asio = edge::asio;
namespace wx = adapters::wechatpay;
using namespace std::chrono_literals;
using db::test::FreshDatabase;
using db::test::In;
using db::test::MakePoolOptions;

std::string ChinaDateOf(std::chrono::system_clock::time_point t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t + 8h);
  std::tm tm{};
  gmtime_r(&s, &tm);
  return fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

class ScheduleTest : public ::testing::Test {
 public:
  ScheduleTest() : work_(io_.get_executor()) {
    sim_ = std::make_unique<testing::WechatPaySim>();
    adapter_ = sim_->adapter();
    registry_ = std::make_shared<payments::AdapterRegistry>();
    registry_->Add("wx1", adapter_);

    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    pool_ = std::make_unique<db::PgPool>(io_.get_executor(), MakePoolOptions(FreshDatabase(), 8));
    auto applied = Run(db::ApplyMigrations(*pool_, In(30s)));
    EXPECT_TRUE(applied) << applied.error().message;
    ledger_ = std::make_shared<ledger::PostgresLedger>(*pool_, io_.get_executor(),
                                                       ledger::PostgresLedgerOptions{});
    ledger::ChartSpec spec;
    spec.currency = "CNY";
    spec.clearing.push_back({"wechatpay", "wx1"});
    EXPECT_TRUE(Run(ledger_->CreateAccounts(ledger::StandardChart(spec), In(10s))));
    section_.set_settlement_bank("settlement");
    section_.set_bill_utc_offset("+08:00");
    section_.set_download_lookback_days(1);
    auto* account = section_.add_accounts();
    account->set_provider("wechatpay");
    account->set_merchant_account("wx1");
    account->set_download(true);
    account->set_download_after("00:00");
    reconcilers_ = std::make_shared<Reconcilers>(section_, *pool_, *ledger_);
  }

  ~ScheduleTest() override {
    Run(StopLedger(ledger_));
    reconcilers_.reset();
    ledger_.reset();
    pool_->Close();
    work_.reset();
    for (auto& t : threads_) t.join();
    pool_.reset();
    // The clients' pooled TLS connections belong to io_, declared after them and so destroyed
    // before them: release them while io_ still exists.
    adapter_.reset();
    registry_.reset();
    sim_->Release();
  }

  static asio::awaitable<int> StopLedger(std::shared_ptr<ledger::PostgresLedger> ledger) {
    co_await ledger->Stop();
    co_return 0;
  }

  template <class T>
  T Run(asio::awaitable<T> task) {
    return testing::RunOnThreads(io_, std::move(task));
  }

  std::int64_t SqlInt(const std::string& sql) {
    auto result = Run([this, sql]() -> asio::awaitable<Result<db::PgResult>> {
      auto lease = co_await pool_->Acquire(In(10s));
      if (!lease) co_return lease.error();
      co_return co_await lease.value()->ExecuteSimple(sql, In(10s));
    }());
    EXPECT_TRUE(result) << sql;
    return result ? result.value().GetInt64(0, 0).value() : -1;
  }
  void Sql(const std::string& sql) {
    auto result = Run([this, sql]() -> asio::awaitable<Result<db::PgResult>> {
      auto lease = co_await pool_->Acquire(In(10s));
      if (!lease) co_return lease.error();
      co_return co_await lease.value()->ExecuteSimple(sql, In(10s));
    }());
    ASSERT_TRUE(result) << sql;
  }

  // A payment the provider executed, and our record of it.
  void Pay(const std::string& order_id, std::int64_t amount) {
    adapters::CreatePaymentRequest request;
    request.merchant_account = "wx1";
    request.provider_reference = order_id + "_1";
    request.amount_minor = amount;
    request.currency = "CNY";
    request.method = "wechat_native";
    request.description = "premium";
    request.notify_url = "https://127.0.0.1:1/v1/callbacks/wechatpay/wx1";
    request.expires_at = std::chrono::system_clock::now() + 1h;
    auto created = Run(adapter_->CreatePayment(std::move(request)));
    ASSERT_EQ(created.outcome, adapters::Outcome::kPending) << created.detail;
    auto reply = Run(sim_->Control(
        "payments/complete",
        fmt::format(R"({{"mchid":"{}","out_trade_no":"{}_1","trade_state":"SUCCESS"}})",
                    testing::WechatPaySim::kMchid, order_id)));
    ASSERT_TRUE(reply);
    ASSERT_EQ(reply.assume_value().status, 200u) << reply.assume_value().body;
    Sql(fmt::format(
        "INSERT INTO payment_orders (id, principal, client_reference, policy_number, amount_minor, "
        "currency, method, provider, merchant_account, status, captured_minor, expires_at) "
        "VALUES ('{0}', 'sales', '{0}', 'POL-1', {1}, 'CNY', 'wechat_native', 'wechatpay', "
        "'wx1', 'succeeded', {1}, now() + interval '1 hour'); "
        "INSERT INTO payment_attempts (order_id, seq, provider, merchant_account, "
        "provider_reference, routing_reason, status) VALUES ('{0}', 1, 'wechatpay', 'wx1', "
        "'{0}_1', 'route', 'succeeded')",
        order_id, amount));
  }

  ScheduleOptions Schedule(std::chrono::hours ahead) {
    ScheduleOptions options = ScheduleOptionsFromConfig(section_);
    options.clock = [ahead] { return std::chrono::system_clock::now() + ahead; };
    return options;
  }

  std::unique_ptr<testing::WechatPaySim> sim_;
  std::shared_ptr<wx::WechatPayAdapter> adapter_;
  std::shared_ptr<payments::AdapterRegistry> registry_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::unique_ptr<db::PgPool> pool_;
  std::shared_ptr<ledger::PostgresLedger> ledger_;
  config::v1::Recon section_;
  std::shared_ptr<Reconcilers> reconcilers_;
};

TEST(DueBillDatesTest, YesterdayOnlyOncePublished) {
  // 2026-03-11 09:59 China time (01:59 UTC): yesterday's bill is not out before 10:00.
  const auto at = std::chrono::system_clock::from_time_t(1773194340);
  EXPECT_EQ(DueBillDates(at, 8 * 3600, 600, 3),
            (std::vector<std::string>{"2026-03-08", "2026-03-09"}));
  EXPECT_EQ(DueBillDates(at + 60s, 8 * 3600, 600, 3),
            (std::vector<std::string>{"2026-03-08", "2026-03-09", "2026-03-10"}));
  // In UTC the same instant is already 2026-03-11, 01:59 past midnight.
  EXPECT_EQ(DueBillDates(at, 0, 0, 1), (std::vector<std::string>{"2026-03-10"}));
}

TEST_F(ScheduleTest, DownloadsTheDueBillOnceAndImportsIt) {
  // Order ids as the payments service makes them: pay_ and 20..40 lower-case letters and digits.
  const std::string run = fmt::format("{:014}", getpid() % 100000000);
  Pay("pay_scheda" + run, 10000);
  Pay("pay_schedb" + run, 2500);
  const std::string day = ChinaDateOf(std::chrono::system_clock::now());

  // Today's bill is not due today: nothing is fetched.
  BillScheduler early(io_.get_executor(), *pool_, reconcilers_, AdapterBillFetcher(registry_),
                      Schedule(0h));
  const ScheduleRun none = Run(early.RunOnce());
  EXPECT_EQ(none.imported, 0);
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM recon_imports WHERE bill_date = '{}'", day)),
            0);

  // A day later it is: downloaded through the adapter (gzip, SHA-1 checked) and reconciled.
  BillScheduler scheduler(io_.get_executor(), *pool_, reconcilers_, AdapterBillFetcher(registry_),
                          Schedule(24h));
  const ScheduleRun first = Run(scheduler.RunOnce());
  EXPECT_EQ(first.imported, 1);
  EXPECT_EQ(first.failed, 0);
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM recon_imports WHERE bill_date = '{}' AND "
                               "principal = 'scheduler' AND provider = 'wechatpay' AND "
                               "merchant_account = 'wx1'",
                               day)),
            1);
  EXPECT_EQ(SqlInt("SELECT line_count FROM recon_imports"), 2);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_bill_items WHERE class = 'matched'"), 2);
  // The simulator's 0.6% fee: 60 + 15.
  EXPECT_EQ(SqlInt("SELECT fee_amount_minor FROM recon_imports"), 75);

  // The next round imports nothing new.
  const ScheduleRun second = Run(scheduler.RunOnce());
  EXPECT_EQ(second.imported, 0);
  EXPECT_EQ(second.skipped, 1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_imports"), 1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_audit WHERE action = 'import'"), 1);
}

}  // namespace
}  // namespace paygate::gateway::recon
