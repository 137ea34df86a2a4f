#include "backoff.h"

#include <algorithm>

namespace blindsync::client_detail {

namespace {
std::int64_t non_negative(std::chrono::milliseconds value) {
  return std::max<std::int64_t>(value.count(), 0);
}
}  // namespace

std::chrono::milliseconds backoff_base_delay(const BackoffPolicy& policy, std::uint32_t attempt) {
  const std::int64_t base = non_negative(policy.base);
  const std::int64_t cap = non_negative(policy.cap);
  std::int64_t delay = base;
  // Double attempt-1 times, stopping as soon as the cap is reached (so no shift can overflow).
  for (std::uint32_t i = 1; i < attempt && delay > 0 && delay < cap; ++i)
    delay = delay > cap / 2 ? cap : delay * 2;
  return std::chrono::milliseconds(std::min(delay, cap));
}

std::chrono::milliseconds backoff_delay(const BackoffPolicy& policy, std::uint32_t attempt,
                                        const JitterSource& jitter) {
  const auto base = backoff_base_delay(policy, attempt);
  const std::int64_t jitter_max = non_negative(policy.jitter);
  if (!jitter || jitter_max == 0) return base;
  const auto extra = std::min<std::uint64_t>(jitter(static_cast<std::uint64_t>(jitter_max)),
                                             static_cast<std::uint64_t>(jitter_max));
  return base + std::chrono::milliseconds(static_cast<std::int64_t>(extra));
}

}  // namespace blindsync::client_detail
