#include "tests/e2e/collections/providers.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "adapters/alipay/alipay.pb.h"
#include "adapters/sandbox/sandbox.pb.h"
#include "adapters/unionpay/codec.h"
#include "adapters/unionpay/simulator/unionpay_sim.pb.h"
#include "adapters/wechatpay/wechatpay.pb.h"

namespace paygate::testing::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using verb = edge::http::verb;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Vector(const std::string& relative) {
  return Slurp(SourceDir() + "/tests/vectors/providers/" + relative);
}

void Run(const std::string& command) {
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
}

template <class Message>
Message Parse(const std::string& json) {
  Message message;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(json, &message, options);
  EXPECT_TRUE(parsed.ok()) << parsed.message() << " in: " << json;
  return message;
}

template <class Message>
std::string Json(const Message& message) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out);
  return out;
}

// "https://host:port/path?query" -> "/path?query".
std::string Target(const std::string& url) {
  const auto slash = url.find('/', url.find("://") + 3);
  return slash == std::string::npos ? "/" : url.substr(slash);
}

// The delay a timeout fault holds the connection; other kinds carry what the spec says.
std::uint32_t Delay(const FaultSpec& fault) {
  if (fault.delay_ms != 0) return fault.delay_ms;
  return fault.kind.rfind("TIMEOUT_", 0) == 0 ? kHoldMs : 0;
}

// ---- The sandbox (adapters/sandbox/PROTOCOL.md): HMAC-signed JSON. ----

class SandboxDriver final : public ProviderDriver {
 public:
  std::string provider() const override { return "sandbox"; }
  std::string method() const override { return "sandbox"; }
  std::string next_action_type() const override { return "qr_code_url"; }

  void Start(const DriverContext& context) override {
    context_ = context;
    WriteFile0600(context.dir / "m1.secret", "collections-e2e-merchant-secret-0123456789");
    // Callbacks are redelivered quickly, so a refused one gives up within a second.
    Launch("adapters/sandbox/paygate-sandbox",
           {"--cert", (context.pki / "server.crt").string(), "--key",
            (context.pki / "server.key").string(), "--callback-ca",
            (context.pki / "ca.crt").string(), "--merchant",
            "m1=" + (context.dir / "m1.secret").string(), "--control-token-file",
            TokenFile().string(), "--listen", "127.0.0.1", "--port", "0", "--callback-attempts",
            "3", "--callback-retry-ms", "150"});
  }

  std::string ProviderYaml() const override {
    return fmt::format(
        "  - provider: sandbox\n    merchant_account: m1\n"
        "    sandbox: {{base_url: \"https://localhost:{}\", ca_file: {}, secret_key_id: sandbox.m1}}\n",
        port_, (context_.pki / "ca.crt").string());
  }

  std::string KeyringYaml() const override {
    return fmt::format("    - {{id: sandbox.m1, file: {}}}\n", (context_.dir / "m1.secret").string());
  }

  unsigned Pay(const std::string& reference, bool succeed) override {
    return Control("payments/complete",
                   fmt::format(R"({{"merchant_account":"m1","reference":"{}","status":"{}"}})",
                               reference,
                               succeed ? "PAYMENT_STATUS_SUCCEEDED" : "PAYMENT_STATUS_FAILED"))
        .status;
  }

  unsigned CompleteRefund(const std::string& refund_id, bool succeed) override {
    return Control("refunds/complete",
                   fmt::format(R"({{"merchant_account":"m1","refund_reference":"{}","status":"{}"}})",
                               refund_id,
                               succeed ? "REFUND_STATUS_SUCCEEDED" : "REFUND_STATUS_FAILED"),
                   0)
        .status;
  }

