#include "adapters/wechatpay/wechatpay_adapter.h"

#include <fmt/format.h>

#include "adapters/common/archive.h"
#include "adapters/common/crypto.h"
#include "adapters/wechatpay/bill.h"

namespace paygate::adapters::wechatpay {
namespace {

ProviderResult WithOutcome(Outcome outcome, std::string detail) {
  ProviderResult result;
  result.outcome = outcome;
  result.detail = std::move(detail);
  return result;
}

// A transfer's result as a payout's: the confirmation package is how the payee proceeds.
ProviderResult PayoutResult(TransferResult transfer) {
  ProviderResult result = std::move(transfer.result);
  if (result.outcome == Outcome::kPending && !transfer.package_info.empty()) {
    result.next_action_type = "wechat_transfer_package";
    result.next_action_value = std::move(transfer.package_info);
  }
  return result;
}

}  // namespace

Result<std::unique_ptr<WechatPayAdapter>, std::string> WechatPayAdapter::Create(
    WechatPayOptions options, std::shared_ptr<http::HttpsClient> client) {
  if (auto url = http::ParseHttpsUrl(options.base_url); !url) {
    return fmt::format("wechatpay base_url: {}", url.error());
  }
  if (options.merchant_account.empty()) return std::string("wechatpay merchant_account is empty");
  if (options.mchid.empty() || options.appid.empty()) {
    return std::string("wechatpay mchid and appid are required");
  }
  if (options.merchant_serial_no.empty())
    return std::string("wechatpay merchant_serial_no is empty");
  if (options.apiv3_key.size() != 32 && options.apiv3_key.size() != 16) {
    return std::string("wechatpay apiv3_key must be 32 bytes");
  }
  auto key = crypto::PrivateKey::FromPem(options.merchant_private_key_pem.reveal());
  if (!key) return "wechatpay merchant private key: " + key.error().message;

  auto verifiers = std::make_shared<Verifiers>();
  std::string first_public_key;
  std::string first_certificate;
  for (const auto& [id, pem] : options.wechatpay_public_keys) {
    auto public_key = crypto::PublicKey::FromPem(pem);
    if (!public_key)
      return fmt::format("wechatpay public key {}: {}", id, public_key.error().message);
    verifiers->Add(id, std::move(public_key).value());
    if (first_public_key.empty()) first_public_key = id;
  }
  for (const auto& pem : options.platform_certificates_pem) {
    auto certificate = crypto::Certificate::Parse(pem);
    if (!certificate) return "wechatpay platform certificate: " + certificate.error().message;
    verifiers->Add(certificate.value());
    if (first_certificate.empty()) first_certificate = certificate.value().SerialHex();
  }
  std::string encrypt_key_id = options.encrypt_key_id;
  if (encrypt_key_id.empty()) {
    encrypt_key_id = first_public_key.empty() ? first_certificate : first_public_key;
  }
  if (!encrypt_key_id.empty() && verifiers->Find(encrypt_key_id) == nullptr) {
    return fmt::format("wechatpay encrypt_key_id {} is not among the configured keys",
                       encrypt_key_id);
  }
  // No WeChat Pay key at all is allowed: RefreshCertificates() can fetch them, and until then every
  // reply is unknown (never trusted).
  if (client == nullptr) {
    http::HttpsClientOptions client_options;
    client_options.ca_file = options.ca_file;
    // Bills are the largest replies.
    client_options.response_body_max_bytes = options.bill_max_bytes;
    auto created = http::HttpsClient::Create(std::move(client_options));
    if (!created) return created.error();
    client = std::move(created).value();
  }
  MerchantKey merchant{options.mchid, options.merchant_serial_no, std::move(key).value()};
  return std::unique_ptr<WechatPayAdapter>(
      new WechatPayAdapter(std::move(options), std::move(merchant), std::move(verifiers),
                           std::move(encrypt_key_id), std::move(client)));
}

WechatPayAdapter::WechatPayAdapter(WechatPayOptions options, MerchantKey merchant,
                                   std::shared_ptr<const Verifiers> verifiers,
                                   std::string encrypt_key_id,
                                   std::shared_ptr<http::HttpsClient> client)
    : options_(std::move(options)),
      merchant_(std::move(merchant)),
      encrypt_key_id_(std::move(encrypt_key_id)),
      client_(std::move(client)),
      verifiers_(std::move(verifiers)) {}

std::chrono::system_clock::time_point WechatPayAdapter::Now() const {
  return options_.clock ? options_.clock() : std::chrono::system_clock::now();
}

std::shared_ptr<const Verifiers> WechatPayAdapter::verifiers() const {
  std::lock_guard lock(verifiers_mu_);
  return verifiers_;
}

boost::asio::awaitable<Result<http::HttpsResponse, ProviderResult>> WechatPayAdapter::Call(
    std::string method, std::string target, std::string body, http::Headers extra,
    bool signed_reply) {
  const std::string nonce = NewNonce();
  auto authorization = SignRequest(merchant_, method, target, UnixSeconds(Now()), nonce, body);
  if (!authorization) co_return WithOutcome(Outcome::kNotSent, authorization.error().message);
  http::HttpsRequest request;
  request.method = method;
  request.url = options_.base_url + target;
  request.headers = {{"authorization", std::move(authorization).value()},
                     {"accept", "application/json"}};
  for (auto& header : extra) request.headers.push_back(std::move(header));
  request.body = std::move(body);
  request.deadlines.resolve_connect_ms = options_.connect_timeout_ms;
  request.deadlines.handshake_ms = options_.connect_timeout_ms;
  request.deadlines.write_ms = options_.request_timeout_ms;
  request.deadlines.response_ms = options_.request_timeout_ms;

  auto reply = co_await client_->Send(std::move(request));
  if (!reply) {
    const auto& error = reply.assume_error();
    co_return WithOutcome(
        error.delivery == http::Delivery::kNotSent ? Outcome::kNotSent : Outcome::kUnknown,
        error.detail);
  }
  if (signed_reply) {
    if (auto ok = VerifyReply(*verifiers(), reply.assume_value(), Now()); !ok) {
      co_return WithOutcome(Outcome::kUnknown, ok.error().message);
    }
  } else if (reply.assume_value().status >= 500) {
    co_return WithOutcome(Outcome::kUnknown, fmt::format("http {}", reply.assume_value().status));
  }
  co_return std::move(reply).assume_value();
}

boost::asio::awaitable<ProviderResult> WechatPayAdapter::CreatePayment(
    CreatePaymentRequest request) {
  return CreatePaymentFor(std::move(request), PayerInfo{});
}

boost::asio::awaitable<ProviderResult> WechatPayAdapter::CreatePaymentFor(
    CreatePaymentRequest request, PayerInfo payer) {
  const auto method = ParseMethod(request.method);
  if (!method) {
    co_return WithOutcome(Outcome::kNotSent,
                          fmt::format("method {} is not a WeChat Pay method", request.method));
  }
  auto body = EncodePrepay({options_.mchid, options_.appid}, *method, request, payer);
  if (!body) co_return WithOutcome(Outcome::kNotSent, body.error().message);
  auto reply = co_await Call("POST", std::string(PrepayPath(*method)), std::move(body).value());
  if (!reply) co_return std::move(reply).assume_error();
  ProviderResult result = ReadPrepayReply(*method, reply.assume_value(), options_.error_codes);
  if (result.outcome != Outcome::kPending ||
      (*method != Method::kJsapi && *method != Method::kApp)) {
    co_return result;
  }
  // The prepay id becomes the parameters the payer's WeChat needs, signed by us.
  const std::string prepay_id = std::move(result.next_action_value);
  const std::int64_t now = UnixSeconds(Now());
  auto params =
      *method == Method::kJsapi
          ? JsapiPayParams(merchant_.key, options_.appid, now, NewNonce(), prepay_id)
          : AppPayParams(merchant_.key, options_.appid, options_.mchid, now, NewNonce(), prepay_id);
  if (!params) {
    // The order exists at WeChat; only our signature failed. Pending, with nothing to show.
    result.next_action_type.clear();
    result.next_action_value.clear();
    result.detail = params.error().message;
    co_return result;
  }
  result.next_action_type = *method == Method::kJsapi ? "wechat_jsapi_params" : "wechat_app_params";
  result.next_action_value = std::move(params).value();
  co_return result;
}

boost::asio::awaitable<ProviderResult> WechatPayAdapter::QueryPayment(PaymentRef ref) {
  auto reply = co_await Call("GET", QueryPaymentTarget(options_.mchid, ref.provider_reference), "");
  if (!reply) co_return std::move(reply).assume_error();
  co_return ReadQueryPaymentReply(reply.assume_value(), ref.provider_reference);
}

boost::asio::awaitable<ProviderResult> WechatPayAdapter::ClosePayment(PaymentRef ref) {
  if (!ValidReference(ref.provider_reference, 32)) {
    co_return WithOutcome(Outcome::kNotSent, "out_trade_no not in WeChat's alphabet");
  }
  auto reply = co_await Call("POST", ClosePaymentTarget(ref.provider_reference),
                             EncodeClose(options_.mchid));
  if (!reply) co_return std::move(reply).assume_error();
  co_return ReadCloseReply(reply.assume_value(), options_.error_codes);
}

boost::asio::awaitable<ProviderResult> WechatPayAdapter::Refund(RefundRequest request) {
  auto body = EncodeRefund(request);
  if (!body) co_return WithOutcome(Outcome::kNotSent, body.error().message);
  auto reply = co_await Call("POST", std::string(kRefundPath), std::move(body).value());
  if (!reply) co_return std::move(reply).assume_error();
  co_return ReadRefundReply(Operation::kCreateRefund, reply.assume_value(),
                            request.refund_reference, options_.error_codes);
}

boost::asio::awaitable<ProviderResult> WechatPayAdapter::QueryRefund(RefundRef ref) {
  auto reply = co_await Call("GET", QueryRefundTarget(ref.refund_reference), "");
  if (!reply) co_return std::move(reply).assume_error();
  co_return ReadRefundReply(Operation::kQueryRefund, reply.assume_value(), ref.refund_reference,
                            options_.error_codes);
}

Result<CallbackEvent, std::string> WechatPayAdapter::VerifyCallback(
    const CallbackRequest& request) const {
  if (request.merchant_account != options_.merchant_account) {
    return std::string("callback for another account");
  }
  return ReadCallback(*verifiers(), options_.apiv3_key.reveal(), options_.mchid, request, Now());
}

CallbackAck WechatPayAdapter::AckCallback(bool accepted) const { return MakeAck(accepted); }

boost::asio::awaitable<TransferResult> WechatPayAdapter::CreateTransfer(TransferRequest request) {
  TransferResult out;
  std::string encrypted_name;
  http::Headers extra;
  if (!request.user_name.empty()) {
    std::shared_ptr<const Verifiers> keys;
    std::string key_id;
    {
      std::lock_guard lock(verifiers_mu_);
      keys = verifiers_;
      key_id = encrypt_key_id_;
    }
    const crypto::PublicKey* key = keys->Find(key_id);
    if (key == nullptr) {
      out.result = WithOutcome(Outcome::kNotSent, "no WeChat Pay key to encrypt user_name with");
      co_return out;
    }
    auto sealed = EncryptSensitive(*key, request.user_name);
    if (!sealed) {
      out.result = WithOutcome(Outcome::kNotSent, "encrypt user_name: " + sealed.error().message);
      co_return out;
    }
    encrypted_name = std::move(sealed).value();
    // Tells WeChat which of its keys can decrypt the field.
    extra.emplace_back("wechatpay-serial", key_id);
  }
  auto body = EncodeTransfer(options_.appid, request, encrypted_name);
  if (!body) {
    out.result = WithOutcome(Outcome::kNotSent, body.error().message);
    co_return out;
  }
  auto reply =
      co_await Call("POST", std::string(kTransferPath), std::move(body).value(), std::move(extra));
  if (!reply) {
    out.result = std::move(reply).assume_error();
    co_return out;
  }
  co_return ReadTransferReply(Operation::kCreateTransfer, reply.assume_value(), request.out_bill_no,
                              options_.error_codes);
}

boost::asio::awaitable<ProviderResult> WechatPayAdapter::CreatePayout(CreatePayoutRequest request) {
  if (request.method != "wechat_transfer") {
    co_return WithOutcome(Outcome::kNotSent, "wechatpay pays out by method wechat_transfer only");
  }
  if (request.beneficiary.account_type != "wechat_openid" || request.beneficiary.account.empty()) {
    co_return WithOutcome(Outcome::kNotSent, "wechat_transfer needs a wechat_openid beneficiary");
  }
  auto out_bill_no = OutBillNoOf(request.provider_reference);
  if (!out_bill_no) co_return WithOutcome(Outcome::kNotSent, out_bill_no.error().message);
  if (request.amount_minor >= kTransferNameThresholdMinor && request.beneficiary.name.empty()) {
    co_return WithOutcome(Outcome::kNotSent, "WeChat requires the payee's name from 2000 CNY");
  }
  TransferRequest transfer;
  transfer.out_bill_no = std::move(out_bill_no).value();
  transfer.openid = std::move(request.beneficiary.account);
  // Sent whenever known, also below the threshold: WeChat then checks it against the account.
  transfer.user_name = std::move(request.beneficiary.name);
  transfer.amount_minor = request.amount_minor;
  transfer.currency = std::move(request.currency);
  transfer.remark = std::move(request.description);
  transfer.notify_url = std::move(request.notify_url);
  transfer.transfer_scene_id = options_.transfer_scene_id;
  transfer.scene_report_infos = options_.transfer_scene_report_infos;
  TransferResult created = co_await CreateTransfer(std::move(transfer));
  co_return PayoutResult(std::move(created));
}

boost::asio::awaitable<ProviderResult> WechatPayAdapter::QueryPayout(PayoutRef ref) {
  auto out_bill_no = OutBillNoOf(ref.provider_reference);
  if (!out_bill_no) co_return WithOutcome(Outcome::kNotSent, out_bill_no.error().message);
  TransferResult queried = co_await QueryTransfer(std::move(out_bill_no).value());
  co_return PayoutResult(std::move(queried));
}

boost::asio::awaitable<TransferResult> WechatPayAdapter::QueryTransfer(std::string out_bill_no) {
  TransferResult out;
  if (!ValidReference(out_bill_no, 32)) {
    out.result = WithOutcome(Outcome::kNotSent, "out_bill_no not in WeChat's alphabet");
    co_return out;
  }
  auto reply = co_await Call("GET", QueryTransferTarget(out_bill_no), "");
  if (!reply) {
    out.result = std::move(reply).assume_error();
    co_return out;
  }
  co_return ReadTransferReply(Operation::kQueryTransfer, reply.assume_value(), out_bill_no,
                              options_.error_codes);
}

Result<TransferEvent, std::string> WechatPayAdapter::VerifyTransferCallback(
    const CallbackRequest& request) const {
  if (request.merchant_account != options_.merchant_account) {
    return std::string("callback for another account");
  }
  return ReadTransferCallback(*verifiers(), options_.apiv3_key.reveal(), options_.mchid, request,
                              Now());
}

boost::asio::awaitable<Result<WechatPayAdapter::FetchedBill, std::string>>
WechatPayAdapter::FetchTradeBill(std::string bill_date, std::string bill_type, bool gzip) {
  auto handle_reply = co_await Call("GET", TradeBillTarget(bill_date, bill_type, gzip), "");
  if (!handle_reply) co_return "tradebill: " + handle_reply.assume_error().detail;
  auto handle = ReadBillReply(handle_reply.assume_value());
  if (!handle) co_return "tradebill: " + handle.error().message;

  // The download URL must point at the API origin we trust: the request carries our signature.
  auto url = http::ParseHttpsUrl(handle.value().download_url);
  auto base = http::ParseHttpsUrl(options_.base_url);
  if (!url || url.value().host != base.value().host || url.value().port != base.value().port) {
    co_return std::string("tradebill: download_url is not on the API host");
  }
  // The file itself is not signed by WeChat (PROTOCOLS.md §A.3); its SHA-1 from the signed reply
  // above is what vouches for it.
  auto file_reply = co_await Call("GET", url.value().target, "", {}, /*signed_reply=*/false);
  if (!file_reply) co_return "bill download: " + file_reply.assume_error().detail;
  if (file_reply.assume_value().status != 200) {
    co_return fmt::format("bill download: http {}", file_reply.assume_value().status);
  }
  co_return FetchedBill{.hash_type = std::move(handle.value().hash_type),
                        .hash_value = std::move(handle.value().hash_value),
                        .raw = std::move(file_reply.assume_value().body)};
}

boost::asio::awaitable<Result<BillDownload, std::string>> WechatPayAdapter::DownloadTradeBill(
    std::string bill_date, std::string bill_type, bool gzip) {
  auto fetched = co_await FetchTradeBill(std::move(bill_date), std::move(bill_type), gzip);
  if (!fetched) co_return fetched.error();
  BillDownload out;
  out.raw = std::move(fetched.value().raw);
  if (gzip) {
    auto inflated = archive::Gunzip(out.raw, options_.bill_max_bytes);
    if (!inflated) co_return "bill download: " + inflated.error().message;
    out.file = std::move(inflated).value();
  } else {
    out.file = out.raw;
  }
  if (auto ok = CheckBillHash(fetched.value().hash_type, fetched.value().hash_value, out.file);
      !ok) {
    co_return "bill download: " + ok.error().message;
  }
  auto parsed = ParseTradeBill(out.file);
  if (!parsed) co_return "bill download: " + parsed.error().message;
  out.parsed = std::move(parsed).value();
  co_return out;
}

boost::asio::awaitable<Result<BillDownload, std::string>> WechatPayAdapter::DownloadTradeBillGzip(
    std::string bill_date, std::string bill_type) {
  auto fetched = co_await FetchTradeBill(std::move(bill_date), std::move(bill_type), true);
  if (!fetched) co_return fetched.error();
  // WeChat's SHA-1 is of the decompressed file: inflate a piece at a time into the digest only.
  archive::InflateStream inflater(archive::InflateStream::Wrapper::kGzip,
                                  archive::kStreamedInflatedMax);
  crypto::DigestStream sha1(crypto::Digest::kSha1);
  auto inflated = inflater.Feed(fetched.value().raw, [&sha1](std::string_view piece) {
    sha1.Update(piece);
    return true;
  });
  if (inflated) inflated = inflater.Finish();
  if (!inflated) co_return "bill download: " + inflated.error().message;
  if (auto ok = CheckBillDigest(fetched.value().hash_type, fetched.value().hash_value,
                                sha1.Final());
      !ok) {
    co_return "bill download: " + ok.error().message;
  }
  BillDownload out;
  out.raw = std::move(fetched.value().raw);
  co_return out;
}

boost::asio::awaitable<Result<std::size_t, std::string>> WechatPayAdapter::RefreshCertificates() {
  auto reply = co_await Call("GET", std::string(kCertificatesPath), "", {}, /*signed_reply=*/false);
  if (!reply) co_return "certificates: " + reply.assume_error().detail;
  const http::HttpsResponse& response = reply.assume_value();
  if (response.status != 200) co_return fmt::format("certificates: http {}", response.status);
  auto certificates = ReadCertificatesReply(response.body, options_.apiv3_key.reveal());
  if (!certificates) co_return "certificates: " + certificates.error().message;
  // The reply is signed by one of WeChat's keys: a known one, or (first download, rotation) one of
  // the certificates it carries, which only the holder of our APIv3 key could have encrypted.
  auto next = std::make_shared<Verifiers>(*verifiers());
  for (const auto& certificate : certificates.value()) next->Add(certificate);
  if (auto ok = VerifySigned(*next, SignedHeadersOf(response.headers), response.body, Now()); !ok) {
    co_return "certificates: reply " + ok.error().message;
  }
  {
    std::lock_guard lock(verifiers_mu_);
    verifiers_ = next;
    if (encrypt_key_id_.empty()) encrypt_key_id_ = certificates.value().front().SerialHex();
  }
  co_return certificates.value().size();
}

}  // namespace paygate::adapters::wechatpay
