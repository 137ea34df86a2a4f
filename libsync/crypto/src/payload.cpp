// Payload sealing with XChaCha20-Poly1305-IETF (payload.h).
#include "blindsync/crypto/payload.h"

#include <sodium.h>

#include <algorithm>
#include <string_view>

#include "blindsync/auth/identity.h"
#include "sodium_init.h"

namespace blindsync::crypto {
namespace {

constexpr std::string_view kPayloadLabel = "blindsync/v1/payload";
constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(kNonceBytes + kTagBytes == kPayloadOverheadBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == std::tuple_size_v<SymmetricKey>);

// AAD = label || group_id || blob_id || sender_id. Every part after the fixed label has a fixed
// size, so plain concatenation is unambiguous.
Bytes make_aad(const PayloadContext& context) {
  Bytes aad;
  aad.reserve(kPayloadLabel.size() + GroupId::kSize + BlobId::kSize + DeviceId::kSize);
  const ByteView label = as_bytes(kPayloadLabel);
  aad.insert(aad.end(), label.begin(), label.end());
  aad.insert(aad.end(), context.group_id.bytes().begin(), context.group_id.bytes().end());
  aad.insert(aad.end(), context.blob_id.bytes().begin(), context.blob_id.bytes().end());
  aad.insert(aad.end(), context.sender_id.bytes().begin(), context.sender_id.bytes().end());
  return aad;
}

}  // namespace

Bytes seal_payload(const SymmetricKey& key, const PayloadContext& context, ByteView plaintext) {
  detail::ensure_sodium();
  const Bytes aad = make_aad(context);
  Bytes sealed(kNonceBytes + plaintext.size() + kTagBytes);
  // 24 random bytes: collisions are negligible even for billions of messages under one key.
  auth::random_fill(std::span<std::uint8_t>(sealed.data(), kNonceBytes));
  static const std::uint8_t kEmpty = 0;
  const std::uint8_t* message = plaintext.empty() ? &kEmpty : plaintext.data();
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(sealed.data() + kNonceBytes, &written, message, plaintext.size(),
                                             aad.data(), aad.size(), nullptr, sealed.data(), key.data());
  return sealed;
}

Result<Bytes> open_payload(const SymmetricKey& key, const PayloadContext& context, ByteView sealed) {
  if (sealed.size() < kPayloadOverheadBytes) {
    return Status(Code::kCryptoFailure, "sealed payload shorter than nonce and tag");
  }
  detail::ensure_sodium();
  const Bytes aad = make_aad(context);
  const std::size_t plain_size = sealed.size() - kPayloadOverheadBytes;
  // One spare byte so the output pointer is valid even for an empty plaintext.
  Bytes plaintext(plain_size + 1);
  unsigned long long written = 0;
  const int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      plaintext.data(), &written, nullptr, sealed.data() + kNonceBytes, sealed.size() - kNonceBytes, aad.data(),
      aad.size(), sealed.data(), key.data());
  if (rc != 0) {
    sodium_memzero(plaintext.data(), plaintext.size());
    return Status(Code::kCryptoFailure, "payload does not authenticate (wrong key, context or corrupted data)");
  }
  plaintext.resize(plain_size);
  return plaintext;
}

}  // namespace blindsync::crypto
