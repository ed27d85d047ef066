// Reconciliation for finance over the API and paygatectl (issue 8): a finance principal uploads a
// WeChat Pay trade bill (the real format) over real TLS with its client certificate; the answer
// carries the classes the engine found; the exceptions are listed, filtered, assigned, commented
// and resolved (with an adjustment) over the API, each action audited with the principal; a sales
// principal is refused every route (403). Then paygatectl's import streams a file (progress on
// stderr, idempotent) and its report prints the same numbers as the API.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "adapters/wechatpay/bill.h"
#include "gateway/api/v1/recon.pb.h"
#include "gateway/edge/asio_fwd.h"
#include "gateway/idempotency/idempotency_store.h"
#include "gateway/idempotency/with_idempotency.h"
#include "gateway/recon/ctl.h"
#include "gateway/recon/report.h"
#include "gateway/recon/routes.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/postgres_ledger.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/integration/edge/edge_fixture.h"
#include "tests/testing/wechat_bill_rows.h"
#include "tests/testing/run_async.h"

namespace paygate::gateway::recon {
namespace {

namespace asio = edge::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using adapters::wechatpay::TradeBillRow;
using db::test::FreshDatabase;
using db::test::In;
using db::test::MakePoolOptions;
using edge::http::status;
using edge::http::verb;

constexpr const char* kDay = "2026-03-10";

struct Payment {
  std::string order_id;
  std::int64_t amount = 0;
  std::string at;  // China time on kDay
  std::string reference() const { return order_id + "_1"; }
  std::string txid() const { return "4200000" + order_id.substr(order_id.size() - 12); }
};

TradeBillRow Line(const Payment& p, std::int64_t amount, std::int64_t fee) {
  return testing::NativePaymentLine(fmt::format("{} {}", kDay, p.at), p.txid(), p.reference(),
                                    amount, fee);
}

class ReconApiTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/paygate-recon-api-XXXXXX";
    const char* dir = mkdtemp(pattern);
    ASSERT_NE(dir, nullptr);
    dir_ = new fs::path(dir);
    pki_ = new fs::path(testing::MakeDevPki(*dir_ / "pki"));
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    fs::remove_all(*dir_, ignored);
    delete pki_;
    delete dir_;
  }

  ReconApiTest() : work_(io_.get_executor()) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    db_url_ = FreshDatabase();
    pool_ = std::make_unique<db::PgPool>(io_.get_executor(), MakePoolOptions(db_url_, 8));
    auto applied = Run(db::ApplyMigrations(*pool_, In(30s)));
    EXPECT_TRUE(applied) << applied.error().message;
    ledger_ = std::make_shared<ledger::PostgresLedger>(*pool_, io_.get_executor(),
                                                       ledger::PostgresLedgerOptions{});
    ledger::ChartSpec spec;
    spec.currency = "CNY";
    spec.clearing.push_back({"wechatpay", "m1"});
    spec.clearing.push_back({"wechatpay", "m2"});
    auto created = Run(ledger_->CreateAccounts(ledger::StandardChart(spec), In(10s)));
    EXPECT_TRUE(created);

    config_ = testing::TestConfig(*pki_);
    config_.mutable_database()->set_url(db_url_);
    auto* provider = config_.add_providers();
    provider->set_provider("wechatpay");
    provider->set_merchant_account("m1");
    config_.mutable_recon()->set_cutoff_window_s(300);
    config_.mutable_recon()->set_rule_window_s(600);
    config_.mutable_recon()->set_settlement_bank("settlement");
    config_.mutable_recon()->set_bill_utc_offset("+08:00");
    auto* account = config_.mutable_recon()->add_accounts();
    account->set_provider("wechatpay");
    account->set_merchant_account("m1");
    account->set_settlement_bank("icbc_main");
    // m2's imports leave the day's net to the provider's settlement line.
    auto* m2 = config_.add_providers();
    m2->set_provider("wechatpay");
    m2->set_merchant_account("m2");
    auto* later = config_.mutable_recon()->add_accounts();
    later->set_provider("wechatpay");
    later->set_merchant_account("m2");
    later->set_settle_on_import(false);

