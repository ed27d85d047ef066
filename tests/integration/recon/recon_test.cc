// Reconciliation against a real PostgreSQL and the real ledger (issue 8, "Done when"): a day of
// collections and a refund on our side, premiums posted to the clearing account as the payments
// service posts them; a WeChat Pay trade bill in the real format (the writer the simulator uses)
// made to disagree in every way: a dropped line, an extra line, a changed amount, a changed
// status, fees, a line only the rules can match, and a payment after the cut-off. Proves each
// disagreement is classified right, fees and settlement are posted in the import's transaction,
// the clearing account's drift is fully explained, re-importing changes nothing, a corrected
// file is a new version with a diff, resolving with adjustments is audited, and the clearing
// account is at zero once the day (and the next day's bill carrying the late payment) is settled.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "adapters/wechatpay/bill.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/postgres_ledger.h"
#include "ledger/recon/reconciler.h"
#include "ledger/recon/settlement.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/run_async.h"
#include "tests/testing/wechat_bill_rows.h"

namespace paygate::recon {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using adapters::wechatpay::TradeBillRow;
using db::test::FreshDatabase;
using db::test::In;
using db::test::MakePoolOptions;

constexpr const char* kDay = "2026-03-10";
constexpr const char* kNextDay = "2026-03-11";
constexpr const char* kMchid = "1900000109";

using testing::RunUntilDone;

void RunUntilDone(asio::io_context& io, asio::awaitable<void> task) {
  bool done = false;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr) { done = true; });
  io.restart();
  while (!done) io.run_one();
}

// Our side of one payment, as the payments service leaves it.
struct Payment {
  std::string order_id;
  std::int64_t amount = 0;
  std::string at;  // China time "HH:MM:SS" on kDay
  bool succeeded = true;
  std::string reference() const { return order_id + "_1"; }
  std::string txid() const { return "4200000" + order_id.substr(order_id.size() - 12); }
};

class ReconTest : public ::testing::Test {
 public:
  ReconTest() : pool_(io_.get_executor(), MakePoolOptions(FreshDatabase(), 4)) {
    auto applied = RunUntilDone(io_, db::ApplyMigrations(pool_, In(30s)));
    EXPECT_TRUE(applied) << applied.error().message;
    ledger::PostgresLedgerOptions options;
    options.batcher.batch_wait_max_us = 200us;
    ledger_ = std::make_unique<ledger::PostgresLedger>(pool_, io_.get_executor(), options);
    ledger::ChartSpec spec;
    spec.currency = "CNY";
    spec.clearing.push_back({"wechatpay", "m1"});
    auto created = RunUntilDone(io_, ledger_->CreateAccounts(ledger::StandardChart(spec), In(10s)));
    EXPECT_TRUE(created);
    Options recon_options;
    recon_options.amount_tolerance_minor = 0;
    recon_options.rule_window = 600s;
    recon_options.cutoff_window = 300s;
    reconciler_ = std::make_unique<Reconciler>(pool_, *ledger_, recon_options);
  }
  ~ReconTest() override {
    RunUntilDone(io_, ledger_->Stop());
    ledger_.reset();
  }

  Result<db::PgResult> Sql(std::string sql) {
    return RunUntilDone(io_, [this, sql]() -> asio::awaitable<Result<db::PgResult>> {
      auto lease = co_await pool_.Acquire(In(10s));
      if (!lease) co_return lease.error();
      co_return co_await lease.value()->ExecuteSimple(sql, In(10s));
    }());
  }
  std::int64_t SqlInt(std::string sql) {
    auto r = Sql(sql);
    EXPECT_TRUE(r) << sql;
    return r && r.value().rows() == 1 ? r.value().GetInt64(0, 0).value() : -999999;
  }
  std::string SqlText(std::string sql) {
    auto r = Sql(sql);
    EXPECT_TRUE(r) << sql;
    return r && r.value().rows() == 1 ? std::string(r.value().GetText(0, 0).value()) : "";
  }

  // An order, its attempt and (when it succeeded) the premium posting, as payments writes them.
  void AddPayment(const Payment& p, const std::string& day = kDay) {
    const std::string ts = fmt::format("{}T{}+08:00", day, p.at);
    auto r = Sql(fmt::format(
        "INSERT INTO payment_orders (id, principal, client_reference, policy_number, amount_minor, "
        "currency, method, provider, merchant_account, status, captured_minor, expires_at, "
        "created_at, updated_at) VALUES ('{0}', 'sales', '{0}', 'POL-1', {1}, 'CNY', "
        "'wechat_native', 'wechatpay', 'm1', '{2}', {3}, '{4}'::timestamptz + interval '1 hour', "
        "'{4}', '{4}'); "
        "INSERT INTO payment_attempts (order_id, seq, provider, merchant_account, "
        "provider_reference, routing_reason, status, provider_transaction_id, created_at, "
        "updated_at) VALUES ('{0}', 1, 'wechatpay', 'm1', '{5}', 'route', '{6}', '{7}', '{4}', "
        "'{4}')",
        p.order_id, p.amount, p.succeeded ? "succeeded" : "failed", p.succeeded ? p.amount : 0, ts,
        p.reference(), p.succeeded ? "succeeded" : "declined", p.succeeded ? p.txid() : ""));
    ASSERT_TRUE(r) << p.order_id;
    if (p.succeeded) Post("premium:" + p.order_id, Clearing(), "premiums_received", p.amount);
  }

  void AddRefund(const std::string& refund_id, const Payment& p, std::int64_t amount,
                 const std::string& at) {
    const std::string ts = fmt::format("{}T{}+08:00", kDay, at);
    auto r = Sql(fmt::format(
        "UPDATE payment_orders SET refund_reserved_minor = {2}, refunded_minor = {2} "
        "WHERE id = '{1}'; "
        "INSERT INTO payment_refunds (id, order_id, principal, client_reference, amount_minor, "
        "currency, status, provider_reference, provider_transaction_id, created_at, updated_at) "
        "VALUES ('{0}', '{1}', 'sales', '{0}', {2}, 'CNY', 'succeeded', '{0}', '5030{3}', '{4}', "
        "'{4}')",
        refund_id, p.order_id, amount, refund_id.substr(3, 10), ts));
    ASSERT_TRUE(r);
    Post("refund:" + refund_id, "premiums_received", Clearing(), amount);
  }

