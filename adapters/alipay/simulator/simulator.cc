#include "adapters/common/owned_io_context.h"
#include "adapters/alipay/simulator/simulator.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "adapters/alipay/alipay.pb.h"
#include "adapters/alipay/bill.h"
#include "adapters/alipay/mapper.h"
#include "adapters/common/archive.h"
#include "adapters/common/codec.h"
#include "adapters/common/crypto.h"
#include "adapters/common/money.h"
#include "adapters/http/beast.h"
#include "adapters/http/https_client.h"
#include "keys/secret_file.h"

namespace paygate::adapters::alipay {
namespace {

using namespace net;  // NOLINT(google-build-using-namespace): asio/beast/ssl aliases only.
namespace pb = paygate::adapters::alipay::v1;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

constexpr std::chrono::milliseconds kHoldDefault{60'000};
constexpr std::chrono::seconds kIoTimeout{10};
// Alipay's pauses between notify deliveries (opendocs.alipay.com/open/270/105902).
constexpr std::int64_t kNotifyPauseSeconds[] = {4 * 60, 10 * 60, 10 * 60, 3600, 2 * 3600, 6 * 3600,
                                                15 * 3600};

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

bool FromJson(std::string_view json, google::protobuf::Message* message) {
  // Strict: an unknown field in a request is a client bug worth seeing.
  return google::protobuf::util::JsonStringToMessage(
             google::protobuf::StringPiece(json.data(), json.size()), message)
      .ok();
}

std::string OpenSslError() {
  unsigned long code = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type.
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

std::string Now() { return BeijingTime(std::chrono::system_clock::now()); }

// What a handler decided: a reply, or (for the timeout faults) to hold the connection unanswered.
struct Reply {
  unsigned status = 200;
  std::string content_type = "application/json;charset=utf-8";
  std::string body;
  std::optional<std::chrono::milliseconds> hold;
};

Reply Plain(unsigned status, std::string body) {
  return Reply{status, "text/plain;charset=utf-8", std::move(body), std::nullopt};
}

Reply ControlError(unsigned status, std::string code, std::string message) {
  pb::ControlError error;
  error.set_code(std::move(code));
  error.set_message(std::move(message));
  return Reply{status, "application/json", ToJson(error), std::nullopt};
}

struct App {
  std::optional<crypto::PublicKey> key;
  // Certificate mode: the SN requests must carry.
  std::string app_cert_sn;
};

struct RefundState {
  std::int64_t amount_minor = 0;
  std::string gmt_refund;
};

struct Trade {
  std::string app_id;
  std::string out_trade_no;
  std::string trade_no;
  std::int64_t total_minor = 0;
  std::string subject;
  std::string notify_url;
  std::string status = "WAIT_BUYER_PAY";
  std::string gmt_create;
  std::string gmt_payment;
  std::string time_expire;
  std::int64_t refunded_minor = 0;
  std::map<std::string, RefundState> refunds;
};

struct TransferState {
  std::string out_biz_no;
  std::string order_id;
  std::int64_t amount_minor = 0;
  std::string status;
  std::string trans_date;
};

std::string Key(const std::string& app_id, const std::string& reference) {
  return app_id + '\n' + reference;
}

std::string Field(const Params& params, std::string_view name) {
  auto value = codec::FindField(params, name);
  return value ? std::string(*value) : std::string();
}

// The reply under a method's key: code 10000 and the fields of `message`, which carries the
// common code/msg fields itself.
template <class Message>
std::string Success(Message message) {
  message.set_code("10000");
  message.set_msg("Success");
  return ToJson(message);
}

std::string Failure(std::string code, std::string sub_code, std::string sub_msg) {
  pb::CommonReply reply;
  reply.set_code(code);
  reply.set_msg(code == "40004" ? "Business Failed" : code == "20000" ? "Service Currently Unavailable"
                                                                      : "Invalid Arguments");
  reply.set_sub_code(std::move(sub_code));
  reply.set_sub_msg(std::move(sub_msg));
  return ToJson(reply);
}

struct GatewayAnswer {
  // The response object (raw JSON text) and whether it goes under "error_response".
  std::string source;
  bool error_response = false;
};

}  // namespace

class Simulator::Impl {
 public:
  ~Impl() { ioc_.ShutdownNow(); }
  explicit Impl(SimulatorOptions options, crypto::PrivateKey alipay_key)
      : options_(std::move(options)),
        alipay_key_(std::move(alipay_key)),
        ssl_(ssl::context::tls_server),
        acceptor_(ioc_),
        signals_(ioc_, SIGINT, SIGTERM) {}

  AlipayResult<void> Init();
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void Run() {
    signals_.async_wait([this](boost::system::error_code ec, int) {
      if (!ec) ioc_.stop();
    });
    asio::co_spawn(ioc_, Accept(), asio::detached);
    ioc_.run();
  }
  void Stop() { ioc_.stop(); }

 private:
  asio::awaitable<void> Accept();
  asio::awaitable<void> Session(tcp::socket socket);
  Reply Handle(const Request& request);
  Reply HandleGateway(const Params& params, bool browser);
  Reply HandleBill(std::string_view target);
  Reply HandleControl(std::string_view path, const Request& request);

  // Authenticates a request as Alipay's gateway does. On failure the answer to send.
  std::optional<GatewayAnswer> Authenticate(const Params& params);
  GatewayAnswer Execute(const std::string& app_id, const std::string& method,
                        const std::string& biz, const Params& params);
  GatewayAnswer Open(const std::string& app_id, const std::string& method, const std::string& biz,
                     const Params& params);
  GatewayAnswer Query(const std::string& app_id, const std::string& biz);
  GatewayAnswer Close(const std::string& app_id, const std::string& biz);
  GatewayAnswer Refund(const std::string& app_id, const std::string& biz);
  GatewayAnswer RefundQuery(const std::string& app_id, const std::string& biz);
  GatewayAnswer Transfer(const std::string& app_id, const std::string& biz);
  GatewayAnswer TransferQuery(const std::string& app_id, const std::string& biz);
  GatewayAnswer BillUrl(const std::string& app_id, const std::string& biz);
  std::string SignedBody(const std::string& method, const GatewayAnswer& answer, bool bad_signature);

  std::optional<pb::FaultRule> TakeCallFault(const std::string& method, const std::string& app_id,
                                             const std::string& reference);
  std::vector<pb::FaultRule> TakeNotifyFaults(const std::string& app_id,
                                              const std::string& reference);

  // Notifies: the trade's state (and, for a refund, the refund) as Alipay posts it.
  Params NotifyParams(const Trade& trade, const std::string& status, const std::string& notify_id);
  void EmitTrade(const Trade& trade, const RefundState* refund, const std::string& out_request_no);
  asio::awaitable<void> Deliver(std::string url, std::vector<pb::FaultRule> faults,
                                Params terminal, Params stale);
  asio::awaitable<void> DeliverOne(const std::string& url, Params params, bool bad_signature);

  std::string BuildBill(const std::string& app_id, const std::string& bill_date);

  SimulatorOptions options_;
  crypto::PrivateKey alipay_key_;
  std::string alipay_cert_sn_;
  std::string root_cert_sn_;
  std::map<std::string, App> apps_;
  OwnedIoContext ioc_;  // First destroyed of its handlers: see owned_io_context.h.
  ssl::context ssl_;
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  std::shared_ptr<http::HttpsClient> notify_client_;

  std::unordered_map<std::string, Trade> trades_;
  std::unordered_map<std::string, TransferState> transfers_;
  // Bill token -> (GBK bytes, expiry).
  std::unordered_map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>>
      bills_;
  std::vector<pb::FaultRule> faults_;
  pb::Stats stats_;
  // The Host the last gateway call named: bill URLs point back at it.
  std::string host_;
  std::uint64_t next_id_ = 1;
};

AlipayResult<void> Simulator::Impl::Init() {
  for (const auto& [app_id, pem] : options_.app_public_keys) {
    auto key = crypto::PublicKey::FromPem(pem);
    if (!key) return Error{fmt::format("app {} public key: {}", app_id, key.error().message)};
    apps_[app_id].key = key.value();
  }
  if (!options_.app_certs.empty()) {
    auto alipay_cert = crypto::Certificate::Parse(options_.alipay_cert_pem);
    if (!alipay_cert) return Error{"alipay certificate: " + alipay_cert.error().message};
    alipay_cert_sn_ = CertSn(alipay_cert.value());
    auto root = RootCertSn(options_.alipay_root_cert_pem);
    if (!root) return root.error();
    root_cert_sn_ = root.value();
  }
  for (const auto& [app_id, pem] : options_.app_certs) {
    auto cert = crypto::Certificate::Parse(pem);
    if (!cert) return Error{fmt::format("app {} certificate: {}", app_id, cert.error().message)};
    apps_[app_id].key = cert.value().Key();
    apps_[app_id].app_cert_sn = CertSn(cert.value());
  }
  SSL_CTX* native = ssl_.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  if (auto ok = keys::CheckKeyFilePermissions(options_.key_file); !ok) {
    return Error{fmt::format("{}: {}", options_.key_file, ok.error().message())};
  }
  if (SSL_CTX_use_certificate_chain_file(native, options_.cert_file.c_str()) != 1) {
    return Error{fmt::format("{}: {}", options_.cert_file, OpenSslError())};
  }
  if (SSL_CTX_use_PrivateKey_file(native, options_.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(native) != 1) {
    return Error{fmt::format("{}: {}", options_.key_file, OpenSslError())};
  }
  http::HttpsClientOptions client_options;
  client_options.ca_file = options_.callback_ca_file;
  auto client = http::HttpsClient::Create(std::move(client_options));
  if (!client) return Error{"notify client: " + client.error()};
  notify_client_ = std::move(client).value();

  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options_.address, ec);
  if (ec) return Error{fmt::format("listen address {}: {}", options_.address, ec.message())};
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{fmt::format("listen {}:{}: {}", options_.address, options_.port, ec.message())};
  return outcome::success();
}

asio::awaitable<void> Simulator::Impl::Accept() {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    asio::co_spawn(ioc_, Session(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> Simulator::Impl::Session(tcp::socket socket) {
  beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), ssl_);
  boost::system::error_code ec;
  beast::get_lowest_layer(stream).expires_after(kIoTimeout);
  co_await stream.async_handshake(ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  beast::flat_buffer buffer;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(options_.request_body_max_bytes);
    beast::get_lowest_layer(stream).expires_after(options_.keep_alive_timeout_ms);
    co_await bhttp::async_read(stream, buffer, parser,
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    Request request = parser.release();
    Reply reply = Handle(request);
    if (reply.hold) {
      // The timeout faults: no answer at all, then the connection goes away.
      beast::get_lowest_layer(stream).expires_never();
      asio::steady_timer timer(ioc_, *reply.hold);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    Response response{static_cast<bhttp::status>(reply.status), request.version()};
    response.set(bhttp::field::server, "paygate-alipay-sim");
    response.set(bhttp::field::content_type, reply.content_type);
    response.body() = std::move(reply.body);
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(kIoTimeout);
    co_await bhttp::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !response.keep_alive()) break;
  }
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(stream).close();
}

Reply Simulator::Impl::Handle(const Request& request) {
  const std::string_view target = request.target();
  const std::size_t question = target.find('?');
  const std::string path(target.substr(0, question));
  if (path.rfind("/control/", 0) == 0) return HandleControl(path, request);
  if (path.rfind("/bills/", 0) == 0) return HandleBill(target);
  if (path != "/gateway.do") return Plain(404, "no such endpoint");

  // API calls are form POSTs; a GET is the payer's browser opening a page or wap payment URL.
  const bool browser = request.method() == bhttp::verb::get;
  std::string_view form = browser ? (question == std::string_view::npos ? std::string_view{}
                                                                        : target.substr(question + 1))
                                  : std::string_view(request.body());
  if (!browser && request.method() != bhttp::verb::post) return Plain(405, "GET or POST only");
  auto params = codec::ParseForm(form);
  if (!params) return Plain(400, "malformed form");
  // Bills link back to this host, as Alipay's URLs point at its own download host.
  host_ = std::string(request[bhttp::field::host]);
  return HandleGateway(*params, browser);
}

std::optional<GatewayAnswer> Simulator::Impl::Authenticate(const Params& params) {
  auto reject = [](std::string code, std::string sub_code, std::string sub_msg) {
    return GatewayAnswer{Failure(std::move(code), std::move(sub_code), std::move(sub_msg)), true};
  };
  const std::string app_id = Field(params, "app_id");
  auto app = apps_.find(app_id);
  if (app == apps_.end()) return reject("40002", "isv.invalid-app-id", "无效的AppID参数");
  if (Field(params, "sign_type") != "RSA2") {
    return reject("40002", "isv.invalid-signature-type", "无效的签名类型");
  }
  if (Field(params, "charset") != "utf-8" || Field(params, "format") != "JSON" ||
      Field(params, "version") != "1.0" || Field(params, "timestamp").size() != 19 ||
      Field(params, "method").empty()) {
    return reject("40002", "isv.invalid-parameter", "公共参数不合法");
  }
  if (!app->second.app_cert_sn.empty()) {
    if (Field(params, "app_cert_sn") != app->second.app_cert_sn) {
      return reject("40002", "isv.app-cert-sn-error", "应用公钥证书序列号不匹配");
    }
    if (Field(params, "alipay_root_cert_sn") != root_cert_sn_) {
      return reject("40002", "isv.root-cert-sn-error", "支付宝根证书序列号不匹配");
    }
  }
  if (!VerifyRequest(params, *app->second.key)) {
    return reject("40002", "isv.invalid-signature", "验签出错");
  }
  return std::nullopt;
}

std::string Simulator::Impl::SignedBody(const std::string& method, const GatewayAnswer& answer,
                                        bool bad_signature) {
  std::string sign = SignContent(answer.source, alipay_key_).value();
  if (bad_signature) {
    // Still Base64 and the right length, but not a signature of this text by Alipay's key.
    sign[0] = sign[0] == 'A' ? 'B' : 'A';
  }
  return BuildResponse(answer.error_response ? "error_response" : ResponseKey(method),
                       answer.source, sign, alipay_cert_sn_);
}

Reply Simulator::Impl::HandleGateway(const Params& params, bool browser) {
  const std::string method = Field(params, "method");
  if (auto refused = Authenticate(params)) {
    if (browser) return Plain(400, "invalid signature: the cashier refuses this order");
    return Reply{200, "application/json;charset=utf-8", SignedBody(method, *refused, false),
                 std::nullopt};
  }
  const std::string app_id = Field(params, "app_id");
  const std::string biz = Field(params, "biz_content");
  if (browser) {
    if (method != kMethodPagePay && method != kMethodWapPay) {
      return Plain(400, "only page and wap payments open in a browser");
    }
    GatewayAnswer opened = Open(app_id, method, biz, params);
    if (opened.error_response || opened.source.find("\"10000\"") == std::string::npos) {
      return Plain(400, opened.source);
    }
    return Reply{200, "text/html;charset=utf-8",
                 "<html><body>paygate-alipay-sim cashier: " + opened.source + "</body></html>",
                 std::nullopt};
  }
  stats_.set_calls_received(stats_.calls_received() + 1);

  // Faults match on the reference of the call, read from its biz_content.
  pb::TradeRefundBiz refs;  // out_trade_no / out_request_no
  pb::FundQueryBiz fund_refs;
  google::protobuf::util::JsonParseOptions lenient;
  lenient.ignore_unknown_fields = true;
  (void)google::protobuf::util::JsonStringToMessage(biz, &refs, lenient);
  (void)google::protobuf::util::JsonStringToMessage(biz, &fund_refs, lenient);
  std::string reference = refs.out_trade_no();
  if (!fund_refs.out_biz_no().empty()) reference = fund_refs.out_biz_no();
  std::optional<pb::FaultRule> fault = TakeCallFault(method, app_id, reference);
  if (!fault && !refs.out_request_no().empty()) {
    fault = TakeCallFault(method, app_id, refs.out_request_no());
  }
  const pb::FaultKind kind = fault ? fault->kind() : pb::FAULT_KIND_UNSPECIFIED;
  const auto hold =
      fault && fault->delay_ms() != 0 ? std::chrono::milliseconds(fault->delay_ms()) : kHoldDefault;
  if (kind == pb::FAULT_KIND_TIMEOUT_BEFORE) return Reply{0, {}, {}, hold};
  if (kind == pb::FAULT_KIND_HTTP_5XX) return Plain(502, "Bad Gateway");
  if (kind == pb::FAULT_KIND_SERVICE_UNAVAILABLE) {
    GatewayAnswer busy{Failure("20000", "isp.unknow-error", "服务暂不可用"), false};
    return Reply{200, "application/json;charset=utf-8", SignedBody(method, busy, false),
                 std::nullopt};
  }

  GatewayAnswer answer = Execute(app_id, method, biz, params);
  stats_.set_calls_executed(stats_.calls_executed() + 1);
  if (kind == pb::FAULT_KIND_TIMEOUT_AFTER) return Reply{0, {}, {}, hold};
  std::string body = SignedBody(method, answer, kind == pb::FAULT_KIND_BAD_SIGNATURE_REPLY);
  if (kind == pb::FAULT_KIND_MALFORMED_REPLY) body.resize(body.size() / 2);
  return Reply{200, "application/json;charset=utf-8", std::move(body), std::nullopt};
}

GatewayAnswer Simulator::Impl::Execute(const std::string& app_id, const std::string& method,
                                       const std::string& biz, const Params& params) {
  if (method == kMethodPagePay || method == kMethodWapPay || method == kMethodAppPay) {
    // These are opened by the payer, never POSTed by the merchant's server.
    return GatewayAnswer{Failure("40002", "isv.invalid-method", "该接口由买家端调用"), true};
  }
  if (method == kMethodQuery) return Query(app_id, biz);
  if (method == kMethodClose) return Close(app_id, biz);
  if (method == kMethodRefund) return Refund(app_id, biz);
  if (method == kMethodRefundQuery) return RefundQuery(app_id, biz);
  if (method == kMethodTransfer) {
    if (apps_.at(app_id).app_cert_sn.empty() || Field(params, "app_cert_sn").empty()) {
      return GatewayAnswer{Failure("40002", "isv.missing-app-cert-sn", "转账接口强制要求证书签名调用"),
                           false};
    }
    return Transfer(app_id, biz);
  }
  if (method == kMethodTransferQuery) return TransferQuery(app_id, biz);
  if (method == kMethodBillUrl) return BillUrl(app_id, biz);
  return GatewayAnswer{Failure("40002", "isv.invalid-method", "不存在的方法名"), true};
}

GatewayAnswer Simulator::Impl::Open(const std::string& app_id, const std::string& method,
                                    const std::string& biz, const Params& params) {
  pb::TradePayBiz pay;
  if (!FromJson(biz, &pay) || pay.out_trade_no().empty() || pay.subject().empty()) {
    return GatewayAnswer{Failure("40002", "isv.invalid-parameter", "biz_content 不合法"), false};
  }
  const std::string expected_product = method == kMethodPagePay ? "FAST_INSTANT_TRADE_PAY"
                                       : method == kMethodWapPay ? "QUICK_WAP_WAY"
                                                                 : "QUICK_MSECURITY_PAY";
  if (pay.product_code() != expected_product) {
    return GatewayAnswer{Failure("40004", "ACQ.PRODUCT_CODE_ERROR", "产品码不匹配"), false};
  }
  auto amount = money::ParseDecimal(pay.total_amount(), 2);
  if (!amount || *amount <= 0 || pay.total_amount().find('.') == std::string::npos) {
    return GatewayAnswer{Failure("40004", "ACQ.TOTAL_FEE_EXCEED", "金额不合法"), false};
  }
  const std::string key = Key(app_id, pay.out_trade_no());
  auto existing = trades_.find(key);
  if (existing != trades_.end()) {
    if (existing->second.total_minor != *amount) {
      return GatewayAnswer{Failure("40004", "ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改"), false};
    }
  } else {
    Trade trade;
    trade.app_id = app_id;
    trade.out_trade_no = pay.out_trade_no();
    trade.trade_no = fmt::format("20261127220014{:014}", next_id_++);
    trade.total_minor = *amount;
    trade.subject = pay.subject();
    trade.notify_url = Field(params, "notify_url");
    trade.gmt_create = Now();
    trade.time_expire = pay.time_expire();
    existing = trades_.emplace(key, std::move(trade)).first;
    stats_.set_trades(stats_.trades() + 1);
  }
  pb::TradeCloseReply reply;
  reply.set_out_trade_no(existing->second.out_trade_no);
  reply.set_trade_no(existing->second.trade_no);
  return GatewayAnswer{Success(reply), false};
}

GatewayAnswer Simulator::Impl::Query(const std::string& app_id, const std::string& biz) {
  pb::TradeRefBiz ref;
  if (!FromJson(biz, &ref) || ref.out_trade_no().empty()) {
    return GatewayAnswer{Failure("40002", "isv.missing-out-trade-no", "缺少商户订单号"), false};
  }
  auto it = trades_.find(Key(app_id, ref.out_trade_no()));
  if (it == trades_.end()) {
    return GatewayAnswer{Failure("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"), false};
  }
  const Trade& trade = it->second;
  pb::TradeQueryReply reply;
  reply.set_trade_no(trade.trade_no);
  reply.set_out_trade_no(trade.out_trade_no);
  reply.set_trade_status(trade.status);
  reply.set_total_amount(money::FormatDecimal(trade.total_minor, 2));
  if (!trade.gmt_payment.empty()) {
    reply.set_send_pay_date(trade.gmt_payment);
    reply.set_buyer_pay_amount(money::FormatDecimal(trade.total_minor, 2));
    reply.set_receipt_amount(money::FormatDecimal(trade.total_minor - trade.refunded_minor, 2));
    reply.set_buyer_user_id("2088102000000001");
  }
  return GatewayAnswer{Success(reply), false};
}

GatewayAnswer Simulator::Impl::Close(const std::string& app_id, const std::string& biz) {
  pb::TradeRefBiz ref;
  if (!FromJson(biz, &ref) || ref.out_trade_no().empty()) {
    return GatewayAnswer{Failure("40002", "isv.missing-out-trade-no", "缺少商户订单号"), false};
  }
  auto it = trades_.find(Key(app_id, ref.out_trade_no()));
  if (it == trades_.end()) {
    return GatewayAnswer{Failure("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"), false};
  }
  Trade& trade = it->second;
  if (trade.status == "TRADE_SUCCESS" || trade.status == "TRADE_FINISHED" ||
      !trade.gmt_payment.empty()) {
    return GatewayAnswer{Failure("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法"), false};
  }
  // Closing is idempotent; Alipay sends no notify for a close the merchant asked for.
  trade.status = "TRADE_CLOSED";
  pb::TradeCloseReply reply;
  reply.set_trade_no(trade.trade_no);
  reply.set_out_trade_no(trade.out_trade_no);
  return GatewayAnswer{Success(reply), false};
}

GatewayAnswer Simulator::Impl::Refund(const std::string& app_id, const std::string& biz) {
  pb::TradeRefundBiz request;
  if (!FromJson(biz, &request) || request.out_trade_no().empty() ||
      request.out_request_no().empty()) {
    return GatewayAnswer{Failure("40002", "isv.invalid-parameter", "参数不合法"), false};
  }
  auto amount = money::ParseDecimal(request.refund_amount(), 2);
  if (!amount || *amount <= 0) {
    return GatewayAnswer{Failure("40004", "ACQ.REFUND_FEE_ERROR", "退款金额不合法"), false};
  }
  auto it = trades_.find(Key(app_id, request.out_trade_no()));
  if (it == trades_.end()) {
    return GatewayAnswer{Failure("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"), false};
  }
  Trade& trade = it->second;
  pb::TradeRefundReply reply;
  reply.set_trade_no(trade.trade_no);
  reply.set_out_trade_no(trade.out_trade_no);
  reply.set_buyer_user_id("2088102000000001");
  if (auto done = trade.refunds.find(request.out_request_no()); done != trade.refunds.end()) {
    if (done->second.amount_minor != *amount) {
      return GatewayAnswer{Failure("40004", "ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致"),
                           false};
    }
    // A repeat: the same refund, no money moves again.
    reply.set_fund_change("N");
    reply.set_refund_fee(money::FormatDecimal(trade.refunded_minor, 2));
    return GatewayAnswer{Success(reply), false};
  }
  if (trade.gmt_payment.empty()) {
    return GatewayAnswer{Failure("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法"), false};
  }
  if (*amount > trade.total_minor - trade.refunded_minor) {
    return GatewayAnswer{Failure("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限"), false};
  }
  RefundState state{*amount, Now()};
  trade.refunded_minor += *amount;
  if (trade.refunded_minor == trade.total_minor) trade.status = "TRADE_CLOSED";
  auto& stored = trade.refunds.emplace(request.out_request_no(), state).first->second;
  stats_.set_refunds(stats_.refunds() + 1);
  reply.set_fund_change("Y");
  reply.set_refund_fee(money::FormatDecimal(trade.refunded_minor, 2));
  EmitTrade(trade, &stored, request.out_request_no());
  return GatewayAnswer{Success(reply), false};
}

GatewayAnswer Simulator::Impl::RefundQuery(const std::string& app_id, const std::string& biz) {
  pb::RefundQueryBiz request;
  if (!FromJson(biz, &request) || request.out_trade_no().empty() ||
      request.out_request_no().empty()) {
    return GatewayAnswer{Failure("40002", "isv.invalid-parameter", "参数不合法"), false};
  }
  auto it = trades_.find(Key(app_id, request.out_trade_no()));
  if (it == trades_.end()) {
    return GatewayAnswer{Failure("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在"), false};
  }
  const Trade& trade = it->second;
  pb::RefundQueryReply reply;
  reply.set_trade_no(trade.trade_no);
  reply.set_out_trade_no(trade.out_trade_no);
  // A refund never made answers success with no refund fields (Alipay's documented behaviour).
  if (auto done = trade.refunds.find(request.out_request_no()); done != trade.refunds.end()) {
    reply.set_out_request_no(request.out_request_no());
    reply.set_total_amount(money::FormatDecimal(trade.total_minor, 2));
    reply.set_refund_amount(money::FormatDecimal(done->second.amount_minor, 2));
    reply.set_refund_status("REFUND_SUCCESS");
  }
  return GatewayAnswer{Success(reply), false};
}

GatewayAnswer Simulator::Impl::Transfer(const std::string& app_id, const std::string& biz) {
  pb::FundTransferBiz request;
  if (!FromJson(biz, &request) || request.out_biz_no().empty() ||
      request.product_code() != "TRANS_ACCOUNT_NO_PWD" || request.biz_scene() != "DIRECT_TRANSFER" ||
      request.payee_info().identity().empty()) {
    return GatewayAnswer{Failure("40004", "INVALID_PARAMETER", "参数有误"), false};
  }
  auto amount = money::ParseDecimal(request.trans_amount(), 2);
  if (!amount || *amount <= 0) {
    return GatewayAnswer{Failure("40004", "INVALID_PARAMETER", "金额不合法"), false};
  }
  const std::string key = Key(app_id, request.out_biz_no());
  auto it = transfers_.find(key);
  if (it == transfers_.end()) {
    const std::string& identity = request.payee_info().identity();
    // Test payees: NOTEXIST... is refused, NOBALANCE... finds the payer's balance short (nothing
    // moves, a repeat is refused again), DEALING... stays in progress, anyone else is paid.
    if (identity.rfind("NOTEXIST", 0) == 0) {
      return GatewayAnswer{Failure("40004", "PAYEE_NOT_EXIST", "收款账号不存在"), false};
    }
    if (identity.rfind("NOBALANCE", 0) == 0) {
      return GatewayAnswer{Failure("40004", "PAYER_BALANCE_NOT_ENOUGH", "付款方余额不足"), false};
    }
    TransferState transfer;
    transfer.out_biz_no = request.out_biz_no();
    transfer.order_id = fmt::format("2026112711050010{:012}", next_id_++);
    transfer.amount_minor = *amount;
    transfer.status = identity.rfind("DEALING", 0) == 0 ? "DEALING" : "SUCCESS";
    transfer.trans_date = Now();
    it = transfers_.emplace(key, std::move(transfer)).first;
    stats_.set_transfers(stats_.transfers() + 1);
  } else if (it->second.amount_minor != *amount) {
    return GatewayAnswer{Failure("40004", "ORDER_DUPLICATE", "商户订单号重复"), false};
  }
  pb::FundTransferReply reply;
  reply.set_out_biz_no(it->second.out_biz_no);
  reply.set_order_id(it->second.order_id);
  reply.set_pay_fund_order_id(it->second.order_id);
  reply.set_status(it->second.status);
  reply.set_trans_date(it->second.trans_date);
  return GatewayAnswer{Success(reply), false};
}

GatewayAnswer Simulator::Impl::TransferQuery(const std::string& app_id, const std::string& biz) {
  pb::FundQueryBiz request;
  if (!FromJson(biz, &request) || request.out_biz_no().empty()) {
    return GatewayAnswer{Failure("40004", "INVALID_PARAMETER", "参数有误"), false};
  }
  auto it = transfers_.find(Key(app_id, request.out_biz_no()));
  if (it == transfers_.end()) {
    return GatewayAnswer{Failure("40004", "ORDER_NOT_EXIST", "转账订单不存在"), false};
  }
  pb::FundTransferReply reply;
  reply.set_out_biz_no(it->second.out_biz_no);
  reply.set_order_id(it->second.order_id);
  reply.set_pay_fund_order_id(it->second.order_id);
  reply.set_status(it->second.status);
  reply.set_trans_amount(money::FormatDecimal(it->second.amount_minor, 2));
  return GatewayAnswer{Success(reply), false};
}

std::string Simulator::Impl::BuildBill(const std::string& app_id, const std::string& bill_date) {
  std::string rows;
  std::int64_t trades = 0;
  std::int64_t trade_sum = 0;
  std::int64_t refunds = 0;
  std::int64_t refund_sum = 0;
  auto clean = [](std::string text) {
    // The file has no quoting: a comma in a subject would shift the columns.
    for (char& c : text) {
      if (c == ',' || c == '\n' || c == '\r') c = ' ';
    }
    return text;
  };
  auto row = [&](const Trade& trade, std::string_view type, const std::string& finished,
                 std::int64_t amount, const std::string& request_no) {
    const std::string yuan = money::FormatDecimal(amount, 2);
    rows += fmt::format(
        "{}\t,{}\t,{}\t,{},{},{},\t,\t,\t,\t,*测试(buyer@example.com)\t,{},{},0.00,0.00,0.00,0.00,"
        "0.00,,0.00\t,0.00,{}\t,0.00,0.00,{}\n",
        trade.trade_no, trade.out_trade_no, type, clean(trade.subject), trade.gmt_create, finished,
        yuan, yuan, request_no, clean(trade.subject));
  };
  for (const auto& [key, trade] : trades_) {
    if (trade.app_id != app_id) continue;
    if (!trade.gmt_payment.empty() && trade.gmt_payment.rfind(bill_date, 0) == 0) {
      row(trade, "交易", trade.gmt_payment, trade.total_minor, "");
      ++trades;
      trade_sum += trade.total_minor;
    }
    for (const auto& [request_no, refund] : trade.refunds) {
      if (refund.gmt_refund.rfind(bill_date, 0) != 0) continue;
      row(trade, "退款", refund.gmt_refund, -refund.amount_minor, request_no);
      ++refunds;
      refund_sum -= refund.amount_minor;
    }
  }
  std::string compact = bill_date;
  compact.erase(std::remove(compact.begin(), compact.end(), '-'), compact.end());
  std::string out;
  out += "#支付宝业务明细查询\n";
  out += fmt::format("#账号：[{}0156]\n", options_.seller_id);
  out += fmt::format("#起始日期：[{}年{}月{}日 00:00:00]   终止日期：[{}年{}月{}日 23:59:59]\n",
                     compact.substr(0, 4), compact.substr(4, 2), compact.substr(6, 2),
                     compact.substr(0, 4), compact.substr(4, 2), compact.substr(6, 2));
  out += "#-----------------------------------------业务明细列表----------------------------------------\n";
  out += "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
         "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
         "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
         "退款批次号/请求号,服务费（元）,分润（元）,备注\n";
  out += rows;
  out += "#-----------------------------------------业务明细列表结束------------------------------------\n";
  out += fmt::format("#交易合计：{}笔，商家实收共{}元，商家优惠共0.00元\n", trades,
                     money::FormatDecimal(trade_sum, 2));
  out += fmt::format("#退款合计：{}笔，商家实收退款共{}元，商家优惠退款共0.00元\n", refunds,
                     money::FormatDecimal(refund_sum, 2));
  out += fmt::format("#导出时间：[{}]\n", Now());
  return out;
}

GatewayAnswer Simulator::Impl::BillUrl(const std::string& app_id, const std::string& biz) {
  pb::BillUrlBiz request;
  if (!FromJson(biz, &request) || request.bill_type() != "trade" ||
      request.bill_date().size() != 10) {
    return GatewayAnswer{Failure("40004", "isp.bill_not_exist", "账单不存在"), false};
  }
  // As Alipay serves it: a zip of GBK CSVs named "<pid>_<yyyyMMdd>_业务明细.csv" and
  // "..._业务明细(汇总).csv", the names themselves GBK without the UTF-8 flag.
  std::string compact = request.bill_date();
  compact.erase(std::remove(compact.begin(), compact.end(), '-'), compact.end());
  const std::string stem = fmt::format("{}_{}_业务明细", options_.seller_id, compact);
  auto detail = Utf8ToGbk(BuildBill(app_id, request.bill_date()));
  auto summary = Utf8ToGbk("#支付宝业务汇总查询\n");
  auto detail_name = Utf8ToGbk(stem + ".csv");
  auto summary_name = Utf8ToGbk(stem + "(汇总).csv");
  if (!detail || !summary || !detail_name || !summary_name) {
    return GatewayAnswer{Failure("20000", "isp.unknow-error", "GBK encoding failed"), false};
  }
  auto zipped = archive::WriteZip({{std::move(detail_name).value(), std::move(detail).value()},
                                   {std::move(summary_name).value(), std::move(summary).value()}});
  if (!zipped) {
    return GatewayAnswer{Failure("20000", "isp.unknow-error", zipped.error().message), false};
  }
  const std::string token = codec::HexLower(crypto::RandomBytes(16));
  bills_[token] = {std::move(zipped).value(),
                   std::chrono::steady_clock::now() + options_.bill_url_ttl_ms};
  pb::BillUrlReply reply;
  reply.set_bill_download_url(fmt::format("https://{}/bills/{}?downloadFileName={}.csv.zip", host_,
                                          token, request.bill_date()));
  return GatewayAnswer{Success(reply), false};
}

Reply Simulator::Impl::HandleBill(std::string_view target) {
  std::string_view token = target.substr(std::string_view("/bills/").size());
  token = token.substr(0, token.find('?'));
  auto it = bills_.find(std::string(token));
  if (it == bills_.end() || it->second.second < std::chrono::steady_clock::now()) {
    return Plain(404, "bill link expired or unknown");
  }
  return Reply{200, "application/octet-stream", it->second.first, std::nullopt};
}

std::optional<pb::FaultRule> Simulator::Impl::TakeCallFault(const std::string& method,
                                                            const std::string& app_id,
                                                            const std::string& reference) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    const pb::FaultKind kind = it->kind();
    const bool call_fault =
        kind == pb::FAULT_KIND_TIMEOUT_BEFORE || kind == pb::FAULT_KIND_TIMEOUT_AFTER ||
        kind == pb::FAULT_KIND_HTTP_5XX || kind == pb::FAULT_KIND_MALFORMED_REPLY ||
        kind == pb::FAULT_KIND_BAD_SIGNATURE_REPLY || kind == pb::FAULT_KIND_SERVICE_UNAVAILABLE;
    if (!call_fault) continue;
    if (!it->method().empty() && it->method() != method) continue;
    if (!it->app_id().empty() && it->app_id() != app_id) continue;
    if (!it->reference().empty() && it->reference() != reference) continue;
    pb::FaultRule rule = *it;
    if (it->count() == 1) {
      faults_.erase(it);
    } else if (it->count() > 1) {
      it->set_count(it->count() - 1);
    }
    return rule;
  }
  return std::nullopt;
}

std::vector<pb::FaultRule> Simulator::Impl::TakeNotifyFaults(const std::string& app_id,
                                                             const std::string& reference) {
  std::vector<pb::FaultRule> taken;
  for (auto it = faults_.begin(); it != faults_.end();) {
    const pb::FaultKind kind = it->kind();
    const bool notify_fault = kind == pb::FAULT_KIND_DUPLICATE_CALLBACK ||
                              kind == pb::FAULT_KIND_DELAYED_CALLBACK ||
                              kind == pb::FAULT_KIND_OUT_OF_ORDER_CALLBACK ||
                              kind == pb::FAULT_KIND_BAD_SIGNATURE_CALLBACK;
    const bool matches = notify_fault && (it->app_id().empty() || it->app_id() == app_id) &&
                         (it->reference().empty() || it->reference() == reference);
    if (!matches) {
      ++it;
      continue;
    }
    taken.push_back(*it);
    if (it->count() == 1) {
      it = faults_.erase(it);
      continue;
    }
    if (it->count() > 1) it->set_count(it->count() - 1);
    ++it;
  }
  return taken;
}

Params Simulator::Impl::NotifyParams(const Trade& trade, const std::string& status,
                                     const std::string& notify_id) {
  const std::string total = money::FormatDecimal(trade.total_minor, 2);
  Params params = {
      {"gmt_create", trade.gmt_create},
      {"charset", "utf-8"},
      {"subject", trade.subject},
      {"buyer_id", "2088102000000001"},
      {"notify_id", notify_id},
      {"notify_type", "trade_status_sync"},
      {"trade_status", status},
      {"app_id", trade.app_id},
      {"seller_id", options_.seller_id},
      {"version", "1.0"},
      {"out_trade_no", trade.out_trade_no},
      {"total_amount", total},
      {"trade_no", trade.trade_no},
      {"auth_app_id", trade.app_id},
  };
  if (!trade.gmt_payment.empty() && status != "WAIT_BUYER_PAY") {
    params.emplace_back("gmt_payment", trade.gmt_payment);
    params.emplace_back("receipt_amount", total);
    params.emplace_back("buyer_pay_amount", total);
    params.emplace_back("invoice_amount", total);
    params.emplace_back("point_amount", "0.00");
    params.emplace_back("fund_bill_list",
                        fmt::format(R"([{{"amount":"{}","fundChannel":"ALIPAYACCOUNT"}}])", total));
  }
  return params;
}

void Simulator::Impl::EmitTrade(const Trade& trade, const RefundState* refund,
                                const std::string& out_request_no) {
  if (trade.notify_url.empty()) return;
  Params terminal = NotifyParams(trade, trade.status, fmt::format("2026112700222{:021}", next_id_++));
  if (refund != nullptr) {
    terminal.emplace_back("out_biz_no", out_request_no);
    terminal.emplace_back("refund_fee", money::FormatDecimal(trade.refunded_minor, 2));
    terminal.emplace_back("gmt_refund", refund->gmt_refund + ".000");
  }
  Params stale = NotifyParams(trade, "WAIT_BUYER_PAY", fmt::format("2026112700222{:021}", next_id_++));
  const std::string reference = refund != nullptr ? out_request_no : trade.out_trade_no;
  asio::co_spawn(ioc_,
                 Deliver(trade.notify_url, TakeNotifyFaults(trade.app_id, reference),
                         std::move(terminal), std::move(stale)),
                 asio::detached);
}

asio::awaitable<void> Simulator::Impl::Deliver(std::string url, std::vector<pb::FaultRule> faults,
                                               Params terminal, Params stale) {
  std::uint32_t copies = 1;
  std::chrono::milliseconds delay{0};
  bool out_of_order = false;
  bool bad_signature = false;
  for (const auto& fault : faults) {
    switch (fault.kind()) {
      case pb::FAULT_KIND_DUPLICATE_CALLBACK:
        copies = fault.copies() == 0 ? 2 : fault.copies();
        break;
      case pb::FAULT_KIND_DELAYED_CALLBACK:
        delay = std::chrono::milliseconds(fault.delay_ms());
        break;
      case pb::FAULT_KIND_OUT_OF_ORDER_CALLBACK:
        out_of_order = true;
        break;
      case pb::FAULT_KIND_BAD_SIGNATURE_CALLBACK:
        bad_signature = true;
        break;
      default:
        break;
    }
  }
  if (delay.count() > 0) {
    asio::steady_timer timer(ioc_, delay);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  for (std::uint32_t i = 0; i < copies; ++i) co_await DeliverOne(url, terminal, bad_signature);
  if (out_of_order) co_await DeliverOne(url, stale, bad_signature);
}

asio::awaitable<void> Simulator::Impl::DeliverOne(const std::string& url, Params params,
                                                  bool bad_signature) {
  for (std::uint32_t attempt = 1; attempt <= options_.notify_attempts_max; ++attempt) {
    // Each delivery is signed afresh with its own notify_time; notify_id stays the same.
    Params signed_params = params;
    signed_params.emplace_back("notify_time", Now());
    std::string sign = SignContent(*NotifySignContentV1(signed_params), alipay_key_).value();
    if (bad_signature) sign[0] = sign[0] == 'A' ? 'B' : 'A';
    signed_params.emplace_back("sign", std::move(sign));
    signed_params.emplace_back("sign_type", "RSA2");
    http::HttpsRequest request;
    request.url = url;
    request.content_type = "application/x-www-form-urlencoded; charset=utf-8";
    request.body = codec::BuildForm(signed_params);
    request.deadlines.response_ms = std::chrono::milliseconds(5'000);
    auto reply = co_await notify_client_->Send(std::move(request));
    // Only the exact body "success" stops the redeliveries.
    const bool acked = reply && reply.assume_value().status / 100 == 2 &&
                       reply.assume_value().body == "success";
    if (acked) {
      stats_.set_notifies_delivered(stats_.notifies_delivered() + 1);
      co_return;
    }
    stats_.set_notifies_failed(stats_.notifies_failed() + 1);
    if (attempt == options_.notify_attempts_max) break;
    const std::size_t step = std::min<std::size_t>(attempt - 1, std::size(kNotifyPauseSeconds) - 1);
    const auto pause = std::chrono::milliseconds(static_cast<std::int64_t>(
        static_cast<double>(kNotifyPauseSeconds[step]) * 1000.0 * options_.notify_time_scale));
    asio::steady_timer timer(ioc_, pause);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

Reply Simulator::Impl::HandleControl(std::string_view path, const Request& request) {
  if (options_.control_token.empty()) return ControlError(404, "not_found", "control API disabled");
  const std::string expected = "Bearer " + std::string(options_.control_token.reveal());
  const std::string_view presented = request[bhttp::field::authorization];
  if (presented.size() != expected.size() ||
      CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) != 0) {
    return ControlError(401, "unauthenticated", "control token required");
  }
  if (request.method() != bhttp::verb::post) return ControlError(405, "bad_request", "POST only");
  const std::string& body = request.body();
  auto open = [this](const std::string& order_string) -> std::optional<Reply> {
    auto params = codec::ParseForm(order_string);
    if (!params) return ControlError(400, "bad_request", "order_string is not a form");
    if (auto refused = Authenticate(*params)) {
      return ControlError(400, "bad_signature", refused->source);
    }
    const std::string method = Field(*params, "method");
    if (method != kMethodPagePay && method != kMethodWapPay && method != kMethodAppPay) {
      return ControlError(400, "bad_request", "not a payment order");
    }
    GatewayAnswer opened =
        Open(Field(*params, "app_id"), method, Field(*params, "biz_content"), *params);
    if (opened.source.find("\"10000\"") == std::string::npos) {
      return ControlError(400, "refused", opened.source);
    }
    return std::nullopt;
  };
  if (path == "/control/v1/trades/open") {
    pb::OpenTradeRequest message;
    if (!FromJson(body, &message)) return ControlError(400, "bad_request", "bad body");
    if (auto refused = open(message.order_string())) return *refused;
    return Reply{200, "application/json", "{}", std::nullopt};
  }
  if (path == "/control/v1/trades/complete") {
    pb::CompleteTradeRequest message;
    if (!FromJson(body, &message)) return ControlError(400, "bad_request", "bad body");
    if (!message.order_string().empty()) {
      if (auto refused = open(message.order_string())) return *refused;
    }
    auto it = trades_.find(Key(message.app_id(), message.out_trade_no()));
    if (it == trades_.end()) return ControlError(404, "not_found", "no such trade");
    Trade& trade = it->second;
    if (trade.status != "WAIT_BUYER_PAY") {
      return ControlError(409, "not_waiting", "the trade is no longer waiting for payment");
    }
    if (message.trade_status() == "TRADE_SUCCESS") {
      trade.status = "TRADE_SUCCESS";
      trade.gmt_payment = Now();
    } else if (message.trade_status() == "TRADE_CLOSED") {
      trade.status = "TRADE_CLOSED";
    } else {
      return ControlError(400, "bad_request", "trade_status must be TRADE_SUCCESS or TRADE_CLOSED");
    }
    EmitTrade(trade, nullptr, "");
    return Reply{200, "application/json", "{}", std::nullopt};
  }
  if (path == "/control/v1/transfers/complete") {
    pb::CompleteTransferRequest message;
    if (!FromJson(body, &message)) return ControlError(400, "bad_request", "bad body");
    auto it = transfers_.find(Key(message.app_id(), message.out_biz_no()));
    if (it == transfers_.end()) return ControlError(404, "not_found", "no such transfer");
    if (it->second.status != "DEALING") return ControlError(409, "not_dealing", "not in progress");
    if (message.status() != "SUCCESS" && message.status() != "FAIL") {
      return ControlError(400, "bad_request", "status must be SUCCESS or FAIL");
    }
    it->second.status = message.status();
    return Reply{200, "application/json", "{}", std::nullopt};
  }
  if (path == "/control/v1/faults") {
    pb::FaultRule message;
    if (!FromJson(body, &message) || message.kind() == pb::FAULT_KIND_UNSPECIFIED) {
      return ControlError(400, "bad_request", "bad fault rule");
    }
    faults_.push_back(message);
    return Reply{200, "application/json", ToJson(message), std::nullopt};
  }
  if (path == "/control/v1/faults/clear") {
    faults_.clear();
    return Reply{200, "application/json", "{}", std::nullopt};
  }
  if (path == "/control/v1/stats") return Reply{200, "application/json", ToJson(stats_), std::nullopt};
  return ControlError(404, "not_found", "no such control endpoint");
}

AlipayResult<std::unique_ptr<Simulator>> Simulator::Create(SimulatorOptions options) {
  if (options.app_public_keys.empty() && options.app_certs.empty()) return Error{"no apps"};
  auto key = crypto::PrivateKey::FromPem(options.alipay_private_key_pem.reveal());
  if (!key) return Error{"alipay private key: " + key.error().message};
  auto impl = std::make_unique<Impl>(std::move(options), key.value());
  if (auto ok = impl->Init(); !ok) return ok.error();
  return std::unique_ptr<Simulator>(new Simulator(std::move(impl)));
}

Simulator::Simulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Simulator::~Simulator() = default;
std::uint16_t Simulator::port() const { return impl_->port(); }
void Simulator::Run() { impl_->Run(); }
void Simulator::Stop() { impl_->Stop(); }

}  // namespace paygate::adapters::alipay
