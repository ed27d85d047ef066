// The payment state machines (gateway/payments/state.h): terminal states never move, unknown is
// never a failure, and the names round-trip (they are stored in the database and shown by the API).
#include <gtest/gtest.h>

#include "gateway/payments/state.h"

namespace paygate::payments {
namespace {

using adapters::Outcome;

constexpr OrderStatus kOrders[] = {OrderStatus::kRequiresReview, OrderStatus::kProcessing,
                                   OrderStatus::kPending,        OrderStatus::kSucceeded,
                                   OrderStatus::kFailed,         OrderStatus::kClosed};
constexpr AttemptStatus kAttempts[] = {AttemptStatus::kSending,  AttemptStatus::kPending,
                                       AttemptStatus::kUnknown,  AttemptStatus::kSucceeded,
                                       AttemptStatus::kDeclined, AttemptStatus::kNotSent,
                                       AttemptStatus::kClosed};
constexpr RefundStatus kRefunds[] = {RefundStatus::kProcessing, RefundStatus::kSucceeded,
                                     RefundStatus::kFailed};

TEST(PaymentStateTest, TerminalStatesNeverMove) {
  for (auto from : kOrders) {
    for (auto to : kOrders) {
      if (IsTerminal(from)) {
        EXPECT_FALSE(Allowed(from, to)) << ToString(from) << "->" << ToString(to);
      }
    }
  }
  for (auto from : kAttempts) {
    for (auto to : kAttempts) {
      if (IsTerminal(from)) {
        EXPECT_FALSE(Allowed(from, to)) << ToString(from) << "->" << ToString(to);
      }
    }
  }
  for (auto from : kRefunds) {
    for (auto to : kRefunds) {
      if (IsTerminal(from)) {
        EXPECT_FALSE(Allowed(from, to));
      }
    }
  }
}

TEST(PaymentStateTest, NoTransitionToItselfAndEveryTerminalIsReachable) {
  for (auto s : kOrders) EXPECT_FALSE(Allowed(s, s));
  for (auto s : kAttempts) EXPECT_FALSE(Allowed(s, s));
  for (auto to : kOrders) {
    // The initial statuses.
    if (to == OrderStatus::kProcessing || to == OrderStatus::kRequiresReview) continue;
    bool reachable = false;
    for (auto from : kOrders) reachable |= Allowed(from, to);
    EXPECT_TRUE(reachable) << ToString(to);
  }
}

// A held order only leaves review by a reviewer's decision, and nothing returns to review.
TEST(PaymentStateTest, ReviewOnlyReleasesOrFails) {
  EXPECT_TRUE(Allowed(OrderStatus::kRequiresReview, OrderStatus::kProcessing));
  EXPECT_TRUE(Allowed(OrderStatus::kRequiresReview, OrderStatus::kFailed));
  EXPECT_FALSE(Allowed(OrderStatus::kRequiresReview, OrderStatus::kSucceeded));
  EXPECT_FALSE(Allowed(OrderStatus::kRequiresReview, OrderStatus::kPending));
  for (auto from : kOrders) EXPECT_FALSE(Allowed(from, OrderStatus::kRequiresReview));
}

TEST(PaymentStateTest, UnknownIsNeverAFailure) {
  EXPECT_EQ(AttemptStatusFor(Outcome::kUnknown), AttemptStatus::kUnknown);
  EXPECT_EQ(OrderStatusFor(AttemptStatus::kUnknown), OrderStatus::kProcessing);
  EXPECT_EQ(OrderStatusFor(AttemptStatus::kSending), OrderStatus::kProcessing);
  EXPECT_EQ(RefundStatusFor(Outcome::kUnknown), RefundStatus::kProcessing);
  EXPECT_EQ(RefundStatusFor(Outcome::kPending), RefundStatus::kProcessing);
  // Only definitive answers fail: a decline, or provably never sent.
  EXPECT_EQ(OrderStatusFor(AttemptStatusFor(Outcome::kDeclined)), OrderStatus::kFailed);
  EXPECT_EQ(OrderStatusFor(AttemptStatusFor(Outcome::kNotSent)), OrderStatus::kFailed);
  EXPECT_EQ(RefundStatusFor(Outcome::kDeclined), RefundStatus::kFailed);
  EXPECT_EQ(OrderStatusFor(AttemptStatusFor(Outcome::kSucceeded)), OrderStatus::kSucceeded);
  // A provider answer can never take a pending order back to failed through unknown.
  EXPECT_TRUE(Allowed(OrderStatus::kPending, OrderStatus::kProcessing));
  EXPECT_FALSE(Allowed(OrderStatus::kSucceeded, OrderStatus::kProcessing));
}

TEST(PaymentStateTest, NamesRoundTrip) {
  for (auto s : kOrders) EXPECT_EQ(ParseOrderStatus(ToString(s)), s);
  for (auto s : kAttempts) EXPECT_EQ(ParseAttemptStatus(ToString(s)), s);
  for (auto s : kRefunds) EXPECT_EQ(ParseRefundStatus(ToString(s)), s);
  EXPECT_FALSE(ParseOrderStatus("FAILED"));
  EXPECT_FALSE(ParseOrderStatus(""));
}

}  // namespace
}  // namespace paygate::payments