  void Post(std::string id, std::string debit, std::string credit, std::int64_t amount) {
    ledger::Transfer t;
    t.id.value = std::move(id);
    t.debit_account_id = ledger::AccountIdFor("CNY", debit);
    t.credit_account_id = ledger::AccountIdFor("CNY", credit);
    t.amount = amount;
    t.currency = "CNY";
    t.reason_code = 1;
    auto results = RunUntilDone(io_, ledger_->PostTransfers({t}, In(10s)));
    ASSERT_TRUE(results);
    ASSERT_EQ(results.value()[0], ledger::TransferResult::kOk);
  }

  static std::string Clearing() { return "provider_clearing:wechatpay:m1"; }

  std::int64_t ClearingBalance() {
    auto b = RunUntilDone(
        io_, ledger_->GetBalance(ledger::AccountIdFor("CNY", Clearing()), std::nullopt, In(10s)));
    EXPECT_TRUE(b);
    return b ? b.value().debits_posted - b.value().credits_posted : -1;
  }
  std::int64_t CreditsOf(const std::string& name) {
    auto b = RunUntilDone(io_, ledger_->GetBalance(ledger::AccountIdFor("CNY", name),
                                                   std::nullopt, In(10s)));
    EXPECT_TRUE(b);
    return b ? b.value().credits_posted - b.value().debits_posted : -1;
  }

  static TradeBillRow Line(const Payment& p, std::int64_t amount, std::int64_t fee,
                           const std::string& day = kDay) {
    return testing::NativePaymentLine(fmt::format("{} {}", day, p.at), p.txid(), p.reference(),
                                      amount, fee, kMchid);
  }

  RResult<Report> Import(const std::string& day, const std::string& file) {
    ImportRequest request;
    request.provider = "wechatpay";
    request.merchant_account = "m1";
    request.bill_date = day;
    request.file_name = "tradebill.csv";
    request.principal = "finance-1";
    return RunUntilDone(io_, reconciler_->Import(request, file, In(60s)));
  }

  // The per-class totals a report reads (stored with the import) are what its rows add up to: the
  // bill's lines by class, and our items the bill lacked (exceptions without a line).
  void ExpectClassesMatchRows(const Report& report) {
    auto rows = Sql(fmt::format(
        "SELECT class, count(*), coalesce(sum(our_amount_minor), 0)::bigint, "
        "coalesce(sum(amount_minor), 0)::bigint FROM recon_bill_items WHERE import_id = {0} "
        "GROUP BY class UNION ALL "
        "SELECT class, count(*), coalesce(sum(our_amount_minor), 0)::bigint, 0::bigint "
        "FROM recon_exceptions WHERE import_id = {0} AND line_no IS NULL GROUP BY class",
        report.import_id));
    ASSERT_TRUE(rows);
    std::map<std::string, ClassTotals> want;
    for (int i = 0; i < rows.value().rows(); ++i) {
      ClassTotals& t = want[std::string(rows.value().GetText(i, 0).value())];
      t.count += rows.value().GetInt64(i, 1).value();
      t.our_amount_minor += rows.value().GetInt64(i, 2).value();
      t.their_amount_minor += rows.value().GetInt64(i, 3).value();
    }
    std::map<std::string, ClassTotals> got;
    for (const auto& [name, totals] : report.classes) {
      if (totals.count != 0) got[name] = totals;
    }
    ASSERT_EQ(got.size(), want.size()) << report.import_id;
    for (const auto& [name, totals] : want) {
      EXPECT_EQ(got[name].count, totals.count) << name;
      EXPECT_EQ(got[name].our_amount_minor, totals.our_amount_minor) << name;
      EXPECT_EQ(got[name].their_amount_minor, totals.their_amount_minor) << name;
    }
  }

  std::map<std::string, Exception> OpenExceptionsByReference() {
    ExceptionFilter filter;
    filter.status = "open";
    auto list = RunUntilDone(io_, reconciler_->ListExceptions(filter, In(10s)));
    EXPECT_TRUE(list);
    std::map<std::string, Exception> out;
    if (list) {
      for (auto& e : list.value()) out[e.reference] = e;
    }
    return out;
  }

