// The UnionPay adapter against the built paygate-unionpay-sim over real TLS: web (form posted as a
// browser would) and app payments, queries, refunds, close semantics around payTimeout, verified
// notifications on UnionPay's retry schedule, the reconciliation download, and every fault mode
// with the outcome class it must produce. The simulator signs as UnionPay with the old CFCA-test
// store from the vectors, whose certificate chains to the test root and middle; its validity is
// judged at an injected 2017 instant (the certificate expired in 2018).
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "adapters/http/https_client.h"
#include "adapters/unionpay/codec.h"
#include "adapters/unionpay/unionpay_adapter.h"
#include "tests/integration/sandbox/sandbox_fixture.h"
#include "tests/testing/run_async.h"

extern char** environ;

namespace paygate::adapters::unionpay {
namespace {

using ::paygate::testing::CallbackReceiver;
using ::paygate::testing::RunAsync;
using ::paygate::testing::SandboxPki;
using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

constexpr const char* kAccount = "up1";
constexpr const char* kMerId = "777290058165621";
constexpr const char* kControlToken = "unionpay-control-token";
constexpr auto kRetryUnit = 150ms;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : ".";
}
std::string Vector(const std::string& name) {
  return Env("PAYGATE_SOURCE_DIR") + "/tests/vectors/providers/unionpay/" + name;
}

// The built simulator as a child process, stopped with SIGTERM.
class SimProcess {
 public:
  explicit SimProcess(const std::vector<std::string>& args) {
    const std::string binary =
        Env("PAYGATE_BINARY_DIR") + "/adapters/unionpay/paygate-unionpay-sim";
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<std::string> storage{binary};
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : storage) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (rc != 0) {
      close(fds[0]);
      throw std::runtime_error("cannot run " + binary);
    }
    FILE* out = fdopen(fds[0], "r");
    char line[256] = {};
    const bool got = std::fgets(line, sizeof(line), out) != nullptr;
    std::fclose(out);
    const char* colon = got ? std::strrchr(line, ':') : nullptr;
    unsigned port = 0;
    if (colon == nullptr || std::sscanf(colon + 1, "%u", &port) != 1 || port == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      throw std::runtime_error(fmt::format("paygate-unionpay-sim did not start: '{}'", line));
    }
    port_ = static_cast<std::uint16_t>(port);
  }
  ~SimProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string base_url() const { return fmt::format("https://localhost:{}", port_); }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

struct Shared {
  std::filesystem::path dir;
  SandboxPki pki;
  std::unique_ptr<SimProcess> simulator;
  std::unique_ptr<CallbackReceiver> receiver;
};
Shared* shared = nullptr;

class UnionPayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared = new Shared;
    char tmpl[] = "/tmp/paygate-unionpay-test-XXXXXX";
    shared->dir = mkdtemp(tmpl);
    shared->pki = testing::MakeSandboxPki(shared->dir);
    testing::WriteSecretFile(shared->dir / "pfx.password", "000000");
    testing::WriteSecretFile(shared->dir / "control.token", kControlToken);
    // The merchant's certificate as UnionPay has it registered.
    auto merchant = LoadSigner(Vector("smartwalle__acp_test_sign.pfx"), "000000");
    if (!merchant) throw std::runtime_error(merchant.error());
    std::ofstream(shared->dir / "merchant.pem") << merchant.value().certificate.Pem();
    shared->simulator = std::make_unique<SimProcess>(std::vector<std::string>{
        "--cert", shared->pki.server_crt.string(), "--key", shared->pki.server_key.string(),
        "--callback-ca", shared->pki.ca.string(), "--sign-pfx",
        Vector("omnipay__acp_test_sign.pfx"), "--sign-pfx-password-file",
        (shared->dir / "pfx.password").string(), "--merchant",
        fmt::format("{}={}", kMerId, (shared->dir / "merchant.pem").string()),
        "--control-token-file", (shared->dir / "control.token").string(),
        "--callback-retry-unit-ms", std::to_string(kRetryUnit.count()), "--callback-attempts",
        "3"});
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
    client_ = std::move(client).value();
    Control("/control/v1/faults/clear", "{}");
    Control("/control/v1/auto", "{}");
    shared->receiver->Clear();
  }

  struct Setup {
    std::string base_url = {};
    std::string ca_file = {};
    std::chrono::seconds grace{0};
    std::function<std::optional<Clock::time_point>(std::string_view)> txn_time_of = {};
    bool judge_certs_now = false;
    std::string cert_owner = "700000000000001:SIGN";
  };

  static std::unique_ptr<UnionPayAdapter> MakeAdapter(Setup setup) {
    UnionPayOptions options;
    options.base_url = setup.base_url.empty() ? shared->simulator->base_url() : setup.base_url;
    options.ca_file = setup.ca_file.empty() ? shared->pki.ca.string() : setup.ca_file;
    options.merchant_account = kAccount;
    options.mer_id = kMerId;
    options.sign_pfx_file = Vector("smartwalle__acp_test_sign.pfx");
    options.sign_pfx_password = keys::Secret(std::string_view("000000"));
    options.root_cert_file = Vector("smartwalle__acp_test_root.cer");
    options.middle_cert_file = Vector("smartwalle__acp_test_middle.cer");
    // The simulator's signing certificate is a CFCA test one issued to this owner.
    options.cert_owner = setup.cert_owner;
    options.front_url = "https://shop.example/paid";
    options.close_grace_s = setup.grace;
    options.connect_timeout_ms = 1500ms;
    options.request_timeout_ms = 1500ms;
    options.txn_time_of = setup.txn_time_of;
    if (!setup.judge_certs_now) {
      options.cert_clock = [] { return *ParseBeijingTime("20170601120000"); };
    }
    auto adapter = UnionPayAdapter::Create(std::move(options));
    if (!adapter) throw std::runtime_error(adapter.error());
    return std::move(adapter).value();
  }

  http::HttpsResponse Post(const std::string& url, const std::string& body,
                           const std::string& content_type, http::Headers headers = {}) {
    http::HttpsRequest request;
    request.url = url;
    request.content_type = content_type;
    request.headers = std::move(headers);
    request.body = body;
    auto reply = RunAsync(io_, client_->Send(std::move(request)));
    EXPECT_TRUE(reply) << url;
    return reply ? reply.assume_value() : http::HttpsResponse{};
  }

  unsigned ControlStatus(const std::string& path, const std::string& body) {
    return Post(shared->simulator->base_url() + path, body, "application/json",
                {{"authorization", std::string("Bearer ") + kControlToken}})
        .status;
  }
  void Control(const std::string& path, const std::string& body) {
    EXPECT_EQ(ControlStatus(path, body), 200u) << path << " " << body;
  }
  void Fault(const std::string& json) { Control("/control/v1/faults", json); }
  void CompletePayment(const std::string& reference, bool succeed, const std::string& code = "") {
    Control("/control/v1/payments/complete",
            fmt::format(R"({{"mer_id":"{}","order_id":"{}","succeed":{},"resp_code":"{}"}})",
                        kMerId, *OrderIdFor(reference), succeed ? "true" : "false", code));
  }
  void CompleteRefund(const std::string& reference, bool succeed) {
    Control("/control/v1/refunds/complete",
            fmt::format(R"({{"mer_id":"{}","order_id":"{}","succeed":{}}})", kMerId,
                        *OrderIdFor(reference), succeed ? "true" : "false"));
  }

  static std::string NewReference(const char* prefix = "pay") {
    static std::atomic<int> counter{0};
    return fmt::format("{}_t{}x{}_1", prefix, getpid(), ++counter);
  }
  static std::string NotifyUrl() {
    return fmt::format("https://localhost:{}/v1/callbacks/unionpay/{}", shared->receiver->port(),
                       kAccount);
  }

  CreatePaymentRequest Payment(const std::string& reference, const std::string& method,
                               std::int64_t amount = 1500) {
    CreatePaymentRequest request;
    request.merchant_account = kAccount;
    request.provider_reference = reference;
    request.amount_minor = amount;
    request.currency = "CNY";
    request.method = method;
    request.description = "policy P-1 premium";
    request.notify_url = NotifyUrl();
    request.expires_at = Clock::now() + 1h;
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
    request.notify_url = NotifyUrl();
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

  // The payer's browser: posts the page's form to its action.
  void SubmitWebForm(const ProviderResult& created) {
    ASSERT_EQ(created.next_action_type, "html_form");
    auto form = ParseAutoPostForm(created.next_action_value);
    ASSERT_TRUE(form) << form.error();
    EXPECT_EQ(form.value().first, adapter_->FrontTransUrl());
    const auto page = Post(form.value().first, BuildForm(form.value().second),
                           "application/x-www-form-urlencoded");
    ASSERT_EQ(page.status, 200u) << page.body;
    EXPECT_NE(page.body.find("checkout"), std::string::npos);
  }

  // A paid web payment.
  std::string PaidPayment(std::int64_t amount = 1500) {
    const std::string reference = NewReference();
    const auto created = Create(Payment(reference, "unionpay_web", amount));
    SubmitWebForm(created);
    CompletePayment(reference, true);
    return reference;
  }

  CallbackEvent VerifiedCallback(std::size_t index, std::size_t expect_count) {
    auto all = shared->receiver->WaitFor(expect_count, 5s);
    EXPECT_GE(all.size(), expect_count);
    if (all.size() <= index) return {};
    auto event = adapter_->VerifyCallback(all[index].request);
    EXPECT_TRUE(event) << event.error();
    return event ? event.value() : CallbackEvent{};
  }

  boost::asio::io_context io_;
  std::unique_ptr<UnionPayAdapter> adapter_;
  std::shared_ptr<http::HttpsClient> client_;
};