  void Fault(const FaultSpec& fault) override {
    std::string op;
    switch (fault.op) {
      case FaultOp::kCreatePayment: op = "create_payment"; break;
      case FaultOp::kQueryPayment: op = "query_payment"; break;
      case FaultOp::kCreateRefund: op = "create_refund"; break;
      case FaultOp::kCallback: break;
    }
    std::string json = fmt::format(R"({{"kind":"FAULT_KIND_{}","operation":"{}","count":{})",
                                   fault.kind, op, op.empty() ? 0 : 1);
    // Refund faults match the refunded payment's reference; the others its amount.
    if (fault.op == FaultOp::kCreateRefund) {
      json += fmt::format(R"(,"reference":"{}")", fault.reference);
    } else {
      json += fmt::format(R"(,"amount_minor":"{}")", fault.amount);
    }
    if (Delay(fault) != 0) json += fmt::format(R"(,"delay_ms":{})", Delay(fault));
    if (fault.copies != 0) json += fmt::format(R"(,"copies":{})", fault.copies);
    Control("faults", json + "}");
  }

  std::uint64_t Payments() override { return Stats().payments(); }
  std::uint64_t Refunds() override { return Stats().refunds(); }
  std::uint64_t CallbacksFailed() override { return Stats().callbacks_failed(); }

 private:
  adapters::sandbox::v1::Stats Stats() {
    return Parse<adapters::sandbox::v1::Stats>(Control("stats", "{}").body);
  }
};

// ---- WeChat Pay API v3 (PROTOCOLS.md §A), keys from the Java SDK's vectors. ----

class WechatPayDriver final : public ProviderDriver {
 public:
  static constexpr const char* kMchid = "1234567891";
  static constexpr const char* kAppid = "wxd678efh567hg6787";
  static constexpr const char* kApiV3Key = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
  static constexpr const char* kMerchantSerial = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";

  std::string provider() const override { return "wechatpay"; }
  std::string method() const override { return "wechat_native"; }
  std::string next_action_type() const override { return "qr_code_url"; }
  // WeChat Pay sends TRANSACTION.SUCCESS only; PAYERROR is seen by querying.
  bool failure_is_notified() const override { return false; }

  void Start(const DriverContext& context) override {
    context_ = context;
    const fs::path& dir = context.dir;
    WriteFile0600(dir / "platform.key", Vector("wechatpay/java/wechat_pay_private_key.pem"));
    WriteFile0600(dir / "merchant.key", Vector("wechatpay/java/merchant_private_key.pem"));
    WriteFile0600(dir / "apiv3.key", kApiV3Key);
    std::ofstream(dir / "platform.pem") << Vector("wechatpay/java/wechat_pay_certificate.pem");
    std::ofstream(dir / "merchant.pem") << Vector("wechatpay/java/merchant_certificate.pem");
    // WeChat's retry pauses (15 s, 15 s, 30 s, ...) become milliseconds.
    Launch("adapters/wechatpay/paygate-wechatpay-sim",
           {"--cert", (context.pki / "server.crt").string(), "--key",
            (context.pki / "server.key").string(), "--callback-ca",
            (context.pki / "ca.crt").string(), "--platform-key", (dir / "platform.key").string(),
            "--platform-cert", (dir / "platform.pem").string(), "--merchant",
            fmt::format("{}={}={}", kMchid, (dir / "apiv3.key").string(),
                        (dir / "merchant.pem").string()),
            "--control-token-file", TokenFile().string(), "--listen", "127.0.0.1", "--port", "0",
            "--callback-attempts", "3", "--callback-time-scale", "0.001"});
  }

  std::string ProviderYaml() const override {
    const fs::path& dir = context_.dir;
    return fmt::format(
        "  - provider: wechatpay\n    merchant_account: m1\n    wechatpay:\n"
        "      base_url: \"https://localhost:{}\"\n      ca_file: {}\n      mchid: \"{}\"\n"
        "      appid: {}\n      merchant_serial_no: {}\n      merchant_private_key_id: wx.merchant\n"
        "      apiv3_key_id: wx.apiv3\n      platform_certificate_files: [{}]\n",
        port_, (context_.pki / "ca.crt").string(), kMchid, kAppid, kMerchantSerial,
        (dir / "platform.pem").string());
  }

  std::string KeyringYaml() const override {
    const fs::path& dir = context_.dir;
    return fmt::format("    - {{id: wx.merchant, file: {}}}\n    - {{id: wx.apiv3, file: {}}}\n",
                       (dir / "merchant.key").string(), (dir / "apiv3.key").string());
  }

