// LocalStore: the device's SQLite file (<home>/blindsync.db), private to the client library.
//
// Tables: identity (device seed + name), groups (id, name, secret, primary relay), group_relays
// (every relay of a group, the primary first), cursors (per group and relay: last delivered cursor
// + relay epoch), outbox (sealed pushes not yet acked by every relay of their group, in order),
// outbox_acks (which relays acked an outbox entry so far, or were given up for it) and seen_blobs
// (blob ids already handed to the app, to deduplicate a re-pull after a relay reset and blobs that
// arrive via two relays). An outbox entry remembers when its first relay acked it
// (first_acked_at_ms), so that the deliveries still pending to other relays can be given up after
// a retry limit (outbox_give_up) without ever dropping a blob that no relay has.
//
// The home directory is created 0700 and the file 0600 before SQLite opens it (SQLite gives its
// -wal/-shm files the database file's mode). WAL mode, synchronous=FULL (an outbox row written by
// push() survives power loss; only outbox_ack commits unsynced, see there), busy_timeout so that
// two processes on one home wait for each other. Prepared statements are kept (sqlite_statement.h).
// Schema migrations are driven by PRAGMA user_version.
//
// Secrets (seed, group secret) are returned in Secret32, which wipes itself; callers keep them no
// longer than needed. Thread-safety: none; one LocalStore per thread (the AsyncClient's worker
// thread owns its own LocalStore).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"

struct sqlite3;

namespace blindsync::client_detail {

class StatementCache;

inline constexpr const char* kStoreFileName = "blindsync.db";
// 1: identity, groups, cursors, outbox, seen_blobs. 2: group_relays, outbox_acks.
// 3: outbox.first_acked_at_ms (indexed), outbox_acks.abandoned.
inline constexpr int kStoreSchemaVersion = 3;

// 32 secret bytes that are wiped when destroyed. Move-only so copies are deliberate (copy_from).
class Secret32 {
 public:
  using Array = std::array<std::uint8_t, 32>;
  Secret32() = default;
  explicit Secret32(const Array& bytes) : bytes_(bytes) {}
  Secret32(Secret32&& other) noexcept;
  Secret32& operator=(Secret32&& other) noexcept;
  Secret32(const Secret32&) = delete;
  Secret32& operator=(const Secret32&) = delete;
  ~Secret32();

  const Array& bytes() const noexcept { return bytes_; }
  Array& mutable_bytes() noexcept { return bytes_; }

 private:
  Array bytes_{};
};

struct IdentityRecord {
  Secret32 seed;
  std::string name;
};

struct GroupRecord {
  GroupId group_id;
  std::string name;
  std::string relay_url;
  RelayId relay_id;
};

// One relay of a group (the primary one is also in GroupRecord).
struct GroupRelay {
  std::string url;
  RelayId relay_id;
  friend bool operator==(const GroupRelay&, const GroupRelay&) = default;
};

struct CursorRecord {
  Cursor cursor = 0;
  std::uint64_t epoch = 0;  // 0 = never connected
};

struct OutboxEntry {
  std::int64_t seq = 0;  // insertion order
  GroupId group_id;
  BlobId blob_id;
  Bytes payload;  // sealed
  std::uint32_t ttl_seconds = 0;
  std::int64_t created_at_ms = 0;
};

struct SeenBlob {
  BlobId blob_id;
  Cursor cursor = 0;
};

struct RelayCursor {
  std::string relay_url;
  Cursor cursor = 0;
};

// What recording one relay's ack of an outbox entry did.
struct OutboxAckResult {
  bool queued = false;   // the entry was still in the outbox
  bool first = false;    // this was the first relay to ack it
  bool removed = false;  // every relay of the group has acked it now: it left the outbox
};

class LocalStore {
 public:
  // Creates home_dir (0700) and the store file (0600) when missing, then migrates the schema.
  static Result<std::unique_ptr<LocalStore>> open(const std::string& home_dir);
  ~LocalStore();
  LocalStore(const LocalStore&) = delete;
  LocalStore& operator=(const LocalStore&) = delete;

  const std::string& path() const noexcept { return path_; }

  // ---- identity ----
  Result<std::optional<IdentityRecord>> load_identity();
  // kAlreadyExists if an identity is stored (it is never overwritten).
  Status save_identity(const Secret32& seed, const std::string& name);

