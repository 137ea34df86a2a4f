// Passphrase mode: Argon2id13 via libsodium crypto_pwhash (passphrase.h).
#include "blindsync/crypto/passphrase.h"

#include <sodium.h>
#include <unistd.h>

#include <string>

#include "blindsync/auth/identity.h"
#include "sodium_init.h"

namespace blindsync::crypto {
namespace {

constexpr std::uint64_t kLowRamThresholdBytes = 1024ull * 1024 * 1024;  // below 1 GiB: use the floor
static_assert(crypto_pwhash_SALTBYTES == std::tuple_size_v<decltype(Argon2Params::salt)>);

// Physical RAM of this machine in bytes, or 0 when the system does not say.
std::uint64_t physical_ram_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
}

}  // namespace

Argon2Params default_argon2_params() {
  Argon2Params params;  // 64 MiB, 3 passes
  const std::uint64_t ram = physical_ram_bytes();
  // Unknown RAM is treated as plenty: the defaults are modest, and a phone-sized device reports it.
  if (ram != 0 && ram < kLowRamThresholdBytes) {
    params.memory_bytes = kArgon2MinMemoryBytes;
    params.passes = kArgon2MinPasses;
  }
  auth::random_fill(params.salt);
  return params;
}

Result<GroupSecret> secret_from_passphrase(std::string_view passphrase, const Argon2Params& params) {
  if (params.memory_bytes < kArgon2MinMemoryBytes || params.passes < kArgon2MinPasses) {
    return Status(Code::kInvalidArgument, "Argon2id parameters below the floor (19 MiB, 2 passes)");
  }
  if (params.memory_bytes > kArgon2MaxMemoryBytes || params.passes > kArgon2MaxPasses) {
    return Status(Code::kInvalidArgument, "Argon2id parameters above the ceiling (4 GiB, 32 passes)");
  }
  if (params.memory_bytes > crypto_pwhash_memlimit_max() || params.passes > crypto_pwhash_opslimit_max()) {
    return Status(Code::kInvalidArgument, "Argon2id parameters exceed what this platform supports");
  }
  if (passphrase.empty()) return Status(Code::kInvalidArgument, "passphrase is empty");
  if (passphrase.size() > crypto_pwhash_PASSWD_MAX) {
    return Status(Code::kInvalidArgument, "passphrase too long");
  }
  detail::ensure_sodium();
  GroupSecret secret{};
  const int rc = crypto_pwhash(secret.data(), secret.size(), passphrase.data(), passphrase.size(),
                               params.salt.data(), static_cast<unsigned long long>(params.passes),
                               static_cast<std::size_t>(params.memory_bytes), crypto_pwhash_ALG_ARGON2ID13);
  if (rc != 0) {
    sodium_memzero(secret.data(), secret.size());
    return Status(Code::kInternal, "Argon2id failed (out of memory?)");
  }
  return secret;
}

}  // namespace blindsync::crypto