  unsigned Pay(const std::string& reference, bool succeed) override {
    return Control("payments/complete",
                   fmt::format(R"({{"mchid":"{}","out_trade_no":"{}","trade_state":"{}"}})",
                               kMchid, reference, succeed ? "SUCCESS" : "PAYERROR"))
        .status;
  }

  unsigned CompleteRefund(const std::string& refund_id, bool succeed) override {
    // CLOSED: WeChat Pay gave up on the refund; nothing left the merchant.
    return Control("refunds/complete",
                   fmt::format(R"({{"mchid":"{}","out_refund_no":"{}","status":"{}"}})", kMchid,
                               refund_id, succeed ? "SUCCESS" : "CLOSED"),
                   0)
        .status;
  }

  void Fault(const FaultSpec& fault) override {
    adapters::wechatpay::v3::FaultRule rule;
    rule.set_kind(Kind(fault.kind));
    rule.set_mchid(kMchid);
    switch (fault.op) {
      // The create's out_trade_no and the refund's out_refund_no are not known before the call:
      // the fault takes the next such call (the scenarios make one at a time).
      case FaultOp::kCreatePayment: rule.set_operation("create_payment"); break;
      case FaultOp::kCreateRefund: rule.set_operation("create_refund"); break;
      case FaultOp::kQueryPayment:
        rule.set_operation("query_payment");
        rule.set_reference(fault.reference);
        break;
      case FaultOp::kCallback: rule.set_reference(fault.reference); break;
    }
    rule.set_count(fault.op == FaultOp::kCallback ? 0 : 1);
    rule.set_delay_ms(Delay(fault));
    rule.set_copies(fault.copies);
    Control("faults", Json(rule));
  }

  std::uint64_t Payments() override { return Stats().payments(); }
  std::uint64_t Refunds() override { return Stats().refunds(); }
  std::uint64_t CallbacksFailed() override { return Stats().callbacks_failed(); }

 private:
  static adapters::wechatpay::v3::FaultKind Kind(const std::string& suffix) {
    adapters::wechatpay::v3::FaultKind kind{};
    EXPECT_TRUE(adapters::wechatpay::v3::FaultKind_Parse("FAULT_KIND_" + suffix, &kind)) << suffix;
    return kind;
  }
  adapters::wechatpay::v3::Stats Stats() {
    return Parse<adapters::wechatpay::v3::Stats>(Control("stats", "{}").body);
  }
};

// ---- Alipay OpenAPI (PROTOCOLS.md §B), public-key mode, keys from the Node.js SDK's vectors. ----

// The Base64 body of a key as PEM.
std::string Pem(const std::string& label, const std::string& base64) {
  std::string body;
  for (char c : base64) {
    if (c != '\n' && c != '\r' && c != ' ') body += c;
  }
  std::string out = "-----BEGIN " + label + "-----\n";
  for (std::size_t i = 0; i < body.size(); i += 64) out += body.substr(i, 64) + "\n";
  return out + "-----END " + label + "-----\n";
}

class AlipayDriver final : public ProviderDriver {
 public:
  static constexpr const char* kAppId = "2021000000000001";
  static constexpr const char* kSellerId = "2088000000000001";

  std::string provider() const override { return "alipay"; }
  std::string method() const override { return "alipay_page"; }
  std::string next_action_type() const override { return "redirect_url"; }
  std::string second_method() const override { return "alipay_app"; }
  bool create_calls_provider() const override { return false; }
  bool refunds_synchronous() const override { return true; }
  bool refund_can_fail() const override { return false; }

