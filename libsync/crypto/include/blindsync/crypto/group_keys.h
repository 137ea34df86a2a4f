// A group's secret and everything derived from it (DESIGN.md "Identities and keys").
//
// From the 32-byte secret, HKDF-SHA256 with distinct length-prefixed labels derives:
//   payload key     "blindsync/v1/payload-key"     XChaCha20-Poly1305-IETF
//   group auth seed "blindsync/v1/group-auth-seed" Ed25519; group_id = its public key
//   content keys    "blindsync/v1/content-key" || content id
// GroupKeys wipes its secrets on destruction; it is move-only.
// Thread-safety: const methods may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "blindsync/auth/identity.h"
#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"

namespace blindsync::crypto {

using GroupSecret = std::array<std::uint8_t, 32>;
using SymmetricKey = std::array<std::uint8_t, 32>;

GroupSecret generate_group_secret();

class GroupKeys {
 public:
  static GroupKeys derive(const GroupSecret& secret);

  GroupKeys(GroupKeys&&) noexcept = default;
  GroupKeys& operator=(GroupKeys&&) noexcept = default;
  GroupKeys(const GroupKeys&) = delete;
  GroupKeys& operator=(const GroupKeys&) = delete;
  ~GroupKeys();

  const GroupId& group_id() const noexcept { return group_id_; }
  const auth::SigningKey& auth_key() const noexcept { return auth_key_; }
  const SymmetricKey& payload_key() const noexcept { return payload_key_; }
  SymmetricKey content_key(ByteView content_id) const;

 private:
  GroupKeys(auth::SigningKey auth_key, const GroupSecret& secret);
  auth::SigningKey auth_key_;
  GroupId group_id_;
  GroupSecret secret_{};
  SymmetricKey payload_key_{};
};

}  // namespace blindsync::crypto
