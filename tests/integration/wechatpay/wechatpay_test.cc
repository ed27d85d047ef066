// The WeChat Pay adapter against the in-process WeChat Pay simulator over real TLS: collections by
// each method, query, close, refund, payouts by merchant transfer, bills and platform certificates,
// callbacks (verified, decrypted, retried, tampered, SIGNTEST probes) and every fault's outcome.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "adapters/common/archive.h"
#include "adapters/common/codec.h"
#include "adapters/http/https_client.h"
#include "adapters/wechatpay/simulator/simulator.h"
#include "adapters/wechatpay/wechatpay_adapter.h"
#include "tests/integration/sandbox/sandbox_fixture.h"
#include "tests/testing/run_async.h"

namespace paygate::adapters::wechatpay {
namespace {

using ::paygate::testing::CallbackReceiver;
using ::paygate::testing::RunAsync;
using namespace std::chrono_literals;

constexpr const char* kAccount = "wx1";
constexpr const char* kMchid = "1234567891";
constexpr const char* kAppid = "wxd678efh567hg6787";
constexpr const char* kApiV3Key = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
constexpr const char* kMerchantSerial = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
constexpr const char* kPlatformSerial = "440024045C4A427599D09BB4E3DE0279F2E813FD";
constexpr const char* kControlToken = "wechat-control-token";

std::string Vector(const std::string& relative) {
  std::ifstream in(std::string(std::getenv("PAYGATE_SOURCE_DIR")) +
                   "/tests/vectors/providers/wechatpay/" + relative);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct Shared {
  std::filesystem::path dir;
  testing::SandboxPki pki;
  std::unique_ptr<Simulator> simulator;
  std::thread thread;
  std::unique_ptr<CallbackReceiver> receiver;
  std::string base_url;
};
Shared* shared = nullptr;

class WechatPayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared = new Shared;
    char tmpl[] = "/tmp/paygate-wechat-test-XXXXXX";
    shared->dir = mkdtemp(tmpl);
    shared->pki = testing::MakeSandboxPki(shared->dir);
    SimulatorOptions options;
    options.cert_file = shared->pki.server_crt.string();
    options.key_file = shared->pki.server_key.string();
    options.callback_ca_file = shared->pki.ca.string();
    options.platform_private_key_pem = keys::Secret(Vector("java/wechat_pay_private_key.pem"));
    options.platform_certificate_pem = Vector("java/wechat_pay_certificate.pem");
    SimulatedMerchant merchant;
    merchant.mchid = kMchid;
    merchant.apiv3_key = keys::Secret(std::string_view(kApiV3Key));
    merchant.merchant_certificate_pem = Vector("java/merchant_certificate.pem");
    options.merchants.push_back(std::move(merchant));
    options.control_token = keys::Secret(std::string_view(kControlToken));
    // WeChat's 15 s, 15 s, 30 s, ... become 15 ms, 15 ms, 30 ms, ...
    options.callback_time_scale = 0.001;
    options.callback_attempts_max = 4;
    auto simulator = Simulator::Create(std::move(options));
    if (!simulator) throw std::runtime_error(simulator.error());
    shared->simulator = std::move(simulator).value();
    shared->base_url = fmt::format("https://localhost:{}", shared->simulator->port());
    shared->thread = std::thread([] { shared->simulator->Run(); });
    shared->receiver =
        std::make_unique<CallbackReceiver>(shared->pki.server_crt, shared->pki.server_key);
  }

  static void TearDownTestSuite() {
    shared->simulator->Stop();
    shared->thread.join();
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
    shared->receiver->Clear();
  }

