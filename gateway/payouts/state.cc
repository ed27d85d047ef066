#include "gateway/payouts/state.h"

#include <array>
#include <utility>

#include "gateway/state_table.h"

namespace paygate::payouts {
namespace {

using state_table::InTable;
using state_table::Name;
using state_table::Parse;

using P = PayoutStatus;
using A = AttemptStatus;

constexpr std::array<std::pair<P, std::string_view>, 7> kPayoutNames{{
    {P::kRequiresReview, "requires_review"},
    {P::kAwaitingApproval, "awaiting_approval"},
    {P::kProcessing, "processing"},
    {P::kSucceeded, "succeeded"},
    {P::kFailed, "failed"},
    {P::kCancelled, "cancelled"},
    {P::kManualReview, "manual_review"},
}};
constexpr std::array<std::pair<A, std::string_view>, 6> kAttemptNames{{
    {A::kSending, "sending"},
    {A::kPending, "pending"},
    {A::kUnknown, "unknown"},
    {A::kSucceeded, "succeeded"},
    {A::kDeclined, "declined"},
    {A::kNotSent, "not_sent"},
}};

// The transition tables. One row per legal move; read top to bottom as the life of the object.
constexpr std::pair<P, P> kPayoutTransitions[] = {
    {P::kRequiresReview, P::kProcessing},    // approved by enough approvers: sent
    {P::kRequiresReview, P::kFailed},        // rejected, or the funds could not be reserved
    {P::kRequiresReview, P::kCancelled},     // withdrawn by the claims system
    {P::kAwaitingApproval, P::kProcessing},  // approved: sent
    {P::kAwaitingApproval, P::kFailed},      // rejected, or the funds could not be reserved
    {P::kAwaitingApproval, P::kCancelled},   // withdrawn
    {P::kProcessing, P::kSucceeded},         // the provider paid (answer, callback or inquiry)
    {P::kProcessing, P::kFailed},            // declined, or never sent and no attempt left
    {P::kProcessing, P::kManualReview},      // still unknown after the inquiry schedule
    {P::kManualReview, P::kSucceeded},       // a late answer settled it
    {P::kManualReview, P::kFailed},          // a late answer settled it
};
constexpr std::pair<A, A> kAttemptTransitions[] = {
    {A::kSending, A::kPending},   {A::kSending, A::kUnknown},  {A::kSending, A::kSucceeded},
    {A::kSending, A::kDeclined},  {A::kSending, A::kNotSent},  {A::kPending, A::kUnknown},
    {A::kPending, A::kSucceeded}, {A::kPending, A::kDeclined}, {A::kUnknown, A::kPending},
    {A::kUnknown, A::kSucceeded}, {A::kUnknown, A::kDeclined},
    // Not in the table: unknown/pending -> not_sent. Once a request may have reached the provider,
    // only the provider's own answer proves it did not execute.
};

}  // namespace

std::string_view ToString(PayoutStatus status) { return Name(kPayoutNames, status); }
std::string_view ToString(AttemptStatus status) { return Name(kAttemptNames, status); }
std::optional<PayoutStatus> ParsePayoutStatus(std::string_view text) {
  return Parse(kPayoutNames, text);
}
std::optional<AttemptStatus> ParseAttemptStatus(std::string_view text) {
  return Parse(kAttemptNames, text);
}

bool IsTerminal(PayoutStatus status) {
  return status == P::kSucceeded || status == P::kFailed || status == P::kCancelled;
}
bool IsTerminal(AttemptStatus status) {
  return status == A::kSucceeded || status == A::kDeclined || status == A::kNotSent;
}
bool IsOpen(AttemptStatus status) { return !IsTerminal(status); }

bool Allowed(PayoutStatus from, PayoutStatus to) { return InTable(kPayoutTransitions, from, to); }
bool Allowed(AttemptStatus from, AttemptStatus to) {
  return InTable(kAttemptTransitions, from, to);
}

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

bool Cancellable(PayoutStatus status) {
  return status == P::kRequiresReview || status == P::kAwaitingApproval;
}

}  // namespace paygate::payouts
