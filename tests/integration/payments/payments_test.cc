// PaymentService against a real PostgreSQL and the real ledger, with a scripted adapter standing in
// for the provider so each test chooses the provider's answers exactly (the sandbox adapter and
// simulator are tested on their own, and end to end in tests/e2e). Proves the order state
// machine, exactly-once application of callbacks and inquiries, ledger postings in the same
// transaction, the outbox, the janitor's schedule, and that concurrent refunds never exceed the
// captured amount.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "adapters/adapter.h"
#include "gateway/payments/janitor.h"
#include "gateway/payments/service.h"
#include "gateway/payments/store.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/postgres_ledger.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/run_async.h"

namespace paygate::payments {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using adapters::Outcome;
using adapters::ProviderResult;
using db::test::FreshDatabase;
using db::test::In;
using db::test::MakePoolOptions;

ProviderResult Answer(Outcome outcome, std::string next_action = {}) {
  ProviderResult r;
  r.outcome = outcome;
  if (!next_action.empty()) {
    r.next_action_type = "qr_code_url";
    r.next_action_value = std::move(next_action);
  }
  r.provider_transaction_id = outcome == Outcome::kSucceeded ? "ptx-1" : "";
  if (outcome == Outcome::kDeclined) {
    r.decline_code = "insufficient_funds";
    r.decline_message = "The payer's balance is too low.";
  }
  return r;
}

// The provider, scripted: each call takes the next answer queued for its operation (or the
// operation's default). Callbacks are "reference|outcome|dedup" with header x-sig: good.
class ScriptedAdapter final : public adapters::Adapter {
 public:
  std::string_view provider() const override { return "sandbox"; }

  void Queue(std::string op, ProviderResult r) {
    std::lock_guard lock(mu_);
    queued_[op].push_back(std::move(r));
  }
  int Calls(const std::string& op) {
    std::lock_guard lock(mu_);
    return calls_[op];
  }

  asio::awaitable<ProviderResult> CreatePayment(adapters::CreatePaymentRequest r) override {
    last_create_ = r;
    co_return Next("create", Answer(Outcome::kPending, "weixin://pay/" + r.provider_reference));
  }
  asio::awaitable<ProviderResult> QueryPayment(adapters::PaymentRef) override {
    co_return Next("query", Answer(Outcome::kPending));
  }
  asio::awaitable<ProviderResult> ClosePayment(adapters::PaymentRef) override {
    co_return Next("close", Answer(Outcome::kSucceeded));
  }
  asio::awaitable<ProviderResult> Refund(adapters::RefundRequest) override {
    co_return Next("refund", Answer(Outcome::kSucceeded));
  }
  asio::awaitable<ProviderResult> QueryRefund(adapters::RefundRef) override {
    co_return Next("query_refund", Answer(Outcome::kPending));
  }
  Result<adapters::CallbackEvent, std::string> VerifyCallback(
      const adapters::CallbackRequest& request) const override {
    bool signed_ok = false;
    for (const auto& [name, value] : request.headers)
      signed_ok |= name == "x-sig" && value == "good";
    if (!signed_ok) return std::string("bad signature");
    const auto a = request.body.find('|');
    const auto b = request.body.find('|', a + 1);
    if (a == std::string::npos || b == std::string::npos) return std::string("malformed");
    adapters::CallbackEvent event;
    event.reference = request.body.substr(0, a);
    event.kind = event.reference.starts_with("re_") ? adapters::CallbackEvent::Kind::kRefund
                                                    : adapters::CallbackEvent::Kind::kPayment;
    const std::string outcome = request.body.substr(a + 1, b - a - 1);
    event.result = Answer(outcome == "succeeded"  ? Outcome::kSucceeded
                          : outcome == "declined" ? Outcome::kDeclined
                                                  : Outcome::kPending);
    event.dedup_key = request.body.substr(b + 1);
    return event;
  }
  adapters::CallbackAck AckCallback(bool accepted) const override {
    return accepted ? adapters::CallbackAck{200, "text/plain", "OK"}
                    : adapters::CallbackAck{401, "text/plain", "FAIL"};
  }

  adapters::CreatePaymentRequest last_create_;

 private:
  ProviderResult Next(const std::string& op, ProviderResult fallback) {
    std::lock_guard lock(mu_);
    ++calls_[op];
    auto& q = queued_[op];
    if (q.empty()) return fallback;
    ProviderResult r = q.front();
    q.pop_front();
    return r;
  }

