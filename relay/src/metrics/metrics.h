// Metrics: the relay's counters, incremented where things happen and rendered for GET /metrics
// (Prometheus text format) by metrics_text.cpp. Counts are exact: plain atomics, never sampled,
// never skipped because a lock was busy. Gauges (sessions now, blobs buffered) are not stored
// here: they are read from the hub and the store when /metrics is rendered.
//
// Thread-safety: every member may be updated from any thread (relaxed atomics: each counter is
// exact; counters are not a consistent snapshot of each other).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "blindsync/core/status.h"

namespace blindsync::relay {

enum class RateLimitKind : std::size_t {
  kConnectionsPerIp,  // too many concurrent connections from one address
  kDeviceMessages,    // messages per device per minute
  kGlobal,            // relay-wide message rate
  kSessions,          // max concurrent sessions (RELAY_OVERLOADED)
  kGroupSessions,     // max sessions per group (GROUP_FULL)
  kCount,
};
std::string_view rate_limit_kind_name(RateLimitKind kind) noexcept;  // "connections_per_ip", ...

// Push commit latency buckets, in seconds (upper bounds; +Inf is implied).
inline constexpr std::array<double, 12> kCommitLatencyBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                                 0.01,   0.025,   0.05,   0.1,   0.25,   1.0};

class LatencyHistogram {
 public:
  void observe(double seconds) noexcept;
  std::uint64_t bucket_count(std::size_t i) const noexcept { return buckets_[i].load(std::memory_order_relaxed); }
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum_seconds() const noexcept { return static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9; }

 private:
  std::array<std::atomic<std::uint64_t>, kCommitLatencyBuckets.size() + 1> buckets_{};  // last = +Inf
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
};

struct Metrics {
  std::atomic<std::uint64_t> sessions_total{0};  // sessions that completed the handshake
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> pushes{0};          // PUSH_ACKs sent (duplicates included)
  std::atomic<std::uint64_t> push_duplicates{0};
  std::atomic<std::uint64_t> pulls{0};           // PULL_RESPONSEs sent
  std::atomic<std::uint64_t> notifies{0};        // NOTIFY frames queued to sessions
  std::atomic<std::uint64_t> bytes_in{0};        // WebSocket payload bytes received
  std::atomic<std::uint64_t> bytes_out{0};       // WebSocket payload bytes sent
  std::atomic<std::uint64_t> auth_failures{0};   // HELLOs refused for a bad signature or token
  std::atomic<std::uint64_t> cleanup_runs{0};
  std::atomic<std::uint64_t> blobs_removed{0};   // by cleanup (expiry or all-acked) and DELETE
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(RateLimitKind::kCount)> rate_limit_hits{};
  LatencyHistogram push_commit_latency;

  void count_rate_limit(RateLimitKind kind) noexcept {
    rate_limit_hits[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed);
  }
  // ERROR frames sent, by wire code.
  void count_error(Code code) noexcept;
  std::uint64_t errors(Code code) const noexcept;

  // The wire codes counted by count_error, in order, for rendering.
  static constexpr std::array<Code, 18> kErrorCodes = {
      Code::kInvalidMessage,   Code::kUnknownGroup,       Code::kUnauthorized,     Code::kDeviceRevoked,
      Code::kNotBlobOwner,     Code::kUnsupportedVersion, Code::kInvalidState,     Code::kHelloTimeout,
      Code::kRateLimited,      Code::kBlobTooLarge,       Code::kGroupQuotaExceeded, Code::kInvalidPushToken,
      Code::kGroupFull,        Code::kRelayOverloaded,    Code::kRelayShuttingDown, Code::kInternal,
      Code::kStorageFull,      Code::kOk /* any other code */};

 private:
  std::array<std::atomic<std::uint64_t>, kErrorCodes.size()> errors_{};
};

}  // namespace blindsync::relay
