// Invite links: blindsync://join/<base64url(MessagePack map)>.
// The payload carries a format version, the relays (URL + relay_id to pin), the group secret
// (or passphrase-mode salt and parameters instead), an optional group name and an expiry.
// Anyone holding a link can join the group: treat it as a secret.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"

namespace blindsync {

inline constexpr std::uint32_t kInviteVersion = 1;
inline constexpr std::string_view kInvitePrefix = "blindsync://join/";
// Bounds decode_invite enforces (a link is hostile input until it decodes).
inline constexpr std::size_t kMaxInviteRelays = 8;
inline constexpr std::size_t kMaxInviteUrlBytes = 2048;
inline constexpr std::size_t kMaxInviteNameBytes = 256;

struct InviteRelay {
  std::string url;
  RelayId relay_id;
  friend bool operator==(const InviteRelay&, const InviteRelay&) = default;
};

struct Invite {
  std::uint32_t version = kInviteVersion;
  std::vector<InviteRelay> relays;            // at least one
  std::array<std::uint8_t, 32> secret{};      // group secret (treat as a key)
  std::string group_name;
  std::uint64_t expires_at_ms = 0;            // 0 = never
  friend bool operator==(const Invite&, const Invite&) = default;
};

// REQUIRES: invite satisfies the bounds above (1..8 relays with ws:// or wss:// URLs, ...);
// otherwise the link is still produced but decode_invite refuses it.
std::string encode_invite(const Invite& invite);
// kInvalidArgument for a malformed link, kUnsupportedVersion for an unknown version,
// kExpired when now_ms is past expires_at_ms (expires_at_ms == 0 never expires).
// Thread-safety: both functions are pure; call them from any thread.
Result<Invite> decode_invite(std::string_view link, std::uint64_t now_ms);

}  // namespace blindsync