  std::mutex mu_;
  std::map<std::string, std::deque<ProviderResult>> queued_;
  std::map<std::string, int> calls_;
};

using testing::RunUntilDone;

class PaymentsTest : public ::testing::Test {
 public:
  PaymentsTest() : pool_(io_.get_executor(), MakePoolOptions(FreshDatabase(), 8)) {
    auto applied = RunUntilDone(io_, db::ApplyMigrations(pool_, In(30s)));
    EXPECT_TRUE(applied) << applied.error().message;
    ledger_ = std::make_unique<ledger::PostgresLedger>(pool_, io_.get_executor(),
                                                       ledger::PostgresLedgerOptions{});
    adapter_ = std::make_shared<ScriptedAdapter>();
    auto registry = std::make_shared<AdapterRegistry>();
    registry->Add("m1", adapter_);
    PaymentsOptions options;
    options.currencies = {"CNY"};
    options.amount_max_minor = 1000000;
    options.callback_base_url = "https://pay.example:8443";
    options.routes["sandbox"] = {"sandbox", "m1"};
    options.event_retry_window = std::chrono::hours(1);
    service_ = std::make_shared<PaymentService>(pool_, *ledger_, registry, options);
    auto chart = RunUntilDone(io_, service_->EnsureChartOfAccounts());
    EXPECT_TRUE(chart) << chart.error().message();
  }
  ~PaymentsTest() override {
    RunUntilDone(io_, [this]() -> asio::awaitable<bool> {
      co_await ledger_->Stop();
      co_return true;
    }());
  }

  api::v1::CreatePaymentRequest Request(std::int64_t amount = 12345) {
    api::v1::CreatePaymentRequest r;
    r.set_policy_number("POL-1");
    r.set_payer_id("cust-9");
    r.set_amount_minor(amount);
    r.set_currency("CNY");
    r.set_method("sandbox");
    return r;
  }

  api::v1::Payment Create(std::string key, api::v1::CreatePaymentRequest request,
                          std::string principal = "sales-platform") {
    auto created = RunUntilDone(io_, service_->CreatePayment(principal, key, std::move(request)));
    EXPECT_TRUE(created) << (created ? "" : created.error().code);
    return created ? created.value() : api::v1::Payment{};
  }

  api::v1::Payment Get(const std::string& id) {
    auto p = RunUntilDone(io_, service_->GetPayment("sales-platform", id));
    EXPECT_TRUE(p);
    return p ? p.value() : api::v1::Payment{};
  }

  CallbackReply Callback(const std::string& body, std::string sig = "good") {
    adapters::CallbackRequest request;
    request.merchant_account = "m1";
    request.headers = {{"x-sig", sig}};
    request.body = body;
    auto reply = RunUntilDone(io_, service_->ReceiveCallback("sandbox", request));
    if (reply.callback_id > 0) {
      auto applied = RunUntilDone(io_, service_->ApplyCallback(reply.callback_id));
      EXPECT_TRUE(applied) << applied.error().message();
    }
    return reply;
  }

  std::int64_t SqlInt(const std::string& sql) {
    auto r = RunUntilDone(io_, [&]() -> asio::awaitable<Result<std::int64_t>> {
      auto lease = co_await pool_.Acquire(In(10s));
      if (!lease) co_return lease.error();
      auto rows = co_await lease.value()->ExecuteSimple(sql, In(10s));
      if (!rows) co_return rows.error();
      co_return rows.value().GetInt64(0, 0);
    }());
    EXPECT_TRUE(r) << sql;
    return r ? r.value() : -1;
  }

  ledger::Balance BalanceOf(const std::string& name) {
    auto b = RunUntilDone(
        io_, ledger_->GetBalance(ledger::AccountIdFor("CNY", name), std::nullopt, In(10s)));
    EXPECT_TRUE(b);
    return b ? b.value() : ledger::Balance{};
  }

  // Makes the janitor's tasks due now (expiries only when asked) and runs one round.
  std::size_t JanitorRound(bool expiries = false) {
    SqlInt(std::string("WITH u AS (UPDATE janitor_tasks SET due_at = now() - interval '1 second' "
                       "WHERE NOT manual") +
           (expiries ? "" : " AND kind <> 'expire_order'") +
           " RETURNING 1) SELECT count(*) FROM u");
    Janitor janitor(io_.get_executor(), service_, JanitorOptions{});
    return RunUntilDone(io_, janitor.RunOnce());
  }

