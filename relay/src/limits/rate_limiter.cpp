#include "limits/rate_limiter.h"

#include <algorithm>

namespace blindsync::relay {
namespace {
// Buckets examined at the LRU end per call: enough to keep up with any arrival rate (each call
// adds at most one bucket) while keeping every call O(1).
constexpr int kPrunePerCall = 2;
}  // namespace

MessageRateLimiter::MessageRateLimiter(std::uint32_t device_messages_per_minute,
                                       std::uint32_t global_messages_per_second, std::size_t max_devices,
                                       Clock::time_point now)
    : device_capacity_(std::max<std::uint32_t>(1, device_messages_per_minute)),
      device_per_second_(std::max<std::uint32_t>(1, device_messages_per_minute) / 60.0),
      max_devices_(std::max<std::size_t>(1, max_devices)),
      global_(std::max<std::uint32_t>(1, global_messages_per_second),
              std::max<std::uint32_t>(1, global_messages_per_second), now) {
  devices_.reserve(std::min<std::size_t>(max_devices_, 1024));
}

void MessageRateLimiter::prune_idle(Clock::time_point now) {
  for (int i = 0; i < kPrunePerCall && !lru_.empty(); ++i) {
    auto it = devices_.find(lru_.back());
    if (!it->second.bucket.full_at(now)) break;  // the oldest is still paying off: so is the rest, mostly
    devices_.erase(it);
    lru_.pop_back();
  }
}

RateDecision MessageRateLimiter::check_device(const DeviceId& device, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  prune_idle(now);
  auto it = devices_.find(device);
  if (it == devices_.end()) {
    if (devices_.size() >= max_devices_) {  // full: forget the least recently used device
      devices_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(device);
    it = devices_.emplace(device, Entry{TokenBucket(device_capacity_, device_per_second_, now), lru_.begin()}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  if (!it->second.bucket.try_take(now)) return RateDecision::kDeviceLimited;
  if (!global_.try_take(now)) return RateDecision::kGlobalLimited;
  return RateDecision::kAllowed;
}

RateDecision MessageRateLimiter::check_anonymous(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  prune_idle(now);
  return global_.try_take(now) ? RateDecision::kAllowed : RateDecision::kGlobalLimited;
}

std::size_t MessageRateLimiter::tracked_devices() const {
  std::lock_guard lock(mutex_);
  return devices_.size();
}

}  // namespace blindsync::relay
