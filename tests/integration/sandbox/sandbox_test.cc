// The sandbox adapter against the real paygate-sandbox process over real TLS: every operation,
// every fault mode with the exact outcome class it must produce, callbacks verified and tampered,
// and the HTTPS client's trust decisions (host name, CA, keep-alive reuse, bounds).
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp.

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <google/protobuf/util/json_util.h>

#include "adapters/http/https_client.h"
#include "adapters/sandbox/sandbox.pb.h"
#include "adapters/sandbox/sandbox_adapter.h"
#include "tests/integration/sandbox/sandbox_fixture.h"
#include "tests/testing/run_async.h"

namespace paygate::adapters::sandbox {
namespace {

using ::paygate::testing::CallbackReceiver;
using ::paygate::testing::RunAsync;
using ::paygate::testing::SandboxPki;
using ::paygate::testing::SimulatorProcess;
using namespace std::chrono_literals;

constexpr const char* kAccount = "m1";
constexpr const char* kSecret = "sandbox-secret-of-m1";
constexpr const char* kControlToken = "control-token-for-tests";

struct Shared {
  std::filesystem::path dir;
  SandboxPki pki;
  std::unique_ptr<SimulatorProcess> simulator;
  std::unique_ptr<SimulatorProcess> wrong_name_simulator;
  std::unique_ptr<CallbackReceiver> receiver;
};
Shared* shared = nullptr;

std::vector<std::string> SimulatorArgs(const std::filesystem::path& cert,
                                       const std::filesystem::path& key) {
  const auto& dir = shared->dir;
  return {"--cert",
          cert.string(),
          "--key",
          key.string(),
          "--callback-ca",
          shared->pki.ca.string(),
          "--merchant",
          fmt::format("{}={}", kAccount, (dir / "m1.secret").string()),
          "--merchant",
          fmt::format("m2={}", (dir / "m2.secret").string()),
          "--control-token-file",
          (dir / "control.token").string(),
          "--callback-retry-ms",
          "100",
          "--callback-attempts",
          "3"};
}

class SandboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared = new Shared;
    char tmpl[] = "/tmp/paygate-sandbox-test-XXXXXX";
    shared->dir = mkdtemp(tmpl);
    shared->pki = testing::MakeSandboxPki(shared->dir);
    testing::WriteSecretFile(shared->dir / "m1.secret", kSecret);
    testing::WriteSecretFile(shared->dir / "m2.secret", "another-merchant-secret");
    testing::WriteSecretFile(shared->dir / "control.token", kControlToken);
    shared->simulator = std::make_unique<SimulatorProcess>(
        SimulatorArgs(shared->pki.server_crt, shared->pki.server_key));
    shared->wrong_name_simulator = std::make_unique<SimulatorProcess>(
        SimulatorArgs(shared->pki.wrong_crt, shared->pki.wrong_key));
    shared->receiver =
        std::make_unique<CallbackReceiver>(shared->pki.server_crt, shared->pki.server_key);
  }

  static void TearDownTestSuite() {
    const auto dir = shared->dir;
    delete shared;
    shared = nullptr;
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  void SetUp() override {
    adapter_ = MakeAdapter({});
    auto client = http::HttpsClient::Create({.ca_file = shared->pki.ca.string()});
    ASSERT_TRUE(client);
    control_ = std::move(client).value();
    Control("/control/v1/faults/clear", "{}");
    Control("/control/v1/auto", "{}");
    shared->receiver->Clear();
  }

  struct AdapterSetup {
    std::string base_url = {};
    std::string ca_file = {};
    std::string secret = kSecret;
    std::chrono::milliseconds request_timeout{1500};
    std::function<std::chrono::system_clock::time_point()> clock = {};
  };

  static std::unique_ptr<SandboxAdapter> MakeAdapter(AdapterSetup setup) {
    SandboxOptions options;
    options.base_url = setup.base_url.empty() ? shared->simulator->base_url() : setup.base_url;
    options.ca_file = setup.ca_file.empty() ? shared->pki.ca.string() : setup.ca_file;
    options.merchant_account = kAccount;
    options.hmac_secret = keys::Secret(std::string_view(setup.secret));
    options.connect_timeout_ms = 1500ms;
    options.request_timeout_ms = setup.request_timeout;
    options.clock = setup.clock;
    auto adapter = SandboxAdapter::Create(std::move(options));
    if (!adapter) throw std::runtime_error(adapter.error());
    return std::move(adapter).value();
  }

  // A control call; the reply body. Fails the test on a non-200.
  std::string Control(const std::string& path, const std::string& body) {
    http::HttpsRequest request;
    request.url = shared->simulator->base_url() + path;
    request.headers = {{"authorization", std::string("Bearer ") + kControlToken}};
    request.body = body;
    auto reply = RunAsync(io_, control_->Send(std::move(request)));
    EXPECT_TRUE(reply) << path;
    if (!reply) return {};
    EXPECT_EQ(reply.assume_value().status, 200u) << path << " " << reply.assume_value().body;
    return reply.assume_value().body;
  }
  unsigned ControlStatus(const std::string& path, const std::string& body) {
    http::HttpsRequest request;
    request.url = shared->simulator->base_url() + path;
    request.headers = {{"authorization", std::string("Bearer ") + kControlToken}};
    request.body = body;
    auto reply = RunAsync(io_, control_->Send(std::move(request)));
    return reply ? reply.assume_value().status : 0;
  }

  void Fault(const std::string& json) { Control("/control/v1/faults", json); }
  void CompletePayment(const std::string& reference, const std::string& status) {
    Control("/control/v1/payments/complete",
            fmt::format(R"({{"merchant_account":"{}","reference":"{}","status":"{}"}})", kAccount,
                        reference, status));
  }
  void CompleteRefund(const std::string& reference, const std::string& status) {
    Control("/control/v1/refunds/complete",
            fmt::format(R"({{"merchant_account":"{}","refund_reference":"{}","status":"{}"}})",
                        kAccount, reference, status));
  }

  static std::string NewReference() {
    static std::atomic<int> counter{0};
    return fmt::format("ord{}_{}", getpid(), ++counter);
  }

  CreatePaymentRequest Payment(const std::string& reference, std::int64_t amount = 1500) {
    CreatePaymentRequest request;
    request.merchant_account = kAccount;
    request.provider_reference = reference;
    request.amount_minor = amount;
    request.currency = "CNY";
    request.method = "sandbox";
    request.description = "policy P-1 premium";
    request.notify_url = shared->receiver->url(kAccount);
    request.expires_at = std::chrono::system_clock::now() + 1h;
    return request;
  }

  RefundRequest RefundOf(const std::string& payment, const std::string& refund,
                         std::int64_t amount) {
    RefundRequest request;
    request.merchant_account = kAccount;
    request.payment_reference = payment;
    request.refund_reference = refund;
    request.amount_minor = amount;
    request.payment_amount_minor = 1500;
    request.currency = "CNY";
    request.reason = "cooling-off";
    request.notify_url = shared->receiver->url(kAccount);
    return request;
  }

  ProviderResult Create(const CreatePaymentRequest& request) {
    return RunAsync(io_, adapter_->CreatePayment(request));
  }
  ProviderResult Query(const std::string& reference) {
    return RunAsync(io_, adapter_->QueryPayment({kAccount, reference}));
  }
  ProviderResult Close(const std::string& reference) {
    return RunAsync(io_, adapter_->ClosePayment({kAccount, reference}));
  }
  ProviderResult Refund(const RefundRequest& request) {
    return RunAsync(io_, adapter_->Refund(request));
  }
  ProviderResult QueryRefund(const std::string& payment, const std::string& refund) {
    return RunAsync(io_, adapter_->QueryRefund({kAccount, payment, refund}));
  }

  // A paid payment of `amount`.
  std::string PaidPayment(std::int64_t amount) {
    const std::string reference = NewReference();
    EXPECT_EQ(Create(Payment(reference, amount)).outcome, Outcome::kPending);
    CompletePayment(reference, "PAYMENT_STATUS_SUCCEEDED");
    EXPECT_EQ(Query(reference).outcome, Outcome::kSucceeded);
    return reference;
  }

  // The first delivered callback about `reference`, verified.
  std::vector<CallbackEvent> VerifiedCallbacksFor(const std::string& reference, std::size_t n,
                                                  std::chrono::milliseconds wait = 5s) {
    std::vector<CallbackEvent> events;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
      events.clear();
      for (const auto& received : shared->receiver->All()) {
        auto event = adapter_->VerifyCallback(received.request);
        if (event && event.value().reference == reference) events.push_back(event.value());
      }
      if (events.size() >= n) break;
      std::this_thread::sleep_for(20ms);
    }
    return events;
  }

