// The Alipay adapter against the real paygate-alipay-sim process over real TLS: payments opened by
// the payer, queries, closes, refunds, notifies verified by the adapter and acknowledged with
// "success" (or redelivered), transfers in certificate mode (the simulator checks both SNs), the
// bill, and every fault mode with the exact outcome class it must produce.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "adapters/alipay/alipay_adapter.h"
#include "adapters/alipay/mapper.h"
#include "adapters/common/codec.h"
#include "adapters/http/https_client.h"
#include "tests/integration/alipay/alipay_fixture.h"
#include "tests/integration/sandbox/sandbox_fixture.h"
#include "tests/testing/run_async.h"

namespace paygate::adapters::alipay {
namespace {

using ::paygate::testing::AlipaySimProcess;
using ::paygate::testing::NotifyReceiver;
using ::paygate::testing::RunAsync;
using namespace std::chrono_literals;

constexpr const char* kPkApp = "2021000000000001";
constexpr const char* kCertApp = "2021000000000002";
constexpr const char* kToken = "alipay-control-token";

std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Vector(const std::string& relative) {
  return Slurp(std::string(std::getenv("PAYGATE_SOURCE_DIR")) + "/tests/vectors/providers/alipay/" +
               relative);
}

// The Base64 body as a PEM the openssl CLI reads.
std::string Pem(const std::string& label, const std::string& base64) {
  std::string body;
  for (char c : base64) {
    if (c != '\n' && c != '\r' && c != ' ') body += c;
  }
  std::string out = "-----BEGIN " + label + "-----\n";
  for (std::size_t i = 0; i < body.size(); i += 64) out += body.substr(i, 64) + "\n";
  return out + "-----END " + label + "-----\n";
}

struct Shared {
  // One io_context for the suite: the shared client pools connections on the executor they were
  // made on, so it must outlive every test.
  boost::asio::io_context io;
  std::filesystem::path dir;
  testing::SandboxPki pki;
  std::unique_ptr<AlipaySimProcess> sim;
  std::unique_ptr<NotifyReceiver> receiver;
  std::shared_ptr<http::HttpsClient> client;
  std::unique_ptr<AlipayAdapter> pk;
  std::unique_ptr<AlipayAdapter> cert;
};
Shared* shared = nullptr;

AlipayOptions Options(const std::string& app_id, const std::string& account) {
  AlipayOptions options;
  options.gateway_url = shared->sim->gateway_url();
  options.merchant_account = account;
  options.app_id = app_id;
  options.seller_id = "2088000000000001";
  options.app_private_key_pem = keys::Secret(Vector("nodejs/app-private-key.pem"));
  options.request_timeout_ms = 1500ms;
  return options;
}

class AlipayIntegration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared = new Shared;
    shared->dir = std::filesystem::temp_directory_path() /
                  fmt::format("paygate-alipay-it-{}", ::getpid());
    std::filesystem::create_directories(shared->dir);
    const auto& dir = shared->dir;
    shared->pki = testing::MakeSandboxPki(dir);
    testing::WriteSecretFile(
        dir / "alipay.key",
        Pem("PRIVATE KEY", Vector("nodejs/app_2014060600164699_rsa2_private_key_no_wrapper.pem")));
    testing::WriteSecretFile(dir / "app.key", Vector("nodejs/app-private-key.pem"));
    testing::WriteSecretFile(dir / "control.token", kToken);
    {
      std::ofstream(dir / "app.pub") << Vector("nodejs/app-public-key.pem");
    }
    const auto cert_pki = testing::MakeAlipayCertPki(dir, dir / "alipay.key", dir / "app.key");
    shared->sim = std::make_unique<AlipaySimProcess>(std::vector<std::string>{
        "--cert", shared->pki.server_crt.string(), "--key", shared->pki.server_key.string(),
        "--callback-ca", shared->pki.ca.string(),
        "--app-public-key", fmt::format("{}={}", kPkApp, (dir / "app.pub").string()),
        "--app-cert", fmt::format("{}={}", kCertApp, cert_pki.app_cert.string()),
        "--alipay-private-key", (dir / "alipay.key").string(),
        "--alipay-cert", cert_pki.alipay_cert.string(),
        "--alipay-root-cert", cert_pki.root_bundle.string(),
        "--control-token-file", (dir / "control.token").string(),
        // Alipay's 4-minute first pause becomes 24 ms.
        "--notify-time-scale", "0.0001", "--notify-attempts", "3"});

