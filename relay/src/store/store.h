// Store: the relay's durable blob storage, behind an interface so SQLite (default) and
// PostgreSQL (scale-out) can both implement it. No Beast/Asio here.
//
// Writes are asynchronous and ordered: submit_push(), submit_device_seen(), submit_ack(),
// submit_delete() and submit_cleanup() queue work for the single writer, which runs queued work in
// submission order. A batch of pushes is appended to the push journal in one write, device
// updates, ACKs and DELETEs are committed together in one transaction (group commit), and only
// then is each completion called. With durability kFull the journal (and the transaction) is
// fsynced before completions run, so a PUSH_ACK sent from a completion promises the blob survives
// power loss. Journaled blobs are readable at once and reach SQLite in large transactions behind
// the acks; a crash before that is repaired from the journal when the store opens. Cleanup runs on the same writer between those batches, in short
// transactions of bounded size, so it never holds pushes back for long.
//
// Limits (set_limits) are checked by the writer inside the transaction, before a blob is written:
// a group over its quota gets GROUP_QUOTA_EXCEEDED, a relay over its storage cap or its group
// limit STORAGE_FULL; a retried push of a blob already stored is still acknowledged as a duplicate.
// A full disk (SQLITE_FULL) fails the batch with STORAGE_FULL; reads keep working, and writes
// succeed again as soon as space returns. Every other storage fault is INTERNAL.
//
// Thread-safety: all methods may be called from any thread. Completions run on the writer
// thread: they must be short (post to the session's executor) and must not call back into the
// Store synchronously.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/messages.h"
#include "blindsync/core/status.h"

namespace blindsync::relay {

enum class Durability { kFull, kNormal };

struct StoreOptions {
  std::string path;                     // SQLite file (created if missing)
  Durability durability = Durability::kFull;
  std::size_t max_batch = 256;          // queued writes per group-commit transaction
  std::size_t cleanup_batch = 1000;     // blobs deleted per cleanup transaction
  std::uint32_t vacuum_pages = 2048;    // pages released per incremental_vacuum transaction
  // SQLite PRAGMA max_page_count for the file; 0 keeps SQLite's default. Lets a test make the
  // database "full" without a small filesystem.
  std::uint64_t max_page_count = 0;
  // WAL checkpoints run on their own thread (store/wal_checkpointer.h): a PASSIVE one each time
  // the WAL grew by this many pages, a RESTART (waits for the writer) once it holds this many.
  int checkpoint_passive_pages = 4096;
  int checkpoint_restart_pages = 65536;
  // Acknowledged pushes are appended to the push journal's segment files (<path>-seg-<number>,
  // which keep their payloads for good: SQLite's rows point into them) and wait in memory until
  // SQLite has their rows, whole groups at a time, oldest first: once this many blobs or payload
  // bytes are pending (and then about that many per transaction), or the oldest waited
  // apply_delay_ms. The writer starts a new segment once the current one holds
  // journal_clear_bytes; pushes wait for everything to be applied only if the segments SQLite
  // lacks records of reach journal_max_bytes. The pending blobs in memory are what those segments
  // hold: at most about journal_max_bytes.
  //
  // Larger applies write less per blob: each transaction rewrites every touched group's last,
  // partly filled page, so the fewer blobs per group it carries, the more it writes per blob (64
  // busy groups: 8 per group at 512). 2,048 cost the applier a third less CPU per blob under W1
  // (docs/benchmarks-log.md, 2026-11-22 12:40); it became affordable once the applier ran below
  // the ack path's priority (thread_priority.h).
  std::size_t apply_max_blobs = 2048;
  std::size_t apply_max_bytes = 4u << 20;
  std::uint32_t apply_delay_ms = 50;
  std::uint64_t journal_clear_bytes = 16u << 20;
  std::uint64_t journal_max_bytes = 64u << 20;
  // Tests only: runs in a pull that needs segment files, after its snapshot was read and before
  // those files are, so that a test can delete a segment in between (the pull then retries).
  std::function<void()> before_segment_reads;
};

// Storage limits, checked by the writer before a write (0 = no limit).
struct StoreLimits {
  std::uint64_t group_quota_bytes = 0;      // payload bytes per group -> GROUP_QUOTA_EXCEEDED
  std::uint64_t max_groups = 0;             // rows in the group table -> STORAGE_FULL for a new group
  std::uint64_t storage_cap_bytes = 0;      // payload bytes of all groups -> STORAGE_FULL
  std::uint32_t max_devices_per_group = 0;  // device rows per group -> GROUP_FULL for a new device
};

// A pull's byte budget counts each blob's payload plus this estimate of its PULL_RESPONSE encoding
// (ids, cursor, timestamp and msgpack keys take well under it).
inline constexpr std::size_t kPulledBlobOverheadBytes = 160;
inline constexpr std::size_t kNoByteLimit = std::numeric_limits<std::size_t>::max();

struct PushRequest {
  GroupId group_id;
  BlobId blob_id;
  DeviceId sender_id;
  Bytes payload;
  std::uint64_t timestamp_ms = 0;   // relay clock at receipt
  std::uint64_t expires_at_ms = 0;  // timestamp + ttl
};

struct PushResult {
  Cursor cursor = 0;
  std::uint64_t timestamp_ms = 0;  // original timestamp when duplicate
  bool duplicate = false;
  // The payload as stored (null for a duplicate), shared with the store's own copy: the hub puts
  // it inline in the NOTIFYs without having kept a copy of every push while it was committed.
  std::shared_ptr<const Bytes> payload;
};

using PushCompletion = std::function<void(Result<PushResult>)>;

struct PullPage {
  std::vector<PulledBlob> blobs;  // ascending cursor, expired ones never included
  bool has_more = false;
  Cursor max_cursor = 0;
};

// What the relay remembers about one device of a group (table `devices`).
struct DeviceRecord {
  DeviceId device_id;
  std::string name;               // sanitised device name from its last HELLO
  std::uint64_t first_seen_ms = 0;
  std::uint64_t last_seen_ms = 0;  // last HELLO, ACK or disconnect
  Cursor acked_cursor = 0;         // watermark: the device holds everything <= it
  bool revoked = false;
};

// What a HELLO needs to know, read in one snapshot.
struct SessionStart {
  bool group_exists = false;        // the group has a row (a device or a push was seen)
  Cursor max_cursor = 0;
  std::optional<DeviceRecord> device;  // this device, if the relay has seen it in this group
  std::uint64_t device_count = 0;   // devices of the group (filled when `device` is empty)
  std::uint64_t group_count = 0;    // groups on the relay (filled when the group does not exist)
};

struct DeleteRequest {
  GroupId group_id;
  BlobId blob_id;
  DeviceId requester;
  bool may_delete_others = false;  // false: only the blob's sender may delete it (else NOT_BLOB_OWNER)
};

struct DeleteResult {
  bool removed = false;  // false when no such blob was stored (already deleted or expired and cleaned)
};

struct CleanupRequest {
  std::uint64_t now_ms = 0;  // blobs with expires_at_ms <= now_ms are removed
  bool drop_acked = false;   // also remove blobs every non-revoked device of their group ACKed
  // Forget non-revoked devices not seen for this long (0 = never), then groups that never stored
  // a blob and have no device left (their cursor was never used, so forgetting them reuses
  // nothing). Keeps the device and group tables bounded by activity, not by history.
  std::uint64_t device_retention_ms = 0;
};

struct CleanupReport {
  std::uint64_t expired_removed = 0;
  std::uint64_t acked_removed = 0;
  std::uint64_t devices_removed = 0;
  std::uint64_t groups_removed = 0;
  std::uint64_t bytes_removed = 0;   // payload bytes
  std::uint64_t pages_released = 0;  // returned to the file system by incremental_vacuum
  std::uint64_t transactions = 0;
};

using StatusCompletion = std::function<void(Status)>;
using DeleteCompletion = std::function<void(Result<DeleteResult>)>;
using CleanupCompletion = std::function<void(Result<CleanupReport>)>;

struct StoreStats {
  std::uint64_t groups = 0;
  std::uint64_t blobs = 0;
  std::uint64_t bytes = 0;
  // Disk taken by the push journal's segment files (payloads live there; compaction keeps it
  // within about 4x the live payload bytes plus the segments SQLite lacks records of).
  std::uint64_t segment_files = 0;
  std::uint64_t segment_bytes = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Random per database, made at creation, stable across restarts.
  virtual std::uint64_t epoch() const = 0;