  asio::io_context io_;
  db::PgPool pool_;
  std::unique_ptr<ledger::PostgresLedger> ledger_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST_F(ReconTest, DayWithEveryKindOfDisagreementSettlesToZero) {
  const Payment matched{"pay_aaaaaaaaaaaaaaaaaaaa01", 10000, "10:00:00"};
  const Payment by_txid{"pay_aaaaaaaaaaaaaaaaaaaa02", 10000, "10:30:00"};
  const Payment dropped{"pay_aaaaaaaaaaaaaaaaaaaa03", 10000, "12:00:00"};
  const Payment changed_amount{"pay_aaaaaaaaaaaaaaaaaaaa04", 10000, "13:00:00"};
  const Payment changed_status{"pay_aaaaaaaaaaaaaaaaaaaa05", 5000, "14:00:00", false};
  const Payment by_rule{"pay_aaaaaaaaaaaaaaaaaaaa07", 3300, "15:00:00"};
  const Payment late{"pay_aaaaaaaaaaaaaaaaaaaa06", 10000, "23:58:00"};
  const Payment extra{"pay_zzzzzzzzzzzzzzzzzzzz99", 7000, "16:00:00"};  // theirs only
  for (const Payment& p : {matched, by_txid, dropped, changed_amount, changed_status, by_rule,
                           late}) {
    AddPayment(p);
  }
  AddRefund("re_aaaaaaaaaaaaaaaaaaaa0001", matched, 2000, "18:00:00");
  // Premiums 10000 * 5 + 3300, the refund 2000.
  ASSERT_EQ(ClearingBalance(), 51300);

  std::vector<TradeBillRow> rows;
  rows.push_back(Line(matched, 10000, 60));
  TradeBillRow txid_only = Line(by_txid, 10000, 60);
  txid_only.out_trade_no = "SOMETHING_ELSE_02";  // our reference lost; the provider id holds
  rows.push_back(txid_only);
  rows.push_back(Line(changed_amount, 9000, 54));
  rows.push_back(Line(changed_status, 5000, 30));
  TradeBillRow rule_only = Line(by_rule, 3300, 0);
  rule_only.out_trade_no = "UNKNOWN_07";
  rule_only.transaction_id = "4200000999999999";
  rule_only.time = std::string(kDay) + " 15:02:00";
  rows.push_back(rule_only);
  rows.push_back(Line(extra, 7000, 42));
  TradeBillRow refund = Line(matched, 0, -12);
  refund.time = std::string(kDay) + " 18:00:05";
  refund.trade_state = "REFUND";
  refund.refund_id = "50300000000001";
  refund.out_refund_no = "re_aaaaaaaaaaaaaaaaaaaa0001";
  refund.refund_fen = 2000;
  refund.refund_status = "SUCCESS";
  rows.push_back(refund);
  // `dropped` and `late` are not in the bill.
  const std::string bill = adapters::wechatpay::FormatTradeBill(rows);

  auto report = Import(kDay, bill);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_FALSE(report.value().already_imported);
  EXPECT_EQ(report.value().version, 1);
  EXPECT_EQ(report.value().lines, 7);
  auto& classes = report.value().classes;
  EXPECT_EQ(classes["matched"].count, 4);  // matched, by_txid, by_rule, the refund
  EXPECT_EQ(classes["missing_ours"].count, 1);
  EXPECT_EQ(classes["missing_ours"].their_amount_minor, 7000);
  EXPECT_EQ(classes["missing_provider"].count, 1);
  EXPECT_EQ(classes["missing_provider"].our_amount_minor, 10000);
  EXPECT_EQ(classes["amount_mismatch"].count, 1);
  EXPECT_EQ(classes["status_mismatch"].count, 1);
  EXPECT_EQ(classes["timing"].count, 1);
  ExpectClassesMatchRows(report.value());

  // How each line matched.
  EXPECT_EQ(SqlText(fmt::format("SELECT match_rule FROM recon_bill_items WHERE our_id = '{}:1'",
                                by_txid.order_id)),
            "transaction_id");
  EXPECT_EQ(SqlText(fmt::format("SELECT match_rule FROM recon_bill_items WHERE our_id = '{}:1'",
                                by_rule.order_id)),
            "rule");
  EXPECT_EQ(SqlText(fmt::format("SELECT match_rule FROM recon_bill_items WHERE our_id = '{}:1'",
                                matched.order_id)),
            "reference");

  auto open = OpenExceptionsByReference();
  ASSERT_EQ(open.size(), 5u);
  EXPECT_EQ(open[dropped.reference()].klass, "missing_provider");
  EXPECT_EQ(open[dropped.reference()].delta_minor, 10000);
  EXPECT_EQ(open[extra.reference()].klass, "missing_ours");
  EXPECT_EQ(open[extra.reference()].delta_minor, -7000);
  EXPECT_EQ(open[changed_amount.reference()].klass, "amount_mismatch");
  EXPECT_EQ(open[changed_amount.reference()].delta_minor, 1000);
  EXPECT_EQ(open[changed_status.reference()].klass, "status_mismatch");
  EXPECT_EQ(open[changed_status.reference()].priority, 1);  // the most urgent
  EXPECT_EQ(open[changed_status.reference()].delta_minor, -5000);
  EXPECT_EQ(open[late.reference()].klass, "timing");
  // The provider says paid where we say declined: a status inquiry is due now.
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM janitor_tasks WHERE kind = 'inquire_attempt' "
                               "AND object_id = '{}' AND due_at <= now()",
                               changed_status.reference())),
            1);

  // Fees (60+60+54+30+0+42-12 = 234) and the settlement (paid 44300 - refunded 2000 - fees)
  // were posted with the results.
  EXPECT_EQ(report.value().fee_amount_minor, 234);
  EXPECT_EQ(CreditsOf("provider_fees:wechatpay"), -234);
  EXPECT_EQ(CreditsOf("bank:settlement"), -(44300 - 2000 - 234));
  // Balance reconciliation: what the clearing account still holds is exactly what the open
  // exceptions explain (10000 - 7000 + 1000 - 5000 + 10000).
  EXPECT_EQ(ClearingBalance(), 9000);
  EXPECT_EQ(report.value().clearing_balance_minor, 9000);
  EXPECT_EQ(report.value().explained_minor, 9000);
  EXPECT_EQ(report.value().drift_minor, 0);

  // Re-importing the same file changes nothing.
  const std::int64_t items_before = SqlInt("SELECT count(*) FROM recon_bill_items");
  auto again = Import(kDay, bill);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again.value().already_imported);
  EXPECT_EQ(again.value().import_id, report.value().import_id);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_bill_items"), items_before);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_exceptions"), 5);
  EXPECT_EQ(ClearingBalance(), 9000);

  // A corrected file (the provider fixes the changed amount) is version 2 with a diff; it
  // supersedes version 1 and posts only the difference.
  rows[2] = Line(changed_amount, 10000, 60);
  auto corrected = Import(kDay, adapters::wechatpay::FormatTradeBill(rows));
  ASSERT_TRUE(corrected) << corrected.error().message;
  EXPECT_EQ(corrected.value().version, 2);
  EXPECT_EQ(corrected.value().diff_changed, 1);
  EXPECT_EQ(corrected.value().diff_added, 0);
  EXPECT_EQ(corrected.value().diff_removed, 0);
  EXPECT_EQ(SqlText(fmt::format("SELECT state FROM recon_imports WHERE id = {}",
                                report.value().import_id)),
            "superseded");
  EXPECT_EQ(corrected.value().classes["amount_mismatch"].count, 0);
  ExpectClassesMatchRows(corrected.value());
  EXPECT_EQ(CreditsOf("provider_fees:wechatpay"), -240);
  EXPECT_EQ(ClearingBalance(), 8000);
  EXPECT_EQ(corrected.value().drift_minor, 0);
  open = OpenExceptionsByReference();
  ASSERT_EQ(open.size(), 4u);

  // Finance resolves the rest, accepting the differences into suspense; every action audited.
  for (const Payment* p : {&dropped, &extra, &changed_status}) {
    const std::int64_t id = open[p->reference()].id;
    auto assigned = RunUntilDone(io_, reconciler_->Assign(id, "alice", "finance-1", In(10s)));
    ASSERT_TRUE(assigned);
    auto commented = RunUntilDone(
        io_, reconciler_->Comment(id, "checked with the provider", "finance-1", In(10s)));
    ASSERT_TRUE(commented);
    auto resolved = RunUntilDone(
        io_, reconciler_->Resolve(id, "accepted difference", true, "finance-2", In(10s)));
    ASSERT_TRUE(resolved) << resolved.error().message;
    EXPECT_EQ(resolved.value().adjustment_transfer_id, fmt::format("recon:adj:{}", id));
    // Resolving twice is refused.
    auto twice = RunUntilDone(
        io_, reconciler_->Resolve(id, "accepted difference", true, "finance-2", In(10s)));
    ASSERT_FALSE(twice);
    EXPECT_EQ(twice.error().code, make_error_code(Errc::invalid_state));
  }
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_audit WHERE principal = 'finance-2' AND "
                   "action = 'resolve'"),
            3);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_audit WHERE action = 'import'"), 2);
  EXPECT_FALSE(Sql("DELETE FROM recon_audit"));  // append-only
  // Imports are never deleted (their lines name them without a foreign key).
  EXPECT_FALSE(Sql(fmt::format("DELETE FROM recon_imports WHERE id = {}",
                               report.value().import_id)));
  EXPECT_FALSE(Sql("TRUNCATE recon_imports CASCADE"));
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_imports"), 2);
  // Only the late payment remains: the timing difference.
  EXPECT_EQ(ClearingBalance(), 10000);
  EXPECT_EQ(CreditsOf("suspense"), -(10000 - 7000 - 5000));

  // The next day's bill carries the late payment: its timing exception resolves itself and the
  // clearing account is at zero.
  auto next = Import(kNextDay, adapters::wechatpay::FormatTradeBill({Line(late, 10000, 60)}));
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(next.value().classes["matched"].count, 1);
  ExpectClassesMatchRows(next.value());
  EXPECT_EQ(SqlText(fmt::format("SELECT status FROM recon_exceptions WHERE our_id = '{}:1' AND "
                                "status <> 'superseded'",
                                late.order_id)),
            "resolved");
  EXPECT_EQ(ClearingBalance(), 0);
  EXPECT_EQ(next.value().drift_minor, 0);
  EXPECT_TRUE(OpenExceptionsByReference().empty());
}

