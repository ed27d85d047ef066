// Issue 8's "Done when", end to end in one process: a day of premium traffic through the real
// payments service and WeChat Pay adapter against the WeChat Pay simulator over real TLS (payments
// and a refund learnt by the janitor's status inquiries, so the ledger really posts them to the
// clearing account); the simulator's bills then made to disagree with it in every way the issue
// lists (through its test-control bill edits, the files staying in the real format with their
// summary and SHA-1); each day's bill downloaded through the adapter as the scheduler does and
// reconciled. Every disagreement must get its class, the fees and the settlement must be posted,
// and once finance has worked the exceptions and the next day's bill has come in, the clearing
// account must hold exactly zero (read from the ledger, not recomputed).
#include <utility>  // Before Asio (DESIGN.md §2).

#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "gateway/edge/asio_fwd.h"
#include "gateway/payments/janitor.h"
#include "gateway/payments/service.h"
#include "gateway/recon/reconcilers.h"
#include "gateway/recon/scheduler.h"
#include "ledger/db/migrations.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/postgres_ledger.h"
#include "ledger/recon/reconciler.h"
#include "ledger/recon/settlement.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/wechatpay_sim.h"
#include "tests/testing/run_async.h"

namespace paygate::recon {
namespace {

namespace asio = edge::asio;
using namespace std::chrono_literals;
using db::test::FreshDatabase;
using db::test::In;
using db::test::MakePoolOptions;
using testing::WechatPaySim;

const std::string kClearing = "provider_clearing:wechatpay:wx1";
const std::string kFees = "provider_fees:wechatpay";
const std::string kBank = "bank:settlement";

// The China calendar day of `t` and the day after it, "YYYY-MM-DD".
std::string ChinaDate(std::chrono::system_clock::time_point t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t + 8h);
  std::tm tm{};
  gmtime_r(&s, &tm);
  return fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

// The simulator's bill day is the China calendar day of the payments: keep clear of its midnight
// (and of the cut-off window before it), which would move the day under the test.
void WaitClearOfChinaMidnight() {
  for (;;) {
    const auto now = std::chrono::system_clock::now();
    const std::int64_t china = std::chrono::system_clock::to_time_t(now + 8h);
    const std::int64_t to_midnight = 86400 - china % 86400;
    if (to_midnight > 200) break;
    std::this_thread::sleep_for(std::chrono::seconds(to_midnight + 2));
  }
}

std::int64_t Count(const Report& report, const std::string& klass) {
  auto it = report.classes.find(klass);
  return it == report.classes.end() ? 0 : it->second.count;
}

class ReconE2eTest : public ::testing::Test {
 public:
  ReconE2eTest() : work_(io_.get_executor()) {
    sim_ = std::make_unique<WechatPaySim>();
    registry_ = std::make_shared<payments::AdapterRegistry>();
    registry_->Add("wx1", sim_->adapter());
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    pool_ = std::make_unique<db::PgPool>(io_.get_executor(), MakePoolOptions(FreshDatabase(), 8));
    auto applied = Run(db::ApplyMigrations(*pool_, In(30s)));
    EXPECT_TRUE(applied) << applied.error().message;
    ledger_ = std::make_shared<ledger::PostgresLedger>(*pool_, io_.get_executor(),
                                                       ledger::PostgresLedgerOptions{});
    payments::PaymentsOptions options;
    options.currencies = {"CNY"};
    // Callbacks go nowhere (refused at once): the janitor's inquiries learn every outcome.
    options.callback_base_url = "https://127.0.0.1:1";
    options.routes["wechat_native"] = {"wechatpay", "wx1"};
    service_ = std::make_shared<payments::PaymentService>(*pool_, *ledger_, registry_, options);
    auto chart = Run(service_->EnsureChartOfAccounts());
    EXPECT_TRUE(chart) << chart.error().message();
    Options recon;
    recon.cutoff_window = 120s;
    reconciler_ = std::make_unique<Reconciler>(*pool_, *ledger_, recon);
  }