    http::HttpsClientOptions client_options;
    client_options.ca_file = shared->pki.ca.string();
    shared->client = http::HttpsClient::Create(client_options).value();

    AlipayOptions pk = Options(kPkApp, "m1");
    pk.alipay_public_key_pem = Pem(
        "PUBLIC KEY", Vector("nodejs/app_2014060600164699_rsa2_public_key_no_wrapper.pem"));
    auto pk_adapter = AlipayAdapter::Create(std::move(pk), shared->client);
    if (!pk_adapter) throw std::runtime_error(pk_adapter.error().message);
    shared->pk = std::move(pk_adapter).value();

    AlipayOptions cert = Options(kCertApp, "m2");
    cert.app_cert_pem = Slurp(cert_pki.app_cert);
    cert.alipay_cert_pem = Slurp(cert_pki.alipay_cert);
    cert.alipay_root_cert_pem = Slurp(cert_pki.root_bundle);
    auto cert_adapter = AlipayAdapter::Create(std::move(cert), shared->client);
    if (!cert_adapter) throw std::runtime_error(cert_adapter.error().message);
    shared->cert = std::move(cert_adapter).value();

    shared->receiver = std::make_unique<NotifyReceiver>(
        shared->pki.server_crt, shared->pki.server_key, [](const CallbackRequest& request) {
          AlipayAdapter& adapter = request.merchant_account == "m2" ? *shared->cert : *shared->pk;
          return adapter.AckCallback(adapter.VerifyCallback(request).has_value());
        });
  }

  static void TearDownTestSuite() {
    shared->receiver.reset();
    shared->sim.reset();
    std::filesystem::remove_all(shared->dir);
    delete shared;
    shared = nullptr;
  }

  void SetUp() override {
    Control("faults/clear", "{}");
    shared->receiver->Clear();
  }

  // POSTs to the simulator's control API; returns the HTTP status.
  unsigned Control(const std::string& path, const std::string& body) {
    http::HttpsRequest request;
    request.url = fmt::format("https://localhost:{}/control/v1/{}", shared->sim->port(), path);
    request.headers = {{"Authorization", std::string("Bearer ") + kToken}};
    request.body = body;
    auto reply = RunAsync(io_, shared->client->Send(std::move(request)));
    return reply ? reply.assume_value().status : 0;
  }

  void Fault(const std::string& kind, const std::string& method, const std::string& extra = "") {
    ASSERT_EQ(Control("faults", fmt::format(R"({{"kind":"{}","method":"{}","count":1{}}})", kind,
                                            method, extra)),
              200u);
  }

  CreatePaymentRequest Payment(const std::string& reference, std::int64_t amount,
                               const std::string& method, const std::string& account = "m1") {
    CreatePaymentRequest request;
    request.merchant_account = account;
    request.provider_reference = reference;
    request.amount_minor = amount;
    request.currency = "CNY";
    request.method = method;
    request.description = "保费 " + reference;
    request.notify_url = shared->receiver->url(account);
    request.expires_at = std::chrono::system_clock::now() + 30min;
    return request;
  }

  // Creates a payment and has the payer pay it; returns the create result.
  ProviderResult PaidPayment(AlipayAdapter& adapter, const std::string& app_id,
                             const std::string& reference, std::int64_t amount) {
    ProviderResult created = RunAsync(
        io_, adapter.CreatePayment(Payment(reference, amount, "alipay_app",
                                           &adapter == shared->cert.get() ? "m2" : "m1")));
    EXPECT_EQ(created.outcome, Outcome::kPending);
    EXPECT_EQ(Control("trades/complete",
                      fmt::format(R"({{"app_id":"{}","out_trade_no":"{}","trade_status":"TRADE_SUCCESS","order_string":"{}"}})",
                                  app_id, reference, created.next_action_value)),
              200u);
    return created;
  }

  boost::asio::io_context& io_ = shared->io;
};