  void Start(const DriverContext& context) override {
    context_ = context;
    const fs::path& dir = context.dir;
    // No Alipay private key is public: the SDK's stable-environment app key stands in for it.
    WriteFile0600(dir / "alipay.key",
                  Pem("PRIVATE KEY",
                      Vector("alipay/nodejs/app_2014060600164699_rsa2_private_key_no_wrapper.pem")));
    std::ofstream(dir / "alipay.pub")
        << Pem("PUBLIC KEY",
               Vector("alipay/nodejs/app_2014060600164699_rsa2_public_key_no_wrapper.pem"));
    WriteFile0600(dir / "app.key", Vector("alipay/nodejs/app-private-key.pem"));
    std::ofstream(dir / "app.pub") << Vector("alipay/nodejs/app-public-key.pem");
    // Alipay's notify pauses (4 min, 10 min, ...) become tens of milliseconds.
    Launch("adapters/alipay/paygate-alipay-sim",
           {"--cert", (context.pki / "server.crt").string(), "--key",
            (context.pki / "server.key").string(), "--callback-ca",
            (context.pki / "ca.crt").string(), "--app-public-key",
            fmt::format("{}={}", kAppId, (dir / "app.pub").string()), "--alipay-private-key",
            (dir / "alipay.key").string(), "--seller-id", kSellerId, "--control-token-file",
            TokenFile().string(), "--listen", "127.0.0.1", "--port", "0", "--notify-attempts", "3",
            "--notify-time-scale", "0.0001"});
  }

  std::string ProviderYaml() const override {
    const fs::path& dir = context_.dir;
    return fmt::format(
        "  - provider: alipay\n    merchant_account: m1\n    alipay:\n"
        "      gateway_url: \"https://localhost:{}/gateway.do\"\n      ca_file: {}\n"
        "      app_id: \"{}\"\n      seller_id: \"{}\"\n      app_private_key_id: alipay.app\n"
        "      alipay_public_key_file: {}\n",
        port_, (context_.pki / "ca.crt").string(), kAppId, kSellerId,
        (dir / "alipay.pub").string());
  }

  std::string KeyringYaml() const override {
    return fmt::format("    - {{id: alipay.app, file: {}}}\n", (context_.dir / "app.key").string());
  }

  void Open(const api::v1::Payment& payment) override {
    const std::string& value = payment.next_action().value();
    if (payment.next_action().type() == "redirect_url") {
      // The payer's browser opens the signed cashier URL: Alipay creates the trade.
      ClientOptions options;
      options.ca = context_.pki / "ca.crt";
      const Exchange opened = Call(port_, options, verb::get, Target(value), "", {});
      EXPECT_EQ(opened.status, 200u) << opened.body << opened.error;
    } else if (payment.next_action().type() == "app_order_string") {
      // The Alipay app submits the signed order string.
      adapters::alipay::v1::OpenTradeRequest open;
      open.set_order_string(value);
      Control("trades/open", Json(open));
    } else {
      ADD_FAILURE() << "unexpected next action " << payment.next_action().type();
    }
  }

  unsigned Pay(const std::string& reference, bool succeed) override {
    // A trade is not refused by Alipay: the payer pays, or leaves until it times out (closed).
    adapters::alipay::v1::CompleteTradeRequest complete;
    complete.set_app_id(kAppId);
    complete.set_out_trade_no(reference);
    complete.set_trade_status(succeed ? "TRADE_SUCCESS" : "TRADE_CLOSED");
    return Control("trades/complete", Json(complete)).status;
  }

  unsigned CompleteRefund(const std::string& refund_id, bool /*succeed*/) override {
    ADD_FAILURE() << "Alipay refunds are synchronous: nothing completes refund " << refund_id;
    return 0;
  }

  void Fault(const FaultSpec& fault) override {
    adapters::alipay::v1::FaultRule rule;
    adapters::alipay::v1::FaultKind kind{};
    EXPECT_TRUE(adapters::alipay::v1::FaultKind_Parse("FAULT_KIND_" + fault.kind, &kind));
    rule.set_kind(kind);
    rule.set_app_id(kAppId);
    switch (fault.op) {
      case FaultOp::kCreatePayment:
        ADD_FAILURE() << "paygate makes no Alipay call when it creates a payment";
        return;
      case FaultOp::kQueryPayment:
        rule.set_method("alipay.trade.query");
        rule.set_reference(fault.reference);
        break;
      case FaultOp::kCreateRefund:
        // The next refund call (the scenarios make one at a time): the simulator does not match
        // refund calls on their out_trade_no.
        rule.set_method("alipay.trade.refund");
        break;
      case FaultOp::kCallback: rule.set_reference(fault.reference); break;
    }
    rule.set_count(fault.op == FaultOp::kCallback ? 0 : 1);
    rule.set_delay_ms(Delay(fault));
    rule.set_copies(fault.copies);
    Control("faults", Json(rule));
  }

