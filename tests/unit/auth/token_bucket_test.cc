// The token bucket behind per-key and per-principal rate limits, driven by a fake clock.
#include "gateway/auth/token_bucket.h"

#include <gtest/gtest.h>

namespace paygate::auth {
namespace {

using namespace std::chrono_literals;
using Clock = TokenBucket::Clock;

// Proves a full bucket allows `burst` requests at once, then refuses with the wait until the next
// token, and refills at the configured rate without exceeding the burst.
TEST(TokenBucketTest, BurstThenRate) {
  const Clock::time_point t0{};
  TokenBucket bucket(/*rate_per_second=*/2, /*burst=*/3, t0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bucket.TryTake(t0), Clock::duration::zero()) << i;
  const auto wait = bucket.TryTake(t0);
  EXPECT_GT(wait, 499ms);
  EXPECT_LE(wait, 500ms);
  EXPECT_EQ(RetryAfterSeconds(wait), 1);
  // Half a second later one token is back, and only one.
  EXPECT_EQ(bucket.TryTake(t0 + 500ms), Clock::duration::zero());
  EXPECT_GT(bucket.TryTake(t0 + 500ms), Clock::duration::zero());
  // After a long pause the bucket holds `burst` tokens, not more.
  const auto later = t0 + 1h;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bucket.TryTake(later), Clock::duration::zero()) << i;
  EXPECT_GT(bucket.TryTake(later), Clock::duration::zero());
}

// Proves a refused request takes nothing: waiting exactly the announced time is enough.
TEST(TokenBucketTest, RefusalTakesNoToken) {
  const Clock::time_point t0{};
  TokenBucket bucket(1, 1, t0);
  EXPECT_EQ(bucket.TryTake(t0), Clock::duration::zero());
  Clock::duration wait{};
  for (int i = 0; i < 5; ++i) wait = bucket.TryTake(t0 + 100ms);
  EXPECT_GT(wait, 0ms);
  EXPECT_EQ(bucket.TryTake(t0 + 100ms + wait), Clock::duration::zero());
}

// Proves Retry-After rounds up to whole seconds and is never zero.
TEST(TokenBucketTest, RetryAfterRoundsUp) {
  EXPECT_EQ(RetryAfterSeconds(1ns), 1);
  EXPECT_EQ(RetryAfterSeconds(1s), 1);
  EXPECT_EQ(RetryAfterSeconds(1001ms), 2);
  EXPECT_EQ(RetryAfterSeconds(10s), 10);
}

// Proves times older than the last one seen (another thread's clock read) neither refill nor
// break the bucket.
TEST(TokenBucketTest, TimeNeverRunsBackwards) {
  const Clock::time_point t0 = Clock::time_point{} + 10s;
  TokenBucket bucket(1, 1, t0);
  EXPECT_EQ(bucket.TryTake(t0), Clock::duration::zero());
  EXPECT_GT(bucket.TryTake(t0 - 5s), Clock::duration::zero());
  EXPECT_EQ(bucket.TryTake(t0 + 1s), Clock::duration::zero());
}

}  // namespace
}  // namespace paygate::auth