  std::uint64_t CallsExecuted() {
    const std::string stats = Control("/control/v1/stats", "{}");
    const auto at = stats.find("\"calls_executed\":\"");
    if (at == std::string::npos) return 0;
    return std::stoull(stats.substr(at + 18));
  }

  // ---- Payouts ----

  // A payout id of its own per test; attempts are "<id>_<seq>", as the gateway derives them.
  static std::string NewPayoutId() {
    static std::atomic<int> counter{0};
    return fmt::format("po{}x{}", getpid(), ++counter);
  }

  CreatePayoutRequest PayoutOf(const std::string& reference, std::int64_t amount = 5000) {
    CreatePayoutRequest request;
    request.merchant_account = kAccount;
    request.provider_reference = reference;
    request.amount_minor = amount;
    request.currency = "CNY";
    request.method = "sandbox_transfer";
    request.beneficiary.name = "Li Lei";
    request.beneficiary.account_type = "sandbox";
    request.beneficiary.account = "6222020000001234";
    request.beneficiary.bank = "ICBC";
    request.description = "Claim CLM-1 payout";
    request.notify_url = shared->receiver->url(kAccount);
    return request;
  }

  ProviderResult CreatePayout(const CreatePayoutRequest& request) {
    return RunAsync(io_, adapter_->CreatePayout(request));
  }
  ProviderResult QueryPayout(const std::string& reference) {
    return RunAsync(io_, adapter_->QueryPayout({kAccount, reference, {}}));
  }
  void CompletePayout(const std::string& reference, const std::string& status) {
    Control("/control/v1/payouts/complete",
            fmt::format(R"({{"merchant_account":"{}","reference":"{}","status":"{}"}})", kAccount,
                        reference, status));
  }

  template <typename Message>
  Message ControlMessage(const std::string& path, const std::string& body) {
    Message message;
    const std::string json = Control(path, body);
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &message).ok()) << json;
    return message;
  }
  v1::PayoutCount CountPayouts(const std::string& prefix) {
    return ControlMessage<v1::PayoutCount>(
        "/control/v1/payouts/count",
        fmt::format(R"({{"merchant_account":"{}","reference_prefix":"{}"}})", kAccount, prefix));
  }
  // The simulator's record of one reference; fails the test when there is not exactly one.
  v1::PayoutRecord PayoutRecord(const std::string& reference) {
    const auto list = ControlMessage<v1::PayoutList>(
        "/control/v1/payouts/list", fmt::format(R"({{"reference_prefix":"{}"}})", reference));
    v1::PayoutRecord found;
    int matches = 0;
    for (const auto& record : list.payouts()) {
      if (record.reference() == reference) {
        found = record;
        ++matches;
      }
    }
    EXPECT_EQ(matches, 1) << reference;
    return found;
  }

  boost::asio::io_context io_;
  std::shared_ptr<http::HttpsClient> control_;
  std::unique_ptr<SandboxAdapter> adapter_;
};

// ---- Operations ----

