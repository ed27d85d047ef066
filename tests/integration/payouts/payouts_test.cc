// PayoutService against a real PostgreSQL and the real ledger, with an in-process transfer provider
// that keeps its own record of executed transfers (by provider reference, each executed at most
// once, as real providers' idempotency keys guarantee) and meets each call with a chosen fault.
// Proves: maker-checker approval, fraud-free routing, one attempt at a time, unknown resolved only
// by inquiry (never re-sent), a new attempt only after not_sent, the manual queue with evidence,
// the ledger's reservation/post/void and its refusal to overdraw the clearing account, exactly-once
// callbacks, beneficiary data encrypted at rest and absent from the dump, events and logs.
#include <utility>  // Before Asio (DESIGN.md §2).

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <openssl/rand.h>
#include <spdlog/sinks/ostream_sink.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "adapters/adapter.h"
#include "config/logging.h"
#include "gateway/fraud/service.h"
#include "gateway/payments/janitor.h"
#include "gateway/payments/service.h"
#include "gateway/payouts/service.h"
#include "gateway/payouts/store.h"
#include "gateway/risk/ruleset.h"
#include "keys/field_cipher.h"
#include "ledger/db/migrations.h"
#include "ledger/db/pg_pool.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/postgres_ledger.h"
#include "tests/integration/db/db_test_util.h"
#include "tests/testing/pg_cluster.h"
#include "tests/testing/run_async.h"

namespace paygate::payouts {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using adapters::Outcome;
using adapters::ProviderResult;
using db::test::FreshDatabase;
using db::test::In;
using db::test::MakePoolOptions;

// Every log line of the binary, to grep for personal data.
std::ostringstream& Logs() {
  static std::ostringstream logs;
  return logs;
}
class CaptureLogs : public ::testing::Environment {
 public:
  void SetUp() override {
    config::v1::Logging logging;
    logging.set_level("debug");
    log::Configure(logging, std::make_shared<spdlog::sinks::ostream_sink_mt>(Logs()));
  }
};
const auto* const kCaptureLogs = ::testing::AddGlobalTestEnvironment(new CaptureLogs);

const std::string kAccount = "6222020200112233445";
const std::string kIdNumber = "110101199003074518";
const std::string kName = "Zhang Sanfeng";

// How the provider meets one create call.
enum class Fault {
  kNone,           // executes, answers succeeded
  kTimeoutAfter,   // executes, the answer is lost (unknown)
  kTimeoutBefore,  // never executes, no answer (unknown)
  kServerError,    // 5xx before executing (unknown)
  kNotSent,        // the request provably never reached it
  kDecline,        // refuses definitively
  kPending,        // accepts; executes and says so later (callback or inquiry)
};

// The provider side: its own record of what it executed, keyed by our provider reference.
class TransferProvider final : public adapters::Adapter {
 public:
  std::string_view provider() const override { return "sandbox"; }

  void Next(Fault fault) {
    std::lock_guard lock(mu_);
    faults_.push_back(fault);
  }
  // Inquiries answer `outcome` (instead of the record) this many times.
  void InquiryAnswers(Outcome outcome, int times) {
    std::lock_guard lock(mu_);
    for (int i = 0; i < times; ++i) inquiry_overrides_.push_back(outcome);
  }
  int Executions(const std::string& ref) {
    std::lock_guard lock(mu_);
    return executions_[ref];
  }
  std::int64_t ExecutedTotal() {
    std::lock_guard lock(mu_);
    std::int64_t total = 0;
    for (const auto& [ref, amount] : amounts_) total += amount;
    return total;
  }
  int Creates() {
    std::lock_guard lock(mu_);
    return creates_;
  }
  adapters::CreatePayoutRequest last;

  asio::awaitable<ProviderResult> CreatePayout(adapters::CreatePayoutRequest r) override {
    Fault fault = Fault::kNone;
    {
      std::lock_guard lock(mu_);
      ++creates_;
      last = r;
      if (!faults_.empty()) {
        fault = faults_.front();
        faults_.pop_front();
      }
    }
    ProviderResult result;
    switch (fault) {
      case Fault::kNone:
        Execute(r);
        result.outcome = Outcome::kSucceeded;
        result.provider_transaction_id = "tx-" + r.provider_reference;
        break;
      case Fault::kTimeoutAfter:
        Execute(r);
        result.outcome = Outcome::kUnknown;
        result.detail = "timeout after write";
        break;
      case Fault::kTimeoutBefore:
      case Fault::kServerError:
        result.outcome = Outcome::kUnknown;
        result.detail = fault == Fault::kServerError ? "HTTP 503" : "timeout";
        break;
      case Fault::kNotSent:
        result.outcome = Outcome::kNotSent;
        result.detail = "connect refused";
        break;
      case Fault::kDecline:
        result.outcome = Outcome::kDeclined;
        result.decline_code = "account_invalid";
        result.decline_message = "The beneficiary account does not exist.";
        break;
      case Fault::kPending: {
        std::lock_guard lock(mu_);
        accepted_[r.provider_reference] = r.amount_minor;
        result.outcome = Outcome::kPending;
        break;
      }
    }
    co_return result;
  }

  asio::awaitable<ProviderResult> QueryPayout(adapters::PayoutRef ref) override {
    ProviderResult result;
    std::lock_guard lock(mu_);
    ++inquiries_;
    if (!inquiry_overrides_.empty()) {
      result.outcome = inquiry_overrides_.front();
      inquiry_overrides_.pop_front();
      result.detail = "query timed out";
      co_return result;
    }
    if (accepted_.contains(ref.provider_reference)) {
      // Accepted earlier: executes now (as a provider completes a pending transfer).
      amounts_[ref.provider_reference] = accepted_[ref.provider_reference];
      ++executions_[ref.provider_reference];
      accepted_.erase(ref.provider_reference);
    }
    if (amounts_.contains(ref.provider_reference)) {
      result.outcome = Outcome::kSucceeded;
      result.amount_minor = amounts_[ref.provider_reference];
    } else {
      result.outcome = Outcome::kDeclined;
      result.decline_code = "not_found";
      result.decline_message = "No transfer with this reference was executed.";
    }
    co_return result;
  }

