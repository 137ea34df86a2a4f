// TokenBucket: a rate limit of `per_second` events with bursts of up to `capacity` (the classic
// token bucket: tokens refill continuously, each event takes one).
//
// Time is passed in (sans-I/O), so tests drive it with a manual clock.
// Thread-safety: none; the owner serialises access (MessageRateLimiter holds a mutex).
#pragma once

#include <chrono>

namespace blindsync::relay {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts full. REQUIRES: capacity >= 1, per_second > 0.
  TokenBucket(double capacity, double per_second, Clock::time_point now) noexcept;

  // Refills for the time since the last call, then takes one token if there is one.
  bool try_take(Clock::time_point now) noexcept;

  // True when the bucket has refilled completely by `now`: it is then indistinguishable from a
  // fresh one, so forgetting it loses nothing (the limiter's eviction relies on this).
  bool full_at(Clock::time_point now) const noexcept;

  double tokens_at(Clock::time_point now) const noexcept;

 private:
  double capacity_;
  double per_second_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace blindsync::relay