  // Replaces the storage limits; later writes see the new values.
  virtual void set_limits(const StoreLimits& limits) = 0;

  virtual void submit_push(PushRequest request, PushCompletion done) = 0;
  // Blobs with cursor > after_cursor that have not expired at now_ms: at most `limit` of them, and
  // no more than fit in max_bytes (payload + kPulledBlobOverheadBytes each; at least one blob, so a
  // page always makes progress). has_more is set when either bound cut the page.
  virtual Result<PullPage> pull(const GroupId& group, Cursor after_cursor, std::uint32_t limit,
                                std::uint64_t now_ms, std::size_t max_bytes = kNoByteLimit) = 0;
  virtual Result<Cursor> max_cursor(const GroupId& group) = 0;
  virtual Result<StoreStats> stats() = 0;

  // --- devices (migration 2) ---
  virtual Result<SessionStart> session_start(const GroupId& group, const DeviceId& device) = 0;
  // The group's known devices in order of first appearance, at most max_devices of them.
  virtual Result<std::vector<DeviceRecord>> list_devices(const GroupId& group, std::size_t max_devices) = 0;
  // Records a device's HELLO (name set) or disconnect (name nullopt: kept). Creates the group's
  // row if needed. STORAGE_FULL past max_groups, GROUP_FULL past max_devices_per_group.
  virtual void submit_device_seen(const GroupId& group, const DeviceId& device, std::optional<std::string> name,
                                  std::uint64_t now_ms, StatusCompletion done) = 0;
  // Raises the device's ACK watermark (never lowers it; clamped to the group's max cursor).
  // A device the relay has no row for is ignored.
  virtual void submit_ack(const GroupId& group, const DeviceId& device, Cursor acked_cursor, std::uint64_t now_ms,
                          StatusCompletion done) = 0;
  virtual void submit_delete(DeleteRequest request, DeleteCompletion done) = 0;
  // Removes expired (and, if asked, fully acknowledged) blobs in bounded set-based batches, updates
  // the groups' byte and blob counts, then releases free pages with incremental_vacuum.
  virtual void submit_cleanup(CleanupRequest request, CleanupCompletion done) = 0;

  // Finishes queued writes (their completions run; a queued cleanup completes with
  // RELAY_SHUTTING_DOWN), then closes the database cleanly.
  virtual void close() = 0;
};

// Opens (creating and migrating as needed) the SQLite store.
Result<std::unique_ptr<Store>> open_sqlite_store(const StoreOptions& options);

}  // namespace blindsync::relay