  ~ReconE2eTest() override {
    Run(StopLedger(ledger_));
    reconciler_.reset();
    service_.reset();
    ledger_.reset();
    pool_->Close();
    work_.reset();
    for (auto& t : threads_) t.join();
    pool_.reset();
    // Pooled TLS connections belong to io_: released while it exists.
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

  Result<db::PgResult> Query(const std::string& sql) {
    return Run([this, sql]() -> asio::awaitable<Result<db::PgResult>> {
      auto lease = co_await pool_->Acquire(In(10s));
      if (!lease) co_return lease.error();
      co_return co_await lease.value()->ExecuteSimple(sql, In(10s));
    }());
  }
  std::int64_t SqlInt(const std::string& sql) {
    auto result = Query(sql);
    EXPECT_TRUE(result && result.value().rows() == 1) << sql;
    return result && result.value().rows() == 1 ? result.value().GetInt64(0, 0).value() : -1;
  }
  std::string SqlText(const std::string& sql) {
    auto result = Query(sql);
    EXPECT_TRUE(result && result.value().rows() == 1) << sql;
    return result && result.value().rows() == 1 ? std::string(result.value().GetText(0, 0).value())
                                                : std::string();
  }

  // Debits minus credits posted, from the ledger.
  std::int64_t Balance(const std::string& account) {
    auto b = Run(ledger_->GetBalance(ledger::AccountIdFor("CNY", account), std::nullopt, In(10s)));
    EXPECT_TRUE(b) << account;
    return b ? b.value().debits_posted - b.value().credits_posted : -1;
  }

  void Control(const std::string& path, const std::string& body) {
    auto reply = Run(sim_->Control(path, body));
    ASSERT_TRUE(reply.has_value()) << path;
    ASSERT_EQ(reply.assume_value().status, 200u) << path << ": " << reply.assume_value().body;
  }
  void EditBill(const std::string& fields) {
    Control("bills/edit", fmt::format(R"({{"mchid":"{}",{}}})", WechatPaySim::kMchid, fields));
  }

  struct Paid {
    std::string id;         // pay_...
    std::string reference;  // out_trade_no
  };
  // A payment made through the service; the payer pays it at the simulator.
  Paid Pay(const std::string& key, std::int64_t amount) {
    api::v1::CreatePaymentRequest request;
    request.set_policy_number("POL-" + key);
    request.set_payer_id("cust-" + key);
    request.set_amount_minor(amount);
    request.set_currency("CNY");
    request.set_method("wechat_native");
    auto created = Run(service_->CreatePayment("sales", key, std::move(request)));
    EXPECT_TRUE(created) << (created ? "" : created.error().message);
    if (!created) return {};
    Paid paid{created.value().id(), ""};
    EXPECT_EQ(created.value().status(), "pending");
    paid.reference = SqlText(fmt::format(
        "SELECT provider_reference FROM payment_attempts WHERE order_id = '{}' AND seq = 1",
        paid.id));
    Control("payments/complete",
            fmt::format(R"({{"mchid":"{}","out_trade_no":"{}","trade_state":"SUCCESS"}})",
                        WechatPaySim::kMchid, paid.reference));
    return paid;
  }

  // A refund of `amount` of `payment` made through the service (client reference "r"); the
  // provider completes it at the simulator. Its id and its out_refund_no.
  Paid RefundAtProvider(const Paid& payment, std::int64_t amount) {
    api::v1::CreateRefundRequest request;
    request.set_amount_minor(amount);
    auto refund = Run(service_->CreateRefund("sales", "r", payment.id, request));
    EXPECT_TRUE(refund) << (refund ? "" : refund.error().message);
    if (!refund) return {};
    Paid made{refund.value().id(), ""};
    made.reference = SqlText(
        fmt::format("SELECT provider_reference FROM payment_refunds WHERE id = '{}'", made.id));
    Control("refunds/complete",
            fmt::format(R"({{"mchid":"{}","out_refund_no":"{}","status":"SUCCESS"}})",
                        WechatPaySim::kMchid, made.reference));
    return made;
  }

  // Makes every open status inquiry due and runs one janitor round (a clock jump).
  void Inquire() {
    SqlInt("WITH u AS (UPDATE janitor_tasks SET due_at = now() - interval '1 second' "
           "WHERE NOT manual AND kind IN ('inquire_attempt', 'inquire_refund') RETURNING 1) "
           "SELECT count(*) FROM u");
    payments::Janitor janitor(io_.get_executor(), service_, payments::JanitorOptions{});
    Run(janitor.RunOnce());
  }

  std::string PaymentStatus(const std::string& id) {
    auto p = Run(service_->GetPayment("sales", id));
    EXPECT_TRUE(p);
    return p ? p.value().status() : "";
  }

  // The day's bill downloaded through the adapter (gzip, SHA-1 checked) as the scheduler does,
  // and reconciled.
  Report Reconcile(const std::string& day, Reconciler* reconciler = nullptr) {
    auto fetch = gateway::recon::AdapterBillFetcher(registry_);
    auto bill = Run(fetch("wechatpay", "wx1", day));
    EXPECT_TRUE(bill) << (bill ? "" : bill.error());
    if (!bill) return {};
    ImportRequest request{.provider = "wechatpay",
                          .merchant_account = "wx1",
                          .bill_date = day,
                          .file_name = bill.value().file_name,
                          .principal = "finance"};
    Reconciler& importer = reconciler != nullptr ? *reconciler : *reconciler_;
    auto report = Run(importer.Import(std::move(request), bill.value().bytes, In(60s)));
    EXPECT_TRUE(report) << (report ? "" : report.error().message);
    return report ? report.value() : Report{};
  }

  std::vector<Exception> Exceptions(const std::string& day) {
    ExceptionFilter filter;
    filter.provider = "wechatpay";
    filter.bill_date = day;
    auto list = Run(reconciler_->ListExceptions(filter, In(10s)));
    EXPECT_TRUE(list);
    return list ? list.value() : std::vector<Exception>{};
  }

  void Resolve(const Exception& e, bool adjust) {
    auto done = Run(reconciler_->Resolve(e.id, adjust ? "accepted the provider's figure"
                                                      : "the inquiry confirmed the payment",
                                         adjust, "finance-1", In(10s)));
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_EQ(done.value().status, "resolved");
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<WechatPaySim> sim_;
  std::shared_ptr<payments::AdapterRegistry> registry_;
  std::vector<std::thread> threads_;
  std::unique_ptr<db::PgPool> pool_;
  std::shared_ptr<ledger::PostgresLedger> ledger_;
  std::shared_ptr<payments::PaymentService> service_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST_F(ReconE2eTest, EveryDisagreementClassifiedAndTheClearingAccountSettlesToZero) {
  WaitClearOfChinaMidnight();
  const std::string day = ChinaDate(std::chrono::system_clock::now());
  const std::string next_day = ChinaDate(std::chrono::system_clock::now() + 24h);

  // ---- The day's traffic, learnt by inquiry. ----
  const Paid a = Pay("a", 10000);  // agrees, but its fee is changed
  const Paid b = Pay("b", 20000);  // dropped from the bill
  const Paid c = Pay("c", 30000);  // the bill says 290.00
  const Paid d = Pay("d", 40000);  // agrees; partly refunded
  const Paid g = Pay("g", 60000);  // booked by the provider after the cut-off
  Inquire();
  for (const Paid* p : {&a, &b, &c, &d, &g}) EXPECT_EQ(PaymentStatus(p->id), "succeeded");
  const Paid refund = RefundAtProvider(d, 15000);
  ASSERT_FALSE(refund.id.empty());
  Inquire();
  auto refunded = Run(service_->GetRefund("sales", refund.id));
  ASSERT_TRUE(refunded);
  EXPECT_EQ(refunded.value().status(), "succeeded");
  // Paid at the provider; we have not learnt it yet (its callback never arrived).
  const Paid e = Pay("e", 50000);
  EXPECT_EQ(PaymentStatus(e.id), "pending");
  // Our side recorded g's success just before midnight; the provider books it just after.
  ASSERT_TRUE(Query(fmt::format("UPDATE payment_attempts SET updated_at = '{} 23:59:30+08' WHERE "
                    "provider_reference = '{}'",
                                day, g.reference)));
  // Premiums paid in, one refund out: the clearing account holds what the provider owes us.
  EXPECT_EQ(Balance(kClearing), 10000 + 20000 + 30000 + 40000 + 60000 - 15000);

  // ---- The provider's bill disagrees in every way. ----
  const std::string extra = fmt::format("pay_extra{:014}_1", getpid());
  EditBill(fmt::format(R"("kind":"BILL_EDIT_DROP","out_trade_no":"{}")", b.reference));
  EditBill(fmt::format(R"("kind":"BILL_EDIT_ADD","out_trade_no":"{}","amount":7000,"time":"{} 12:00:00")",
                       extra, day));
  EditBill(fmt::format(R"("kind":"BILL_EDIT_AMOUNT","out_trade_no":"{}","amount":29000)", c.reference));
  EditBill(fmt::format(R"("kind":"BILL_EDIT_STATUS","out_refund_no":"{}","status":"PROCESSING")",
                       refund.reference));
  EditBill(fmt::format(R"("kind":"BILL_EDIT_FEE","out_trade_no":"{}","fee":123)", a.reference));
  EditBill(fmt::format(R"("kind":"BILL_EDIT_MOVE","out_trade_no":"{}","time":"{} 00:00:30")",
                       g.reference, next_day));

  // The inquiry of e is not due yet (the first comes a minute after the create).
  const std::string e_inquiry_due = fmt::format(
      "SELECT count(*) FROM janitor_tasks WHERE kind = 'inquire_attempt' AND object_id = '{}' AND "
      "due_at <= now() AND NOT manual",
      e.reference);
  EXPECT_EQ(SqlInt(e_inquiry_due), 0);

  const Report first = Reconcile(day);
  // Lines: a, c, d, the refund, e and the extra one (b dropped, g moved to the next day).
  EXPECT_EQ(first.lines, 6);
  EXPECT_EQ(Count(first, "matched"), 2);  // a (fee aside) and d
  EXPECT_EQ(Count(first, "amount_mismatch"), 1);
  EXPECT_EQ(Count(first, "status_mismatch"), 2);
  EXPECT_EQ(Count(first, "missing_ours"), 1);
  EXPECT_EQ(Count(first, "missing_provider"), 1);
  EXPECT_EQ(Count(first, "timing"), 1);
  EXPECT_EQ(first.classes.count("duplicate"), 0u);

  std::map<std::string, Exception> by_reference;
  for (Exception& x : Exceptions(day)) by_reference[x.reference] = x;
  ASSERT_EQ(by_reference.size(), 6u);
  ASSERT_TRUE(by_reference.count(b.reference) && by_reference.count(c.reference) &&
              by_reference.count(refund.reference) && by_reference.count(e.reference) &&
              by_reference.count(extra) && by_reference.count(g.reference));
  const Exception& missing_provider = by_reference[b.reference];
  EXPECT_EQ(missing_provider.klass, "missing_provider");
  EXPECT_EQ(missing_provider.our_id, b.id + ":1");
  EXPECT_EQ(missing_provider.delta_minor, 20000);
  const Exception& amount = by_reference[c.reference];
  EXPECT_EQ(amount.klass, "amount_mismatch");
  EXPECT_EQ(amount.our_amount_minor, 30000);
  EXPECT_EQ(amount.their_amount_minor, 29000);
  EXPECT_EQ(amount.delta_minor, 1000);
  const Exception& refund_status = by_reference[refund.reference];
  EXPECT_EQ(refund_status.klass, "status_mismatch");
  EXPECT_EQ(refund_status.our_kind, "refund");
  EXPECT_EQ(refund_status.delta_minor, -15000);  // our refund left; the provider's has not
  const Exception& unknown_to_us = by_reference[e.reference];
  EXPECT_EQ(unknown_to_us.klass, "status_mismatch");
  EXPECT_EQ(unknown_to_us.priority, 1);  // the provider says paid: the most urgent
  EXPECT_EQ(unknown_to_us.delta_minor, -50000);
  const Exception& missing_ours = by_reference[extra];
  EXPECT_EQ(missing_ours.klass, "missing_ours");
  EXPECT_EQ(missing_ours.our_id, "");
  EXPECT_EQ(missing_ours.delta_minor, -7000);
  const Exception& timing = by_reference[g.reference];
  EXPECT_EQ(timing.klass, "timing");
  EXPECT_EQ(timing.our_id, g.id + ":1");
  EXPECT_EQ(timing.delta_minor, 60000);
  // The status inquiry of e is due now.
  EXPECT_EQ(SqlInt(e_inquiry_due), 1);
  // The changed fee is on a's line, which still matches.
  EXPECT_EQ(SqlInt(fmt::format("SELECT fee_minor FROM recon_bill_items WHERE "
                               "merchant_reference = '{}' AND class = 'matched'",
                               a.reference)),
            123);

  // Fees: the simulator's 0.6% of each line (a's changed to 1.23), Dr provider_fees / Cr
  // clearing; the refund's returned fee (-90) does not count while its line says PROCESSING, as
  // its amount does not: it counts on the bill where the refund went through. The settlement, paid
  // minus refunded minus fees, Dr bank / Cr clearing. What stays in clearing is exactly what the
  // open exceptions explain.
  const std::int64_t day_fees = 123 + 180 + 240 + 300 + 42;
  const std::int64_t day_paid = 10000 + 29000 + 40000 + 50000 + 7000;
  EXPECT_EQ(first.fee_amount_minor, day_fees);
  EXPECT_EQ(Balance(kFees), day_fees);
  EXPECT_EQ(Balance(kBank), day_paid - day_fees);
  EXPECT_EQ(Balance(kClearing), 20000 + 1000 - 15000 - 50000 - 7000 + 60000);
  EXPECT_EQ(first.clearing_balance_minor, Balance(kClearing));
  EXPECT_EQ(first.drift_minor, 0);

  // ---- Finance works the exceptions. ----
  // The inquiry the reconciliation scheduled learns e's success (posted to clearing); nothing to
  // adjust.
  Inquire();
  EXPECT_EQ(PaymentStatus(e.id), "succeeded");
  Resolve(unknown_to_us, false);
  // The other differences are accepted as the provider states them: their deltas to suspense.
  for (const Exception* x : {&missing_provider, &amount, &refund_status, &missing_ours}) {
    Resolve(*x, true);
  }
  EXPECT_EQ(Balance("suspense"), 20000 + 1000 - 15000 - 7000);
  // Only the timing difference is left in clearing, waiting for the next day's bill.
  EXPECT_EQ(Balance(kClearing), 60000);

  // ---- The next day's bill holds g: the timing difference settles itself. ----
  const Report second = Reconcile(next_day);
  EXPECT_EQ(second.lines, 1);
  EXPECT_EQ(Count(second, "matched"), 1);
  EXPECT_EQ(second.classes.size(), 1u);
  EXPECT_EQ(SqlText(fmt::format("SELECT status FROM recon_exceptions WHERE id = {}", timing.id)),
            "resolved");
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_exceptions WHERE status IN ('open', 'assigned')"),
            0);
  EXPECT_EQ(Balance(kFees), day_fees + 360);
  EXPECT_EQ(Balance(kBank), day_paid - day_fees + 60000 - 360);
  EXPECT_EQ(Balance(kClearing), 0);
  EXPECT_EQ(second.clearing_balance_minor, 0);
  EXPECT_EQ(second.drift_minor, 0);
  // Each item matched once: every attempt and the refund by exactly one current line.
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_bill_items WHERE our_id IS NOT NULL AND NOT "
                   "superseded"),
            6);  // a, c, d, the refund, e, g
}

// An account configured with settle_on_import false (recon.accounts[]): its day's import posts
// the fees but leaves the net in clearing, explained rather than drift, until the provider's one
// net settlement line for the whole day arrives; that line posts Dr bank / Cr clearing and the
// clearing account is at exactly zero.
TEST_F(ReconE2eTest, DaySettledByOneNetSettlementLine) {
  WaitClearOfChinaMidnight();
  const std::string day = ChinaDate(std::chrono::system_clock::now());
  const Paid a = Pay("a", 10000);
  const Paid b = Pay("b", 20000);
  const Paid d = Pay("d", 40000);
  Inquire();
  for (const Paid* p : {&a, &b, &d}) EXPECT_EQ(PaymentStatus(p->id), "succeeded");
  const Paid refund = RefundAtProvider(d, 15000);
  ASSERT_FALSE(refund.id.empty());
  Inquire();
  EXPECT_EQ(Balance(kClearing), 70000 - 15000);

  // The account as the daemon's configuration sets it up.
  config::v1::Recon section;
  section.set_cutoff_window_s(120);
  auto* account = section.add_accounts();
  account->set_provider("wechatpay");
  account->set_merchant_account("wx1");
  account->set_settle_on_import(false);
  gateway::recon::Reconcilers reconcilers(section, *pool_, *ledger_);
  ASSERT_FALSE(reconcilers.For("wechatpay", "wx1").options().settle_on_import);

  // Fees, the simulator's 0.6% of each line (the refund's returned).
  const std::int64_t fees = 60 + 120 + 240 - 90;
  const std::int64_t net = 70000 - 15000 - fees;
  const Report report = Reconcile(day, &reconcilers.For("wechatpay", "wx1"));
  EXPECT_EQ(report.lines, 4);
  EXPECT_EQ(Count(report, "matched"), 4);
  EXPECT_EQ(report.fee_amount_minor, fees);
  EXPECT_EQ(Balance(kFees), fees);
  EXPECT_EQ(Balance(kBank), 0);
  EXPECT_EQ(Balance(kClearing), net);
  EXPECT_EQ(report.clearing_balance_minor, net);
  EXPECT_EQ(report.explained_minor, net);
  EXPECT_EQ(report.drift_minor, 0);

  // The provider's settlement report: one line for the day.
  SettlementRequest line;
  line.provider = "wechatpay";
  line.merchant_account = "wx1";
  line.provider_reference = "WXSETTLE-" + day;
  line.value_date = ChinaDate(std::chrono::system_clock::now() + 24h);
  line.amount_minor = net;
  line.bill_date = day;
  line.principal = "finance-1";
  auto settled = Run(reconcilers.Settle(line, In(30s)));
  ASSERT_TRUE(settled) << settled.error().message;
  EXPECT_EQ(settled.value().lines, 4);
  EXPECT_EQ(settled.value().expected_minor, net);
  EXPECT_EQ(settled.value().exception_id, 0);
  EXPECT_EQ(Balance(kBank), net);
  EXPECT_EQ(Balance(kClearing), 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlement_items"), 4);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_exceptions"), 0);
  // The settlement file downloaded again: the first answer, nothing posted twice.
  auto again = Run(reconcilers.Settle(line, In(30s)));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again.value().already_settled);
  EXPECT_EQ(Balance(kBank), net);
  EXPECT_EQ(Balance(kClearing), 0);
}

}  // namespace
}  // namespace paygate::recon