TEST_F(SandboxTest, CreateIsPendingWithQrCodeThenSucceedsByControlAndCallback) {
  const std::string reference = NewReference();
  const ProviderResult created = Create(Payment(reference));
  ASSERT_EQ(created.outcome, Outcome::kPending) << created.detail;
  EXPECT_EQ(created.next_action_type, "qr_code_url");
  EXPECT_THAT(created.next_action_value, ::testing::StartsWith("https://"));
  EXPECT_THAT(created.provider_transaction_id, ::testing::StartsWith("sbx_pay_"));
  EXPECT_EQ(created.amount_minor, 1500);
  EXPECT_EQ(Query(reference).outcome, Outcome::kPending);

  CompletePayment(reference, "PAYMENT_STATUS_SUCCEEDED");
  const ProviderResult queried = Query(reference);
  EXPECT_EQ(queried.outcome, Outcome::kSucceeded);
  EXPECT_EQ(queried.amount_minor, 1500);
  EXPECT_EQ(queried.provider_transaction_id, created.provider_transaction_id);

  const auto events = VerifiedCallbacksFor(reference, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, CallbackEvent::Kind::kPayment);
  EXPECT_EQ(events[0].result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(events[0].result.amount_minor, 1500);
  EXPECT_THAT(events[0].dedup_key, ::testing::StartsWith("sbx_ntf_"));
  const CallbackAck ack = adapter_->AckCallback(true);
  EXPECT_EQ(ack.status, 200u);
  EXPECT_EQ(ack.content_type, "application/json");
  EXPECT_GE(adapter_->AckCallback(false).status, 300u);
}

TEST_F(SandboxTest, FailedPaymentIsDeclinedByQueryAndCallback) {
  const std::string reference = NewReference();
  ASSERT_EQ(Create(Payment(reference)).outcome, Outcome::kPending);
  CompletePayment(reference, "PAYMENT_STATUS_FAILED");
  const ProviderResult queried = Query(reference);
  EXPECT_EQ(queried.outcome, Outcome::kDeclined);
  EXPECT_EQ(queried.decline_code, "payment_failed");
  const auto events = VerifiedCallbacksFor(reference, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].result.outcome, Outcome::kDeclined);
  // A completed payment cannot be completed again.
  EXPECT_EQ(ControlStatus("/control/v1/payments/complete",
                          fmt::format(R"({{"merchant_account":"m1","reference":"{}",)"
                                      R"("status":"PAYMENT_STATUS_SUCCEEDED"}})",
                                      reference)),
            409u);
}

TEST_F(SandboxTest, CreateIsIdempotentPerReferenceAndAConflictIsUnknown) {
  const std::string reference = NewReference();
  const ProviderResult first = Create(Payment(reference));
  const ProviderResult again = Create(Payment(reference));
  ASSERT_EQ(again.outcome, Outcome::kPending);
  EXPECT_EQ(again.provider_transaction_id, first.provider_transaction_id);
  // Same reference, other amount: the reference exists and may be paid; only a query can tell.
  EXPECT_EQ(Create(Payment(reference, 999)).outcome, Outcome::kUnknown);
  // A request the provider refuses before executing is a definitive decline.
  auto bad = Payment(NewReference());
  bad.amount_minor = 0;
  const ProviderResult refused = Create(bad);
  EXPECT_EQ(refused.outcome, Outcome::kDeclined);
  EXPECT_EQ(refused.decline_code, "invalid_amount");
}

TEST_F(SandboxTest, CloseStopsAPendingPaymentAndRefusesAPaidOne) {
  const std::string reference = NewReference();
  ASSERT_EQ(Create(Payment(reference)).outcome, Outcome::kPending);
  EXPECT_EQ(Close(reference).outcome, Outcome::kSucceeded);
  const ProviderResult queried = Query(reference);
  EXPECT_EQ(queried.outcome, Outcome::kDeclined);
  EXPECT_EQ(queried.decline_code, "closed");
  EXPECT_EQ(ControlStatus("/control/v1/payments/complete",
                          fmt::format(R"({{"merchant_account":"m1","reference":"{}",)"
                                      R"("status":"PAYMENT_STATUS_SUCCEEDED"}})",
                                      reference)),
            409u);
  // Closing twice is still closed.
  EXPECT_EQ(Close(reference).outcome, Outcome::kSucceeded);

  const std::string paid = PaidPayment(700);
  const ProviderResult refused = Close(paid);
  EXPECT_EQ(refused.outcome, Outcome::kDeclined);
  EXPECT_EQ(refused.decline_code, "already_paid");
  EXPECT_EQ(Query(paid).outcome, Outcome::kSucceeded);
}

TEST_F(SandboxTest, RefundsArePartialRepeatedAndNeverExceedThePaidAmount) {
  const std::string payment = PaidPayment(1500);
  const std::string r1 = NewReference();
  const std::string r2 = NewReference();
  const std::string r3 = NewReference();
  const ProviderResult first = Refund(RefundOf(payment, r1, 1000));
  ASSERT_EQ(first.outcome, Outcome::kPending) << first.detail;
  EXPECT_THAT(first.provider_transaction_id, ::testing::StartsWith("sbx_ref_"));
  // Repeating a refund reference is the same refund, not a second one.
  EXPECT_EQ(Refund(RefundOf(payment, r1, 1000)).provider_transaction_id,
            first.provider_transaction_id);
  // 1000 pending + 600 > 1500.
  const ProviderResult exceeding = Refund(RefundOf(payment, r2, 600));
  EXPECT_EQ(exceeding.outcome, Outcome::kDeclined);
  EXPECT_EQ(exceeding.decline_code, "refund_exceeds_amount");
  EXPECT_EQ(Refund(RefundOf(payment, r2, 500)).outcome, Outcome::kPending);

  CompleteRefund(r1, "REFUND_STATUS_SUCCEEDED");
  CompleteRefund(r2, "REFUND_STATUS_FAILED");
  EXPECT_EQ(QueryRefund(payment, r1).outcome, Outcome::kSucceeded);
  EXPECT_EQ(QueryRefund(payment, r1).amount_minor, 1000);
  EXPECT_EQ(QueryRefund(payment, r2).outcome, Outcome::kDeclined);
  // The failed refund gave its 500 back: exactly 500 is refundable, 501 is not.
  EXPECT_EQ(Refund(RefundOf(payment, NewReference(), 501)).decline_code, "refund_exceeds_amount");
  EXPECT_EQ(Refund(RefundOf(payment, r3, 500)).outcome, Outcome::kPending);

  const auto events = VerifiedCallbacksFor(r1, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, CallbackEvent::Kind::kRefund);
  EXPECT_EQ(events[0].result.outcome, Outcome::kSucceeded);
  const auto failed = VerifiedCallbacksFor(r2, 1);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].result.outcome, Outcome::kDeclined);
}

