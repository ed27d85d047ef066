#pragma once

// The payment state machines (DESIGN.md §4): explicit transition tables for orders, attempts and
// refunds. Every status change in gateway/payments goes through Allowed*(); anything not in a table
// is an illegal transition and is refused (the database's triggers refuse the terminal ones too,
// ledger/migrations/0003_payments.sql). Terminal states never move.
#include <optional>
#include <string_view>

#include "adapters/adapter.h"

namespace paygate::payments {

// kRequiresReview: held by the fraud rules (a `review` outcome) before any provider call, until a
// risk reviewer approves (-> processing) or declines (-> failed) it.
enum class OrderStatus { kRequiresReview, kProcessing, kPending, kSucceeded, kFailed, kClosed };
enum class AttemptStatus { kSending, kPending, kUnknown, kSucceeded, kDeclined, kNotSent, kClosed };
enum class RefundStatus { kProcessing, kSucceeded, kFailed };

std::string_view ToString(OrderStatus status);
std::string_view ToString(AttemptStatus status);
std::string_view ToString(RefundStatus status);
std::optional<OrderStatus> ParseOrderStatus(std::string_view text);
std::optional<AttemptStatus> ParseAttemptStatus(std::string_view text);
std::optional<RefundStatus> ParseRefundStatus(std::string_view text);

bool IsTerminal(OrderStatus status);
bool IsTerminal(AttemptStatus status);
bool IsTerminal(RefundStatus status);

// Whether `from -> to` is in the table. Staying in the same status is not a transition (callers
// treat it as "no effect").
bool Allowed(OrderStatus from, OrderStatus to);
bool Allowed(AttemptStatus from, AttemptStatus to);
bool Allowed(RefundStatus from, RefundStatus to);

// What an adapter outcome means for the attempt that made the call. A close call's `succeeded`
// means "closed", handled by the caller.
AttemptStatus AttemptStatusFor(adapters::Outcome outcome);
// The order status that mirrors its current attempt's status: unknown and sending are
// `processing`, never failed; a provably unsent attempt fails the order (nothing moved, and the
// client may retry with a new payment).
OrderStatus OrderStatusFor(AttemptStatus attempt);
// A refund's status after a provider outcome: only `declined` and `not_sent` fail it.
RefundStatus RefundStatusFor(adapters::Outcome outcome);

}  // namespace paygate::payments