  asio::io_context io_;
  db::PgPool pool_;
  std::unique_ptr<ledger::PostgresLedger> ledger_;
  std::shared_ptr<ScriptedAdapter> adapter_;
  std::shared_ptr<PaymentService> service_;
};

const std::string kClearing = "provider_clearing:sandbox:m1";

// An order of 500 CNY by sales-platform through the sandbox route, as the store takes it.
store::Order StoreOrder(std::string id, std::string client_reference, std::int64_t expires_at_us) {
  store::Order o;
  o.id = std::move(id);
  o.principal = "sales-platform";
  o.client_reference = std::move(client_reference);
  o.policy_number = "POL-1";
  o.amount_minor = 500;
  o.currency = "CNY";
  o.method = "sandbox";
  o.provider = "sandbox";
  o.merchant_account = "m1";
  o.routing_reason = "test";
  o.expires_at_us = expires_at_us;
  return o;
}

// A payment id as the schema wants it ("pay_" and at least 20 lower-case letters or digits).
std::string PayId(const std::string& tag) {
  return "pay_" + tag + std::string(20 - tag.size(), '0');
}

TEST_F(PaymentsTest, PendingThenCallbackSucceedsExactlyOnceWithOneLedgerPosting) {
  const api::v1::Payment created = Create("k1", Request());
  EXPECT_EQ(created.status(), "pending");
  EXPECT_EQ(created.next_action().type(), "qr_code_url");
  EXPECT_EQ(created.next_action().value(), "weixin://pay/" + created.id() + "_1");
  EXPECT_EQ(adapter_->last_create_.provider_reference, created.id() + "_1");
  EXPECT_EQ(adapter_->last_create_.notify_url, "https://pay.example:8443/v1/callbacks/sandbox/m1");

  const std::string ref = created.id() + "_1";
  CallbackReply first = Callback(ref + "|succeeded|n1");
  EXPECT_TRUE(first.verified);
  EXPECT_FALSE(first.duplicate);
  EXPECT_EQ(first.ack.body, "OK");
  api::v1::Payment paid = Get(created.id());
  EXPECT_EQ(paid.status(), "succeeded");
  EXPECT_EQ(paid.captured_minor(), 12345);
  EXPECT_EQ(paid.refundable_minor(), 12345);

  // The same notification again, a second success under another id, and a stale pending: none
  // has a second effect.
  EXPECT_TRUE(Callback(ref + "|succeeded|n1").duplicate);
  EXPECT_FALSE(Callback(ref + "|succeeded|n2").duplicate);
  Callback(ref + "|pending|n0");
  EXPECT_EQ(Get(created.id()).status(), "succeeded");

  EXPECT_EQ(BalanceOf(kClearing).debits_posted, 12345);
  EXPECT_EQ(BalanceOf("premiums_received").credits_posted, 12345);
  EXPECT_EQ(
      SqlInt("SELECT count(*) FROM ledger_transfers WHERE external_ref = '" + created.id() + "'"),
      1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM outbox_events WHERE object_id = '" + created.id() +
                   "' AND type = 'payment.succeeded'"),
            1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM outbox_events WHERE object_id = '" + created.id() +
                   "' AND type = 'payment.pending'"),
            1);
  // Each event's delivery is retried for the configured window (here one hour), then dead.
  EXPECT_EQ(SqlInt("SELECT count(*) FROM event_deliveries d JOIN outbox_events e ON e.id = "
                   "d.event_id WHERE d.give_up_at = e.created_at + interval '1 hour'"),
            2);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM provider_callbacks WHERE applied_at IS NULL"), 0);
  // Terminal: the janitor has nothing left to ask about this order.
  EXPECT_EQ(SqlInt("SELECT count(*) FROM janitor_tasks"), 0);
}

TEST_F(PaymentsTest, BadlySignedOrMalformedCallbacksAreRefusedAndNotStored) {
  const api::v1::Payment created = Create("k1", Request());
  CallbackReply bad = Callback(created.id() + "_1|succeeded|n1", "forged");
  EXPECT_FALSE(bad.verified);
  EXPECT_EQ(bad.ack.status, 401u);
  EXPECT_FALSE(Callback("garbage").verified);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM provider_callbacks"), 0);
  EXPECT_EQ(Get(created.id()).status(), "pending");
}

TEST_F(PaymentsTest, UnknownIsProcessingNeverFailedAndTheJanitorResolvesIt) {
  adapter_->Queue("create", Answer(Outcome::kUnknown));
  const api::v1::Payment created = Create("k1", Request());
  EXPECT_EQ(created.status(), "processing");
  EXPECT_FALSE(created.has_failure());

  // An inquiry that gets no usable answer changes nothing and is rescheduled.
  adapter_->Queue("query", Answer(Outcome::kUnknown));
  JanitorRound();
  EXPECT_EQ(Get(created.id()).status(), "processing");
  EXPECT_EQ(SqlInt("SELECT attempts FROM janitor_tasks WHERE kind = 'inquire_attempt'"), 1);

  adapter_->Queue("query", Answer(Outcome::kSucceeded));
  JanitorRound();
  EXPECT_EQ(Get(created.id()).status(), "succeeded");
  EXPECT_EQ(BalanceOf("premiums_received").credits_posted, 12345);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM janitor_tasks"), 0);
}

