#include "adapters/wechatpay/mapper.h"

#include <set>

#include <fmt/format.h>

#include "adapters/common/codec.h"
#include "adapters/wechatpay/json.h"
#include "adapters/wechatpay/wechatpay.pb.h"

namespace paygate::adapters::wechatpay {
namespace {

namespace pb = paygate::adapters::wechatpay::v3;

constexpr std::int64_t kInt32Max = 2147483647;

ProviderResult Unknown(std::string detail) {
  ProviderResult result;
  result.outcome = Outcome::kUnknown;
  result.detail = std::move(detail);
  return result;
}

ProviderResult Declined(std::string code, std::string message, std::string detail) {
  ProviderResult result;
  result.outcome = Outcome::kDeclined;
  result.decline_code = std::move(code);
  result.decline_message = std::move(message);
  result.detail = std::move(detail);
  return result;
}

std::string_view HeaderOf(const std::vector<std::pair<std::string, std::string>>& headers,
                          std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

std::string Unified(const ErrorCodes& codes, std::string_view provider_code) {
  auto it = codes.find(provider_code);
  return it == codes.end() ? std::string(kUnmappedErrorCode) : it->second;
}

// Error codes that prove a state-changing call was refused without effect. Anything else WeChat
// answers with a 4xx (INVALID_REQUEST for a reused out_* number with other parameters, ORDERPAID,
// SYSTEM_ERROR, codes added later) leaves the call's effect open: unknown, settled by a query.
bool Definitive(std::string_view code) {
  static const std::set<std::string, std::less<>> kDefinitive = {"PARAM_ERROR",
                                                                 "SIGN_ERROR",
                                                                 "NO_AUTH",
                                                                 "NOAUTH",
                                                                 "NOT_ENOUGH",
                                                                 "FREQUENCY_LIMITED",
                                                                 "APPID_MCHID_NOT_MATCH",
                                                                 "MCH_NOT_EXISTS",
                                                                 "ORDER_CLOSED",
                                                                 "RESOURCE_NOT_EXISTS",
                                                                 "USER_ACCOUNT_ABNORMAL",
                                                                 "ACCOUNT_ERROR",
                                                                 "OPENID_MISMATCH",
                                                                 "RULE_LIMIT"};
  return kDefinitive.count(code) != 0;
}

struct Refusal {
  std::string code;
  std::string message;
  std::string detail;
};
std::optional<Refusal> ReadError(const http::HttpsResponse& reply) {
  pb::ErrorReply error;
  if (!FromJson(reply.body, &error) || error.code().empty()) return std::nullopt;
  Refusal refusal;
  refusal.detail = fmt::format("http {} {}", reply.status, error.code());
  refusal.code = error.code();
  refusal.message = error.message();
  return refusal;
}

// A 4xx to a call that changes state: declined only when the code proves nothing happened.
ProviderResult ReadCreateRefusal(const http::HttpsResponse& reply, const ErrorCodes& codes) {
  auto refusal = ReadError(reply);
  if (!refusal) return Unknown(fmt::format("http {} malformed error reply", reply.status));
  if (!Definitive(refusal->code)) return Unknown(refusal->detail);
  return Declined(Unified(codes, refusal->code), refusal->message, refusal->detail);
}

std::string Percent(std::string_view value) {
  // References are validated to [0-9A-Za-z_-|*]; '|' and '*' still get escaped in a path.
  std::string out;
  for (unsigned char c : value) {
    const bool plain = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                       c == '-' || c == '_' || c == '.';
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

WxResult<void> CheckAmount(std::int64_t amount, std::string_view currency) {
  if (currency != "CNY")
    return Fail(fmt::format("WeChat Pay settles CNY only, not '{}'", currency));
  if (amount <= 0 || amount > kInt32Max) return Fail(fmt::format("amount {} out of range", amount));
  return outcome::success();
}

}  // namespace

std::string_view OperationName(Operation op) {
  switch (op) {
    case Operation::kCreatePayment:
      return "create_payment";
    case Operation::kQueryPayment:
      return "query_payment";
    case Operation::kClosePayment:
      return "close_payment";
    case Operation::kCreateRefund:
      return "create_refund";
    case Operation::kQueryRefund:
      return "query_refund";
    case Operation::kCreateTransfer:
      return "create_transfer";
    case Operation::kQueryTransfer:
      return "query_transfer";
    case Operation::kTradeBill:
      return "trade_bill";
    case Operation::kDownloadBill:
      return "download_bill";
    case Operation::kCertificates:
      return "certificates";
  }
  return "unknown";
}

std::optional<Method> ParseMethod(std::string_view method) {
  if (method == "wechat_native") return Method::kNative;
  if (method == "wechat_jsapi") return Method::kJsapi;
  if (method == "wechat_h5") return Method::kH5;
  if (method == "wechat_app") return Method::kApp;
  return std::nullopt;
}

std::string_view PrepayPath(Method method) {
  switch (method) {
    case Method::kNative:
      return "/v3/pay/transactions/native";
    case Method::kJsapi:
      return "/v3/pay/transactions/jsapi";
    case Method::kH5:
      return "/v3/pay/transactions/h5";
    case Method::kApp:
      return "/v3/pay/transactions/app";
  }
  return "/";
}

const ErrorCodes& DefaultErrorCodes() {
  static const ErrorCodes kCodes = {
      {"PARAM_ERROR", "invalid_request"},
      {"INVALID_REQUEST", "invalid_request"},
      {"SIGN_ERROR", "provider_auth_failed"},
      {"NO_AUTH", "not_permitted"},
      {"NOAUTH", "not_permitted"},
      {"APPID_MCHID_NOT_MATCH", "provider_config_error"},
      {"MCH_NOT_EXISTS", "provider_config_error"},
      {"NOT_ENOUGH", "insufficient_funds"},
      {"FREQUENCY_LIMITED", "rate_limited"},
      {"ORDER_CLOSED", "closed"},
      {"ORDERPAID", "already_paid"},
      {"OUT_TRADE_NO_USED", "reference_conflict"},
      {"RESOURCE_NOT_EXISTS", "not_found"},
      {"ORDER_NOT_EXIST", "not_found"},
      {"ORDERNOTEXIST", "not_found"},
      {"NOT_FOUND", "not_found"},
      {"USER_ACCOUNT_ABNORMAL", "payee_account_abnormal"},
      {"ACCOUNT_ERROR", "payee_account_abnormal"},
      {"OPENID_MISMATCH", "invalid_payee"},
      {"RULE_LIMIT", "limit_exceeded"},
      {"SYSTEM_ERROR", "provider_unavailable"},
  };
  return kCodes;
}

bool ValidReference(std::string_view reference, std::size_t max_length) {
  if (reference.size() < 6 || reference.size() > max_length) return false;
  for (char c : reference) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '_' || c == '-' || c == '|' || c == '*';
    if (!ok) return false;
  }
  return true;
}

WxResult<std::string> EncodePrepay(const MerchantIds& ids, Method method,
                                   const CreatePaymentRequest& request, const PayerInfo& payer) {
  if (!ValidReference(request.provider_reference, 32)) {
    return Fail(fmt::format("out_trade_no '{}' is not 6-32 of [0-9A-Za-z_-|*]",
                            request.provider_reference));
  }
  if (auto ok = CheckAmount(request.amount_minor, request.currency); !ok) return ok.error();
  if (request.description.empty()) return Fail("description is required");
  pb::PrepayRequest body;
  body.set_appid(ids.appid);
  body.set_mchid(ids.mchid);
  // WeChat limits description to 127 bytes; cutting UTF-8 at a byte boundary would break it, so a
  // long one is refused instead.
  if (request.description.size() > 127) return Fail("description over 127 bytes");
  body.set_description(request.description);
  body.set_out_trade_no(request.provider_reference);
  if (request.expires_at.time_since_epoch().count() != 0) {
    body.set_time_expire(Rfc3339China(request.expires_at));
  }
  body.set_notify_url(request.notify_url);
  body.mutable_amount()->set_total(static_cast<std::int32_t>(request.amount_minor));
  body.mutable_amount()->set_currency("CNY");
  switch (method) {
    case Method::kJsapi:
      if (payer.openid.empty()) return Fail("wechat_jsapi needs the payer's openid");
      body.mutable_payer()->set_openid(payer.openid);
      break;
    case Method::kH5:
      if (payer.client_ip.empty()) return Fail("wechat_h5 needs the payer's client IP");
      body.mutable_scene_info()->set_payer_client_ip(payer.client_ip);
      body.mutable_scene_info()->mutable_h5_info()->set_type(payer.h5_type);
      break;
    case Method::kNative:
    case Method::kApp:
      break;
  }
  return ToJson(body);
}

std::string QueryPaymentTarget(std::string_view mchid, std::string_view out_trade_no) {
  return fmt::format("/v3/pay/transactions/out-trade-no/{}?mchid={}", Percent(out_trade_no),
                     Percent(mchid));
}

std::string ClosePaymentTarget(std::string_view out_trade_no) {
  return fmt::format("/v3/pay/transactions/out-trade-no/{}/close", Percent(out_trade_no));
}

std::string EncodeClose(std::string_view mchid) {
  pb::CloseRequest body;
  body.set_mchid(std::string(mchid));
  return ToJson(body);
}

WxResult<std::string> EncodeRefund(const RefundRequest& request) {
  if (!ValidReference(request.payment_reference, 32) ||
      !ValidReference(request.refund_reference, 64)) {
    return Fail("out_trade_no / out_refund_no not in WeChat's alphabet and length");
  }
  if (auto ok = CheckAmount(request.amount_minor, request.currency); !ok) return ok.error();
  if (auto ok = CheckAmount(request.payment_amount_minor, request.currency); !ok) {
    return Fail("payment total: " + ok.error().message);
  }
  pb::RefundRequest body;
  body.set_out_trade_no(request.payment_reference);
  body.set_out_refund_no(request.refund_reference);
  if (!request.reason.empty()) body.set_reason(request.reason.substr(0, 80));
  body.set_notify_url(request.notify_url);
  body.mutable_amount()->set_refund(static_cast<std::int32_t>(request.amount_minor));
  body.mutable_amount()->set_total(static_cast<std::int32_t>(request.payment_amount_minor));
  body.mutable_amount()->set_currency("CNY");
  return ToJson(body);
}

std::string QueryRefundTarget(std::string_view out_refund_no) {
  return fmt::format("{}/{}", kRefundPath, Percent(out_refund_no));
}

WxResult<std::string> EncodeTransfer(std::string_view appid, const TransferRequest& request,
                                     std::string_view encrypted_user_name) {
  if (!ValidReference(request.out_bill_no, 32)) {
    return Fail("out_bill_no not in WeChat's alphabet and length");
  }
  if (auto ok = CheckAmount(request.amount_minor, request.currency); !ok) return ok.error();
  if (request.openid.empty()) return Fail("transfer needs the payee's openid");
  if (request.transfer_scene_id.empty()) return Fail("transfer needs a transfer_scene_id");
  pb::TransferBillRequest body;
  body.set_appid(std::string(appid));
  body.set_out_bill_no(request.out_bill_no);
  body.set_transfer_scene_id(request.transfer_scene_id);
  body.set_openid(request.openid);
  body.set_user_name(std::string(encrypted_user_name));
  body.set_transfer_amount(static_cast<std::int32_t>(request.amount_minor));
  body.set_transfer_remark(request.remark);
  body.set_notify_url(request.notify_url);
  body.set_user_recv_perception(request.user_recv_perception);
  for (const auto& [type, content] : request.scene_report_infos) {
    auto* info = body.add_transfer_scene_report_infos();
    info->set_info_type(type);
    info->set_info_content(content);
  }
  return ToJson(body);
}

WxResult<std::string> OutBillNoOf(std::string_view provider_reference) {
  if (provider_reference.size() < 5 || provider_reference.size() > 32) {
    return Fail("payout reference must be 5-32 characters for out_bill_no");
  }
  std::string out;
  out.reserve(provider_reference.size());
  for (char c : provider_reference) {
    if (c == '_') {
      out.push_back('X');
    } else if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')) {
      out.push_back(c);
    } else {
      return Fail("payout reference must be of [0-9a-z_] to map to out_bill_no");
    }
  }
  return out;
}

std::string ReferenceOfOutBillNo(std::string_view out_bill_no) {
  std::string out(out_bill_no);
  for (char& c : out) {
    if (c == 'X') c = '_';
  }
  return out;
}

std::string QueryTransferTarget(std::string_view out_bill_no) {
  return fmt::format("{}/out-bill-no/{}", kTransferPath, Percent(out_bill_no));
}

std::string TradeBillTarget(std::string_view bill_date, std::string_view bill_type, bool gzip) {
  return fmt::format("/v3/bill/tradebill?bill_date={}&bill_type={}{}", Percent(bill_date),
                     Percent(bill_type), gzip ? "&tar_type=GZIP" : "");
}

SignedHeaders SignedHeadersOf(const std::vector<std::pair<std::string, std::string>>& headers) {
  SignedHeaders out;
  out.timestamp = HeaderOf(headers, kTimestampHeader);
  out.nonce = HeaderOf(headers, kNonceHeader);
  out.signature = HeaderOf(headers, kSignatureHeader);
  out.serial = HeaderOf(headers, kSerialHeader);
  return out;
}

WxResult<void> VerifyReply(const Verifiers& verifiers, const http::HttpsResponse& reply,
                           std::chrono::system_clock::time_point now) {
  // A 5xx is never trusted, signed or not: WeChat may or may not have executed the call.
  if (reply.status >= 500) return Fail(fmt::format("http {}", reply.status));
  if (auto ok = VerifySigned(verifiers, SignedHeadersOf(reply.headers), reply.body, now); !ok) {
    return Fail(fmt::format("http {} reply: {}", reply.status, ok.error().message));
  }
  return outcome::success();
}

ProviderResult ReadPrepayReply(Method method, const http::HttpsResponse& reply,
                               const ErrorCodes& codes) {
  if (reply.status >= 400 && reply.status < 500) return ReadCreateRefusal(reply, codes);
  if (reply.status != 200) return Unknown(fmt::format("http {}", reply.status));
  pb::PrepayReply body;
  if (!FromJson(reply.body, &body)) return Unknown("malformed prepay reply");
  ProviderResult result;
  result.outcome = Outcome::kPending;
  switch (method) {
    case Method::kNative:
      result.next_action_type = "qr_code_url";
      result.next_action_value = body.code_url();
      break;
    case Method::kH5:
      result.next_action_type = "redirect_url";
      result.next_action_value = body.h5_url();
      break;
    case Method::kJsapi:
    case Method::kApp:
      result.next_action_type = "wechat_prepay_id";
      result.next_action_value = body.prepay_id();
      break;
  }
  if (result.next_action_value.empty()) return Unknown("prepay reply without its payment handle");
  result.detail = "prepay created";
  return result;
}

ProviderResult FromTradeState(std::string_view trade_state, std::string_view transaction_id,
                              std::int64_t total, std::string_view desc) {
  ProviderResult result;
  result.provider_transaction_id = std::string(transaction_id);
  result.amount_minor = total;
  result.detail = fmt::format("trade_state={}", trade_state);
  if (trade_state == "SUCCESS" || trade_state == "REFUND") {
    // REFUND: it was paid, and refunds were made since; the payment itself succeeded.
    result.outcome = Outcome::kSucceeded;
  } else if (trade_state == "NOTPAY" || trade_state == "USERPAYING") {
    result.outcome = Outcome::kPending;
  } else if (trade_state == "CLOSED") {
    result.outcome = Outcome::kDeclined;
    result.decline_code = "closed";
    result.decline_message = "the payment was closed before it was paid";
  } else if (trade_state == "REVOKED") {
    result.outcome = Outcome::kDeclined;
    result.decline_code = "revoked";
    result.decline_message = std::string(desc);
  } else if (trade_state == "PAYERROR") {
    result.outcome = Outcome::kDeclined;
    result.decline_code = "payment_failed";
    result.decline_message = std::string(desc);
  } else {
    result.outcome = Outcome::kUnknown;
  }
  return result;
}

ProviderResult ReadQueryPaymentReply(const http::HttpsResponse& reply,
                                     std::string_view out_trade_no) {
  // A refused query (404 ORDER_NOT_EXIST included) proves nothing about the payment.
  if (reply.status != 200) {
    auto refusal = ReadError(reply);
    return Unknown(refusal ? refusal->detail : fmt::format("http {}", reply.status));
  }
  pb::Transaction body;
  if (!FromJson(reply.body, &body)) return Unknown("malformed transaction reply");
  if (body.out_trade_no() != out_trade_no) return Unknown("reply is about another payment");
  return FromTradeState(body.trade_state(), body.transaction_id(), body.amount().total(),
                        body.trade_state_desc());
}

ProviderResult ReadCloseReply(const http::HttpsResponse& reply, const ErrorCodes& codes) {
  if (reply.status == 204 || reply.status == 200) {
    ProviderResult result;
    result.outcome = Outcome::kSucceeded;
    result.detail = "closed";
    return result;
  }
  auto refusal = ReadError(reply);
  if (!refusal) return Unknown(fmt::format("http {}", reply.status));
  if (refusal->code == "ORDER_CLOSED") {
    // Already closed: it can no longer be paid, which is what closing asks for.
    ProviderResult result;
    result.outcome = Outcome::kSucceeded;
    result.detail = refusal->detail;
    return result;
  }
  if (refusal->code == "ORDERPAID") {
    return Declined(Unified(codes, refusal->code), refusal->message, refusal->detail);
  }
  return Unknown(refusal->detail);
}

ProviderResult FromRefundStatus(std::string_view status, std::string_view refund_id,
                                std::int64_t refund) {
  ProviderResult result;
  result.provider_transaction_id = std::string(refund_id);
  result.amount_minor = refund;
  result.detail = fmt::format("refund status={}", status);
  if (status == "SUCCESS") {
    result.outcome = Outcome::kSucceeded;
  } else if (status == "PROCESSING") {
    result.outcome = Outcome::kPending;
  } else if (status == "ABNORMAL") {
    // The money left us but did not reach the payer (closed card, for example): not final until
    // the abnormal-refund procedure resolves it, and certainly not "nothing moved".
    result.outcome = Outcome::kPending;
    result.detail += " (needs apply-abnormal-refund)";
  } else if (status == "CLOSED") {
    result.outcome = Outcome::kDeclined;
    result.decline_code = "refund_closed";
    result.decline_message = "the refund was closed by WeChat Pay";
  } else {
    result.outcome = Outcome::kUnknown;
  }
  return result;
}

ProviderResult ReadRefundReply(Operation op, const http::HttpsResponse& reply,
                               std::string_view out_refund_no, const ErrorCodes& codes) {
  if (reply.status >= 400 && reply.status < 500) {
    if (op == Operation::kCreateRefund) return ReadCreateRefusal(reply, codes);
    auto refusal = ReadError(reply);
    return Unknown(refusal ? refusal->detail : fmt::format("http {}", reply.status));
  }
  if (reply.status != 200) return Unknown(fmt::format("http {}", reply.status));
  pb::Refund body;
  if (!FromJson(reply.body, &body)) return Unknown("malformed refund reply");
  if (body.out_refund_no() != out_refund_no) return Unknown("reply is about another refund");
  return FromRefundStatus(body.status(), body.refund_id(), body.amount().refund());
}

TransferResult FromTransferState(std::string_view state, std::string_view transfer_bill_no,
                                 std::int64_t amount, std::string_view fail_reason) {
  TransferResult out;
  out.state = std::string(state);
  out.transfer_bill_no = std::string(transfer_bill_no);
  ProviderResult& result = out.result;
  result.provider_transaction_id = std::string(transfer_bill_no);
  result.amount_minor = amount;
  result.detail = fmt::format("transfer state={}", state);
  if (state == "SUCCESS") {
    result.outcome = Outcome::kSucceeded;
  } else if (state == "ACCEPTED" || state == "PROCESSING" || state == "WAIT_USER_CONFIRM" ||
             state == "TRANSFERING" || state == "CANCELING") {
    result.outcome = Outcome::kPending;
  } else if (state == "FAIL") {
    result.outcome = Outcome::kDeclined;
    result.decline_code = "transfer_failed";
    result.decline_message = std::string(fail_reason);
  } else if (state == "CANCELLED") {
    result.outcome = Outcome::kDeclined;
    result.decline_code = "transfer_cancelled";
    result.decline_message = "the transfer was cancelled";
  } else {
    result.outcome = Outcome::kUnknown;
  }
  return out;
}

TransferResult ReadTransferReply(Operation op, const http::HttpsResponse& reply,
                                 std::string_view out_bill_no, const ErrorCodes& codes) {
  TransferResult out;
  if (reply.status >= 400 && reply.status < 500) {
    if (op == Operation::kCreateTransfer) {
      out.result = ReadCreateRefusal(reply, codes);
    } else {
      auto refusal = ReadError(reply);
      out.result = Unknown(refusal ? refusal->detail : fmt::format("http {}", reply.status));
    }
    return out;
  }
  if (reply.status != 200) {
    out.result = Unknown(fmt::format("http {}", reply.status));
    return out;
  }
  pb::TransferBill body;
  if (!FromJson(reply.body, &body)) {
    out.result = Unknown("malformed transfer reply");
    return out;
  }
  if (body.out_bill_no() != out_bill_no) {
    out.result = Unknown("reply is about another transfer");
    return out;
  }
  out = FromTransferState(body.state(), body.transfer_bill_no(), body.transfer_amount(),
                          body.fail_reason());
  out.package_info = body.package_info();
  return out;
}

WxResult<BillHandle> ReadBillReply(const http::HttpsResponse& reply) {
  pb::BillReply body;
  if (reply.status != 200) {
    auto refusal = ReadError(reply);
    return Fail(refusal ? refusal->detail : fmt::format("http {}", reply.status));
  }
  if (!FromJson(reply.body, &body) || body.download_url().empty()) {
    return Fail("malformed bill reply");
  }
  return BillHandle{body.hash_type(), body.hash_value(), body.download_url()};
}

WxResult<std::vector<crypto::Certificate>> ReadCertificatesReply(std::string_view body,
                                                                 std::string_view apiv3_key) {
  pb::CertificatesReply reply;
  if (!FromJson(body, &reply)) return Fail("malformed certificates reply");
  std::vector<crypto::Certificate> out;
  for (const auto& entry : reply.data()) {
    const auto& sealed = entry.encrypt_certificate();
    if (sealed.algorithm() != "AEAD_AES_256_GCM") {
      return Fail(
          fmt::format("certificate {}: algorithm '{}'", entry.serial_no(), sealed.algorithm()));
    }
    auto pem =
        DecryptResource(apiv3_key, sealed.nonce(), sealed.associated_data(), sealed.ciphertext());
    if (!pem)
      return Fail(fmt::format("certificate {}: {}", entry.serial_no(), pem.error().message));
    auto certificate = crypto::Certificate::Parse(pem.value());
    if (!certificate)
      return Fail(
          fmt::format("certificate {}: {}", entry.serial_no(), certificate.error().message));
    if (certificate.value().SerialHex() != entry.serial_no()) {
      return Fail(fmt::format("certificate serial {} differs from its listing {}",
                              certificate.value().SerialHex(), entry.serial_no()));
    }
    out.push_back(std::move(certificate).value());
  }
  if (out.empty()) return Fail("certificates reply lists none");
  return out;
}

WxResult<Notice> OpenNotification(const Verifiers& verifiers, std::string_view apiv3_key,
                                  const CallbackRequest& request,
                                  std::chrono::system_clock::time_point now) {
  if (auto ok = VerifySigned(verifiers, SignedHeadersOf(request.headers), request.body, now); !ok) {
    return Fail("callback " + ok.error().message);
  }
  pb::Notification notification;
  if (!FromJson(request.body, &notification)) return Fail("callback body malformed");
  if (notification.id().empty()) return Fail("callback without an id");
  const pb::Resource& resource = notification.resource();
  if (resource.algorithm() != "AEAD_AES_256_GCM") {
    return Fail(fmt::format("callback resource algorithm '{}'", resource.algorithm()));
  }
  auto plaintext = DecryptResource(apiv3_key, resource.nonce(), resource.associated_data(),
                                   resource.ciphertext());
  if (!plaintext) return Fail("callback " + plaintext.error().message);
  Notice notice;
  notice.id = notification.id();
  notice.event_type = notification.event_type();
  notice.original_type = resource.original_type();
  notice.plaintext = std::move(plaintext).value();
  return notice;
}

Result<CallbackEvent, std::string> ReadCallback(const Verifiers& verifiers,
                                                std::string_view apiv3_key, std::string_view mchid,
                                                const CallbackRequest& request,
                                                std::chrono::system_clock::time_point now) {
  auto notice = OpenNotification(verifiers, apiv3_key, request, now);
  if (!notice) return std::string(notice.error().message);
  const Notice& n = notice.value();
  CallbackEvent event;
  event.dedup_key = n.id;
  if (n.event_type.rfind("TRANSACTION.", 0) == 0) {
    pb::Transaction transaction;
    if (!FromJson(n.plaintext, &transaction)) return std::string("callback transaction malformed");
    if (transaction.mchid() != mchid) return std::string("callback for another mchid");
    if (transaction.out_trade_no().empty()) return std::string("callback without out_trade_no");
    event.kind = CallbackEvent::Kind::kPayment;
    event.reference = transaction.out_trade_no();
    event.result = FromTradeState(transaction.trade_state(), transaction.transaction_id(),
                                  transaction.amount().total(), transaction.trade_state_desc());
  } else if (n.event_type.rfind("REFUND.", 0) == 0) {
    pb::RefundNotice refund;
    if (!FromJson(n.plaintext, &refund)) return std::string("callback refund malformed");
    if (refund.mchid() != mchid) return std::string("callback for another mchid");
    if (refund.out_refund_no().empty()) return std::string("callback without out_refund_no");
    event.kind = CallbackEvent::Kind::kRefund;
    event.reference = refund.out_refund_no();
    event.result =
        FromRefundStatus(refund.refund_status(), refund.refund_id(), refund.amount().refund());
  } else if (n.event_type.rfind("MCHTRANSFER.", 0) == 0) {
    pb::TransferBill bill;
    if (!FromJson(n.plaintext, &bill)) return std::string("callback transfer malformed");
    if (bill.mch_id() != mchid) return std::string("callback for another mchid");
    if (bill.out_bill_no().empty()) return std::string("callback without out_bill_no");
    event.kind = CallbackEvent::Kind::kPayout;
    event.reference = ReferenceOfOutBillNo(bill.out_bill_no());
    event.result = FromTransferState(bill.state(), bill.transfer_bill_no(), bill.transfer_amount(),
                                     bill.fail_reason())
                       .result;
  } else {
    return fmt::format("callback event_type '{}' is not a payment, refund or transfer",
                       n.event_type);
  }
  if (event.result.outcome == Outcome::kUnknown) {
    return std::string("callback with an unknown state");
  }
  return event;
}

Result<TransferEvent, std::string> ReadTransferCallback(const Verifiers& verifiers,
                                                        std::string_view apiv3_key,
                                                        std::string_view mchid,
                                                        const CallbackRequest& request,
                                                        std::chrono::system_clock::time_point now) {
  auto notice = OpenNotification(verifiers, apiv3_key, request, now);
  if (!notice) return std::string(notice.error().message);
  if (notice.value().event_type.rfind("MCHTRANSFER.", 0) != 0) {
    return fmt::format("callback event_type '{}' is not a transfer", notice.value().event_type);
  }
  pb::TransferBill bill;
  if (!FromJson(notice.value().plaintext, &bill)) return std::string("callback transfer malformed");
  if (bill.mch_id() != mchid) return std::string("callback for another mchid");
  if (bill.out_bill_no().empty()) return std::string("callback without out_bill_no");
  TransferEvent event;
  event.dedup_key = notice.value().id;
  event.reference = bill.out_bill_no();
  event.result = FromTransferState(bill.state(), bill.transfer_bill_no(), bill.transfer_amount(),
                                   bill.fail_reason());
  if (event.result.result.outcome == Outcome::kUnknown) {
    return std::string("callback with an unknown transfer state");
  }
  return event;
}

CallbackAck MakeAck(bool accepted) {
  CallbackAck ack;
  if (accepted) {
    ack.status = 204;
    return ack;
  }
  pb::ErrorReply fail;
  fail.set_code("FAIL");
  fail.set_message("失败");
  ack.status = 500;
  ack.content_type = "application/json";
  ack.body = ToJson(fail);
  return ack;
}

}  // namespace paygate::adapters::wechatpay