// Each of our items matches at most one line of the current bills: a line naming an item that
// another line took is a duplicate, and the unique index refuses a second claim outright.
TEST_F(ReconTest, ItemMatchesAtMostOnce) {
  const Payment p{"pay_bbbbbbbbbbbbbbbbbbbb01", 4200, "09:00:00"};
  AddPayment(p);
  TradeBillRow first = Line(p, 4200, 0);
  TradeBillRow second = Line(p, 4200, 0);
  second.transaction_id = "4200000777777777";
  auto report = Import(kDay, adapters::wechatpay::FormatTradeBill({first, second}));
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report.value().classes["matched"].count, 1);
  EXPECT_EQ(report.value().classes["duplicate"].count, 1);
  auto claim = Sql(fmt::format(
      "INSERT INTO recon_bill_items SELECT import_id, 99, kind, provider_transaction_id, "
      "merchant_reference, provider_refund_id, refund_reference, amount_minor, fee_minor, "
      "currency, occurred_at, status, class, match_rule, our_kind, our_id, our_amount_minor, "
      "false FROM recon_bill_items WHERE our_id = '{}:1'",
      p.order_id));
  EXPECT_FALSE(claim);
}

// The claims index (an item matches at most one current line) compares bytes, collation "C": in
// a language collation its million inserts an import makes cost 0.7 s more, 2.3 s more when
// the bill's order is not our ids' (0017). The look-ups that ask whether an item is taken must
// still use it: a collation the query does not share would turn each probe into a scan.
TEST_F(ReconTest, ClaimsIndexComparesBytesAndServesTheClaimLookups) {
  EXPECT_EQ(SqlText("SELECT string_agg(c.collname, ',' ORDER BY k.n) FROM pg_index i, "
                    "unnest(i.indcollation::oid[]) WITH ORDINALITY AS k(oid, n) "
                    "JOIN pg_collation c ON c.oid = k.oid "
                    "WHERE i.indexrelid = 'recon_bill_items_our_once'::regclass"),
            "C,C");
  // The probe as CopyItemsSql and the balance reconciliation write it (an id built from the
  // attempt's columns), with scans off so that only an unusable index would show a scan (on
  // this test's own pool's connection; the last statement's result is returned).
  auto plan =
      Sql("SET enable_seqscan = off; SET enable_bitmapscan = off; "
          "EXPLAIN SELECT 1 FROM recon_bill_items b WHERE b.our_kind = 'attempt' "
          "AND b.our_id = 'pay_x' || ':' || 1 AND NOT b.superseded");
  ASSERT_TRUE(plan);
  std::string text;
  for (int i = 0; i < plan.value().rows(); ++i) text += plan.value().GetText(i, 0).value();
  EXPECT_NE(text.find("recon_bill_items_our_once"), std::string::npos) << text;
}

// A bill whose summary disagrees with its rows is refused whole: nothing is written.
TEST_F(ReconTest, BadFileWritesNothing) {
  const Payment p{"pay_cccccccccccccccccccc01", 4200, "09:00:00"};
  AddPayment(p);
  std::string bill = adapters::wechatpay::FormatTradeBill({Line(p, 4200, 0)});
  const auto at = bill.rfind("`42.00");
  ASSERT_NE(at, std::string::npos);
  bill.replace(at, 6, "`43.00");
  auto report = Import(kDay, bill);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, make_error_code(Errc::bad_file));
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_imports"), 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_bill_items"), 0);
  EXPECT_EQ(ClearingBalance(), 4200);
}

// Many-to-one net settlement (settlement.h): an account whose imports leave the day's net for the
// provider's settlement line.

// Two payments and a refund; the bill's lines, with fees. The net the provider owes: 10000 + 5000
// - 2000 - (60 + 30 - 12) = 12922.
struct NetDay {
  Payment a{"pay_nnnnnnnnnnnnnnnnnnnn01", 10000, "10:00:00"};
  Payment b{"pay_nnnnnnnnnnnnnnnnnnnn02", 5000, "11:00:00"};
  std::string refund_id = "re_nnnnnnnnnnnnnnnnnnnn0001";
  static constexpr std::int64_t kNet = 12922;
};

class SettlementTest : public ReconTest {
 public:
  SettlementTest() {
    Options options = reconciler_->options();
    options.settle_on_import = false;
    later_ = std::make_unique<Reconciler>(pool_, *ledger_, options);
  }