TEST_F(SandboxTest, RefundOfAnUnpaidOrUnknownPaymentIsDeclinedAndUnknownRefundQueryIsUnknown) {
  const std::string pending = NewReference();
  ASSERT_EQ(Create(Payment(pending)).outcome, Outcome::kPending);
  EXPECT_EQ(Refund(RefundOf(pending, NewReference(), 100)).decline_code, "payment_not_paid");
  EXPECT_EQ(Refund(RefundOf(NewReference(), NewReference(), 100)).decline_code, "not_found");
  // Absence is not proof: a refund still in flight could land, so the query says unknown.
  EXPECT_EQ(QueryRefund(pending, NewReference()).outcome, Outcome::kUnknown);
}

TEST_F(SandboxTest, AutoModeCompletesPaymentsByItself) {
  Control("/control/v1/auto", R"({"after_ms":50,"status":"PAYMENT_STATUS_SUCCEEDED"})");
  const std::string reference = NewReference();
  ASSERT_EQ(Create(Payment(reference)).outcome, Outcome::kPending);
  const auto events = VerifiedCallbacksFor(reference, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(Query(reference).outcome, Outcome::kSucceeded);
}

// ---- Call faults: each with the exact outcome class, then what an inquiry finds ----

TEST_F(SandboxTest, TimeoutBeforeExecutingIsUnknownAndCloseMakesItDefinitive) {
  const std::string reference = NewReference();
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_TIMEOUT_BEFORE","reference":"{}","count":1}})",
                    reference));
  const std::uint64_t executed = CallsExecuted();
  const ProviderResult created = Create(Payment(reference));
  EXPECT_EQ(created.outcome, Outcome::kUnknown) << created.detail;
  EXPECT_EQ(CallsExecuted(), executed);
  // The provider never saw it, but absence is not proof: unknown until closed.
  EXPECT_EQ(Query(reference).outcome, Outcome::kUnknown);
  EXPECT_EQ(Close(reference).outcome, Outcome::kSucceeded);
  // A late create with that reference can no longer make a payable payment.
  const ProviderResult late = Create(Payment(reference));
  EXPECT_EQ(late.outcome, Outcome::kDeclined);
  EXPECT_EQ(late.decline_code, "closed");
}

TEST_F(SandboxTest, TimeoutAfterExecutingIsUnknownAndTheQueryFindsThePayment) {
  const std::string reference = NewReference();
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_TIMEOUT_AFTER","operation":"create_payment",)"
                    R"("reference":"{}","count":1}})",
                    reference));
  EXPECT_EQ(Create(Payment(reference)).outcome, Outcome::kUnknown);
  EXPECT_EQ(Query(reference).outcome, Outcome::kPending);
}

TEST_F(SandboxTest, ServerErrorIsUnknown) {
  const std::string reference = NewReference();
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_HTTP_5XX","reference":"{}","count":1}})", reference));
  const ProviderResult created = Create(Payment(reference));
  EXPECT_EQ(created.outcome, Outcome::kUnknown);
  EXPECT_THAT(created.detail, ::testing::HasSubstr("500"));
  // The rule was used up: the retry with the same reference works.
  EXPECT_EQ(Create(Payment(reference)).outcome, Outcome::kPending);
}

TEST_F(SandboxTest, MalformedReplyIsUnknownEvenWhenSigned) {
  const std::string reference = NewReference();
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_MALFORMED_REPLY","reference":"{}","count":1}})",
                    reference));
  const ProviderResult created = Create(Payment(reference));
  EXPECT_EQ(created.outcome, Outcome::kUnknown);
  EXPECT_THAT(created.detail, ::testing::HasSubstr("malformed"));
  EXPECT_EQ(Query(reference).outcome, Outcome::kPending);
}

TEST_F(SandboxTest, BadlySignedReplyIsUnknownEvenForADecline) {
  // A paid payment refuses to close; with a bad signature that refusal is not believed.
  const std::string paid = PaidPayment(800);
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_BAD_SIGNATURE_REPLY","reference":"{}","count":2}})",
                    paid));
  const ProviderResult closed = Close(paid);
  EXPECT_EQ(closed.outcome, Outcome::kUnknown);
  EXPECT_THAT(closed.detail, ::testing::HasSubstr("signature"));
  EXPECT_EQ(Query(paid).outcome, Outcome::kUnknown);
  EXPECT_EQ(Query(paid).outcome, Outcome::kSucceeded);
}

TEST_F(SandboxTest, FaultsMatchByAmountAndOperationAndCount) {
  Fault(
      R"({"kind":"FAULT_KIND_HTTP_5XX","operation":"create_payment","amount_minor":4242,"count":2})");
  EXPECT_EQ(Create(Payment(NewReference(), 4242)).outcome, Outcome::kUnknown);
  EXPECT_EQ(Create(Payment(NewReference(), 4243)).outcome, Outcome::kPending);
  EXPECT_EQ(Create(Payment(NewReference(), 4242)).outcome, Outcome::kUnknown);
  EXPECT_EQ(Create(Payment(NewReference(), 4242)).outcome, Outcome::kPending);
}

TEST_F(SandboxTest, RefundTimeoutAfterExecutingIsUnknownAndTheRefundExists) {
  const std::string payment = PaidPayment(1200);
  const std::string refund = NewReference();
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_TIMEOUT_AFTER","operation":"create_refund",)"
                    R"("reference":"{}","count":1}})",
                    refund));
  EXPECT_EQ(Refund(RefundOf(payment, refund, 200)).outcome, Outcome::kUnknown);
  EXPECT_EQ(QueryRefund(payment, refund).outcome, Outcome::kPending);
  // Retrying with the same refund reference is the same refund: no second 200 was taken.
  EXPECT_EQ(Refund(RefundOf(payment, refund, 200)).outcome, Outcome::kPending);
  EXPECT_EQ(Refund(RefundOf(payment, NewReference(), 1001)).decline_code, "refund_exceeds_amount");
}

