#include "adapters/common/owned_io_context.h"
#include "adapters/unionpay/simulator/simulator.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdio>
#include <optional>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "adapters/common/archive.h"
#include "adapters/common/codec.h"
#include "adapters/common/money.h"
#include "adapters/http/beast.h"
#include "adapters/http/https_client.h"
#include "adapters/unionpay/bill.h"
#include "adapters/unionpay/codec.h"
#include "adapters/unionpay/simulator/unionpay_sim.pb.h"
#include "keys/secret_file.h"

namespace paygate::adapters::unionpay {

namespace ar = adapters::archive;
namespace {

using namespace net;  // NOLINT(google-build-using-namespace): asio/beast/ssl aliases only.
namespace pb = paygate::adapters::unionpay::sim::v1;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;
using Clock = std::chrono::system_clock;

constexpr std::chrono::milliseconds kHoldDefault{60'000};
constexpr std::chrono::seconds kIoTimeout{10};
// UnionPay's notification schedule: pauses of 1, 2, 4 and 5 units between the five sends.
constexpr int kRetryUnits[] = {1, 2, 4, 5};

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

bool FromJson(std::string_view json, google::protobuf::Message* message) {
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

std::string_view Get(const Fields& fields, std::string_view name) {
  auto it = fields.find(std::string(name));
  return it == fields.end() ? std::string_view() : std::string_view(it->second);
}

bool ValidOrderId(std::string_view id) {
  if (id.size() < 8 || id.size() > 32) return false;
  for (char c : id) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!ok) return false;
  }
  return true;
}

// What a handler decided: a reply (form fields to sign, an HTML page, or JSON), or for the timeout
// faults, to hold the connection unanswered.
struct Reply {
  unsigned status = 200;
  std::optional<Fields> fields;  // signed UnionPay reply
  std::string body;              // otherwise sent as is
  std::string content_type = "application/json";
  std::optional<std::chrono::milliseconds> hold;
  bool malformed = false;
  bool bad_signature = false;
};

Reply Json(unsigned status, const google::protobuf::Message& message) {
  Reply reply;
  reply.status = status;
  reply.body = ToJson(message);
  return reply;
}

Reply JsonError(unsigned status, std::string code, std::string message) {
  pb::ErrorReply error;
  error.set_code(std::move(code));
  error.set_message(std::move(message));
  return Json(status, error);
}

Reply Html(unsigned status, std::string text) {
  Reply reply;
  reply.status = status;
  reply.content_type = "text/html;charset=UTF-8";
  reply.body = fmt::format(
      "<!DOCTYPE html><html><head><meta charset=\"UTF-8\"></head><body>{}"
      "</body></html>\n",
      text);
  return reply;
}

// The fields every reply echoes from its request.
Fields Echo(const Fields& request) {
  Fields out;
  for (const char* name : {"version", "encoding", "bizType", "txnType", "txnSubType", "accessType",
                           "merId", "orderId", "txnTime", "reqReserved"}) {
    if (auto it = request.find(name); it != request.end()) out[name] = it->second;
  }
  return out;
}

Reply Answer(const Fields& request, std::string_view code, std::string_view message) {
  Reply reply;
  reply.fields = Echo(request);
  (*reply.fields)["respCode"] = std::string(code);
  (*reply.fields)["respMsg"] = std::string(message);
  reply.content_type = "text/plain;charset=UTF-8";
  return reply;
}

void CorruptSignature(Fields& fields) {
  auto raw = codec::Base64Decode(fields["signature"]);
  std::string bytes = raw ? *raw : std::string(1, '\0');
  bytes[0] = static_cast<char>(bytes[0] ^ 0x5a);
  fields["signature"] = codec::Base64Encode(bytes);
}

std::string Key(std::string_view mer_id, std::string_view order_id, std::string_view txn_time) {
  return fmt::format("{}\n{}\n{}", mer_id, order_id, txn_time);
}

enum class State { kPending, kSucceeded, kFailed };

// A consume (txnType 01) or refund (txnType 04) UnionPay knows.
struct Txn {
  std::string txn_type;
  std::string mer_id;
  std::string order_id;
  std::string txn_time;
  std::string back_url;
  std::string pay_timeout;  // consumes; empty: none
  std::int64_t amount = 0;
  std::string query_id;
  std::string orig_query_id;  // refunds
  std::string tn;             // app consumes
  State state = State::kPending;
  std::string resp_code;      // failed: why
  std::int64_t refunded = 0;  // consumes: pending and succeeded refunds
  std::string settle_date;    // MMDD once completed
  std::string trace_no;
  std::string trace_time;     // MMDDhhmmss
  std::string complete_time;  // yyyyMMddHHmmss once completed
};

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
    auto_rule_.set_succeed(options_.auto_succeed);
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
  Reply Handle(const Request& request);
  Reply HandleControl(std::string_view path, const Request& request);

