#include "adapters/alipay/mapper.h"

#include <ctime>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "adapters/alipay/alipay.pb.h"
#include "adapters/common/codec.h"
#include "adapters/common/money.h"

namespace paygate::adapters::alipay {
namespace {

namespace pb = paygate::adapters::alipay::v1;

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  // Printing a message we built cannot fail.
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

bool FromJson(std::string_view json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  // Alipay adds reply fields over time; what we read must still be there and valid.
  options.ignore_unknown_fields = true;
  return google::protobuf::util::JsonStringToMessage(
             google::protobuf::StringPiece(json.data(), json.size()), message, options)
      .ok();
}

ProviderResult Unknown(std::string detail) {
  ProviderResult result;
  result.outcome = Outcome::kUnknown;
  result.detail = std::move(detail);
  return result;
}

ProviderResult NotSent(std::string detail) {
  ProviderResult result;
  result.outcome = Outcome::kNotSent;
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

AlipayResult<std::string> Yuan(std::int64_t amount_minor, std::string_view currency) {
  if (currency != "CNY") return Error{fmt::format("alipay takes CNY only, not {}", currency)};
  if (amount_minor <= 0) return Error{"amount must be positive"};
  return money::FormatDecimal(amount_minor, 2);
}

// The minor units of a yuan string from a reply; 0 when absent or unreadable (amount_minor is
// informative, the outcome never rests on it).
std::int64_t MinorOrZero(std::string_view yuan) {
  auto minor = money::ParseDecimal(yuan, 2);
  return minor ? *minor : 0;
}

// The reply's common fields, and a verdict when the code alone decides it.
struct Common {
  std::string code;
  std::string sub_code;
  std::string sub_msg;
};

template <class Message>
Common CommonOf(const Message& message) {
  return Common{message.code(), message.sub_code(), message.sub_msg()};
}

bool SubCodeUnknown(const ErrorTable& errors, const std::string& sub_code) {
  return sub_code.rfind("isp.", 0) == 0 || errors.unknown.count(sub_code) != 0;
}

std::string Unified(const ErrorTable& errors, const std::string& sub_code) {
  auto it = errors.codes.find(sub_code);
  return it == errors.codes.end() ? std::string("provider_declined") : it->second;
}

std::string CodeDetail(const Common& common) {
  return common.sub_code.empty() ? fmt::format("code={}", common.code)
                                 : fmt::format("code={} sub_code={}", common.code, common.sub_code);
}

bool ChangesState(Operation op) {
  return op == Operation::kClosePayment || op == Operation::kRefund || op == Operation::kPayout;
}

// A reply whose code is not 10000, for any operation. Only calls that change state can be declined
// by one: Alipay refuses them before executing. A refused query says nothing about the object.
ProviderResult ReadFailure(const ReplyContext& context, const Common& common) {
  const std::string detail = CodeDetail(common);
  if (common.code == "40004") {
    if (!ChangesState(context.op) || SubCodeUnknown(*context.errors, common.sub_code)) {
      return Unknown(detail);
    }
    // A close of a trade Alipay has not created yet (the payer never opened the cashier) proves
    // nothing: the payer may still open it until time_expire.
    if (context.op == Operation::kClosePayment && common.sub_code == "ACQ.TRADE_NOT_EXIST") {
      return Unknown(detail);
    }
    // Money out cannot be called back: a transfer is declined only by a sub_code known to refuse it
    // (balance, payee, limits, parameters). An unheard-of one, or a reused out_biz_no (that
    // transfer exists and may have paid), is for a query to settle.
    if (context.op == Operation::kPayout) {
      auto known = context.errors->codes.find(common.sub_code);
      if (known == context.errors->codes.end() || known->second == "reference_conflict") {
        return Unknown(detail);
      }
    }
    return Declined(Unified(*context.errors, common.sub_code), common.sub_msg, detail);
  }
  // Missing or invalid parameters, bad signature, no permission: refused before execution.
  if (common.code == "40001" || common.code == "40002" || common.code == "40003" ||
      common.code == "40006" || common.code == "20001") {
    if (!ChangesState(context.op)) return Unknown(detail);
    return Declined("invalid_request", common.sub_msg, detail);
  }
  // 20000 (service unavailable) and anything unheard of.
  return Unknown(detail);
}

bool AboutOther(std::string_view echoed, std::string_view reference) {
  return !echoed.empty() && echoed != reference;
}

ProviderResult ReadQuery(const pb::TradeQueryReply& reply) {
  ProviderResult result;
  result.provider_transaction_id = reply.trade_no();
  result.detail = fmt::format("trade_status={}", reply.trade_status());
  const std::string& status = reply.trade_status();
  if (status == "WAIT_BUYER_PAY") {
    result.outcome = Outcome::kPending;
  } else if (status == "TRADE_SUCCESS" || status == "TRADE_FINISHED") {
    result.outcome = Outcome::kSucceeded;
    result.amount_minor = MinorOrZero(reply.total_amount());
  } else if (status == "TRADE_CLOSED") {
    // Alipay also closes a paid trade once it is fully refunded; its payment date stays. That
    // payment succeeded (its refunds are recorded separately), it was not declined.
    if (!reply.send_pay_date().empty()) {
      result.outcome = Outcome::kSucceeded;
      result.amount_minor = MinorOrZero(reply.total_amount());
      result.detail += " (paid, then fully refunded)";
    } else {
      result.outcome = Outcome::kDeclined;
      result.decline_code = "closed";
      result.decline_message = "the trade was closed before it was paid";
    }
  } else {
    return Unknown(fmt::format("unknown trade_status {}", status));
  }
  return result;
}

ProviderResult ReadTransferStatus(const pb::FundTransferReply& reply) {
  ProviderResult result;
  result.provider_transaction_id = reply.order_id();
  result.detail = fmt::format("status={}", reply.status());
  const std::string& status = reply.status();
  if (status == "SUCCESS") {
    result.outcome = Outcome::kSucceeded;
    result.amount_minor = MinorOrZero(reply.trans_amount());
  } else if (status == "DEALING" || status == "INIT" || status == "WAIT_PAY") {
    result.outcome = Outcome::kPending;
  } else if (status == "FAIL" || status == "CLOSED") {
    result.outcome = Outcome::kDeclined;
    result.decline_code = "payout_failed";
    result.decline_message = reply.fail_reason();
  } else if (status == "REFUND") {
    // 退票: the payee's bank returned the money.
    result.outcome = Outcome::kDeclined;
    result.decline_code = "payout_returned";
    result.decline_message = reply.fail_reason();
  } else {
    return Unknown(fmt::format("unknown transfer status {}", status));
  }
  return result;
}

// HTTP 200, split, signed by the key (and certificate) we trust: the raw response text.
AlipayResult<ResponseParts> Verified(const Credentials& credentials, std::string_view method,
                                           const http::HttpsResponse& reply) {
  if (reply.status != 200) return Error{fmt::format("http {}", reply.status)};
  auto parts = SplitResponse(reply.body, ResponseKey(method));
  if (!parts) return Error{"malformed reply: " + parts.error().message};
  const ResponseParts& p = parts.value();
  if (p.sign.empty()) return Error{"unsigned reply"};
  if (credentials.cert_mode() && !p.alipay_cert_sn.empty() &&
      p.alipay_cert_sn != credentials.alipay_cert_sn) {
    // Alipay rotated its certificate: the reply may be genuine, but we cannot check it.
    return Error{fmt::format("reply signed by certificate {}, we trust {}", p.alipay_cert_sn,
                       credentials.alipay_cert_sn)};
  }
  if (!VerifyContent(p.source, p.sign, credentials.alipay_key, SignType::kRsa2)) {
    return Error{"reply signature invalid"};
  }
  if (p.source.empty() || p.source.front() != '{') {
    return Error{"encrypted reply, and no content key is configured"};
  }
  return parts;
}

template <class Message>
AlipayResult<Message> Typed(const ResponseParts& parts) {
  Message message;
  if (!FromJson(parts.source, &message)) return Error{"malformed response object"};
  if (message.code().empty()) return Error{"response without a code"};
  return message;
}

}  // namespace

ErrorTable DefaultErrorTable() {
  ErrorTable table;
  table.codes = {
      {"ACQ.TRADE_NOT_EXIST", "payment_not_found"},
      {"ACQ.TRADE_STATUS_ERROR", "payment_state_conflict"},
      {"ACQ.TRADE_HAS_CLOSE", "closed"},
      {"ACQ.TRADE_HAS_FINISHED", "payment_finished"},
      {"ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "refund_exceeds_amount"},
      {"ACQ.REFUND_FEE_ERROR", "invalid_amount"},
      {"ACQ.SELLER_BALANCE_NOT_ENOUGH", "insufficient_balance"},
      {"ACQ.REASON_TRADE_BEEN_FREEZEN", "payment_frozen"},
      {"ACQ.DISCORDANT_REPEAT_REQUEST", "reference_conflict"},
      {"ACQ.TRADE_NOT_ALLOW_REFUND", "refund_not_allowed"},
      {"PAYER_BALANCE_NOT_ENOUGH", "insufficient_balance"},
      {"PAYEE_NOT_EXIST", "payee_not_found"},
      {"PAYEE_USER_INFO_ERROR", "payee_mismatch"},
      {"PAYEE_ACCOUNT_STATUS_ERROR", "payee_unavailable"},
      {"EXCEED_LIMIT_SM_AMOUNT", "limit_exceeded"},
      {"EXCEED_LIMIT_DM_AMOUNT", "limit_exceeded"},
      {"PERMIT_CHECK_PERM_LIMITED", "not_permitted"},
      {"INVALID_PARAMETER", "invalid_request"},
  };
  table.unknown = {"ACQ.SYSTEM_ERROR", "SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR"};
  return table;
}

std::string BeijingTime(std::chrono::system_clock::time_point at) {
  const std::time_t t =
      std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count() + 8 * 3600;
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

AlipayResult<Params> SignedCall(const Credentials& credentials, std::string_view method,
                                       std::string_view biz_content, std::string_view notify_url,
                                       std::chrono::system_clock::time_point now) {
  Params params = {
      {"app_id", credentials.app_id},
      {"method", std::string(method)},
      {"format", "JSON"},
      {"charset", "utf-8"},
      {"sign_type", "RSA2"},
      {"timestamp", BeijingTime(now)},
      {"version", "1.0"},
  };
  if (!notify_url.empty()) params.emplace_back("notify_url", std::string(notify_url));
  if (credentials.cert_mode()) {
    params.emplace_back("app_cert_sn", credentials.app_cert_sn);
    params.emplace_back("alipay_root_cert_sn", credentials.alipay_root_cert_sn);
  }
  params.emplace_back("biz_content", std::string(biz_content));
  if (auto signed_ok = SignRequest(params, credentials.app_key); !signed_ok) {
    return signed_ok.error();
  }
  return params;
}

std::optional<std::string_view> PayMethodFor(std::string_view method) {
  if (method == "alipay_page") return kMethodPagePay;
  if (method == "alipay_wap") return kMethodWapPay;
  if (method == "alipay_app") return kMethodAppPay;
  return std::nullopt;
}

ProviderResult BuildPayment(const Credentials& credentials, std::string_view gateway_url,
                            const CreatePaymentRequest& request,
                            std::chrono::system_clock::time_point now) {
  const auto method = PayMethodFor(request.method);
  if (!method) return NotSent(fmt::format("alipay has no method {}", request.method));
  auto amount = Yuan(request.amount_minor, request.currency);
  if (!amount) return NotSent(amount.error().message);
  if (request.provider_reference.empty() || request.provider_reference.size() > 64) {
    return NotSent("out_trade_no must be 1-64 characters");
  }
  pb::TradePayBiz biz;
  biz.set_out_trade_no(request.provider_reference);
  biz.set_total_amount(amount.value());
  // Alipay requires a subject; the reference stands in when the client gave no description.
  biz.set_subject(request.description.empty() ? request.provider_reference : request.description);
  biz.set_product_code(*method == kMethodPagePay  ? "FAST_INSTANT_TRADE_PAY"
                       : *method == kMethodWapPay ? "QUICK_WAP_WAY"
                                                  : "QUICK_MSECURITY_PAY");
  if (request.expires_at.time_since_epoch().count() != 0) {
    biz.set_time_expire(BeijingTime(request.expires_at));
  }
  auto params = SignedCall(credentials, *method, ToJson(biz), request.notify_url, now);
  if (!params) return NotSent("signing failed: " + params.error().message);
  ProviderResult result;
  result.outcome = Outcome::kPending;
  result.amount_minor = request.amount_minor;
  const std::string query = codec::BuildForm(params.value());
  if (*method == kMethodAppPay) {
    result.next_action_type = "app_order_string";
    result.next_action_value = query;
  } else {
    result.next_action_type = "redirect_url";
    result.next_action_value = fmt::format("{}?{}", gateway_url, query);
  }
  result.detail = fmt::format("method={}", *method);
  return result;
}

std::string EncodeTradeRef(std::string_view out_trade_no) {
  pb::TradeRefBiz biz;
  biz.set_out_trade_no(std::string(out_trade_no));
  return ToJson(biz);
}

AlipayResult<std::string> EncodeRefund(const RefundRequest& request) {
  auto amount = Yuan(request.amount_minor, request.currency);
  if (!amount) return amount.error();
  pb::TradeRefundBiz biz;
  biz.set_out_trade_no(request.payment_reference);
  biz.set_refund_amount(amount.value());
  // Always sent: it makes a repeated refund call the same refund, never a second one.
  biz.set_out_request_no(request.refund_reference);
  biz.set_refund_reason(request.reason);
  return ToJson(biz);
}

std::string EncodeRefundQuery(const RefundRef& ref) {
  pb::RefundQueryBiz biz;
  biz.set_out_trade_no(ref.payment_reference);
  biz.set_out_request_no(ref.refund_reference);
  return ToJson(biz);
}

AlipayResult<std::string> EncodeTransfer(const PayoutRequest& request) {
  auto amount = Yuan(request.amount_minor, request.currency);
  if (!amount) return amount.error();
  if (request.reference.empty()) return Error{"out_biz_no is empty"};
  if (request.payee_identity.empty()) return Error{"payee identity is empty"};
  if (request.payee_identity_type == "ALIPAY_LOGON_ID" && request.payee_name.empty()) {
    return Error{"a payee by logon id needs the payee's name"};
  }
  pb::FundTransferBiz biz;
  biz.set_out_biz_no(request.reference);
  biz.set_trans_amount(amount.value());
  biz.set_product_code("TRANS_ACCOUNT_NO_PWD");
  biz.set_biz_scene("DIRECT_TRANSFER");
  biz.set_order_title(request.title.empty() ? request.reference : request.title);
  biz.mutable_payee_info()->set_identity(request.payee_identity);
  biz.mutable_payee_info()->set_identity_type(request.payee_identity_type);
  biz.mutable_payee_info()->set_name(request.payee_name);
  biz.set_remark(request.remark);
  return ToJson(biz);
}

std::optional<std::string_view> PayeeIdentityType(std::string_view account_type) {
  if (account_type == "alipay_user_id") return "ALIPAY_USER_ID";
  if (account_type == "alipay_login_id") return "ALIPAY_LOGON_ID";
  if (account_type == "alipay_open_id") return "ALIPAY_OPEN_ID";
  return std::nullopt;
}

std::string EncodeTransferQuery(std::string_view out_biz_no) {
  pb::FundQueryBiz biz;
  biz.set_product_code("TRANS_ACCOUNT_NO_PWD");
  biz.set_biz_scene("DIRECT_TRANSFER");
  biz.set_out_biz_no(std::string(out_biz_no));
  return ToJson(biz);
}

std::string EncodeBillUrl(std::string_view bill_type, std::string_view bill_date) {
  pb::BillUrlBiz biz;
  biz.set_bill_type(std::string(bill_type));
  biz.set_bill_date(std::string(bill_date));
  return ToJson(biz);
}

std::string_view MethodOf(Operation op) {
  switch (op) {
    case Operation::kQueryPayment:
      return kMethodQuery;
    case Operation::kClosePayment:
      return kMethodClose;
    case Operation::kRefund:
      return kMethodRefund;
    case Operation::kQueryRefund:
      return kMethodRefundQuery;
    case Operation::kPayout:
      return kMethodTransfer;
    case Operation::kQueryPayout:
      return kMethodTransferQuery;
  }
  return {};
}

ProviderResult ReadReply(const ReplyContext& context, const http::HttpsResponse& reply) {
  // A 5xx is never trusted: Alipay may or may not have executed the call.
  auto parts = Verified(*context.credentials, MethodOf(context.op), reply);
  if (!parts) return Unknown(parts.error().message);
  if (parts.value().error_response) {
    pb::CommonReply common;
    if (!FromJson(parts.value().source, &common) || common.code().empty()) {
      return Unknown("malformed error_response");
    }
    return ReadFailure(context, CommonOf(common));
  }
  switch (context.op) {
    case Operation::kQueryPayment: {
      auto message = Typed<pb::TradeQueryReply>(parts.value());
      if (!message) return Unknown(message.error().message);
      const auto& m = message.value();
      if (m.code() != "10000") return ReadFailure(context, CommonOf(m));
      if (m.out_trade_no() != context.reference) return Unknown("reply is about another trade");
      return ReadQuery(m);
    }
    case Operation::kClosePayment: {
      auto message = Typed<pb::TradeCloseReply>(parts.value());
      if (!message) return Unknown(message.error().message);
      const auto& m = message.value();
      if (m.code() != "10000") return ReadFailure(context, CommonOf(m));
      if (AboutOther(m.out_trade_no(), context.reference)) {
        return Unknown("reply is about another trade");
      }
      ProviderResult result;
      result.outcome = Outcome::kSucceeded;
      result.provider_transaction_id = m.trade_no();
      result.detail = "closed";
      return result;
    }
    case Operation::kRefund: {
      auto message = Typed<pb::TradeRefundReply>(parts.value());
      if (!message) return Unknown(message.error().message);
      const auto& m = message.value();
      if (m.code() != "10000") return ReadFailure(context, CommonOf(m));
      if (m.out_trade_no() != context.reference) return Unknown("reply is about another trade");
      ProviderResult result;
      result.provider_transaction_id = m.trade_no();
      result.detail = fmt::format("fund_change={} refund_fee={}", m.fund_change(), m.refund_fee());
      if (m.fund_change() == "Y") {
        result.outcome = Outcome::kSucceeded;
      } else if (m.fund_change() == "N") {
        // No money moved in this call: a repeat of a refund already made, or one Alipay is still
        // settling. The refund query says which.
        result.outcome = Outcome::kPending;
      } else {
        return Unknown(fmt::format("refund reply with fund_change '{}'", m.fund_change()));
      }
      return result;
    }
    case Operation::kQueryRefund: {
      auto message = Typed<pb::RefundQueryReply>(parts.value());
      if (!message) return Unknown(message.error().message);
      const auto& m = message.value();
      if (m.code() != "10000") return ReadFailure(context, CommonOf(m));
      if (AboutOther(m.out_request_no(), context.reference)) {
        return Unknown("reply is about another refund");
      }
      if (m.refund_status() == "REFUND_SUCCESS" && m.out_request_no() == context.reference) {
        ProviderResult result;
        result.outcome = Outcome::kSucceeded;
        result.provider_transaction_id = m.trade_no();
        result.amount_minor = MinorOrZero(m.refund_amount());
        result.detail = "refund_status=REFUND_SUCCESS";
        return result;
      }
      // Not (yet) made. Absence is not refusal: repeating the refund with the same out_request_no
      // is what makes it definitive.
      return Unknown(fmt::format("refund_status '{}'", m.refund_status()));
    }
    case Operation::kPayout:
    case Operation::kQueryPayout: {
      auto message = Typed<pb::FundTransferReply>(parts.value());
      if (!message) return Unknown(message.error().message);
      const auto& m = message.value();
      if (m.code() != "10000") return ReadFailure(context, CommonOf(m));
      if (m.out_biz_no() != context.reference) return Unknown("reply is about another transfer");
      return ReadTransferStatus(m);
    }
  }
  return Unknown("unexpected operation");
}

AlipayResult<std::string> ReadBillUrlReply(const Credentials& credentials,
                                                  const http::HttpsResponse& reply) {
  auto parts = Verified(credentials, kMethodBillUrl, reply);
  if (!parts) return parts.error();
  pb::BillUrlReply m;
  if (!FromJson(parts.value().source, &m) || m.code().empty()) {
    return Error{"malformed bill URL reply"};
  }
  if (m.code() != "10000") return Error{CodeDetail(CommonOf(m)) + " " + m.sub_msg()};
  if (m.bill_download_url().rfind("https://", 0) != 0) {
    return Error{"bill URL reply without an https URL"};
  }
  return m.bill_download_url();
}

AlipayResult<CallbackEvent> ReadNotify(const NotifyContext& context,
                                              const CallbackRequest& request) {
  if (request.merchant_account != context.merchant_account) {
    return Error{"notify for another account"};
  }
  auto form = codec::ParseForm(request.body);
  if (!form) return Error{"notify body is not a form"};
  const Params& params = form.value();
  // Verified over the decoded values exactly as received, whatever their charset: Alipay signs the
  // bytes of its own charset, which is what decoding the form yields.
  if (!VerifyNotify(params, context.credentials->alipay_key)) {
    return Error{"notify signature invalid"};
  }
  auto field = [&params](std::string_view name) {
    auto value = codec::FindField(params, name);
    return value ? std::string(*value) : std::string();
  };
  if (field("app_id") != context.credentials->app_id) return Error{"notify for another app"};
  if (!context.seller_id.empty() && field("seller_id") != context.seller_id) {
    return Error{"notify for another seller"};
  }
  if (field("notify_type") != "trade_status_sync") {
    return Error{"unsupported notify_type " + field("notify_type")};
  }
  const std::string notify_id = field("notify_id");
  if (notify_id.empty()) return Error{"notify without notify_id"};
  const std::string out_trade_no = field("out_trade_no");
  if (out_trade_no.empty()) return Error{"notify without out_trade_no"};

  CallbackEvent event;
  event.dedup_key = notify_id;
  event.result.provider_transaction_id = field("trade_no");
  const std::string status = field("trade_status");
  const std::string out_biz_no = field("out_biz_no");
  const std::string refund_fee = field("refund_fee");
  if (!out_biz_no.empty() && !refund_fee.empty()) {
    // A refund made on the trade. refund_fee is the trade's refunded total, not this refund's
    // amount, so amount_minor stays 0.
    if (!money::ParseDecimal(refund_fee, 2)) return Error{"notify refund_fee malformed"};
    event.kind = CallbackEvent::Kind::kRefund;
    event.reference = out_biz_no;
    event.result.outcome = Outcome::kSucceeded;
    event.result.detail =
        fmt::format("refund notify trade_status={} refund_fee={}", status, refund_fee);
    return event;
  }
  event.kind = CallbackEvent::Kind::kPayment;
  event.reference = out_trade_no;
  event.result.detail = fmt::format("trade_status={}", status);
  if (status == "TRADE_SUCCESS" || status == "TRADE_FINISHED") {
    auto amount = money::ParseDecimal(field("total_amount"), 2);
    if (!amount || *amount <= 0) return Error{"notify total_amount malformed"};
    event.result.outcome = Outcome::kSucceeded;
    event.result.amount_minor = *amount;
  } else if (status == "TRADE_CLOSED") {
    event.result.outcome = Outcome::kDeclined;
    event.result.decline_code = "closed";
    event.result.decline_message = "the trade was closed before it was paid";
  } else if (status == "WAIT_BUYER_PAY") {
    event.result.outcome = Outcome::kPending;
  } else {
    return Error{"unknown trade_status " + status};
  }
  return event;
}

CallbackAck MakeAck(bool accepted) {
  CallbackAck ack;
  ack.content_type = "text/plain";
  // Exactly "success" stops the redeliveries; anything else (here also a 500) asks for another.
  ack.status = accepted ? 200 : 500;
  ack.body = accepted ? "success" : "fail";
  return ack;
}

}  // namespace paygate::adapters::alipay
