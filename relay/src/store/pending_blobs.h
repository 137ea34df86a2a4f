// PendingBlobs: acknowledged pushes that are in the push journal but not yet in SQLite (private
// to relay/src/store). The writer thread adds each journaled batch; the applier copies the oldest
// groups' blobs into SQLite and then forgets them, up to the cursor it applied through (the writer
// may have added newer ones meanwhile). Readers merge it into what they read from SQLite, so a blob
// is visible to PULL, max_cursor and stats from the moment it is acknowledged.
//
// Per group the blobs are kept in cursor order; they always follow everything the group has in
// SQLite (a group's blobs are applied in cursor order, a prefix at a time).
//
// Thread-safety: every method may be called from any thread and takes the lock itself, except
// the *_locked ones. add() comes from the writer thread only; snapshot(), begin_apply(),
// finish_apply() and remove_expired() from whoever holds the writer's SQL lock, one at a time.
//
// An apply commits to SQLite between begin_apply() and finish_apply() WITHOUT holding the lock:
// the writer thread's add() (on the ack path) must never wait for a SQLite commit. Meanwhile a
// blob may be in both places, never in neither (it leaves here only after the commit): readers
// that look here first and at SQLite second take it once. Only readers that add the two up
// (stats) need one state; settled_lock() waits for the apply in flight to finish.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "blindsync/core/ids.h"
#include "store/push_journal.h"

namespace blindsync::relay::sqlite {

// What the pending blobs add to one group.
struct PendingSummary {
  Cursor max_cursor = 0;      // 0: nothing pending (the cursor may be of a blob that expired)
  std::uint64_t blobs = 0;
  std::uint64_t bytes = 0;    // payload bytes
  std::optional<BlobId> max_blob_id;  // the largest pending blob id
};

struct PendingTotals {
  std::uint64_t blobs = 0;
  std::uint64_t bytes = 0;
};

class PendingBlobs {
 public:
  // Writer: a journaled batch (ascending cursor within each group).
  void add(std::vector<JournalRecord> records);
  // The lock, once no apply is between its commit and its finish_apply(): SQLite and the pending
  // blobs then count every blob exactly once for as long as it is held.
  std::unique_lock<std::mutex> settled_lock() const;

  // The groups whose pending blobs wait longest, oldest first, until they hold at least
  // min_blobs blobs or min_bytes bytes (all groups if there are not that many).
  std::vector<GroupId> oldest_groups(std::size_t min_blobs, std::size_t min_bytes) const;
  // When the oldest pending blob was added (nullopt: nothing pending).
  std::optional<std::chrono::steady_clock::time_point> oldest_added() const;

  // Removes the blobs that expired at now_ms (cleanup). The group keeps its max_cursor, so the
  // cursors stay used. Returns (blobs, payload bytes) removed.
  std::pair<std::uint64_t, std::uint64_t> remove_expired(std::uint64_t now_ms);

  // One group as the applier copies it into SQLite: its pending blobs (payloads shared) and the
  // highest cursor assigned in it, which may belong to a blob already removed as expired.
  struct GroupSnapshot {
    GroupId group_id;
    std::vector<JournalRecord> blobs;
    Cursor max_cursor = 0;
  };
  std::vector<GroupSnapshot> snapshot(const std::vector<GroupId>& groups) const;
  // The applier is about to commit blobs of the snapshot to SQLite.
  void begin_apply();
  // The commit ended: forgets each group's blobs up to and including cursor `through` (they
  // reached SQLite; empty when the commit failed); a group with nothing left and no newer cursor
  // goes.
  void finish_apply(const std::vector<std::pair<GroupId, Cursor>>& applied);

  // The stored (cursor, timestamp) of a pending blob, for a retried push.
  std::optional<std::pair<Cursor, std::uint64_t>> find(const GroupId& group, const BlobId& blob_id) const;

  PendingSummary summary(const GroupId& group) const;
  // Every group with something pending, and the highest cursor assigned in it.
  std::unordered_map<GroupId, Cursor, FixedIdHash> max_cursors() const;
  PendingTotals totals() const;
  // The same, for a caller that holds settled_lock().
  PendingTotals totals_locked() const { return totals_; }
  // Number of groups with pending blobs.
  std::size_t group_count() const;
  // True when nothing waits to be applied (not even the cursor of a blob that expired pending).
  bool empty() const;

  // Up to `limit` pending blobs of the group with cursor > after and expires_at_ms > now_ms, in
  // cursor order (payloads shared, not copied), and the group's max_cursor at the same moment.
  struct Collected {
    std::vector<JournalRecord> blobs;
    Cursor max_cursor = 0;
  };
  Collected collect(const GroupId& group, Cursor after, std::size_t limit, std::uint64_t now_ms) const;

 private:
  struct Group {
    std::vector<JournalRecord> blobs;  // ascending cursor
    std::unordered_map<BlobId, std::size_t, FixedIdHash> by_blob_id;  // index into blobs
    std::uint64_t bytes = 0;
    Cursor max_cursor = 0;
    std::optional<BlobId> max_blob_id;
    std::chrono::steady_clock::time_point first_added;  // when its oldest pending blob came
  };

  static void reindex(Group& group);

  void erase_applied_locked(const std::vector<std::pair<GroupId, Cursor>>& applied);

  mutable std::mutex mutex_;
  mutable std::condition_variable settled_;
  bool applying_ = false;  // between begin_apply() and finish_apply()
  std::unordered_map<GroupId, Group, FixedIdHash> groups_;
  PendingTotals totals_;
};

}  // namespace blindsync::relay::sqlite