  // Not used by payouts.
  asio::awaitable<ProviderResult> CreatePayment(adapters::CreatePaymentRequest) override {
    co_return ProviderResult{};
  }
  asio::awaitable<ProviderResult> QueryPayment(adapters::PaymentRef) override {
    co_return ProviderResult{};
  }
  asio::awaitable<ProviderResult> ClosePayment(adapters::PaymentRef) override {
    co_return ProviderResult{};
  }
  asio::awaitable<ProviderResult> Refund(adapters::RefundRequest) override {
    co_return ProviderResult{};
  }
  asio::awaitable<ProviderResult> QueryRefund(adapters::RefundRef) override {
    co_return ProviderResult{};
  }

  // Callbacks: "reference|outcome|dedup" with header x-sig: good.
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
    event.kind = adapters::CallbackEvent::Kind::kPayout;
    event.reference = request.body.substr(0, a);
    const std::string outcome = request.body.substr(a + 1, b - a - 1);
    event.result.outcome = outcome == "succeeded"  ? Outcome::kSucceeded
                           : outcome == "declined" ? Outcome::kDeclined
                                                   : Outcome::kPending;
    event.dedup_key = request.body.substr(b + 1);
    return event;
  }
  adapters::CallbackAck AckCallback(bool accepted) const override {
    return accepted ? adapters::CallbackAck{200, "text/plain", "OK"}
                    : adapters::CallbackAck{401, "text/plain", "FAIL"};
  }

  // The provider executes a request that reached it although we never recorded sending it (the
  // daemon died during the call).
  void ExecuteAsSent(const std::string& ref, std::int64_t amount) {
    adapters::CreatePayoutRequest r;
    r.provider_reference = ref;
    r.amount_minor = amount;
    Execute(r);
  }
  std::map<std::string, std::int64_t> Executed() {
    std::lock_guard lock(mu_);
    return amounts_;
  }

  // The provider executes an accepted (pending) transfer and will call back.
  void Complete(const std::string& ref) {
    std::lock_guard lock(mu_);
    if (!accepted_.contains(ref)) return;
    amounts_[ref] = accepted_[ref];
    ++executions_[ref];
    accepted_.erase(ref);
  }

 private:
  void Execute(const adapters::CreatePayoutRequest& r) {
    std::lock_guard lock(mu_);
    // The provider's idempotency: a reference executes at most once, ever.
    if (amounts_.contains(r.provider_reference)) return;
    amounts_[r.provider_reference] = r.amount_minor;
    ++executions_[r.provider_reference];
  }

  std::mutex mu_;
  std::deque<Fault> faults_;
  std::deque<Outcome> inquiry_overrides_;
  std::map<std::string, std::int64_t> amounts_;
  std::map<std::string, std::int64_t> accepted_;
  std::map<std::string, int> executions_;
  int creates_ = 0;
  int inquiries_ = 0;
};

using testing::RunUntilDone;