TEST_F(UnionPayTest, WebPaymentIsAFormThePayerPostsThenANotifiedSuccess) {
  const std::string reference = NewReference();
  const auto created = Create(Payment(reference, "unionpay_web", 2345));
  ASSERT_EQ(created.outcome, Outcome::kPending) << created.detail;
  auto form = ParseAutoPostForm(created.next_action_value);
  ASSERT_TRUE(form);
  EXPECT_EQ(form.value().second.at("orderId"), *OrderIdFor(reference));
  EXPECT_EQ(form.value().second.at("txnAmt"), "2345");
  EXPECT_EQ(form.value().second.at("channelType"), "07");
  EXPECT_EQ(form.value().second.at("frontUrl"), "https://shop.example/paid");
  // Until the browser posts it, UnionPay has no such transaction: not proof of anything.
  EXPECT_EQ(Query(reference).outcome, Outcome::kUnknown);
  SubmitWebForm(created);
  EXPECT_EQ(Query(reference).outcome, Outcome::kUnknown);  // submitted, not paid: still 34
  CompletePayment(reference, true);

  const CallbackEvent event = VerifiedCallback(0, 1);
  EXPECT_EQ(event.kind, CallbackEvent::Kind::kPayment);
  EXPECT_EQ(event.reference, reference);
  EXPECT_EQ(event.result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(event.result.amount_minor, 2345);
  EXPECT_FALSE(event.result.provider_transaction_id.empty());
  const auto queried = Query(reference);
  EXPECT_EQ(queried.outcome, Outcome::kSucceeded);
  EXPECT_EQ(queried.amount_minor, 2345);
  EXPECT_EQ(queried.provider_transaction_id, event.result.provider_transaction_id);
  EXPECT_EQ(adapter_->AckCallback(true).status, 200u);
  EXPECT_NE(adapter_->AckCallback(false).status, 200u);
}

TEST_F(UnionPayTest, AppPaymentGetsATnAndAFailureIsFinalOnlyOnceUnpayable) {
  const std::string reference = NewReference();
  const auto created = Create(Payment(reference, "unionpay_app"));
  ASSERT_EQ(created.outcome, Outcome::kPending) << created.detail;
  EXPECT_EQ(created.next_action_type, "unionpay_tn");
  EXPECT_EQ(created.next_action_value.size(), 21u);
  // The same orderId and txnTime again: UnionPay's "duplicate" says nothing definitive.
  EXPECT_EQ(Create(Payment(reference, "unionpay_app")).outcome, Outcome::kUnknown);
  // The payer's card fails, but the order stays payable for an hour: not a decline yet.
  CompletePayment(reference, false, "64");
  const CallbackEvent failed = VerifiedCallback(0, 1);
  EXPECT_EQ(failed.result.outcome, Outcome::kPending);
  EXPECT_NE(failed.result.detail.find("insufficient_funds"), std::string::npos);
  EXPECT_EQ(Query(reference).outcome, Outcome::kPending);
  // Another card works.
  CompletePayment(reference, true);
  const CallbackEvent paid = VerifiedCallback(1, 2);
  EXPECT_EQ(paid.result.outcome, Outcome::kSucceeded);
  EXPECT_NE(paid.dedup_key, failed.dedup_key);
  EXPECT_EQ(Query(reference).outcome, Outcome::kSucceeded);

  // Once its payTimeout passed, a failed order is declined with the mapped code.
  const std::string short_lived = NewReference();
  auto request = Payment(short_lived, "unionpay_app");
  request.expires_at = Clock::now() + 1s;
  ASSERT_EQ(Create(request).outcome, Outcome::kPending);
  CompletePayment(short_lived, false, "64");
  std::this_thread::sleep_for(1500ms);
  const auto declined = Query(short_lived);
  EXPECT_EQ(declined.outcome, Outcome::kDeclined) << declined.detail;
  EXPECT_EQ(declined.decline_code, "insufficient_funds");
}

TEST_F(UnionPayTest, RequestsThatCannotBeBuiltAreNotSent) {
  auto usd = Payment(NewReference(), "unionpay_web");
  usd.currency = "USD";
  EXPECT_EQ(Create(usd).outcome, Outcome::kNotSent);
  EXPECT_EQ(Create(Payment("pay-bad-reference", "unionpay_app")).outcome, Outcome::kNotSent);
  EXPECT_EQ(Create(Payment(NewReference(), "wechat_native")).outcome, Outcome::kNotSent);
  // An order that would expire before it is sent.
  auto expired = Payment(NewReference(), "unionpay_app");
  expired.expires_at = Clock::now() - 1min;
  EXPECT_EQ(Create(expired).outcome, Outcome::kNotSent);
}

TEST_F(UnionPayTest, RefundsArePendingThenNotifiedAndNeverExceedThePayment) {
  const std::string payment = PaidPayment(1500);
  VerifiedCallback(0, 1);
  shared->receiver->Clear();
  const std::string refund = NewReference("re");
  const auto accepted = Refund(RefundOf(payment, refund, 500));
  ASSERT_EQ(accepted.outcome, Outcome::kPending) << accepted.detail;
  EXPECT_FALSE(accepted.provider_transaction_id.empty());
  EXPECT_EQ(QueryRefund(payment, refund).outcome, Outcome::kPending);
  // More than what is left: refused by UnionPay, nothing moved.
  const auto too_much = Refund(RefundOf(payment, NewReference("re"), 1001));
  EXPECT_EQ(too_much.outcome, Outcome::kDeclined) << too_much.detail;
  EXPECT_EQ(too_much.decline_code, "original_mismatch");
  CompleteRefund(refund, true);
  const CallbackEvent event = VerifiedCallback(0, 1);
  EXPECT_EQ(event.kind, CallbackEvent::Kind::kRefund);
  EXPECT_EQ(event.reference, refund);
  EXPECT_EQ(event.result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(event.result.amount_minor, 500);
  const auto done = QueryRefund(payment, refund);
  EXPECT_EQ(done.outcome, Outcome::kSucceeded);
  EXPECT_EQ(done.amount_minor, 500);
  // The rest can still be refunded.
  EXPECT_EQ(Refund(RefundOf(payment, NewReference("re"), 1000)).outcome, Outcome::kPending);
}

TEST_F(UnionPayTest, RefundOfAnUnpaidPaymentIsDeclinedAndNeverSent) {
  const std::string reference = NewReference();
  SubmitWebForm(Create(Payment(reference, "unionpay_web")));
  // The payment's query answers 34: no queryId to refund, and no refund was sent.
  EXPECT_EQ(Refund(RefundOf(reference, NewReference("re"), 100)).outcome, Outcome::kNotSent);
  CompletePayment(reference, false);
  const auto refused = Refund(RefundOf(reference, NewReference("re"), 100));
  EXPECT_EQ(refused.outcome, Outcome::kDeclined);
  EXPECT_EQ(refused.decline_code, "payment_not_paid");
}

TEST_F(UnionPayTest, CloseIsRefusedUntilPayTimeoutAndThenTrue) {
  const std::string reference = NewReference();
  auto request = Payment(reference, "unionpay_web");
  request.expires_at = Clock::now() + 2s;
  const auto created = Create(request);
  SubmitWebForm(created);
  const auto early = Close(reference);
  EXPECT_EQ(early.outcome, Outcome::kDeclined) << early.detail;
  EXPECT_EQ(early.decline_code, "not_closable_yet");
  std::this_thread::sleep_for(2500ms);
  const auto closed = Close(reference);
  EXPECT_EQ(closed.outcome, Outcome::kSucceeded) << closed.detail;
  // And it is true: UnionPay no longer takes the payment.
  EXPECT_EQ(ControlStatus("/control/v1/payments/complete",
                          fmt::format(R"({{"mer_id":"{}","order_id":"{}","succeed":true}})", kMerId,
                                      *OrderIdFor(reference))),
            409u);
  // A form the payer never posted is closed the same way once its payTimeout passed.
  const std::string never = NewReference();
  auto unsent = Payment(never, "unionpay_web");
  unsent.expires_at = Clock::now() + 1s;
  Create(unsent);
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(Close(never).outcome, Outcome::kSucceeded);
}

TEST_F(UnionPayTest, ClosingAPaidPaymentIsDeclinedAndAFailedOneOnlyAfterPayTimeout) {
  const std::string paid = PaidPayment();
  const auto refused = Close(paid);
  EXPECT_EQ(refused.outcome, Outcome::kDeclined);
  EXPECT_EQ(refused.decline_code, "already_paid");
  // A failed order the payer could still pay again is not closed before its payTimeout.
  const std::string failed = NewReference();
  auto request = Payment(failed, "unionpay_app");
  request.expires_at = Clock::now() + 1s;
  Create(request);
  CompletePayment(failed, false);
  EXPECT_EQ(Close(failed).decline_code, "not_closable_yet");
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(Close(failed).outcome, Outcome::kSucceeded);
}

TEST_F(UnionPayTest, WithoutTheOriginalTxnTimeNothingIsSentUnlessTheCallerKnowsIt) {
  const std::string reference = PaidPayment();
  // A fresh adapter (a restart) remembers no txnTime.
  auto fresh = MakeAdapter({});
  EXPECT_EQ(RunAsync(io_, fresh->QueryPayment({kAccount, reference})).outcome, Outcome::kNotSent);
  // With the creation time from the caller's records it finds the payment again.
  const auto form = ParseAutoPostForm(Create(Payment(reference, "unionpay_web")).next_action_value);
  const auto sent_at = ParseBeijingTime(form.value().second.at("txnTime"));
  Setup setup;
  setup.txn_time_of = [&](std::string_view ref) -> std::optional<Clock::time_point> {
    if (ref == reference) return sent_at;
    return std::nullopt;
  };
  auto knowing = MakeAdapter(setup);
  EXPECT_EQ(RunAsync(io_, knowing->QueryPayment({kAccount, reference})).outcome,
            Outcome::kSucceeded);
  // The gateway's way: the recorded creation time travels in the reference itself.
  auto restarted = MakeAdapter({});
  adapters::PaymentRef recorded{kAccount, reference, *sent_at};
  EXPECT_EQ(RunAsync(io_, restarted->QueryPayment(recorded)).outcome, Outcome::kSucceeded);
  adapters::PaymentRef wrong_time{kAccount, reference, *sent_at + std::chrono::seconds(1)};
  EXPECT_NE(RunAsync(io_, restarted->QueryPayment(wrong_time)).outcome, Outcome::kSucceeded);
}

TEST_F(UnionPayTest, CallFaultsMapToUnknownAndConnectFailuresToNotSent) {
  const std::string reference = PaidPayment();
  struct Case {
    const char* kind;
    Outcome expected;
  };
  for (const Case& c : {Case{"FAULT_KIND_HTTP_5XX", Outcome::kUnknown},
                        Case{"FAULT_KIND_MALFORMED_REPLY", Outcome::kUnknown},
                        Case{"FAULT_KIND_BAD_SIGNATURE_REPLY", Outcome::kUnknown},
                        Case{"FAULT_KIND_TIMEOUT_BEFORE", Outcome::kUnknown},
                        Case{"FAULT_KIND_TIMEOUT_AFTER", Outcome::kUnknown}}) {
    Fault(fmt::format(R"({{"kind":"{}","operation":"query","count":1,"delay_ms":3000}})", c.kind));
    const auto result = Query(reference);
    EXPECT_EQ(result.outcome, c.expected) << c.kind << ": " << result.detail;
  }
  EXPECT_EQ(Query(reference).outcome, Outcome::kSucceeded);  // the faults were used up
  // A refund executed but unanswered is unknown; a 5xx refund (not executed) is unknown too.
  Fault(R"({"kind":"FAULT_KIND_TIMEOUT_AFTER","operation":"refund","count":1,"delay_ms":3000})");
  const std::string refund = NewReference("re");
  EXPECT_EQ(Refund(RefundOf(reference, refund, 100)).outcome, Outcome::kUnknown);
  EXPECT_EQ(QueryRefund(reference, refund).outcome, Outcome::kPending);  // it exists
  Fault(R"({"kind":"FAULT_KIND_HTTP_5XX","operation":"app_consume","count":1})");
  EXPECT_EQ(Create(Payment(NewReference(), "unionpay_app")).outcome, Outcome::kUnknown);
  // Nothing listening: refused before anything was written.
  Setup closed_port;
  closed_port.base_url = "https://localhost:1";
  auto nowhere = MakeAdapter(closed_port);
  EXPECT_EQ(RunAsync(io_, nowhere->CreatePayment(Payment(NewReference(), "unionpay_app"))).outcome,
            Outcome::kNotSent);
  // A reply signed by a CFCA certificate that is not UnionPay's is no answer.
  const auto form = ParseAutoPostForm(Create(Payment(reference, "unionpay_web")).next_action_value);
  const auto sent_at = ParseBeijingTime(form.value().second.at("txnTime"));
  Setup production_owner;
  production_owner.cert_owner = std::string(kProductionCertOwner);
  production_owner.txn_time_of = [&](std::string_view) { return sent_at; };
  auto strict = MakeAdapter(production_owner);
  const auto not_unionpay = RunAsync(io_, strict->QueryPayment({kAccount, reference}));
  EXPECT_EQ(not_unionpay.outcome, Outcome::kUnknown);
  EXPECT_NE(not_unionpay.detail.find("owner"), std::string::npos) << not_unionpay.detail;
  // A gateway whose certificate we do not trust never sees the request.
  Setup untrusted;
  untrusted.ca_file = shared->pki.other_ca.string();
  auto distrusting = MakeAdapter(untrusted);
  EXPECT_EQ(RunAsync(io_, distrusting->QueryPayment({kAccount, reference})).outcome,
            Outcome::kNotSent);
}

TEST_F(UnionPayTest, UnacknowledgedNotificationsFollowTheRetrySchedule) {
  shared->receiver->NackNext(2);
  const std::string reference = PaidPayment();
  auto all = shared->receiver->WaitFor(3, 10s);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].answered, 503u);
  EXPECT_EQ(all[2].answered, 200u);
  // Pauses of 1 and 2 units (UnionPay: 1 and 2 minutes).
  EXPECT_GE(all[1].at - all[0].at, kRetryUnit);
  EXPECT_GE(all[2].at - all[1].at, 2 * kRetryUnit);
  // Each send is the same message: the same dedup key.
  std::set<std::string> keys;
  for (const auto& received : all) {
    auto event = adapter_->VerifyCallback(received.request);
    ASSERT_TRUE(event) << event.error();
    keys.insert(event.value().dedup_key);
  }
  EXPECT_EQ(keys.size(), 1u);
  std::this_thread::sleep_for(6 * kRetryUnit);
  EXPECT_EQ(shared->receiver->All().size(), 3u);  // acknowledged: no more sends
}

