#include "metrics/metrics.h"

#include <algorithm>
#include <cmath>

namespace blindsync::relay {

std::string_view rate_limit_kind_name(RateLimitKind kind) noexcept {
  switch (kind) {
    case RateLimitKind::kConnectionsPerIp: return "connections_per_ip";
    case RateLimitKind::kDeviceMessages: return "device_messages";
    case RateLimitKind::kGlobal: return "global";
    case RateLimitKind::kSessions: return "sessions";
    case RateLimitKind::kGroupSessions: return "group_sessions";
    case RateLimitKind::kCount: break;
  }
  return "unknown";
}

void LatencyHistogram::observe(double seconds) noexcept {
  const auto bucket = static_cast<std::size_t>(
      std::lower_bound(kCommitLatencyBuckets.begin(), kCommitLatencyBuckets.end(), seconds) -
      kCommitLatencyBuckets.begin());
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  const double ns = std::max(0.0, seconds) * 1e9;
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::llround(ns)), std::memory_order_relaxed);
}

namespace {
std::size_t error_index(Code code) noexcept {
  const auto* end = Metrics::kErrorCodes.end() - 1;  // the last slot collects anything else
  const auto* it = std::find(Metrics::kErrorCodes.begin(), end, code);
  return static_cast<std::size_t>(it - Metrics::kErrorCodes.begin());
}
}  // namespace

void Metrics::count_error(Code code) noexcept { errors_[error_index(code)].fetch_add(1, std::memory_order_relaxed); }

std::uint64_t Metrics::errors(Code code) const noexcept {
  return errors_[error_index(code)].load(std::memory_order_relaxed);
}

}  // namespace blindsync::relay