TEST_F(AlipayIntegration, PagePaymentOpenedPaidNotifiedRefunded) {
  AlipayAdapter& adapter = *shared->pk;
  ProviderResult created = RunAsync(io_, adapter.CreatePayment(Payment("page_1", 12345, "alipay_page")));
  ASSERT_EQ(created.outcome, Outcome::kPending) << created.detail;
  ASSERT_EQ(created.next_action_type, "redirect_url");
  // Not opened yet: Alipay has no trade, which proves nothing.
  EXPECT_EQ(RunAsync(io_, adapter.QueryPayment({"m1", "page_1"})).outcome, Outcome::kUnknown);
  EXPECT_EQ(RunAsync(io_, adapter.ClosePayment({"m1", "page_1"})).outcome, Outcome::kUnknown);

  // The payer's browser opens the signed URL; the simulator checks our signature.
  http::HttpsRequest open;
  open.method = "GET";
  open.url = created.next_action_value;
  auto cashier = RunAsync(io_, shared->client->Send(std::move(open)));
  ASSERT_TRUE(cashier);
  ASSERT_EQ(cashier.assume_value().status, 200u) << cashier.assume_value().body;
  // A URL whose amount was changed after signing is refused by the cashier.
  http::HttpsRequest tampered;
  tampered.method = "GET";
  tampered.url = created.next_action_value;
  tampered.url.replace(tampered.url.find("123.45"), 6, "1.2345");
  auto refused = RunAsync(io_, shared->client->Send(std::move(tampered)));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused.assume_value().status, 400u);

  EXPECT_EQ(RunAsync(io_, adapter.QueryPayment({"m1", "page_1"})).outcome, Outcome::kPending);
  ASSERT_EQ(Control("trades/complete",
                    R"({"app_id":"2021000000000001","out_trade_no":"page_1","trade_status":"TRADE_SUCCESS"})"),
            200u);
  auto notifies = shared->receiver->WaitFor(1, 5s);
  ASSERT_EQ(notifies.size(), 1u);
  auto event = adapter.VerifyCallback(notifies[0].request);
  ASSERT_TRUE(event) << event.error();
  EXPECT_EQ(event.value().kind, CallbackEvent::Kind::kPayment);
  EXPECT_EQ(event.value().reference, "page_1");
  EXPECT_EQ(event.value().result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(event.value().result.amount_minor, 12345);
  EXPECT_EQ(notifies[0].ack.body, "success");
  // Acknowledged with "success": no redelivery.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(shared->receiver->WaitFor(2, 10ms).size(), 1u);

  const ProviderResult paid = RunAsync(io_, adapter.QueryPayment({"m1", "page_1"}));
  EXPECT_EQ(paid.outcome, Outcome::kSucceeded);
  EXPECT_EQ(paid.amount_minor, 12345);
  EXPECT_EQ(paid.provider_transaction_id, event.value().result.provider_transaction_id);
  // Paid: close is refused.
  EXPECT_EQ(RunAsync(io_, adapter.ClosePayment({"m1", "page_1"})).outcome, Outcome::kDeclined);

  RefundRequest refund;
  refund.merchant_account = "m1";
  refund.payment_reference = "page_1";
  refund.refund_reference = "page_1_r1";
  refund.amount_minor = 2345;
  refund.payment_amount_minor = 12345;
  refund.currency = "CNY";
  refund.reason = "退保";
  shared->receiver->Clear();
  EXPECT_EQ(RunAsync(io_, adapter.Refund(refund)).outcome, Outcome::kSucceeded);
  // The same refund again moves nothing.
  EXPECT_EQ(RunAsync(io_, adapter.Refund(refund)).outcome, Outcome::kPending);
  const ProviderResult queried =
      RunAsync(io_, adapter.QueryRefund({"m1", "page_1", "page_1_r1"}));
  EXPECT_EQ(queried.outcome, Outcome::kSucceeded);
  EXPECT_EQ(queried.amount_minor, 2345);
  EXPECT_EQ(RunAsync(io_, adapter.QueryRefund({"m1", "page_1", "page_1_r9"})).outcome,
            Outcome::kUnknown);
  auto refund_notifies = shared->receiver->WaitFor(1, 5s);
  ASSERT_EQ(refund_notifies.size(), 1u);
  auto refund_event = adapter.VerifyCallback(refund_notifies[0].request);
  ASSERT_TRUE(refund_event) << refund_event.error();
  EXPECT_EQ(refund_event.value().kind, CallbackEvent::Kind::kRefund);
  EXPECT_EQ(refund_event.value().reference, "page_1_r1");
  // More than is left to refund.
  refund.refund_reference = "page_1_r2";
  refund.amount_minor = 10001;
  const ProviderResult too_much = RunAsync(io_, adapter.Refund(refund));
  EXPECT_EQ(too_much.outcome, Outcome::kDeclined);
  EXPECT_EQ(too_much.decline_code, "refund_exceeds_amount");
}