  std::uint64_t Payments() override { return Stats().trades(); }
  std::uint64_t Refunds() override { return Stats().refunds(); }
  std::uint64_t CallbacksFailed() override { return Stats().notifies_failed(); }

 private:
  adapters::alipay::v1::Stats Stats() {
    return Parse<adapters::alipay::v1::Stats>(Control("stats", "{}").body);
  }
};

// ---- UnionPay ACP 5.1.0 (adapters/unionpay/PROTOCOL.md). ----
//
// The merchant signs with the smartwalle test store from the vectors. UnionPay's side is made
// here: the vectors' UnionPay certificates expired in 2018, and the daemon judges certificate
// validity now, as in production. So a root, a middle and a signing certificate whose CN names the
// test environment's owner are issued at test time, and the simulator signs with that store.
class UnionPayDriver final : public ProviderDriver {
 public:
  static constexpr const char* kMerId = "777290058165621";
  static constexpr const char* kOwner = "00040000:SIGN";
  // Short enough that the unpayable orders of the fault scenario become final within the suite.
  static constexpr std::uint32_t kOrderTtlS = 60;

  std::string provider() const override { return "unionpay"; }
  // The app channel calls UnionPay at create (appTransReq), so create faults apply to it.
  std::string method() const override { return "unionpay_app"; }
  std::string next_action_type() const override { return "unionpay_tn"; }
  std::string second_method() const override { return "unionpay_web"; }
  std::uint32_t order_ttl_s() const override { return kOrderTtlS; }
  std::string unpaid_after_inquiry() const override { return "processing"; }
  bool final_only_when_unpayable() const override { return true; }
  std::uint32_t close_grace_s() const override { return 2; }

  void Start(const DriverContext& context) override {
    context_ = context;
    const fs::path& dir = context.dir;
    Run(fmt::format(
        "cd {0} && "
        "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n' "
        "> ca.ext && "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.crt -days 3650 "
        "-subj '/C=CN/O=Paygate Test/CN=Paygate Test UnionPay Root' 2>/dev/null && "
        "openssl req -new -newkey rsa:2048 -nodes -keyout middle.key -out middle.csr "
        "-subj '/C=CN/O=Paygate Test/CN=Paygate Test UnionPay Middle' 2>/dev/null && "
        "openssl x509 -req -in middle.csr -CA root.crt -CAkey root.key -set_serial 2 -days 3650 "
        "-extfile ca.ext -out middle.crt 2>/dev/null && "
        "openssl req -new -newkey rsa:2048 -nodes -keyout unionpay.key -out unionpay.csr "
        "-subj '/C=CN/O=China UnionPay Test/CN=041@Z12400000000000@{1}@00000001' 2>/dev/null && "
        "openssl x509 -req -in unionpay.csr -CA middle.crt -CAkey middle.key "
        "-set_serial 69026276696 -days 365 -out unionpay.crt 2>/dev/null && "
        "openssl pkcs12 -export -inkey unionpay.key -in unionpay.crt -out unionpay.pfx "
        "-passout pass:000000 && chmod 600 unionpay.pfx root.key middle.key unionpay.key",
        dir.string(), kOwner));
    WriteFile0600(dir / "pfx.password", "000000");
    WriteFile0600(dir / "merchant.pfx", Vector("unionpay/smartwalle__acp_test_sign.pfx"));
    // The merchant's certificate as UnionPay has it registered.
    auto merchant = adapters::unionpay::LoadSigner((dir / "merchant.pfx").string(), "000000");
    if (!merchant) throw std::runtime_error(merchant.error());
    std::ofstream(dir / "merchant.pem") << merchant.value().certificate.Pem();
    // UnionPay's notification pauses (1, 2, 4, 5 minutes) become 150 ms units.
    Launch("adapters/unionpay/paygate-unionpay-sim",
           {"--cert", (context.pki / "server.crt").string(), "--key",
            (context.pki / "server.key").string(), "--callback-ca",
            (context.pki / "ca.crt").string(), "--sign-pfx", (dir / "unionpay.pfx").string(),
            "--sign-pfx-password-file", (dir / "pfx.password").string(), "--merchant",
            fmt::format("{}={}", kMerId, (dir / "merchant.pem").string()), "--control-token-file",
            TokenFile().string(), "--listen", "127.0.0.1", "--port", "0", "--callback-attempts",
            "3", "--callback-retry-unit-ms", "150"});
  }

