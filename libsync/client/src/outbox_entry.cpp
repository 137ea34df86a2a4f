#include "outbox_entry.h"

#include <span>

#include "blindsync/auth/identity.h"
#include "blindsync/core/limits.h"
#include "blindsync/crypto/payload.h"

namespace blindsync::client_detail {

BlobId new_blob_id() {
  BlobId::Array bytes{};
  const auto ms = static_cast<std::uint64_t>(now_unix_ms());
  for (int i = 0; i < 6; ++i)
    bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  auth::random_fill(std::span<std::uint8_t>(bytes).subspan(6));
  return BlobId(bytes);
}

Result<OutboxEntry> make_outbox_entry(const crypto::GroupKeys& keys, const DeviceId& sender, ByteView data,
                                      std::uint32_t ttl_seconds) {
  if (data.size() + crypto::kPayloadOverheadBytes > kDefaultMaxBlobBytes) {
    return Status(Code::kBlobTooLarge,
                  "blob of " + std::to_string(data.size()) + " bytes is over the limit of " +
                      std::to_string(kDefaultMaxBlobBytes - crypto::kPayloadOverheadBytes) + " bytes");
  }
  OutboxEntry entry;
  entry.group_id = keys.group_id();
  entry.blob_id = new_blob_id();
  entry.ttl_seconds = ttl_seconds;
  entry.created_at_ms = now_unix_ms();
  entry.payload = crypto::seal_payload(keys.payload_key(), {entry.group_id, entry.blob_id, sender}, data);
  return entry;
}

}  // namespace blindsync::client_detail
