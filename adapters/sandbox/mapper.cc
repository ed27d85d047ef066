#include "adapters/sandbox/mapper.h"

#include <google/protobuf/util/json_util.h>

#include <fmt/format.h>

#include "adapters/sandbox/sandbox.pb.h"
#include "adapters/sandbox/signing.h"

namespace paygate::adapters::sandbox {
namespace {

namespace pb = paygate::adapters::sandbox::v1;

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
  // Newer simulators may add fields; what we read must still be there and valid.
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

ProviderResult Declined(std::string code, std::string message, std::string detail) {
  ProviderResult result;
  result.outcome = Outcome::kDeclined;
  result.decline_code = std::move(code);
  result.decline_message = std::move(message);
  result.detail = std::move(detail);
  return result;
}

std::string_view HeaderOf(const http::Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

// A payment's state as an outcome: what create and query report.
ProviderResult FromPayment(const pb::Payment& payment) {
  ProviderResult result;
  result.provider_transaction_id = payment.transaction_id();
  result.amount_minor = payment.amount_minor();
  switch (payment.status()) {
    case pb::PAYMENT_STATUS_PENDING:
      result.outcome = Outcome::kPending;
      result.next_action_type = payment.next_action().type();
      result.next_action_value = payment.next_action().value();
      break;
    case pb::PAYMENT_STATUS_SUCCEEDED:
      result.outcome = Outcome::kSucceeded;
      break;
    case pb::PAYMENT_STATUS_FAILED:
      result.outcome = Outcome::kDeclined;
      result.decline_code =
          payment.failure_code().empty() ? "payment_failed" : payment.failure_code();
      result.decline_message = payment.failure_message();
      break;
    case pb::PAYMENT_STATUS_CLOSED:
      result.outcome = Outcome::kDeclined;
      result.decline_code = "closed";
      result.decline_message = "the payment was closed before it was paid";
      break;
    default:
      return Unknown("payment without a status");
  }
  result.detail = fmt::format("status={}", pb::PaymentStatus_Name(payment.status()));
  return result;
}

ProviderResult FromRefund(const pb::Refund& refund) {
  ProviderResult result;
  result.provider_transaction_id = refund.transaction_id();
  result.amount_minor = refund.amount_minor();
  switch (refund.status()) {
    case pb::REFUND_STATUS_PENDING:
      result.outcome = Outcome::kPending;
      break;
    case pb::REFUND_STATUS_SUCCEEDED:
      result.outcome = Outcome::kSucceeded;
      break;
    case pb::REFUND_STATUS_FAILED:
      result.outcome = Outcome::kDeclined;
      result.decline_code = refund.failure_code().empty() ? "refund_failed" : refund.failure_code();
      result.decline_message = refund.failure_message();
      break;
    default:
      return Unknown("refund without a status");
  }
  result.detail = fmt::format("status={}", pb::RefundStatus_Name(refund.status()));
  return result;
}

ProviderResult FromPayout(const pb::Payout& payout) {
  ProviderResult result;
  result.provider_transaction_id = payout.transaction_id();
  result.amount_minor = payout.amount_minor();
  switch (payout.status()) {
    case pb::PAYOUT_STATUS_PENDING:
      result.outcome = Outcome::kPending;
      break;
    case pb::PAYOUT_STATUS_SUCCEEDED:
      result.outcome = Outcome::kSucceeded;
      break;
    case pb::PAYOUT_STATUS_FAILED:
      // FAILED is terminal at the simulator: the reference can never pay out afterwards (a payout
      // closed by a query included), so nothing left and nothing will.
      result.outcome = Outcome::kDeclined;
      result.decline_code = payout.failure_code().empty() ? "payout_failed" : payout.failure_code();
      result.decline_message = payout.failure_message();
      break;
    default:
      return Unknown("payout without a status");
  }
  result.detail = fmt::format("status={}", pb::PayoutStatus_Name(payout.status()));
  return result;
}

// A signed 200 reply.
ProviderResult ReadSuccess(const ReplyContext& context, std::string_view body) {
  switch (context.op) {
    case Operation::kCreatePayment:
    case Operation::kQueryPayment:
    case Operation::kClosePayment: {
      pb::Payment payment;
      if (!FromJson(body, &payment)) return Unknown("malformed reply body");
      if (payment.reference() != context.reference) {
        return Unknown("reply is about another payment");
      }
      ProviderResult result = FromPayment(payment);
      if (context.op != Operation::kClosePayment || result.outcome == Outcome::kUnknown) {
        return result;
      }
      // Close: what matters is whether the payment can still be paid.
      if (payment.status() == pb::PAYMENT_STATUS_CLOSED ||
          payment.status() == pb::PAYMENT_STATUS_FAILED) {
        result.outcome = Outcome::kSucceeded;
        result.decline_code.clear();
        result.decline_message.clear();
        return result;
      }
      if (payment.status() == pb::PAYMENT_STATUS_SUCCEEDED) {
        return Declined("already_paid", "the payment was paid", result.detail);
      }
      return Unknown("close answered with a payment still pending");
    }
    case Operation::kCreateRefund:
    case Operation::kQueryRefund: {
      pb::Refund refund;
      if (!FromJson(body, &refund)) return Unknown("malformed reply body");
      if (refund.refund_reference() != context.reference) {
        return Unknown("reply is about another refund");
      }
      return FromRefund(refund);
    }
    case Operation::kCreatePayout:
    case Operation::kQueryPayout: {
      pb::Payout payout;
      if (!FromJson(body, &payout)) return Unknown("malformed reply body");
      if (payout.reference() != context.reference) {
        return Unknown("reply is about another payout");
      }
      return FromPayout(payout);
    }
  }
  return Unknown("unexpected operation");
}

// A signed 4xx reply. Only calls that change state can be declined by one: the simulator validates
// and authenticates before executing, so a refused create or refund moved nothing. A refused query
// says nothing about the payment, and a reference conflict means the reference exists with other
// fields (its state is for an inquiry to find out).
ProviderResult ReadRefusal(const ReplyContext& context, unsigned status, std::string_view body) {
  pb::ErrorReply error;
  if (!FromJson(body, &error) || error.code().empty()) return Unknown("malformed error reply");
  const std::string detail = fmt::format("http {} {}", status, error.code());
  if (error.code() == "reference_conflict") return Unknown(detail);
  switch (context.op) {
    case Operation::kCreatePayment:
    case Operation::kCreateRefund:
    case Operation::kCreatePayout:
      return Declined(error.code(), error.message(), detail);
    case Operation::kClosePayment:
      if (status == 422) return Declined(error.code(), error.message(), detail);
      return Unknown(detail);
    case Operation::kQueryPayment:
    case Operation::kQueryRefund:
    case Operation::kQueryPayout:
      return Unknown(detail);
  }
  return Unknown(detail);
}

}  // namespace

std::string_view OperationPath(Operation op) {
  switch (op) {
    case Operation::kCreatePayment:
      return "/v1/payments";
    case Operation::kQueryPayment:
      return "/v1/payments/query";
    case Operation::kClosePayment:
      return "/v1/payments/close";
    case Operation::kCreateRefund:
      return "/v1/refunds";
    case Operation::kQueryRefund:
      return "/v1/refunds/query";
    case Operation::kCreatePayout:
      return "/v1/payouts";
    case Operation::kQueryPayout:
      return "/v1/payouts/query";
  }
  return "/";
}

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
    case Operation::kCreatePayout:
      return "create_payout";
    case Operation::kQueryPayout:
      return "query_payout";
  }
  return "unknown";
}

