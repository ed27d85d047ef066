#include "adapters/sandbox/sandbox_adapter.h"

#include <fmt/format.h>

#include "adapters/sandbox/signing.h"

namespace paygate::adapters::sandbox {

Result<std::unique_ptr<SandboxAdapter>, std::string> SandboxAdapter::Create(
    SandboxOptions options, std::shared_ptr<http::HttpsClient> client) {
  if (auto url = http::ParseHttpsUrl(options.base_url); !url) {
    return fmt::format("sandbox base_url: {}", url.error());
  }
  if (options.merchant_account.empty()) return std::string("sandbox merchant_account is empty");
  if (options.hmac_secret.empty()) return std::string("sandbox hmac secret is empty");
  if (client == nullptr) {
    http::HttpsClientOptions client_options;
    client_options.ca_file = options.ca_file;
    auto created = http::HttpsClient::Create(std::move(client_options));
    if (!created) return created.error();
    client = std::move(created).value();
  }
  return std::unique_ptr<SandboxAdapter>(new SandboxAdapter(std::move(options), std::move(client)));
}

SandboxAdapter::SandboxAdapter(SandboxOptions options, std::shared_ptr<http::HttpsClient> client)
    : options_(std::move(options)), client_(std::move(client)) {}

std::chrono::system_clock::time_point SandboxAdapter::Now() const {
  return options_.clock ? options_.clock() : std::chrono::system_clock::now();
}

boost::asio::awaitable<ProviderResult> SandboxAdapter::Call(Operation op, std::string reference,
                                                            std::string body) {
  const std::string path(OperationPath(op));
  const std::string nonce = NewNonce();
  http::HttpsRequest request;
  request.url = options_.base_url + path;
  request.headers = SignRequest(options_.merchant_account, options_.hmac_secret.reveal(), path,
                                body, nonce, Now());
  request.body = std::move(body);
  request.deadlines.resolve_connect_ms = options_.connect_timeout_ms;
  request.deadlines.handshake_ms = options_.connect_timeout_ms;
  request.deadlines.write_ms = options_.request_timeout_ms;
  request.deadlines.response_ms = options_.request_timeout_ms;

  auto reply = co_await client_->Send(std::move(request));
  if (!reply) {
    ProviderResult result;
    result.outcome = reply.assume_error().delivery == http::Delivery::kNotSent ? Outcome::kNotSent
                                                                               : Outcome::kUnknown;
    result.detail = reply.assume_error().detail;
    co_return result;
  }
  ReplyContext context;
  context.op = op;
  context.account = options_.merchant_account;
  context.secret = options_.hmac_secret.reveal();
  context.request_nonce = nonce;
  context.reference = reference;
  context.now = Now();
  co_return ReadReply(context, reply.assume_value());
}

boost::asio::awaitable<ProviderResult> SandboxAdapter::CreatePayment(CreatePaymentRequest request) {
  std::string body = EncodeCreatePayment(request);
  return Call(Operation::kCreatePayment, std::move(request.provider_reference), std::move(body));
}

boost::asio::awaitable<ProviderResult> SandboxAdapter::QueryPayment(PaymentRef ref) {
  std::string body = EncodePaymentRef(ref);
  return Call(Operation::kQueryPayment, std::move(ref.provider_reference), std::move(body));
}

boost::asio::awaitable<ProviderResult> SandboxAdapter::ClosePayment(PaymentRef ref) {
  std::string body = EncodePaymentRef(ref);
  return Call(Operation::kClosePayment, std::move(ref.provider_reference), std::move(body));
}

boost::asio::awaitable<ProviderResult> SandboxAdapter::Refund(RefundRequest request) {
  std::string body = EncodeCreateRefund(request);
  return Call(Operation::kCreateRefund, std::move(request.refund_reference), std::move(body));
}

boost::asio::awaitable<ProviderResult> SandboxAdapter::QueryRefund(RefundRef ref) {
  std::string body = EncodeRefundRef(ref);
  return Call(Operation::kQueryRefund, std::move(ref.refund_reference), std::move(body));
}

boost::asio::awaitable<ProviderResult> SandboxAdapter::CreatePayout(CreatePayoutRequest request) {
  std::string body = EncodeCreatePayout(request);
  return Call(Operation::kCreatePayout, std::move(request.provider_reference), std::move(body));
}

boost::asio::awaitable<ProviderResult> SandboxAdapter::QueryPayout(PayoutRef ref) {
  std::string body = EncodePayoutRef(ref);
  return Call(Operation::kQueryPayout, std::move(ref.provider_reference), std::move(body));
}

Result<CallbackEvent, std::string> SandboxAdapter::VerifyCallback(
    const CallbackRequest& request) const {
  return ReadCallback(options_.merchant_account, options_.hmac_secret.reveal(), request, Now());
}

CallbackAck SandboxAdapter::AckCallback(bool accepted) const { return MakeAck(accepted); }

}  // namespace paygate::adapters::sandbox