  // Our side of a NetDay: its two payments and the refund of a.
  void AddNetDay(const NetDay& d) {
    AddPayment(d.a);
    AddPayment(d.b);
    AddRefund(d.refund_id, d.a, 2000, "12:00:00");
  }

  RResult<Report> ImportLater(const std::string& file) {
    ImportRequest request;
    request.provider = "wechatpay";
    request.merchant_account = "m1";
    request.bill_date = kDay;
    request.file_name = "tradebill.csv";
    request.principal = "finance-1";
    return RunUntilDone(io_, later_->Import(request, file, In(60s)));
  }

  RResult<Settlement> Settle(const std::string& reference, std::int64_t amount,
                             std::vector<std::string> references = {}) {
    SettlementRequest request;
    request.provider = "wechatpay";
    request.merchant_account = "m1";
    request.provider_reference = reference;
    request.value_date = kNextDay;
    request.amount_minor = amount;
    request.references = std::move(references);
    if (request.references.empty()) request.bill_date = kDay;
    request.principal = "finance-2";
    return RunUntilDone(io_, SettleNet(pool_, *ledger_, later_->options(), request, In(30s)));
  }

  // The bank's balance, debits minus credits.
  std::int64_t Bank() { return -CreditsOf("bank:settlement"); }

  // What the import's balance reconciliation counts as waiting for a settlement line.
  std::int64_t Unsettled() {
    auto net = RunUntilDone(io_, [this]() -> asio::awaitable<Result<std::int64_t>> {
      auto lease = co_await pool_.Acquire(In(10s));
      if (!lease) co_return lease.error();
      co_return co_await UnsettledNetMinor(*lease.value(), "wechatpay", "m1", "CNY", In(10s));
    }());
    EXPECT_TRUE(net);
    return net ? net.value() : -999999;
  }

  std::unique_ptr<Reconciler> later_;
};

// A NetDay's bill lines, b's with the given amount and fee; a corrected bill changes them.
std::vector<TradeBillRow> NetDayRows(const NetDay& d, std::int64_t b_amount = 5000,
                                     std::int64_t b_fee = 30) {
  TradeBillRow refund = ReconTest::Line(d.a, 0, -12);
  refund.time = std::string(kDay) + " 12:00:05";
  refund.trade_state = "REFUND";
  refund.refund_id = "50300000000009";
  refund.out_refund_no = d.refund_id;
  refund.refund_fen = 2000;
  refund.refund_status = "SUCCESS";
  return {ReconTest::Line(d.a, 10000, 60), ReconTest::Line(d.b, b_amount, b_fee), refund};
}

std::string NetDayBill(const NetDay& d) {
  return adapters::wechatpay::FormatTradeBill(NetDayRows(d));
}

TEST_F(SettlementTest, ExactNetPostsBankAndEmptiesClearingOnceAndReplaysTheFirstAnswer) {
  const NetDay d;
  AddNetDay(d);
  auto report = ImportLater(NetDayBill(d));
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report.value().classes["matched"].count, 3);
  // The import posted the fees, not the net: the clearing account holds the day's net, which
  // waits for its settlement line and so is explained, not drift.
  EXPECT_EQ(ClearingBalance(), NetDay::kNet);
  EXPECT_EQ(Bank(), 0);
  EXPECT_EQ(report.value().clearing_balance_minor, NetDay::kNet);
  EXPECT_EQ(report.value().explained_minor, NetDay::kNet);
  EXPECT_EQ(report.value().drift_minor, 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_imports WHERE settled_on_import"), 0);

  auto settled = Settle("SETTLE-0001", NetDay::kNet);
  ASSERT_TRUE(settled) << settled.error().message;
  const Settlement& s = settled.value();
  EXPECT_FALSE(s.already_settled);
  EXPECT_EQ(s.lines, 3);
  EXPECT_EQ(s.expected_minor, NetDay::kNet);
  EXPECT_EQ(s.delta_minor, 0);
  EXPECT_EQ(s.exception_id, 0);
  EXPECT_EQ(s.transfer_id, fmt::format("recon:net:{}", s.id));
  EXPECT_EQ(ClearingBalance(), 0);
  EXPECT_EQ(Bank(), NetDay::kNet);
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM ledger_transfers WHERE id = "
                               "'recon:net:{}'", s.id)),
            1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlement_items"), 3);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_exceptions"), 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_audit WHERE action = 'settle'"), 1);

  // The same settlement line again, even misread: the first answer, nothing posted.
  auto replay = Settle("SETTLE-0001", NetDay::kNet + 999);
  ASSERT_TRUE(replay) << replay.error().message;
  EXPECT_TRUE(replay.value().already_settled);
  EXPECT_EQ(replay.value().id, s.id);
  EXPECT_EQ(replay.value().amount_minor, NetDay::kNet);
  EXPECT_EQ(replay.value().transfer_id, s.transfer_id);
  EXPECT_EQ(Bank(), NetDay::kNet);
  EXPECT_EQ(ClearingBalance(), 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlements"), 1);

  // Another settlement line for the same day finds nothing left to settle.
  auto again = Settle("SETTLE-0002", NetDay::kNet);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, make_error_code(Errc::already_settled));
  EXPECT_EQ(Bank(), NetDay::kNet);
}

TEST_F(SettlementTest, ShortAndLongSettlementsRaiseMismatchesThatAdjustmentsClear) {
  const NetDay d;
  AddNetDay(d);
  ASSERT_TRUE(ImportLater(NetDayBill(d)));
  // a and its refund: 10000 - 2000 - (60 - 12) = 7952, received 7452 (short by 500); b: 5000 - 30
  // = 4970, received 5270 (long by 300).
  auto short_line = Settle("SETTLE-S", 7452, {d.a.reference(), d.refund_id});
  ASSERT_TRUE(short_line) << short_line.error().message;
  EXPECT_EQ(short_line.value().lines, 2);
  EXPECT_EQ(short_line.value().expected_minor, 7952);
  EXPECT_EQ(short_line.value().delta_minor, 500);
  auto long_line = Settle("SETTLE-L", 5270, {d.b.reference()});
  ASSERT_TRUE(long_line) << long_line.error().message;
  EXPECT_EQ(long_line.value().delta_minor, -300);
  EXPECT_EQ(Bank(), 7452 + 5270);
  EXPECT_EQ(ClearingBalance(), 500 - 300);

  const auto open = OpenExceptionsByReference();
  ASSERT_EQ(open.size(), 2u);
  for (const auto& [reference, delta] : {std::pair{"SETTLE-S", 500}, std::pair{"SETTLE-L", -300}}) {
    ASSERT_TRUE(open.contains(reference)) << reference;
    const Exception& e = open.at(reference);
    EXPECT_EQ(e.klass, "settlement_mismatch");
    EXPECT_EQ(e.delta_minor, delta);
    EXPECT_EQ(e.bill_date, kDay);
    auto resolved = RunUntilDone(
        io_, reconciler_->Resolve(e.id, "bank statement checked", true, "finance-2", In(10s)));
    ASSERT_TRUE(resolved) << resolved.error().message;
  }
  EXPECT_EQ(short_line.value().exception_id, open.at("SETTLE-S").id);
  EXPECT_EQ(ClearingBalance(), 0);
  EXPECT_EQ(-CreditsOf("suspense"), 200);
}