TEST_F(SandboxTest, ReplyWeCannotVerifyIsUnknownNotDeclined) {
  // Our secret is wrong: the simulator refuses (401), signed with the real key we cannot check.
  auto wrong = MakeAdapter({.secret = "not-the-secret"});
  const ProviderResult result = RunAsync(io_, wrong->CreatePayment(Payment(NewReference())));
  EXPECT_EQ(result.outcome, Outcome::kUnknown);
}

// ---- Callbacks ----

TEST_F(SandboxTest, DuplicateCallbacksCarryTheSameDedupKey) {
  const std::string reference = NewReference();
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_DUPLICATE_CALLBACK","reference":"{}","copies":3}})",
                    reference));
  ASSERT_EQ(Create(Payment(reference)).outcome, Outcome::kPending);
  CompletePayment(reference, "PAYMENT_STATUS_SUCCEEDED");
  const auto events = VerifiedCallbacksFor(reference, 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].dedup_key, events[1].dedup_key);
  EXPECT_EQ(events[1].dedup_key, events[2].dedup_key);
}

TEST_F(SandboxTest, UnacknowledgedCallbackIsRetriedWithTheSameDedupKey) {
  const std::string reference = NewReference();
  ASSERT_EQ(Create(Payment(reference)).outcome, Outcome::kPending);
  shared->receiver->NackNext(1);
  CompletePayment(reference, "PAYMENT_STATUS_FAILED");
  const auto events = VerifiedCallbacksFor(reference, 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].dedup_key, events[1].dedup_key);
  const auto all = shared->receiver->All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].answered, 503u);
  EXPECT_EQ(all[1].answered, 200u);
  // A fresh signature per delivery: the nonces differ.
  auto nonce = [](const CallbackRequest& r) {
    for (const auto& [k, v] : r.headers) {
      if (k == "x-sandbox-nonce") return v;
    }
    return std::string();
  };
  EXPECT_NE(nonce(all[0].request), nonce(all[1].request));
}

TEST_F(SandboxTest, DelayedCallbackArrivesAfterTheDelay) {
  const std::string reference = NewReference();
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_DELAYED_CALLBACK","reference":"{}","delay_ms":700}})",
                    reference));
  ASSERT_EQ(Create(Payment(reference)).outcome, Outcome::kPending);
  const auto completed_at = std::chrono::steady_clock::now();
  CompletePayment(reference, "PAYMENT_STATUS_SUCCEEDED");
  EXPECT_TRUE(shared->receiver->WaitFor(1, 400ms).empty());
  const auto received = shared->receiver->WaitFor(1, 5s);
  ASSERT_EQ(received.size(), 1u);
  EXPECT_GE(received[0].at - completed_at, 650ms);
  EXPECT_EQ(VerifiedCallbacksFor(reference, 1).size(), 1u);
}

TEST_F(SandboxTest, OutOfOrderCallbackBringsAStalePendingAfterTheTerminalOne) {
  const std::string reference = NewReference();
  Fault(
      fmt::format(R"({{"kind":"FAULT_KIND_OUT_OF_ORDER_CALLBACK","reference":"{}"}})", reference));
  ASSERT_EQ(Create(Payment(reference)).outcome, Outcome::kPending);
  CompletePayment(reference, "PAYMENT_STATUS_SUCCEEDED");
  const auto events = VerifiedCallbacksFor(reference, 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(events[1].result.outcome, Outcome::kPending);
  // Distinct notifications: each is stored, and the state machine must ignore the stale one.
  EXPECT_NE(events[0].dedup_key, events[1].dedup_key);
}

TEST_F(SandboxTest, BadlySignedCallbackIsRejected) {
  const std::string reference = NewReference();
  Fault(
      fmt::format(R"({{"kind":"FAULT_KIND_BAD_SIGNATURE_CALLBACK","reference":"{}"}})", reference));
  ASSERT_EQ(Create(Payment(reference)).outcome, Outcome::kPending);
  CompletePayment(reference, "PAYMENT_STATUS_SUCCEEDED");
  const auto received = shared->receiver->WaitFor(1, 5s);
  ASSERT_EQ(received.size(), 1u);
  auto verified = adapter_->VerifyCallback(received[0].request);
  ASSERT_FALSE(verified);
  EXPECT_THAT(verified.error(), ::testing::HasSubstr("signature"));
}

TEST_F(SandboxTest, TamperedStaleOrMisaddressedCallbacksAreRejected) {
  const std::string reference = NewReference();
  ASSERT_EQ(Create(Payment(reference)).outcome, Outcome::kPending);
  CompletePayment(reference, "PAYMENT_STATUS_FAILED");
  const auto received = shared->receiver->WaitFor(1, 5s);
  ASSERT_EQ(received.size(), 1u);
  const CallbackRequest good = received[0].request;
  ASSERT_TRUE(adapter_->VerifyCallback(good));

  CallbackRequest tampered = good;
  const auto at = tampered.body.find("PAYMENT_STATUS_FAILED");
  ASSERT_NE(at, std::string::npos);
  tampered.body.replace(at, 21, "PAYMENT_STATUS_SUCCEEDED");
  EXPECT_FALSE(adapter_->VerifyCallback(tampered));

  CallbackRequest bad_signature = good;
  for (auto& [name, value] : bad_signature.headers) {
    if (name == "x-sandbox-signature") value.back() = value.back() == 'a' ? 'b' : 'a';
  }
  EXPECT_FALSE(adapter_->VerifyCallback(bad_signature));

  CallbackRequest other_account = good;
  other_account.merchant_account = "m2";
  EXPECT_FALSE(adapter_->VerifyCallback(other_account));

  auto late = MakeAdapter({.clock = [] { return std::chrono::system_clock::now() + 10min; }});
  auto stale = late->VerifyCallback(good);
  ASSERT_FALSE(stale);
  EXPECT_THAT(stale.error(), ::testing::HasSubstr("timestamp"));
}

// ---- Payouts: executed at most once per reference, every fault with its outcome class ----

TEST_F(SandboxTest, PayoutExecutesOnceAndRepeatsAnswerTheFirstOutcome) {
  const std::string reference = NewPayoutId() + "_1";
  const ProviderResult created = CreatePayout(PayoutOf(reference));
  ASSERT_EQ(created.outcome, Outcome::kPending) << created.detail;
  EXPECT_THAT(created.provider_transaction_id, ::testing::StartsWith("sbx_po_"));
  EXPECT_EQ(created.amount_minor, 5000);
  // A re-sent create is the same payout, not a second one.
  const ProviderResult again = CreatePayout(PayoutOf(reference));
  EXPECT_EQ(again.outcome, Outcome::kPending);
  EXPECT_EQ(again.provider_transaction_id, created.provider_transaction_id);
  EXPECT_EQ(QueryPayout(reference).outcome, Outcome::kPending);

  CompletePayout(reference, "PAYOUT_STATUS_SUCCEEDED");
  const ProviderResult queried = QueryPayout(reference);
  EXPECT_EQ(queried.outcome, Outcome::kSucceeded);
  EXPECT_EQ(queried.amount_minor, 5000);
  EXPECT_EQ(queried.provider_transaction_id, created.provider_transaction_id);
  // After success a repeat still answers the first outcome and moves nothing.
  EXPECT_EQ(CreatePayout(PayoutOf(reference)).outcome, Outcome::kSucceeded);

  const auto events = VerifiedCallbacksFor(reference, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, CallbackEvent::Kind::kPayout);
  EXPECT_EQ(events[0].result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(events[0].result.amount_minor, 5000);

  const v1::PayoutRecord record = PayoutRecord(reference);
  EXPECT_EQ(record.executions(), 1u);
  EXPECT_EQ(record.create_requests(), 3u);
  EXPECT_EQ(record.status(), v1::PAYOUT_STATUS_SUCCEEDED);
  EXPECT_EQ(record.amount_minor(), 5000);
}

TEST_F(SandboxTest, DeclinedPayoutMovesNothingAndStaysDeclined) {
  const std::string reference = NewPayoutId() + "_1";
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_DECLINE_PAYOUT","reference":"{}","count":1}})",
                    reference));
  const ProviderResult refused = CreatePayout(PayoutOf(reference));
  ASSERT_EQ(refused.outcome, Outcome::kDeclined) << refused.detail;
  EXPECT_EQ(refused.decline_code, "insufficient_funds");
  // The rule was used up, yet the reference keeps its first outcome: it never executes later.
  EXPECT_EQ(CreatePayout(PayoutOf(reference)).decline_code, "insufficient_funds");
  EXPECT_EQ(QueryPayout(reference).outcome, Outcome::kDeclined);
  EXPECT_EQ(PayoutRecord(reference).executions(), 0u);
  const auto events = VerifiedCallbacksFor(reference, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, CallbackEvent::Kind::kPayout);
  EXPECT_EQ(events[0].result.outcome, Outcome::kDeclined);
  // Can only be completed while pending.
  EXPECT_EQ(ControlStatus("/control/v1/payouts/complete",
                          fmt::format(R"({{"merchant_account":"m1","reference":"{}",)"
                                      R"("status":"PAYOUT_STATUS_SUCCEEDED"}})",
                                      reference)),
            409u);
}