TEST_F(UnionPayTest, NotificationFaults) {
  // Duplicates carry the same dedup key.
  Fault(R"({"kind":"FAULT_KIND_DUPLICATE_CALLBACK","count":1,"copies":2})");
  PaidPayment();
  auto dup = shared->receiver->WaitFor(2, 5s);
  ASSERT_EQ(dup.size(), 2u);
  EXPECT_EQ(adapter_->VerifyCallback(dup[0].request).value().dedup_key,
            adapter_->VerifyCallback(dup[1].request).value().dedup_key);
  shared->receiver->Clear();

  // Out of order: a stale "in progress" after the terminal one, under another key.
  Fault(R"({"kind":"FAULT_KIND_OUT_OF_ORDER_CALLBACK","count":1})");
  PaidPayment();
  auto stale = shared->receiver->WaitFor(2, 5s);
  ASSERT_EQ(stale.size(), 2u);
  auto terminal = adapter_->VerifyCallback(stale[0].request);
  auto late = adapter_->VerifyCallback(stale[1].request);
  ASSERT_TRUE(terminal);
  ASSERT_TRUE(late);
  EXPECT_EQ(terminal.value().result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(late.value().result.outcome, Outcome::kPending);
  EXPECT_NE(terminal.value().dedup_key, late.value().dedup_key);
  shared->receiver->Clear();

  // Badly signed: refused.
  Fault(R"({"kind":"FAULT_KIND_BAD_SIGNATURE_CALLBACK","count":1})");
  PaidPayment();
  auto bad = shared->receiver->WaitFor(1, 5s);
  ASSERT_EQ(bad.size(), 1u);
  auto refused = adapter_->VerifyCallback(bad[0].request);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("signature"), std::string::npos) << refused.error();
  shared->receiver->Clear();

  // Delayed.
  Fault(R"({"kind":"FAULT_KIND_DELAYED_CALLBACK","count":1,"delay_ms":600})");
  const auto before = std::chrono::steady_clock::now();
  PaidPayment();
  auto delayed = shared->receiver->WaitFor(1, 5s);
  ASSERT_EQ(delayed.size(), 1u);
  EXPECT_GE(delayed[0].at - before, 600ms);
}