class PayoutsTest : public ::testing::Test {
 public:
  PayoutsTest() : url_(FreshDatabase()), pool_(io_.get_executor(), MakePoolOptions(url_, 8)) {
    auto applied = RunUntilDone(io_, db::ApplyMigrations(pool_, In(30s)));
    EXPECT_TRUE(applied) << applied.error().message;
    ledger_ = std::make_unique<ledger::PostgresLedger>(pool_, io_.get_executor(),
                                                       ledger::PostgresLedgerOptions{});
    p1_ = std::make_shared<TransferProvider>();
    p2_ = std::make_shared<TransferProvider>();
    auto registry = std::make_shared<payments::AdapterRegistry>();
    registry->Add("p1", p1_);
    registry->Add("p2", p2_);

    payments::PaymentsOptions payment_options;
    payment_options.currencies = {"CNY"};
    payment_options.payout_clearing = {{"sandbox", "p1"}, {"sandbox", "p2"}};
    payments_ =
        std::make_shared<payments::PaymentService>(pool_, *ledger_, registry, payment_options);
    PayoutsOptions options;
    options.currencies = {"CNY"};
    options.amount_max_minor = 10000000;
    options.callback_base_url = "https://pay.example:8443";
    options.routes["bank"] = {{"sandbox", "p1"}, {"sandbox", "p2"}};
    options.approval_threshold_minor = 100000;          // 1,000.00 needs an approver
    options.second_approval_threshold_minor = 1000000;  // 10,000.00 needs two
    options.attempts_max = 3;
    options.inquiry_schedule = {1s, 1s, 1s};
    options.event_retry_window = 1h;
    // keys' FieldCipher under one random data key version (LoadFieldCipher would unwrap it from
    // the database; the cipher itself is the same).
    std::string key(32, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size()));
    std::vector<keys::DataKeyVersion> versions;
    versions.push_back({1, keys::Secret(std::move(key))});
    auto cipher = keys::FieldCipher::Create("payouts", std::move(versions));
    EXPECT_TRUE(cipher);
    cipher_ = std::move(cipher).value();
    service_ = std::make_shared<PayoutService>(pool_, *ledger_, registry, cipher_, options);
    payments_->AttachPayouts(service_->Hooks());
    auto chart = RunUntilDone(io_, payments_->EnsureChartOfAccounts());
    EXPECT_TRUE(chart) << chart.error().message();
    auto payout_chart = RunUntilDone(io_, service_->EnsureChartOfAccounts());
    EXPECT_TRUE(payout_chart) << payout_chart.error().message();
    Fund("p1", 5000000);
    Fund("p2", 5000000);
  }
  ~PayoutsTest() override {
    RunUntilDone(io_, [this]() -> asio::awaitable<bool> {
      co_await ledger_->Stop();
      co_return true;
    }());
  }

  // Premiums collected on the account fund its payouts: Dr clearing / Cr premiums_received.
  void Fund(const std::string& merchant, std::int64_t amount) {
    ledger::Transfer t;
    t.id.value = "fund:" + merchant + ":" + std::to_string(amount) + ":" + std::to_string(++funds_);
    t.debit_account_id = ledger::AccountIdFor("CNY", "provider_clearing:sandbox:" + merchant);
    t.credit_account_id = ledger::AccountIdFor("CNY", "premiums_received");
    t.amount = amount;
    t.currency = "CNY";
    t.reason_code = 1;
    std::vector<ledger::Transfer> transfers{t};
    auto posted = RunUntilDone(io_, ledger_->PostTransfers(std::move(transfers), In(10s)));
    ASSERT_TRUE(posted);
    ASSERT_EQ(posted.value().at(0), ledger::TransferResult::kOk);
  }

  api::v1::CreatePayoutRequest Request(std::int64_t amount = 50000, std::string claim = "CLM-1") {
    api::v1::CreatePayoutRequest r;
    r.set_claim_number(claim);
    r.set_policy_number("POL-1");
    r.set_claimant_id("claimant-7");
    r.mutable_beneficiary()->set_name(kName);
    r.mutable_beneficiary()->set_account_type("bank_card");
    r.mutable_beneficiary()->set_account(kAccount);
    r.mutable_beneficiary()->set_bank("ICBC");
    r.mutable_beneficiary()->set_id_number(kIdNumber);
    r.set_amount_minor(amount);
    r.set_currency("CNY");
    r.set_method("bank");
    r.set_reason("hospital stay");
    return r;
  }

  ApiResult<api::v1::Payout> TryCreate(std::string key, api::v1::CreatePayoutRequest request,
                                       std::string principal = "claims-system") {
    return RunUntilDone(io_, service_->CreatePayout(principal, key, std::move(request)));
  }
  api::v1::Payout Create(std::string key, api::v1::CreatePayoutRequest request) {
    auto created = TryCreate(std::move(key), std::move(request));
    EXPECT_TRUE(created) << (created ? "" : created.error().code);
    return created ? created.value() : api::v1::Payout{};
  }
  api::v1::Payout Get(const std::string& id) {
    auto p = RunUntilDone(io_, service_->GetPayout("claims-system", id));
    EXPECT_TRUE(p);
    return p ? p.value() : api::v1::Payout{};
  }
  ApiResult<api::v1::Payout> Decide(const std::string& who, const std::string& id, bool approve) {
    return RunUntilDone(io_, service_->DecidePayout(who, id, approve, "checked"));
  }

  payments::CallbackReply Callback(const std::string& merchant, const std::string& body) {
    adapters::CallbackRequest request;
    request.merchant_account = merchant;
    request.headers = {{"x-sig", "good"}};
    request.body = body;
    auto reply = RunUntilDone(io_, payments_->ReceiveCallback("sandbox", request));
    if (reply.callback_id > 0) {
      auto applied = RunUntilDone(io_, payments_->ApplyCallback(reply.callback_id));
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
  // An SQL statement that must fail; returns the server's message.
  std::string SqlError(const std::string& sql) {
    auto r = RunUntilDone(io_, [&]() -> asio::awaitable<Result<std::int64_t>> {
      auto lease = co_await pool_.Acquire(In(10s));
      if (!lease) co_return lease.error();
      auto rows = co_await lease.value()->ExecuteSimple(sql, In(10s));
      if (!rows) co_return rows.error();
      co_return std::int64_t{0};
    }());
    return r ? std::string() : r.error().message();
  }

  ledger::Balance BalanceOf(const std::string& name) {
    auto b =
        RunUntilDone(io_, ledger_->GetBalance(ledger::AccountIdFor("CNY", name), std::nullopt, In(10s)));
    EXPECT_TRUE(b);
    return b ? b.value() : ledger::Balance{};
  }

  // Makes the janitor's tasks due now and runs one round of the shared janitor.
  std::size_t JanitorRound() {
    SqlInt(
        "WITH u AS (UPDATE janitor_tasks SET due_at = now() - interval '1 second' WHERE NOT "
        "manual RETURNING 1) SELECT count(*) FROM u");
    payments::Janitor janitor(io_.get_executor(), payments_, payments::JanitorOptions{});
    return RunUntilDone(io_, janitor.RunOnce());
  }

  std::string url_;
  asio::io_context io_;
  db::PgPool pool_;
  std::unique_ptr<ledger::PostgresLedger> ledger_;
  std::shared_ptr<TransferProvider> p1_, p2_;
  std::shared_ptr<payments::PaymentService> payments_;
  std::shared_ptr<keys::FieldCipher> cipher_;
  std::shared_ptr<PayoutService> service_;
  int funds_ = 0;
};

const std::string kClearing1 = "provider_clearing:sandbox:p1";
const std::string kClearing2 = "provider_clearing:sandbox:p2";

TEST_F(PayoutsTest, BelowThresholdIsPaidOnceWithMaskedDataAndTheLedgerPosted) {
  const api::v1::Payout paid = Create("k1", Request(50000));
  EXPECT_EQ(paid.status(), "succeeded");
  EXPECT_EQ(paid.paid_minor(), 50000);
  EXPECT_EQ(paid.approvals_required(), 0);
  ASSERT_EQ(paid.attempts_size(), 1);
  EXPECT_EQ(paid.attempts(0).provider_reference(), paid.id() + "_1");
  EXPECT_EQ(p1_->last.provider_reference, paid.id() + "_1");
  EXPECT_EQ(p1_->Executions(paid.id() + "_1"), 1);
  // The provider got the plaintext; the response only the masks.
  EXPECT_EQ(p1_->last.beneficiary.account, kAccount);
  EXPECT_EQ(p1_->last.beneficiary.id_number, kIdNumber);
  EXPECT_EQ(p1_->last.beneficiary.name, kName);
  EXPECT_EQ(p1_->last.notify_url, "https://pay.example:8443/v1/callbacks/sandbox/p1");
  EXPECT_EQ(paid.beneficiary().account(), "************3445");
  EXPECT_EQ(paid.beneficiary().name().substr(0, 1), "Z");
  EXPECT_EQ(paid.beneficiary().name().find("Sanfeng"), std::string::npos);
  EXPECT_EQ(paid.beneficiary().id_number(), "************4518");

  // Submitted, reserved on approval (none needed), posted on success.
  EXPECT_EQ(BalanceOf("claims_expense").debits_posted, 50000);
  EXPECT_EQ(BalanceOf("claims_payable").credits_posted, 50000);
  EXPECT_EQ(BalanceOf("claims_payable").debits_posted, 50000);
  EXPECT_EQ(BalanceOf(kClearing1).credits_posted, 50000);
  EXPECT_EQ(BalanceOf(kClearing1).credits_pending, 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM outbox_events WHERE object_id = '" + paid.id() +
                   "' AND type = 'payout.succeeded'"),
            1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM janitor_tasks"), 0);

  // The same key again answers the same payout and pays nothing more; another body is 422.
  const api::v1::Payout again = Create("k1", Request(50000));
  EXPECT_EQ(again.id(), paid.id());
  EXPECT_EQ(p1_->Creates(), 1);
  auto different = TryCreate("k1", Request(60000));
  ASSERT_FALSE(different);
  EXPECT_EQ(different.error().status, 422u);
  EXPECT_EQ(different.error().code, "client_reference_reused");
}

TEST_F(PayoutsTest, PreciseValidationErrors) {
  auto request = Request();
  request.clear_claim_number();
  auto missing = TryCreate("v1", request);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().status, 400u);
  EXPECT_EQ(missing.error().param, "claim_number");
  request = Request();
  request.mutable_beneficiary()->set_account_type("cash");
  EXPECT_EQ(TryCreate("v2", request).error().param, "beneficiary.account_type");
  request = Request();
  request.mutable_beneficiary()->clear_bank();
  EXPECT_EQ(TryCreate("v3", request).error().param, "beneficiary.bank");
  request = Request();
  request.set_method("cheque");
  EXPECT_EQ(TryCreate("v4", request).error().code, "method_not_supported");
  request = Request(-5);
  EXPECT_EQ(TryCreate("v5", request).error().code, "amount_invalid");
  request = Request();
  request.set_currency("USD");
  EXPECT_EQ(TryCreate("v6", request).error().code, "currency_not_supported");
  EXPECT_EQ(SqlInt("SELECT count(*) FROM payouts"), 0);
  EXPECT_EQ(p1_->Creates(), 0);
}

