// IncomingBlob: a blob as a relay sent it (from a PULL page or an inline NOTIFY), and the one step
// every receiver shares: decrypt and verify it into a ReceivedBlob.
//
// The AAD binds the group, the blob id and the sender, so a relay that moved a blob to another
// group or re-attributed it makes open_incoming fail (kCryptoFailure) instead of delivering it.
// Thread-safety: pure functions; IncomingBlob only points into the frame it was made from.
#pragma once

#include <cstdint>

#include "blindsync/client/client.h"
#include "blindsync/core/messages.h"
#include "blindsync/core/status.h"
#include "blindsync/crypto/group_keys.h"

namespace blindsync::client_detail {

struct IncomingBlob {
  Cursor cursor = 0;
  const BlobId* blob_id = nullptr;
  const DeviceId* sender_id = nullptr;
  std::uint64_t timestamp = 0;
  const Bytes* payload = nullptr;
};

IncomingBlob incoming_from(const PulledBlob& blob);
// REQUIRES: notify.payload has a value.
IncomingBlob incoming_from(const Notify& notify);

// kCryptoFailure when the payload does not open under the group's key and this blob's AAD.
Result<ReceivedBlob> open_incoming(const crypto::SymmetricKey& payload_key, const GroupId& group,
                                   const IncomingBlob& blob);

}  // namespace blindsync::client_detail