// A corrected bill for a day already net-settled: the settlement's mismatch is not the file's to
// supersede, and the corrected version's new line waits for its own settlement line.
TEST_F(SettlementTest, CorrectedBillKeepsTheSettlementMismatchOpen) {
  const NetDay d;
  AddNetDay(d);
  ASSERT_TRUE(ImportLater(NetDayBill(d)));
  auto settled = Settle("SETTLE-DAY", NetDay::kNet - 50);
  ASSERT_TRUE(settled) << settled.error().message;
  ASSERT_NE(settled.value().exception_id, 0);

  const Payment c{"pay_nnnnnnnnnnnnnnnnnnnn04", 4000, "13:00:00"};
  AddPayment(c);
  TradeBillRow refund = Line(d.a, 0, -12);
  refund.time = std::string(kDay) + " 12:00:05";
  refund.trade_state = "REFUND";
  refund.refund_id = "50300000000009";
  refund.out_refund_no = d.refund_id;
  refund.refund_fen = 2000;
  refund.refund_status = "SUCCESS";
  auto corrected = ImportLater(adapters::wechatpay::FormatTradeBill(
      {Line(d.a, 10000, 60), Line(d.b, 5000, 30), refund, Line(c, 4000, 24)}));
  ASSERT_TRUE(corrected) << corrected.error().message;
  EXPECT_EQ(corrected.value().version, 2);
  EXPECT_EQ(SqlText(fmt::format("SELECT status FROM recon_exceptions WHERE id = {}",
                                settled.value().exception_id)),
            "open");
  // Clearing: the mismatch (50) and c's net (3976), both explained.
  EXPECT_EQ(ClearingBalance(), 50 + 3976);
  EXPECT_EQ(corrected.value().explained_minor, 50 + 3976);
  EXPECT_EQ(corrected.value().drift_minor, 0);
  auto rest = Settle("SETTLE-C", 3976);
  ASSERT_TRUE(rest) << rest.error().message;
  EXPECT_EQ(rest.value().lines, 1);
  EXPECT_EQ(rest.value().delta_minor, 0);
  EXPECT_EQ(ClearingBalance(), 50);
}

TEST_F(SettlementTest, SettlingALineOrItemTwiceIsRefusedByTheDatabase) {
  const NetDay d;
  AddNetDay(d);
  ASSERT_TRUE(ImportLater(NetDayBill(d)));
  ASSERT_TRUE(Settle("SETTLE-A", 9940, {d.a.reference()}));
  const std::int64_t clearing = ClearingBalance();

  // b is new, a is not: the whole settlement line is refused, nothing of it written.
  auto twice = Settle("SETTLE-AB", 14910, {d.b.reference(), d.a.reference()});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, make_error_code(Errc::already_settled));
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlements"), 1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlement_items"), 1);
  EXPECT_EQ(ClearingBalance(), clearing);

  // The constraint itself: a's item through another line (b's) is refused.
  auto claim = Sql(fmt::format(
      "INSERT INTO recon_settlement_items SELECT s.settlement_id, s.import_id, b.line_no, "
      "s.our_kind, s.our_id, 0 FROM recon_settlement_items s JOIN recon_bill_items b ON "
      "b.import_id = s.import_id AND b.merchant_reference = '{}' AND b.kind = 'payment'",
      d.b.reference()));
  EXPECT_FALSE(claim);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlement_items"), 1);

  // A reference in no bill, and lines whose import already posted the day's net.
  auto unknown = Settle("SETTLE-X", 100, {"pay_not_in_any_bill_1"});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, make_error_code(Errc::not_found));
  const Payment c{"pay_nnnnnnnnnnnnnnnnnnnn03", 700, "09:00:00"};
  AddPayment(c, kNextDay);
  ASSERT_TRUE(Import(kNextDay, adapters::wechatpay::FormatTradeBill({Line(c, 700, 0, kNextDay)})));
  auto by_import = Settle("SETTLE-C", 700, {c.reference()});
  ASSERT_FALSE(by_import);
  EXPECT_EQ(by_import.error().code, make_error_code(Errc::already_settled));
}

// Lines the provider has and we do not (missing_ours): nothing of ours to settle them by, only
// the provider's transaction. 7000 - 42 = 6958 and 3000 - 18 = 2982 net.
const Payment kTheirs{"pay_xxxxxxxxxxxxxxxxxxxx01", 7000, "16:00:00"};
constexpr std::int64_t kTheirsNet = 6958;
const Payment kNewTheirs{"pay_yyyyyyyyyyyyyyyyyyyy01", 3000, "17:00:00"};
constexpr std::int64_t kNewTheirsNet = 2982;

