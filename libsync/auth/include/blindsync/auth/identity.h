// Ed25519 signing identities: devices, group auth keys and relays (libsodium crypto_sign).
//
// SigningKey owns a 32-byte seed and the 64-byte secret key; both are wiped on destruction.
// Copying is disabled so secrets are not duplicated by accident; move it instead.
// Thread-safety: const methods may be called concurrently.
#pragma once

#include <array>
#include <cstdint>

#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"

namespace blindsync::auth {

using PublicKey = std::array<std::uint8_t, 32>;
using Seed = std::array<std::uint8_t, 32>;

class SigningKey {
 public:
  static SigningKey generate();
  static SigningKey from_seed(const Seed& seed);

  SigningKey(SigningKey&& other) noexcept;
  SigningKey& operator=(SigningKey&& other) noexcept;
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;
  ~SigningKey();

  const PublicKey& public_key() const noexcept { return public_key_; }
  // REQUIRES: caller keeps the seed secret (it is the whole key).
  const Seed& seed() const noexcept { return seed_; }

  Signature sign(ByteView message) const;

 private:
  SigningKey() = default;
  Seed seed_{};
  std::array<std::uint8_t, 64> secret_key_{};
  PublicKey public_key_{};
};

// True only if sig is a valid Ed25519 signature of message by public_key.
[[nodiscard]] bool verify_signature(const std::array<std::uint8_t, 32>& public_key, ByteView message,
                                    const Signature& sig);

// Fills out with cryptographically secure random bytes.
void random_fill(std::span<std::uint8_t> out);
template <typename Id>
Id random_id() {
  typename Id::Array a{};
  random_fill(a);
  return Id(a);
}

// Wipes memory so the compiler cannot elide it (sodium_memzero).
void secure_wipe(std::span<std::uint8_t> bytes) noexcept;

}  // namespace blindsync::auth
