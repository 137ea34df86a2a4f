// DeliveryLedger: what the AsyncClient may persist once the app has taken its events.
//
// Delivery is at-least-once: a relay cursor is persisted only after the app took (and then
// confirmed, by polling again or commit_received()) every blob event queued up to it. The ledger
// keeps, per relay link, the cursors handled so far with the event sequence number that must have
// been taken before each may be persisted ("marks"), and per group the blob events not yet
// committed, whose ids also deduplicate a blob that arrives via a second relay in the meantime.
//
// A cursor whose blob was skipped (sent by this device, already delivered, undecryptable) still
// needs a mark: it waits for the events queued before it, so a crash never persists a cursor past
// a blob the app has not seen.
// Thread-safety: none; the worker thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "blindsync/core/ids.h"
#include "local_store.h"

namespace blindsync::client_detail {

class DeliveryLedger {
 public:
  using LinkId = std::size_t;

  struct GroupCommit {
    GroupId group;
    std::vector<RelayCursor> cursors;              // for the store
    std::vector<std::pair<LinkId, Cursor>> links;  // the same, by link (to ACK the relays)
    std::vector<SeenBlob> seen;
  };

  void add_link(LinkId link, const GroupId& group, const std::string& relay_url);
  // A blob event was queued with sequence number seq.
  void note_blob(const GroupId& group, const BlobId& blob, Cursor cursor, std::uint64_t seq);
  // The link handled everything up to cursor; persist it once events up to required_seq are taken.
  void note_cursor(LinkId link, Cursor cursor, std::uint64_t required_seq);
  // Queued but not yet committed (a second copy must not be queued).
  bool is_pending(const GroupId& group, const BlobId& blob) const;
  // The relay was reset: its old cursors mean nothing now.
  void reset_link(LinkId link);

  // What can be persisted now that the app has confirmed every event up to confirmed_seq. The
  // marks and blob entries returned leave the ledger; their ids stay pending until forget().
  std::vector<GroupCommit> take_committable(std::uint64_t confirmed_seq);
  // After the commit was written (or failed: seen_blobs then no longer covers them).
  void forget(const GroupCommit& commit);

 private:
  struct Mark {
    Cursor cursor = 0;
    std::uint64_t required_seq = 0;
  };
  struct Link {
    GroupId group;
    std::string relay_url;
    std::deque<Mark> marks;
  };
  struct QueuedBlob {
    std::uint64_t seq = 0;
    GroupId group;
    BlobId blob;
    Cursor cursor = 0;
  };

  std::map<LinkId, Link> links_;
  std::deque<QueuedBlob> queued_;                // ascending seq
  std::map<GroupId, std::set<BlobId>> pending_;  // queued or being committed
};

}  // namespace blindsync::client_detail