  // ---- groups ----
  // kAlreadyExists if the group is stored. The group's relays are group.relay_url (the primary)
  // followed by more_relays (in that order; a URL listed twice is stored once).
  Status insert_group(const GroupRecord& group, const Secret32& secret,
                      const std::vector<GroupRelay>& more_relays = {});
  Result<std::vector<GroupRecord>> list_groups();
  // Every relay of the group, the primary first; empty for an unknown group.
  Result<std::vector<GroupRelay>> list_group_relays(const GroupId& group);
  Result<std::optional<GroupRecord>> load_group(const GroupId& group);
  // kNotFound if the group is not stored.
  Result<Secret32> load_group_secret(const GroupId& group);

  // ---- cursors ----
  // {0, 0} when nothing is stored yet.
  Result<CursorRecord> load_cursor(const GroupId& group, const std::string& relay_url);
  // Overwrites cursor and epoch (first contact with a relay, or a relay reset).
  Status set_cursor_state(const GroupId& group, const std::string& relay_url, const CursorRecord& state);
  // In one transaction: records the seen blobs and moves the cursor forward to `cursor` (never back).
  Status advance_cursor(const GroupId& group, const std::string& relay_url, Cursor cursor,
                        const std::vector<SeenBlob>& seen);
  // The same for several relays of one group at once (one transaction).
  Status commit_delivery(const GroupId& group, const std::vector<RelayCursor>& cursors,
                         const std::vector<SeenBlob>& seen);

  // ---- seen blobs ----
  Result<bool> is_seen(const GroupId& group, const BlobId& blob);
  // Which of blobs were seen: is_seen for a whole page, in one read transaction (a read on its own
  // takes and releases the file's locks, which cost more than the lookup).
  using SeenSet = std::unordered_set<BlobId, FixedIdHash>;
  Result<SeenSet> seen_among(const GroupId& group, std::span<const BlobId> blobs);
  // Forgets blobs seen before cutoff_ms (relays never keep blobs longer than their max TTL).
  Status prune_seen(std::int64_t cutoff_ms);

  // ---- outbox ----
  // Durable once this returns. kAlreadyExists if (group, blob_id) is queued already.
  Status outbox_add(const OutboxEntry& entry);
  // Entries of one group in insertion order (at most `limit`, with seq > after_seq).
  Result<std::vector<OutboxEntry>> outbox_list(const GroupId& group, std::size_t limit = SIZE_MAX,
                                               std::int64_t after_seq = 0);
  // Entries of one group that relay_url has not acked yet, in insertion order.
  Result<std::vector<OutboxEntry>> outbox_list_for_relay(const GroupId& group, const std::string& relay_url,
                                                         std::size_t limit = SIZE_MAX, std::int64_t after_seq = 0);
  // Records that relay_url stored the entry; once every relay of the group has, the entry leaves
  // the outbox. An entry no longer queued reports queued = false and changes nothing.
  Result<OutboxAckResult> outbox_ack(const GroupId& group, const BlobId& blob, const std::string& relay_url);
  // Removes the entry whatever relays acked it (single-relay flush, or a blob no relay accepts).
  Status outbox_remove(const GroupId& group, const BlobId& blob);
  // Gives up delivering to relay_url the group's entries that some other relay acked at or before
  // cutoff_ms and relay_url has neither acked nor been given up for: relay_url then counts as
  // done for them (outbox_list_for_relay skips them), and an entry that every relay of its group
  // is done with leaves the outbox. Entries that no relay has acked are never touched. Returns
  // the blob ids given up, in outbox order. Costs one indexed query when there is nothing to do.
  Result<std::vector<BlobId>> outbox_give_up(const GroupId& group, const std::string& relay_url,
                                             std::int64_t cutoff_ms);
  // When the first relay acked the entry (unix ms); nullopt if none has (or it is not queued).
  Result<std::optional<std::int64_t>> outbox_first_acked_at(const GroupId& group, const BlobId& blob);
  Result<std::uint64_t> outbox_count();
  Result<std::uint64_t> outbox_count(const GroupId& group);

  // Whether the next commit is fsynced (synchronous=FULL), as every durable write needs. Only
  // outbox_ack commits without, and puts it back (its loss in a power cut costs a re-send).
  bool commits_synced();

 private:
  LocalStore(sqlite3* db, std::string path);
  Status exec(const char* sql);
  Status migrate();
  // Deletes an outbox entry and its per-relay acks; the caller holds the transaction.
  Status delete_outbox_entry(const GroupId& group, const BlobId& blob);

  sqlite3* db_;
  std::unique_ptr<StatementCache> statements_;  // db_'s prepared statements (sqlite_statement.h)
  std::string path_;
};

// Milliseconds since the Unix epoch, from the system clock.
std::int64_t now_unix_ms();

}  // namespace blindsync::client_detail