TEST_F(UnionPayTest, TamperedOrMisaddressedNotificationsAreRejected) {
  PaidPayment(777);
  auto all = shared->receiver->WaitFor(1, 5s);
  ASSERT_EQ(all.size(), 1u);
  const CallbackRequest original = all[0].request;
  ASSERT_TRUE(adapter_->VerifyCallback(original));
  // Another amount in the body.
  CallbackRequest tampered = original;
  const auto pos = tampered.body.find("txnAmt=777");
  ASSERT_NE(pos, std::string::npos);
  tampered.body.replace(pos, 10, "txnAmt=778");
  EXPECT_FALSE(adapter_->VerifyCallback(tampered));
  // For another of our accounts.
  CallbackRequest misaddressed = original;
  misaddressed.merchant_account = "someone-else";
  EXPECT_FALSE(adapter_->VerifyCallback(misaddressed));
  // Judged today, the simulator's (expired) test certificate is refused.
  Setup today;
  today.judge_certs_now = true;
  auto strict = MakeAdapter(today);
  auto expired = strict->VerifyCallback(original);
  ASSERT_FALSE(expired);
  EXPECT_NE(expired.error().find("expired"), std::string::npos) << expired.error();
}

TEST_F(UnionPayTest, ReconciliationFileListsTheDaysSettledTransactions) {
  const std::string first = PaidPayment(1000);
  const std::string second = PaidPayment(2000);
  VerifiedCallback(0, 2);
  const std::string refund = NewReference("re");
  ASSERT_EQ(Refund(RefundOf(first, refund, 300)).outcome, Outcome::kPending);
  CompleteRefund(refund, true);
  const std::string today = BeijingTime(Clock::now()).substr(0, 8);
  auto download = RunAsync(io_, adapter_->DownloadBill(today));
  ASSERT_TRUE(download) << download.error();
  const BillDownload& bill = download.value();
  EXPECT_EQ(bill.file_name, fmt::format("{}_{}.zip", kMerId, today));
  EXPECT_EQ(InnSettleDate(bill.inn_name), today);
  std::map<std::string, const bill::Record*> payments;
  std::map<std::string, const bill::Record*> refunds;
  for (const auto& record : bill.file.records) {
    if (record.kind == bill::Record::Kind::kPayment) payments[record.merchant_reference] = &record;
    if (record.kind == bill::Record::Kind::kRefund) refunds[record.refund_reference] = &record;
  }
  ASSERT_EQ(payments.count(first), 1u);
  ASSERT_EQ(payments.count(second), 1u);
  ASSERT_EQ(refunds.count(refund), 1u);
  EXPECT_EQ(payments[first]->amount_minor, 1000);
  EXPECT_EQ(payments[first]->fee_minor, 6);
  EXPECT_EQ(refunds[refund]->amount_minor, 300);
  EXPECT_EQ(refunds[refund]->provider_transaction_id, payments[first]->provider_transaction_id);
  EXPECT_EQ(bill.file.totals.payment_count, static_cast<std::int64_t>(payments.size()));
  std::int64_t sum = 0;
  for (const auto& [ref, record] : payments) sum += record->amount_minor;
  EXPECT_EQ(bill.file.totals.payment_amount_minor, sum);
  // A file fault is an error, not a file.
  Fault(R"({"kind":"FAULT_KIND_BAD_SIGNATURE_REPLY","operation":"file","count":1})");
  EXPECT_FALSE(RunAsync(io_, adapter_->DownloadBill(today)));
}

}  // namespace
}  // namespace paygate::adapters::unionpay