  struct Setup {
    std::string base_url = {};
    bool with_platform_certificate = true;
    std::chrono::milliseconds request_timeout{1500};
  };
  static std::unique_ptr<WechatPayAdapter> MakeAdapter(Setup setup) {
    WechatPayOptions options;
    options.base_url = setup.base_url.empty() ? shared->base_url : setup.base_url;
    options.ca_file = shared->pki.ca.string();
    options.merchant_account = kAccount;
    options.mchid = kMchid;
    options.appid = kAppid;
    options.merchant_serial_no = kMerchantSerial;
    options.merchant_private_key_pem = keys::Secret(Vector("java/merchant_private_key.pem"));
    options.apiv3_key = keys::Secret(std::string_view(kApiV3Key));
    if (setup.with_platform_certificate) {
      options.platform_certificates_pem = {Vector("java/wechat_pay_certificate.pem")};
    }
    options.connect_timeout_ms = 1500ms;
    options.request_timeout_ms = setup.request_timeout;
    auto adapter = WechatPayAdapter::Create(std::move(options));
    if (!adapter) throw std::runtime_error(adapter.error());
    return std::move(adapter).value();
  }

  std::string Control(const std::string& path, const std::string& body) {
    http::HttpsRequest request;
    request.url = shared->base_url + path;
    request.headers = {{"authorization", std::string("Bearer ") + kControlToken}};
    request.body = body;
    auto reply = RunAsync(io_, control_->Send(std::move(request)));
    EXPECT_TRUE(reply) << path;
    if (!reply) return {};
    EXPECT_EQ(reply.assume_value().status, 200u) << path << " " << reply.assume_value().body;
    return reply.assume_value().body;
  }
  void Fault(const std::string& json) { Control("/control/v1/faults", json); }

  CreatePaymentRequest Payment(const std::string& reference, std::int64_t amount = 12800,
                               const std::string& method = "wechat_native") {
    CreatePaymentRequest request;
    request.merchant_account = kAccount;
    request.provider_reference = reference;
    request.amount_minor = amount;
    request.currency = "CNY";
    request.method = method;
    request.description = "意外险-年度保单";
    request.notify_url = shared->receiver->url(kAccount);
    return request;
  }
  ProviderResult Create(const std::string& reference, std::int64_t amount = 12800) {
    return RunAsync(io_, adapter_->CreatePayment(Payment(reference, amount)));
  }
  ProviderResult Query(const std::string& reference) {
    return RunAsync(io_, adapter_->QueryPayment({kAccount, reference}));
  }
  void Pay(const std::string& reference) {
    Control("/control/v1/payments/complete",
            fmt::format(R"({{"mchid":"{}","out_trade_no":"{}","trade_state":"SUCCESS"}})", kMchid,
                        reference));
  }
  ProviderResult RefundOf(const std::string& reference, const std::string& refund_reference,
                          std::int64_t amount) {
    RefundRequest request;
    request.merchant_account = kAccount;
    request.payment_reference = reference;
    request.refund_reference = refund_reference;
    request.amount_minor = amount;
    request.payment_amount_minor = 12800;
    request.currency = "CNY";
    request.reason = "退保";
    request.notify_url = shared->receiver->url(kAccount);
    return RunAsync(io_, adapter_->Refund(std::move(request)));
  }

