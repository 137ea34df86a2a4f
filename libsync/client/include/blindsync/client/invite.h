// Invite links: blindsync://join/<base64url(MessagePack map)>.
// The payload carries a format version, the relays (URL + relay_id to pin), the group secret
// (or passphrase-mode salt and parameters instead), an optional group name and an expiry.
// Anyone holding a link can join the group: treat it as a secret.
#pragma once

#include <array>
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

std::string encode_invite(const Invite& invite);
// kInvalidArgument for a malformed link, kUnsupportedVersion for an unknown version,
// kExpired when now_ms is past expires_at_ms.
Result<Invite> decode_invite(std::string_view link, std::uint64_t now_ms);

}  // namespace blindsync
