#include "adapters/alipay/alipay_adapter.h"

#include <fmt/format.h>

#include "adapters/alipay/bill.h"
#include "adapters/common/codec.h"

namespace paygate::adapters::alipay {
namespace {

ProviderResult FromTransport(const http::HttpsError& error) {
  ProviderResult result;
  result.outcome =
      error.delivery == http::Delivery::kNotSent ? Outcome::kNotSent : Outcome::kUnknown;
  result.detail = error.detail;
  return result;
}

AlipayResult<Credentials> LoadCredentials(const AlipayOptions& options) {
  if (options.app_id.empty()) return Error{"alipay app_id is empty"};
  auto app_key = crypto::PrivateKey::FromPem(options.app_private_key_pem.reveal());
  if (!app_key) return Error{"alipay app private key: " + app_key.error().message};
  const bool cert_mode = !options.app_cert_pem.empty() || !options.alipay_cert_pem.empty() ||
                         !options.alipay_root_cert_pem.empty();
  if (!cert_mode) {
    auto alipay_key = crypto::PublicKey::FromPem(options.alipay_public_key_pem);
    if (!alipay_key) return Error{"alipay public key: " + alipay_key.error().message};
    return Credentials{options.app_id, app_key.value(), alipay_key.value(), "", "", ""};
  }
  auto app_cert = crypto::Certificate::Parse(options.app_cert_pem);
  if (!app_cert) return Error{"alipay app certificate: " + app_cert.error().message};
  auto alipay_cert = crypto::Certificate::Parse(options.alipay_cert_pem);
  if (!alipay_cert) return Error{"alipay certificate: " + alipay_cert.error().message};
  auto root_sn = RootCertSn(options.alipay_root_cert_pem);
  if (!root_sn) return Error{"alipay root certificate: " + root_sn.error().message};
  return Credentials{options.app_id,
                     app_key.value(),
                     alipay_cert.value().Key(),
                     CertSn(app_cert.value()),
                     root_sn.value(),
                     CertSn(alipay_cert.value())};
}

}  // namespace

AlipayResult<std::unique_ptr<AlipayAdapter>> AlipayAdapter::Create(
    AlipayOptions options, std::shared_ptr<http::HttpsClient> client) {
  if (auto url = http::ParseHttpsUrl(options.gateway_url); !url) {
    return Error{fmt::format("alipay gateway_url: {}", url.error())};
  }
  if (options.merchant_account.empty()) return Error{"alipay merchant_account is empty"};
  auto credentials = LoadCredentials(options);
  if (!credentials) return credentials.error();
  ErrorTable errors = DefaultErrorTable();
  for (const auto& [sub_code, code] : options.error_codes) errors.codes[sub_code] = code;
  for (const auto& sub_code : options.unknown_sub_codes) errors.unknown.insert(sub_code);
  if (client == nullptr) {
    http::HttpsClientOptions client_options;
    client_options.ca_file = options.ca_file;
    auto created = http::HttpsClient::Create(std::move(client_options));
    if (!created) return Error{created.error()};
    client = std::move(created).value();
  }
  return std::unique_ptr<AlipayAdapter>(new AlipayAdapter(
      std::move(options), std::move(credentials).value(), std::move(errors), std::move(client)));
}

AlipayAdapter::AlipayAdapter(AlipayOptions options, Credentials credentials, ErrorTable errors,
                             std::shared_ptr<http::HttpsClient> client)
    : options_(std::move(options)),
      credentials_(std::move(credentials)),
      errors_(std::move(errors)),
      client_(std::move(client)) {}

std::chrono::system_clock::time_point AlipayAdapter::Now() const {
  return options_.clock ? options_.clock() : std::chrono::system_clock::now();
}

http::HttpsRequest AlipayAdapter::Post(std::string body) const {
  http::HttpsRequest request;
  request.method = "POST";
  request.url = options_.gateway_url;
  request.content_type = "application/x-www-form-urlencoded;charset=utf-8";
  request.body = std::move(body);
  request.deadlines.resolve_connect_ms = options_.connect_timeout_ms;
  request.deadlines.handshake_ms = options_.connect_timeout_ms;
  request.deadlines.write_ms = options_.request_timeout_ms;
  request.deadlines.response_ms = options_.request_timeout_ms;
  return request;
}

boost::asio::awaitable<ProviderResult> AlipayAdapter::Call(Operation op, std::string biz_content,
                                                           std::string reference) {
  auto params = SignedCall(credentials_, MethodOf(op), biz_content, "", Now());
  if (!params) {
    ProviderResult result;
    result.outcome = Outcome::kNotSent;
    result.detail = "signing failed: " + params.error().message;
    co_return result;
  }
  auto reply = co_await client_->Send(Post(codec::BuildForm(params.value())));
  if (!reply) co_return FromTransport(reply.assume_error());
  ReplyContext context;
  context.op = op;
  context.credentials = &credentials_;
  context.errors = &errors_;
  context.reference = reference;
  co_return ReadReply(context, reply.assume_value());
}

boost::asio::awaitable<ProviderResult> AlipayAdapter::CreatePayment(CreatePaymentRequest request) {
  co_return BuildPayment(credentials_, options_.gateway_url, request, Now());
}

boost::asio::awaitable<ProviderResult> AlipayAdapter::QueryPayment(PaymentRef ref) {
  std::string biz = EncodeTradeRef(ref.provider_reference);
  return Call(Operation::kQueryPayment, std::move(biz), std::move(ref.provider_reference));
}

boost::asio::awaitable<ProviderResult> AlipayAdapter::ClosePayment(PaymentRef ref) {
  std::string biz = EncodeTradeRef(ref.provider_reference);
  return Call(Operation::kClosePayment, std::move(biz), std::move(ref.provider_reference));
}

boost::asio::awaitable<ProviderResult> AlipayAdapter::Refund(RefundRequest request) {
  auto biz = EncodeRefund(request);
  if (!biz) {
    ProviderResult result;
    result.outcome = Outcome::kNotSent;
    result.detail = biz.error().message;
    co_return result;
  }
  co_return co_await Call(Operation::kRefund, std::move(biz).value(),
                          std::move(request.payment_reference));
}

boost::asio::awaitable<ProviderResult> AlipayAdapter::QueryRefund(RefundRef ref) {
  std::string biz = EncodeRefundQuery(ref);
  return Call(Operation::kQueryRefund, std::move(biz), std::move(ref.refund_reference));
}

boost::asio::awaitable<ProviderResult> AlipayAdapter::CreatePayout(CreatePayoutRequest request) {
  ProviderResult refused;
  refused.outcome = Outcome::kNotSent;
  if (request.method != "alipay_transfer") {
    refused.detail = "alipay pays out by method alipay_transfer only";
    co_return refused;
  }
  const std::optional<std::string_view> identity_type =
      PayeeIdentityType(request.beneficiary.account_type);
  if (!identity_type) {
    refused.detail = "alipay_transfer needs an alipay_user_id, alipay_login_id or alipay_open_id";
    co_return refused;
  }
  PayoutRequest transfer;
  transfer.merchant_account = std::move(request.merchant_account);
  transfer.reference = std::move(request.provider_reference);
  transfer.amount_minor = request.amount_minor;
  transfer.currency = std::move(request.currency);
  transfer.payee_identity_type = std::string(*identity_type);
  transfer.payee_identity = std::move(request.beneficiary.account);
  // Sent whenever known: Alipay then checks it against the account (PAYEE_USER_INFO_ERROR).
  transfer.payee_name = std::move(request.beneficiary.name);
  transfer.title = request.description;
  transfer.remark = std::move(request.description);
  ProviderResult result = co_await Transfer(std::move(transfer));
  co_return result;
}

boost::asio::awaitable<ProviderResult> AlipayAdapter::QueryPayout(PayoutRef ref) {
  return QueryTransfer(std::move(ref.provider_reference));
}

boost::asio::awaitable<ProviderResult> AlipayAdapter::Transfer(PayoutRequest request) {
  ProviderResult refused;
  refused.outcome = Outcome::kNotSent;
  if (!credentials_.cert_mode()) {
    refused.detail = "alipay transfers need certificate mode";
    co_return refused;
  }
  auto biz = EncodeTransfer(request);
  if (!biz) {
    refused.detail = biz.error().message;
    co_return refused;
  }
  co_return co_await Call(Operation::kPayout, std::move(biz).value(),
                          std::move(request.reference));
}

boost::asio::awaitable<ProviderResult> AlipayAdapter::QueryTransfer(std::string reference) {
  std::string biz = EncodeTransferQuery(reference);
  return Call(Operation::kQueryPayout, std::move(biz), std::move(reference));
}

boost::asio::awaitable<AlipayResult<BillDownload>> AlipayAdapter::DownloadBill(
    std::string bill_date) {
  auto params =
      SignedCall(credentials_, kMethodBillUrl, EncodeBillUrl("trade", bill_date), "", Now());
  if (!params) co_return Error{"signing failed: " + params.error().message};
  auto reply = co_await client_->Send(Post(codec::BuildForm(params.value())));
  if (!reply) co_return Error{"bill URL query: " + reply.assume_error().detail};
  auto url = ReadBillUrlReply(credentials_, reply.assume_value());
  if (!url) co_return Error{"bill URL query: " + url.error().message};

  http::HttpsRequest get;
  get.method = "GET";
  get.url = url.value();
  get.deadlines.resolve_connect_ms = options_.connect_timeout_ms;
  get.deadlines.handshake_ms = options_.connect_timeout_ms;
  get.deadlines.write_ms = options_.request_timeout_ms;
  get.deadlines.response_ms = options_.request_timeout_ms;
  auto file = co_await client_->Send(std::move(get));
  if (!file) co_return Error{"bill download: " + file.assume_error().detail};
  if (file.assume_value().status != 200) {
    co_return Error{fmt::format("bill download: http {}", file.assume_value().status)};
  }
  BillDownload download;
  download.download_url = std::move(url).value();
  download.raw = std::move(file.assume_value().body);
  auto detail = DetailCsvOfBill(download.raw, options_.bill_max_bytes);
  if (!detail) {
    download.file_error = detail.error().message;
    co_return download;
  }
  auto parsed = ParseBillCsvGbk(detail.value());
  if (parsed) {
    download.file = std::move(parsed).value();
  } else {
    download.file_error = parsed.error().message;
  }
  co_return download;
}

Result<CallbackEvent, std::string> AlipayAdapter::VerifyCallback(
    const CallbackRequest& request) const {
  NotifyContext context{&credentials_, options_.merchant_account, options_.seller_id};
  auto event = ReadNotify(context, request);
  if (!event) return event.error().message;
  return std::move(event).value();
}

CallbackAck AlipayAdapter::AckCallback(bool accepted) const { return MakeAck(accepted); }

}  // namespace paygate::adapters::alipay
