// Making an outbox entry: a fresh time-ordered blob id and the payload sealed for the group.
// Shared by Client::push and AsyncClient::push so that both write identical entries.
// Thread-safety: pure apart from the random bytes (libsodium, thread-safe).
#pragma once

#include <cstdint>

#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"
#include "blindsync/crypto/group_keys.h"
#include "local_store.h"

namespace blindsync::client_detail {

// 48-bit big-endian millisecond timestamp, then 80 random bits: ids sort by creation time (like
// UUIDv7) and never collide in practice.
BlobId new_blob_id();

// kBlobTooLarge when the sealed payload would exceed the default blob limit; otherwise an entry
// (seq 0, not stored yet) whose payload is sealed with AAD (group, blob_id, sender).
Result<OutboxEntry> make_outbox_entry(const crypto::GroupKeys& keys, const DeviceId& sender, ByteView data,
                                      std::uint32_t ttl_seconds);

}  // namespace blindsync::client_detail
