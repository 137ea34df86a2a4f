// Passphrase mode: the group secret is Argon2id(passphrase, salt) with parameters chosen by the
// creating device and carried with the group (in the invite) so every device derives the same
// secret. Parameters below the floor (19 MiB, 2 passes) are refused.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "blindsync/core/status.h"
#include "blindsync/crypto/group_keys.h"

namespace blindsync::crypto {

inline constexpr std::uint64_t kArgon2MinMemoryBytes = 19ull * 1024 * 1024;
inline constexpr std::uint64_t kArgon2MinPasses = 2;
// Ceilings: parameters arrive from other devices (invites), so a hostile value must not be able to
// make a joiner allocate terabytes or spin for hours.
inline constexpr std::uint64_t kArgon2MaxMemoryBytes = 4ull * 1024 * 1024 * 1024;
inline constexpr std::uint64_t kArgon2MaxPasses = 32;

struct Argon2Params {
  std::uint64_t memory_bytes = 64ull * 1024 * 1024;
  std::uint64_t passes = 3;
  std::array<std::uint8_t, 16> salt{};
};

// Fresh salt, and memory chosen for this machine (never below the floor).
Argon2Params default_argon2_params();

// kInvalidArgument below the floor, above the ceilings or for an empty passphrase;
// kInternal if libsodium runs out of memory. Thread-safety: may be called concurrently.
Result<GroupSecret> secret_from_passphrase(std::string_view passphrase, const Argon2Params& params);

}  // namespace blindsync::crypto