    reconcilers_ = std::make_shared<Reconcilers>(config_.recon(), *pool_, *ledger_);
    auto router = std::make_shared<edge::Router>();
    auto store = std::make_shared<idempotency::PostgresIdempotencyStore>(*pool_);
    ReconRoutesOptions options;
    options.accounts = ConfiguredAccounts(config_);
    AddReconRoutes(*router, reconcilers_, std::move(options), [store](edge::Handler inner) {
      return idempotency::WithIdempotency(store, std::move(inner));
    });
    api_ = std::make_unique<testing::RunningServer>(config_, config_.api(), router, 2);
  }

  ~ReconApiTest() override {
    api_.reset();
    Run(StopLedger(ledger_));
    ledger_.reset();
    reconcilers_.reset();
    pool_->Close();
    work_.reset();
    for (auto& t : threads_) t.join();
    pool_.reset();
  }

  static asio::awaitable<int> StopLedger(std::shared_ptr<ledger::PostgresLedger> ledger) {
    co_await ledger->Stop();
    co_return 0;
  }

  template <class T>
  T Run(asio::awaitable<T> task) {
    return testing::RunOnThreads(io_, std::move(task));
  }

  db::PgResult Sql(const std::string& sql) {
    auto result = Run([this, sql]() -> asio::awaitable<Result<db::PgResult>> {
      auto lease = co_await pool_->Acquire(In(10s));
      if (!lease) co_return lease.error();
      co_return co_await lease.value()->ExecuteSimple(sql, In(10s));
    }());
    EXPECT_TRUE(result) << sql;
    return std::move(result).value();
  }
  std::int64_t SqlInt(const std::string& sql) { return Sql(sql).GetInt64(0, 0).value(); }

  // Our side of a payment as the payments service leaves it, premium posted to clearing.
  void AddPayment(const Payment& p, const std::string& account = "m1") {
    const std::string ts = fmt::format("{}T{}+08:00", kDay, p.at);
    Sql(fmt::format(
        "INSERT INTO payment_orders (id, principal, client_reference, policy_number, amount_minor, "
        "currency, method, provider, merchant_account, status, captured_minor, expires_at, "
        "created_at, updated_at) VALUES ('{0}', 'sales', '{0}', 'POL-1', {1}, 'CNY', "
        "'wechat_native', 'wechatpay', '{5}', 'succeeded', {1}, "
        "'{2}'::timestamptz + interval '1 hour', '{2}', '{2}'); "
        "INSERT INTO payment_attempts (order_id, seq, provider, merchant_account, "
        "provider_reference, routing_reason, status, provider_transaction_id, created_at, "
        "updated_at) VALUES ('{0}', 1, 'wechatpay', '{5}', '{3}', 'route', 'succeeded', '{4}', "
        "'{2}', '{2}')",
        p.order_id, p.amount, ts, p.reference(), p.txid(), account));
    ledger::Transfer t;
    t.id.value = "premium:" + p.order_id;
    t.debit_account_id = ledger::AccountIdFor("CNY", "provider_clearing:wechatpay:" + account);
    t.credit_account_id = ledger::AccountIdFor("CNY", "premiums_received");
    t.amount = p.amount;
    t.currency = "CNY";
    t.reason_code = 1;
    std::vector<ledger::Transfer> transfers{t};
    auto posted = Run(ledger_->PostTransfers(transfers, In(10s)));
    ASSERT_TRUE(posted);
    ASSERT_EQ(posted.value()[0], ledger::TransferResult::kOk);
  }

  std::int64_t Balance(const std::string& name) {
    auto b = Run(ledger_->GetBalance(ledger::AccountIdFor("CNY", name), std::nullopt, In(10s)));
    EXPECT_TRUE(b);
    return b ? b.value().debits_posted - b.value().credits_posted : -1;
  }

  edge::Response Call(const std::string& principal, verb method, const std::string& target,
                      const std::string& body = {}, const std::string& key = {},
                      const std::string& content_type = "application/json",
                      const std::string& accept = {}) {
    testing::ClientOptions options;
    options.ca = *pki_ / "ca.crt";
    options.cert = *pki_ / (principal + ".crt");
    options.key = *pki_ / (principal + ".key");
    testing::TlsClient client(api_->port(), options);
    EXPECT_FALSE(client.Connect());
    edge::Request request{method, target, 11};
    if (!key.empty()) request.set("Idempotency-Key", key);
    if (!accept.empty()) request.set(edge::http::field::accept, accept);
    if (method == verb::post) {
      request.set(edge::http::field::content_type, content_type);
      request.body() = body;
      request.prepare_payload();
    }
    edge::Response response;
    EXPECT_FALSE(client.Send(request, &response));
    return response;
  }

  template <class M>
  M Parse(const edge::Response& response) {
    M message;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(response.body(), &message).ok())
        << response.body();
    return message;
  }

  static std::map<std::string, api::v1::ReconciliationClass> Classes(
      const api::v1::Reconciliation& r) {
    std::map<std::string, api::v1::ReconciliationClass> out;
    for (const auto& c : r.classes()) out[c.name()] = c;
    return out;
  }

  // The upload target for account m1 and kDay (the bill itself is the body).
  static std::string Upload(const std::string& /*bill*/) {
    return fmt::format("/v1/reconciliations?provider=wechatpay&merchant_account=m1&bill_date={}"
                       "&file_name=tradebill.csv",
                       kDay);
  }

  static fs::path* dir_;
  static fs::path* pki_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::string db_url_;
  std::unique_ptr<db::PgPool> pool_;
  std::shared_ptr<ledger::PostgresLedger> ledger_;
  config::v1::Config config_;
  std::shared_ptr<Reconcilers> reconcilers_;
  std::unique_ptr<testing::RunningServer> api_;
};