TEST_F(PayoutsTest, MakerCheckerNeverTheSubmitterAndTwoDistinctApproversAboveTheSecondThreshold) {
  const api::v1::Payout held = Create("k1", Request(2000000));  // above the second threshold
  EXPECT_EQ(held.status(), "awaiting_approval");
  EXPECT_EQ(held.approvals_required(), 2);
  EXPECT_EQ(p1_->Creates(), 0);
  // The submission is booked; nothing is reserved before approval.
  EXPECT_EQ(BalanceOf("claims_payable").credits_posted, 2000000);
  EXPECT_EQ(BalanceOf(kClearing1).credits_pending, 0);

  auto own = Decide("claims-system", held.id(), true);
  ASSERT_FALSE(own);
  EXPECT_EQ(own.error().status, 403u);

  auto first = Decide("approver-a", held.id(), true);
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value().status(), "awaiting_approval");
  EXPECT_EQ(p1_->Creates(), 0);
  auto twice = Decide("approver-a", held.id(), true);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().status, 409u);
  EXPECT_EQ(p1_->Creates(), 0);

  auto second = Decide("approver-b", held.id(), true);
  ASSERT_TRUE(second);
  EXPECT_EQ(second.value().status(), "succeeded");
  EXPECT_EQ(second.value().approvals_size(), 2);
  EXPECT_EQ(p1_->Executions(held.id() + "_1"), 1);
  // The database refuses an approval by the submitter whatever the code does.
  EXPECT_NE(SqlError("INSERT INTO payout_approvals (payout_id, principal, decision) VALUES ('" +
                     held.id() + "', 'claims-system', 'approve')"),
            "");
  // Approving a settled payout is a conflict.
  EXPECT_EQ(Decide("approver-c", held.id(), true).error().status, 409u);
}

TEST_F(PayoutsTest, RejectAndCancelEndUnpaidAndReverseTheBooks) {
  const api::v1::Payout a = Create("k1", Request(200000));
  auto rejected = Decide("approver-a", a.id(), false);
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected.value().status(), "failed");
  EXPECT_EQ(rejected.value().failure().code(), "rejected");

  const api::v1::Payout b = Create("k2", Request(200000, "CLM-2"));
  auto cancelled = RunUntilDone(io_, service_->CancelPayout("claims-system", b.id()));
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled.value().status(), "cancelled");
  // Another client cannot even see it; the approvers cannot approve it any more.
  EXPECT_EQ(RunUntilDone(io_, service_->CancelPayout("other-client", b.id())).error().status, 404u);
  EXPECT_EQ(Decide("approver-a", b.id(), true).error().status, 409u);

  // Sent payouts are past cancelling.
  const api::v1::Payout c = Create("k3", Request(500, "CLM-3"));
  EXPECT_EQ(c.status(), "succeeded");
  EXPECT_EQ(RunUntilDone(io_, service_->CancelPayout("claims-system", c.id())).error().status, 409u);

  EXPECT_EQ(p1_->Creates(), 1);
  // Two reversed, one paid: claims_expense nets to the paid amount.
  const auto expense = BalanceOf("claims_expense");
  EXPECT_EQ(expense.debits_posted - expense.credits_posted, 500);
  // Terminal states never move, whatever the code does.
  EXPECT_NE(SqlError("UPDATE payouts SET status = 'processing' WHERE id = '" + a.id() + "'"), "");
}

