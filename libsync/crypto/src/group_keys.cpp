// Key derivation from the group secret (group_keys.h).
//
// PRK = HKDF-Extract(salt = empty, i.e. 32 zero bytes, IKM = secret): the secret is already uniformly
// random (or Argon2id output), so no salt is needed. Every key is HKDF-Expand(PRK, info, 32) where info
// is a sequence of length-prefixed fields (u32 big-endian length, then the bytes):
//   payload key     [label "blindsync/v1/payload-key"]
//   group auth seed [label "blindsync/v1/group-auth-seed"]
//   content key     [label "blindsync/v1/content-key", content_id]
// Length prefixes keep a label followed by a content id from colliding with any other label.
// Changing any of this changes every group_id: it is part of protocol v1.
#include "blindsync/crypto/group_keys.h"

#include <sodium.h>

#include <algorithm>
#include <cstdlib>

#include "blindsync/crypto/hkdf.h"
#include "sodium_init.h"

namespace blindsync::crypto {
namespace {

constexpr std::string_view kPayloadKeyLabel = "blindsync/v1/payload-key";
constexpr std::string_view kGroupAuthSeedLabel = "blindsync/v1/group-auth-seed";
constexpr std::string_view kContentKeyLabel = "blindsync/v1/content-key";

void append_field(Bytes& out, ByteView field) {
  const auto n = static_cast<std::uint32_t>(field.size());
  out.push_back(static_cast<std::uint8_t>(n >> 24));
  out.push_back(static_cast<std::uint8_t>(n >> 16));
  out.push_back(static_cast<std::uint8_t>(n >> 8));
  out.push_back(static_cast<std::uint8_t>(n));
  out.insert(out.end(), field.begin(), field.end());
}

// Writes HKDF-Expand(HKDF-Extract(secret), info, 32) into out.
void derive_key(const GroupSecret& secret, ByteView info, std::array<std::uint8_t, 32>& out) {
  Result<Bytes> okm = hkdf(ByteView{}, secret, info, out.size());
  if (!okm) std::abort();  // 32 <= 255 * 32: cannot fail
  std::copy(okm->begin(), okm->end(), out.begin());
  sodium_memzero(okm->data(), okm->size());
}

Bytes label_info(std::string_view label) {
  Bytes info;
  append_field(info, as_bytes(label));
  return info;
}

}  // namespace

GroupSecret generate_group_secret() {
  GroupSecret secret{};
  auth::random_fill(secret);
  return secret;
}

GroupKeys GroupKeys::derive(const GroupSecret& secret) {
  auth::Seed seed{};
  derive_key(secret, label_info(kGroupAuthSeedLabel), seed);
  GroupKeys keys(auth::SigningKey::from_seed(seed), secret);
  sodium_memzero(seed.data(), seed.size());
  return keys;
}

GroupKeys::GroupKeys(auth::SigningKey auth_key, const GroupSecret& secret)
    : auth_key_(std::move(auth_key)), group_id_(auth_key_.public_key()), secret_(secret) {
  derive_key(secret_, label_info(kPayloadKeyLabel), payload_key_);
}

GroupKeys::~GroupKeys() {
  sodium_memzero(secret_.data(), secret_.size());
  sodium_memzero(payload_key_.data(), payload_key_.size());
}

SymmetricKey GroupKeys::content_key(ByteView content_id) const {
  Bytes info = label_info(kContentKeyLabel);
  append_field(info, content_id);
  SymmetricKey key{};
  derive_key(secret_, info, key);
  return key;
}

}  // namespace blindsync::crypto
