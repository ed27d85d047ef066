#include "gateway/auth/token_bucket.h"

#include <algorithm>
#include <cmath>

namespace paygate::auth {

TokenBucket::TokenBucket(std::uint32_t rate_per_second, std::uint32_t burst, Clock::time_point now)
    : rate_per_second_(std::max<std::uint32_t>(rate_per_second, 1)),
      burst_(std::max<std::uint32_t>(burst, 1)),
      tokens_(burst_),
      last_(now) {}

TokenBucket::Clock::duration TokenBucket::TryTake(Clock::time_point now) {
  std::lock_guard lock(mu_);
  // Threads may pass slightly older times than the last one seen; time never runs backwards here.
  if (now > last_) {
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_per_second_);
    last_ = now;
  }
  // The tolerance absorbs rounding, so a client that waits exactly the announced time gets in.
  constexpr double kTolerance = 1e-9;
  if (tokens_ >= 1.0 - kTolerance) {
    tokens_ = std::max(0.0, tokens_ - 1.0);
    return Clock::duration::zero();
  }
  const double wait_seconds = (1.0 - tokens_) / rate_per_second_;
  return std::max<Clock::duration>(
      std::chrono::ceil<Clock::duration>(std::chrono::duration<double>(wait_seconds)),
      Clock::duration(1));
}

std::int64_t RetryAfterSeconds(TokenBucket::Clock::duration wait) {
  const double seconds = std::chrono::duration<double>(wait).count();
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(seconds)));
}

}  // namespace paygate::auth