TEST_F(PayoutsTest, AnUnfundedClearingAccountRefusesThePayoutBeforeAnyProviderCall) {
  const api::v1::Payout big = Create("k1", Request(6000000));  // the account holds 5,000,000
  EXPECT_EQ(big.status(), "awaiting_approval");
  ASSERT_TRUE(Decide("approver-a", big.id(), true));
  auto done = Decide("approver-b", big.id(), true);
  ASSERT_TRUE(done);
  EXPECT_EQ(done.value().status(), "failed");
  EXPECT_EQ(done.value().failure().code(), "insufficient_funds");
  EXPECT_EQ(p1_->Creates(), 0);
  EXPECT_EQ(BalanceOf(kClearing1).credits_pending, 0);
  EXPECT_EQ(BalanceOf(kClearing1).credits_posted, 0);
}

TEST_F(PayoutsTest, UnknownIsInquiredNeverResentAndSettlesFromTheProvidersRecord) {
  p1_->Next(Fault::kTimeoutAfter);
  const api::v1::Payout after = Create("k1", Request(1000, "CLM-1"));
  EXPECT_EQ(after.status(), "processing");
  EXPECT_FALSE(after.has_failure());
  // The reservation holds the money while the answer is unknown.
  EXPECT_EQ(BalanceOf(kClearing1).credits_pending, 1000);

  p1_->Next(Fault::kTimeoutBefore);
  const api::v1::Payout before = Create("k2", Request(2000, "CLM-2"));
  EXPECT_EQ(before.status(), "processing");

  JanitorRound();
  EXPECT_EQ(Get(after.id()).status(), "succeeded");
  EXPECT_EQ(Get(before.id()).status(), "failed");
  EXPECT_EQ(Get(before.id()).failure().code(), "not_found");
  // Never re-sent: two creates in all, each reference executed at most once.
  EXPECT_EQ(p1_->Creates(), 2);
  EXPECT_EQ(p1_->Executions(after.id() + "_1"), 1);
  EXPECT_EQ(p1_->Executions(before.id() + "_1"), 0);
  // The ledger matches the provider's record exactly.
  EXPECT_EQ(BalanceOf(kClearing1).credits_posted, p1_->ExecutedTotal());
  EXPECT_EQ(BalanceOf(kClearing1).credits_pending, 0);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM janitor_tasks"), 0);
}

TEST_F(PayoutsTest, StillUnknownAfterTheScheduleGoesToTheManualQueueWithEvidence) {
  p1_->Next(Fault::kServerError);
  const api::v1::Payout created = Create("k1", Request(1000));
  p1_->InquiryAnswers(Outcome::kUnknown, 10);
  for (int i = 0; i < 4; ++i) JanitorRound();
  const api::v1::Payout manual = Get(created.id());
  EXPECT_EQ(manual.status(), "manual_review");
  EXPECT_NE(manual.manual_reason().find(created.id() + "_1"), std::string::npos);
  EXPECT_NE(manual.manual_reason().find("query timed out"), std::string::npos);
  ASSERT_EQ(manual.attempts_size(), 1);
  EXPECT_EQ(manual.attempts(0).status(), "unknown");
  EXPECT_EQ(manual.attempts(0).inquiries(), 3);
  auto queue = RunUntilDone(io_, service_->ListManual(ListFilter{}));
  ASSERT_TRUE(queue);
  ASSERT_EQ(queue.value().payouts_size(), 1);
  EXPECT_EQ(queue.value().payouts(0).id(), created.id());
  EXPECT_EQ(p1_->Creates(), 1);
  // The money stays reserved: it may have left.
  EXPECT_EQ(BalanceOf(kClearing1).credits_pending, 1000);
  // The janitor stops asking; a late provider callback still settles it exactly once.
  EXPECT_EQ(SqlInt("SELECT count(*) FROM janitor_tasks WHERE manual"), 1);
  JanitorRound();
  EXPECT_EQ(Get(created.id()).status(), "manual_review");
  EXPECT_TRUE(Callback("p1", created.id() + "_1|declined|n1").verified);
  EXPECT_EQ(Get(created.id()).status(), "failed");
  EXPECT_EQ(BalanceOf(kClearing1).credits_pending, 0);
  EXPECT_EQ(BalanceOf(kClearing1).credits_posted, 0);
}

TEST_F(PayoutsTest, ANewAttemptOnlyAfterNotSentAndOnTheNextRoute) {
  p1_->Next(Fault::kNotSent);
  const api::v1::Payout paid = Create("k1", Request(1000));
  EXPECT_EQ(paid.status(), "succeeded");
  ASSERT_EQ(paid.attempts_size(), 2);
  EXPECT_EQ(paid.attempts(0).status(), "not_sent");
  EXPECT_EQ(paid.attempts(1).status(), "succeeded");
  EXPECT_EQ(paid.attempts(1).merchant_account(), "p2");
  EXPECT_EQ(paid.attempts(1).provider_reference(), paid.id() + "_2");
  EXPECT_EQ(p2_->Executions(paid.id() + "_2"), 1);
  // The first attempt's reservation was voided, the second's posted.
  EXPECT_EQ(BalanceOf(kClearing1).credits_pending, 0);
  EXPECT_EQ(BalanceOf(kClearing1).credits_posted, 0);
  EXPECT_EQ(BalanceOf(kClearing2).credits_posted, 1000);

  // A decline is definitive: no further attempt.
  p1_->Next(Fault::kDecline);
  const api::v1::Payout declined = Create("k2", Request(1000, "CLM-2"));
  EXPECT_EQ(declined.status(), "failed");
  EXPECT_EQ(declined.failure().code(), "account_invalid");
  EXPECT_EQ(declined.attempts_size(), 1);

  // attempts_max bounds the not_sent retries.
  for (int i = 0; i < 2; ++i) p1_->Next(Fault::kNotSent);
  p2_->Next(Fault::kNotSent);
  const api::v1::Payout unreachable = Create("k3", Request(1000, "CLM-3"));
  EXPECT_EQ(unreachable.status(), "failed");
  EXPECT_EQ(unreachable.failure().code(), "provider_unreachable");
  EXPECT_EQ(unreachable.attempts_size(), 3);

  // The database allows one open attempt per payout, whatever the code does.
  p1_->Next(Fault::kServerError);
  const api::v1::Payout open = Create("k4", Request(1000, "CLM-4"));
  EXPECT_NE(
      SqlError("INSERT INTO payout_attempts (payout_id, seq, provider, merchant_account, "
               "provider_reference, routing_reason, status) VALUES ('" +
               open.id() + "', 2, 'sandbox', 'p2', '" + open.id() + "_2', 'test', 'sending')"),
      "");
}