TEST_F(AlipayIntegration, AppPaymentClosedBeforePayment) {
  AlipayAdapter& adapter = *shared->pk;
  ProviderResult created = RunAsync(io_, adapter.CreatePayment(Payment("app_1", 500, "alipay_app")));
  ASSERT_EQ(created.outcome, Outcome::kPending);
  ASSERT_EQ(created.next_action_type, "app_order_string");
  ASSERT_EQ(Control("trades/open", fmt::format(R"({{"order_string":"{}"}})", created.next_action_value)),
            200u);
  EXPECT_EQ(RunAsync(io_, adapter.ClosePayment({"m1", "app_1"})).outcome, Outcome::kSucceeded);
  const ProviderResult closed = RunAsync(io_, adapter.QueryPayment({"m1", "app_1"}));
  EXPECT_EQ(closed.outcome, Outcome::kDeclined);
  EXPECT_EQ(closed.decline_code, "closed");
  // Closed: the payer can no longer pay it.
  EXPECT_EQ(Control("trades/complete",
                    R"({"app_id":"2021000000000001","out_trade_no":"app_1","trade_status":"TRADE_SUCCESS"})"),
            409u);
}

TEST_F(AlipayIntegration, CertificateModeTransfersAndPayments) {
  AlipayAdapter& adapter = *shared->cert;
  // Every call below is accepted only because app_cert_sn and alipay_root_cert_sn (computed from
  // the certificates, the EC root left out) are what the simulator computed too.
  PaidPayment(adapter, kCertApp, "cert_1", 800);
  EXPECT_EQ(RunAsync(io_, adapter.QueryPayment({"m2", "cert_1"})).outcome, Outcome::kSucceeded);

  PayoutRequest payout;
  payout.merchant_account = "m2";
  payout.reference = "payout_1";
  payout.amount_minor = 150000;
  payout.payee_identity = "2088102000000009";
  payout.title = "理赔款";
  const ProviderResult sent = RunAsync(io_, adapter.Transfer(payout));
  EXPECT_EQ(sent.outcome, Outcome::kSucceeded) << sent.detail;
  EXPECT_FALSE(sent.provider_transaction_id.empty());
  EXPECT_EQ(RunAsync(io_, adapter.QueryTransfer("payout_1")).outcome, Outcome::kSucceeded);
  // Repeating the transfer is the same transfer.
  EXPECT_EQ(RunAsync(io_, adapter.Transfer(payout)).provider_transaction_id, sent.provider_transaction_id);

  payout.reference = "payout_2";
  payout.payee_identity = "DEALING_1";
  EXPECT_EQ(RunAsync(io_, adapter.Transfer(payout)).outcome, Outcome::kPending);
  EXPECT_EQ(RunAsync(io_, adapter.QueryTransfer("payout_2")).outcome, Outcome::kPending);
  ASSERT_EQ(Control("transfers/complete",
                    R"({"app_id":"2021000000000002","out_biz_no":"payout_2","status":"FAIL"})"),
            200u);
  EXPECT_EQ(RunAsync(io_, adapter.QueryTransfer("payout_2")).outcome, Outcome::kDeclined);

  payout.reference = "payout_3";
  payout.payee_identity = "NOTEXIST_1";
  const ProviderResult nobody = RunAsync(io_, adapter.Transfer(payout));
  EXPECT_EQ(nobody.outcome, Outcome::kDeclined);
  EXPECT_EQ(nobody.decline_code, "payee_not_found");
  EXPECT_EQ(RunAsync(io_, adapter.QueryTransfer("payout_never")).outcome, Outcome::kUnknown);

  // Public-key mode may not transfer at all.
  payout.reference = "payout_4";
  EXPECT_EQ(RunAsync(io_, shared->pk->Transfer(payout)).outcome, Outcome::kNotSent);
}