TEST_F(PaymentsTest, AttemptLeftSendingByACrashIsResolvedByTheJanitor) {
  // The intent committed, then the daemon died before recording the provider's answer.
  const store::Order order =
      StoreOrder(store::NewId("pay_"), "k-crash",
                 (std::chrono::system_clock::now() + 1h).time_since_epoch() / 1us);
  auto inserted = RunUntilDone(io_, store::InsertOrder(pool_, order, In(10s)));
  ASSERT_TRUE(inserted);
  EXPECT_EQ(Get(order.id).status(), "processing");

  adapter_->Queue("query", Answer(Outcome::kSucceeded));
  JanitorRound();
  EXPECT_EQ(Get(order.id).status(), "succeeded");
  EXPECT_EQ(BalanceOf(kClearing).debits_posted, 500);
  // A retry of the create with the same key returns the order, without a second provider call.
  auto again = Request(500);
  again.set_payer_id("");  // As the intent above was stored.
  const int creates = adapter_->Calls("create");
  EXPECT_EQ(Create("k-crash", again).id(), order.id);
  EXPECT_EQ(adapter_->Calls("create"), creates);
}

TEST_F(PaymentsTest, DeclinedAndNotSentFailWithPreciseCodes) {
  adapter_->Queue("create", Answer(Outcome::kDeclined));
  const api::v1::Payment declined = Create("k1", Request());
  EXPECT_EQ(declined.status(), "failed");
  EXPECT_EQ(declined.failure().code(), "insufficient_funds");

  adapter_->Queue("create", Answer(Outcome::kNotSent));
  const api::v1::Payment unsent = Create("k2", Request());
  EXPECT_EQ(unsent.status(), "failed");
  EXPECT_EQ(unsent.failure().code(), "provider_unreachable");
  EXPECT_EQ(BalanceOf("premiums_received").credits_posted, 0);
  // A late success for a failed payment never moves it (money moved: logged for manual refund).
  Callback(declined.id() + "_1|succeeded|late");
  EXPECT_EQ(Get(declined.id()).status(), "failed");
  EXPECT_EQ(BalanceOf("premiums_received").credits_posted, 0);
}

TEST_F(PaymentsTest, RetriedCreateAnswersTheSameOrderAndAChangedBodyIsRefused) {
  const api::v1::Payment first = Create("k1", Request());
  const api::v1::Payment second = Create("k1", Request());
  EXPECT_EQ(first.id(), second.id());
  EXPECT_EQ(adapter_->Calls("create"), 1);
  auto changed = RunUntilDone(io_, service_->CreatePayment("sales-platform", "k1", Request(999)));
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().status, 422u);
  // The same key from another client is another order.
  EXPECT_NE(Create("k1", Request(), "other-client").id(), first.id());
}

