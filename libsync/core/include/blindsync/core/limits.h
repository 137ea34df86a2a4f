// Protocol-wide default limits. The relay makes each configurable; these are the defaults
// both ends assume when nothing else was negotiated (CHALLENGE/WELCOME carry the relay's values).
#pragma once

#include <cstddef>
#include <cstdint>

namespace blindsync {

inline constexpr std::uint32_t kProtocolVersion = 1;

inline constexpr std::size_t kDefaultMaxBlobBytes = 1024 * 1024;           // 1 MiB payload
inline constexpr std::size_t kFrameOverheadBytes = 16 * 1024;              // headers + ids around a payload
inline constexpr std::size_t kDefaultMaxFrameBytes = kDefaultMaxBlobBytes + kFrameOverheadBytes;
inline constexpr std::uint32_t kDefaultMaxPullLimit = 1000;                // blobs per PULL page
// Pages a client asks for per PULL when catching up (Pull::pages): one round trip per 8 pages.
inline constexpr std::uint32_t kCatchUpPullPages = 8;
inline constexpr std::size_t kDefaultInlineNotifyBytes = 16 * 1024;        // NOTIFY carries payload up to this
inline constexpr std::size_t kMaxDeviceNameBytes = 64;                     // UTF-8, truncated by the relay
inline constexpr std::size_t kMaxStringBytes = 4096;                       // any other string field
inline constexpr std::size_t kMaxArrayItems = 10000;                       // any array on the wire
inline constexpr std::uint32_t kDefaultHelloTimeoutMs = 10'000;
inline constexpr std::uint32_t kDefaultTtlSeconds = 7 * 24 * 3600;         // 7 days
inline constexpr std::uint32_t kDefaultMaxTtlSeconds = 30 * 24 * 3600;     // 30 days

// Limits a relay announces in CHALLENGE and WELCOME.
struct Limits {
  std::uint32_t max_frame_bytes = kDefaultMaxFrameBytes;
  std::uint32_t max_blob_bytes = kDefaultMaxBlobBytes;
  std::uint32_t max_pull_limit = kDefaultMaxPullLimit;
  std::uint32_t inline_notify_bytes = kDefaultInlineNotifyBytes;
  std::uint32_t hello_timeout_ms = kDefaultHelloTimeoutMs;
  std::uint32_t max_ttl_seconds = kDefaultMaxTtlSeconds;

  friend bool operator==(const Limits&, const Limits&) = default;
};

}  // namespace blindsync