// Payouts through the Adapter interface (what the gateway's payout flow calls): out_biz_no is the
// attempt reference, every outcome class, and never declined when Alipay's answer is ambiguous.
TEST_F(AlipayIntegration, PayoutThroughTheAdapterInterface) {
  AlipayAdapter& adapter = *shared->cert;
  auto payout = [](const std::string& reference, const std::string& account) {
    CreatePayoutRequest request;
    request.merchant_account = "m2";
    request.provider_reference = reference;
    request.amount_minor = 250000;
    request.currency = "CNY";
    request.method = "alipay_transfer";
    request.beneficiary.account_type = "alipay_user_id";
    request.beneficiary.account = account;
    request.beneficiary.name = "张三";
    request.description = "理赔款 CLM-7";
    return request;
  };
  auto create = [&](const CreatePayoutRequest& request) {
    return RunAsync(io_, adapter.CreatePayout(request));
  };
  auto query = [&](const std::string& reference) {
    return RunAsync(io_, adapter.QueryPayout({"m2", reference, {}}));
  };

  const ProviderResult paid = create(payout("po_ali_1", "2088102000000009"));
  ASSERT_EQ(paid.outcome, Outcome::kSucceeded) << paid.detail;
  EXPECT_EQ(query("po_ali_1").outcome, Outcome::kSucceeded);
  EXPECT_EQ(query("po_ali_1").amount_minor, 250000);
  // The same out_biz_no is the same transfer; with another amount Alipay refuses the reuse, and
  // that refusal is no proof of anything: unknown.
  EXPECT_EQ(create(payout("po_ali_1", "2088102000000009")).provider_transaction_id,
            paid.provider_transaction_id);
  auto other_amount = payout("po_ali_1", "2088102000000009");
  other_amount.amount_minor = 1;
  EXPECT_EQ(create(other_amount).outcome, Outcome::kUnknown);

  // DEALING is pending; the query settles it.
  ASSERT_EQ(create(payout("po_ali_2", "DEALING_2")).outcome, Outcome::kPending);
  ASSERT_EQ(Control("transfers/complete",
                    R"({"app_id":"2021000000000002","out_biz_no":"po_ali_2","status":"SUCCESS"})"),
            200u);
  EXPECT_EQ(query("po_ali_2").outcome, Outcome::kSucceeded);

  // Definitive refusals.
  const ProviderResult broke = create(payout("po_ali_3", "NOBALANCE_1"));
  EXPECT_EQ(broke.outcome, Outcome::kDeclined);
  EXPECT_EQ(broke.decline_code, "insufficient_balance");
  EXPECT_EQ(create(payout("po_ali_4", "NOTEXIST_1")).decline_code, "payee_not_found");

  // Logon ids need the name; unknown account types and methods are never sent.
  auto logon = payout("po_ali_5", "claimant@example.com");
  logon.beneficiary.account_type = "alipay_login_id";
  logon.beneficiary.name.clear();
  EXPECT_EQ(create(logon).outcome, Outcome::kNotSent);
  auto card = payout("po_ali_6", "6222020000001234");
  card.beneficiary.account_type = "bank_card";
  EXPECT_EQ(create(card).outcome, Outcome::kNotSent);
  auto wrong_method = payout("po_ali_7", "2088102000000009");
  wrong_method.method = "wechat_transfer";
  EXPECT_EQ(create(wrong_method).outcome, Outcome::kNotSent);
  EXPECT_EQ(RunAsync(io_, shared->pk->CreatePayout(payout("po_ali_8", "2088102000000009"))).outcome,
            Outcome::kNotSent);

  // Faults: executed but unanswered, and the query finds the transfer once.
  const std::string transfer(kMethodTransfer);
  Fault("FAULT_KIND_TIMEOUT_AFTER", transfer, R"(,"delay_ms":3000)");
  EXPECT_EQ(create(payout("po_ali_9", "2088102000000009")).outcome, Outcome::kUnknown);
  EXPECT_EQ(query("po_ali_9").outcome, Outcome::kSucceeded);
  // Not executed (5xx, Alipay's own "unavailable"): unknown, and its "not found" proves nothing.
  Fault("FAULT_KIND_HTTP_5XX", transfer);
  EXPECT_EQ(create(payout("po_ali_10", "2088102000000009")).outcome, Outcome::kUnknown);
  Fault("FAULT_KIND_SERVICE_UNAVAILABLE", transfer);
  EXPECT_EQ(create(payout("po_ali_11", "2088102000000009")).outcome, Outcome::kUnknown);
  EXPECT_EQ(query("po_ali_10").outcome, Outcome::kUnknown);
  Fault("FAULT_KIND_BAD_SIGNATURE_REPLY", transfer);
  EXPECT_EQ(create(payout("po_ali_12", "NOTEXIST_2")).outcome, Outcome::kUnknown);
}