TEST_F(SandboxTest, PayoutReturnedAfterPendingIsDeclined) {
  const std::string reference = NewPayoutId() + "_1";
  ASSERT_EQ(CreatePayout(PayoutOf(reference)).outcome, Outcome::kPending);
  CompletePayout(reference, "PAYOUT_STATUS_FAILED");
  const ProviderResult queried = QueryPayout(reference);
  EXPECT_EQ(queried.outcome, Outcome::kDeclined);
  EXPECT_EQ(queried.decline_code, "returned");
  const auto events = VerifiedCallbacksFor(reference, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].result.outcome, Outcome::kDeclined);
}

TEST_F(SandboxTest, PayoutRefusedBeforeExecutingIsDeclinedAndAConflictIsUnknown) {
  auto zero = PayoutOf(NewPayoutId() + "_1");
  zero.amount_minor = 0;
  EXPECT_EQ(CreatePayout(zero).decline_code, "invalid_amount");
  auto nameless = PayoutOf(NewPayoutId() + "_1");
  nameless.beneficiary.account.clear();
  EXPECT_EQ(CreatePayout(nameless).decline_code, "bad_request");
  const std::string reference = NewPayoutId() + "_1";
  ASSERT_EQ(CreatePayout(PayoutOf(reference)).outcome, Outcome::kPending);
  // Same reference, other amount: that reference may be paying out; only a query can tell.
  EXPECT_EQ(CreatePayout(PayoutOf(reference, 4999)).outcome, Outcome::kUnknown);
  EXPECT_EQ(PayoutRecord(reference).executions(), 1u);
}

TEST_F(SandboxTest, PayoutTimeoutBeforeExecutingIsUnknownAndTheQueryClosesIt) {
  const std::string payout = NewPayoutId();
  const std::string reference = payout + "_1";
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_TIMEOUT_BEFORE","operation":"create_payout",)"
                    R"("reference":"{}","count":1,"delay_ms":3000}})",
                    reference));
  const ProviderResult created = CreatePayout(PayoutOf(reference));
  EXPECT_EQ(created.outcome, Outcome::kUnknown) << created.detail;
  EXPECT_EQ(CountPayouts(payout + "_").executions(), 0u);
  // The query closes the reference: definitive, so the gateway may start attempt 2.
  const ProviderResult queried = QueryPayout(reference);
  EXPECT_EQ(queried.outcome, Outcome::kDeclined);
  EXPECT_EQ(queried.decline_code, "never_received");
  // The delayed create landing now cannot execute any more.
  const ProviderResult late = CreatePayout(PayoutOf(reference));
  EXPECT_EQ(late.outcome, Outcome::kDeclined);
  EXPECT_EQ(late.decline_code, "never_received");
  ASSERT_EQ(CreatePayout(PayoutOf(payout + "_2")).outcome, Outcome::kPending);
  CompletePayout(payout + "_2", "PAYOUT_STATUS_SUCCEEDED");
  const v1::PayoutCount count = CountPayouts(payout + "_");
  EXPECT_EQ(count.references(), 2u);
  EXPECT_EQ(count.executions(), 1u);
  EXPECT_EQ(count.succeeded(), 1u);
  EXPECT_EQ(count.failed(), 1u);
  EXPECT_EQ(count.succeeded_amount_minor(), 5000);
}

