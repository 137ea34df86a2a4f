// Ed25519 identities on libsodium's crypto_sign (identity.h).
#include "blindsync/auth/identity.h"

#include <sodium.h>


#include "sodium_init.h"

namespace blindsync::auth {

static_assert(crypto_sign_SEEDBYTES == std::tuple_size_v<Seed>);
static_assert(crypto_sign_PUBLICKEYBYTES == std::tuple_size_v<PublicKey>);
static_assert(crypto_sign_SECRETKEYBYTES == 64);
static_assert(crypto_sign_BYTES == Signature::kSize);

SigningKey SigningKey::generate() {
  Seed seed{};
  random_fill(seed);
  SigningKey key = from_seed(seed);
  sodium_memzero(seed.data(), seed.size());
  return key;
}

SigningKey SigningKey::from_seed(const Seed& seed) {
  detail::ensure_sodium();
  SigningKey key;
  key.seed_ = seed;
  // Cannot fail for a 32-byte seed.
  crypto_sign_seed_keypair(key.public_key_.data(), key.secret_key_.data(), key.seed_.data());
  return key;
}

SigningKey::SigningKey(SigningKey&& other) noexcept
    : seed_(other.seed_), secret_key_(other.secret_key_), public_key_(other.public_key_) {
  // Leave no second copy of the secret behind in the moved-from object.
  sodium_memzero(other.seed_.data(), other.seed_.size());
  sodium_memzero(other.secret_key_.data(), other.secret_key_.size());
}

SigningKey& SigningKey::operator=(SigningKey&& other) noexcept {
  if (this != &other) {
    seed_ = other.seed_;
    secret_key_ = other.secret_key_;
    public_key_ = other.public_key_;
    sodium_memzero(other.seed_.data(), other.seed_.size());
    sodium_memzero(other.secret_key_.data(), other.secret_key_.size());
  }
  return *this;
}

SigningKey::~SigningKey() {
  sodium_memzero(seed_.data(), seed_.size());
  sodium_memzero(secret_key_.data(), secret_key_.size());
}

Signature SigningKey::sign(ByteView message) const {
  detail::ensure_sodium();
  Signature::Array sig{};
  // An empty span may carry a null pointer; libsodium never reads it when the length is 0, but
  // hand it a valid address anyway.
  static const std::uint8_t kEmpty = 0;
  const std::uint8_t* data = message.empty() ? &kEmpty : message.data();
  crypto_sign_detached(sig.data(), nullptr, data, message.size(), secret_key_.data());
  return Signature(sig);
}

bool verify_signature(const std::array<std::uint8_t, 32>& public_key, ByteView message, const Signature& sig) {
  detail::ensure_sodium();
  static const std::uint8_t kEmpty = 0;
  const std::uint8_t* data = message.empty() ? &kEmpty : message.data();
  return crypto_sign_verify_detached(sig.data(), data, message.size(), public_key.data()) == 0;
}

void random_fill(std::span<std::uint8_t> out) {
  detail::ensure_sodium();
  if (!out.empty()) randombytes_buf(out.data(), out.size());
}

void secure_wipe(std::span<std::uint8_t> bytes) noexcept {
  if (!bytes.empty()) sodium_memzero(bytes.data(), bytes.size());
}

}  // namespace blindsync::auth
