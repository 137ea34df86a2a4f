// GroupSync: the data exchanges of one group over one open RelaySession.
//
//   flush_outbox()  sends the group's outbox entries this relay has not acked (pipelined) and
//                   records each ack (an entry leaves the outbox once every relay acked it)
//   pull()          PULL pages after a cursor until has_more is false
//   watch_live()    handles NOTIFY frames (inline payload or re-PULL) until the watch ends
//
// Delivery: blobs reach the BlobHandler in cursor order (a CursorTracker holds the delivered
// position); a blob that fails to decrypt/verify is skipped and counted, and the cursor still
// moves past it so the device is not stuck. After each page (or live blob) the cursor and the ids
// of the delivered blobs are persisted in one transaction, then an ACK tells the relay.
// With skip_seen, blob ids already delivered earlier (seen_blobs) are not delivered again: this
// is what makes a re-pull after a relay reset (new epoch) safe.
//
// Thread-safety: none. Borrows the store and the session for its lifetime.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "blindsync/client/client.h"
#include "blindsync/core/cursor_tracker.h"
#include "blindsync/crypto/group_keys.h"
#include "incoming_blob.h"
#include "local_store.h"
#include "relay_session.h"

namespace blindsync::client_detail {

struct GroupContext {
  GroupId group_id;
  std::string relay_url;
  const crypto::SymmetricKey* payload_key = nullptr;
  DeviceId device_id;
  Cursor stored_cursor = 0;  // the persisted cursor when the session opened
};

struct PushEntryOutcome {
  BlobId blob_id;
  std::optional<PushAck> ack;  // set when the relay stored it
  Status error;                // the relay's ERROR otherwise
};

struct FlushReport {
  std::size_t queued = 0;  // outbox entries found
  std::size_t acked = 0;
  std::vector<PushEntryOutcome> outcomes;  // entries that got an answer
  Status aborted;  // why the flush stopped early (connection, timeout); ok if it ran through
};

class GroupSync {
 public:
  GroupSync(LocalStore& store, RelaySession& session, GroupContext context);

  FlushReport flush_outbox();

  // Pulls every page after `after`. skip_seen: do not re-deliver blob ids already delivered.
  Status pull(Cursor after, bool skip_seen, const BlobHandler& on_blob);

  // After pull(): live delivery until the watch ends (duration, should_stop) or the session fails.
  Status watch_live(const WatchOptions& options, const BlobHandler& on_blob);

  std::size_t crypto_failures() const noexcept { return crypto_failures_; }
  Cursor delivered() const noexcept { return tracker_.delivered(); }

 private:
  using Incoming = IncomingBlob;

  // Sends one batch (pipelined) and records each outcome; false once the exchange broke off.
  bool push_batch(std::vector<OutboxEntry>& entries, FlushReport& report);
  // Remembers the highest cursor a NOTIFY announced while we were waiting for something else.
  void note_notify(const Frame& frame);
  // A PULL from the delivered cursor asking for `pages` pages (Pull::pages).
  Result<std::uint32_t> send_pull(std::uint32_t pages);
  // Waits for the reply to request_id; other frames (NOTIFY, stale replies) are skipped.
  Result<Frame> wait_for_reply(std::uint32_t request_id, std::string_view what);
  // Delivers blobs above the tracker's position in cursor order, then persists and ACKs.
  // allow_gaps: a PULL page may skip cursors (expired or deleted blobs).
  Status deliver(const std::vector<Incoming>& blobs, bool allow_gaps, const BlobHandler& on_blob);
  Status handle_page(const PullResponse& page, const BlobHandler& on_blob, bool* has_more);
  // Relay-initiated frames that end the exchange (ERROR with request_id 0, our revocation).
  std::optional<Status> fatal_frame(const Frame& frame) const;

  LocalStore& store_;
  RelaySession& session_;
  GroupContext context_;
  CursorTracker tracker_;
  bool skip_seen_ = true;
  std::size_t crypto_failures_ = 0;
  Cursor last_acked_ = 0;
  Cursor notified_max_ = 0;
};

}  // namespace blindsync::client_detail