// Issue 8: a corrected bill of a day already settled renumbers its lines (a new import_id); the
// provider transactions it carries over are the ones settled before, and none is settled twice,
// counted as waiting, or hidden from the balance reconciliation.
TEST_F(SettlementTest, CorrectedBillDoesNotSettleCarriedOverLinesAgain) {
  const NetDay d;
  AddNetDay(d);
  std::vector<TradeBillRow> rows = NetDayRows(d);
  rows.push_back(Line(kTheirs, 7000, 42));
  auto first = ImportLater(adapters::wechatpay::FormatTradeBill(rows));
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first.value().classes["missing_ours"].count, 1);
  EXPECT_EQ(Unsettled(), NetDay::kNet + kTheirsNet);
  EXPECT_EQ(first.value().drift_minor, 0);

  auto day = Settle("SETTLE-DAY", NetDay::kNet + kTheirsNet);
  ASSERT_TRUE(day) << day.error().message;
  EXPECT_EQ(day.value().lines, 4);
  EXPECT_EQ(day.value().delta_minor, 0);
  EXPECT_EQ(Bank(), NetDay::kNet + kTheirsNet);
  EXPECT_EQ(Unsettled(), 0);
  // Premiums 13000, fees 120, settled 19880: the 7000 the provider had and we did not, which
  // its missing_ours exception explains.
  EXPECT_EQ(ClearingBalance(), -7000);

  // The provider corrects b (4900, fee 29); every line is carried over under a new import_id.
  rows = NetDayRows(d, 4900, 29);
  rows.push_back(Line(kTheirs, 7000, 42));
  auto corrected = ImportLater(adapters::wechatpay::FormatTradeBill(rows));
  ASSERT_TRUE(corrected) << corrected.error().message;
  EXPECT_EQ(corrected.value().version, 2);
  EXPECT_EQ(Unsettled(), 0);
  // Clearing: -7000 and the fee returned (1). Explained: kTheirs's missing_ours (-7000) and b's
  // amount_mismatch (100), nothing waiting. b was settled at its first line's net (4970) and its
  // corrected line says 4871: those 99 are drift finance sees, not a line still waiting.
  EXPECT_EQ(ClearingBalance(), -6999);
  EXPECT_EQ(corrected.value().clearing_balance_minor, -6999);
  EXPECT_EQ(corrected.value().explained_minor, -6900);
  EXPECT_EQ(corrected.value().drift_minor, -99);

  // The day again: nothing left, kTheirs's carried-over line included.
  auto again = Settle("SETTLE-DAY-2", kTheirsNet);
  ASSERT_FALSE(again) << again.value().lines << " lines settled twice";
  EXPECT_EQ(again.error().code, make_error_code(Errc::already_settled));
  // kTheirs by its reference: its transaction is settled.
  auto named = Settle("SETTLE-X", kTheirsNet, {kTheirs.reference()});
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().code, make_error_code(Errc::already_settled));
  EXPECT_EQ(Bank(), NetDay::kNet + kTheirsNet);
  EXPECT_EQ(ClearingBalance(), -6999);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlements"), 1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlement_items"), 4);
}

// The named path: kTheirs settled by its reference stays settled in the corrected version, and
// a whole-day settlement afterwards takes the rest of the day without it.
TEST_F(SettlementTest, NamedSettlementOfACarriedOverLineIsRefused) {
  const NetDay d;
  AddNetDay(d);
  std::vector<TradeBillRow> rows = NetDayRows(d);
  rows.push_back(Line(kTheirs, 7000, 42));
  ASSERT_TRUE(ImportLater(adapters::wechatpay::FormatTradeBill(rows)));
  auto x = Settle("SETTLE-X", kTheirsNet, {kTheirs.reference()});
  ASSERT_TRUE(x) << x.error().message;
  EXPECT_EQ(x.value().lines, 1);

  rows = NetDayRows(d, 4900, 29);
  rows.push_back(Line(kTheirs, 7000, 42));
  auto corrected = ImportLater(adapters::wechatpay::FormatTradeBill(rows));
  ASSERT_TRUE(corrected) << corrected.error().message;
  // a, the corrected b and the refund wait: 9940 + 4871 - 1988.
  constexpr std::int64_t kRest = 12823;
  EXPECT_EQ(Unsettled(), kRest);
  EXPECT_EQ(corrected.value().drift_minor, 0);

  auto twice = Settle("SETTLE-X2", kTheirsNet, {kTheirs.reference()});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, make_error_code(Errc::already_settled));
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlements"), 1);

  auto rest = Settle("SETTLE-REST", kRest);
  ASSERT_TRUE(rest) << rest.error().message;
  EXPECT_EQ(rest.value().lines, 3);
  EXPECT_EQ(rest.value().expected_minor, kRest);
  EXPECT_EQ(rest.value().delta_minor, 0);
  EXPECT_EQ(Bank(), kTheirsNet + kRest);
  EXPECT_EQ(Unsettled(), 0);
  // kTheirs's missing_ours (-7000) and b's amount_mismatch (100) are all the clearing holds.
  EXPECT_EQ(ClearingBalance(), -6900);
}

// A bill repeating a line settles each copy once (the occurrence within the bill); a corrected
// version that adds a copy and a new line leaves exactly those two to settle.
TEST_F(SettlementTest, CorrectedBillSettlesOnlyItsGenuinelyNewLines) {
  const NetDay d;
  AddNetDay(d);
  std::vector<TradeBillRow> rows = NetDayRows(d);
  rows.push_back(Line(kTheirs, 7000, 42));
  rows.push_back(Line(kTheirs, 7000, 42));
  ASSERT_TRUE(ImportLater(adapters::wechatpay::FormatTradeBill(rows)));
  auto day = Settle("SETTLE-DAY", NetDay::kNet + 2 * kTheirsNet);
  ASSERT_TRUE(day) << day.error().message;
  EXPECT_EQ(day.value().lines, 5);
  EXPECT_EQ(day.value().delta_minor, 0);

  rows.push_back(Line(kTheirs, 7000, 42));
  rows.push_back(Line(kNewTheirs, 3000, 18));
  auto corrected = ImportLater(adapters::wechatpay::FormatTradeBill(rows));
  ASSERT_TRUE(corrected) << corrected.error().message;
  EXPECT_EQ(corrected.value().version, 2);
  EXPECT_EQ(Unsettled(), kTheirsNet + kNewTheirsNet);
  EXPECT_EQ(corrected.value().drift_minor, 0);

  auto added = Settle("SETTLE-NEW", kTheirsNet + kNewTheirsNet);
  ASSERT_TRUE(added) << added.error().message;
  EXPECT_EQ(added.value().lines, 2);
  EXPECT_EQ(added.value().expected_minor, kTheirsNet + kNewTheirsNet);
  EXPECT_EQ(added.value().delta_minor, 0);
  EXPECT_EQ(Unsettled(), 0);
  auto again = Settle("SETTLE-NEW-2", 0);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, make_error_code(Errc::already_settled));
  EXPECT_EQ(Bank(), NetDay::kNet + 3 * kTheirsNet + kNewTheirsNet);
  // What is left is the four lines the provider has and we do not.
  EXPECT_EQ(ClearingBalance(), -(3 * 7000 + 3000));
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlement_items"), 7);

  // The constraint itself, as a concurrent settlement would meet it: the first copy of kTheirs,
  // through the current version's line, is refused, and so is a row that names no transaction.
  auto claim = Sql(fmt::format(
      "INSERT INTO recon_settlement_items (settlement_id, import_id, line_no, net_minor, "
      "provider, merchant_account, kind, provider_transaction_id, provider_refund_id, "
      "occurrence) SELECT {}, b.import_id, b.line_no, 0, 'wechatpay', 'm1', b.kind, "
      "b.provider_transaction_id, b.provider_refund_id, 1 FROM recon_bill_items b WHERE NOT "
      "b.superseded AND b.merchant_reference = '{}' ORDER BY b.line_no LIMIT 1",
      added.value().id, kTheirs.reference()));
  EXPECT_FALSE(claim);
  auto anonymous = Sql(fmt::format(
      "INSERT INTO recon_settlement_items (settlement_id, import_id, line_no, net_minor) "
      "VALUES ({}, {}, 99, 0)",
      added.value().id, corrected.value().import_id));
  EXPECT_FALSE(anonymous);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlement_items"), 7);
}

