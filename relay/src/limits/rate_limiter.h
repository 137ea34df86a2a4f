// MessageRateLimiter: how many messages the relay accepts, per device and in total.
//
// Every client frame is checked before the hub acts on it. Frames of an authenticated session take
// a token from the device's bucket (device_messages_per_minute, keyed by device id, so several
// sessions of one device share it), then from the relay-wide bucket (global_messages_per_second).
// Frames before authentication (the HELLO) only take from the global bucket. Fresh device keys get
// fresh device buckets, but never more of the global one: that is what makes the global limit
// impossible to bypass by minting keys.
//
// Memory is bounded whatever the number of distinct devices: at most max_devices buckets are kept,
// in least-recently-used order. The LRU end is pruned of buckets that have refilled completely
// (forgetting those loses nothing); when the table is full the least recently used bucket is
// evicted even if it is not full, which only ever hands a device that was idle longest a fresh
// budget, still under the global bucket.
//
// Thread-safety: all methods may be called concurrently (one mutex; each call is O(1)).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <unordered_map>

#include "blindsync/core/ids.h"
#include "limits/token_bucket.h"

namespace blindsync::relay {

enum class RateDecision {
  kAllowed,
  kDeviceLimited,  // the device's own bucket is empty
  kGlobalLimited,  // the relay-wide bucket is empty
};

class MessageRateLimiter {
 public:
  using Clock = TokenBucket::Clock;

  // REQUIRES: every argument >= 1.
  MessageRateLimiter(std::uint32_t device_messages_per_minute, std::uint32_t global_messages_per_second,
                     std::size_t max_devices, Clock::time_point now);

  // One message of an authenticated device.
  RateDecision check_device(const DeviceId& device, Clock::time_point now);
  // One message from a connection not yet authenticated (global bucket only).
  RateDecision check_anonymous(Clock::time_point now);

  // Device buckets currently held (<= max_devices).
  std::size_t tracked_devices() const;

 private:
  struct Entry {
    TokenBucket bucket;
    std::list<DeviceId>::iterator lru;  // position in lru_
  };

  void prune_idle(Clock::time_point now);

  const double device_capacity_;
  const double device_per_second_;
  const std::size_t max_devices_;

  mutable std::mutex mutex_;
  TokenBucket global_;
  std::unordered_map<DeviceId, Entry, FixedIdHash> devices_;
  std::list<DeviceId> lru_;  // front = most recently used
};

}  // namespace blindsync::relay