  std::string ProviderYaml() const override {
    const fs::path& dir = context_.dir;
    return fmt::format(
        "  - provider: unionpay\n    merchant_account: m1\n    unionpay:\n"
        "      base_url: \"https://localhost:{}\"\n      ca_file: {}\n      mer_id: \"{}\"\n"
        "      sign_pfx_key_id: unionpay.sign-pfx\n"
        "      sign_pfx_password_key_id: unionpay.sign-pfx-password\n      root_cert_file: {}\n"
        "      middle_cert_file: {}\n      cert_owner: \"{}\"\n"
        "      front_url: https://shop.example/paid\n      close_grace_s: {}\n",
        port_, (context_.pki / "ca.crt").string(), kMerId, (dir / "root.crt").string(),
        (dir / "middle.crt").string(), kOwner, close_grace_s());
  }

  std::string KeyringYaml() const override {
    // The PKCS#12 store is binary: taken byte for byte.
    const fs::path& dir = context_.dir;
    return fmt::format(
        "    - {{id: unionpay.sign-pfx, file: {}, binary: true}}\n"
        "    - {{id: unionpay.sign-pfx-password, file: {}}}\n",
        (dir / "merchant.pfx").string(), (dir / "pfx.password").string());
  }

  void Open(const api::v1::Payment& payment) override {
    if (payment.next_action().type() == "unionpay_tn") return;  // appTransReq made the order
    ASSERT_EQ(payment.next_action().type(), "html_form");
    // The payer's browser posts the signed form to frontTransReq.do.
    auto form = adapters::unionpay::ParseAutoPostForm(payment.next_action().value());
    ASSERT_TRUE(form) << form.error();
    ClientOptions options;
    options.ca = context_.pki / "ca.crt";
    const Exchange posted =
        Call(port_, options, verb::post, Target(form.value().first),
             adapters::unionpay::BuildForm(form.value().second),
             {{"Content-Type", "application/x-www-form-urlencoded"}});
    EXPECT_EQ(posted.status, 200u) << posted.body << posted.error;
  }

  unsigned Pay(const std::string& reference, bool succeed) override {
    adapters::unionpay::sim::v1::CompletePaymentRequest complete;
    complete.set_mer_id(kMerId);
    complete.set_order_id(OrderId(reference));
    complete.set_succeed(succeed);
    if (!succeed) complete.set_resp_code("64");  // insufficient funds
    return Control("payments/complete", Json(complete)).status;
  }

  unsigned CompleteRefund(const std::string& refund_id, bool succeed) override {
    adapters::unionpay::sim::v1::CompleteRefundRequest complete;
    complete.set_mer_id(kMerId);
    complete.set_order_id(OrderId(refund_id));
    complete.set_succeed(succeed);
    return Control("refunds/complete", Json(complete), 0).status;
  }

