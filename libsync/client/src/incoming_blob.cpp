#include "incoming_blob.h"

#include <utility>

#include "blindsync/crypto/payload.h"

namespace blindsync::client_detail {

IncomingBlob incoming_from(const PulledBlob& blob) {
  return IncomingBlob{blob.cursor, &blob.blob_id, &blob.sender_id, blob.timestamp, &blob.payload};
}

IncomingBlob incoming_from(const Notify& notify) {
  return IncomingBlob{notify.cursor, &notify.blob_id, &notify.sender_id, notify.timestamp, &*notify.payload};
}

Result<ReceivedBlob> open_incoming(const crypto::SymmetricKey& payload_key, const GroupId& group,
                                   const IncomingBlob& blob) {
  const crypto::PayloadContext aad{group, *blob.blob_id, *blob.sender_id};
  auto plain = crypto::open_payload(payload_key, aad, *blob.payload);
  if (!plain) {
    return Status(Code::kCryptoFailure, "blob " + blob.blob_id->to_hex() + " at cursor " +
                                            std::to_string(blob.cursor) + " does not decrypt or verify");
  }
  return ReceivedBlob{blob.cursor, *blob.blob_id, *blob.sender_id, blob.timestamp, std::move(*plain)};
}

}  // namespace blindsync::client_detail