fs::path* ReconApiTest::dir_ = nullptr;
fs::path* ReconApiTest::pki_ = nullptr;

const Payment kMatched{"pay_aaaaaaaaaaaaaaaaaaaa01", 10000, "10:00:00"};
const Payment kDropped{"pay_aaaaaaaaaaaaaaaaaaaa02", 8000, "11:00:00"};
const Payment kChanged{"pay_aaaaaaaaaaaaaaaaaaaa03", 10000, "12:00:00"};
const Payment kExtra{"pay_zzzzzzzzzzzzzzzzzzzz99", 7000, "16:00:00"};  // theirs only

std::string DayBill() {
  return adapters::wechatpay::FormatTradeBill(
      {Line(kMatched, 10000, 60), Line(kChanged, 9000, 54), Line(kExtra, 7000, 42)});
}

TEST_F(ReconApiTest, FinanceUploadsResolvesAndEveryActionIsAudited) {
  for (const Payment& p : {kMatched, kDropped, kChanged}) AddPayment(p);
  const std::string bill = DayBill();

  auto created = Call("finance", verb::post, Upload(bill), bill, "upload-1", "text/csv");
  ASSERT_EQ(created.result(), status::created) << created.body();
  auto report = Parse<api::v1::Reconciliation>(created);
  EXPECT_FALSE(report.already_imported());
  EXPECT_EQ(report.version(), 1);
  EXPECT_EQ(report.lines(), 3);
  EXPECT_EQ(report.provider(), "wechatpay");
  EXPECT_EQ(report.bill_date(), kDay);
  auto classes = Classes(report);
  EXPECT_EQ(classes["matched"].count(), 1);
  EXPECT_EQ(classes["missing_ours"].count(), 1);
  EXPECT_EQ(classes["missing_ours"].their_amount_minor(), 7000);
  EXPECT_EQ(classes["missing_provider"].count(), 1);
  EXPECT_EQ(classes["missing_provider"].our_amount_minor(), 8000);
  EXPECT_EQ(classes["amount_mismatch"].count(), 1);
  EXPECT_EQ(report.fee_amount_minor(), 156);
  EXPECT_EQ(report.drift_minor(), 0);
  // The account's own settlement bank (recon.accounts[].settlement_bank) took the settlement.
  EXPECT_EQ(Balance("bank:icbc_main"), 26000 - 156);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_audit WHERE principal = 'finance' AND "
                   "action = 'import'"),
            1);

  // The same file again (a new key: a new request) changes nothing and says so.
  auto again = Call("finance", verb::post, Upload(bill), bill, "upload-2", "text/csv");
  ASSERT_EQ(again.result(), status::ok) << again.body();
  EXPECT_TRUE(Parse<api::v1::Reconciliation>(again).already_imported());
  EXPECT_EQ(Parse<api::v1::Reconciliation>(again).id(), report.id());
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_imports"), 1);

  // The report by id, as JSON and as binary protobuf, and the day's list.
  auto by_id = Call("finance", verb::get, fmt::format("/v1/reconciliations/{}", report.id()));
  ASSERT_EQ(by_id.result(), status::ok) << by_id.body();
  auto fetched = Parse<api::v1::Reconciliation>(by_id);
  EXPECT_EQ(Classes(fetched)["amount_mismatch"].our_amount_minor(), 10000);
  EXPECT_EQ(Classes(fetched)["amount_mismatch"].their_amount_minor(), 9000);
  auto binary = Call("finance", verb::get, fmt::format("/v1/reconciliations/{}", report.id()), {},
                     {}, {}, "application/x-protobuf");
  api::v1::Reconciliation decoded;
  ASSERT_TRUE(decoded.ParseFromString(binary.body()));
  EXPECT_EQ(decoded.fee_amount_minor(), 156);
  auto day = Call("finance", verb::get, fmt::format("/v1/reconciliations?bill_date={}", kDay));
  ASSERT_EQ(day.result(), status::ok);
  EXPECT_EQ(Parse<api::v1::ReconciliationList>(day).reconciliations_size(), 1);
  EXPECT_EQ(Call("finance", verb::get, "/v1/reconciliations/999999").result(), status::not_found);

  // Exceptions: all open ones, then filtered by class.
  auto open = Call("finance", verb::get, "/v1/reconciliation-exceptions?status=open");
  ASSERT_EQ(open.result(), status::ok) << open.body();
  EXPECT_EQ(Parse<api::v1::ReconciliationExceptionList>(open).exceptions_size(), 3);
  auto missing = Parse<api::v1::ReconciliationExceptionList>(Call(
      "finance", verb::get, "/v1/reconciliation-exceptions?class=missing_ours&bill_date=2026-03-10"));
  ASSERT_EQ(missing.exceptions_size(), 1);
  const auto& extra = missing.exceptions(0);
  EXPECT_EQ(extra.reference(), kExtra.reference());
  EXPECT_EQ(extra.delta_minor(), -7000);
  EXPECT_FALSE(extra.has_our_amount_minor());
  EXPECT_EQ(Call("finance", verb::get, "/v1/reconciliation-exceptions?class=nonsense").result(),
            status::bad_request);
  auto paged = Parse<api::v1::ReconciliationExceptionList>(
      Call("finance", verb::get, "/v1/reconciliation-exceptions?limit=2"));
  EXPECT_EQ(paged.exceptions_size(), 2);
  EXPECT_FALSE(paged.next_after().empty());
  auto rest = Parse<api::v1::ReconciliationExceptionList>(Call(
      "finance", verb::get, "/v1/reconciliation-exceptions?limit=2&after=" + paged.next_after()));
  EXPECT_EQ(rest.exceptions_size(), 1);

  // Assign, comment, resolve with an adjustment: the clearing account gives up what the bill
  // lacks into suspense, and each action is audited with the principal.
  const std::string base = fmt::format("/v1/reconciliation-exceptions/{}", extra.id());
  auto assigned = Call("finance", verb::post, base + "/assign", R"({"assignee":"alice"})", "a-1");
  ASSERT_EQ(assigned.result(), status::ok) << assigned.body();
  EXPECT_EQ(Parse<api::v1::ReconciliationException>(assigned).status(), "assigned");
  EXPECT_EQ(Parse<api::v1::ReconciliationExceptionList>(
                Call("finance", verb::get, "/v1/reconciliation-exceptions?assignee=alice"))
                .exceptions_size(),
            1);
  auto commented =
      Call("finance", verb::post, base + "/comment", R"({"body":"provider confirms"})", "c-1");
  ASSERT_EQ(commented.result(), status::ok) << commented.body();
  const std::int64_t clearing_before = Balance("provider_clearing:wechatpay:m1");
  auto resolved = Call("finance", verb::post, base + "/resolve",
                       R"({"reason":"refund owed by provider","post_adjustment":true})", "r-1");
  ASSERT_EQ(resolved.result(), status::ok) << resolved.body();
  const auto done = Parse<api::v1::ReconciliationException>(resolved);
  EXPECT_EQ(done.status(), "resolved");
  EXPECT_EQ(done.adjustment_transfer_id(), fmt::format("recon:adj:{}", extra.id()));
  EXPECT_EQ(Balance("provider_clearing:wechatpay:m1"), clearing_before + 7000);
  EXPECT_EQ(Balance("suspense"), -7000);
  // Resolving again (another request) is a conflict; the same request replays its answer.
  EXPECT_EQ(Call("finance", verb::post, base + "/resolve", R"({"reason":"again"})", "r-2").result(),
            status::conflict);
  auto replay = Call("finance", verb::post, base + "/resolve",
                     R"({"reason":"refund owed by provider","post_adjustment":true})", "r-1");
  EXPECT_EQ(replay.result(), status::ok);
  EXPECT_EQ(replay["Idempotent-Replayed"], "true");
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM recon_audit WHERE principal = 'finance' AND "
                               "object_id = '{}' AND action IN ('assign', 'comment', 'resolve')",
                               extra.id())),
            3);
  // Refused input: an empty reason, an unknown field, a POST without Idempotency-Key.
  EXPECT_EQ(Call("finance", verb::post, base + "/assign", R"({"assignee":""})", "a-2").result(),
            status::bad_request);
  EXPECT_EQ(Call("finance", verb::post, base + "/assign", R"({"who":"bob"})", "a-3").result(),
            status::bad_request);
  EXPECT_EQ(Call("finance", verb::post, base + "/assign", R"({"assignee":"bob"})").result(),
            status::bad_request);
}

