#include "adapters/unionpay/unionpay_adapter.h"

#include <fmt/format.h>

#include "adapters/common/money.h"

namespace paygate::adapters::unionpay {
namespace {

using Clock = std::chrono::system_clock;

constexpr std::string_view kFrontTransPath = "/gateway/api/frontTransReq.do";
constexpr std::string_view kAppTransPath = "/gateway/api/appTransReq.do";
constexpr std::string_view kBackTransPath = "/gateway/api/backTransReq.do";
constexpr std::string_view kQueryTransPath = "/gateway/api/queryTrans.do";
constexpr std::string_view kFileTransPath = "/gateway/api/fileTransReq.do";
// Reconciliation archives are far larger than API replies.
constexpr std::size_t kBodyMaxBytes = 32 * 1024 * 1024;

ProviderResult WithOutcome(Outcome outcome, std::string detail) {
  ProviderResult result;
  result.outcome = outcome;
  result.detail = std::move(detail);
  return result;
}

ProviderResult NotSent(std::string detail) {
  return WithOutcome(Outcome::kNotSent, std::move(detail));
}

ProviderResult Declined(std::string code, std::string message, std::string detail) {
  ProviderResult result = WithOutcome(Outcome::kDeclined, std::move(detail));
  result.decline_code = std::move(code);
  result.decline_message = std::move(message);
  return result;
}

Result<crypto::Certificate, std::string> ReadCert(const std::string& path, std::string_view what) {
  auto cert = crypto::Certificate::FromFile(path);
  if (!cert) return fmt::format("unionpay {} certificate {}: {}", what, path, cert.error().message);
  return cert.value();
}

}  // namespace

Result<std::unique_ptr<UnionPayAdapter>, std::string> UnionPayAdapter::Create(
    UnionPayOptions options, std::shared_ptr<http::HttpsClient> client) {
  if (auto url = http::ParseHttpsUrl(options.base_url); !url) {
    return fmt::format("unionpay base_url: {}", url.error());
  }
  if (!options.file_base_url.empty()) {
    if (auto url = http::ParseHttpsUrl(options.file_base_url); !url) {
      return fmt::format("unionpay file_base_url: {}", url.error());
    }
  }
  if (options.merchant_account.empty()) return std::string("unionpay merchant_account is empty");
  if (options.mer_id.empty()) return std::string("unionpay mer_id is empty");
  auto signer =
      !options.sign_pfx.empty()
          ? SignerFromPkcs12(options.sign_pfx.reveal(), options.sign_pfx_password.reveal())
          : LoadSigner(options.sign_pfx_file, options.sign_pfx_password.reveal());
  if (!signer) return "unionpay signing store: " + signer.error();
  Trust trust;
  auto root = ReadCert(options.root_cert_file, "root");
  if (!root) return root.error();
  auto middle = ReadCert(options.middle_cert_file, "middle");
  if (!middle) return middle.error();
  trust.roots = {root.value()};
  trust.middle = {middle.value()};
  trust.cert_owner = options.cert_owner;
  if (client == nullptr) {
    http::HttpsClientOptions client_options;
    client_options.ca_file = options.ca_file;
    client_options.response_body_max_bytes = kBodyMaxBytes;
    auto created = http::HttpsClient::Create(std::move(client_options));
    if (!created) return created.error();
    client = std::move(created).value();
  }
  return std::unique_ptr<UnionPayAdapter>(new UnionPayAdapter(
      std::move(options), std::move(client), std::move(signer).value(), std::move(trust)));
}

UnionPayAdapter::UnionPayAdapter(UnionPayOptions options, std::shared_ptr<http::HttpsClient> client,
                                 Signer signer, Trust trust)
    : options_(std::move(options)),
      client_(std::move(client)),
      signer_(std::move(signer)),
      trust_(std::move(trust)) {}

Clock::time_point UnionPayAdapter::Now() const {
  return options_.clock ? options_.clock() : Clock::now();
}

Clock::time_point UnionPayAdapter::CertNow() const {
  return options_.cert_clock ? options_.cert_clock() : Now();
}

std::string UnionPayAdapter::FrontTransUrl() const {
  return options_.base_url + std::string(kFrontTransPath);
}

std::optional<UnionPayAdapter::OrderTimes> UnionPayAdapter::TimesOf(const std::string& reference,
                                                                    Clock::time_point recorded,
                                                                    bool create) {
  // The gateway's record of when the attempt or refund was written is the txnTime it is (or was)
  // sent with: it survives restarts, unlike the map.
  if (recorded != Clock::time_point{}) return OrderTimes{BeijingTime(recorded), std::nullopt};
  {
    std::lock_guard lock(mu_);
    if (auto it = times_.find(reference); it != times_.end()) return it->second.first;
  }
  if (options_.txn_time_of) {
    if (auto created = options_.txn_time_of(reference)) {
      return OrderTimes{BeijingTime(*created), std::nullopt};
    }
  }
  if (create) return OrderTimes{BeijingTime(Now()), std::nullopt};
  return std::nullopt;
}

void UnionPayAdapter::Remember(const std::string& reference, OrderTimes times) {
  std::lock_guard lock(mu_);
  if (auto it = times_.find(reference); it != times_.end()) {
    it->second.first = std::move(times);
    return;
  }
  order_.push_back(reference);
  times_.emplace(reference, std::make_pair(std::move(times), std::prev(order_.end())));
  while (times_.size() > options_.remembered_orders_max && !order_.empty()) {
    times_.erase(order_.front());
    order_.pop_front();
  }
}

Clock::time_point UnionPayAdapter::PayableUntil(const std::string& reference,
                                                std::string_view txn_time) const {
  {
    std::lock_guard lock(mu_);
    if (auto it = times_.find(reference); it != times_.end() &&
                                          it->second.first.txn_time == txn_time &&
                                          it->second.first.pay_timeout) {
      return *it->second.first.pay_timeout + options_.close_grace_s;
    }
  }
  // Not remembered: the latest payTimeout we ever set for an order sent at txn_time. A txnTime
  // that does not parse is not ours to judge: never payable-until-now.
  const auto sent_at = ParseBeijingTime(txn_time);
  if (!sent_at) return Clock::time_point::max() - std::chrono::hours(24 * 365);
  return std::chrono::time_point_cast<Clock::duration>(*sent_at + options_.pay_timeout_max_s) +
         options_.close_grace_s;
}

ProviderResult UnionPayAdapter::FinalOnlyWhenUnpayable(ProviderResult result,
                                                       const std::string& reference,
                                                       std::string_view txn_time) const {
  if (result.outcome != Outcome::kDeclined) return result;
  const Clock::time_point until = PayableUntil(reference, txn_time);
  if (Now() >= until) return result;
  result.outcome = Outcome::kPending;
  result.detail = fmt::format("{} ({} {}), still payable until {}", result.detail,
                              result.decline_code, result.decline_message, BeijingTime(until));
  result.decline_code.clear();
  result.decline_message.clear();
  return result;
}

boost::asio::awaitable<UnionPayAdapter::Reply> UnionPayAdapter::Call(std::string url,
                                                                     Fields fields) {
  Reply out;
  const std::string order_id = fields.count("orderId") != 0 ? fields.at("orderId") : "";
  const std::string txn_time = fields.at("txnTime");
  if (auto signed_ok = Sign(signer_, fields); !signed_ok) {
    out.failed = NotSent(signed_ok.error());
    co_return out;
  }
  http::HttpsRequest request;
  request.url = std::move(url);
  request.content_type = "application/x-www-form-urlencoded;charset=UTF-8";
  request.body = BuildForm(fields);
  request.deadlines.resolve_connect_ms = options_.connect_timeout_ms;
  request.deadlines.handshake_ms = options_.connect_timeout_ms;
  request.deadlines.write_ms = options_.request_timeout_ms;
  request.deadlines.response_ms = options_.request_timeout_ms;
  auto reply = co_await client_->Send(std::move(request));
  if (!reply) {
    out.failed =
        WithOutcome(reply.assume_error().delivery == http::Delivery::kNotSent ? Outcome::kNotSent
                                                                              : Outcome::kUnknown,
                    reply.assume_error().detail);
    co_return out;
  }
  const http::HttpsResponse& response = reply.assume_value();
  // Whatever the status, a reply that is not a verified 200 says nothing about the call.
  if (response.status != 200) {
    out.failed = WithOutcome(Outcome::kUnknown, fmt::format("http {}", response.status));
    co_return out;
  }
  auto parsed = ParseReply(response.body);
  if (!parsed) {
    out.failed = WithOutcome(Outcome::kUnknown, "malformed reply: " + parsed.error());
    co_return out;
  }
  if (auto verified = VerifySigned(parsed.value(), trust_, CertNow()); !verified) {
    out.failed = WithOutcome(Outcome::kUnknown, "reply not trusted: " + verified.error());
    co_return out;
  }
  if (auto echo = CheckEcho(parsed.value(), options_.mer_id, order_id, txn_time); !echo) {
    out.failed = WithOutcome(Outcome::kUnknown, echo.error());
    co_return out;
  }
  out.fields = std::move(parsed).value();
  co_return out;
}

boost::asio::awaitable<UnionPayAdapter::QueryResult> UnionPayAdapter::Query(
    std::string order_id, std::string txn_time, std::string expect_txn_type) {
  std::string url = options_.base_url + std::string(kQueryTransPath);
  Fields fields = QueryFields(options_.mer_id, order_id, txn_time);
  Reply reply = co_await Call(std::move(url), std::move(fields));
  QueryResult out;
  if (reply.failed) {
    out.result = *reply.failed;
    co_return out;
  }
  out.resp_code = reply.fields["respCode"];
  out.result = QueryOutcome(reply.fields, expect_txn_type, options_.error_codes);
  co_return out;
}

boost::asio::awaitable<ProviderResult> UnionPayAdapter::CreatePayment(
    CreatePaymentRequest request) {
  const bool web = request.method == "unionpay_web";
  if (!web && request.method != "unionpay_app") {
    co_return NotSent(fmt::format("method {} is not a UnionPay method", request.method));
  }
  if (request.currency != "CNY") co_return NotSent("UnionPay collects CNY only");
  if (request.amount_minor <= 0) co_return NotSent("amount must be positive");
  if (request.notify_url.empty()) co_return NotSent("notify_url is empty");
  const auto order_id = OrderIdFor(request.provider_reference);
  if (!order_id) {
    co_return NotSent(
        fmt::format("reference {} cannot be a UnionPay orderId", request.provider_reference));
  }
  const auto times = TimesOf(request.provider_reference, request.created_at, /*create=*/true);
  const auto sent_at = ParseBeijingTime(times->txn_time);
  Clock::time_point pay_timeout =
      std::chrono::time_point_cast<Clock::duration>(*sent_at + options_.pay_timeout_max_s);
  if (request.expires_at.time_since_epoch().count() != 0 && request.expires_at < pay_timeout) {
    pay_timeout = request.expires_at;
  }
  if (pay_timeout <= *sent_at) co_return NotSent("expires_at is not after the order's txnTime");
  Remember(request.provider_reference, OrderTimes{times->txn_time, pay_timeout});

  ConsumeParams params;
  params.mer_id = options_.mer_id;
  params.order_id = *order_id;
  params.txn_time = times->txn_time;
  params.amount_minor = request.amount_minor;
  params.back_url = request.notify_url;
  params.pay_timeout = BeijingTime(pay_timeout);
  if (web) {
    params.channel_type = "07";
    params.front_url = options_.front_url;
    Fields fields = ConsumeFields(params);
    if (auto signed_ok = Sign(signer_, fields); !signed_ok) co_return NotSent(signed_ok.error());
    ProviderResult result;
    // Nothing was sent: the payer's browser submits the order. Until it does, UnionPay does not
    // know it (a query answers respCode 34).
    result.outcome = Outcome::kPending;
    result.next_action_type = "html_form";
    result.next_action_value = AutoPostForm(FrontTransUrl(), fields);
    result.detail = fmt::format("web form for orderId {} txnTime {}", *order_id, times->txn_time);
    co_return result;
  }
  params.channel_type = "08";
  std::string url = options_.base_url + std::string(kAppTransPath);
  Reply reply = co_await Call(std::move(url), ConsumeFields(params));
  if (reply.failed) co_return *reply.failed;
  co_return AppConsumeOutcome(reply.fields, options_.error_codes);
}

boost::asio::awaitable<ProviderResult> UnionPayAdapter::QueryPayment(PaymentRef ref) {
  const auto order_id = OrderIdFor(ref.provider_reference);
  if (!order_id) co_return NotSent("reference cannot be a UnionPay orderId");
  const auto times = TimesOf(ref.provider_reference, ref.created_at, /*create=*/false);
  if (!times) co_return NotSent("the order's txnTime is unknown: it cannot be queried");
  QueryResult queried = co_await Query(*order_id, times->txn_time, "01");
  co_return FinalOnlyWhenUnpayable(std::move(queried.result), ref.provider_reference,
                                   times->txn_time);
}

boost::asio::awaitable<ProviderResult> UnionPayAdapter::ClosePayment(PaymentRef ref) {
  const auto order_id = OrderIdFor(ref.provider_reference);
  if (!order_id) co_return NotSent("reference cannot be a UnionPay orderId");
  const auto times = TimesOf(ref.provider_reference, ref.created_at, /*create=*/false);
  if (!times) co_return NotSent("the order's txnTime is unknown: it cannot be queried");
  QueryResult queried = co_await Query(*order_id, times->txn_time, "01");
  ProviderResult state = std::move(queried.result);
  // A verified "34, no such transaction": the order was never submitted or never paid.
  const bool never_submitted = queried.resp_code == "34";
  switch (state.outcome) {
    case Outcome::kSucceeded:
      co_return Declined("already_paid", "the payment was paid; refund it instead", state.detail);
    case Outcome::kDeclined:
    case Outcome::kPending:
      break;
    case Outcome::kNotSent:
    case Outcome::kUnknown:
      if (!never_submitted) co_return state;
      break;
  }
  // Unpaid (possibly after failed tries). UnionPay refuses payment after payTimeout; past it, and
  // a grace for payments it was still processing, the order can no longer be paid, which is all
  // closing promises.
  const Clock::time_point until = PayableUntil(ref.provider_reference, times->txn_time);
  if (Now() >= until) {
    ProviderResult closed;
    closed.outcome = Outcome::kSucceeded;
    closed.provider_transaction_id = state.provider_transaction_id;
    closed.detail =
        fmt::format("unpaid and no longer payable since {} ({})", BeijingTime(until), state.detail);
    co_return closed;
  }
  co_return Declined("not_closable_yet",
                     fmt::format("UnionPay cannot close an unpaid order; it stops being payable "
                                 "at {} Beijing time",
                                 BeijingTime(until)),
                     state.detail);
}

boost::asio::awaitable<ProviderResult> UnionPayAdapter::Refund(RefundRequest request) {
  if (request.currency != "CNY") co_return NotSent("UnionPay refunds CNY only");
  if (request.amount_minor <= 0) co_return NotSent("amount must be positive");
  if (request.notify_url.empty()) co_return NotSent("notify_url is empty");
  const auto payment_order_id = OrderIdFor(request.payment_reference);
  const auto refund_order_id = OrderIdFor(request.refund_reference);
  if (!payment_order_id || !refund_order_id) {
    co_return NotSent("reference cannot be a UnionPay orderId");
  }
  const auto payment_times = TimesOf(request.payment_reference, request.payment_created_at, /*create=*/false);
  if (!payment_times) co_return NotSent("the payment's txnTime is unknown: refund not sent");
  // The refund names the consume by its queryId, which only a query tells.
  QueryResult queried = co_await Query(*payment_order_id, payment_times->txn_time, "01");
  const ProviderResult& paid = queried.result;
  if (paid.outcome == Outcome::kNotSent || paid.outcome == Outcome::kUnknown) {
    co_return NotSent("refund not sent: the payment query gave no answer: " + paid.detail);
  }
  if (paid.outcome != Outcome::kSucceeded) {
    co_return Declined("payment_not_paid", "only a paid payment can be refunded", paid.detail);
  }
  if (paid.provider_transaction_id.empty()) co_return NotSent("the payment query gave no queryId");
  const auto refund_times = TimesOf(request.refund_reference, request.created_at, /*create=*/true);
  Remember(request.refund_reference, *refund_times);
  RefundParams params;
  params.mer_id = options_.mer_id;
  params.order_id = *refund_order_id;
  params.txn_time = refund_times->txn_time;
  params.amount_minor = request.amount_minor;
  params.orig_query_id = paid.provider_transaction_id;
  params.back_url = request.notify_url;
  std::string url = options_.base_url + std::string(kBackTransPath);
  Reply reply = co_await Call(std::move(url), RefundFields(params));
  if (reply.failed) co_return *reply.failed;
  co_return RefundOutcome(reply.fields, options_.error_codes);
}

boost::asio::awaitable<ProviderResult> UnionPayAdapter::QueryRefund(RefundRef ref) {
  const auto order_id = OrderIdFor(ref.refund_reference);
  if (!order_id) co_return NotSent("reference cannot be a UnionPay orderId");
  const auto times = TimesOf(ref.refund_reference, ref.created_at, /*create=*/false);
  if (!times) co_return NotSent("the refund's txnTime is unknown: it cannot be queried");
  QueryResult queried = co_await Query(*order_id, times->txn_time, "04");
  co_return queried.result;
}

Result<CallbackEvent, std::string> UnionPayAdapter::VerifyCallback(
    const CallbackRequest& request) const {
  if (request.merchant_account != options_.merchant_account) {
    return std::string("callback for another account");
  }
  auto fields = ParseNotifyForm(request.body);
  if (!fields) return "callback body: " + fields.error();
  if (auto verified = VerifySigned(fields.value(), trust_, CertNow()); !verified) {
    return "callback not trusted: " + verified.error();
  }
  auto event = NotifyEvent(fields.value(), options_.mer_id, options_.error_codes);
  if (!event) return event;
  if (event.value().kind == CallbackEvent::Kind::kPayment) {
    event.value().result = FinalOnlyWhenUnpayable(
        std::move(event.value().result), event.value().reference, fields.value()["txnTime"]);
  }
  return event;
}

CallbackAck UnionPayAdapter::AckCallback(bool accepted) const {
  CallbackAck ack;
  // UnionPay reads only the status: 200 is success, anything else is redelivered.
  ack.status = accepted ? 200 : 503;
  ack.content_type = "text/plain";
  ack.body = accepted ? "ok" : "retry";
  return ack;
}

boost::asio::awaitable<Result<BillDownload, std::string>> UnionPayAdapter::DownloadBill(
    std::string settle_date) {
  if (settle_date.size() != 8 || !money::ParseInteger(settle_date)) {
    co_return std::string("settle date must be YYYYMMDD");
  }
  const std::string base =
      options_.file_base_url.empty() ? options_.base_url : options_.file_base_url;
  std::string url = base + std::string(kFileTransPath);
  Fields fields = FileFields(options_.mer_id, BeijingTime(Now()), settle_date.substr(4, 4));
  Reply reply = co_await Call(std::move(url), std::move(fields));
  if (reply.failed) {
    co_return fmt::format("fileTransReq {}: {}", OutcomeName(reply.failed->outcome),
                          reply.failed->detail);
  }
  const std::string& code = reply.fields["respCode"];
  if (code != "00") {
    // 98: no file for that date (yet).
    co_return fmt::format("fileTransReq respCode={} {}", code, reply.fields["respMsg"]);
  }
  auto opened = OpenFileContent(reply.fields["fileContent"], settle_date);
  if (!opened) co_return opened.error();
  BillDownload download = std::move(opened).value();
  download.file_name = reply.fields["fileName"];
  co_return download;
}

}  // namespace paygate::adapters::unionpay