TEST_F(AlipayIntegration, CallFaultsHaveTheirOutcomeClass) {
  AlipayAdapter& adapter = *shared->pk;
  PaidPayment(adapter, kPkApp, "fault_1", 1000);
  const std::string query(kMethodQuery);
  for (const char* kind : {"FAULT_KIND_HTTP_5XX", "FAULT_KIND_MALFORMED_REPLY",
                           "FAULT_KIND_BAD_SIGNATURE_REPLY", "FAULT_KIND_SERVICE_UNAVAILABLE"}) {
    Fault(kind, query);
    const ProviderResult result = RunAsync(io_, adapter.QueryPayment({"m1", "fault_1"}));
    EXPECT_EQ(result.outcome, Outcome::kUnknown) << kind << ": " << result.detail;
  }
  Fault("FAULT_KIND_TIMEOUT_BEFORE", query, R"(,"delay_ms":3000)");
  EXPECT_EQ(RunAsync(io_, adapter.QueryPayment({"m1", "fault_1"})).outcome, Outcome::kUnknown);
  // Executed, never answered: the refund happened, and only the query can tell.
  RefundRequest refund;
  refund.merchant_account = "m1";
  refund.payment_reference = "fault_1";
  refund.refund_reference = "fault_1_r1";
  refund.amount_minor = 100;
  refund.currency = "CNY";
  Fault("FAULT_KIND_TIMEOUT_AFTER", std::string(kMethodRefund), R"(,"delay_ms":3000)");
  EXPECT_EQ(RunAsync(io_, adapter.Refund(refund)).outcome, Outcome::kUnknown);
  EXPECT_EQ(RunAsync(io_, adapter.QueryRefund({"m1", "fault_1", "fault_1_r1"})).outcome,
            Outcome::kSucceeded);
  // Faults are one-shot: the next call is clean.
  EXPECT_EQ(RunAsync(io_, adapter.QueryPayment({"m1", "fault_1"})).outcome, Outcome::kSucceeded);

  // Nothing listening: provably not sent.
  AlipayOptions nowhere = Options(kPkApp, "m1");
  nowhere.gateway_url = "https://127.0.0.1:1/gateway.do";
  nowhere.alipay_public_key_pem =
      Pem("PUBLIC KEY", Vector("nodejs/app_2014060600164699_rsa2_public_key_no_wrapper.pem"));
  auto offline = AlipayAdapter::Create(std::move(nowhere), shared->client);
  ASSERT_TRUE(offline);
  EXPECT_EQ(RunAsync(io_, offline.value()->QueryPayment({"m1", "fault_1"})).outcome,
            Outcome::kNotSent);
}