TEST_F(PaymentsTest, ValidationNamesTheField) {
  struct Case {
    std::function<void(api::v1::CreatePaymentRequest*)> mutate;
    std::string param;
    std::string code;
  };
  const std::vector<Case> cases = {
      {[](auto* r) { r->set_policy_number(""); }, "policy_number", "parameter_missing"},
      {[](auto* r) { r->set_amount_minor(0); }, "amount_minor", "amount_invalid"},
      {[](auto* r) { r->set_amount_minor(-5); }, "amount_minor", "amount_invalid"},
      {[](auto* r) { r->set_amount_minor(1000001); }, "amount_minor", "amount_out_of_range"},
      {[](auto* r) { r->set_currency("USD"); }, "currency", "currency_not_supported"},
      {[](auto* r) { r->set_method("cash"); }, "method", "method_not_supported"},
      {[](auto* r) { r->set_description(std::string(129, 'x')); }, "description",
       "parameter_invalid"},
  };
  for (const Case& c : cases) {
    auto request = Request();
    c.mutate(&request);
    auto result = RunUntilDone(io_, service_->CreatePayment("sales-platform", "k", request));
    ASSERT_FALSE(result) << c.param;
    EXPECT_EQ(result.error().status, 400u) << c.param;
    EXPECT_EQ(result.error().param, c.param);
    EXPECT_EQ(result.error().code, c.code);
  }
  EXPECT_EQ(adapter_->Calls("create"), 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM payment_orders"), 0);
}

TEST_F(PaymentsTest, AnotherClientsPaymentIsNotFound) {
  const api::v1::Payment mine = Create("k1", Request());
  auto theirs = RunUntilDone(io_, service_->GetPayment("claims-system", mine.id()));
  ASSERT_FALSE(theirs);
  EXPECT_EQ(theirs.error().status, 404u);
  auto close = RunUntilDone(io_, service_->ClosePayment("claims-system", mine.id()));
  ASSERT_FALSE(close);
  EXPECT_EQ(close.error().status, 404u);
  api::v1::CreateRefundRequest refund;
  auto refunded =
      RunUntilDone(io_, service_->CreateRefund("claims-system", "r1", mine.id(), refund));
  ASSERT_FALSE(refunded);
  EXPECT_EQ(refunded.error().status, 404u);
}

TEST_F(PaymentsTest, CloseAndExpiry) {
  const api::v1::Payment a = Create("k1", Request());
  auto closed = RunUntilDone(io_, service_->ClosePayment("sales-platform", a.id()));
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed.value().status(), "closed");

  // Expiry: the janitor closes the unpaid order at the provider.
  const api::v1::Payment b = Create("k2", Request());
  JanitorRound(true);  // Runs b's inquiry (still pending) and its expiry.
  const api::v1::Payment expired = Get(b.id());
  EXPECT_EQ(expired.status(), "closed");
  EXPECT_EQ(expired.failure().code(), "expired");
  EXPECT_EQ(SqlInt("SELECT count(*) FROM outbox_events WHERE type = 'payment.closed'"), 2);

  // A paid order cannot be closed.
  const api::v1::Payment c = Create("k3", Request());
  Callback(c.id() + "_1|succeeded|n1");
  auto refused = RunUntilDone(io_, service_->ClosePayment("sales-platform", c.id()));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().status, 409u);
}

TEST_F(PaymentsTest, RefundsPostOnceAndADeclineReleasesTheAmount) {
  const api::v1::Payment p = Create("k1", Request(1000));
  Callback(p.id() + "_1|succeeded|n1");

  api::v1::CreateRefundRequest partial;
  partial.set_amount_minor(300);
  auto r1 = RunUntilDone(io_, service_->CreateRefund("sales-platform", "r1", p.id(), partial));
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1.value().status(), "succeeded");
  // A retry with the same key is the same refund, not a second one.
  auto r1_again =
      RunUntilDone(io_, service_->CreateRefund("sales-platform", "r1", p.id(), partial));
  ASSERT_TRUE(r1_again);
  EXPECT_EQ(r1_again.value().id(), r1.value().id());
  EXPECT_EQ(adapter_->Calls("refund"), 1);

  adapter_->Queue("refund", Answer(Outcome::kDeclined));
  auto r2 = RunUntilDone(io_, service_->CreateRefund("sales-platform", "r2", p.id(), partial));
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2.value().status(), "failed");
  EXPECT_EQ(Get(p.id()).refundable_minor(), 700);

  adapter_->Queue("refund", Answer(Outcome::kUnknown));
  api::v1::CreateRefundRequest rest;  // 0: everything refundable
  auto r3 = RunUntilDone(io_, service_->CreateRefund("sales-platform", "r3", p.id(), rest));
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3.value().status(), "processing");
  EXPECT_EQ(r3.value().amount_minor(), 700);
  EXPECT_EQ(Get(p.id()).refundable_minor(), 0);
  adapter_->Queue("query_refund", Answer(Outcome::kSucceeded));
  JanitorRound();
  EXPECT_EQ(
      RunUntilDone(io_, service_->GetRefund("sales-platform", r3.value().id())).value().status(),
      "succeeded");
  const api::v1::Payment after = Get(p.id());
  EXPECT_EQ(after.refunded_minor(), 1000);
  EXPECT_EQ(BalanceOf("premiums_received").debits_posted, 1000);
  EXPECT_EQ(BalanceOf(kClearing).credits_posted, 1000);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM ledger_transfers WHERE id LIKE 'refund:%'"), 2);
}

TEST_F(PaymentsTest, RefundTheProviderNeverSawIsSentAgainUnderTheSameReference) {
  const api::v1::Payment p = Create("k1", Request(1000));
  Callback(p.id() + "_1|succeeded|n1");
  adapter_->Queue("refund", Answer(Outcome::kUnknown));  // e.g. a 5xx: maybe never executed
  api::v1::CreateRefundRequest request;
  request.set_amount_minor(400);
  auto refund = RunUntilDone(io_, service_->CreateRefund("sales-platform", "r1", p.id(), request));
  ASSERT_TRUE(refund);
  EXPECT_EQ(refund.value().status(), "processing");
  // The provider does not know it: the janitor sends the same refund again, and it succeeds.
  adapter_->Queue("query_refund", Answer(Outcome::kUnknown));
  JanitorRound();
  EXPECT_EQ(adapter_->Calls("refund"), 2);
  EXPECT_EQ(RunUntilDone(io_, service_->GetRefund("sales-platform", refund.value().id()))
                .value()
                .status(),
            "succeeded");
  EXPECT_EQ(Get(p.id()).refunded_minor(), 400);
  EXPECT_EQ(BalanceOf("premiums_received").debits_posted, 400);
}