std::string EncodeCreatePayment(const CreatePaymentRequest& request) {
  pb::CreatePaymentRequest message;
  message.set_reference(request.provider_reference);
  message.set_amount_minor(request.amount_minor);
  message.set_currency(request.currency);
  message.set_method(request.method);
  message.set_description(request.description);
  message.set_notify_url(request.notify_url);
  if (request.expires_at.time_since_epoch().count() != 0) {
    message.set_expires_at_unix(
        std::chrono::duration_cast<std::chrono::seconds>(request.expires_at.time_since_epoch())
            .count());
  }
  return ToJson(message);
}

std::string EncodePaymentRef(const PaymentRef& ref) {
  pb::PaymentRef message;
  message.set_reference(ref.provider_reference);
  return ToJson(message);
}

std::string EncodeCreateRefund(const RefundRequest& request) {
  pb::CreateRefundRequest message;
  message.set_payment_reference(request.payment_reference);
  message.set_refund_reference(request.refund_reference);
  message.set_amount_minor(request.amount_minor);
  message.set_currency(request.currency);
  message.set_reason(request.reason);
  message.set_notify_url(request.notify_url);
  return ToJson(message);
}

std::string EncodeRefundRef(const RefundRef& ref) {
  pb::RefundRef message;
  message.set_refund_reference(ref.refund_reference);
  return ToJson(message);
}

std::string EncodeCreatePayout(const CreatePayoutRequest& request) {
  pb::CreatePayoutRequest message;
  message.set_reference(request.provider_reference);
  message.set_amount_minor(request.amount_minor);
  message.set_currency(request.currency);
  message.set_method(request.method);
  pb::Beneficiary* beneficiary = message.mutable_beneficiary();
  beneficiary->set_name(request.beneficiary.name);
  beneficiary->set_account_type(request.beneficiary.account_type);
  beneficiary->set_account(request.beneficiary.account);
  beneficiary->set_bank(request.beneficiary.bank);
  beneficiary->set_id_number(request.beneficiary.id_number);
  message.set_description(request.description);
  message.set_notify_url(request.notify_url);
  return ToJson(message);
}