  boost::asio::io_context io_;
  std::unique_ptr<WechatPayAdapter> adapter_;
  std::shared_ptr<http::HttpsClient> control_;
};

std::string Ref(const char* tag) {
  static int seq = 0;
  return fmt::format("pay_{}_{:06}_{}", tag, getpid() % 1000000, ++seq);
}

TEST_F(WechatPayTest, NativePaymentLifecycleWithVerifiedCallbacks) {
  const std::string ref = Ref("life");
  auto created = Create(ref);
  ASSERT_EQ(created.outcome, Outcome::kPending) << created.detail;
  EXPECT_EQ(created.next_action_type, "qr_code_url");
  EXPECT_EQ(created.next_action_value.rfind("weixin://wxpay/bizpayurl?pr=", 0), 0u);
  // Creating again with the same fields is the same order.
  auto again = Create(ref);
  EXPECT_EQ(again.outcome, Outcome::kPending);
  EXPECT_EQ(again.next_action_value, created.next_action_value);
  EXPECT_EQ(Query(ref).outcome, Outcome::kPending);

  Pay(ref);
  auto deliveries = shared->receiver->WaitFor(1, 5s);
  ASSERT_EQ(deliveries.size(), 1u);
  auto event = adapter_->VerifyCallback(deliveries[0].request);
  ASSERT_TRUE(event) << event.error();
  EXPECT_EQ(event.value().kind, CallbackEvent::Kind::kPayment);
  EXPECT_EQ(event.value().reference, ref);
  EXPECT_EQ(event.value().result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(event.value().result.amount_minor, 12800);
  EXPECT_EQ(event.value().dedup_key.rfind("EV-", 0), 0u);
  auto paid = Query(ref);
  EXPECT_EQ(paid.outcome, Outcome::kSucceeded);
  EXPECT_EQ(paid.provider_transaction_id, event.value().result.provider_transaction_id);

  // Refund: pending, then the REFUND.SUCCESS callback, then the query agrees.
  shared->receiver->Clear();
  const std::string refund_ref = "re_" + ref;
  EXPECT_EQ(RefundOf(ref, refund_ref, 2800).outcome, Outcome::kPending);
  EXPECT_EQ(RefundOf(ref, "re2_" + ref, 20000).outcome,
            Outcome::kDeclined);  // exceeds what is left
  Control("/control/v1/refunds/complete",
          fmt::format(R"({{"mchid":"{}","out_refund_no":"{}","status":"SUCCESS"}})", kMchid,
                      refund_ref));
  deliveries = shared->receiver->WaitFor(1, 5s);
  ASSERT_EQ(deliveries.size(), 1u);
  auto refund_event = adapter_->VerifyCallback(deliveries[0].request);
  ASSERT_TRUE(refund_event) << refund_event.error();
  EXPECT_EQ(refund_event.value().kind, CallbackEvent::Kind::kRefund);
  EXPECT_EQ(refund_event.value().reference, refund_ref);
  EXPECT_EQ(refund_event.value().result.outcome, Outcome::kSucceeded);
  auto refund_query = RunAsync(io_, adapter_->QueryRefund({kAccount, ref, refund_ref}));
  EXPECT_EQ(refund_query.outcome, Outcome::kSucceeded);
  EXPECT_EQ(refund_query.amount_minor, 2800);
  // Still a paid payment (trade_state REFUND).
  EXPECT_EQ(Query(ref).outcome, Outcome::kSucceeded);
}

TEST_F(WechatPayTest, JsapiAppAndH5NextActions) {
  auto jsapi = RunAsync(
      io_, adapter_->CreatePaymentFor(Payment(Ref("js"), 100, "wechat_jsapi"),
                                      PayerInfo{"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "", "Wap"}));
  ASSERT_EQ(jsapi.outcome, Outcome::kPending) << jsapi.detail;
  EXPECT_EQ(jsapi.next_action_type, "wechat_jsapi_params");
  EXPECT_NE(jsapi.next_action_value.find(R"("package":"prepay_id=wx)"), std::string::npos);
  EXPECT_NE(jsapi.next_action_value.find(R"("signType":"RSA")"), std::string::npos);
  // Without an openid nothing can be sent.
  EXPECT_EQ(RunAsync(io_, adapter_->CreatePayment(Payment(Ref("js"), 100, "wechat_jsapi"))).outcome,
            Outcome::kNotSent);
  auto app = RunAsync(io_, adapter_->CreatePayment(Payment(Ref("app"), 100, "wechat_app")));
  ASSERT_EQ(app.outcome, Outcome::kPending) << app.detail;
  EXPECT_EQ(app.next_action_type, "wechat_app_params");
  EXPECT_NE(app.next_action_value.find(R"("package":"Sign=WXPay")"), std::string::npos);
  auto h5 = RunAsync(io_, adapter_->CreatePaymentFor(Payment(Ref("h5"), 100, "wechat_h5"),
                                                     PayerInfo{"", "203.0.113.7", "Wap"}));
  ASSERT_EQ(h5.outcome, Outcome::kPending) << h5.detail;
  EXPECT_EQ(h5.next_action_type, "redirect_url");
  EXPECT_EQ(RunAsync(io_, adapter_->CreatePayment(Payment(Ref("x"), 100, "alipay_page"))).outcome,
            Outcome::kNotSent);
}

TEST_F(WechatPayTest, CloseIsDefinitive) {
  const std::string ref = Ref("close");
  ASSERT_EQ(Create(ref).outcome, Outcome::kPending);
  EXPECT_EQ(RunAsync(io_, adapter_->ClosePayment({kAccount, ref})).outcome, Outcome::kSucceeded);
  auto closed = Query(ref);
  EXPECT_EQ(closed.outcome, Outcome::kDeclined);
  EXPECT_EQ(closed.decline_code, "closed");
  auto recreate = Create(ref);
  EXPECT_EQ(recreate.outcome, Outcome::kDeclined);
  EXPECT_EQ(recreate.decline_code, "closed");
  // A reference never created, closed first: it can never be created.
  const std::string never = Ref("never");
  EXPECT_EQ(RunAsync(io_, adapter_->ClosePayment({kAccount, never})).outcome, Outcome::kSucceeded);
  EXPECT_EQ(Create(never).outcome, Outcome::kDeclined);
  // A paid payment cannot be closed.
  const std::string paid = Ref("paid");
  ASSERT_EQ(Create(paid).outcome, Outcome::kPending);
  Pay(paid);
  auto refused = RunAsync(io_, adapter_->ClosePayment({kAccount, paid}));
  EXPECT_EQ(refused.outcome, Outcome::kDeclined);
  EXPECT_EQ(refused.decline_code, "already_paid");
  // Creating a paid reference again (ORDERPAID) is not a decline: an inquiry finds it paid.
  EXPECT_EQ(Create(paid).outcome, Outcome::kUnknown);
  EXPECT_EQ(Query(paid).outcome, Outcome::kSucceeded);
}

TEST_F(WechatPayTest, ReusedReferenceWithOtherFieldsIsUnknown) {
  const std::string ref = Ref("reuse");
  ASSERT_EQ(Create(ref).outcome, Outcome::kPending);
  EXPECT_EQ(Create(ref, 999).outcome, Outcome::kUnknown);
}

TEST_F(WechatPayTest, CallFaultsClassifyExactly) {
  const std::pair<const char*, Outcome> faults[] = {
      {"FAULT_KIND_TIMEOUT_BEFORE", Outcome::kUnknown},
      {"FAULT_KIND_TIMEOUT_AFTER", Outcome::kUnknown},
      {"FAULT_KIND_HTTP_5XX", Outcome::kUnknown},
      {"FAULT_KIND_MALFORMED_REPLY", Outcome::kUnknown},
      {"FAULT_KIND_BAD_SIGNATURE_REPLY", Outcome::kUnknown},
  };
  for (auto [kind, outcome] : faults) {
    const std::string ref = Ref("fault");
    Fault(fmt::format(R"({{"kind":"{}","operation":"create_payment","count":1,"delay_ms":3000}})",
                      kind));
    auto result = Create(ref);
    EXPECT_EQ(result.outcome, outcome) << kind << ": " << result.detail;
  }
  // The faults were one-shot: the next call is clean.
  EXPECT_EQ(Create(Ref("clean")).outcome, Outcome::kPending);
  // Query faults too.
  const std::string ref = Ref("qfault");
  ASSERT_EQ(Create(ref).outcome, Outcome::kPending);
  Fault(R"({"kind":"FAULT_KIND_BAD_SIGNATURE_REPLY","operation":"query_payment","count":1})");
  EXPECT_EQ(Query(ref).outcome, Outcome::kUnknown);
  EXPECT_EQ(Query(ref).outcome, Outcome::kPending);
}

TEST_F(WechatPayTest, ConnectionRefusedIsNotSent) {
  // A port nobody listens on: bind one, close it.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  acceptor.close();
  auto adapter = MakeAdapter({.base_url = fmt::format("https://localhost:{}", port)});
  EXPECT_EQ(RunAsync(io_, adapter->CreatePayment(Payment(Ref("refused")))).outcome,
            Outcome::kNotSent);
}

TEST_F(WechatPayTest, CallbackRetriesDuplicatesAndTamperedOnes) {
  // Not acknowledged twice: delivered a third time, same notification id, each signed afresh.
  const std::string ref = Ref("retry");
  ASSERT_EQ(Create(ref).outcome, Outcome::kPending);
  shared->receiver->NackNext(2);
  Pay(ref);
  auto deliveries = shared->receiver->WaitFor(3, 5s);
  ASSERT_EQ(deliveries.size(), 3u);
  std::string id;
  for (const auto& d : deliveries) {
    auto event = adapter_->VerifyCallback(d.request);
    ASSERT_TRUE(event) << event.error();
    if (id.empty()) id = event.value().dedup_key;
    EXPECT_EQ(event.value().dedup_key, id);
  }
  // The pauses follow WeChat's schedule, scaled: 15 ms then 15 ms at least.
  EXPECT_GE(deliveries[1].at - deliveries[0].at, 14ms);

  // Badly signed and SIGNTEST-probe callbacks are refused by the adapter.
  for (const char* kind : {"FAULT_KIND_BAD_SIGNATURE_CALLBACK", "FAULT_KIND_SIGNTEST_CALLBACK"}) {
    shared->receiver->Clear();
    const std::string bad = Ref("badcb");
    ASSERT_EQ(Create(bad).outcome, Outcome::kPending);
    Fault(fmt::format(R"({{"kind":"{}","reference":"{}","count":1}})", kind, bad));
    Pay(bad);
    auto got = shared->receiver->WaitFor(1, 5s);
    ASSERT_GE(got.size(), 1u) << kind;
    auto refused = adapter_->VerifyCallback(got[0].request);
    EXPECT_FALSE(refused) << kind;
  }
  // A stale NOTPAY callback after the terminal one (out of order) reads as pending, never as a
  // regression the adapter would invent.
  shared->receiver->Clear();
  const std::string ooo = Ref("ooo");
  ASSERT_EQ(Create(ooo).outcome, Outcome::kPending);
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_OUT_OF_ORDER_CALLBACK","reference":"{}","count":1}})",
                    ooo));
  Pay(ooo);
  auto both = shared->receiver->WaitFor(2, 5s);
  ASSERT_EQ(both.size(), 2u);
  auto first = adapter_->VerifyCallback(both[0].request);
  auto second = adapter_->VerifyCallback(both[1].request);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first.value().result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(second.value().result.outcome, Outcome::kPending);
  EXPECT_NE(first.value().dedup_key, second.value().dedup_key);
}

TEST_F(WechatPayTest, MerchantTransferWithEncryptedName) {
  TransferRequest request;
  request.out_bill_no = fmt::format("po{:06}{}", getpid() % 1000000, 1);
  request.openid = "o-MYE42l80oelYMDE34nYD456Xoy";
  request.user_name = "张三";
  request.amount_minor = 400000;
  request.remark = "理赔款";
  request.notify_url = shared->receiver->url(kAccount);
  request.transfer_scene_id = "1000";
  request.scene_report_infos = {{"活动名称", "理赔"}, {"奖励说明", "保险理赔"}};
  auto created = RunAsync(io_, adapter_->CreateTransfer(request));
  ASSERT_EQ(created.result.outcome, Outcome::kPending) << created.result.detail;
  EXPECT_EQ(created.state, "WAIT_USER_CONFIRM");
  EXPECT_FALSE(created.package_info.empty());
  EXPECT_FALSE(created.transfer_bill_no.empty());
  // Idempotent repeat.
  EXPECT_EQ(RunAsync(io_, adapter_->CreateTransfer(request)).transfer_bill_no,
            created.transfer_bill_no);
  // Above 2000 CNY without a name WeChat refuses it (PARAM_ERROR: definitive).
  TransferRequest nameless = request;
  nameless.out_bill_no += "n";
  nameless.user_name.clear();
  EXPECT_EQ(RunAsync(io_, adapter_->CreateTransfer(nameless)).result.outcome, Outcome::kDeclined);

  shared->receiver->Clear();
  Control("/control/v1/transfers/complete",
          fmt::format(R"({{"mchid":"{}","out_bill_no":"{}","state":"SUCCESS"}})", kMchid,
                      request.out_bill_no));
  auto deliveries = shared->receiver->WaitFor(1, 5s);
  ASSERT_EQ(deliveries.size(), 1u);
  auto event = adapter_->VerifyTransferCallback(deliveries[0].request);
  ASSERT_TRUE(event) << event.error();
  EXPECT_EQ(event.value().reference, request.out_bill_no);
  EXPECT_EQ(event.value().result.result.outcome, Outcome::kSucceeded);
  // Through the Adapter interface the same callback is a payout's (out_bill_no mapped back).
  auto as_payout = adapter_->VerifyCallback(deliveries[0].request);
  ASSERT_TRUE(as_payout) << as_payout.error();
  EXPECT_EQ(as_payout.value().kind, CallbackEvent::Kind::kPayout);
  auto queried = RunAsync(io_, adapter_->QueryTransfer(request.out_bill_no));
  EXPECT_EQ(queried.result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(queried.result.amount_minor, 400000);
  EXPECT_EQ(RunAsync(io_, adapter_->QueryTransfer("po_never_1")).result.outcome, Outcome::kUnknown);
}

// Payouts through the Adapter interface (what the gateway's payout flow calls): every outcome class
// the merchant transfer can produce, with the reference mapped to WeChat's letters-and-digits
// out_bill_no and back.
TEST_F(WechatPayTest, PayoutByMerchantTransferThroughTheAdapterInterface) {
  static int seq = 0;
  auto reference = [] { return fmt::format("po_{}w{}_1", getpid() % 1000000, ++seq); };
  auto payout = [&](const std::string& ref, std::int64_t amount) {
    CreatePayoutRequest request;
    request.merchant_account = kAccount;
    request.provider_reference = ref;
    request.amount_minor = amount;
    request.currency = "CNY";
    request.method = "wechat_transfer";
    request.beneficiary.name = "张三";
    request.beneficiary.account_type = "wechat_openid";
    request.beneficiary.account = "o-MYE42l80oelYMDE34nYD456Xoy";
    request.description = "理赔款 CLM-1";
    request.notify_url = shared->receiver->url(kAccount);
    return request;
  };
  auto create = [&](const CreatePayoutRequest& request) {
    return RunAsync(io_, adapter_->CreatePayout(request));
  };
  auto query = [&](const std::string& ref) {
    return RunAsync(io_, adapter_->QueryPayout({kAccount, ref, {}}));
  };
  auto complete = [&](const std::string& ref, const char* state) {
    Control("/control/v1/transfers/complete",
            fmt::format(R"({{"mchid":"{}","out_bill_no":"{}","state":"{}"}})", kMchid,
                        OutBillNoOf(ref).value(), state));
  };

  // Above 2000 CNY, with the name (encrypted; the simulator decrypts it with WeChat's key).
  const std::string paid = reference();
  const ProviderResult created = create(payout(paid, 300000));
  ASSERT_EQ(created.outcome, Outcome::kPending) << created.detail;
  EXPECT_EQ(created.next_action_type, "wechat_transfer_package");
  EXPECT_FALSE(created.next_action_value.empty());
  EXPECT_EQ(create(payout(paid, 300000)).provider_transaction_id, created.provider_transaction_id);
  // Reusing the out_bill_no with another amount: WeChat refuses the reuse, the first one stands.
  EXPECT_EQ(create(payout(paid, 300001)).outcome, Outcome::kUnknown);
  shared->receiver->Clear();
  complete(paid, "SUCCESS");
  auto deliveries = shared->receiver->WaitFor(1, 5s);
  ASSERT_EQ(deliveries.size(), 1u);
  auto event = adapter_->VerifyCallback(deliveries[0].request);
  ASSERT_TRUE(event) << event.error();
  EXPECT_EQ(event.value().kind, CallbackEvent::Kind::kPayout);
  EXPECT_EQ(event.value().reference, paid);
  EXPECT_EQ(event.value().result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(event.value().result.amount_minor, 300000);
  EXPECT_EQ(query(paid).outcome, Outcome::kSucceeded);

  // Requests that cannot be built are never sent.
  auto nameless = payout(reference(), 200000);
  nameless.beneficiary.name.clear();
  EXPECT_EQ(create(nameless).outcome, Outcome::kNotSent);
  auto bank_card = payout(reference(), 100);
  bank_card.beneficiary.account_type = "bank_card";
  EXPECT_EQ(create(bank_card).outcome, Outcome::kNotSent);
  auto other_method = payout(reference(), 100);
  other_method.method = "alipay_transfer";
  EXPECT_EQ(create(other_method).outcome, Outcome::kNotSent);
  EXPECT_EQ(create(payout("PO-Upper_1", 100)).outcome, Outcome::kNotSent);
  // Below the threshold a nameless payout is fine.
  auto small = payout(reference(), 199999);
  small.beneficiary.name.clear();
  EXPECT_EQ(create(small).outcome, Outcome::kPending);

  // WeChat's refusal for want of balance is definitive; a transfer that fails later too.
  const std::string broke = reference();
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_REFUSE","reference":"{}","count":1}})",
                    OutBillNoOf(broke).value()));
  const ProviderResult refused = create(payout(broke, 5000));
  EXPECT_EQ(refused.outcome, Outcome::kDeclined) << refused.detail;
  EXPECT_EQ(refused.decline_code, "insufficient_funds");
  const std::string failed = reference();
  ASSERT_EQ(create(payout(failed, 5000)).outcome, Outcome::kPending);
  complete(failed, "FAIL");
  EXPECT_EQ(query(failed).outcome, Outcome::kDeclined);

  // Faults: unknown, and the query settles what happened.
  const std::string after = reference();
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_TIMEOUT_AFTER","operation":"create_transfer",)"
                    R"("reference":"{}","count":1,"delay_ms":3000}})",
                    OutBillNoOf(after).value()));
  EXPECT_EQ(create(payout(after, 5000)).outcome, Outcome::kUnknown);
  EXPECT_EQ(query(after).outcome, Outcome::kPending);
  const std::string server_error = reference();
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_HTTP_5XX","reference":"{}","count":1}})",
                    OutBillNoOf(server_error).value()));
  EXPECT_EQ(create(payout(server_error, 5000)).outcome, Outcome::kUnknown);
  // WeChat's "not found" is no proof that nothing is on its way.
  EXPECT_EQ(query(server_error).outcome, Outcome::kUnknown);