TEST_F(PaymentsTest, FiftyParallelRefundsNeverExceedTheCapturedAmount) {
  const api::v1::Payment p = Create("k1", Request(1000));
  Callback(p.id() + "_1|succeeded|n1");

  std::atomic<int> succeeded{0}, refused{0}, other{0};
  int finished = 0;
  for (int i = 0; i < 50; ++i) {
    asio::co_spawn(
        io_,
        [&, i]() -> asio::awaitable<void> {
          api::v1::CreateRefundRequest request;
          request.set_amount_minor(30);
          std::string principal = "sales-platform";
          std::string key = "par-" + std::to_string(i);
          std::string id = p.id();
          auto r = co_await service_->CreateRefund(principal, key, id, request);
          if (r && r.value().status() == "succeeded") {
            ++succeeded;
          } else if (!r && r.error().code == "amount_exceeds_refundable") {
            ++refused;
          } else {
            ++other;
          }
          ++finished;
        },
        asio::detached);
  }
  io_.restart();
  while (finished < 50) io_.run_one();
  EXPECT_EQ(succeeded.load(), 33);  // 33 * 30 = 990 <= 1000 < 34 * 30
  EXPECT_EQ(refused.load(), 17);
  EXPECT_EQ(other.load(), 0);
  const api::v1::Payment after = Get(p.id());
  EXPECT_EQ(after.refunded_minor(), 990);
  EXPECT_EQ(after.refundable_minor(), 10);
  EXPECT_EQ(BalanceOf("premiums_received").debits_posted, 990);
  auto verify = RunUntilDone(io_, ledger_->Verify(In(30s)));
  ASSERT_TRUE(verify);
  EXPECT_TRUE(verify.value().ok());
}

TEST_F(PaymentsTest, ConcurrentCreatesShareTransactionsAndEachGetsItsOwnOrder) {
  // Proves the group commit of new orders (issue 4): 40 creates at once are written in far fewer
  // transactions than 40, each create answers with its own order, and two creates with one
  // Idempotency-Key's client reference answer with one order.
  constexpr int kCreates = 40;
  std::vector<std::string> ids(kCreates + 2);
  int finished = 0, failed = 0;
  for (int i = 0; i < kCreates + 2; ++i) {
    asio::co_spawn(
        io_,
        [&, i]() -> asio::awaitable<void> {
          std::string principal = "sales-platform";
          std::string key = i < kCreates ? "group-" + std::to_string(i) : "group-twice";
          // The two creates with one key ask the same; the others each their own amount.
          auto created = co_await service_->CreatePayment(principal, key,
                                                          Request(100 + std::min(i, kCreates)));
          if (created) {
            ids[i] = created.value().id();
          } else {
            ++failed;
          }
          ++finished;
        },
        asio::detached);
  }
  io_.restart();
  while (finished < kCreates + 2) io_.run_one();
  ASSERT_EQ(failed, 0);
  const std::set<std::string> distinct(ids.begin(), ids.begin() + kCreates);
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kCreates));
  EXPECT_EQ(ids[kCreates], ids[kCreates + 1]);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM payment_orders"), kCreates + 1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM payment_attempts"), kCreates + 1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM janitor_tasks WHERE kind = 'expire_order'"), kCreates + 1);
  // Each expiry task is still the row its order's transaction inserted: its xmin names that
  // transaction. One transaction per create would give 41.
  EXPECT_LT(SqlInt("SELECT count(DISTINCT xmin::text) FROM janitor_tasks "
                   "WHERE kind = 'expire_order'"),
            kCreates / 2);
  EXPECT_EQ(adapter_->Calls("create"), kCreates + 1);
}

