// RelayLimits: the relay's operator-configurable protection limits (DESIGN.md "Relay" / "Limits"),
// beside the wire-announced Limits of core/limits.h (frame and blob size, pull limit, inline
// NOTIFY size, HELLO timeout, max TTL), which HubOptions::limits carries.
//
// Every field is enforced somewhere and attacked by a test (tests/relay/limits_*_test.cpp). A value
// of 0 means "no limit" only where a field says so. The config layer (relay_config / main) maps the
// keys named in the comments (config file, BLINDSYNC_RELAY_<KEY> environment, flags) onto these
// fields.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"

namespace blindsync::relay {

// Who may open a session (checked after both HELLO signatures verified). Config key "access":
// "open" | "token" | "allowlist".
enum class AdmissionMode {
  kOpen,       // any group
  kToken,      // HELLO.access_token must equal one of RelayLimits::access_tokens
  kAllowlist,  // HELLO.group_id must be one of RelayLimits::allowlist
};
std::string_view admission_mode_name(AdmissionMode mode) noexcept;

struct RelayLimits {
  // --- connections and sessions ---
  std::uint32_t max_sessions = 3000;            // max_sessions: beyond it HELLO gets 3000 RELAY_OVERLOADED
  std::uint32_t max_sessions_per_group = 16;    // max_sessions_per_group: beyond it 2004 GROUP_FULL
  std::uint32_t max_connections_per_ip = 10;    // max_connections_per_ip: concurrent TCP connections; 0 = none
  std::uint32_t max_devices_per_group = 256;    // max_devices_per_group: distinct device keys remembered per
                                                // group; a new one beyond it gets 2004 GROUP_FULL; 0 = none

  // --- message rates (token buckets) ---
  std::uint32_t device_messages_per_minute = 100;  // device_messages_per_minute: burst = the same number
  std::uint32_t global_messages_per_second = 2000; // global_messages_per_second: every frame incl. HELLO
  std::uint32_t rate_limit_strikes = 20;            // rate_limit_strikes: consecutive refused messages
                                                    // before the session is closed (4100); 0 = never close
  std::size_t limiter_max_devices = 100'000;        // limiter_max_devices: per-device limiter entries
                                                    // kept (LRU); bounds its memory

  // --- storage ---
  std::uint64_t group_quota_bytes = 100ull * 1024 * 1024;         // group_quota_bytes: 2002; 0 = none
  std::uint64_t max_groups = 100'000;                             // max_groups: 3003 beyond it; 0 = none
  std::uint64_t storage_cap_bytes = 10ull * 1024 * 1024 * 1024;   // storage_cap_bytes: payload bytes of
                                                                  // all groups; 3003 beyond it; 0 = none

  // --- admission ---
  AdmissionMode access = AdmissionMode::kOpen;  // access
  std::vector<std::string> access_tokens; // access_tokens (comma-separated in config)
  std::vector<GroupId> allowlist;         // allowlist (comma-separated hex group ids)

  // (Timeouts: the HELLO timeout is Limits::hello_timeout_ms; idle_timeout_ms is enforced by net/
  // through ServerOptions::websocket_idle_timeout.)

  // --- retention ---
  std::uint32_t cleanup_interval_ms = 60'000;  // cleanup_interval_ms: expiry / drop-acked cleanup period
  bool drop_acked = false;                     // drop_acked: delete blobs every non-revoked device ACKed
};

// kInvalidArgument for combinations that cannot work (0 sessions, token mode without tokens, ...).
Status validate(const RelayLimits& limits);

}  // namespace blindsync::relay