TEST_F(SandboxTest, PayoutTimeoutAfterExecutingIsUnknownAndTheQueryFindsItOnce) {
  const std::string reference = NewPayoutId() + "_1";
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_TIMEOUT_AFTER","operation":"create_payout",)"
                    R"("reference":"{}","count":1,"delay_ms":3000}})",
                    reference));
  EXPECT_EQ(CreatePayout(PayoutOf(reference)).outcome, Outcome::kUnknown);
  EXPECT_EQ(QueryPayout(reference).outcome, Outcome::kPending);
  EXPECT_EQ(CreatePayout(PayoutOf(reference)).outcome, Outcome::kPending);
  const v1::PayoutRecord record = PayoutRecord(reference);
  EXPECT_EQ(record.executions(), 1u);
  EXPECT_EQ(record.create_requests(), 2u);
}

TEST_F(SandboxTest, PayoutServerErrorMalformedAndBadlySignedRepliesAreUnknown) {
  const std::string not_executed = NewPayoutId() + "_1";
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_HTTP_5XX","reference":"{}","count":1}})",
                    not_executed));
  const ProviderResult server_error = CreatePayout(PayoutOf(not_executed));
  EXPECT_EQ(server_error.outcome, Outcome::kUnknown);
  EXPECT_THAT(server_error.detail, ::testing::HasSubstr("500"));
  EXPECT_EQ(QueryPayout(not_executed).decline_code, "never_received");

  const std::string malformed = NewPayoutId() + "_1";
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_MALFORMED_REPLY","reference":"{}","count":1}})",
                    malformed));
  EXPECT_EQ(CreatePayout(PayoutOf(malformed)).outcome, Outcome::kUnknown);
  EXPECT_EQ(QueryPayout(malformed).outcome, Outcome::kPending);

  // Even a refusal is not believed when its signature is wrong: it may be forged.
  const std::string bad_signature = NewPayoutId() + "_1";
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_DECLINE_PAYOUT","reference":"{}","count":1}})",
                    bad_signature));
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_BAD_SIGNATURE_REPLY","reference":"{}","count":1}})",
                    bad_signature));
  const ProviderResult forged = CreatePayout(PayoutOf(bad_signature));
  EXPECT_EQ(forged.outcome, Outcome::kUnknown);
  EXPECT_THAT(forged.detail, ::testing::HasSubstr("signature"));
  EXPECT_EQ(QueryPayout(bad_signature).outcome, Outcome::kDeclined);
}

TEST_F(SandboxTest, PayoutToAnUnreachableProviderIsNotSent) {
  boost::asio::ip::tcp::acceptor probe(io_, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = probe.local_endpoint().port();
  probe.close();
  auto adapter = MakeAdapter({.base_url = fmt::format("https://127.0.0.1:{}", port)});
  EXPECT_EQ(RunAsync(io_, adapter->CreatePayout(PayoutOf(NewPayoutId() + "_1"))).outcome,
            Outcome::kNotSent);
  auto wrong_name = MakeAdapter({.base_url = shared->wrong_name_simulator->base_url()});
  EXPECT_EQ(RunAsync(io_, wrong_name->CreatePayout(PayoutOf(NewPayoutId() + "_1"))).outcome,
            Outcome::kNotSent);
}

TEST_F(SandboxTest, LostPayoutCallbackIsNeverSentAndOnlyTheQueryTells) {
  const std::string payout = NewPayoutId();
  // By prefix: every attempt of this payout loses its callback.
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_LOST_CALLBACK","reference_prefix":"{}_"}})", payout));
  ASSERT_EQ(CreatePayout(PayoutOf(payout + "_1")).outcome, Outcome::kPending);
  CompletePayout(payout + "_1", "PAYOUT_STATUS_SUCCEEDED");
  EXPECT_TRUE(shared->receiver->WaitFor(1, 1s).empty());
  EXPECT_EQ(QueryPayout(payout + "_1").outcome, Outcome::kSucceeded);
  const std::string stats = Control("/control/v1/stats", "{}");
  EXPECT_THAT(stats, ::testing::HasSubstr("\"callbacks_lost\""));
}

TEST_F(SandboxTest, DuplicateAndDelayedPayoutCallbacks) {
  const std::string duplicated = NewPayoutId() + "_1";
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_DUPLICATE_CALLBACK","reference":"{}","copies":2}})",
                    duplicated));
  ASSERT_EQ(CreatePayout(PayoutOf(duplicated)).outcome, Outcome::kPending);
  CompletePayout(duplicated, "PAYOUT_STATUS_SUCCEEDED");
  const auto events = VerifiedCallbacksFor(duplicated, 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].dedup_key, events[1].dedup_key);
  EXPECT_EQ(events[1].kind, CallbackEvent::Kind::kPayout);
  shared->receiver->Clear();

  const std::string delayed = NewPayoutId() + "_1";
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_DELAYED_CALLBACK","reference":"{}","delay_ms":600}})",
                    delayed));
  ASSERT_EQ(CreatePayout(PayoutOf(delayed)).outcome, Outcome::kPending);
  CompletePayout(delayed, "PAYOUT_STATUS_SUCCEEDED");
  EXPECT_TRUE(shared->receiver->WaitFor(1, 300ms).empty());
  EXPECT_EQ(VerifiedCallbacksFor(delayed, 1).size(), 1u);
}

TEST_F(SandboxTest, AutoModeCompletesPayoutsAndFaultsMatchByPrefix) {
  Control("/control/v1/auto", R"({"after_ms":50,"status":"PAYMENT_STATUS_SUCCEEDED"})");
  const std::string payout = NewPayoutId();
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_HTTP_5XX","operation":"create_payout",)"
                    R"("reference_prefix":"{}_","count":1}})",
                    payout));
  EXPECT_EQ(CreatePayout(PayoutOf(payout + "_1")).outcome, Outcome::kUnknown);
  // Another payout's attempt is not matched by the prefix.
  const std::string other = NewPayoutId() + "_1";
  ASSERT_EQ(CreatePayout(PayoutOf(other)).outcome, Outcome::kPending);
  const auto events = VerifiedCallbacksFor(other, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(QueryPayout(other).outcome, Outcome::kSucceeded);
}