  void Fault(const FaultSpec& fault) override {
    adapters::unionpay::sim::v1::FaultRule rule;
    adapters::unionpay::sim::v1::FaultKind kind{};
    EXPECT_TRUE(adapters::unionpay::sim::v1::FaultKind_Parse("FAULT_KIND_" + fault.kind, &kind));
    rule.set_kind(kind);
    rule.set_mer_id(kMerId);
    switch (fault.op) {
      case FaultOp::kCreatePayment:
        rule.set_operation("app_consume");
        rule.set_amount_minor(fault.amount);
        break;
      case FaultOp::kQueryPayment:
        rule.set_operation("query");
        rule.set_order_id(OrderId(fault.reference));
        break;
      case FaultOp::kCreateRefund:
        // A refund call matches on the refunded payment's orderId too.
        rule.set_operation("refund");
        rule.set_order_id(OrderId(fault.reference));
        break;
      case FaultOp::kCallback: rule.set_order_id(OrderId(fault.reference)); break;
    }
    rule.set_count(fault.op == FaultOp::kCallback ? 0 : 1);
    rule.set_delay_ms(Delay(fault));
    rule.set_copies(fault.copies);
    Control("faults", Json(rule));
  }

  std::uint64_t Payments() override { return Stats().orders(); }
  std::uint64_t Refunds() override { return Stats().refunds(); }
  std::uint64_t CallbacksFailed() override { return Stats().callbacks_failed(); }

 private:
  static std::string OrderId(const std::string& reference) {
    const auto order_id = adapters::unionpay::OrderIdFor(reference);
    EXPECT_TRUE(order_id.has_value()) << reference;
    return order_id.value_or("");
  }
  adapters::unionpay::sim::v1::Stats Stats() {
    return Parse<adapters::unionpay::sim::v1::Stats>(Control("stats", "{}").body);
  }
};

}  // namespace

std::string SourceDir() {
  const char* dir = std::getenv("PAYGATE_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

std::string BinaryDir() {
  const char* dir = std::getenv("PAYGATE_BINARY_DIR");
  return dir != nullptr ? dir : ".";
}

ProviderDriver::~ProviderDriver() = default;

std::string ProviderDriver::RoutesYaml() const {
  std::string routes = fmt::format("    - {{method: {}, provider: {}, merchant_account: m1}}\n",
                                   method(), provider());
  if (!second_method().empty()) {
    routes += fmt::format("    - {{method: {}, provider: {}, merchant_account: m1}}\n",
                          second_method(), provider());
  }
  return routes;
}

void ProviderDriver::Open(const api::v1::Payment& /*payment*/) {}

Exchange ProviderDriver::Control(const std::string& path, const std::string& body,
                                 unsigned expect) {
  ClientOptions options;
  options.ca = context_.pki / "ca.crt";
  Exchange reply = Call(port_, options, verb::post, "/control/v1/" + path, body,
                        {{"Authorization", "Bearer " + token_}});
  if (expect != 0) {
    EXPECT_EQ(reply.status, expect) << provider() << " " << path << " " << body << ": "
                                    << reply.body << reply.error;
  }
  return reply;
}

void ProviderDriver::Launch(const std::string& binary, std::vector<std::string> args) {
  const fs::path log = context_.dir / (fs::path(binary).filename().string() + ".log");
  args.insert(args.begin(), BinaryDir() + "/" + binary);
  process_ = std::make_unique<ChildProcess>(std::move(args), std::vector<std::string>{}, log);
  std::string line;
  const bool started = WaitUntil(
      [&] {
        std::ifstream in(log);
        while (std::getline(in, line)) {
          if (line.find(" listening on ") != std::string::npos) return true;
        }
        return process_->Wait(0ms) != -1;
      },
      15s);
  const auto colon = line.rfind(':');
  if (!started || colon == std::string::npos || line.find(" listening on ") == std::string::npos) {
    throw std::runtime_error(binary + " did not start: " + process_->Output());
  }
  port_ = static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

fs::path ProviderDriver::TokenFile() {
  const fs::path path = context_.dir / "control.token";
  WriteFile0600(path, token_);
  return path;
}

std::unique_ptr<ProviderDriver> MakeDriver(const std::string& provider) {
  if (provider == "sandbox") return std::make_unique<SandboxDriver>();
  if (provider == "wechatpay") return std::make_unique<WechatPayDriver>();
  if (provider == "alipay") return std::make_unique<AlipayDriver>();
  if (provider == "unionpay") return std::make_unique<UnionPayDriver>();
  throw std::runtime_error("no driver for provider " + provider);
}

}  // namespace paygate::testing::e2e
