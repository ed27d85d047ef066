#pragma once

// The payout state machines (DESIGN.md §3 "Claim payout", §4): explicit transition tables for
// payouts and their provider attempts. Every status change in gateway/payouts goes through
// Allowed(); anything not in a table is refused (the database's triggers refuse the terminal ones
// too, ledger/migrations/0010_payouts.sql). Terminal states never move.
//
// A payout's life: requires_review (held by the fraud rules) or awaiting_approval (above the
// approval threshold) until enough distinct approvers approve; then processing while one attempt
// at a time is with a provider; then succeeded, failed or cancelled. An attempt still unknown after
// the inquiry schedule moves the payout to manual_review, which only a provider answer (late
// inquiry or callback) or an operator ends.
#include <optional>
#include <string_view>

#include "adapters/adapter.h"

namespace paygate::payouts {

enum class PayoutStatus {
  kRequiresReview,
  kAwaitingApproval,
  kProcessing,
  kSucceeded,
  kFailed,
  kCancelled,
  kManualReview,
};
enum class AttemptStatus { kSending, kPending, kUnknown, kSucceeded, kDeclined, kNotSent };

std::string_view ToString(PayoutStatus status);
std::string_view ToString(AttemptStatus status);
std::optional<PayoutStatus> ParsePayoutStatus(std::string_view text);
std::optional<AttemptStatus> ParseAttemptStatus(std::string_view text);

bool IsTerminal(PayoutStatus status);
bool IsTerminal(AttemptStatus status);
// Open attempts are the ones a provider may still execute: sending, pending, unknown. While one is
// open no other attempt may be made (the "never twice" rule).
bool IsOpen(AttemptStatus status);

// Whether `from -> to` is in the table. Staying in the same status is not a transition.
bool Allowed(PayoutStatus from, PayoutStatus to);
bool Allowed(AttemptStatus from, AttemptStatus to);

// What an adapter outcome means for the attempt that made the call.
AttemptStatus AttemptStatusFor(adapters::Outcome outcome);

// Whether a payout in `status` may still be cancelled: only before any provider call.
bool Cancellable(PayoutStatus status);

}  // namespace paygate::payouts