  Reply FrontConsume(const Fields& request);
  Reply AppConsume(const Fields& request);
  Reply Query(const Fields& request);
  Reply Refund(const Fields& request);
  Reply File(const Fields& request);
  // Shared validation of consume requests: a reply when invalid.
  std::optional<Reply> CheckConsume(const Fields& request, std::string_view channel);
  Txn NewConsume(const Fields& request);

  Reply CompletePayment(const pb::CompletePaymentRequest& request);
  Reply CompleteRefund(const pb::CompleteRefundRequest& request);
  Result<void, std::string> Complete(Txn& txn, bool succeed, std::string resp_code);
  void MaybeScheduleAuto(const std::string& key, std::int64_t amount);

  std::optional<pb::FaultRule> TakeCallFault(std::string_view operation, const std::string& mer_id,
                                             const std::string& order_id, std::int64_t amount);
  std::vector<pb::FaultRule> TakeCallbackFaults(const Txn& txn);
  std::string NewQueryId();

  void Notify(const Txn& txn);
  Fields NotifyFields(const Txn& txn, std::string_view resp_code) const;
  asio::awaitable<void> Deliver(std::string url, std::vector<pb::FaultRule> faults, Fields terminal,
                                Fields stale);
  asio::awaitable<void> DeliverOne(const std::string& url, Fields fields, bool bad_signature);

  SimulatorOptions options_;
  OwnedIoContext ioc_;  // First destroyed of its handlers: see owned_io_context.h.
  ssl::context ssl_;
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  std::shared_ptr<http::HttpsClient> callback_client_;
  std::optional<Signer> signer_;
  std::map<std::string, crypto::Certificate> merchants_;

