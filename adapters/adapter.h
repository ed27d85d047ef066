#pragma once

// The one interface every payment provider plugs into (DESIGN.md §3, §4). The payment flow, the
// callback route and the janitor speak only this interface; the sandbox, WeChat Pay, Alipay, UnionPay
// and Stripe adapters implement it, each speaking its provider's real wire protocol.
//
// Outcome classes are the heart of "money is never lost or moved twice":
//   succeeded  the provider confirmed the money moved;
//   pending    the provider accepted the request and will tell us later (callback or inquiry);
//   declined   the provider definitively refused: nothing moved, ever;
//   not_sent   the request provably never reached the provider (connect failed, TLS failed, the
//              request could not be built): safe to retry or fail over;
//   unknown    sent, but no usable answer (timeout after write, 5xx, malformed or badly signed reply):
//              only a status inquiry can resolve it. Never reported as failed, never retried elsewhere.
#include <utility>  // GCC 12 with Boost 1.74: before boost/asio/awaitable.hpp.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/result.h"

namespace paygate::adapters {

enum class Outcome { kSucceeded, kPending, kDeclined, kNotSent, kUnknown };

// "succeeded", "pending", "declined", "not_sent", "unknown".
std::string_view OutcomeName(Outcome outcome);

// What one provider call (or one verified callback) says about a payment or a refund.
struct ProviderResult {
  Outcome outcome = Outcome::kUnknown;
  // The provider's own transaction id, when it told us one.
  std::string provider_transaction_id;
  // For a created payment: how the payer proceeds, e.g. {"qr_code_url", "weixin://..."} or
  // {"redirect_url", "https://..."}. Empty otherwise.
  std::string next_action_type;
  std::string next_action_value;
  // The amount the provider reports as paid or refunded, in minor units; 0 when it did not say.
  std::int64_t amount_minor = 0;
  // For declined: the provider's code and message, safe to show to the client.
  std::string decline_code;
  std::string decline_message;
  // Diagnostics for logs and the attempt row (never secrets, never raw payloads).
  std::string detail;
};

struct CreatePaymentRequest {
  std::string merchant_account;
  // Our reference for this attempt, unique per provider: "<order id>_<attempt seq>" (DESIGN.md §4).
  std::string provider_reference;
  std::int64_t amount_minor = 0;
  std::string currency;  // ISO 4217
  std::string method;    // wechat_native, alipay_page, unionpay_web, card, sandbox
  std::string description;
  // Where the provider sends its asynchronous callback.
  std::string notify_url;
  std::chrono::system_clock::time_point expires_at;
  // When the attempt was recorded. Providers that name a transaction by reference and time
  // (UnionPay: orderId + txnTime) send it as the transaction time, and every later call about the
  // attempt carries the same instant (PaymentRef::created_at), restarts included. Zero: unknown.
  std::chrono::system_clock::time_point created_at{};
};

struct PaymentRef {
  std::string merchant_account;
  std::string provider_reference;
  // The attempt's CreatePaymentRequest::created_at.
  std::chrono::system_clock::time_point created_at{};
};

struct RefundRequest {
  std::string merchant_account;
  // The payment attempt being refunded and this refund's own unique reference.
  std::string payment_reference;
  std::string refund_reference;
  std::int64_t amount_minor = 0;
  // The payment's captured total (several providers require it).
  std::int64_t payment_amount_minor = 0;
  std::string currency;
  std::string reason;
  std::string notify_url;
  // When the refunded attempt and this refund were recorded (see CreatePaymentRequest::created_at).
  std::chrono::system_clock::time_point payment_created_at{};
  std::chrono::system_clock::time_point created_at{};
};

struct RefundRef {
  std::string merchant_account;
  std::string payment_reference;
  std::string refund_reference;
  std::chrono::system_clock::time_point payment_created_at{};
  std::chrono::system_clock::time_point created_at{};
};

// Who a claim payout goes to (DESIGN.md §3 "Claim payout"). Personal data: it lives in memory only
// for the duration of the provider call (at rest it is encrypted per field by keys/, in responses,
// events and logs only a masked form appears); adapters never log it.
struct Beneficiary {
  std::string name;  // The account holder's name, as the provider checks it.
  // "bank_card", "wechat_openid", "alipay_login_id", "alipay_user_id" or "sandbox".
  std::string account_type;
  std::string account;    // Card number, openid, login id or user id.
  std::string bank;       // Bank name or code, for bank cards.
  std::string id_number;  // The holder's ID number, where the provider requires it.
};

struct CreatePayoutRequest {
  std::string merchant_account;
  // Derived from the payout attempt ("<payout id>_<attempt seq>", or the provider's allowed
  // equivalent): the provider's own idempotency key (WeChat out_batch_no/out_detail_no, Alipay
  // out_biz_no), so a re-sent request for the same attempt can never execute twice.
  std::string provider_reference;
  std::int64_t amount_minor = 0;
  std::string currency;
  std::string method;  // sandbox_transfer, wechat_transfer, alipay_transfer
  Beneficiary beneficiary;
  std::string description;  // The remark the beneficiary sees, e.g. "Claim CLM-1 payout".
  std::string notify_url;
  std::chrono::system_clock::time_point created_at{};
};

struct PayoutRef {
  std::string merchant_account;
  std::string provider_reference;
  std::chrono::system_clock::time_point created_at{};
};

// A provider callback exactly as it arrived: raw bytes, never re-serialised before verification.
struct CallbackRequest {
  std::string merchant_account;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
};

// A verified callback.
struct CallbackEvent {
  enum class Kind { kPayment, kRefund, kPayout };
  Kind kind = Kind::kPayment;
  // The reference we sent: the payment attempt's, the refund's or the payout attempt's.
  std::string reference;
  ProviderResult result;
  // Unique per distinct callback (the provider's notification id, or a digest of the signed bytes):
  // stored with a unique constraint so a duplicate has no second effect.
  std::string dedup_key;
};

// What the provider expects back from a callback, in its own form.
struct CallbackAck {
  unsigned status = 200;
  std::string content_type;
  std::string body;
};

class Adapter {
 public:
  virtual ~Adapter() = default;

