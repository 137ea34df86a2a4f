// HKDF-SHA256 (RFC 5869) on libsodium's incremental HMAC-SHA256 (hkdf.h).
#include "blindsync/crypto/hkdf.h"

#include <sodium.h>

#include <algorithm>
#include <string>

#include "sodium_init.h"

namespace blindsync::crypto {
namespace {

constexpr std::size_t kHashLen = crypto_auth_hmacsha256_BYTES;
constexpr std::size_t kMaxOutput = 255 * kHashLen;
static_assert(kHashLen == std::tuple_size_v<Prk>);

void update(crypto_auth_hmacsha256_state& st, ByteView data) {
  if (!data.empty()) crypto_auth_hmacsha256_update(&st, data.data(), data.size());
}

}  // namespace

Prk hkdf_extract(ByteView salt, ByteView ikm) {
  detail::ensure_sodium();
  // RFC 5869 2.2: an absent salt is HashLen zero bytes.
  static const std::uint8_t kZeroSalt[kHashLen] = {};
  const std::uint8_t* key = salt.empty() ? kZeroSalt : salt.data();
  const std::size_t key_len = salt.empty() ? kHashLen : salt.size();
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key, key_len);
  update(st, ikm);
  Prk prk{};
  crypto_auth_hmacsha256_final(&st, prk.data());
  sodium_memzero(&st, sizeof st);
  return prk;
}

Result<Bytes> hkdf_expand(const Prk& prk, ByteView info, std::size_t length) {
  if (length > kMaxOutput) {
    return Status(Code::kInvalidArgument,
                  "HKDF output length " + std::to_string(length) + " exceeds 255 * 32 bytes");
  }
  detail::ensure_sodium();
  Bytes out(length);
  std::uint8_t t[kHashLen] = {};
  std::size_t produced = 0;
  // RFC 5869 2.3: T(i) = HMAC(PRK, T(i-1) || info || i), T(0) empty, i from 1.
  for (std::uint8_t i = 1; produced < length; ++i) {
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, prk.data(), prk.size());
    if (i > 1) crypto_auth_hmacsha256_update(&st, t, sizeof t);
    update(st, info);
    crypto_auth_hmacsha256_update(&st, &i, 1);
    crypto_auth_hmacsha256_final(&st, t);
    sodium_memzero(&st, sizeof st);
    const std::size_t n = std::min(kHashLen, length - produced);
    std::copy_n(t, n, out.begin() + static_cast<std::ptrdiff_t>(produced));
    produced += n;
  }
  sodium_memzero(t, sizeof t);
  return out;
}

Result<Bytes> hkdf(ByteView salt, ByteView ikm, ByteView info, std::size_t length) {
  Prk prk = hkdf_extract(salt, ikm);
  Result<Bytes> out = hkdf_expand(prk, info, length);
  sodium_memzero(prk.data(), prk.size());
  return out;
}

}  // namespace blindsync::crypto
