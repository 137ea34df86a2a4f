// Payload encryption: XChaCha20-Poly1305-IETF with a random 24-byte nonce.
// Ciphertext layout: nonce(24) || ciphertext || tag(16).
// AAD = "blindsync/v1/payload" || group_id || blob_id || sender device_id, so a blob cannot be moved
// to another group, renamed, or re-attributed to another sender without failing to open.
#pragma once

#include <cstddef>

#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"
#include "blindsync/crypto/group_keys.h"

namespace blindsync::crypto {

inline constexpr std::size_t kPayloadOverheadBytes = 24 + 16;

struct PayloadContext {
  GroupId group_id;
  BlobId blob_id;
  DeviceId sender_id;
};

Bytes seal_payload(const SymmetricKey& key, const PayloadContext& context, ByteView plaintext);
// kCryptoFailure if the ciphertext, nonce, context or key is not the one it was sealed with.
Result<Bytes> open_payload(const SymmetricKey& key, const PayloadContext& context, ByteView sealed);

}  // namespace blindsync::crypto