  // "sandbox", "wechatpay", "alipay", "unionpay", "stripe": the {provider} of callback URLs.
  virtual std::string_view provider() const = 0;

  virtual boost::asio::awaitable<ProviderResult> CreatePayment(CreatePaymentRequest request) = 0;
  virtual boost::asio::awaitable<ProviderResult> QueryPayment(PaymentRef ref) = 0;
  // Closes an unpaid payment so it can no longer be paid. succeeded: closed; declined: the provider
  // refuses (for example it was paid meanwhile: query it); unknown/not_sent as usual.
  virtual boost::asio::awaitable<ProviderResult> ClosePayment(PaymentRef ref) = 0;
  virtual boost::asio::awaitable<ProviderResult> Refund(RefundRequest request) = 0;
  virtual boost::asio::awaitable<ProviderResult> QueryRefund(RefundRef ref) = 0;

  // Claim payouts (money out). Same outcome classes; succeeded means the beneficiary was paid,
  // declined that the provider definitively refused and nothing left. Adapters of providers that
  // cannot pay out keep these defaults: the request is never sent (not_sent, "payouts_unsupported").
  virtual boost::asio::awaitable<ProviderResult> CreatePayout(CreatePayoutRequest request);
  virtual boost::asio::awaitable<ProviderResult> QueryPayout(PayoutRef ref);

  // Verifies (and decrypts) a callback exactly as the provider specifies. An error means the
  // callback must not be trusted; the string says why, for logs and metrics (no secrets).
  virtual Result<CallbackEvent, std::string> VerifyCallback(const CallbackRequest& request) const = 0;
  // The answer the provider expects: accepted (verified and stored) or not.
  virtual CallbackAck AckCallback(bool accepted) const = 0;
};

}  // namespace paygate::adapters
