#include "gateway/payments/state.h"

#include <array>
#include <utility>

#include "gateway/state_table.h"

namespace paygate::payments {
namespace {

using state_table::InTable;
using state_table::Name;
using state_table::Parse;

constexpr std::array<std::pair<OrderStatus, std::string_view>, 6> kOrderNames{{
    {OrderStatus::kRequiresReview, "requires_review"},
    {OrderStatus::kProcessing, "processing"},
    {OrderStatus::kPending, "pending"},
    {OrderStatus::kSucceeded, "succeeded"},
    {OrderStatus::kFailed, "failed"},
    {OrderStatus::kClosed, "closed"},
}};
constexpr std::array<std::pair<AttemptStatus, std::string_view>, 7> kAttemptNames{{
    {AttemptStatus::kSending, "sending"},
    {AttemptStatus::kPending, "pending"},
    {AttemptStatus::kUnknown, "unknown"},
    {AttemptStatus::kSucceeded, "succeeded"},
    {AttemptStatus::kDeclined, "declined"},
    {AttemptStatus::kNotSent, "not_sent"},
    {AttemptStatus::kClosed, "closed"},
}};
constexpr std::array<std::pair<RefundStatus, std::string_view>, 3> kRefundNames{{
    {RefundStatus::kProcessing, "processing"},
    {RefundStatus::kSucceeded, "succeeded"},
    {RefundStatus::kFailed, "failed"},
}};

using O = OrderStatus;
using A = AttemptStatus;
using R = RefundStatus;

// The transition tables. One row per legal move; read top to bottom as the life of the object.
constexpr std::pair<O, O> kOrderTransitions[] = {
    {O::kRequiresReview, O::kProcessing},  // a risk reviewer approved: sent to the provider
    {O::kRequiresReview, O::kFailed},      // a risk reviewer declined: never sent
    {O::kProcessing, O::kPending},    // the provider answered: waiting for the payer
    {O::kProcessing, O::kSucceeded},  // paid (answer, callback or inquiry)
    {O::kProcessing, O::kFailed},     // declined, or provably never sent
    {O::kProcessing, O::kClosed},     // closed at the provider before anyone paid
    {O::kPending, O::kProcessing},    // a later answer was unusable: resolve by inquiry
    {O::kPending, O::kSucceeded},    {O::kPending, O::kFailed}, {O::kPending, O::kClosed},
};
constexpr std::pair<A, A> kAttemptTransitions[] = {
    {A::kSending, A::kPending},  {A::kSending, A::kUnknown},   {A::kSending, A::kSucceeded},
    {A::kSending, A::kDeclined}, {A::kSending, A::kNotSent},   {A::kSending, A::kClosed},
    {A::kPending, A::kUnknown},  {A::kPending, A::kSucceeded}, {A::kPending, A::kDeclined},
    {A::kPending, A::kClosed},   {A::kUnknown, A::kPending},   {A::kUnknown, A::kSucceeded},
    {A::kUnknown, A::kDeclined}, {A::kUnknown, A::kClosed},
};
constexpr std::pair<R, R> kRefundTransitions[] = {
    {R::kProcessing, R::kSucceeded},
    {R::kProcessing, R::kFailed},
};

}  // namespace

std::string_view ToString(OrderStatus status) { return Name(kOrderNames, status); }
std::string_view ToString(AttemptStatus status) { return Name(kAttemptNames, status); }
std::string_view ToString(RefundStatus status) { return Name(kRefundNames, status); }
std::optional<OrderStatus> ParseOrderStatus(std::string_view text) {
  return Parse(kOrderNames, text);
}
std::optional<AttemptStatus> ParseAttemptStatus(std::string_view text) {
  return Parse(kAttemptNames, text);
}
std::optional<RefundStatus> ParseRefundStatus(std::string_view text) {
  return Parse(kRefundNames, text);
}

bool IsTerminal(OrderStatus status) {
  return status == O::kSucceeded || status == O::kFailed || status == O::kClosed;
}
bool IsTerminal(AttemptStatus status) {
  return status == A::kSucceeded || status == A::kDeclined || status == A::kNotSent ||
         status == A::kClosed;
}
bool IsTerminal(RefundStatus status) { return status != R::kProcessing; }

bool Allowed(OrderStatus from, OrderStatus to) { return InTable(kOrderTransitions, from, to); }
bool Allowed(AttemptStatus from, AttemptStatus to) {
  return InTable(kAttemptTransitions, from, to);
}
bool Allowed(RefundStatus from, RefundStatus to) { return InTable(kRefundTransitions, from, to); }

AttemptStatus AttemptStatusFor(adapters::Outcome outcome) {
  switch (outcome) {
    case adapters::Outcome::kSucceeded:
      return A::kSucceeded;
    case adapters::Outcome::kPending:
      return A::kPending;
    case adapters::Outcome::kDeclined:
      return A::kDeclined;
    case adapters::Outcome::kNotSent:
      return A::kNotSent;
    case adapters::Outcome::kUnknown:
      return A::kUnknown;
  }
  return A::kUnknown;
}

OrderStatus OrderStatusFor(AttemptStatus attempt) {
  switch (attempt) {
    case A::kSending:
    case A::kUnknown:
      return O::kProcessing;
    case A::kPending:
      return O::kPending;
    case A::kSucceeded:
      return O::kSucceeded;
    case A::kDeclined:
    case A::kNotSent:
      return O::kFailed;
    case A::kClosed:
      return O::kClosed;
  }
  return O::kProcessing;
}

RefundStatus RefundStatusFor(adapters::Outcome outcome) {
  switch (outcome) {
    case adapters::Outcome::kSucceeded:
      return R::kSucceeded;
    case adapters::Outcome::kDeclined:
    case adapters::Outcome::kNotSent:
      return R::kFailed;
    case adapters::Outcome::kPending:
    case adapters::Outcome::kUnknown:
      return R::kProcessing;
  }
  return R::kProcessing;
}

}  // namespace paygate::payments