TEST_F(PayoutsTest, PendingThenDuplicateCallbacksHaveExactlyOneEffect) {
  p1_->Next(Fault::kPending);
  const api::v1::Payout pending = Create("k1", Request(1000));
  EXPECT_EQ(pending.status(), "processing");
  const std::string ref = pending.id() + "_1";
  p1_->Complete(ref);
  EXPECT_FALSE(Callback("p1", ref + "|succeeded|n1").duplicate);
  EXPECT_TRUE(Callback("p1", ref + "|succeeded|n1").duplicate);
  Callback("p1", ref + "|succeeded|n2");
  Callback("p1", ref + "|declined|n3");  // out of order: a terminal state never moves
  // A callback naming the reference from another account has no effect.
  Callback("p2", ref + "|declined|n4");
  const api::v1::Payout paid = Get(pending.id());
  EXPECT_EQ(paid.status(), "succeeded");
  EXPECT_EQ(BalanceOf(kClearing1).credits_posted, 1000);
  EXPECT_EQ(
      SqlInt("SELECT count(*) FROM ledger_transfers WHERE external_ref = '" + paid.id() + "'"),
      3);  // submitted, reserved, posted
  EXPECT_EQ(SqlInt("SELECT count(*) FROM outbox_events WHERE object_id = '" + paid.id() +
                   "' AND type = 'payout.succeeded'"),
            1);
}

TEST_F(PayoutsTest, BeneficiaryDataIsEncryptedAtRestBoundToItsRowAndNeverInDumpEventsOrLogs) {
  const api::v1::Payout a = Create("k1", Request(1000));
  const api::v1::Payout b = Create("k2", Request(200000, "CLM-2"));
  ASSERT_TRUE(Decide("approver-a", b.id(), true));

  // A ciphertext copied into another row fails to decrypt, so the provider call is never built
  // with it: provably never sent.
  const api::v1::Payout c = Create("k3", Request(200000, "CLM-3"));
  SqlInt(
      "WITH u AS (UPDATE payouts SET beneficiary_account_enc = (SELECT beneficiary_account_enc "
      "FROM payouts WHERE id = '" +
      a.id() + "') WHERE id = '" + c.id() + "' RETURNING 1) SELECT count(*) FROM u");
  const int creates = p1_->Creates() + p2_->Creates();
  auto approved = Decide("approver-a", c.id(), true);
  ASSERT_TRUE(approved);
  EXPECT_EQ(approved.value().status(), "failed");
  EXPECT_EQ(p1_->Creates() + p2_->Creates(), creates);

  // The whole database, as pg_dump writes it, and every log line: no plaintext.
  const std::string command = "pg_dump --data-only '" + url_ + "' 2>/dev/null";
  std::string dump;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[65536];
    std::size_t n = 0;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) dump.append(buffer, n);
    pclose(pipe);
  }
  ASSERT_NE(dump.find(a.id()), std::string::npos) << "the dump is empty";
  ASSERT_NE(dump.find("************3445"), std::string::npos);
  for (const std::string& secret : {kAccount, kIdNumber, std::string("Sanfeng")}) {
    EXPECT_EQ(dump.find(secret), std::string::npos) << secret << " in the dump";
    EXPECT_EQ(Logs().str().find(secret), std::string::npos) << secret << " in the logs";
  }
  EXPECT_NE(Logs().str().find(a.id()), std::string::npos) << "the logs were not captured";
}

