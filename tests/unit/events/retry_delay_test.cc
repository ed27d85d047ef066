// The retry schedule: exponential from the base, capped, and jittered within [d/2, d] so the wait
// never falls below half the schedule and never exceeds it.
#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

#include "gateway/events/dispatcher.h"

namespace paygate::events {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

TEST(RetryDelay, DoublesFromBaseAndCaps) {
  const BackoffPolicy policy{5s, 1h};
  // random 0 gives the bottom of the range, d/2; random == d/2 (the spread, for an even d) gives
  // its top, d itself: the undithered schedule.
  auto top = [&](int attempts) {
    const auto spread = RetryDelay(policy, attempts, 0).count();
    return RetryDelay(policy, attempts, static_cast<std::uint64_t>(spread));
  };
  EXPECT_EQ(top(1), 5s);
  EXPECT_EQ(top(2), 10s);
  EXPECT_EQ(top(3), 20s);
  EXPECT_EQ(top(10), 2560s);
  EXPECT_EQ(top(11), 1h);  // 5120 s capped
  EXPECT_EQ(top(500), 1h);
  EXPECT_EQ(top(std::numeric_limits<std::int32_t>::max()), 1h);
}

TEST(RetryDelay, JitterStaysWithinHalfAndFull) {
  const BackoffPolicy policy{5s, 1h};
  EXPECT_EQ(RetryDelay(policy, 1, 0), 2500ms);
  EXPECT_EQ(RetryDelay(policy, 4, 0), 20s);
  for (std::uint64_t r : {std::uint64_t{1}, std::uint64_t{12345}, std::uint64_t{987654321}, kMax}) {
    for (int attempts : {1, 2, 7, 30}) {
      const auto d = RetryDelay(policy, attempts, r);
      const auto full =
          std::min<std::chrono::milliseconds>(1h, 5s * (1LL << std::min(attempts - 1, 20)));
      EXPECT_GE(d, full / 2) << attempts << " " << r;
      EXPECT_LE(d, full) << attempts << " " << r;
    }
  }
  // Different random values spread the waits.
  EXPECT_NE(RetryDelay(policy, 3, 1), RetryDelay(policy, 3, 777));
}

TEST(RetryDelay, ZeroOrNegativeAttemptsUseTheBase) {
  const BackoffPolicy policy{5s, 1h};
  EXPECT_EQ(RetryDelay(policy, 0, 0), 2500ms);
  EXPECT_EQ(RetryDelay(policy, -3, 2500), 5s);
}

}  // namespace
}  // namespace paygate::events