  // By Key(merId, orderId, txnTime); the other maps point into it.
  std::unordered_map<std::string, Txn> txns_;
  std::unordered_map<std::string, std::string> by_order_;     // merId\norderId -> latest key
  std::unordered_map<std::string, std::string> by_query_id_;  // queryId -> key
  std::vector<pb::FaultRule> faults_;
  pb::AutoRule auto_rule_;
  pb::Stats stats_;
  std::uint64_t next_id_ = 1;
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
  auto signer = LoadSigner(options_.sign_pfx_file, options_.sign_pfx_password.reveal());
  if (!signer) return "UnionPay signing store: " + signer.error();
  signer_ = std::move(signer).value();
  for (const auto& [mer_id, file] : options_.merchants) {
    auto cert = crypto::Certificate::FromFile(file);
    if (!cert)
      return fmt::format("merchant {} certificate {}: {}", mer_id, file, cert.error().message);
    merchants_.emplace(mer_id, cert.value());
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
      beast::get_lowest_layer(stream).expires_never();
      asio::steady_timer timer(ioc_, *reply.hold);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    if (reply.fields) {
      // UnionPay signs every reply, errors included, with its own key.
      (void)SignAsUnionPay(*signer_, *reply.fields);
      if (reply.bad_signature) CorruptSignature(*reply.fields);
      reply.body = BuildReply(*reply.fields);
      if (reply.malformed) reply.body = reply.body.substr(0, reply.body.size() / 2) + "&x={";
    }
    Response response{static_cast<bhttp::status>(reply.status), request.version()};
    response.set(bhttp::field::server, "paygate-unionpay-sim");
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

std::string Simulator::Impl::NewQueryId() {
  // 21 digits, like UnionPay's: the Beijing time and a sequence.
  return fmt::format("{}{:07}", BeijingTime(Clock::now()), next_id_++ % 10'000'000);
}

Reply Simulator::Impl::Handle(const Request& request) {
  const std::string path(request.target().substr(0, request.target().find('?')));
  if (path.rfind("/control/", 0) == 0) return HandleControl(path, request);
  std::string operation;
  if (path == "/gateway/api/frontTransReq.do") {
    operation = "front_consume";
  } else if (path == "/gateway/api/appTransReq.do") {
    operation = "app_consume";
  } else if (path == "/gateway/api/queryTrans.do") {
    operation = "query";
  } else if (path == "/gateway/api/backTransReq.do") {
    operation = "refund";
  } else if (path == "/gateway/api/fileTransReq.do") {
    operation = "file";
  } else {
    return Html(404, "no such page");
  }
  if (request.method() != bhttp::verb::post) return Html(405, "POST only");
  stats_.set_calls_received(stats_.calls_received() + 1);

  auto parsed = ParseNotifyForm(request.body());
  if (!parsed) {
    if (operation == "front_consume") return Html(400, "bad form");
    return Answer({}, "10", "报文格式错误 " + parsed.error());
  }
  const Fields& fields = parsed.value();
  const bool front = operation == "front_consume";
  // Authentication first: nothing is looked at or executed for a request that does not verify.
  const std::string mer_id(Get(fields, "merId"));
  auto merchant = merchants_.find(mer_id);
  if (merchant == merchants_.end()) {
    return front ? Html(400, "respCode=31 商户状态不正确") : Answer(fields, "31", "商户状态不正确");
  }
  if (auto verified = VerifyMerchantSigned(fields, merchant->second); !verified) {
    return front ? Html(400, "respCode=11 验证签名失败") : Answer(fields, "11", "验证签名失败");
  }
  if (Get(fields, "version") != kVersion) {
    return front ? Html(400, "respCode=10 version") : Answer(fields, "10", "报文格式错误 version");
  }
  if (front) return FrontConsume(fields);

  std::string order_id(Get(fields, "orderId"));
  const std::int64_t amount = money::ParseInteger(Get(fields, "txnAmt")).value_or(0);
  std::optional<pb::FaultRule> fault = TakeCallFault(operation, mer_id, order_id, amount);
  if (!fault && operation == "refund") {
    // Refund faults may name the payment being refunded.
    if (auto original = by_query_id_.find(std::string(Get(fields, "origQryId")));
        original != by_query_id_.end()) {
      fault = TakeCallFault(operation, mer_id, txns_.at(original->second).order_id, amount);
    }
  }
  const pb::FaultKind kind = fault ? fault->kind() : pb::FAULT_KIND_UNSPECIFIED;
  const auto hold =
      fault && fault->delay_ms() != 0 ? std::chrono::milliseconds(fault->delay_ms()) : kHoldDefault;
  if (kind == pb::FAULT_KIND_TIMEOUT_BEFORE) {
    Reply reply;
    reply.hold = hold;
    return reply;
  }
  if (kind == pb::FAULT_KIND_HTTP_5XX) return Html(500, "internal error");

  Reply reply;
  if (operation == "app_consume") {
    reply = AppConsume(fields);
  } else if (operation == "query") {
    reply = Query(fields);
  } else if (operation == "refund") {
    reply = Refund(fields);
  } else {
    reply = File(fields);
  }
  stats_.set_calls_executed(stats_.calls_executed() + 1);
  if (kind == pb::FAULT_KIND_TIMEOUT_AFTER) {
    Reply held;
    held.hold = hold;
    return held;
  }
  reply.malformed = kind == pb::FAULT_KIND_MALFORMED_REPLY;
  reply.bad_signature = kind == pb::FAULT_KIND_BAD_SIGNATURE_REPLY;
  return reply;
}

std::optional<Reply> Simulator::Impl::CheckConsume(const Fields& request,
                                                   std::string_view channel) {
  if (Get(request, "txnType") != "01" || Get(request, "txnSubType") != "01" ||
      Get(request, "bizType") != "000201" || Get(request, "channelType") != channel ||
      Get(request, "accessType") != "0") {
    return Answer(request, "10", "报文格式错误 transaction type");
  }
  if (!ValidOrderId(Get(request, "orderId"))) return Answer(request, "10", "报文格式错误 orderId");
  if (!ParseBeijingTime(Get(request, "txnTime"))) {
    return Answer(request, "10", "报文格式错误 txnTime");
  }
  if (Get(request, "currencyCode") != kCurrencyCny) {
    return Answer(request, "10", "报文格式错误 currencyCode");
  }
  const auto amount = money::ParseInteger(Get(request, "txnAmt"));
  if (!amount || *amount <= 0) return Answer(request, "10", "报文格式错误 txnAmt");
  if (!http::ParseHttpsUrl(Get(request, "backUrl"))) {
    return Answer(request, "13", "报文交易要素缺失 backUrl");
  }
  const std::string_view pay_timeout = Get(request, "payTimeout");
  if (!pay_timeout.empty()) {
    const auto deadline = ParseBeijingTime(pay_timeout);
    if (!deadline) return Answer(request, "10", "报文格式错误 payTimeout");
    if (*deadline <= Clock::now()) return Answer(request, "39", "交易不在受理时间范围内");
  }
  return std::nullopt;
}

Txn Simulator::Impl::NewConsume(const Fields& request) {
  Txn txn;
  txn.txn_type = "01";
  txn.mer_id = std::string(Get(request, "merId"));
  txn.order_id = std::string(Get(request, "orderId"));
  txn.txn_time = std::string(Get(request, "txnTime"));
  txn.back_url = std::string(Get(request, "backUrl"));
  txn.pay_timeout = std::string(Get(request, "payTimeout"));
  txn.amount = *money::ParseInteger(Get(request, "txnAmt"));
  txn.query_id = NewQueryId();
  return txn;
}

Reply Simulator::Impl::FrontConsume(const Fields& request) {
  if (auto invalid = CheckConsume(request, "07")) {
    return Html(400, fmt::format("respCode={} {}", (*invalid->fields)["respCode"],
                                 (*invalid->fields)["respMsg"]));
  }
  const std::string key =
      Key(Get(request, "merId"), Get(request, "orderId"), Get(request, "txnTime"));
  auto existing = txns_.find(key);
  if (existing == txns_.end()) {
    Txn txn = NewConsume(request);
    by_order_[txn.mer_id + "\n" + txn.order_id] = key;
    by_query_id_[txn.query_id] = key;
    const std::int64_t amount = txn.amount;
    existing = txns_.emplace(key, std::move(txn)).first;
    stats_.set_orders(stats_.orders() + 1);
    MaybeScheduleAuto(key, amount);
  } else if (existing->second.amount != money::ParseInteger(Get(request, "txnAmt")).value_or(0)) {
    return Html(400, "respCode=12 重复交易");
  }
  // The payer's checkout page: the control API (or auto mode) plays the payer.
  return Html(200, fmt::format("<h1>UnionPay simulator checkout</h1><p>merId {} orderId {} "
                               "txnAmt {}</p>",
                               existing->second.mer_id, existing->second.order_id,
                               existing->second.amount));
}

Reply Simulator::Impl::AppConsume(const Fields& request) {
  if (auto invalid = CheckConsume(request, "08")) return *invalid;
  const std::string key =
      Key(Get(request, "merId"), Get(request, "orderId"), Get(request, "txnTime"));
  if (txns_.count(key) != 0) return Answer(request, "12", "重复交易");
  Txn txn = NewConsume(request);
  txn.tn = fmt::format("{:021}", 795'707'271'060'389'032ULL + next_id_++);
  Reply reply = Answer(request, "00", "成功[0000000]");
  (*reply.fields)["tn"] = txn.tn;
  by_order_[txn.mer_id + "\n" + txn.order_id] = key;
  by_query_id_[txn.query_id] = key;
  const std::int64_t amount = txn.amount;
  txns_.emplace(key, std::move(txn));
  stats_.set_orders(stats_.orders() + 1);
  MaybeScheduleAuto(key, amount);
  return reply;
}

Reply Simulator::Impl::Query(const Fields& request) {
  if (Get(request, "txnType") != "00" || Get(request, "txnSubType") != "00") {
    return Answer(request, "10", "报文格式错误 transaction type");
  }
  auto it =
      txns_.find(Key(Get(request, "merId"), Get(request, "orderId"), Get(request, "txnTime")));
  // A consume nobody has paid yet is no transaction to UnionPay.
  if (it == txns_.end() || (it->second.txn_type == "01" && it->second.state == State::kPending)) {
    return Answer(request, "34", "查无此交易");
  }
  const Txn& txn = it->second;
  Reply reply = Answer(request, "00", "成功[0000000]");
  Fields& out = *reply.fields;
  out["txnType"] = txn.txn_type;
  out["txnSubType"] = txn.txn_type == "01" ? "01" : "00";
  out["bizType"] = "000201";
  out["queryId"] = txn.query_id;
  out["txnAmt"] = std::to_string(txn.amount);
  out["currencyCode"] = std::string(kCurrencyCny);
  if (!txn.orig_query_id.empty()) out["origQryId"] = txn.orig_query_id;
  switch (txn.state) {
    case State::kPending:
      out["origRespCode"] = "05";
      out["origRespMsg"] = "交易已受理，请稍后查询交易结果";
      break;
    case State::kSucceeded:
      out["origRespCode"] = "00";
      out["origRespMsg"] = "成功[0000000]";
      out["settleAmt"] = std::to_string(txn.amount);
      out["settleCurrencyCode"] = std::string(kCurrencyCny);
      out["settleDate"] = txn.settle_date;
      out["traceNo"] = txn.trace_no;
      out["traceTime"] = txn.trace_time;
      break;
    case State::kFailed:
      out["origRespCode"] = txn.resp_code;
      out["origRespMsg"] = "交易失败";
      break;
  }
  return reply;
}

Reply Simulator::Impl::Refund(const Fields& request) {
  if (Get(request, "txnType") == "31") return Answer(request, "32", "无此交易权限 (revoke)");
  if (Get(request, "txnType") != "04" || Get(request, "txnSubType") != "00" ||
      Get(request, "accessType") != "0") {
    return Answer(request, "10", "报文格式错误 transaction type");
  }
  if (!ValidOrderId(Get(request, "orderId")) || !ParseBeijingTime(Get(request, "txnTime"))) {
    return Answer(request, "10", "报文格式错误 orderId/txnTime");
  }
  const auto amount = money::ParseInteger(Get(request, "txnAmt"));
  if (!amount || *amount <= 0) return Answer(request, "10", "报文格式错误 txnAmt");
  if (!http::ParseHttpsUrl(Get(request, "backUrl"))) {
    return Answer(request, "13", "报文交易要素缺失 backUrl");
  }
  const std::string key =
      Key(Get(request, "merId"), Get(request, "orderId"), Get(request, "txnTime"));
  if (txns_.count(key) != 0) return Answer(request, "12", "重复交易");
  auto original = by_query_id_.find(std::string(Get(request, "origQryId")));
  if (original == by_query_id_.end()) return Answer(request, "35", "原交易不存在或状态不正确");
  Txn& payment = txns_.at(original->second);
  if (payment.mer_id != Get(request, "merId") || payment.txn_type != "01" ||
      payment.state != State::kSucceeded) {
    return Answer(request, "35", "原交易不存在或状态不正确");
  }
  if (*amount > payment.amount - payment.refunded) {
    return Answer(
        request, "36",
        fmt::format("与原交易信息不符: refundable {}", payment.amount - payment.refunded));
  }
  payment.refunded += *amount;
  Txn refund;
  refund.txn_type = "04";
  refund.mer_id = std::string(Get(request, "merId"));
  refund.order_id = std::string(Get(request, "orderId"));
  refund.txn_time = std::string(Get(request, "txnTime"));
  refund.back_url = std::string(Get(request, "backUrl"));
  refund.amount = *amount;
  refund.orig_query_id = payment.query_id;
  refund.query_id = NewQueryId();
  Reply reply = Answer(request, "00", "成功[0000000]");
  (*reply.fields)["queryId"] = refund.query_id;
  (*reply.fields)["origQryId"] = refund.orig_query_id;
  (*reply.fields)["txnAmt"] = std::to_string(refund.amount);
  by_order_[refund.mer_id + "\n" + refund.order_id] = key;
  by_query_id_[refund.query_id] = key;
  txns_.emplace(key, std::move(refund));
  stats_.set_refunds(stats_.refunds() + 1);
  MaybeScheduleAuto(key, *amount);
  return reply;
}

Reply Simulator::Impl::File(const Fields& request) {
  const std::string_view settle_date = Get(request, "settleDate");
  if (Get(request, "txnType") != "76" || Get(request, "fileType") != "00" ||
      settle_date.size() != 4 || !money::ParseInteger(settle_date)) {
    return Answer(request, "10", "报文格式错误 settleDate");
  }
  const std::string mer_id(Get(request, "merId"));
  std::string inn;
  for (const auto& [key, txn] : txns_) {
    if (txn.mer_id != mer_id || txn.state != State::kSucceeded || txn.settle_date != settle_date) {
      continue;
    }
    InnRow row{
        {"tradeNo", txn.txn_type == "01" ? "S22" : "S30"},
        {"acqInsCode", "48020000"},
        {"sendInsCode", "48020000"},
        {"traceNo", txn.trace_no},
        {"txnTime", txn.complete_time.substr(4, 10)},
        {"payCardNo", "6216261000000000018"},
        {"txnAmt", std::to_string(txn.amount)},
        {"queryId", txn.query_id},
        {"orderId", txn.order_id},
        // The simulator's fee: 0.6% rounded down, returned on refunds.
        {"merCharge", fmt::format("{}{}", txn.txn_type == "01" ? 'D' : 'C', txn.amount * 6 / 1000)},
        {"settleAmt", std::to_string(txn.amount)},
        {"txnType", txn.txn_type},
        {"txnSubType", txn.txn_type == "01" ? "01" : "00"},
        {"bizType", "000201"},
        {"origQryId", txn.orig_query_id},
        {"merId", txn.mer_id}};
    auto line = FormatInnRecord(row, /*separators=*/true);
    if (line) inn += *line + "\r\n";
  }
  // The year of MMDD: this year's, unless that date is still ahead (then last year's).
  const std::string today = BeijingTime(Clock::now());
  int year = std::stoi(today.substr(0, 4));
  if (std::string(settle_date) > today.substr(4, 4)) --year;
  const std::string date = fmt::format("{:04}{}", year, settle_date);
  const std::string archive =
      ar::WriteZip({{fmt::format("INN{}88ZM_{}", date.substr(2), mer_id), inn},
                  {fmt::format("RD{}88ZM_{}", date.substr(2), mer_id), "reserved\r\n"}}).value();
  Reply reply = Answer(request, "00", "成功[0000000]");
  (*reply.fields)["settleDate"] = std::string(settle_date);
  (*reply.fields)["fileName"] = fmt::format("{}_{}.zip", mer_id, date);
  (*reply.fields)["fileContent"] = codec::Base64Encode(ar::ZlibDeflate(archive));
  return reply;
}

Result<void, std::string> Simulator::Impl::Complete(Txn& txn, bool succeed, std::string resp_code) {
  // A consume whose payer failed may be tried again (another card) until payTimeout.
  const bool retry = txn.txn_type == "01" && txn.state == State::kFailed;
  if (txn.state != State::kPending && !retry) return std::string("not_pending");
  const auto now = Clock::now();
  if (!txn.pay_timeout.empty() && *ParseBeijingTime(txn.pay_timeout) <= now) {
    // UnionPay takes no payment after payTimeout.
    return std::string("expired");
  }
  txn.state = succeed ? State::kSucceeded : State::kFailed;
  txn.resp_code = succeed ? "00" : (resp_code.empty() ? "01" : std::move(resp_code));
  txn.complete_time = BeijingTime(now);
  txn.settle_date = txn.complete_time.substr(4, 4);
  txn.trace_time = txn.complete_time.substr(4, 10);
  txn.trace_no = fmt::format("{:06}", next_id_++ % 1'000'000);
  if (!succeed && txn.txn_type == "04") {
    // A failed refund frees its amount.
    if (auto original = by_query_id_.find(txn.orig_query_id); original != by_query_id_.end()) {
      txns_.at(original->second).refunded -= txn.amount;
    }
  }
  Notify(txn);
  return outcome::success();
}

Reply Simulator::Impl::CompletePayment(const pb::CompletePaymentRequest& request) {
  auto key = by_order_.find(request.mer_id() + "\n" + request.order_id());
  if (key == by_order_.end() || txns_.at(key->second).txn_type != "01") {
    return JsonError(404, "not_found", "no such order");
  }
  Txn& txn = txns_.at(key->second);
  if (auto done = Complete(txn, request.succeed(), request.resp_code()); !done) {
    return JsonError(409, done.error(), "the order cannot complete");
  }
  return Json(200, request);
}

Reply Simulator::Impl::CompleteRefund(const pb::CompleteRefundRequest& request) {
  auto key = by_order_.find(request.mer_id() + "\n" + request.order_id());
  if (key == by_order_.end() || txns_.at(key->second).txn_type != "04") {
    return JsonError(404, "not_found", "no such refund");
  }
  Txn& txn = txns_.at(key->second);
  if (auto done = Complete(txn, request.succeed(), request.resp_code()); !done) {
    return JsonError(409, done.error(), "the refund cannot complete");
  }
  return Json(200, request);
}

void Simulator::Impl::MaybeScheduleAuto(const std::string& key, std::int64_t amount) {
  if (auto_rule_.after_ms() == 0) return;
  if (auto_rule_.amount_minor() != 0 && auto_rule_.amount_minor() != amount) return;
  const bool succeed = auto_rule_.succeed();
  auto timer =
      std::make_shared<asio::steady_timer>(ioc_, std::chrono::milliseconds(auto_rule_.after_ms()));
  timer->async_wait([this, timer, key, succeed](boost::system::error_code ec) {
    if (ec) return;
    auto it = txns_.find(key);
    if (it != txns_.end()) (void)Complete(it->second, succeed, "");
  });
}

std::optional<pb::FaultRule> Simulator::Impl::TakeCallFault(std::string_view operation,
                                                            const std::string& mer_id,
                                                            const std::string& order_id,
                                                            std::int64_t amount) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    const pb::FaultKind kind = it->kind();
    const bool call_fault =
        kind == pb::FAULT_KIND_TIMEOUT_BEFORE || kind == pb::FAULT_KIND_TIMEOUT_AFTER ||
        kind == pb::FAULT_KIND_HTTP_5XX || kind == pb::FAULT_KIND_MALFORMED_REPLY ||
        kind == pb::FAULT_KIND_BAD_SIGNATURE_REPLY;
    if (!call_fault) continue;
    if (!it->operation().empty() && it->operation() != operation) continue;
    if (!it->mer_id().empty() && it->mer_id() != mer_id) continue;
    if (!it->order_id().empty() && it->order_id() != order_id) continue;
    if (it->amount_minor() != 0 && it->amount_minor() != amount) continue;
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

std::vector<pb::FaultRule> Simulator::Impl::TakeCallbackFaults(const Txn& txn) {
  std::vector<pb::FaultRule> taken;
  for (auto it = faults_.begin(); it != faults_.end();) {
    const pb::FaultKind kind = it->kind();
    const bool callback_fault = kind == pb::FAULT_KIND_DUPLICATE_CALLBACK ||
                                kind == pb::FAULT_KIND_DELAYED_CALLBACK ||
                                kind == pb::FAULT_KIND_OUT_OF_ORDER_CALLBACK ||
                                kind == pb::FAULT_KIND_BAD_SIGNATURE_CALLBACK;
    const bool matches = callback_fault && (it->mer_id().empty() || it->mer_id() == txn.mer_id) &&
                         (it->order_id().empty() || it->order_id() == txn.order_id) &&
                         (it->amount_minor() == 0 || it->amount_minor() == txn.amount);
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

Fields Simulator::Impl::NotifyFields(const Txn& txn, std::string_view resp_code) const {
  Fields fields{
      {"version", std::string(kVersion)},
      {"encoding", "UTF-8"},
      {"bizType", "000201"},
      {"txnType", txn.txn_type},
      {"txnSubType", txn.txn_type == "01" ? "01" : "00"},
      {"accessType", "0"},
      {"merId", txn.mer_id},
      {"orderId", txn.order_id},
      {"txnTime", txn.txn_time},
      {"txnAmt", std::to_string(txn.amount)},
      {"currencyCode", std::string(kCurrencyCny)},
      {"queryId", txn.query_id},
      {"respCode", std::string(resp_code)},
      {"respMsg", resp_code == "00" ? "成功[0000000]" : "交易失败"},
      {"traceNo", txn.trace_no},
      {"traceTime", txn.trace_time},
  };
  if (resp_code == "00") {
    fields["settleAmt"] = std::to_string(txn.amount);
    fields["settleCurrencyCode"] = std::string(kCurrencyCny);
    fields["settleDate"] = txn.settle_date;
  }
  if (!txn.orig_query_id.empty()) fields["origQryId"] = txn.orig_query_id;
  return fields;
}

void Simulator::Impl::Notify(const Txn& txn) {
  asio::co_spawn(ioc_,
                 Deliver(txn.back_url, TakeCallbackFaults(txn), NotifyFields(txn, txn.resp_code),
                         NotifyFields(txn, "05")),
                 asio::detached);
}

asio::awaitable<void> Simulator::Impl::Deliver(std::string url, std::vector<pb::FaultRule> faults,
                                               Fields terminal, Fields stale) {
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

asio::awaitable<void> Simulator::Impl::DeliverOne(const std::string& url, Fields fields,
                                                  bool bad_signature) {
  // Signed once: a redelivery is the same message.
  (void)SignAsUnionPay(*signer_, fields);
  if (bad_signature) CorruptSignature(fields);
  const std::string body = BuildForm(fields);
  for (std::uint32_t attempt = 1; attempt <= options_.callback_attempts_max; ++attempt) {
    http::HttpsRequest request;
    request.url = url;
    request.content_type = "application/x-www-form-urlencoded;charset=UTF-8";
    request.body = body;
    // UnionPay waits 10 s for the merchant's answer.
    request.deadlines.response_ms = std::chrono::milliseconds(10'000);
    auto reply = co_await callback_client_->Send(std::move(request));
    // Only HTTP 200 counts as received.
    if (reply && reply.assume_value().status == 200) {
      stats_.set_callbacks_delivered(stats_.callbacks_delivered() + 1);
      co_return;
    }
    stats_.set_callbacks_failed(stats_.callbacks_failed() + 1);
    std::fprintf(stderr, "paygate-unionpay-sim: notification to %s attempt %u failed: %s\n",
                 url.c_str(), attempt,
                 reply ? fmt::format("http {}", reply.assume_value().status).c_str()
                       : reply.assume_error().detail.c_str());
    if (attempt == options_.callback_attempts_max) break;
    const std::size_t index = std::min<std::size_t>(attempt - 1, std::size(kRetryUnits) - 1);
    asio::steady_timer timer(ioc_, options_.callback_retry_unit_ms * kRetryUnits[index]);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

Reply Simulator::Impl::HandleControl(std::string_view path, const Request& request) {
  if (options_.control_token.empty()) {
    return JsonError(404, "not_found", "control API disabled");
  }
  const std::string expected = "Bearer " + std::string(options_.control_token.reveal());
  const std::string_view presented = request[bhttp::field::authorization];
  if (presented.size() != expected.size() ||
      CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) != 0) {
    return JsonError(401, "unauthenticated", "control token required");
  }
  if (request.method() != bhttp::verb::post) return JsonError(405, "bad_request", "POST only");
  const std::string& body = request.body();
  if (path == "/control/v1/payments/complete") {
    pb::CompletePaymentRequest message;
    if (!FromJson(body, &message)) return JsonError(400, "bad_request", "bad body");
    return CompletePayment(message);
  }
  if (path == "/control/v1/refunds/complete") {
    pb::CompleteRefundRequest message;
    if (!FromJson(body, &message)) return JsonError(400, "bad_request", "bad body");
    return CompleteRefund(message);
  }
  if (path == "/control/v1/faults") {
    pb::FaultRule message;
    if (!FromJson(body, &message) || message.kind() == pb::FAULT_KIND_UNSPECIFIED) {
      return JsonError(400, "bad_request", "bad fault rule");
    }
    faults_.push_back(message);
    return Json(200, message);
  }
  if (path == "/control/v1/faults/clear") {
    faults_.clear();
    Reply reply;
    reply.body = "{}";
    return reply;
  }
  if (path == "/control/v1/auto") {
    pb::AutoRule message;
    if (!FromJson(body, &message)) return JsonError(400, "bad_request", "bad auto rule");
    auto_rule_ = message;
    return Json(200, message);
  }
  if (path == "/control/v1/stats") return Json(200, stats_);
  return JsonError(404, "not_found", "no such control endpoint");
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

}  // namespace paygate::adapters::unionpay
