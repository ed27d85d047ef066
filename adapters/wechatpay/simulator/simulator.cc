#include "adapters/common/owned_io_context.h"
#include "adapters/wechatpay/simulator/simulator.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <deque>
#include <map>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include "adapters/common/archive.h"
#include "adapters/common/codec.h"
#include "adapters/http/beast.h"
#include "adapters/http/https_client.h"
#include "adapters/wechatpay/bill.h"
#include "adapters/wechatpay/json.h"
#include "adapters/wechatpay/mapper.h"
#include "adapters/wechatpay/signing.h"
#include "adapters/wechatpay/wechatpay.pb.h"
#include "keys/secret_file.h"

namespace paygate::adapters::wechatpay {
namespace {

using namespace net;  // NOLINT(google-build-using-namespace): asio/beast/ssl aliases only.
namespace pb = paygate::adapters::wechatpay::v3;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

constexpr std::chrono::milliseconds kHoldDefault{60'000};
constexpr std::chrono::seconds kIoTimeout{10};
// WeChat's redelivery pauses after a failed callback (PROTOCOLS.md §A.4), in seconds.
constexpr int kRetrySchedule[] = {15,   15,   30,    180,   600,   1200,  1800, 1800,
                                  1800, 3600, 10800, 10800, 10800, 21600, 21600};

std::string OpenSslError() {
  unsigned long code = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type.
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

std::chrono::system_clock::time_point Now() { return std::chrono::system_clock::now(); }

struct Reply {
  unsigned status = 200;
  std::string body;
  std::optional<std::chrono::milliseconds> hold;
  // Bill files are not signed (PROTOCOLS.md §A.3).
  bool unsigned_reply = false;
  std::string content_type = "application/json";
};

Reply Refuse(unsigned status, std::string code, std::string message) {
  pb::ErrorReply error;
  error.set_code(std::move(code));
  error.set_message(std::move(message));
  return Reply{status, ToJson(error), std::nullopt, false, "application/json"};
}

Reply Json(const google::protobuf::Message& message) {
  return Reply{200, ToJson(message), std::nullopt, false, "application/json"};
}

// "WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",…": the quoted parameters by name.
std::optional<std::map<std::string, std::string>> ParseAuthorization(std::string_view value) {
  const std::string prefix = std::string(kAuthScheme) + " ";
  if (value.substr(0, prefix.size()) != prefix) return std::nullopt;
  value.remove_prefix(prefix.size());
  std::map<std::string, std::string> out;
  while (!value.empty()) {
    const auto eq = value.find("=\"");
    if (eq == std::string_view::npos) return std::nullopt;
    const auto close = value.find('"', eq + 2);
    if (close == std::string_view::npos) return std::nullopt;
    out.emplace(std::string(value.substr(0, eq)),
                std::string(value.substr(eq + 2, close - eq - 2)));
    value.remove_prefix(close + 1);
    if (!value.empty()) {
      if (value.front() != ',') return std::nullopt;
      value.remove_prefix(1);
    }
  }
  return out;
}

std::string ChinaBillTime(std::chrono::system_clock::time_point t) {
  std::string s = Rfc3339China(t).substr(0, 19);
  s[10] = ' ';
  return s;
}

struct Merchant {
  std::string mchid;
  keys::Secret apiv3_key;
  std::string serial;
  std::unique_ptr<crypto::PublicKey> key;
};

struct Payment {
  std::string mchid;
  pb::Transaction state;
  std::string method;        // native, jsapi, app, h5
  std::string request_body;  // the create body, to tell a repeat from a conflicting reuse
  std::string notify_url;
  std::string handle;  // code_url / h5_url / prepay_id reply
  std::int64_t refunded = 0;
  bool tombstone = false;
  std::chrono::system_clock::time_point paid_at;
};

struct RefundRecord {
  std::string mchid;
  pb::Refund state;
  std::string request_body;
  std::string notify_url;
  std::chrono::system_clock::time_point done_at;
};

struct Transfer {
  std::string mchid;
  pb::TransferBill state;
  std::string request_body;
  std::string notify_url;
};

struct BillFile {
  std::string bytes;
};

std::string Key(const std::string& mchid, const std::string& reference) {
  return mchid + '\n' + reference;
}

}  // namespace

class Simulator::Impl {
 public:
  ~Impl() { ioc_.ShutdownNow(); }
  explicit Impl(SimulatorOptions options)
      : options_(std::move(options)),
        ssl_(ssl::context::tls_server),
        acceptor_(ioc_),
        signals_(ioc_, SIGINT, SIGTERM) {
    auto_rule_.set_after_ms(static_cast<std::uint32_t>(options_.auto_complete_ms.count()));
    auto_rule_.set_state(options_.auto_succeed ? "SUCCESS" : "PAYERROR");
  }

  Result<void, std::string> Init();
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
  Reply Handle(const Request& request, bool* bad_signature);
  Reply HandleControl(std::string_view path, const Request& request);
  Reply Execute(const std::string& mchid, const std::string& method, const std::string& path,
                const std::string& query, const Request& request);

  Reply CreatePayment(const std::string& mchid, const std::string& kind, const std::string& body,
                      std::string* reference);
  Reply QueryPayment(const std::string& mchid, const std::string& out_trade_no);
  Reply ClosePayment(const std::string& mchid, const std::string& out_trade_no,
                     const std::string& body);
  Reply CreateRefund(const std::string& mchid, const std::string& body, std::string* reference);
  Reply QueryRefund(const std::string& mchid, const std::string& out_refund_no);
  Reply CreateTransfer(const std::string& mchid, const Request& request, std::string* reference);
  Reply QueryTransfer(const std::string& mchid, const std::string& out_bill_no);
  Reply TradeBill(const std::string& mchid, const std::string& query, const std::string& host);
  Reply DownloadBill(const std::string& query);
  Reply Certificates(const std::string& mchid);

  Reply CompletePayment(const pb::CompletePaymentRequest& request);
  Reply CompleteRefund(const pb::CompleteRefundRequest& request);
  Reply CompleteTransfer(const pb::CompleteTransferRequest& request);
  Reply AddBillEdit(pb::BillEdit edit);
  void ApplyBillEdits(const std::string& mchid, std::vector<TradeBillRow>& rows) const;
  void MaybeScheduleAuto(int kind, const std::string& mchid, const std::string& reference,
                         std::int64_t amount);

  std::optional<pb::FaultRule> TakeCallFault(std::string_view operation, const std::string& mchid,
                                             const std::string& reference);
  std::vector<pb::FaultRule> TakeCallbackFaults(const std::string& mchid,
                                                const std::string& reference, std::int64_t amount);
  bool NonceFresh(const std::string& mchid, const std::string& nonce);

  // Signs `body` as WeChat Pay: the Wechatpay-* headers.
  http::Headers SignAsWechat(const std::string& body, bool wrong_key);
  void Emit(const std::string& mchid, const std::string& notify_url, const std::string& reference,
            std::int64_t amount, std::string event_type, std::string original_type,
            std::string summary, std::string plaintext, std::string stale_plaintext);
  asio::awaitable<void> Deliver(std::string url, std::vector<pb::FaultRule> faults,
                                std::string body, std::string stale_body);
  asio::awaitable<void> DeliverOne(const std::string& url, const std::string& body,
                                   bool bad_signature, bool signtest);
  std::string Notification(const std::string& mchid, const std::string& event_type,
                           const std::string& original_type, const std::string& summary,
                           const std::string& plaintext);

  SimulatorOptions options_;
  OwnedIoContext ioc_;  // First destroyed of its handlers: see owned_io_context.h.
  ssl::context ssl_;
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  std::shared_ptr<http::HttpsClient> callback_client_;
  std::unique_ptr<crypto::PrivateKey> platform_key_;
  std::string platform_serial_;

  std::map<std::string, Merchant> merchants_;
  std::unordered_map<std::string, Payment> payments_;
  std::unordered_map<std::string, RefundRecord> refunds_;
  std::unordered_map<std::string, Transfer> transfers_;
  std::unordered_map<std::string, BillFile> bills_;
  std::vector<pb::FaultRule> faults_;
  std::vector<pb::BillEdit> bill_edits_;
  pb::AutoRule auto_rule_;
  pb::Stats stats_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::string, std::int64_t> nonces_;
  std::deque<std::pair<std::int64_t, std::string>> nonce_order_;
};

Result<void, std::string> Simulator::Impl::Init() {
  SSL_CTX* native = ssl_.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(native, 0);
  if (auto ok = keys::CheckKeyFilePermissions(options_.key_file); !ok) {
    return fmt::format("{}: {}", options_.key_file, ok.error().message());
  }
  if (SSL_CTX_use_certificate_chain_file(native, options_.cert_file.c_str()) != 1) {
    return fmt::format("{}: {}", options_.cert_file, OpenSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(native, options_.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(native) != 1) {
    return fmt::format("{}: {}", options_.key_file, OpenSslError());
  }
  auto platform = crypto::PrivateKey::FromPem(options_.platform_private_key_pem.reveal());
  if (!platform) return "platform private key: " + platform.error().message;
  platform_key_ = std::make_unique<crypto::PrivateKey>(std::move(platform).value());
  auto certificate = crypto::Certificate::Parse(options_.platform_certificate_pem);
  if (!certificate) return "platform certificate: " + certificate.error().message;
  platform_serial_ =
      options_.public_key_id.empty() ? certificate.value().SerialHex() : options_.public_key_id;
  for (auto& m : options_.merchants) {
    auto merchant_cert = crypto::Certificate::Parse(m.merchant_certificate_pem);
    if (!merchant_cert)
      return fmt::format("merchant {} certificate: {}", m.mchid, merchant_cert.error().message);
    Merchant merchant;
    merchant.mchid = m.mchid;
    merchant.apiv3_key = std::move(m.apiv3_key);
    merchant.serial = merchant_cert.value().SerialHex();
    merchant.key = std::make_unique<crypto::PublicKey>(merchant_cert.value().Key());
    merchants_.emplace(m.mchid, std::move(merchant));
  }
  http::HttpsClientOptions client_options;
  client_options.ca_file = options_.callback_ca_file;
  auto client = http::HttpsClient::Create(std::move(client_options));
  if (!client) return "callback client: " + client.error();
  callback_client_ = std::move(client).value();

  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options_.address, ec);
  if (ec) return fmt::format("listen address {}: {}", options_.address, ec.message());
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fmt::format("listen {}:{}: {}", options_.address, options_.port, ec.message());
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

http::Headers Simulator::Impl::SignAsWechat(const std::string& body, bool wrong_key) {
  const std::string timestamp = std::to_string(UnixSeconds(Now()));
  const std::string nonce = NewNonce();
  auto signature =
      platform_key_->Sign(crypto::Digest::kSha256, ResponseMessage(timestamp, nonce, body));
  std::string raw = signature ? std::move(signature).value() : std::string();
  // A signature by another key is, to the verifier, a signature that does not verify: flipping bits
  // of WeChat's own gives exactly that.
  if (wrong_key && !raw.empty())
    raw[raw.size() / 2] = static_cast<char>(raw[raw.size() / 2] ^ 0x5a);
  return {{"Wechatpay-Timestamp", timestamp},
          {"Wechatpay-Nonce", nonce},
          {"Wechatpay-Signature", codec::Base64Encode(raw)},
          {"Wechatpay-Serial", platform_serial_},
          {"Wechatpay-Signature-Type", std::string(kAuthScheme)}};
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
    bool bad_signature = false;
    Reply reply = Handle(request, &bad_signature);
    if (reply.hold) {
      beast::get_lowest_layer(stream).expires_never();
      asio::steady_timer timer(ioc_, *reply.hold);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    Response response{static_cast<bhttp::status>(reply.status), request.version()};
    response.set(bhttp::field::server, "paygate-wechatpay-sim");
    response.set("Request-ID", fmt::format("08{:014X}", next_id_++));
    if (!reply.content_type.empty() && !(reply.status == 204)) {
      response.set(bhttp::field::content_type, reply.content_type);
    }
    if (!reply.unsigned_reply) {
      // WeChat signs every API reply, errors included, over the exact body bytes.
      for (auto& [name, value] : SignAsWechat(reply.body, bad_signature)) response.set(name, value);
    }
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

bool Simulator::Impl::NonceFresh(const std::string& mchid, const std::string& nonce) {
  const std::int64_t now = UnixSeconds(Now());
  while (!nonce_order_.empty() && nonce_order_.front().first < now - 2 * kTimestampWindow.count()) {
    nonces_.erase(nonce_order_.front().second);
    nonce_order_.pop_front();
  }
  const std::string key = Key(mchid, nonce);
  if (!nonces_.emplace(key, now).second) return false;
  nonce_order_.emplace_back(now, key);
  return true;
}

Reply Simulator::Impl::Handle(const Request& request, bool* bad_signature) {
  const std::string target(request.target());
  const auto question = target.find('?');
  const std::string path = target.substr(0, question);
  const std::string query = question == std::string::npos ? "" : target.substr(question + 1);
  if (path.rfind("/control/v1/", 0) == 0) {
    Reply reply = HandleControl(path, request);
    reply.unsigned_reply = true;
    return reply;
  }
  stats_.set_calls_received(stats_.calls_received() + 1);
  // Authentication first: nothing executes for a request WeChat cannot attribute.
  auto auth = ParseAuthorization(request[bhttp::field::authorization]);
  if (!auth) return Refuse(401, "SIGN_ERROR", "Authorization 缺失或格式错误");
  auto merchant = merchants_.find((*auth)["mchid"]);
  if (merchant == merchants_.end()) return Refuse(400, "MCH_NOT_EXISTS", "商户号不存在");
  if ((*auth)["serial_no"] != merchant->second.serial) {
    return Refuse(401, "SIGN_ERROR", "商户证书序列号有误");
  }
  const std::string& timestamp = (*auth)["timestamp"];
  const std::int64_t ts = std::atoll(timestamp.c_str());
  const std::int64_t skew = UnixSeconds(Now()) - ts;
  if (timestamp.empty() || skew >= kTimestampWindow.count() || -skew >= kTimestampWindow.count()) {
    return Refuse(401, "SIGN_ERROR", "时间戳超出范围");
  }
  auto signature = codec::Base64Decode((*auth)["signature"]);
  const std::string method(request.method_string());
  if (!signature ||
      !merchant->second.key->Verify(
          crypto::Digest::kSha256,
          RequestMessage(method, target, ts, (*auth)["nonce_str"], request.body()), *signature)) {
    return Refuse(401, "SIGN_ERROR", "签名错误");
  }
  if (!NonceFresh(merchant->first, (*auth)["nonce_str"])) {
    return Refuse(401, "SIGN_ERROR", "重复的请求随机串");
  }
  const std::string& mchid = merchant->first;

  std::string operation;
  std::string reference;
  // The operation name and reference, for fault matching, before anything executes.
  if (method == "POST" && path.rfind("/v3/pay/transactions/", 0) == 0 &&
      path.find("/close") == std::string::npos) {
    operation = "create_payment";
    pb::PrepayRequest body;
    if (FromJson(request.body(), &body)) reference = body.out_trade_no();
  } else if (method == "GET" && path.rfind("/v3/pay/transactions/out-trade-no/", 0) == 0) {
    operation = "query_payment";
    reference = path.substr(std::string_view("/v3/pay/transactions/out-trade-no/").size());
  } else if (method == "POST" && path.find("/close") != std::string::npos) {
    operation = "close_payment";
  } else if (method == "POST" && path == kRefundPath) {
    operation = "create_refund";
    pb::RefundRequest body;
    if (FromJson(request.body(), &body)) reference = body.out_refund_no();
  } else if (method == "GET" && path.rfind(std::string(kRefundPath) + "/", 0) == 0) {
    operation = "query_refund";
    reference = path.substr(kRefundPath.size() + 1);
  } else if (method == "POST" && path == kTransferPath) {
    operation = "create_transfer";
    pb::TransferBillRequest body;
    if (FromJson(request.body(), &body)) reference = body.out_bill_no();
  } else if (method == "GET" && path.rfind(std::string(kTransferPath) + "/", 0) == 0) {
    operation = "query_transfer";
    reference = path.substr(path.rfind('/') + 1);
  } else if (method == "GET" && path == "/v3/bill/tradebill") {
    operation = "trade_bill";
  } else if (method == "GET" && path == "/v3/billdownload/file") {
    operation = "download_bill";
  } else if (method == "GET" && path == kCertificatesPath) {
    operation = "certificates";
  }
  std::optional<pb::FaultRule> fault = TakeCallFault(operation, mchid, reference);
  const pb::FaultKind kind = fault ? fault->kind() : pb::FAULT_KIND_UNSPECIFIED;
  const auto hold =
      fault && fault->delay_ms() != 0 ? std::chrono::milliseconds(fault->delay_ms()) : kHoldDefault;
  if (kind == pb::FAULT_KIND_TIMEOUT_BEFORE) return Reply{0, {}, hold, false, ""};
  if (kind == pb::FAULT_KIND_HTTP_5XX) return Refuse(500, "SYSTEM_ERROR", "系统异常，请稍后重试");
  if (kind == pb::FAULT_KIND_REFUSE) {
    return Refuse(fault->http_status() == 0 ? 403 : fault->http_status(),
                  fault->error_code().empty() ? "NOT_ENOUGH" : fault->error_code(),
                  "injected refusal");
  }

  Reply reply = Execute(mchid, method, path, query, request);
  stats_.set_calls_executed(stats_.calls_executed() + 1);
  if (kind == pb::FAULT_KIND_TIMEOUT_AFTER) return Reply{0, {}, hold, false, ""};
  if (kind == pb::FAULT_KIND_MALFORMED_REPLY)
    reply.body = reply.body.substr(0, reply.body.size() / 2);
  if (kind == pb::FAULT_KIND_BAD_SIGNATURE_REPLY) *bad_signature = true;
  return reply;
}

Reply Simulator::Impl::Execute(const std::string& mchid, const std::string& method,
                               const std::string& path, const std::string& query,
                               const Request& request) {
  std::string reference;
  const std::string& body = request.body();
  if (method == "POST") {
    for (const char* kind : {"native", "jsapi", "app", "h5"}) {
      if (path == fmt::format("/v3/pay/transactions/{}", kind)) {
        return CreatePayment(mchid, kind, body, &reference);
      }
    }
    constexpr std::string_view kOut = "/v3/pay/transactions/out-trade-no/";
    if (path.rfind(kOut, 0) == 0 && path.size() > kOut.size() + 6 &&
        path.substr(path.size() - 6) == "/close") {
      return ClosePayment(mchid, path.substr(kOut.size(), path.size() - kOut.size() - 6), body);
    }
    if (path == kRefundPath) return CreateRefund(mchid, body, &reference);
    if (path == kTransferPath) return CreateTransfer(mchid, request, &reference);
  } else if (method == "GET") {
    constexpr std::string_view kOut = "/v3/pay/transactions/out-trade-no/";
    if (path.rfind(kOut, 0) == 0) {
      if (query != "mchid=" + mchid) return Refuse(400, "PARAM_ERROR", "mchid 与请求商户不符");
      return QueryPayment(mchid, path.substr(kOut.size()));
    }
    if (path.rfind(std::string(kRefundPath) + "/", 0) == 0) {
      return QueryRefund(mchid, path.substr(kRefundPath.size() + 1));
    }
    const std::string by_out = std::string(kTransferPath) + "/out-bill-no/";
    if (path.rfind(by_out, 0) == 0) return QueryTransfer(mchid, path.substr(by_out.size()));
    if (path == "/v3/bill/tradebill") {
      return TradeBill(mchid, query, std::string(request[bhttp::field::host]));
    }
    if (path == "/v3/billdownload/file") return DownloadBill(query);
    if (path == kCertificatesPath) return Certificates(mchid);
  }
  return Refuse(404, "NOT_FOUND", "no such API");
}

Reply Simulator::Impl::CreatePayment(const std::string& mchid, const std::string& kind,
                                     const std::string& body, std::string* reference) {
  pb::PrepayRequest request;
  if (!FromJsonStrict(body, &request)) return Refuse(400, "PARAM_ERROR", "请求体不是有效的 JSON");
  if (request.mchid() != mchid) return Refuse(400, "PARAM_ERROR", "mchid 与请求商户不符");
  if (request.appid().empty()) return Refuse(400, "PARAM_ERROR", "缺少 appid");
  if (!ValidReference(request.out_trade_no(), 32)) {
    return Refuse(400, "PARAM_ERROR", "out_trade_no 格式错误");
  }
  if (request.description().empty()) return Refuse(400, "PARAM_ERROR", "缺少 description");
  if (request.amount().total() <= 0 || request.amount().currency() != "CNY") {
    return Refuse(400, "PARAM_ERROR", "amount 错误");
  }
  if (!http::ParseHttpsUrl(request.notify_url())) {
    return Refuse(400, "PARAM_ERROR", "notify_url 必须是 https 地址");
  }
  if (kind == "jsapi" && request.payer().openid().empty()) {
    return Refuse(400, "PARAM_ERROR", "JSAPI 缺少 payer.openid");
  }
  if (kind == "h5" && request.scene_info().payer_client_ip().empty()) {
    return Refuse(400, "PARAM_ERROR", "H5 缺少 scene_info.payer_client_ip");
  }
  *reference = request.out_trade_no();
  const std::string key = Key(mchid, request.out_trade_no());
  if (auto it = payments_.find(key); it != payments_.end()) {
    Payment& existing = it->second;
    if (existing.tombstone || existing.state.trade_state() == "CLOSED") {
      return Refuse(400, "ORDER_CLOSED", "订单已关闭");
    }
    if (existing.state.trade_state() == "SUCCESS" || existing.state.trade_state() == "REFUND") {
      return Refuse(400, "ORDERPAID", "订单已支付");
    }
    if (existing.request_body != body || existing.method != kind) {
      return Refuse(403, "OUT_TRADE_NO_USED", "商户订单号重复");
    }
    return Reply{200, existing.handle, std::nullopt, false, "application/json"};
  }
  Payment payment;
  payment.mchid = mchid;
  payment.method = kind;
  payment.request_body = body;
  payment.notify_url = request.notify_url();
  pb::Transaction& state = payment.state;
  state.set_appid(request.appid());
  state.set_mchid(mchid);
  state.set_out_trade_no(request.out_trade_no());
  state.set_trade_type(
      kind == "h5" ? "MWEB" : (kind == "native" ? "NATIVE" : (kind == "app" ? "APP" : "JSAPI")));
  state.set_trade_state("NOTPAY");
  state.set_trade_state_desc("订单未支付");
  state.set_attach(request.attach());
  if (!request.payer().openid().empty())
    state.mutable_payer()->set_openid(request.payer().openid());
  state.mutable_amount()->set_total(request.amount().total());
  state.mutable_amount()->set_currency("CNY");
  const std::string token = fmt::format("{:016x}", next_id_++);
  pb::PrepayReply reply;
  if (kind == "native") {
    reply.set_code_url("weixin://wxpay/bizpayurl?pr=" + token);
  } else if (kind == "h5") {
    reply.set_h5_url("https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx" + token);
  } else {
    reply.set_prepay_id("wx" + token);
  }
  payment.handle = ToJson(reply);
  Reply out{200, payment.handle, std::nullopt, false, "application/json"};
  const std::int64_t amount = request.amount().total();
  payments_.emplace(key, std::move(payment));
  stats_.set_payments(stats_.payments() + 1);
  MaybeScheduleAuto(0, mchid, request.out_trade_no(), amount);
  return out;
}

Reply Simulator::Impl::QueryPayment(const std::string& mchid, const std::string& out_trade_no) {
  auto it = payments_.find(Key(mchid, out_trade_no));
  if (it == payments_.end() || it->second.tombstone) {
    return Refuse(404, "ORDER_NOT_EXIST", "订单不存在");
  }
  return Json(it->second.state);
}

Reply Simulator::Impl::ClosePayment(const std::string& mchid, const std::string& out_trade_no,
                                    const std::string& body) {
  pb::CloseRequest request;
  if (!FromJsonStrict(body, &request) || request.mchid() != mchid) {
    return Refuse(400, "PARAM_ERROR", "mchid 与请求商户不符");
  }
  if (!ValidReference(out_trade_no, 32)) return Refuse(400, "PARAM_ERROR", "out_trade_no 格式错误");
  const std::string key = Key(mchid, out_trade_no);
  auto it = payments_.find(key);
  if (it == payments_.end()) {
    // Like the sandbox: a reference closed before it was created can never be created, which turns
    // an unknown create into a definitive answer.
    Payment tombstone;
    tombstone.mchid = mchid;
    tombstone.tombstone = true;
    tombstone.state.set_out_trade_no(out_trade_no);
    tombstone.state.set_trade_state("CLOSED");
    payments_.emplace(key, std::move(tombstone));
    return Reply{204, "", std::nullopt, false, ""};
  }
  pb::Transaction& state = it->second.state;
  if (state.trade_state() == "SUCCESS" || state.trade_state() == "REFUND") {
    return Refuse(400, "ORDERPAID", "订单已支付");
  }
  if (state.trade_state() == "NOTPAY" || state.trade_state() == "USERPAYING") {
    state.set_trade_state("CLOSED");
    state.set_trade_state_desc("订单已关闭");
  }
  return Reply{204, "", std::nullopt, false, ""};
}

Reply Simulator::Impl::CreateRefund(const std::string& mchid, const std::string& body,
                                    std::string* reference) {
  pb::RefundRequest request;
  if (!FromJsonStrict(body, &request)) return Refuse(400, "PARAM_ERROR", "请求体不是有效的 JSON");
  if (!ValidReference(request.out_refund_no(), 64)) {
    return Refuse(400, "PARAM_ERROR", "out_refund_no 格式错误");
  }
  if (!request.notify_url().empty() && !http::ParseHttpsUrl(request.notify_url())) {
    return Refuse(400, "PARAM_ERROR", "notify_url 必须是 https 地址");
  }
  *reference = request.out_refund_no();
  const std::string refund_key = Key(mchid, request.out_refund_no());
  if (auto existing = refunds_.find(refund_key); existing != refunds_.end()) {
    if (existing->second.request_body != body) {
      return Refuse(400, "INVALID_REQUEST", "退款单号已存在，请求参数不一致");
    }
    return Json(existing->second.state);
  }
  auto payment_it = payments_.find(Key(mchid, request.out_trade_no()));
  if (payment_it == payments_.end() || payment_it->second.tombstone) {
    return Refuse(404, "RESOURCE_NOT_EXISTS", "订单不存在");
  }
  Payment& payment = payment_it->second;
  if (payment.state.trade_state() != "SUCCESS" && payment.state.trade_state() != "REFUND") {
    return Refuse(400, "INVALID_REQUEST", "订单未支付");
  }
  const auto& amount = request.amount();
  if (amount.refund() <= 0 || amount.currency() != "CNY" ||
      amount.total() != payment.state.amount().total()) {
    return Refuse(400, "PARAM_ERROR", "退款金额或订单金额错误");
  }
  if (amount.refund() > payment.state.amount().total() - payment.refunded) {
    return Refuse(403, "NOT_ENOUGH", "申请退款金额超过订单可退金额");
  }
  payment.refunded += amount.refund();
  RefundRecord refund;
  refund.mchid = mchid;
  refund.request_body = body;
  refund.notify_url = request.notify_url();
  pb::Refund& state = refund.state;
  state.set_refund_id(fmt::format("50300{:014}", next_id_++));
  state.set_out_refund_no(request.out_refund_no());
  state.set_transaction_id(payment.state.transaction_id());
  state.set_out_trade_no(request.out_trade_no());
  state.set_channel("ORIGINAL");
  state.set_user_received_account("支付用户零钱");
  state.set_create_time(Rfc3339China(Now()));
  state.set_status("PROCESSING");
  state.set_funds_account("AVAILABLE");
  state.mutable_amount()->set_refund(amount.refund());
  state.mutable_amount()->set_total(amount.total());
  state.mutable_amount()->set_payer_total(amount.total());
  state.mutable_amount()->set_payer_refund(amount.refund());
  state.mutable_amount()->set_currency("CNY");
  Reply out = Json(state);
  refunds_.emplace(refund_key, std::move(refund));
  stats_.set_refunds(stats_.refunds() + 1);
  MaybeScheduleAuto(1, mchid, request.out_refund_no(), amount.refund());
  return out;
}

Reply Simulator::Impl::QueryRefund(const std::string& mchid, const std::string& out_refund_no) {
  auto it = refunds_.find(Key(mchid, out_refund_no));
  if (it == refunds_.end()) return Refuse(404, "RESOURCE_NOT_EXISTS", "退款单不存在");
  return Json(it->second.state);
}

Reply Simulator::Impl::CreateTransfer(const std::string& mchid, const Request& http_request,
                                      std::string* reference) {
  const std::string& body = http_request.body();
  pb::TransferBillRequest request;
  if (!FromJsonStrict(body, &request)) return Refuse(400, "PARAM_ERROR", "请求体不是有效的 JSON");
  if (!ValidReference(request.out_bill_no(), 32) || request.openid().empty() ||
      request.transfer_scene_id().empty() || request.appid().empty()) {
    return Refuse(400, "PARAM_ERROR", "参数错误");
  }
  if (request.transfer_amount() <= 0) return Refuse(400, "PARAM_ERROR", "转账金额错误");
  if (request.transfer_amount() >= 200000 && request.user_name().empty()) {
    return Refuse(400, "PARAM_ERROR", "转账金额 >= 2000 元时须填写收款用户姓名");
  }
  if (!request.user_name().empty()) {
    // The name is encrypted with WeChat Pay's key, named by the Wechatpay-Serial header.
    if (http_request["Wechatpay-Serial"] != platform_serial_) {
      return Refuse(400, "PARAM_ERROR", "Wechatpay-Serial 与加密所用的平台公钥不符");
    }
    auto sealed = codec::Base64Decode(request.user_name());
    if (!sealed || !platform_key_->DecryptOaep(*sealed)) {
      return Refuse(400, "PARAM_ERROR", "user_name 解密失败");
    }
  }
  *reference = request.out_bill_no();
  const std::string key = Key(mchid, request.out_bill_no());
  if (auto existing = transfers_.find(key); existing != transfers_.end()) {
    // The same out_bill_no is the same transfer; with other parameters WeChat refuses the reuse
    // (and the first transfer stands).
    const pb::TransferBill& same = existing->second.state;
    if (same.transfer_amount() != request.transfer_amount() || same.openid() != request.openid()) {
      return Refuse(400, "INVALID_REQUEST", "商户单号重复，且参数不一致");
    }
    return Json(same);
  }
  Transfer transfer;
  transfer.mchid = mchid;
  transfer.request_body = body;
  transfer.notify_url = request.notify_url();
  pb::TransferBill& state = transfer.state;
  state.set_mch_id(mchid);
  state.set_out_bill_no(request.out_bill_no());
  state.set_transfer_bill_no(fmt::format("1330000{:014}", next_id_++));
  state.set_appid(request.appid());
  state.set_state("WAIT_USER_CONFIRM");
  state.set_transfer_amount(request.transfer_amount());
  state.set_transfer_remark(request.transfer_remark());
  state.set_openid(request.openid());
  state.set_create_time(Rfc3339China(Now()));
  state.set_update_time(state.create_time());
  state.set_package_info(codec::Base64Encode(crypto::RandomBytes(24)));
  Reply out = Json(state);
  const std::int64_t amount = request.transfer_amount();
  transfers_.emplace(key, std::move(transfer));
  stats_.set_transfers(stats_.transfers() + 1);
  MaybeScheduleAuto(2, mchid, request.out_bill_no(), amount);
  return out;
}

Reply Simulator::Impl::QueryTransfer(const std::string& mchid, const std::string& out_bill_no) {
  auto it = transfers_.find(Key(mchid, out_bill_no));
  if (it == transfers_.end()) return Refuse(404, "NOT_FOUND", "转账单不存在");
  pb::TransferBill state = it->second.state;
  // Queries do not return the confirmation package.
  state.clear_package_info();
  return Json(state);
}

Reply Simulator::Impl::TradeBill(const std::string& mchid, const std::string& query,
                                 const std::string& host) {
  auto fields = codec::ParseForm(query);
  if (!fields) return Refuse(400, "PARAM_ERROR", "查询参数错误");
  const auto date = codec::FindField(*fields, "bill_date");
  const auto type = codec::FindField(*fields, "bill_type");
  const auto tar = codec::FindField(*fields, "tar_type");
  if (!date || date->size() != 10) return Refuse(400, "PARAM_ERROR", "bill_date 格式错误");
  const std::string bill_type = type ? std::string(*type) : "ALL";
  if (bill_type != "ALL" && bill_type != "SUCCESS" && bill_type != "REFUND") {
    return Refuse(400, "PARAM_ERROR", "bill_type 错误");
  }
  std::vector<TradeBillRow> rows;
  for (const auto& [key, payment] : payments_) {
    if (payment.mchid != mchid || payment.tombstone) continue;
    const auto& s = payment.state;
    if ((s.trade_state() != "SUCCESS" && s.trade_state() != "REFUND") || bill_type == "REFUND") {
      continue;
    }
    // A 0.6% fee, rounded to fen, as WeChat charges most merchants.
    const std::int64_t fee = (s.amount().total() * 6 + 500) / 1000;
    rows.push_back({ChinaBillTime(payment.paid_at), s.appid(), mchid, s.transaction_id(),
                    s.out_trade_no(), s.payer().openid(), s.trade_type(), "SUCCESS",
                    s.amount().total(), "", "", 0, "", "paygate", fee, "0.60%"});
  }
  for (const auto& [key, refund] : refunds_) {
    const auto& s = refund.state;
    if (refund.mchid != mchid || s.status() != "SUCCESS" || bill_type == "SUCCESS") {
      continue;
    }
    auto payment = payments_.find(Key(mchid, s.out_trade_no()));
    const pb::Transaction& t = payment->second.state;
    const std::int64_t fee = -((s.amount().refund() * 6 + 500) / 1000);
    rows.push_back({ChinaBillTime(refund.done_at), t.appid(), mchid, s.transaction_id(),
                    s.out_trade_no(), t.payer().openid(), t.trade_type(), "REFUND", 0,
                    s.refund_id(), s.out_refund_no(), s.amount().refund(), "SUCCESS", "paygate",
                    fee, "0.60%"});
  }
  // Every day's lines first: an edit may move a line to another day's bill. Then the day's.
  ApplyBillEdits(mchid, rows);
  std::erase_if(rows, [&](const TradeBillRow& row) {
    return row.time.compare(0, 10, *date) != 0 ||
           (bill_type == "SUCCESS" && !row.out_refund_no.empty()) ||
           (bill_type == "REFUND" && row.out_refund_no.empty());
  });
  std::sort(rows.begin(), rows.end(),
            [](const TradeBillRow& a, const TradeBillRow& b) { return a.time < b.time; });
  if (rows.empty()) return Refuse(400, "NO_STATEMENT_EXIST", "账单文件不存在");
  const std::string file = FormatTradeBill(rows);
  const bool gzip = tar && *tar == "GZIP";
  BillFile stored;
  if (gzip) {
    stored.bytes = archive::Gzip(file);
  } else {
    stored.bytes = file;
  }
  const std::string token = codec::HexLower(crypto::RandomBytes(16));
  bills_.emplace(token, std::move(stored));
  pb::BillReply reply;
  reply.set_hash_type("SHA1");
  // The hash is of the decompressed file, whatever the transfer encoding.
  reply.set_hash_value(codec::HexLower(crypto::DigestBytes(crypto::Digest::kSha1, file)));
  reply.set_download_url(fmt::format("https://{}/v3/billdownload/file?token={}", host, token));
  return Json(reply);
}

Reply Simulator::Impl::AddBillEdit(pb::BillEdit edit) {
  if (edit.kind() == pb::BILL_EDIT_KIND_UNSPECIFIED || !merchants_.contains(edit.mchid()) ||
      (edit.out_trade_no().empty() && edit.out_refund_no().empty())) {
    return Refuse(400, "PARAM_ERROR", "bad bill edit");
  }
  const bool timed = edit.kind() == pb::BILL_EDIT_ADD || edit.kind() == pb::BILL_EDIT_MOVE;
  // "YYYY-MM-DD HH:MM:SS": the bill's own time format, whose first ten characters name its day.
  if (timed && (edit.time().size() != 19 || edit.time()[10] != ' ')) {
    return Refuse(400, "PARAM_ERROR", "time must be YYYY-MM-DD HH:MM:SS");
  }
  if (edit.kind() == pb::BILL_EDIT_ADD &&
      (edit.out_trade_no().empty() || edit.amount() <= 0 || !edit.out_refund_no().empty())) {
    return Refuse(400, "PARAM_ERROR", "an added line is a payment with an amount");
  }
  if (edit.kind() == pb::BILL_EDIT_ADD) {
    edit.set_transaction_id(fmt::format("42000{:023}", next_id_++));
  }
  bill_edits_.push_back(edit);
  return Json(edit);
}

void Simulator::Impl::ApplyBillEdits(const std::string& mchid,
                                     std::vector<TradeBillRow>& rows) const {
  for (const pb::BillEdit& edit : bill_edits_) {
    if (edit.mchid() != mchid) continue;
    if (edit.kind() == pb::BILL_EDIT_ADD) {
      rows.push_back({edit.time(), "", mchid, edit.transaction_id(), edit.out_trade_no(),
                      "oSimulatedPayer000000000000", "NATIVE", "SUCCESS", edit.amount(), "", "", 0,
                      "", "paygate", (edit.amount() * 6 + 500) / 1000, "0.60%"});
      continue;
    }
    const bool refund_line = !edit.out_refund_no().empty();
    for (auto it = rows.begin(); it != rows.end(); ++it) {
      TradeBillRow& row = *it;
      if (refund_line ? row.out_refund_no != edit.out_refund_no()
                      : (!row.out_refund_no.empty() || row.out_trade_no != edit.out_trade_no())) {
        continue;
      }
      switch (edit.kind()) {
        case pb::BILL_EDIT_DROP:
          rows.erase(it);
          break;
        case pb::BILL_EDIT_AMOUNT:
          (refund_line ? row.refund_fen : row.total_fen) = edit.amount();
          break;
        case pb::BILL_EDIT_STATUS:
          (refund_line ? row.refund_status : row.trade_state) = edit.status();
          break;
        case pb::BILL_EDIT_FEE:
          row.fee_fen = edit.fee();
          break;
        case pb::BILL_EDIT_MOVE:
          row.time = edit.time();
          break;
        default:
          break;
      }
      break;
    }
  }
}

Reply Simulator::Impl::DownloadBill(const std::string& query) {
  auto fields = codec::ParseForm(query);
  const auto token = fields ? codec::FindField(*fields, "token") : std::nullopt;
  auto it = token ? bills_.find(std::string(*token)) : bills_.end();
  if (it == bills_.end()) return Refuse(400, "INVALID_REQUEST", "下载链接无效");
  return Reply{200, it->second.bytes, std::nullopt, /*unsigned_reply=*/true,
               "application/octet-stream"};
}

Reply Simulator::Impl::Certificates(const std::string& mchid) {
  const Merchant& merchant = merchants_.at(mchid);
  const std::string nonce = codec::HexLower(crypto::RandomBytes(6));
  auto sealed = EncryptResource(merchant.apiv3_key.reveal(), nonce, "certificate",
                                options_.platform_certificate_pem);
  auto certificate = crypto::Certificate::Parse(options_.platform_certificate_pem);
  if (!sealed || !certificate) return Refuse(500, "SYSTEM_ERROR", "certificate encryption failed");
  pb::CertificatesReply reply;
  auto* entry = reply.add_data();
  entry->set_serial_no(certificate.value().SerialHex());
  entry->set_effective_time(Rfc3339China(certificate.value().NotBefore()));
  entry->set_expire_time(Rfc3339China(certificate.value().NotAfter()));
  auto* encrypted = entry->mutable_encrypt_certificate();
  encrypted->set_algorithm("AEAD_AES_256_GCM");
  encrypted->set_nonce(nonce);
  encrypted->set_associated_data("certificate");
  encrypted->set_ciphertext(std::move(sealed).value());
  return Json(reply);
}

std::string Simulator::Impl::Notification(const std::string& mchid, const std::string& event_type,
                                          const std::string& original_type,
                                          const std::string& summary,
                                          const std::string& plaintext) {
  const Merchant& merchant = merchants_.at(mchid);
  const std::string nonce = codec::HexLower(crypto::RandomBytes(6));
  pb::Notification n;
  n.set_id(fmt::format("EV-{:020}", next_id_++));
  n.set_create_time(Rfc3339China(Now()));
  n.set_resource_type("encrypt-resource");
  n.set_event_type(event_type);
  n.set_summary(summary);
  auto* resource = n.mutable_resource();
  resource->set_original_type(original_type);
  resource->set_algorithm("AEAD_AES_256_GCM");
  auto sealed = EncryptResource(merchant.apiv3_key.reveal(), nonce, original_type, plaintext);
  resource->set_ciphertext(sealed ? std::move(sealed).value() : std::string());
  resource->set_associated_data(original_type);
  resource->set_nonce(nonce);
  return ToJson(n);
}

Reply Simulator::Impl::CompletePayment(const pb::CompletePaymentRequest& request) {
  auto it = payments_.find(Key(request.mchid(), request.out_trade_no()));
  if (it == payments_.end() || it->second.tombstone)
    return Refuse(404, "NOT_FOUND", "no such payment");
  Payment& payment = it->second;
  pb::Transaction& state = payment.state;
  if (request.trade_state() != "SUCCESS" && request.trade_state() != "PAYERROR") {
    return Refuse(400, "PARAM_ERROR", "trade_state must be SUCCESS or PAYERROR");
  }
  if (state.trade_state() != "NOTPAY" && state.trade_state() != "USERPAYING") {
    return Refuse(409, "NOT_PENDING", "the payment is no longer open");
  }
  state.set_trade_state(request.trade_state());
  if (request.trade_state() == "SUCCESS") {
    payment.paid_at = Now();
    state.set_transaction_id(fmt::format("42000{:023}", next_id_++));
    state.set_trade_state_desc("支付成功");
    state.set_bank_type("OTHERS");
    state.set_success_time(Rfc3339China(payment.paid_at));
    if (!state.has_payer()) state.mutable_payer()->set_openid("oSimulatedPayer000000000000");
    state.mutable_amount()->set_payer_total(state.amount().total());
    state.mutable_amount()->set_payer_currency("CNY");
    pb::Transaction stale = state;
    stale.set_trade_state("NOTPAY");
    stale.clear_success_time();
    Emit(payment.mchid, payment.notify_url, state.out_trade_no(), state.amount().total(),
         "TRANSACTION.SUCCESS", "transaction", "支付成功", ToJson(state), ToJson(stale));
  } else {
    state.set_trade_state_desc("支付失败，请重新下单支付");
  }
  return Json(state);
}

Reply Simulator::Impl::CompleteRefund(const pb::CompleteRefundRequest& request) {
  auto it = refunds_.find(Key(request.mchid(), request.out_refund_no()));
  if (it == refunds_.end()) return Refuse(404, "NOT_FOUND", "no such refund");
  RefundRecord& refund = it->second;
  pb::Refund& state = refund.state;
  const std::string& status = request.status();
  if (status != "SUCCESS" && status != "CLOSED" && status != "ABNORMAL") {
    return Refuse(400, "PARAM_ERROR", "status must be SUCCESS, CLOSED or ABNORMAL");
  }
  if (state.status() != "PROCESSING")
    return Refuse(409, "NOT_PENDING", "the refund is not processing");
  state.set_status(status);
  refund.done_at = Now();
  auto payment = payments_.find(Key(request.mchid(), state.out_trade_no()));
  if (status == "SUCCESS") {
    state.set_success_time(Rfc3339China(refund.done_at));
    if (payment != payments_.end()) payment->second.state.set_trade_state("REFUND");
  } else if (status == "CLOSED" && payment != payments_.end()) {
    // A closed refund gives its amount back to the refundable balance.
    payment->second.refunded -= state.amount().refund();
  }
  pb::RefundNotice notice;
  notice.set_mchid(request.mchid());
  notice.set_transaction_id(state.transaction_id());
  notice.set_out_trade_no(state.out_trade_no());
  notice.set_refund_id(state.refund_id());
  notice.set_out_refund_no(state.out_refund_no());
  notice.set_refund_status(status);
  notice.set_success_time(state.success_time());
  notice.set_user_received_account(state.user_received_account());
  *notice.mutable_amount() = state.amount();
  pb::RefundNotice stale = notice;
  stale.set_refund_status("PROCESSING");
  stale.clear_success_time();
  if (!refund.notify_url.empty()) {
    Emit(refund.mchid, refund.notify_url, state.out_refund_no(), state.amount().refund(),
         "REFUND." + status, "refund", status == "SUCCESS" ? "退款成功" : "退款异常",
         ToJson(notice), ToJson(stale));
  }
  return Json(state);
}

Reply Simulator::Impl::CompleteTransfer(const pb::CompleteTransferRequest& request) {
  auto it = transfers_.find(Key(request.mchid(), request.out_bill_no()));
  if (it == transfers_.end()) return Refuse(404, "NOT_FOUND", "no such transfer");
  Transfer& transfer = it->second;
  pb::TransferBill& state = transfer.state;
  if (request.state() != "SUCCESS" && request.state() != "FAIL") {
    return Refuse(400, "PARAM_ERROR", "state must be SUCCESS or FAIL");
  }
  if (state.state() == "SUCCESS" || state.state() == "FAIL" || state.state() == "CANCELLED") {
    return Refuse(409, "NOT_PENDING", "the transfer is final");
  }
  state.set_state(request.state());
  state.set_update_time(Rfc3339China(Now()));
  if (request.state() == "FAIL") {
    state.set_fail_reason(request.fail_reason().empty() ? "PAYEE_ACCOUNT_ABNORMAL"
                                                        : request.fail_reason());
  }
  pb::TransferBill notice = state;
  notice.clear_package_info();
  pb::TransferBill stale = notice;
  stale.set_state("PROCESSING");
  stale.clear_fail_reason();
  if (!transfer.notify_url.empty()) {
    Emit(transfer.mchid, transfer.notify_url, state.out_bill_no(), state.transfer_amount(),
         "MCHTRANSFER.BILL.FINISHED", "mch_payment", "商家转账单据终态通知", ToJson(notice),
         ToJson(stale));
  }
  return Json(state);
}

void Simulator::Impl::MaybeScheduleAuto(int kind, const std::string& mchid,
                                        const std::string& reference, std::int64_t amount) {
  if (auto_rule_.after_ms() == 0) return;
  if (auto_rule_.amount() != 0 && auto_rule_.amount() != amount) return;
  const bool succeed = auto_rule_.state().empty() || auto_rule_.state() == "SUCCESS";
  auto timer =
      std::make_shared<asio::steady_timer>(ioc_, std::chrono::milliseconds(auto_rule_.after_ms()));
  timer->async_wait([this, timer, kind, mchid, reference, succeed](boost::system::error_code ec) {
    if (ec) return;
    // Whatever is no longer open (closed, completed meanwhile) is left alone.
    if (kind == 0) {
      pb::CompletePaymentRequest request;
      request.set_mchid(mchid);
      request.set_out_trade_no(reference);
      request.set_trade_state(succeed ? "SUCCESS" : "PAYERROR");
      (void)CompletePayment(request);
    } else if (kind == 1) {
      pb::CompleteRefundRequest request;
      request.set_mchid(mchid);
      request.set_out_refund_no(reference);
      request.set_status(succeed ? "SUCCESS" : "CLOSED");
      (void)CompleteRefund(request);
    } else {
      pb::CompleteTransferRequest request;
      request.set_mchid(mchid);
      request.set_out_bill_no(reference);
      request.set_state(succeed ? "SUCCESS" : "FAIL");
      (void)CompleteTransfer(request);
    }
  });
}

std::optional<pb::FaultRule> Simulator::Impl::TakeCallFault(std::string_view operation,
                                                            const std::string& mchid,
                                                            const std::string& reference) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    const pb::FaultKind kind = it->kind();
    const bool call_fault =
        kind == pb::FAULT_KIND_TIMEOUT_BEFORE || kind == pb::FAULT_KIND_TIMEOUT_AFTER ||
        kind == pb::FAULT_KIND_HTTP_5XX || kind == pb::FAULT_KIND_MALFORMED_REPLY ||
        kind == pb::FAULT_KIND_BAD_SIGNATURE_REPLY || kind == pb::FAULT_KIND_REFUSE;
    if (!call_fault) continue;
    if (!it->operation().empty() && it->operation() != operation) continue;
    if (!it->mchid().empty() && it->mchid() != mchid) continue;
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

std::vector<pb::FaultRule> Simulator::Impl::TakeCallbackFaults(const std::string& mchid,
                                                               const std::string& reference,
                                                               std::int64_t amount) {
  std::vector<pb::FaultRule> taken;
  for (auto it = faults_.begin(); it != faults_.end();) {
    const pb::FaultKind kind = it->kind();
    const bool callback_fault =
        kind == pb::FAULT_KIND_DUPLICATE_CALLBACK || kind == pb::FAULT_KIND_DELAYED_CALLBACK ||
        kind == pb::FAULT_KIND_OUT_OF_ORDER_CALLBACK ||
        kind == pb::FAULT_KIND_BAD_SIGNATURE_CALLBACK || kind == pb::FAULT_KIND_SIGNTEST_CALLBACK ||
        kind == pb::FAULT_KIND_LOST_CALLBACK;
    const bool matches = callback_fault && (it->mchid().empty() || it->mchid() == mchid) &&
                         (it->reference().empty() || it->reference() == reference) &&
                         (it->amount() == 0 || it->amount() == amount);
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

void Simulator::Impl::Emit(const std::string& mchid, const std::string& notify_url,
                           const std::string& reference, std::int64_t amount,
                           std::string event_type, std::string original_type, std::string summary,
                           std::string plaintext, std::string stale_plaintext) {
  std::string body = Notification(mchid, event_type, original_type, summary, plaintext);
  std::string stale = Notification(mchid, event_type, original_type, summary, stale_plaintext);
  asio::co_spawn(ioc_,
                 Deliver(notify_url, TakeCallbackFaults(mchid, reference, amount), std::move(body),
                         std::move(stale)),
                 asio::detached);
}

asio::awaitable<void> Simulator::Impl::Deliver(std::string url, std::vector<pb::FaultRule> faults,
                                               std::string body, std::string stale_body) {
  std::uint32_t copies = 1;
  std::chrono::milliseconds delay{0};
  bool out_of_order = false;
  bool bad_signature = false;
  bool signtest = false;
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
      case pb::FAULT_KIND_SIGNTEST_CALLBACK:
        signtest = true;
        break;
      case pb::FAULT_KIND_LOST_CALLBACK:
        co_return;
      default:
        break;
    }
  }
  if (delay.count() > 0) {
    asio::steady_timer timer(ioc_, delay);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  for (std::uint32_t i = 0; i < copies; ++i)
    co_await DeliverOne(url, body, bad_signature, signtest);
  if (out_of_order) co_await DeliverOne(url, stale_body, bad_signature, signtest);
}

asio::awaitable<void> Simulator::Impl::DeliverOne(const std::string& url, const std::string& body,
                                                  bool bad_signature, bool signtest) {
  const std::uint32_t attempts =
      std::min<std::uint32_t>(options_.callback_attempts_max, std::size(kRetrySchedule) + 1);
  for (std::uint32_t attempt = 1; attempt <= attempts; ++attempt) {
    // Each delivery is signed afresh (new timestamp and nonce); the body, and so the id, stays.
    http::HttpsRequest request;
    request.url = url;
    request.headers = SignAsWechat(body, bad_signature);
    if (signtest) {
      for (auto& [name, value] : request.headers) {
        if (name == "Wechatpay-Signature") value = std::string(kSignTestPrefix) + value;
      }
    }
    request.body = body;
    request.deadlines.response_ms = std::chrono::milliseconds(5'000);
    auto reply = co_await callback_client_->Send(std::move(request));
    const bool acked =
        reply && (reply.assume_value().status == 200 || reply.assume_value().status == 204);
    if (acked) {
      stats_.set_callbacks_delivered(stats_.callbacks_delivered() + 1);
      co_return;
    }
    stats_.set_callbacks_failed(stats_.callbacks_failed() + 1);
    if (attempt == attempts) break;
    const auto pause = std::chrono::milliseconds(static_cast<std::int64_t>(
        kRetrySchedule[attempt - 1] * 1000.0 * options_.callback_time_scale));
    asio::steady_timer timer(ioc_, pause);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

Reply Simulator::Impl::HandleControl(std::string_view path, const Request& request) {
  if (options_.control_token.empty()) return Refuse(404, "NOT_FOUND", "control API disabled");
  const std::string expected = "Bearer " + std::string(options_.control_token.reveal());
  const std::string_view presented = request[bhttp::field::authorization];
  if (presented.size() != expected.size() ||
      CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) != 0) {
    return Refuse(401, "UNAUTHENTICATED", "control token required");
  }
  const std::string& body = request.body();
  if (path == "/control/v1/payments/complete") {
    pb::CompletePaymentRequest message;
    if (!FromJsonStrict(body, &message)) return Refuse(400, "PARAM_ERROR", "bad body");
    return CompletePayment(message);
  }
  if (path == "/control/v1/refunds/complete") {
    pb::CompleteRefundRequest message;
    if (!FromJsonStrict(body, &message)) return Refuse(400, "PARAM_ERROR", "bad body");
    return CompleteRefund(message);
  }
  if (path == "/control/v1/transfers/complete") {
    pb::CompleteTransferRequest message;
    if (!FromJsonStrict(body, &message)) return Refuse(400, "PARAM_ERROR", "bad body");
    return CompleteTransfer(message);
  }
  if (path == "/control/v1/faults") {
    pb::FaultRule message;
    if (!FromJsonStrict(body, &message) || message.kind() == pb::FAULT_KIND_UNSPECIFIED) {
      return Refuse(400, "PARAM_ERROR", "bad fault rule");
    }
    faults_.push_back(message);
    return Json(message);
  }
  if (path == "/control/v1/faults/clear") {
    faults_.clear();
    return Reply{200, "{}", std::nullopt, true, "application/json"};
  }
  if (path == "/control/v1/auto") {
    pb::AutoRule message;
    if (!FromJsonStrict(body, &message)) return Refuse(400, "PARAM_ERROR", "bad auto rule");
    auto_rule_ = message;
    return Json(message);
  }
  if (path == "/control/v1/bills/edit") {
    pb::BillEdit message;
    if (!FromJsonStrict(body, &message)) return Refuse(400, "PARAM_ERROR", "bad bill edit");
    return AddBillEdit(std::move(message));
  }
  if (path == "/control/v1/bills/clear") {
    bill_edits_.clear();
    return Reply{200, "{}", std::nullopt, true, "application/json"};
  }
  if (path == "/control/v1/stats") return Json(stats_);
  return Refuse(404, "NOT_FOUND", "no such control endpoint");
}

Result<std::unique_ptr<Simulator>, std::string> Simulator::Create(SimulatorOptions options) {
  if (options.merchants.empty()) return std::string("no merchants");
  auto impl = std::make_unique<Impl>(std::move(options));
  if (auto ok = impl->Init(); !ok) return ok.error();
  return std::unique_ptr<Simulator>(new Simulator(std::move(impl)));
}

Simulator::Simulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Simulator::~Simulator() = default;
std::uint16_t Simulator::port() const { return impl_->port(); }
void Simulator::Run() { impl_->Run(); }
void Simulator::Stop() { impl_->Stop(); }

}  // namespace paygate::adapters::wechatpay
