#pragma once

// Requests per key (DESIGN.md §5 "requests per key (token bucket -> 429)").
#include <chrono>
#include <cstdint>
#include <mutex>

namespace paygate::auth {

// A token bucket: `burst` tokens at most, refilled at `rate_per_second`; a request takes one.
// Time is passed in (steady clock) so tests drive it. Thread-safe: one short critical section per
// request, never held across I/O.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts full at `now`. rate_per_second and burst are at least 1 (config/validate.cc).
  TokenBucket(std::uint32_t rate_per_second, std::uint32_t burst, Clock::time_point now);

  // Takes a token at `now`: zero when one was taken, otherwise how long until one is available
  // (nothing is taken then).
  Clock::duration TryTake(Clock::time_point now);

 private:
  std::mutex mu_;
  const double rate_per_second_;
  const double burst_;
  double tokens_;
  Clock::time_point last_;
};

// The Retry-After value (whole seconds, at least 1) for a wait.
std::int64_t RetryAfterSeconds(TokenBucket::Clock::duration wait);

}  // namespace paygate::auth