// Migration 0015 gives the lines settled before it their provider transaction; a transaction the
// old identity let two settlements take keeps it on the first one only, so the migration runs
// on such a database and the constraint holds from then on.
TEST(SettlementMigrationTest, BackfillsTheTransactionOfEverySettledLine) {
  asio::io_context io;
  db::PgPool pool(io.get_executor(), MakePoolOptions(FreshDatabase(), 2));
  const auto all = db::EmbeddedMigrations();
  ASSERT_GE(all.size(), 15u);
  ASSERT_EQ(all[14].name, "recon_settle_line_once");
  auto before = RunUntilDone(io, db::ApplyMigrations(pool, In(30s), all.first(14)));
  ASSERT_TRUE(before) << before.error().message;
  auto sql = [&](std::string text) {
    return RunUntilDone(io, [&pool, text]() -> asio::awaitable<Result<db::PgResult>> {
      auto lease = co_await pool.Acquire(In(10s));
      if (!lease) co_return lease.error();
      co_return co_await lease.value()->ExecuteSimple(text, In(10s));
    }());
  };
  // Version 1 (superseded) and 2 of a day: T1 once, T2 twice (a repeated line), a refund of T1;
  // version 2 adds T3. The first settlement took version 1's lines; the second, under 0011,
  // took version 2's second T2 again and T3.
  auto setup = sql(
      "INSERT INTO recon_imports (id, provider, merchant_account, bill_date, file_sha256, "
      "version, state, principal, settled_on_import) VALUES "
      "(1, 'wechatpay', 'm1', '2026-03-10', repeat('a', 64), 1, 'superseded', 'f', false), "
      "(2, 'wechatpay', 'm1', '2026-03-10', repeat('b', 64), 2, 'current', 'f', false); "
      "INSERT INTO recon_bill_items (import_id, line_no, kind, provider_transaction_id, "
      "merchant_reference, provider_refund_id, refund_reference, amount_minor, fee_minor, "
      "currency, occurred_at, status, class, match_rule, superseded) "
      "SELECT i, l, k, t, 'ref_' || t, r, CASE WHEN r = '' THEN '' ELSE 're_' || r END, 100, 0, "
      "'CNY', now(), 'SUCCESS', 'missing_ours', '', i = 1 FROM (VALUES "
      "(1, 1, 'payment', 'T1', ''), (1, 2, 'payment', 'T2', ''), (1, 3, 'payment', 'T2', ''), "
      "(1, 4, 'refund', 'T1', 'R1'), "
      "(2, 1, 'payment', 'T2', ''), (2, 2, 'payment', 'T1', ''), (2, 3, 'payment', 'T2', ''), "
      "(2, 4, 'refund', 'T1', 'R1'), (2, 5, 'payment', 'T3', '')) AS v (i, l, k, t, r); "
      "INSERT INTO recon_settlements (id, provider, merchant_account, provider_reference, "
      "value_date, currency, amount_minor, expected_minor, line_count, principal) VALUES "
      "(1, 'wechatpay', 'm1', 'S1', '2026-03-11', 'CNY', 400, 400, 4, 'f'), "
      "(2, 'wechatpay', 'm1', 'S2', '2026-03-12', 'CNY', 200, 200, 2, 'f'); "
      "INSERT INTO recon_settlement_items (settlement_id, import_id, line_no, net_minor) VALUES "
      "(1, 1, 1, 100), (1, 1, 2, 100), (1, 1, 3, 100), (1, 1, 4, -100), (2, 2, 3, 100), "
      "(2, 2, 5, 100)");
  ASSERT_TRUE(setup) << setup.error().message();

  auto after = RunUntilDone(io, db::ApplyMigrations(pool, In(30s)));
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(after.value().applied, static_cast<std::int32_t>(all.size() - 14));
  auto rows = sql(
      "SELECT import_id || ':' || line_no || '=' || coalesce(provider || '/' || "
      "merchant_account || '/' || kind || '/' || provider_transaction_id || '/' || "
      "provider_refund_id || '/' || occurrence, 'none') FROM recon_settlement_items "
      "ORDER BY import_id, line_no");
  ASSERT_TRUE(rows) << rows.error().message();
  std::vector<std::string> got;
  for (int i = 0; i < rows.value().rows(); ++i) {
    got.emplace_back(rows.value().GetText(i, 0).value());
  }
  EXPECT_EQ(got, (std::vector<std::string>{
                     "1:1=wechatpay/m1/payment/T1//1", "1:2=wechatpay/m1/payment/T2//1",
                     "1:3=wechatpay/m1/payment/T2//2", "1:4=wechatpay/m1/refund/T1/R1/1",
                     "2:3=none", "2:5=wechatpay/m1/payment/T3//1"}));
  // From now on the transaction settles once: version 2's first T2 is version 1's first.
  auto again = sql(
      "INSERT INTO recon_settlement_items (settlement_id, import_id, line_no, net_minor, "
      "provider, merchant_account, kind, provider_transaction_id, provider_refund_id, "
      "occurrence) VALUES (2, 2, 1, 100, 'wechatpay', 'm1', 'payment', 'T2', '', 1)");
  EXPECT_FALSE(again);
  pool.Close();
}

}  // namespace
}  // namespace paygate::recon