std::string EncodePayoutRef(const PayoutRef& ref) {
  pb::PayoutRef message;
  message.set_reference(ref.provider_reference);
  return ToJson(message);
}

http::Headers SignRequest(std::string_view account, std::string_view secret, std::string_view path,
                          std::string_view body, std::string_view nonce,
                          std::chrono::system_clock::time_point now) {
  const std::string timestamp = FormatTimestamp(now);
  http::Headers headers;
  headers.emplace_back(std::string(kAccountHeader), std::string(account));
  headers.emplace_back(std::string(kTimestampHeader), timestamp);
  headers.emplace_back(std::string(kNonceHeader), std::string(nonce));
  headers.emplace_back(std::string(kSignatureHeader),
                       Sign(secret, RequestLine("POST", path), timestamp, nonce, body));
  return headers;
}

ProviderResult ReadReply(const ReplyContext& context, const http::HttpsResponse& reply) {
  // A 5xx is never trusted, signed or not: the provider may or may not have executed the call.
  if (reply.status >= 500) return Unknown(fmt::format("http {}", reply.status));
  if (HeaderOf(reply.headers, kAccountHeader) != context.account) {
    return Unknown(fmt::format("http {} reply not signed for this account", reply.status));
  }
  const std::string_view timestamp = HeaderOf(reply.headers, kTimestampHeader);
  if (!FreshTimestamp(timestamp, context.now)) {
    return Unknown(fmt::format("http {} reply timestamp missing or stale", reply.status));
  }
  const std::string_view nonce = HeaderOf(reply.headers, kNonceHeader);
  if (nonce != context.request_nonce) {
    return Unknown(fmt::format("http {} reply is not for this request", reply.status));
  }
  if (!SignatureValid(context.secret, ReplyLine(reply.status, OperationPath(context.op)), timestamp,
                      nonce, reply.body, HeaderOf(reply.headers, kSignatureHeader))) {
    return Unknown(fmt::format("http {} reply signature invalid", reply.status));
  }
  if (reply.status == 200) return ReadSuccess(context, reply.body);
  if (reply.status >= 400 && reply.status < 500) {
    return ReadRefusal(context, reply.status, reply.body);
  }
  return Unknown(fmt::format("http {}", reply.status));
}

Result<CallbackEvent, std::string> ReadCallback(std::string_view account, std::string_view secret,
                                                const CallbackRequest& request,
                                                std::chrono::system_clock::time_point now) {
  if (request.merchant_account != account) return std::string("callback for another account");
  if (HeaderOf(request.headers, kAccountHeader) != account) {
    return std::string("callback account header mismatch");
  }
  const std::string_view timestamp = HeaderOf(request.headers, kTimestampHeader);
  if (!FreshTimestamp(timestamp, now)) return std::string("callback timestamp missing or stale");
  const std::string_view nonce = HeaderOf(request.headers, kNonceHeader);
  if (!NonceWellFormed(nonce)) return std::string("callback nonce missing or malformed");
  if (!SignatureValid(secret, kCallbackLine, timestamp, nonce, request.body,
                      HeaderOf(request.headers, kSignatureHeader))) {
    return std::string("callback signature invalid");
  }
  pb::Notification notification;
  if (!FromJson(request.body, &notification)) return std::string("callback body malformed");
  if (notification.notification_id().empty()) return std::string("callback without an id");
  CallbackEvent event;
  event.dedup_key = notification.notification_id();
  if (notification.type() == "payment" && notification.has_payment() &&
      !notification.payment().reference().empty()) {
    event.kind = CallbackEvent::Kind::kPayment;
    event.reference = notification.payment().reference();
    event.result = FromPayment(notification.payment());
  } else if (notification.type() == "refund" && notification.has_refund() &&
             !notification.refund().refund_reference().empty()) {
    event.kind = CallbackEvent::Kind::kRefund;
    event.reference = notification.refund().refund_reference();
    event.result = FromRefund(notification.refund());
  } else if (notification.type() == "payout" && notification.has_payout() &&
             !notification.payout().reference().empty()) {
    event.kind = CallbackEvent::Kind::kPayout;
    event.reference = notification.payout().reference();
    event.result = FromPayout(notification.payout());
  } else {
    return std::string("callback of unknown type");
  }
  if (event.result.outcome == Outcome::kUnknown) return std::string("callback without a status");
  return event;
}

CallbackAck MakeAck(bool accepted) {
  pb::NotificationAck ack;
  ack.set_received(accepted);
  CallbackAck out;
  // Anything but a 2xx makes the simulator deliver again later.
  out.status = accepted ? 200 : 503;
  out.content_type = "application/json";
  out.body = ToJson(ack);
  return out;
}

}  // namespace paygate::adapters::sandbox