// ---- The HTTPS client's trust decisions ----

TEST_F(SandboxTest, WrongHostNameIsNotSent) {
  // The certificate chains to the trusted CA but names wrong.example, not localhost.
  auto adapter = MakeAdapter({.base_url = shared->wrong_name_simulator->base_url()});
  const ProviderResult result = RunAsync(io_, adapter->CreatePayment(Payment(NewReference())));
  EXPECT_EQ(result.outcome, Outcome::kNotSent);
  EXPECT_THAT(result.detail, ::testing::HasSubstr("handshake"));
}

TEST_F(SandboxTest, UntrustedCaIsNotSent) {
  auto adapter = MakeAdapter({.ca_file = shared->pki.other_ca.string()});
  const ProviderResult result = RunAsync(io_, adapter->CreatePayment(Payment(NewReference())));
  EXPECT_EQ(result.outcome, Outcome::kNotSent);
  EXPECT_THAT(result.detail, ::testing::HasSubstr("certificate"));
}

TEST_F(SandboxTest, ConnectionRefusedIsNotSent) {
  // A port nothing listens on: bind one, then close it.
  boost::asio::ip::tcp::acceptor probe(io_, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = probe.local_endpoint().port();
  probe.close();
  auto adapter = MakeAdapter({.base_url = fmt::format("https://127.0.0.1:{}", port)});
  EXPECT_EQ(RunAsync(io_, adapter->QueryPayment({kAccount, "x"})).outcome, Outcome::kNotSent);
}

TEST_F(SandboxTest, IpLiteralIsVerifiedAgainstTheCertificatesIpSan) {
  auto adapter =
      MakeAdapter({.base_url = fmt::format("https://127.0.0.1:{}", shared->simulator->port())});
  EXPECT_EQ(RunAsync(io_, adapter->CreatePayment(Payment(NewReference()))).outcome,
            Outcome::kPending);
}

TEST_F(SandboxTest, ClientReusesKeepAliveConnectionsAndBoundsResponses) {
  auto created = http::HttpsClient::Create({.ca_file = shared->pki.ca.string()});
  ASSERT_TRUE(created);
  auto client = std::move(created).value();
  auto stats = [&] {
    http::HttpsRequest request;
    request.url = shared->simulator->base_url() + "/control/v1/stats";
    request.headers = {{"authorization", std::string("Bearer ") + kControlToken}};
    return RunAsync(io_, client->Send(std::move(request)));
  };
  auto first = stats();
  ASSERT_TRUE(first);
  EXPECT_FALSE(first.assume_value().reused_connection);
  EXPECT_EQ(client->IdleConnections(), 1u);
  auto second = stats();
  ASSERT_TRUE(second);
  EXPECT_TRUE(second.assume_value().reused_connection);
  EXPECT_EQ(client->IdleConnections(), 1u);

  auto small =
      http::HttpsClient::Create({.ca_file = shared->pki.ca.string(), .response_body_max_bytes = 1});
  ASSERT_TRUE(small);
  http::HttpsRequest request;
  request.url = shared->simulator->base_url() + "/control/v1/stats";
  request.headers = {{"authorization", std::string("Bearer ") + kControlToken}};
  auto bounded = RunAsync(io_, small.value()->Send(std::move(request)));
  ASSERT_FALSE(bounded);
  // The request was written: a too-large answer is "maybe sent", never "not sent".
  EXPECT_EQ(bounded.assume_error().delivery, http::Delivery::kMaybeSent);
}

using SendResult = Result<http::HttpsResponse, http::HttpsError>;

// co_spawn needs a default-constructible result: store the reply instead of returning it.
boost::asio::awaitable<void> SendInto(http::HttpsClient* client, http::HttpsRequest request,
                                      std::optional<SendResult>* out) {
  *out = co_await client->Send(std::move(request));
}

TEST_F(SandboxTest, InFlightBoundRefusesTheExtraRequestAsNotSent) {
  // Proves the per-origin bulkhead: with a bound of 2, a third concurrent request to the same
  // origin is refused at once, never written (kNotSent, so the caller may retry it safely), while
  // the two admitted ones complete; the slots are released afterwards.
  auto created = http::HttpsClient::Create(
      {.ca_file = shared->pki.ca.string(), .in_flight_per_origin_max = 2});
  ASSERT_TRUE(created);
  auto client = std::move(created).value();
  std::vector<std::optional<SendResult>> replies(3);
  for (std::size_t i = 0; i < replies.size(); ++i) {
    http::HttpsRequest request;
    request.url = shared->simulator->base_url() + "/control/v1/stats";
    request.headers = {{"authorization", std::string("Bearer ") + kControlToken}};
    // Each Send takes its slot before its first suspension, so all three race for two slots.
    boost::asio::co_spawn(io_, SendInto(client.get(), std::move(request), &replies[i]),
                          boost::asio::detached);
  }
  io_.restart();
  io_.run();
  ASSERT_TRUE(replies[0] && replies[1] && replies[2]);
  EXPECT_TRUE(replies[0]->has_value());
  EXPECT_TRUE(replies[1]->has_value());
  ASSERT_FALSE(replies[2]->has_value());
  EXPECT_EQ(replies[2]->assume_error().delivery, http::Delivery::kNotSent);
  EXPECT_THAT(replies[2]->assume_error().detail, ::testing::HasSubstr("in-flight bound"));
  EXPECT_EQ(client->InFlight(), 0u);
  http::HttpsRequest again;
  again.url = shared->simulator->base_url() + "/control/v1/stats";
  again.headers = {{"authorization", std::string("Bearer ") + kControlToken}};
  EXPECT_TRUE(RunAsync(io_, client->Send(std::move(again))));
}

}  // namespace
}  // namespace paygate::adapters::sandbox
