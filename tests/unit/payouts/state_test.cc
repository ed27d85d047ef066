// The payout transition tables: terminal states never move, unknown never becomes not_sent (only
// the provider's answer proves a sent request did not execute), nothing is paid without passing
// through processing, and only payouts no provider was called for can be cancelled.
#include <gtest/gtest.h>

#include "gateway/payouts/state.h"

namespace paygate::payouts {
namespace {

constexpr PayoutStatus kAllPayout[] = {
    PayoutStatus::kRequiresReview, PayoutStatus::kAwaitingApproval, PayoutStatus::kProcessing,
    PayoutStatus::kSucceeded,      PayoutStatus::kFailed,           PayoutStatus::kCancelled,
    PayoutStatus::kManualReview};
constexpr AttemptStatus kAllAttempt[] = {AttemptStatus::kSending,  AttemptStatus::kPending,
                                         AttemptStatus::kUnknown,  AttemptStatus::kSucceeded,
                                         AttemptStatus::kDeclined, AttemptStatus::kNotSent};

TEST(PayoutState, NamesRoundTrip) {
  for (auto s : kAllPayout) EXPECT_EQ(ParsePayoutStatus(ToString(s)), s);
  for (auto s : kAllAttempt) EXPECT_EQ(ParseAttemptStatus(ToString(s)), s);
  EXPECT_FALSE(ParsePayoutStatus("approved_maybe"));
  EXPECT_FALSE(ParseAttemptStatus("closed"));
}

TEST(PayoutState, TerminalStatesNeverMove) {
  for (auto from : kAllPayout) {
    if (!IsTerminal(from)) continue;
    for (auto to : kAllPayout) EXPECT_FALSE(Allowed(from, to)) << ToString(from);
  }
  for (auto from : kAllAttempt) {
    if (!IsTerminal(from)) continue;
    for (auto to : kAllAttempt) EXPECT_FALSE(Allowed(from, to)) << ToString(from);
  }
}

TEST(PayoutState, OnceSentOnlyTheProviderSaysItDidNotExecute) {
  EXPECT_TRUE(Allowed(AttemptStatus::kSending, AttemptStatus::kNotSent));
  EXPECT_FALSE(Allowed(AttemptStatus::kUnknown, AttemptStatus::kNotSent));
  EXPECT_FALSE(Allowed(AttemptStatus::kPending, AttemptStatus::kNotSent));
  EXPECT_TRUE(Allowed(AttemptStatus::kUnknown, AttemptStatus::kDeclined));
  EXPECT_TRUE(Allowed(AttemptStatus::kUnknown, AttemptStatus::kSucceeded));
  EXPECT_TRUE(IsOpen(AttemptStatus::kUnknown));
  EXPECT_FALSE(IsOpen(AttemptStatus::kNotSent));
}

TEST(PayoutState, PaidOnlyFromProcessingOrTheManualQueue) {
  for (auto from : kAllPayout) {
    const bool may = from == PayoutStatus::kProcessing || from == PayoutStatus::kManualReview;
    EXPECT_EQ(Allowed(from, PayoutStatus::kSucceeded), may) << ToString(from);
  }
  // Approval leads to processing, never straight to a result.
  EXPECT_FALSE(Allowed(PayoutStatus::kAwaitingApproval, PayoutStatus::kSucceeded));
  EXPECT_FALSE(Allowed(PayoutStatus::kManualReview, PayoutStatus::kProcessing));
}

TEST(PayoutState, CancellableOnlyBeforeAnyProviderCall) {
  EXPECT_TRUE(Cancellable(PayoutStatus::kAwaitingApproval));
  EXPECT_TRUE(Cancellable(PayoutStatus::kRequiresReview));
  EXPECT_FALSE(Cancellable(PayoutStatus::kProcessing));
  EXPECT_FALSE(Cancellable(PayoutStatus::kManualReview));
  EXPECT_FALSE(Allowed(PayoutStatus::kProcessing, PayoutStatus::kCancelled));
}

TEST(PayoutState, OutcomesMapToAttemptStatuses) {
  EXPECT_EQ(AttemptStatusFor(adapters::Outcome::kUnknown), AttemptStatus::kUnknown);
  EXPECT_EQ(AttemptStatusFor(adapters::Outcome::kNotSent), AttemptStatus::kNotSent);
  EXPECT_EQ(AttemptStatusFor(adapters::Outcome::kDeclined), AttemptStatus::kDeclined);
  EXPECT_EQ(AttemptStatusFor(adapters::Outcome::kSucceeded), AttemptStatus::kSucceeded);
  EXPECT_EQ(AttemptStatusFor(adapters::Outcome::kPending), AttemptStatus::kPending);
}

}  // namespace
}  // namespace paygate::payouts