TEST_F(ReconApiTest, UploadsAreCheckedBeforeAnythingIsWritten) {
  AddPayment(kMatched);
  std::string bill = adapters::wechatpay::FormatTradeBill({Line(kMatched, 10000, 60)});
  // A summary that disagrees with the rows: 422, nothing imported.
  std::string broken = bill;
  broken.replace(broken.rfind("`100.00"), 7, "`101.00");
  auto refused = Call("finance", verb::post, Upload(broken), broken, "u-1", "text/csv");
  EXPECT_EQ(refused.result(), status::unprocessable_entity) << refused.body();
  EXPECT_NE(refused.body().find("bill_invalid"), std::string::npos);
  // An account that is not configured, a malformed date, no body.
  EXPECT_EQ(Call("finance", verb::post,
                 "/v1/reconciliations?provider=wechatpay&merchant_account=other&bill_date=2026-03-10",
                 bill, "u-2", "text/csv")
                .result(),
            status::bad_request);
  EXPECT_EQ(Call("finance", verb::post,
                 "/v1/reconciliations?provider=wechatpay&merchant_account=m1&bill_date=10.03.2026",
                 bill, "u-3", "text/csv")
                .result(),
            status::bad_request);
  EXPECT_EQ(Call("finance", verb::post, Upload(bill), "", "u-4", "text/csv").result(),
            status::bad_request);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_imports"), 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_audit"), 0);
}