TEST_F(AlipayIntegration, NotifyFaultsAndRedelivery) {
  AlipayAdapter& adapter = *shared->pk;
  // Badly signed: refused every time ("fail"), so Alipay redelivers up to its attempts.
  ASSERT_EQ(Control("faults", R"({"kind":"FAULT_KIND_BAD_SIGNATURE_CALLBACK","reference":"ntf_bad"})"), 200u);
  PaidPayment(adapter, kPkApp, "ntf_bad", 100);
  auto bad = shared->receiver->WaitFor(3, 5s);
  ASSERT_EQ(bad.size(), 3u);
  for (const auto& received : bad) {
    EXPECT_FALSE(adapter.VerifyCallback(received.request));
    EXPECT_NE(received.ack.body, "success");
  }

  // Duplicated: the same notify_id twice, both verified.
  shared->receiver->Clear();
  ASSERT_EQ(Control("faults", R"({"kind":"FAULT_KIND_DUPLICATE_CALLBACK","reference":"ntf_dup"})"), 200u);
  PaidPayment(adapter, kPkApp, "ntf_dup", 100);
  auto dup = shared->receiver->WaitFor(2, 5s);
  ASSERT_EQ(dup.size(), 2u);
  auto first = adapter.VerifyCallback(dup[0].request);
  auto second = adapter.VerifyCallback(dup[1].request);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first.value().dedup_key, second.value().dedup_key);

  // Out of order: a stale WAIT_BUYER_PAY after the success, under its own notify_id.
  shared->receiver->Clear();
  ASSERT_EQ(Control("faults", R"({"kind":"FAULT_KIND_OUT_OF_ORDER_CALLBACK","reference":"ntf_ooo"})"), 200u);
  PaidPayment(adapter, kPkApp, "ntf_ooo", 100);
  auto ooo = shared->receiver->WaitFor(2, 5s);
  ASSERT_EQ(ooo.size(), 2u);
  auto terminal = adapter.VerifyCallback(ooo[0].request);
  auto stale = adapter.VerifyCallback(ooo[1].request);
  ASSERT_TRUE(terminal && stale);
  EXPECT_EQ(terminal.value().result.outcome, Outcome::kSucceeded);
  EXPECT_EQ(stale.value().result.outcome, Outcome::kPending);
  EXPECT_NE(terminal.value().dedup_key, stale.value().dedup_key);

  // A notify for the other account's adapter is refused by this one.
  EXPECT_FALSE(shared->cert->VerifyCallback(ooo[0].request));
}

TEST_F(AlipayIntegration, BillListsTheDaysPaymentsAndRefunds) {
  AlipayAdapter& adapter = *shared->pk;
  PaidPayment(adapter, kPkApp, "bill_1", 1001);
  PaidPayment(adapter, kPkApp, "bill_2", 2002);
  RefundRequest refund;
  refund.merchant_account = "m1";
  refund.payment_reference = "bill_2";
  refund.refund_reference = "bill_2_r1";
  refund.amount_minor = 2;
  refund.currency = "CNY";
  ASSERT_EQ(RunAsync(io_, adapter.Refund(refund)).outcome, Outcome::kSucceeded);

  const std::string today = BeijingTime(std::chrono::system_clock::now()).substr(0, 10);
  auto bill = RunAsync(io_, adapter.DownloadBill(today));
  ASSERT_TRUE(bill) << bill.error().message;
  ASSERT_TRUE(bill.value().file) << bill.value().file_error;
  EXPECT_EQ(bill.value().raw.rfind("PK\x03\x04", 0), 0u);  // served as Alipay does: a zip
  const bill::File& file = *bill.value().file;
  bool saw_1 = false;
  bool saw_refund = false;
  for (const auto& record : file.records) {
    if (record.merchant_reference == "bill_1" && record.kind == bill::Record::Kind::kPayment) {
      saw_1 = true;
      EXPECT_EQ(record.amount_minor, 1001);
      EXPECT_EQ(record.merchant_id, "2088000000000001");
    }
    if (record.refund_reference == "bill_2_r1") {
      saw_refund = true;
      EXPECT_EQ(record.kind, bill::Record::Kind::kRefund);
      EXPECT_EQ(record.amount_minor, 2);
    }
  }
  EXPECT_TRUE(saw_1);
  EXPECT_TRUE(saw_refund);
  EXPECT_GE(file.totals.payment_count, 2);
  EXPECT_GE(file.totals.refund_count, 1);
  // The bill bytes are GBK, not UTF-8.
  EXPECT_EQ(bill.value().raw.find("业务明细"), std::string::npos);
}

}  // namespace
}  // namespace paygate::adapters::alipay