  // A lost callback: only the query tells.
  const std::string lost = reference();
  Fault(fmt::format(R"({{"kind":"FAULT_KIND_LOST_CALLBACK","reference":"{}"}})",
                    OutBillNoOf(lost).value()));
  ASSERT_EQ(create(payout(lost, 5000)).outcome, Outcome::kPending);
  shared->receiver->Clear();
  complete(lost, "SUCCESS");
  EXPECT_TRUE(shared->receiver->WaitFor(1, 500ms).empty());
  EXPECT_EQ(query(lost).outcome, Outcome::kSucceeded);
}

TEST_F(WechatPayTest, TradeBillDownloadsGzipAndPlainWithCheckedTotals) {
  const std::string a = Ref("billa");
  const std::string b = Ref("billb");
  ASSERT_EQ(Create(a, 10000).outcome, Outcome::kPending);
  ASSERT_EQ(Create(b, 12800).outcome, Outcome::kPending);
  Pay(a);
  Pay(b);
  const std::string refund_ref = "re_" + b;
  ASSERT_EQ(RefundOf(b, refund_ref, 2800).outcome, Outcome::kPending);
  Control("/control/v1/refunds/complete",
          fmt::format(R"({{"mchid":"{}","out_refund_no":"{}","status":"SUCCESS"}})", kMchid,
                      refund_ref));
  const std::string today = Rfc3339China(std::chrono::system_clock::now()).substr(0, 10);
  for (bool gzip : {true, false}) {
    auto bill = RunAsync(io_, adapter_->DownloadTradeBill(today, "ALL", gzip));
    ASSERT_TRUE(bill) << bill.error();
    EXPECT_EQ(bill.value().raw != bill.value().file, gzip);
    const auto& records = bill.value().parsed.records;
    bool found_a = false;
    bool found_refund = false;
    for (const auto& r : records) {
      if (r.merchant_reference == a && r.kind == bill::Record::Kind::kPayment) {
        found_a = true;
        EXPECT_EQ(r.amount_minor, 10000);
        EXPECT_EQ(r.fee_minor, 60);
      }
      if (r.refund_reference == refund_ref) {
        found_refund = true;
        EXPECT_EQ(r.amount_minor, 2800);
      }
    }
    EXPECT_TRUE(found_a);
    EXPECT_TRUE(found_refund);
    EXPECT_GE(bill.value().parsed.totals.payment_count, 2);
  }
  // The form reconciliation takes: downloaded gzip'd, SHA-1 checked while inflating a piece at a
  // time, returned compressed; it inflates to exactly the file the whole download checked.
  auto whole = RunAsync(io_, adapter_->DownloadTradeBill(today, "ALL", true));
  auto gz = RunAsync(io_, adapter_->DownloadTradeBillGzip(today, "ALL"));
  ASSERT_TRUE(whole && gz) << (gz ? whole.error() : gz.error());
  EXPECT_TRUE(gz.value().file.empty());
  EXPECT_EQ(archive::Gunzip(gz.value().raw).value(), whole.value().file);
  // A download cut short in transit does not inflate to its end, and is refused.
  Fault(R"({"kind":"FAULT_KIND_MALFORMED_REPLY","operation":"download_bill","count":1})");
  auto cut = RunAsync(io_, adapter_->DownloadTradeBillGzip(today, "ALL"));
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.error().find("inflate"), std::string::npos) << cut.error();
  // A day without business: WeChat answers NO_STATEMENT_EXIST.
  EXPECT_FALSE(RunAsync(io_, adapter_->DownloadTradeBill("2001-01-01", "ALL", false)));
  EXPECT_FALSE(RunAsync(io_, adapter_->DownloadTradeBillGzip("2001-01-01", "ALL")));
  // A bill whose download is tampered in transit fails the SHA-1 (bad signature on the handle).
  Fault(R"({"kind":"FAULT_KIND_BAD_SIGNATURE_REPLY","operation":"trade_bill","count":1})");
  EXPECT_FALSE(RunAsync(io_, adapter_->DownloadTradeBill(today, "ALL", true)));
}