// The fault mix, in process and seeded: every payout meets a random fault (timeout after
// or before executing, 5xx, not sent, decline, pending with a duplicate or a lost callback, a crash
// before or after the provider executed it); then the janitor runs until nothing is due. Proves
// from the provider's own record that nothing executed twice, that each payout ends in exactly one
// terminal state (or the manual queue) agreeing with that record, and that the ledger matches it.
TEST_F(PayoutsTest, RandomFaultsNeverPayTwiceAndTheLedgerMatchesTheProvidersRecord) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int count = std::getenv("PAYGATE_PAYOUTS_FAULTS") != nullptr
                        ? std::atoi(std::getenv("PAYGATE_PAYOUTS_FAULTS"))
                        : 120;
  payments::store::Books books{*ledger_, 1h};
  std::vector<std::string> ids;
  std::vector<std::pair<std::string, std::string>> callbacks;  // (merchant, body) to deliver
  for (int i = 0; i < count; ++i) {
    const std::int64_t amount = 100 + static_cast<std::int64_t>(rng() % 5000);
    const std::string key = "f" + std::to_string(i);
    const int fault = static_cast<int>(rng() % 10);
    if (fault >= 8) {
      // kill -9 during the provider call: the attempt is committed (`sending`), the answer never
      // recorded; with fault 9 the request had reached the provider and executed.
      api::v1::CreatePayoutRequest r = Request(amount, "CLM-F" + std::to_string(i));
      store::Payout p;
      p.id = payments::store::NewId("po_");
      p.principal = "claims-system";
      p.client_reference = key;
      p.claim_number = r.claim_number();
      p.policy_number = r.policy_number();
      p.amount_minor = amount;
      p.currency = "CNY";
      p.method = "bank";
      p.account_type = "bank_card";
      p.bank = "ICBC";
      p.name_masked = MaskName(kName);
      p.account_masked = MaskAccount(kAccount);
      p.status = "processing";
      store::SealedBeneficiary sealed;
      sealed.name = cipher_->Encrypt(kName, BeneficiaryAad("beneficiary_name_enc", p.id)).value();
      sealed.account =
          cipher_->Encrypt(kAccount, BeneficiaryAad("beneficiary_account_enc", p.id)).value();
      store::Policy policy;
      policy.routes = {{"sandbox", "p1"}, {"sandbox", "p2"}};
      auto inserted = RunUntilDone(io_, store::InsertPayout(pool_, books, p, sealed, policy, In(10s)));
      ASSERT_TRUE(inserted);
      ASSERT_TRUE(inserted.value().send.has_value());
      if (fault == 9) p1_->ExecuteAsSent(p.id + "_1", amount);
      ids.push_back(p.id);
      continue;
    }
    const Fault faults[] = {Fault::kNone,        Fault::kTimeoutAfter, Fault::kTimeoutBefore,
                            Fault::kServerError, Fault::kNotSent,      Fault::kDecline,
                            Fault::kPending,     Fault::kPending};
    p1_->Next(faults[fault]);
    if (faults[fault] == Fault::kNotSent) p2_->Next(Fault::kTimeoutAfter);
    const api::v1::Payout created = Create(key, Request(amount, "CLM-F" + std::to_string(i)));
    ids.push_back(created.id());
    if (faults[fault] == Fault::kPending) {
      const std::string ref = created.id() + "_1";
      p1_->Complete(ref);
      // fault 6: the callback arrives twice; fault 7: it is lost (the inquiry settles it).
      if (fault == 6) {
        callbacks.emplace_back("p1", ref + "|succeeded|cb-" + ref);
        callbacks.emplace_back("p1", ref + "|succeeded|cb-" + ref);
      }
    }
  }
  std::shuffle(callbacks.begin(), callbacks.end(), rng);
  for (const auto& [merchant, body] : callbacks) Callback(merchant, body);
  // The janitor claims a bounded batch per round: rounds until nothing is due (bounded too).
  for (int round = 0;
       round < 10 + count / 8 && SqlInt("SELECT count(*) FROM janitor_tasks WHERE NOT manual") > 0;
       ++round) {
    JanitorRound();
  }
  EXPECT_EQ(SqlInt("SELECT count(*) FROM janitor_tasks WHERE NOT manual"), 0);

  // The provider's record against ours.
  std::map<std::string, std::int64_t> executed = p1_->Executed();
  for (const auto& [ref, amount] : p2_->Executed()) executed[ref] = amount;
  std::int64_t executed_total = 0;
  for (const std::string& id : ids) {
    const api::v1::Payout p = Get(id);
    int executions = 0;
    for (const auto& a : p.attempts()) {
      executions +=
          p1_->Executions(a.provider_reference()) + p2_->Executions(a.provider_reference());
      EXPECT_LE(p1_->Executions(a.provider_reference()), 1) << a.provider_reference();
    }
    EXPECT_LE(executions, 1) << id << " executed more than once";
    EXPECT_TRUE(p.status() == "succeeded" || p.status() == "failed" ||
                p.status() == "manual_review")
        << id << " is " << p.status();
    EXPECT_EQ(p.status() == "succeeded", executions == 1) << id << " is " << p.status();
    if (p.status() == "succeeded") {
      EXPECT_EQ(p.paid_minor(), p.amount_minor());
      executed_total += p.amount_minor();
    }
  }
  std::int64_t provider_total = 0;
  for (const auto& [ref, amount] : executed) provider_total += amount;
  EXPECT_EQ(provider_total, executed_total);
  EXPECT_EQ(BalanceOf(kClearing1).credits_posted + BalanceOf(kClearing2).credits_posted,
            provider_total);
  EXPECT_EQ(BalanceOf(kClearing1).credits_pending + BalanceOf(kClearing2).credits_pending,
            SqlInt("SELECT coalesce(sum(amount_minor), 0) FROM payouts WHERE status = "
                   "'manual_review'"));
  const auto payable = BalanceOf("claims_payable");
  // What is owed and not settled is exactly what waits in the manual queue.
  EXPECT_EQ(payable.credits_posted - payable.debits_posted,
            SqlInt("SELECT coalesce(sum(amount_minor), 0) FROM payouts WHERE status = "
                   "'manual_review'"));
}

// Concurrent requests meet in PostgreSQL (each coroutine on its own connection): the same
// Idempotency-Key twice at once makes one payout and one provider call, and the two approvals a
// large payout needs, arriving together, send it exactly once.
TEST_F(PayoutsTest, ConcurrentCreatesAndApprovalsSendExactlyOnce) {
  std::vector<std::optional<ApiResult<api::v1::Payout>>> results(4);
  auto run = [&](std::size_t slot, asio::awaitable<ApiResult<api::v1::Payout>> task) {
    asio::co_spawn(
        io_,
        [&results, slot, t = std::move(task)]() mutable -> asio::awaitable<void> {
          results[slot].emplace(co_await std::move(t));
        },
        asio::detached);
  };
  run(0, service_->CreatePayout("claims-system", "same", Request(1000)));
  run(1, service_->CreatePayout("claims-system", "same", Request(1000)));
  io_.restart();
  while (!results[0] || !results[1]) io_.run_one();
  ASSERT_TRUE(*results[0]);
  ASSERT_TRUE(*results[1]);
  EXPECT_EQ(results[0]->value().id(), results[1]->value().id());
  EXPECT_EQ(SqlInt("SELECT count(*) FROM payouts"), 1);
  EXPECT_EQ(p1_->Creates(), 1);

  const api::v1::Payout big = Create("big", Request(2000000, "CLM-2"));
  run(2, service_->DecidePayout("approver-a", big.id(), true, ""));
  run(3, service_->DecidePayout("approver-b", big.id(), true, ""));
  io_.restart();
  while (!results[2] || !results[3]) io_.run_one();
  ASSERT_TRUE(*results[2]);
  ASSERT_TRUE(*results[3]);
  EXPECT_EQ(Get(big.id()).status(), "succeeded");
  EXPECT_EQ(p1_->Creates(), 2);
  EXPECT_EQ(p1_->Executions(big.id() + "_1"), 1);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM payout_attempts WHERE payout_id = '" + big.id() + "'"), 1);
}