TEST_F(ReconApiTest, OnlyFinanceMayReconcile) {
  AddPayment(kMatched);
  const std::string bill = DayBill();
  EXPECT_EQ(Call("sales-platform", verb::post, Upload(bill), bill, "s-1", "text/csv").result(),
            status::forbidden);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_imports"), 0);
  ASSERT_EQ(Call("finance", verb::post, Upload(bill), bill, "f-1", "text/csv").result(),
            status::created);
  const std::int64_t id = SqlInt("SELECT min(id) FROM recon_exceptions");
  for (const auto& [method, target] :
       std::vector<std::pair<verb, std::string>>{
           {verb::get, "/v1/reconciliations/1"},
           {verb::get, "/v1/reconciliations?bill_date=2026-03-10"},
           {verb::get, "/v1/reconciliation-exceptions"},
           {verb::post, fmt::format("/v1/reconciliation-exceptions/{}/assign", id)},
           {verb::post, fmt::format("/v1/reconciliation-exceptions/{}/comment", id)},
           {verb::post, fmt::format("/v1/reconciliation-exceptions/{}/resolve", id)}}) {
    auto response = Call("sales-platform", method, target, R"({"reason":"x"})", "s-2");
    EXPECT_EQ(response.result(), status::forbidden) << target;
  }
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_audit WHERE principal <> 'finance'"), 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_exceptions WHERE status <> 'open'"), 0);
}

