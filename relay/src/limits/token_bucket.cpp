#include "limits/token_bucket.h"

#include <algorithm>

namespace blindsync::relay {

TokenBucket::TokenBucket(double capacity, double per_second, Clock::time_point now) noexcept
    : capacity_(std::max(1.0, capacity)), per_second_(per_second > 0 ? per_second : 1.0), tokens_(capacity_),
      last_(now) {}

double TokenBucket::tokens_at(Clock::time_point now) const noexcept {
  // A clock that went backwards (it cannot with steady_clock, but a test may pass anything) adds nothing.
  const double elapsed = now > last_ ? std::chrono::duration<double>(now - last_).count() : 0.0;
  return std::min(capacity_, tokens_ + elapsed * per_second_);
}

bool TokenBucket::try_take(Clock::time_point now) noexcept {
  tokens_ = tokens_at(now);
  if (now > last_) last_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

bool TokenBucket::full_at(Clock::time_point now) const noexcept { return tokens_at(now) >= capacity_; }

}  // namespace blindsync::relay