TEST_F(WechatPayTest, PlatformCertificatesAreDownloadedDecryptedAndTrusted) {
  auto adapter = MakeAdapter({.with_platform_certificate = false});
  // Without WeChat Pay's key no reply can be trusted.
  auto blind = RunAsync(io_, adapter->CreatePayment(Payment(Ref("cert"))));
  EXPECT_EQ(blind.outcome, Outcome::kUnknown);
  auto installed = RunAsync(io_, adapter->RefreshCertificates());
  ASSERT_TRUE(installed) << installed.error();
  EXPECT_EQ(installed.value(), 1u);
  EXPECT_NE(adapter->verifiers()->Find(kPlatformSerial), nullptr);
  EXPECT_EQ(RunAsync(io_, adapter->CreatePayment(Payment(Ref("cert")))).outcome, Outcome::kPending);
  // A tampered certificates reply is refused and installs nothing new.
  auto fresh = MakeAdapter({.with_platform_certificate = false});
  Fault(R"({"kind":"FAULT_KIND_BAD_SIGNATURE_REPLY","operation":"certificates","count":1})");
  EXPECT_FALSE(RunAsync(io_, fresh->RefreshCertificates()));
  EXPECT_TRUE(fresh->verifiers()->empty());
}

}  // namespace
}  // namespace paygate::adapters::wechatpay