// The same flow with the fraud rules on: the real insurance rule pack
// (config/rules/insurance.rules) decides every payout before any approval, on the payout red flags
// of issue 7.
class PayoutsRiskTest : public PayoutsTest {
 public:
  PayoutsRiskTest() {
    std::ifstream in(std::string(std::getenv("PAYGATE_SOURCE_DIR")) +
                     "/config/rules/insurance.rules");
    std::stringstream text;
    text << in.rdbuf();
    auto compiled = risk::Compile(text.str(), "insurance.rules");
    EXPECT_TRUE(compiled) << (compiled ? "" : compiled.assume_error().ToString());
    fraud::RiskOptions options;
    options.db_timeout = 10s;
    risk_ = std::make_shared<fraud::RiskService>(
        pool_, io_.get_executor(), options,
        keys::Secret(std::string_view("payouts-test-hash-key-0123456789abcdef")),
        compiled ? std::move(compiled).assume_value() : nullptr, nullptr);
    auto started = RunUntilDone(io_, risk_->Start(false));
    EXPECT_TRUE(started) << (started ? "" : started.error().message());
    service_->AttachRisk(risk_);
  }
  ~PayoutsRiskTest() override { risk_->Stop(); }

  // A clean claim: the payee is the policyholder, nothing else is known.
  api::v1::CreatePayoutRequest Claim(const std::string& claimant, const std::string& account,
                                     std::int64_t amount = 50000) {
    api::v1::CreatePayoutRequest r = Request(amount, "CLM-" + std::to_string(++claims_));
    r.set_claimant_id(claimant);
    r.mutable_beneficiary()->set_account(account);
    r.mutable_risk()->set_payee_is_policyholder(true);
    return r;
  }

  std::shared_ptr<fraud::RiskService> risk_;
  int claims_ = 0;
};

TEST_F(PayoutsRiskTest, AnAccountSharedAcrossClaimantsIsHeldThenBlocked) {
  const std::string shared = "6222020200999988887";
  EXPECT_EQ(Create("a", Claim("claimant-a", shared)).status(), "succeeded");
  EXPECT_EQ(Create("b", Claim("claimant-b", shared)).status(), "succeeded");
  // Two claimants already used the account: held for an approver although below the threshold.
  const api::v1::Payout held = Create("c", Claim("claimant-c", shared));
  EXPECT_EQ(held.status(), "requires_review");
  EXPECT_EQ(held.approvals_required(), 1);
  EXPECT_NE(held.risk_reasons().find("CLM-19"), std::string::npos) << held.risk_reasons();
  EXPECT_EQ(p1_->Creates(), 2);
  // Three: refused outright, stored failed, never booked, never sent.
  auto blocked = TryCreate("d", Claim("claimant-d", shared));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().status, 422u);
  EXPECT_EQ(blocked.error().code, "risk_blocked");
  EXPECT_EQ(p1_->Creates(), 2);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM payouts WHERE status = 'failed' AND failure_code = "
                   "'risk_blocked'"),
            1);
  // The approver releases the held one.
  auto released = Decide("approver-a", held.id(), true);
  ASSERT_TRUE(released);
  EXPECT_EQ(released.value().status(), "succeeded");
  // The decisions are stored with the payouts; the plaintext account is nowhere in them.
  EXPECT_EQ(SqlInt("SELECT count(*) FROM risk_decisions WHERE object_type = 'payout'"), 4);
  EXPECT_EQ(SqlInt("SELECT count(*) FROM risk_events WHERE position(convert_to('" + shared +
                   "', 'UTF8') IN payload) > 0"),
            0);
}

TEST_F(PayoutsRiskTest, PayeeNotThePolicyholderAndAnAccountChangedShortlyBeforeAreHeld) {
  api::v1::CreatePayoutRequest stranger = Claim("claimant-s", "6222020200555544443");
  stranger.mutable_risk()->set_payee_is_policyholder(false);
  const api::v1::Payout held = Create("s", stranger);
  EXPECT_EQ(held.status(), "requires_review");
  EXPECT_NE(held.risk_reasons().find("CLM-18"), std::string::npos) << held.risk_reasons();

  // The claimant was paid to one account; the next payout (over 500.00) goes to another.
  EXPECT_EQ(Create("x1", Claim("claimant-x", "6222020200111100001", 20000)).status(), "succeeded");
  const api::v1::Payout changed = Create("x2", Claim("claimant-x", "6222020200111100002", 60000));
  EXPECT_EQ(changed.status(), "requires_review");
  EXPECT_NE(changed.risk_reasons().find("CLM-20"), std::string::npos) << changed.risk_reasons();
}

TEST_F(PayoutsRiskTest, ASoonAfterInceptionClaimScoresIntoReview) {
  api::v1::CreatePayoutRequest early = Claim("claimant-e", "6222020200777766665");
  early.mutable_risk()->set_policy_start_date("2026-11-01T00:00:00Z");
  early.mutable_risk()->set_loss_date("2026-11-10T00:00:00Z");
  const api::v1::Payout held = Create("e", early);
  // CLM-16 (+30, loss 9 days after inception) with CLM-21 (+20, an account first seen today).
  EXPECT_EQ(held.status(), "requires_review");
  EXPECT_NE(held.risk_reasons().find("CLM-16"), std::string::npos) << held.risk_reasons();
}

}  // namespace
}  // namespace paygate::payouts
