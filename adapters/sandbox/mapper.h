#pragma once

// The sandbox adapter's pure translation (STYLE.md "Pure translation, separate I/O"): domain
// requests to signed protocol bytes, and reply or callback bytes to outcome classes. No I/O and no
// clock of its own, so tests can feed it recorded or tampered bytes.
#include <chrono>
#include <string>
#include <string_view>

#include "adapters/adapter.h"
#include "adapters/http/https_client.h"
#include "config/result.h"

namespace paygate::adapters::sandbox {

enum class Operation {
  kCreatePayment,
  kQueryPayment,
  kClosePayment,
  kCreateRefund,
  kQueryRefund,
  kCreatePayout,
  kQueryPayout,
};
// Every operation, for dispatch tables.
inline constexpr Operation kOperations[] = {
    Operation::kCreatePayment, Operation::kQueryPayment, Operation::kClosePayment,
    Operation::kCreateRefund,  Operation::kQueryRefund,  Operation::kCreatePayout,
    Operation::kQueryPayout,
};

// The request path, e.g. "/v1/payments/query".
std::string_view OperationPath(Operation op);
// "create_payment", "query_payment", "close_payment", "create_refund", "query_refund",
// "create_payout", "query_payout" (the names fault rules match on).
std::string_view OperationName(Operation op);

// JSON bodies (protobuf JSON mapping, proto field names).
std::string EncodeCreatePayment(const CreatePaymentRequest& request);
std::string EncodePaymentRef(const PaymentRef& ref);
std::string EncodeCreateRefund(const RefundRequest& request);
std::string EncodeRefundRef(const RefundRef& ref);
// The beneficiary travels only inside this body (TLS); nothing here logs it.
std::string EncodeCreatePayout(const CreatePayoutRequest& request);
std::string EncodePayoutRef(const PayoutRef& ref);

// The signed headers of one request.
http::Headers SignRequest(std::string_view account, std::string_view secret, std::string_view path,
                          std::string_view body, std::string_view nonce,
                          std::chrono::system_clock::time_point now);

// What the reply must match to be trusted.
struct ReplyContext {
  Operation op = Operation::kQueryPayment;
  std::string_view account;
  std::string_view secret;
  // The nonce the request was sent with: a reply signed over another nonce is not this reply.
  std::string_view request_nonce;
  // The payment (for refunds the refund's, for payouts the payout attempt's) reference the reply
  // must be about.
  std::string_view reference;
  std::chrono::system_clock::time_point now;
};

// Classifies a reply (adapters/sandbox/PROTOCOL.md "Outcome classes"). Never declined or not_sent
// for a reply that is not correctly signed, fresh, well-formed and about `reference`: such replies
// are unknown.
ProviderResult ReadReply(const ReplyContext& context, const http::HttpsResponse& reply);

// Verifies and reads a callback for `account`.
Result<CallbackEvent, std::string> ReadCallback(std::string_view account, std::string_view secret,
                                                const CallbackRequest& request,
                                                std::chrono::system_clock::time_point now);

// The body the simulator expects back from a callback.
CallbackAck MakeAck(bool accepted);

}  // namespace paygate::adapters::sandbox
