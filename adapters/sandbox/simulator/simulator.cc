#include "adapters/common/owned_io_context.h"
#include "adapters/sandbox/simulator/simulator.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdio>
#include <deque>
#include <optional>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "adapters/http/beast.h"
#include "adapters/http/https_client.h"
#include "adapters/sandbox/mapper.h"
#include "adapters/sandbox/sandbox.pb.h"
#include "adapters/sandbox/signing.h"
#include "keys/secret_file.h"

namespace paygate::adapters::sandbox {
namespace {

using namespace net;  // NOLINT(google-build-using-namespace): asio/beast/ssl aliases only.
namespace pb = paygate::adapters::sandbox::v1;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

constexpr std::chrono::milliseconds kHoldDefault{60'000};
constexpr std::chrono::seconds kIoTimeout{10};
// Nonces are remembered a little longer than the timestamp window, so a replay inside the window is
// always caught.
constexpr std::chrono::seconds kNonceMemory = kClockSkewMax * 2 + std::chrono::seconds(60);

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

bool FromJson(std::string_view json, google::protobuf::Message* message) {
  // The simulator is strict: an unknown field in a request is a client bug worth seeing.
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

std::int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool ValidCurrency(const std::string& currency) {
  if (currency.size() != 3) return false;
  for (char c : currency) {
    if (c < 'A' || c > 'Z') return false;
  }
  return true;
}

bool ValidReference(const std::string& reference) {
  if (reference.empty() || reference.size() > 64) return false;
  for (char c : reference) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// What a handler decided: a reply, or (for the timeout faults) to hold the connection and never
// answer.
struct Reply {
  unsigned status = 200;
  std::string body;
  std::optional<std::chrono::milliseconds> hold;
};

Reply Error(unsigned status, std::string code, std::string message) {
  pb::ErrorReply error;
  error.set_code(std::move(code));
  error.set_message(std::move(message));
  return Reply{status, ToJson(error), std::nullopt};
}

struct Payment {
  std::string account;
  pb::Payment state;
  std::string notify_url;
  std::string method;
  std::string description;
  std::int64_t expires_at_unix = 0;
  // A reference closed before it was ever created: no create may use it again.
  bool tombstone = false;
};

struct Refund {
  std::string account;
  pb::Refund state;
  std::string notify_url;
};

struct Payout {
  std::string account;
  pb::Payout state;
  std::string notify_url;
  std::string method;
  // The simulator's own count of how many times money left for this reference (see PayoutRecord):
  // the evidence an e2e test reads to prove "never paid twice".
  std::uint32_t executions = 0;
  std::uint32_t create_requests = 0;
  // Closed by a query before any create arrived: no create may use the reference again.
  bool tombstone = false;
};

// What auto-completion completes.
enum class AutoKind { kPayment, kRefund, kPayout };

// Whether a fault rule's matchers (all but the kind) accept this call or callback.
bool RuleMatches(const pb::FaultRule& rule, std::string_view operation, const std::string& account,
                 const std::string& reference, std::int64_t amount) {
  if (!operation.empty() && !rule.operation().empty() && rule.operation() != operation) {
    return false;
  }
  if (!rule.merchant_account().empty() && rule.merchant_account() != account) return false;
  if (!rule.reference().empty() && rule.reference() != reference) return false;
  if (!rule.reference_prefix().empty() && reference.rfind(rule.reference_prefix(), 0) != 0) {
    return false;
  }
  return rule.amount_minor() == 0 || rule.amount_minor() == amount;
}

std::string Key(const std::string& account, const std::string& reference) {
  return account + '\n' + reference;
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
    auto_rule_.set_status(options_.auto_succeed ? pb::PAYMENT_STATUS_SUCCEEDED
                                                : pb::PAYMENT_STATUS_FAILED);
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
  asio::awaitable<Reply> Handle(const Request& request, std::string* reply_account,
                                std::string* reply_nonce, bool* bad_signature);
  Reply HandleControl(std::string_view path, const Request& request);

  // Provider API operations on parsed bodies; each returns the reply to sign.
  Reply CreatePayment(const std::string& account, const pb::CreatePaymentRequest& request);
  Reply QueryPayment(const std::string& account, const pb::PaymentRef& request);
  Reply ClosePayment(const std::string& account, const pb::PaymentRef& request);
  Reply CreateRefund(const std::string& account, const pb::CreateRefundRequest& request);
  Reply QueryRefund(const std::string& account, const pb::RefundRef& request);
  Reply CreatePayout(const std::string& account, const pb::CreatePayoutRequest& request);
  Reply QueryPayout(const std::string& account, const pb::PayoutRef& request);

  // Test control and auto-completion.
  Reply CompletePayment(const pb::CompletePaymentRequest& request);
  Reply CompleteRefund(const pb::CompleteRefundRequest& request);
  Reply CompletePayout(const pb::CompletePayoutRequest& request);
  Reply ListPayouts(const pb::PayoutFilter& filter) const;
  Reply CountPayouts(const pb::PayoutFilter& filter) const;
  void MaybeScheduleAuto(const std::string& key, AutoKind kind, std::int64_t amount);

  // Finds (and consumes one use of) the first call fault matching.
  std::optional<pb::FaultRule> TakeCallFault(std::string_view operation, const std::string& account,
                                             const std::string& reference, std::int64_t amount);
  // Finds (and consumes one use of) the first DECLINE_PAYOUT rule matching a payout create.
  std::optional<pb::FaultRule> TakeDeclineRule(const std::string& account,
                                               const std::string& reference, std::int64_t amount);
  std::vector<pb::FaultRule> TakeCallbackFaults(const std::string& account,
                                                const std::string& reference, std::int64_t amount);
  bool NonceFresh(const std::string& account, const std::string& nonce);

  void EmitPaymentCallback(const Payment& payment);
  void EmitRefundCallback(const Refund& refund);
  void EmitPayoutCallback(const Payout& payout);
  void Emit(const std::string& account, const std::string& notify_url, const std::string& reference,
            std::int64_t amount, pb::Notification terminal, pb::Notification stale);
  asio::awaitable<void> Deliver(std::string account, std::string url,
                                std::vector<pb::FaultRule> faults, pb::Notification terminal,
                                pb::Notification stale);
  asio::awaitable<void> DeliverOne(const std::string& account, const std::string& url,
                                   const std::string& body, bool bad_signature);

  SimulatorOptions options_;
  OwnedIoContext ioc_;  // First destroyed of its handlers: see owned_io_context.h.
  ssl::context ssl_;
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  std::shared_ptr<http::HttpsClient> callback_client_;

  std::unordered_map<std::string, Payment> payments_;
  std::unordered_map<std::string, Refund> refunds_;
  std::unordered_map<std::string, Payout> payouts_;
  // Payout keys in creation order, for the control listing.
  std::vector<std::string> payout_order_;
  std::vector<pb::FaultRule> faults_;
  pb::AutoRule auto_rule_;
  pb::Stats stats_;
  std::uint64_t next_id_ = 1;
  // Replay protection: nonces seen, oldest first.
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
    std::string account;
    std::string nonce;
    bool bad_signature = false;
    Reply reply = co_await Handle(request, &account, &nonce, &bad_signature);
    if (reply.hold) {
      // The timeout faults: no answer at all, then the connection goes away.
      beast::get_lowest_layer(stream).expires_never();
      asio::steady_timer timer(ioc_, *reply.hold);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    Response response{static_cast<bhttp::status>(reply.status), request.version()};
    response.set(bhttp::field::server, "paygate-sandbox");
    response.set(bhttp::field::content_type, "application/json");
    const std::string path(request.target().substr(0, request.target().find('?')));
    auto secret = options_.merchants.find(account);
    if (secret != options_.merchants.end()) {
      // Replies are signed whenever the account is known, errors included; the request's nonce
      // binds the reply to it.
      const std::string timestamp = FormatTimestamp(std::chrono::system_clock::now());
      std::string signature = Sign(secret->second.reveal(), ReplyLine(reply.status, path),
                                   timestamp, nonce, reply.body);
      if (bad_signature) signature.back() = signature.back() == '0' ? '1' : '0';
      response.set(kAccountHeader, account);
      response.set(kTimestampHeader, timestamp);
      response.set(kNonceHeader, nonce);
      response.set(kSignatureHeader, signature);
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

bool Simulator::Impl::NonceFresh(const std::string& account, const std::string& nonce) {
  const std::int64_t now = UnixNow();
  while (!nonce_order_.empty() && nonce_order_.front().first < now - kNonceMemory.count()) {
    nonces_.erase(nonce_order_.front().second);
    nonce_order_.pop_front();
  }
  const std::string key = Key(account, nonce);
  if (!nonces_.emplace(key, now).second) return false;
  nonce_order_.emplace_back(now, key);
  return true;
}

asio::awaitable<Reply> Simulator::Impl::Handle(const Request& request, std::string* reply_account,
                                               std::string* reply_nonce, bool* bad_signature) {
  const std::string path(request.target().substr(0, request.target().find('?')));
  if (path.rfind("/control/", 0) == 0) co_return HandleControl(path, request);

  std::optional<Operation> op;
  for (Operation candidate : kOperations) {
    if (path == OperationPath(candidate)) op = candidate;
  }
  if (!op) co_return Error(404, "not_found", "no such endpoint");
  if (request.method() != bhttp::verb::post) co_return Error(405, "bad_request", "POST only");

  // Authentication, before anything is looked at or executed.
  const std::string account(request[kAccountHeader]);
  auto merchant = options_.merchants.find(account);
  if (merchant == options_.merchants.end()) {
    co_return Error(401, "unauthenticated", "unknown merchant account");
  }
  *reply_account = account;
  const std::string nonce(request[kNonceHeader]);
  if (NonceWellFormed(nonce)) *reply_nonce = nonce;
  const std::string timestamp(request[kTimestampHeader]);
  if (!FreshTimestamp(timestamp, std::chrono::system_clock::now())) {
    co_return Error(401, "unauthenticated", "timestamp missing or outside the allowed window");
  }
  if (!NonceWellFormed(nonce))
    co_return Error(401, "unauthenticated", "nonce missing or malformed");
  if (!SignatureValid(merchant->second.reveal(), RequestLine("POST", path), timestamp, nonce,
                      request.body(), request[kSignatureHeader])) {
    co_return Error(401, "unauthenticated", "signature invalid");
  }
  if (!NonceFresh(account, nonce)) co_return Error(401, "unauthenticated", "nonce replayed");
  stats_.set_calls_received(stats_.calls_received() + 1);

  // Parse first: faults match on the reference and amount.
  pb::CreatePaymentRequest create;
  pb::PaymentRef payment_ref;
  pb::CreateRefundRequest refund;
  pb::RefundRef refund_ref;
  pb::CreatePayoutRequest payout;
  pb::PayoutRef payout_ref;
  std::string reference;
  std::int64_t amount = 0;
  bool parsed = false;
  switch (*op) {
    case Operation::kCreatePayment:
      parsed = FromJson(request.body(), &create);
      reference = create.reference();
      amount = create.amount_minor();
      break;
    case Operation::kQueryPayment:
    case Operation::kClosePayment:
      parsed = FromJson(request.body(), &payment_ref);
      reference = payment_ref.reference();
      break;
    case Operation::kCreateRefund:
      parsed = FromJson(request.body(), &refund);
      reference = refund.refund_reference();
      amount = refund.amount_minor();
      break;
    case Operation::kQueryRefund:
      parsed = FromJson(request.body(), &refund_ref);
      reference = refund_ref.refund_reference();
      break;
    case Operation::kCreatePayout:
      parsed = FromJson(request.body(), &payout);
      reference = payout.reference();
      amount = payout.amount_minor();
      break;
    case Operation::kQueryPayout:
      parsed = FromJson(request.body(), &payout_ref);
      reference = payout_ref.reference();
      break;
  }
  if (!parsed) co_return Error(400, "bad_request", "body is not a valid JSON request");

  std::optional<pb::FaultRule> fault =
      TakeCallFault(OperationName(*op), account, reference, amount);
  if (!fault && *op == Operation::kCreateRefund) {
    // Refund faults may also name the payment being refunded.
    fault = TakeCallFault(OperationName(*op), account, refund.payment_reference(), amount);
  }
  const pb::FaultKind kind = fault ? fault->kind() : pb::FAULT_KIND_UNSPECIFIED;
  const auto hold =
      fault && fault->delay_ms() != 0 ? std::chrono::milliseconds(fault->delay_ms()) : kHoldDefault;
  if (kind == pb::FAULT_KIND_TIMEOUT_BEFORE) co_return Reply{0, {}, hold};
  if (kind == pb::FAULT_KIND_HTTP_5XX) co_return Error(500, "internal", "injected fault");

  Reply reply;
  switch (*op) {
    case Operation::kCreatePayment:
      reply = CreatePayment(account, create);
      break;
    case Operation::kQueryPayment:
      reply = QueryPayment(account, payment_ref);
      break;
    case Operation::kClosePayment:
      reply = ClosePayment(account, payment_ref);
      break;
    case Operation::kCreateRefund:
      reply = CreateRefund(account, refund);
      break;
    case Operation::kQueryRefund:
      reply = QueryRefund(account, refund_ref);
      break;
    case Operation::kCreatePayout:
      reply = CreatePayout(account, payout);
      break;
    case Operation::kQueryPayout:
      reply = QueryPayout(account, payout_ref);
      break;
  }
  stats_.set_calls_executed(stats_.calls_executed() + 1);
  if (kind == pb::FAULT_KIND_TIMEOUT_AFTER) co_return Reply{0, {}, hold};
  if (kind == pb::FAULT_KIND_MALFORMED_REPLY) {
    // Cut mid-value: not JSON any more, yet correctly signed, so only the body is at fault.
    reply.body = reply.body.substr(0, reply.body.size() / 2);
  }
  if (kind == pb::FAULT_KIND_BAD_SIGNATURE_REPLY) *bad_signature = true;
  co_return reply;
}

Reply Simulator::Impl::CreatePayment(const std::string& account,
                                     const pb::CreatePaymentRequest& request) {
  if (!ValidReference(request.reference())) {
    return Error(400, "bad_request", "reference must be 1-64 characters of [A-Za-z0-9_.-]");
  }
  if (!ValidCurrency(request.currency()))
    return Error(400, "bad_request", "currency is not ISO 4217");
  if (!http::ParseHttpsUrl(request.notify_url())) {
    return Error(400, "bad_request", "notify_url must be an https URL");
  }
  const std::string key = Key(account, request.reference());
  auto existing = payments_.find(key);
  if (existing != payments_.end()) {
    const Payment& payment = existing->second;
    // A tombstone answers every create with "closed"; otherwise a repeat with the same fields is
    // the same payment (idempotent create) and anything else is a conflict.
    if (payment.tombstone) return Reply{200, ToJson(payment.state), std::nullopt};
    if (payment.state.amount_minor() != request.amount_minor() ||
        payment.state.currency() != request.currency() || payment.method != request.method() ||
        payment.notify_url != request.notify_url()) {
      return Error(409, "reference_conflict", "reference exists with other fields");
    }
    return Reply{200, ToJson(payment.state), std::nullopt};
  }
  if (request.amount_minor() <= 0) return Error(422, "invalid_amount", "amount must be positive");
  if (request.expires_at_unix() != 0 && request.expires_at_unix() <= UnixNow()) {
    return Error(422, "expired", "expires_at is in the past");
  }
  Payment payment;
  payment.account = account;
  payment.notify_url = request.notify_url();
  payment.method = request.method();
  payment.description = request.description();
  payment.expires_at_unix = request.expires_at_unix();
  payment.state.set_reference(request.reference());
  payment.state.set_transaction_id(fmt::format("sbx_pay_{:010}", next_id_++));
  payment.state.set_status(pb::PAYMENT_STATUS_PENDING);
  payment.state.set_amount_minor(request.amount_minor());
  payment.state.set_currency(request.currency());
  payment.state.mutable_next_action()->set_type("qr_code_url");
  payment.state.mutable_next_action()->set_value("https://sandbox.paygate.invalid/qr/" +
                                                 payment.state.transaction_id());
  Reply reply{200, ToJson(payment.state), std::nullopt};
  payments_.emplace(key, std::move(payment));
  stats_.set_payments(stats_.payments() + 1);
  MaybeScheduleAuto(key, AutoKind::kPayment, request.amount_minor());
  return reply;
}

Reply Simulator::Impl::QueryPayment(const std::string& account, const pb::PaymentRef& request) {
  auto it = payments_.find(Key(account, request.reference()));
  if (it == payments_.end()) return Error(404, "not_found", "no such payment");
  return Reply{200, ToJson(it->second.state), std::nullopt};
}

Reply Simulator::Impl::ClosePayment(const std::string& account, const pb::PaymentRef& request) {
  if (!ValidReference(request.reference())) return Error(400, "bad_request", "bad reference");
  const std::string key = Key(account, request.reference());
  auto it = payments_.find(key);
  if (it == payments_.end()) {
    // Closing a reference we never saw makes it unusable: a create still in flight can no longer
    // land, which is what makes "closed" a definitive answer for an unknown attempt.
    Payment tombstone;
    tombstone.account = account;
    tombstone.tombstone = true;
    tombstone.state.set_reference(request.reference());
    tombstone.state.set_transaction_id(fmt::format("sbx_pay_{:010}", next_id_++));
    tombstone.state.set_status(pb::PAYMENT_STATUS_CLOSED);
    it = payments_.emplace(key, std::move(tombstone)).first;
    return Reply{200, ToJson(it->second.state), std::nullopt};
  }
  pb::Payment& state = it->second.state;
  if (state.status() == pb::PAYMENT_STATUS_SUCCEEDED) {
    return Error(422, "already_paid", "the payment was paid; refund it instead");
  }
  if (state.status() == pb::PAYMENT_STATUS_PENDING) {
    state.set_status(pb::PAYMENT_STATUS_CLOSED);
    state.clear_next_action();
  }
  return Reply{200, ToJson(state), std::nullopt};
}

Reply Simulator::Impl::CreateRefund(const std::string& account,
                                    const pb::CreateRefundRequest& request) {
  if (!ValidReference(request.refund_reference()) || !ValidReference(request.payment_reference())) {
    return Error(400, "bad_request", "references must be 1-64 characters of [A-Za-z0-9_.-]");
  }
  if (!http::ParseHttpsUrl(request.notify_url())) {
    return Error(400, "bad_request", "notify_url must be an https URL");
  }
  const std::string refund_key = Key(account, request.refund_reference());
  if (auto existing = refunds_.find(refund_key); existing != refunds_.end()) {
    const pb::Refund& state = existing->second.state;
    if (state.payment_reference() != request.payment_reference() ||
        state.amount_minor() != request.amount_minor() || state.currency() != request.currency()) {
      return Error(409, "reference_conflict", "refund reference exists with other fields");
    }
    return Reply{200, ToJson(state), std::nullopt};
  }
  auto payment_it = payments_.find(Key(account, request.payment_reference()));
  if (payment_it == payments_.end() || payment_it->second.tombstone) {
    return Error(404, "not_found", "no such payment");
  }
  pb::Payment& payment = payment_it->second.state;
  if (payment.status() != pb::PAYMENT_STATUS_SUCCEEDED) {
    return Error(422, "payment_not_paid", "only a paid payment can be refunded");
  }
  if (request.amount_minor() <= 0) return Error(422, "invalid_amount", "amount must be positive");
  if (request.currency() != payment.currency()) {
    return Error(422, "currency_mismatch", "refund currency differs from the payment's");
  }
  // Pending and succeeded refunds both count: concurrent refunds can never exceed what was paid.
  if (request.amount_minor() > payment.amount_minor() - payment.refunded_minor()) {
    return Error(
        422, "refund_exceeds_amount",
        fmt::format("refundable amount is {}", payment.amount_minor() - payment.refunded_minor()));
  }
  payment.set_refunded_minor(payment.refunded_minor() + request.amount_minor());
  Refund refund;
  refund.account = account;
  refund.notify_url = request.notify_url();
  refund.state.set_payment_reference(request.payment_reference());
  refund.state.set_refund_reference(request.refund_reference());
  refund.state.set_transaction_id(fmt::format("sbx_ref_{:010}", next_id_++));
  refund.state.set_status(pb::REFUND_STATUS_PENDING);
  refund.state.set_amount_minor(request.amount_minor());
  refund.state.set_currency(request.currency());
  Reply reply{200, ToJson(refund.state), std::nullopt};
  refunds_.emplace(refund_key, std::move(refund));
  stats_.set_refunds(stats_.refunds() + 1);
  MaybeScheduleAuto(refund_key, AutoKind::kRefund, request.amount_minor());
  return reply;
}

Reply Simulator::Impl::QueryRefund(const std::string& account, const pb::RefundRef& request) {
  auto it = refunds_.find(Key(account, request.refund_reference()));
  if (it == refunds_.end()) return Error(404, "not_found", "no such refund");
  return Reply{200, ToJson(it->second.state), std::nullopt};
}

Reply Simulator::Impl::CreatePayout(const std::string& account,
                                    const pb::CreatePayoutRequest& request) {
  if (!ValidReference(request.reference())) {
    return Error(400, "bad_request", "reference must be 1-64 characters of [A-Za-z0-9_.-]");
  }
  if (!ValidCurrency(request.currency()))
    return Error(400, "bad_request", "currency is not ISO 4217");
  if (!http::ParseHttpsUrl(request.notify_url())) {
    return Error(400, "bad_request", "notify_url must be an https URL");
  }
  if (request.beneficiary().name().empty() || request.beneficiary().account().empty()) {
    return Error(400, "bad_request", "beneficiary name and account are required");
  }
  const std::string key = Key(account, request.reference());
  if (auto existing = payouts_.find(key); existing != payouts_.end()) {
    Payout& payout = existing->second;
    ++payout.create_requests;
    // The reference is the idempotency key: whatever happened to it first is the answer, and it
    // never executes again. A tombstone (closed by a query) answers its refusal forever.
    if (payout.tombstone) return Reply{200, ToJson(payout.state), std::nullopt};
    if (payout.state.amount_minor() != request.amount_minor() ||
        payout.state.currency() != request.currency() || payout.method != request.method() ||
        payout.notify_url != request.notify_url()) {
      return Error(409, "reference_conflict", "reference exists with other fields");
    }
    return Reply{200, ToJson(payout.state), std::nullopt};
  }
  if (request.amount_minor() <= 0) return Error(422, "invalid_amount", "amount must be positive");
  Payout payout;
  payout.account = account;
  payout.notify_url = request.notify_url();
  payout.method = request.method();
  payout.create_requests = 1;
  pb::Payout& state = payout.state;
  state.set_reference(request.reference());
  state.set_transaction_id(fmt::format("sbx_po_{:010}", next_id_++));
  state.set_amount_minor(request.amount_minor());
  state.set_currency(request.currency());
  const std::optional<pb::FaultRule> decline =
      TakeDeclineRule(account, request.reference(), request.amount_minor());
  if (decline) {
    // Refused before anything moved, but remembered: a repeat or a query answers the same refusal.
    state.set_status(pb::PAYOUT_STATUS_FAILED);
    state.set_failure_code(decline->failure_code().empty() ? "insufficient_funds"
                                                           : decline->failure_code());
    state.set_failure_message(decline->failure_message().empty()
                                  ? "the merchant's payout balance is insufficient"
                                  : decline->failure_message());
  } else {
    state.set_status(pb::PAYOUT_STATUS_PENDING);
    payout.executions = 1;
  }
  Reply reply{200, ToJson(state), std::nullopt};
  auto it = payouts_.emplace(key, std::move(payout)).first;
  payout_order_.push_back(key);
  stats_.set_payouts(stats_.payouts() + 1);
  if (decline) {
    EmitPayoutCallback(it->second);
  } else {
    MaybeScheduleAuto(key, AutoKind::kPayout, request.amount_minor());
  }
  return reply;
}

Reply Simulator::Impl::QueryPayout(const std::string& account, const pb::PayoutRef& request) {
  if (!ValidReference(request.reference())) return Error(400, "bad_request", "bad reference");
  const std::string key = Key(account, request.reference());
  auto it = payouts_.find(key);
  if (it == payouts_.end()) {
    // A reference we never received is closed by the query: a create still in flight can no longer
    // execute, so "never received" is a definitive answer the gateway may act on (a new attempt),
    // where a bare 404 could only be a guess.
    Payout tombstone;
    tombstone.account = account;
    tombstone.tombstone = true;
    tombstone.state.set_reference(request.reference());
    tombstone.state.set_transaction_id(fmt::format("sbx_po_{:010}", next_id_++));
    tombstone.state.set_status(pb::PAYOUT_STATUS_FAILED);
    tombstone.state.set_failure_code("never_received");
    tombstone.state.set_failure_message("no payout was received with this reference; now closed");
    it = payouts_.emplace(key, std::move(tombstone)).first;
    payout_order_.push_back(key);
  }
  return Reply{200, ToJson(it->second.state), std::nullopt};
}

Reply Simulator::Impl::CompletePayout(const pb::CompletePayoutRequest& request) {
  auto it = payouts_.find(Key(request.merchant_account(), request.reference()));
  if (it == payouts_.end() || it->second.tombstone) {
    return Error(404, "not_found", "no such payout");
  }
  pb::Payout& state = it->second.state;
  if (request.status() != pb::PAYOUT_STATUS_SUCCEEDED &&
      request.status() != pb::PAYOUT_STATUS_FAILED) {
    return Error(400, "bad_request", "status must be SUCCEEDED or FAILED");
  }
  if (state.status() != pb::PAYOUT_STATUS_PENDING) {
    return Error(409, "not_pending", "the payout is no longer pending");
  }
  state.set_status(request.status());
  if (request.status() == pb::PAYOUT_STATUS_FAILED) {
    state.set_failure_code(request.failure_code().empty() ? "returned" : request.failure_code());
    state.set_failure_message("the beneficiary's bank returned the payout");
  }
  EmitPayoutCallback(it->second);
  return Reply{200, ToJson(state), std::nullopt};
}

Reply Simulator::Impl::ListPayouts(const pb::PayoutFilter& filter) const {
  pb::PayoutList list;
  for (const std::string& key : payout_order_) {
    const Payout& payout = payouts_.at(key);
    const pb::Payout& state = payout.state;
    if (!filter.merchant_account().empty() && filter.merchant_account() != payout.account) continue;
    if (state.reference().rfind(filter.reference_prefix(), 0) != 0) continue;
    pb::PayoutRecord* record = list.add_payouts();
    record->set_merchant_account(payout.account);
    record->set_reference(state.reference());
    record->set_transaction_id(state.transaction_id());
    record->set_amount_minor(state.amount_minor());
    record->set_currency(state.currency());
    record->set_status(state.status());
    record->set_failure_code(state.failure_code());
    record->set_executions(payout.executions);
    record->set_create_requests(payout.create_requests);
  }
  return Reply{200, ToJson(list), std::nullopt};
}

Reply Simulator::Impl::CountPayouts(const pb::PayoutFilter& filter) const {
  pb::PayoutCount count;
  for (const auto& [key, payout] : payouts_) {
    const pb::Payout& state = payout.state;
    if (!filter.merchant_account().empty() && filter.merchant_account() != payout.account) continue;
    if (state.reference().rfind(filter.reference_prefix(), 0) != 0) continue;
    count.set_references(count.references() + 1);
    count.set_executions(count.executions() + payout.executions);
    switch (state.status()) {
      case pb::PAYOUT_STATUS_PENDING:
        count.set_pending(count.pending() + 1);
        break;
      case pb::PAYOUT_STATUS_SUCCEEDED:
        count.set_succeeded(count.succeeded() + 1);
        count.set_succeeded_amount_minor(count.succeeded_amount_minor() + state.amount_minor());
        break;
      default:
        count.set_failed(count.failed() + 1);
        break;
    }
  }
  return Reply{200, ToJson(count), std::nullopt};
}

Reply Simulator::Impl::CompletePayment(const pb::CompletePaymentRequest& request) {
  auto it = payments_.find(Key(request.merchant_account(), request.reference()));
  if (it == payments_.end() || it->second.tombstone) {
    return Error(404, "not_found", "no such payment");
  }
  pb::Payment& state = it->second.state;
  if (request.status() != pb::PAYMENT_STATUS_SUCCEEDED &&
      request.status() != pb::PAYMENT_STATUS_FAILED) {
    return Error(400, "bad_request", "status must be SUCCEEDED or FAILED");
  }
  if (state.status() != pb::PAYMENT_STATUS_PENDING) {
    return Error(409, "not_pending", "the payment is no longer pending");
  }
  if (it->second.expires_at_unix != 0 && it->second.expires_at_unix <= UnixNow() &&
      request.status() == pb::PAYMENT_STATUS_SUCCEEDED) {
    return Error(409, "expired", "the payment expired");
  }
  state.set_status(request.status());
  state.clear_next_action();
  if (request.status() == pb::PAYMENT_STATUS_FAILED) {
    state.set_failure_code(request.failure_code().empty() ? "payment_failed"
                                                          : request.failure_code());
    state.set_failure_message(request.failure_message().empty() ? "the payer's payment failed"
                                                                : request.failure_message());
  }
  EmitPaymentCallback(it->second);
  return Reply{200, ToJson(state), std::nullopt};
}

Reply Simulator::Impl::CompleteRefund(const pb::CompleteRefundRequest& request) {
  auto it = refunds_.find(Key(request.merchant_account(), request.refund_reference()));
  if (it == refunds_.end()) return Error(404, "not_found", "no such refund");
  pb::Refund& state = it->second.state;
  if (request.status() != pb::REFUND_STATUS_SUCCEEDED &&
      request.status() != pb::REFUND_STATUS_FAILED) {
    return Error(400, "bad_request", "status must be SUCCEEDED or FAILED");
  }
  if (state.status() != pb::REFUND_STATUS_PENDING) {
    return Error(409, "not_pending", "the refund is no longer pending");
  }
  state.set_status(request.status());
  if (request.status() == pb::REFUND_STATUS_FAILED) {
    state.set_failure_code(request.failure_code().empty() ? "refund_failed"
                                                          : request.failure_code());
    // A failed refund gives its amount back to the refundable balance.
    auto payment = payments_.find(Key(request.merchant_account(), state.payment_reference()));
    if (payment != payments_.end()) {
      pb::Payment& paid = payment->second.state;
      paid.set_refunded_minor(paid.refunded_minor() - state.amount_minor());
    }
  }
  EmitRefundCallback(it->second);
  return Reply{200, ToJson(state), std::nullopt};
}

void Simulator::Impl::MaybeScheduleAuto(const std::string& key, AutoKind kind,
                                        std::int64_t amount) {
  if (auto_rule_.after_ms() == 0) return;
  if (auto_rule_.amount_minor() != 0 && auto_rule_.amount_minor() != amount) return;
  const bool succeed = auto_rule_.status() != pb::PAYMENT_STATUS_FAILED;
  auto timer =
      std::make_shared<asio::steady_timer>(ioc_, std::chrono::milliseconds(auto_rule_.after_ms()));
  timer->async_wait([this, timer, key, kind, succeed](boost::system::error_code ec) {
    if (ec) return;
    const std::size_t split = key.find('\n');
    if (kind == AutoKind::kPayout) {
      pb::CompletePayoutRequest request;
      request.set_merchant_account(key.substr(0, split));
      request.set_reference(key.substr(split + 1));
      request.set_status(succeed ? pb::PAYOUT_STATUS_SUCCEEDED : pb::PAYOUT_STATUS_FAILED);
      (void)CompletePayout(request);
    } else if (kind == AutoKind::kRefund) {
      pb::CompleteRefundRequest request;
      request.set_merchant_account(key.substr(0, split));
      request.set_refund_reference(key.substr(split + 1));
      request.set_status(succeed ? pb::REFUND_STATUS_SUCCEEDED : pb::REFUND_STATUS_FAILED);
      (void)CompleteRefund(request);  // No longer pending (closed, completed): nothing to do.
    } else {
      pb::CompletePaymentRequest request;
      request.set_merchant_account(key.substr(0, split));
      request.set_reference(key.substr(split + 1));
      request.set_status(succeed ? pb::PAYMENT_STATUS_SUCCEEDED : pb::PAYMENT_STATUS_FAILED);
      (void)CompletePayment(request);
    }
  });
}

std::optional<pb::FaultRule> Simulator::Impl::TakeCallFault(std::string_view operation,
                                                            const std::string& account,
                                                            const std::string& reference,
                                                            std::int64_t amount) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    const pb::FaultKind kind = it->kind();
    const bool call_fault =
        kind == pb::FAULT_KIND_TIMEOUT_BEFORE || kind == pb::FAULT_KIND_TIMEOUT_AFTER ||
        kind == pb::FAULT_KIND_HTTP_5XX || kind == pb::FAULT_KIND_MALFORMED_REPLY ||
        kind == pb::FAULT_KIND_BAD_SIGNATURE_REPLY;
    if (!call_fault) continue;
    if (!RuleMatches(*it, operation, account, reference, amount)) continue;
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

std::optional<pb::FaultRule> Simulator::Impl::TakeDeclineRule(const std::string& account,
                                                              const std::string& reference,
                                                              std::int64_t amount) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (it->kind() != pb::FAULT_KIND_DECLINE_PAYOUT) continue;
    if (!RuleMatches(*it, "create_payout", account, reference, amount)) continue;
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

std::vector<pb::FaultRule> Simulator::Impl::TakeCallbackFaults(const std::string& account,
                                                               const std::string& reference,
                                                               std::int64_t amount) {
  std::vector<pb::FaultRule> taken;
  for (auto it = faults_.begin(); it != faults_.end();) {
    const pb::FaultKind kind = it->kind();
    const bool callback_fault = kind == pb::FAULT_KIND_DUPLICATE_CALLBACK ||
                                kind == pb::FAULT_KIND_DELAYED_CALLBACK ||
                                kind == pb::FAULT_KIND_OUT_OF_ORDER_CALLBACK ||
                                kind == pb::FAULT_KIND_BAD_SIGNATURE_CALLBACK ||
                                kind == pb::FAULT_KIND_LOST_CALLBACK;
    // Callback faults ignore the operation: they match on what the callback is about.
    const bool matches = callback_fault && RuleMatches(*it, "", account, reference, amount);
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

void Simulator::Impl::EmitPaymentCallback(const Payment& payment) {
  pb::Notification terminal;
  terminal.set_type("payment");
  *terminal.mutable_payment() = payment.state;
  terminal.set_event_time_unix(UnixNow());
  pb::Notification stale = terminal;
  stale.mutable_payment()->set_status(pb::PAYMENT_STATUS_PENDING);
  stale.mutable_payment()->clear_failure_code();
  stale.mutable_payment()->clear_failure_message();
  stale.set_event_time_unix(UnixNow() - 1);
  Emit(payment.account, payment.notify_url, payment.state.reference(), payment.state.amount_minor(),
       std::move(terminal), std::move(stale));
}

void Simulator::Impl::EmitRefundCallback(const Refund& refund) {
  pb::Notification terminal;
  terminal.set_type("refund");
  *terminal.mutable_refund() = refund.state;
  terminal.set_event_time_unix(UnixNow());
  pb::Notification stale = terminal;
  stale.mutable_refund()->set_status(pb::REFUND_STATUS_PENDING);
  stale.mutable_refund()->clear_failure_code();
  stale.mutable_refund()->clear_failure_message();
  stale.set_event_time_unix(UnixNow() - 1);
  Emit(refund.account, refund.notify_url, refund.state.refund_reference(),
       refund.state.amount_minor(), std::move(terminal), std::move(stale));
}

void Simulator::Impl::EmitPayoutCallback(const Payout& payout) {
  pb::Notification terminal;
  terminal.set_type("payout");
  *terminal.mutable_payout() = payout.state;
  terminal.set_event_time_unix(UnixNow());
  pb::Notification stale = terminal;
  stale.mutable_payout()->set_status(pb::PAYOUT_STATUS_PENDING);
  stale.mutable_payout()->clear_failure_code();
  stale.mutable_payout()->clear_failure_message();
  stale.set_event_time_unix(UnixNow() - 1);
  Emit(payout.account, payout.notify_url, payout.state.reference(), payout.state.amount_minor(),
       std::move(terminal), std::move(stale));
}

void Simulator::Impl::Emit(const std::string& account, const std::string& notify_url,
                           const std::string& reference, std::int64_t amount,
                           pb::Notification terminal, pb::Notification stale) {
  terminal.set_notification_id(fmt::format("sbx_ntf_{:010}", next_id_++));
  stale.set_notification_id(fmt::format("sbx_ntf_{:010}", next_id_++));
  asio::co_spawn(ioc_,
                 Deliver(account, notify_url, TakeCallbackFaults(account, reference, amount),
                         std::move(terminal), std::move(stale)),
                 asio::detached);
}

asio::awaitable<void> Simulator::Impl::Deliver(std::string account, std::string url,
                                               std::vector<pb::FaultRule> faults,
                                               pb::Notification terminal, pb::Notification stale) {
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
      case pb::FAULT_KIND_LOST_CALLBACK:
        // The event happened; the merchant is simply never told.
        stats_.set_callbacks_lost(stats_.callbacks_lost() + 1);
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
  const std::string body = ToJson(terminal);
  for (std::uint32_t i = 0; i < copies; ++i) co_await DeliverOne(account, url, body, bad_signature);
  // The stale status arrives after the terminal one has been acknowledged (or given up on).
  if (out_of_order) co_await DeliverOne(account, url, ToJson(stale), bad_signature);
}

asio::awaitable<void> Simulator::Impl::DeliverOne(const std::string& account,
                                                  const std::string& url, const std::string& body,
                                                  bool bad_signature) {
  auto merchant = options_.merchants.find(account);
  if (merchant == options_.merchants.end()) co_return;
  std::chrono::milliseconds pause = options_.callback_retry_ms;
  for (std::uint32_t attempt = 1; attempt <= options_.callback_attempts_max; ++attempt) {
    // Every delivery is signed afresh (new timestamp and nonce); the body, and so the notification
    // id, stays the same.
    const std::string timestamp = FormatTimestamp(std::chrono::system_clock::now());
    const std::string nonce = NewNonce();
    std::string signature = Sign(merchant->second.reveal(), kCallbackLine, timestamp, nonce, body);
    if (bad_signature)
      signature = Sign("not the merchant's key", kCallbackLine, timestamp, nonce, body);
    http::HttpsRequest request;
    request.url = url;
    request.headers = {{std::string(kAccountHeader), account},
                       {std::string(kTimestampHeader), timestamp},
                       {std::string(kNonceHeader), nonce},
                       {std::string(kSignatureHeader), signature}};
    request.body = body;
    request.deadlines.response_ms = std::chrono::milliseconds(5'000);
    auto reply = co_await callback_client_->Send(std::move(request));
    const bool acked =
        reply && reply.assume_value().status >= 200 && reply.assume_value().status < 300;
    if (acked) {
      stats_.set_callbacks_delivered(stats_.callbacks_delivered() + 1);
      co_return;
    }
    stats_.set_callbacks_failed(stats_.callbacks_failed() + 1);
    std::fprintf(stderr, "paygate-sandbox: callback to %s attempt %u failed: %s\n", url.c_str(),
                 attempt,
                 reply ? fmt::format("http {}", reply.assume_value().status).c_str()
                       : reply.assume_error().detail.c_str());
    if (attempt == options_.callback_attempts_max) break;
    asio::steady_timer timer(ioc_, pause);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    pause *= 2;
  }
}

Reply Simulator::Impl::HandleControl(std::string_view path, const Request& request) {
  if (options_.control_token.empty()) return Error(404, "not_found", "control API disabled");
  const std::string expected = "Bearer " + std::string(options_.control_token.reveal());
  const std::string_view presented = request[bhttp::field::authorization];
  if (presented.size() != expected.size() ||
      CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) != 0) {
    return Error(401, "unauthenticated", "control token required");
  }
  if (request.method() != bhttp::verb::post) return Error(405, "bad_request", "POST only");
  const std::string& body = request.body();
  if (path == "/control/v1/payments/complete") {
    pb::CompletePaymentRequest message;
    if (!FromJson(body, &message)) return Error(400, "bad_request", "bad body");
    return CompletePayment(message);
  }
  if (path == "/control/v1/refunds/complete") {
    pb::CompleteRefundRequest message;
    if (!FromJson(body, &message)) return Error(400, "bad_request", "bad body");
    return CompleteRefund(message);
  }
  if (path == "/control/v1/payouts/complete") {
    pb::CompletePayoutRequest message;
    if (!FromJson(body, &message)) return Error(400, "bad_request", "bad body");
    return CompletePayout(message);
  }
  if (path == "/control/v1/payouts/list" || path == "/control/v1/payouts/count") {
    pb::PayoutFilter message;
    if (!FromJson(body, &message)) return Error(400, "bad_request", "bad body");
    return path == "/control/v1/payouts/list" ? ListPayouts(message) : CountPayouts(message);
  }
  if (path == "/control/v1/faults") {
    pb::FaultRule message;
    if (!FromJson(body, &message) || message.kind() == pb::FAULT_KIND_UNSPECIFIED) {
      return Error(400, "bad_request", "bad fault rule");
    }
    faults_.push_back(message);
    return Reply{200, ToJson(message), std::nullopt};
  }
  if (path == "/control/v1/faults/clear") {
    faults_.clear();
    return Reply{200, "{}", std::nullopt};
  }
  if (path == "/control/v1/auto") {
    pb::AutoRule message;
    if (!FromJson(body, &message)) return Error(400, "bad_request", "bad auto rule");
    auto_rule_ = message;
    return Reply{200, ToJson(message), std::nullopt};
  }
  if (path == "/control/v1/stats") return Reply{200, ToJson(stats_), std::nullopt};
  return Error(404, "not_found", "no such control endpoint");
}

Result<std::unique_ptr<Simulator>, std::string> Simulator::Create(SimulatorOptions options) {
  if (options.merchants.empty()) return std::string("no merchant accounts");
  auto impl = std::make_unique<Impl>(std::move(options));
  if (auto ok = impl->Init(); !ok) return ok.error();
  return std::unique_ptr<Simulator>(new Simulator(std::move(impl)));
}

Simulator::Simulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Simulator::~Simulator() = default;
std::uint16_t Simulator::port() const { return impl_->port(); }
void Simulator::Run() { impl_->Run(); }
void Simulator::Stop() { impl_->Stop(); }

}  // namespace paygate::adapters::sandbox