// Net settlement lines (many orders, one amount to the bank) for an account whose imports leave
// the day's net to them: over the API by named references, a short amount raising a
// settlement_mismatch that an adjustment clears, idempotent on the provider's reference; then
// paygatectl recon settle for the rest of the day. Only finance may record one.
TEST_F(ReconApiTest, NetSettlementLinesOverTheApiAndPaygatectl) {
  const Payment a{"pay_ssssssssssssssssssss01", 10000, "10:00:00"};
  const Payment b{"pay_ssssssssssssssssssss02", 5000, "11:00:00"};
  const Payment c{"pay_ssssssssssssssssssss03", 3000, "12:00:00"};
  for (const Payment& p : {a, b, c}) AddPayment(p, "m2");
  const std::string bill = adapters::wechatpay::FormatTradeBill(
      {Line(a, 10000, 60), Line(b, 5000, 30), Line(c, 3000, 18)});
  auto imported = Call("finance", verb::post,
                       fmt::format("/v1/reconciliations?provider=wechatpay&merchant_account=m2&"
                                   "bill_date={}",
                                   kDay),
                       bill, "m2-upload", "text/csv");
  ASSERT_EQ(imported.result(), status::created) << imported.body();
  const auto report = Parse<api::v1::Reconciliation>(imported);
  // Fees posted, the net (17892) waiting for its settlement lines: explained, not drift.
  const std::string clearing = "provider_clearing:wechatpay:m2";
  EXPECT_EQ(Balance(clearing), 17892);
  EXPECT_EQ(report.explained_minor(), 17892);
  EXPECT_EQ(report.drift_minor(), 0);
  EXPECT_EQ(Balance("bank:settlement"), 0);

  const std::string line = fmt::format(
      R"({{"provider":"wechatpay","merchant_account":"m2","provider_reference":"WXS-1",)"
      R"("value_date":"2026-03-11","amount_minor":"14810","references":["{}","{}"]}})",
      a.reference(), b.reference());
  EXPECT_EQ(Call("sales-platform", verb::post, "/v1/reconciliations/settlements", line).result(),
            status::forbidden);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlements"), 0);
  EXPECT_EQ(Balance("bank:settlement"), 0);

  auto settled = Call("finance", verb::post, "/v1/reconciliations/settlements", line);
  ASSERT_EQ(settled.result(), status::created) << settled.body();
  const auto s = Parse<api::v1::ReconciliationSettlement>(settled);
  EXPECT_EQ(s.lines(), 2);
  EXPECT_EQ(s.expected_minor(), 9940 + 4970);
  EXPECT_EQ(s.delta_minor(), 100);
  EXPECT_EQ(s.transfer_id(), fmt::format("recon:net:{}", s.id()));
  EXPECT_NE(s.exception_id(), 0);
  EXPECT_EQ(Balance("bank:settlement"), 14810);
  EXPECT_EQ(Balance(clearing), 17892 - 14810);

  // The same line again answers the first result; nothing posted.
  auto replay = Call("finance", verb::post, "/v1/reconciliations/settlements", line);
  ASSERT_EQ(replay.result(), status::ok) << replay.body();
  EXPECT_TRUE(Parse<api::v1::ReconciliationSettlement>(replay).already_settled());
  EXPECT_EQ(Parse<api::v1::ReconciliationSettlement>(replay).id(), s.id());
  EXPECT_EQ(Balance("bank:settlement"), 14810);
  // A different line naming a settled order is refused whole.
  std::string twice = line;
  twice.replace(twice.find("WXS-1"), 5, "WXS-2");
  auto refused = Call("finance", verb::post, "/v1/reconciliations/settlements", twice);
  EXPECT_EQ(refused.result(), status::conflict) << refused.body();
  EXPECT_NE(refused.body().find("already_settled"), std::string::npos);
  EXPECT_EQ(Call("finance", verb::post, "/v1/reconciliations/settlements",
                 R"({"provider":"wechatpay","merchant_account":"m9","provider_reference":"X",)"
                 R"("value_date":"2026-03-11","amount_minor":"1","bill_date":"2026-03-10"})")
                .result(),
            status::bad_request);
  EXPECT_EQ(Call("finance", verb::post, "/v1/reconciliations/settlements",
                 R"({"provider":"wechatpay","merchant_account":"m2","provider_reference":"X",)"
                 R"("value_date":"2026-03-11","amount_minor":"1","references":["pay_nowhere_1"]})")
                .result(),
            status::not_found);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_settlements"), 1);

  // The short amount is a settlement_mismatch; resolving it with an adjustment clears it.
  auto mismatches = Parse<api::v1::ReconciliationExceptionList>(Call(
      "finance", verb::get, "/v1/reconciliation-exceptions?class=settlement_mismatch"));
  ASSERT_EQ(mismatches.exceptions_size(), 1);
  EXPECT_EQ(mismatches.exceptions(0).id(), s.exception_id());
  EXPECT_EQ(mismatches.exceptions(0).delta_minor(), 100);
  auto resolved = Call("finance", verb::post,
                       fmt::format("/v1/reconciliation-exceptions/{}/resolve", s.exception_id()),
                       R"({"reason":"bank fee on the transfer","post_adjustment":true})", "m2-r");
  ASSERT_EQ(resolved.result(), status::ok) << resolved.body();
  EXPECT_EQ(Balance(clearing), 17892 - 14810 - 100);

  // The rest of the day (c: 3000 - 18) from the command line, by its bill day.
  ReconSettleArgs args;
  args.provider = "wechatpay";
  args.merchant_account = "m2";
  args.provider_reference = "WXS-3";
  args.value_date = "2026-03-11";
  args.amount = "29.82";
  args.bill_date = kDay;
  std::ostringstream out, err;
  ASSERT_EQ(RunReconSettle(config_, args, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("1 lines, expected 29.82, received 29.82 CNY"), std::string::npos)
      << out.str();
  EXPECT_EQ(Balance(clearing), 0);
  EXPECT_EQ(Balance("bank:settlement"), 14810 + 2982);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_audit WHERE action = 'settle' AND principal LIKE "
                   "'paygatectl:%'"),
            1);
  std::ostringstream out2, err2;
  ASSERT_EQ(RunReconSettle(config_, args, out2, err2), 0) << err2.str();
  EXPECT_NE(out2.str().find("already recorded"), std::string::npos);
  args.provider_reference = "WXS-4";
  std::ostringstream out3, err3;
  EXPECT_EQ(RunReconSettle(config_, args, out3, err3), 2);
  EXPECT_NE(err3.str().find("already settled"), std::string::npos) << err3.str();
  args.amount = "29.8x";
  std::ostringstream out4, err4;
  EXPECT_EQ(RunReconSettle(config_, args, out4, err4), 2);
  EXPECT_EQ(Balance("bank:settlement"), 14810 + 2982);
}