TEST_F(PaymentsTest, InsertOrdersAnswersEachIntentAndWritesAllOrNothing) {
  // Proves store::InsertOrders: new orders get their attempt and their two janitor tasks and run
  // their hook; an intent repeating a client reference of the batch, or one already stored,
  // answers with that order and runs no hook; a failing hook writes nothing of the batch.
  auto order = [](const std::string& tag, std::string reference) {
    return StoreOrder(PayId(tag), std::move(reference), 4102444800000000);  // 2100-01-01
  };
  auto stored = RunUntilDone(io_, store::InsertOrder(pool_, order("old", "ref-old"), In(10s)));
  ASSERT_TRUE(stored) << stored.error().message();
  std::vector<std::string> hooked;
  auto hook = [&hooked](std::string name) -> store::TxHook {
    return [&hooked, name](db::PgConnection&) -> asio::awaitable<Result<void>> {
      hooked.push_back(name);
      co_return outcome::success();
    };
  };
  std::vector<store::OrderIntent> intents{{order("a", "ref-a"), hook("a")},
                                          {order("b", "ref-b"), hook("b")},
                                          {order("atwo", "ref-a"), hook("a2")},
                                          {order("oldtwo", "ref-old"), hook("old2")}};
  auto answers = RunUntilDone(io_, store::InsertOrders(pool_, intents, In(10s)));
  ASSERT_TRUE(answers) << answers.error().message();
  ASSERT_EQ(answers.value().size(), 4u);
  EXPECT_TRUE(answers.value()[0].inserted);
  EXPECT_EQ(answers.value()[0].order.id, PayId("a"));
  EXPECT_EQ(answers.value()[0].order.status, "processing");
  EXPECT_TRUE(answers.value()[1].inserted);
  EXPECT_EQ(answers.value()[1].order.id, PayId("b"));
  EXPECT_FALSE(answers.value()[2].inserted);
  EXPECT_EQ(answers.value()[2].order.id, PayId("a"));
  EXPECT_FALSE(answers.value()[3].inserted);
  EXPECT_EQ(answers.value()[3].order.id, PayId("old"));
  EXPECT_EQ(hooked, (std::vector<std::string>{"a", "b"}));
  const std::string a = PayId("a"), b = PayId("b");
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM payment_orders WHERE id IN ('{}', '{}')",
                               PayId("atwo"), PayId("oldtwo"))),
            0);
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM payment_attempts WHERE order_id IN ('{}', "
                               "'{}') AND seq = 1 AND status = 'sending' AND amount_minor = 500",
                               a, b)),
            2);
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM janitor_tasks WHERE (kind, object_id) IN "
                               "(('inquire_attempt', '{0}_1'), ('inquire_attempt', '{1}_1'), "
                               "('expire_order', '{0}'), ('expire_order', '{1}'))",
                               a, b)),
            4);
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM janitor_tasks WHERE kind = 'expire_order' "
                               "AND object_id = '{}' AND due_at = '2100-01-01 00:00:00+00'",
                               b)),
            1);

  std::vector<store::OrderIntent> failing{
      {order("c", "ref-c"), hook("c")},
      {order("d", "ref-d"), [](db::PgConnection&) -> asio::awaitable<Result<void>> {
         co_return make_error_code(db::Errc::bad_value);
       }}};
  auto refused = RunUntilDone(io_, store::InsertOrders(pool_, failing, In(10s)));
  ASSERT_FALSE(refused);
  const std::string c = PayId("c"), d = PayId("d");
  EXPECT_EQ(
      SqlInt(fmt::format("SELECT count(*) FROM payment_orders WHERE id IN ('{}', '{}')", c, d)), 0);
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM payment_attempts WHERE order_id IN ('{}', "
                               "'{}')",
                               c, d)),
            0);
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM janitor_tasks WHERE object_id LIKE '{}%' OR "
                               "object_id LIKE '{}%'",
                               c, d)),
            0);
}

TEST_F(PaymentsTest, ReleasedHeldOrderGetsTheFirstAttemptAndTasksOfANewOrder) {
  // Proves a held order released by review gets what InsertOrder gives a new order: attempt 1
  // `sending` under the release's routing reason, its inquiry, and its expiry at the new time.
  store::Order held = StoreOrder(PayId("held"), "ref-held", 4102444800000000);
  held.status = "requires_review";
  const store::Books books{*ledger_, std::chrono::hours(1)};
  auto stored = RunUntilDone(io_, store::InsertStoppedOrder(pool_, books, held, In(10s)));
  ASSERT_TRUE(stored) << stored.error().message();
  EXPECT_EQ(SqlInt("SELECT count(*) FROM payment_attempts"), 0);
  const std::int64_t expires_us = 4133980800000000;  // 2101-01-01
  auto released = RunUntilDone(
      io_,
      db::RunInTransaction(pool_, In(10s), db::TransactionOptions{},
                           [&](db::PgConnection& conn) -> asio::awaitable<Result<store::Order>> {
                             co_return co_await store::ReleaseHeldOrderTx(
                                 conn, held.id, "approved by review", expires_us, In(10s));
                           }));
  ASSERT_TRUE(released) << released.error().message();
  EXPECT_EQ(released.value().status, "processing");
  const std::string id = held.id;
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM payment_attempts WHERE order_id = '{}' AND "
                               "seq = 1 AND status = 'sending' AND routing_reason = "
                               "'approved by review' AND provider_reference = '{}_1' AND "
                               "provider = 'sandbox' AND merchant_account = 'm1'",
                               id, id)),
            1);
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM janitor_tasks WHERE kind = 'inquire_attempt' "
                               "AND object_id = '{}_1' AND due_at > now() + interval '30 seconds' "
                               "AND due_at <= now() + interval '60 seconds'",
                               id)),
            1);
  EXPECT_EQ(SqlInt(fmt::format("SELECT count(*) FROM janitor_tasks WHERE kind = 'expire_order' "
                               "AND object_id = '{}' AND due_at = '2101-01-01 00:00:00+00'",
                               id)),
            1);
}

TEST_F(PaymentsTest, StoredButUnappliedCallbackIsAppliedByTheJanitor) {
  const api::v1::Payment p = Create("k1", Request());
  adapters::CallbackRequest request;
  request.merchant_account = "m1";
  request.headers = {{"x-sig", "good"}};
  request.body = p.id() + "_1|succeeded|n1";
  // Stored and acknowledged; the daemon dies before applying it.
  auto reply = RunUntilDone(io_, service_->ReceiveCallback("sandbox", request));
  ASSERT_GT(reply.callback_id, 0);
  EXPECT_EQ(Get(p.id()).status(), "pending");
  JanitorRound();
  EXPECT_EQ(Get(p.id()).status(), "succeeded");
  EXPECT_EQ(SqlInt("SELECT count(*) FROM provider_callbacks WHERE applied_at IS NULL"), 0);
}

TEST_F(PaymentsTest, ListFiltersAndPages) {
  for (int i = 0; i < 5; ++i) {
    auto r = Request(100 + i);
    r.set_policy_number(i % 2 == 0 ? "POL-EVEN" : "POL-ODD");
    Create("k" + std::to_string(i), r);
  }
  Create("other", Request(), "claims-system");
  ListFilter filter;
  filter.policy_number = "POL-EVEN";
  filter.limit = 2;
  auto page1 = RunUntilDone(io_, service_->ListPayments("sales-platform", filter));
  ASSERT_TRUE(page1);
  ASSERT_EQ(page1.value().payments_size(), 2);
  EXPECT_FALSE(page1.value().next_cursor().empty());
  filter.cursor = page1.value().next_cursor();
  auto page2 = RunUntilDone(io_, service_->ListPayments("sales-platform", filter));
  ASSERT_TRUE(page2);
  ASSERT_EQ(page2.value().payments_size(), 1);
  EXPECT_TRUE(page2.value().next_cursor().empty());
  EXPECT_EQ(page2.value().payments(0).amount_minor(), 100);  // Oldest last.
  ListFilter failed;
  failed.status = OrderStatus::kFailed;
  EXPECT_EQ(
      RunUntilDone(io_, service_->ListPayments("sales-platform", failed)).value().payments_size(),
      0);
}

TEST_F(PaymentsTest, JanitorPurgesExpiredNoncesAndIdempotencyRecordsOnly) {
  SqlInt(
      "WITH i AS (INSERT INTO api_nonces VALUES "
      "('k1', 'expired-nonce-0001', now() - interval '1 second'), "
      "('k1', 'live-nonce-000001', now() + interval '5 minutes') RETURNING 1) "
      "SELECT count(*) FROM i");
  SqlInt(
      "WITH i AS (INSERT INTO idempotency_keys (principal, key, fingerprint, state, lease_token, "
      "request_id, response_status, response_content_type, response_headers, response_body, "
      "created_at, expires_at) SELECT 'sales-platform', k, sha256(k::bytea), 'done', "
      "gen_random_uuid(), 'r', 201, 'application/json', '', '{}', c, c + interval '7 days' "
      "FROM (VALUES ('old', now() - interval '8 days'), ('new', now())) v(k, c) RETURNING 1) "
      "SELECT count(*) FROM i");
  JanitorRound();
  EXPECT_EQ(SqlInt("SELECT count(*) FROM api_nonces"), 1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM api_nonces WHERE nonce = 'live-nonce-000001'"), 1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM idempotency_keys"), 1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM idempotency_keys WHERE key = 'new'"), 1);
}

}  // namespace
}  // namespace paygate::payments