// paygatectl recon import streams the file (progress on stderr) and is idempotent; recon report
// prints the numbers the API serves, as CSV and as a table.
TEST_F(ReconApiTest, CtlImportAndReportAgreeWithTheApi) {
  for (const Payment& p : {kMatched, kDropped, kChanged}) AddPayment(p);
  // A bill large enough to stream in several chunks: the day's lines plus many bill-only lines.
  std::vector<TradeBillRow> rows = {Line(kMatched, 10000, 60), Line(kChanged, 9000, 54)};
  for (int i = 0; i < 20000; ++i) {
    Payment other{fmt::format("pay_yyyyyyyyyyyy{:012}", i), 100 + i, "13:00:00"};
    TradeBillRow row = Line(other, other.amount, 0);
    row.description = std::string(40, 'x');
    rows.push_back(row);
  }
  const fs::path file = *dir_ / "tradebill-ctl.csv";
  {
    std::ofstream out(file, std::ios::binary);
    out << adapters::wechatpay::FormatTradeBill(rows);
  }
  ASSERT_GT(fs::file_size(file), 2u << 20);
  ReconImportArgs args;
  args.file = file.string();
  args.provider = "wechatpay";
  args.merchant_account = "m1";
  args.bill_date = kDay;
  std::ostringstream out, err;
  ASSERT_EQ(RunReconImport(config_, args, out, err), 0) << err.str();
  EXPECT_NE(err.str().find("100%"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("\r["), std::string::npos);
  EXPECT_NE(out.str().find("missing_ours"), std::string::npos) << out.str();
  EXPECT_EQ(SqlInt("SELECT line_count FROM recon_imports"), 20002);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_audit WHERE action = 'import' AND principal LIKE "
                   "'paygatectl:%'"),
            1);

  // Again: nothing new.
  std::ostringstream out2, err2;
  ASSERT_EQ(RunReconImport(config_, args, out2, err2), 0) << err2.str();
  EXPECT_NE(out2.str().find("already imported"), std::string::npos);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM recon_imports"), 1);

  // An account the configuration does not have is refused.
  ReconImportArgs unknown = args;
  unknown.merchant_account = "nope";
  std::ostringstream out3, err3;
  EXPECT_EQ(RunReconImport(config_, unknown, out3, err3), 2);

  // The report: CSV numbers equal the API's for every class.
  std::ostringstream csv, csv_err;
  ASSERT_EQ(RunReconReport(config_, kDay, true, csv, csv_err), 0) << csv_err.str();
  auto api = Parse<api::v1::ReconciliationList>(
      Call("finance", verb::get, fmt::format("/v1/reconciliations?bill_date={}", kDay)));
  ASSERT_EQ(api.reconciliations_size(), 1);
  const auto& r = api.reconciliations(0);
  std::map<std::string, std::vector<std::string>> by_class;
  std::istringstream lines(csv.str());
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line,
            "bill_date,provider,merchant_account,reconciliation_id,version,class,count,"
            "our_amount_minor,their_amount_minor");
  while (std::getline(lines, line)) {
    std::vector<std::string> cells;
    std::istringstream cell(line);
    for (std::string c; std::getline(cell, c, ',');) cells.push_back(c);
    ASSERT_EQ(cells.size(), 9u) << line;
    EXPECT_EQ(cells[3], std::to_string(r.id()));
    by_class[cells[5]] = cells;
  }
  for (const auto& c : r.classes()) {
    ASSERT_TRUE(by_class.contains(c.name())) << c.name();
    EXPECT_EQ(by_class[c.name()][6], std::to_string(c.count())) << c.name();
    EXPECT_EQ(by_class[c.name()][7], std::to_string(c.our_amount_minor())) << c.name();
    EXPECT_EQ(by_class[c.name()][8], std::to_string(c.their_amount_minor())) << c.name();
  }
  EXPECT_EQ(by_class["missing_ours"][6], "20000");
  EXPECT_EQ(by_class["missing_provider"][6], "1");
  EXPECT_EQ(by_class["drift"][7], std::to_string(r.drift_minor()));
  EXPECT_EQ(by_class["bill_fees"][8], std::to_string(r.fee_amount_minor()));

  std::ostringstream table, table_err;
  ASSERT_EQ(RunReconReport(config_, kDay, false, table, table_err), 0);
  EXPECT_NE(table.str().find("wechatpay/m1"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("amount_mismatch"), std::string::npos);
  std::ostringstream bad, bad_err;
  EXPECT_EQ(RunReconReport(config_, "yesterday", false, bad, bad_err), 2);
}

}  // namespace
}  // namespace paygate::gateway::recon
