// SqliteWriter: the relay store's one write connection and everything it writes (private to
// relay/src/store): pushes through the push journal, device records, ACK watermarks and DELETEs in
// group-commit transactions, and the cleanup job, one bounded transaction at a time.
//
// Pushes (sqlite_writer_journal.cpp): a run of pushes gets its cursors from the writer's cache of
// group state, is appended to the push journal in one write (fdatasync with durability full) and
// added to the pending blobs; only then are the pushes acknowledged. apply_pending() copies the
// oldest groups' pending blobs into SQLite in one transaction (when enough is pending, when the
// oldest waited apply_delay_ms; everything before a DELETE of a pending blob, before cleanup, at
// close). The store runs it on its applier thread, so acks never wait behind an apply.
//
// The journal is a series of segment files (push_journal.h) whose records stay once applied:
// SQLite's rows point at the payloads in them. Once the segment being appended to holds
// journal_clear_bytes, the writer starts the next and notes each pending group's highest cursor;
// once every one of those groups is applied through that cursor, the sealed segment holds nothing
// SQLite lacks and meta 'replay_from' moves past it. Should the applier fall behind (past halfway
// to journal_max_bytes of unapplied segments), the applier stands aside and the writer applies a
// small batch itself before each run of pushes; at journal_max_bytes pushes wait for a full apply.
// open() replays the segments from 'replay_from' on (and the earlier format's two files) after a
// crash. With durability full a new segment is made from a zero-filled spare (segment_spare.h), so
// the fdatasync of a run writes the data alone; the spare for the next segment is made in the
// background once the active one is half full, and a sealed segment gives back its unused zeros.
//
// Segments are deleted by cleanup once no row points into them (segments.live_blobs = 0), after
// a synced commit, so no durable row can point at a missing file. A segment less than a quarter
// live is compacted first: cleanup moves its live payloads inline into their rows, a batch per
// transaction, so disk use stays bounded by live data whatever the mix of lifetimes.
//
// Other writes run in ONE transaction per batch. Refusals that concern one request (a quota, NOT_BLOB_OWNER, a
// full group) are that request's result and the rest of the batch commits; any SQLite error rolls
// the whole batch back and becomes every request's result (STORAGE_FULL for a full disk,
// INTERNAL otherwise), and in-memory counters are only advanced after COMMIT.
//
// Cleanup is a small state machine (CleanupJob) advanced by cleanup_step(), one short transaction
// per step, so the store's writer thread can interleave it with push batches.
//
// Ownership: owns the connection and its statements.
// Thread-safety: one thread (the store's writer) calls write_batch(), cleanup_step(),
// close_journal() and checkpoint_truncate(); apply_pending(), apply_deadline() and apply_due() may
// be called from one more thread (the store's applier); set_limits() and the counters from any.
// Three locks, always taken in this order: journal_mutex_ (the active segment, and adding to the
// pending blobs behind it), sql_mutex_ (the connection and its statements, and removing pending
// blobs) and sealed_mutex_ (the sealed segments SQLite lacks records of, and what they wait for).
// A push run takes sql_mutex_ only on a group-cache miss or a retry lookup, journal_mutex_ to
// append, and sealed_mutex_ briefly to seal a segment. An apply holds sql_mutex_ (and briefly
// sealed_mutex_); it takes journal_mutex_ only when it must apply everything (`everything`).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <chrono>
#include <deque>
#include <span>
#include <unordered_map>

#include "store/pending_blobs.h"
#include "store/push_journal.h"
#include "store/segment_files.h"
#include "store/segment_spare.h"
#include "store/sqlite_db.h"
#include "store/store.h"
#include "store/wal_checkpointer.h"

namespace blindsync::relay::sqlite {

struct PushOp {
  PushRequest request;
  PushCompletion done;
  std::optional<Result<PushResult>> result;
};

struct DeviceSeenOp {
  GroupId group_id;
  DeviceId device_id;
  std::optional<std::string> name;  // nullopt: keep the stored name
  std::uint64_t now_ms = 0;
  StatusCompletion done;
  Status result;
};

struct AckOp {
  GroupId group_id;
  DeviceId device_id;
  Cursor acked_cursor = 0;
  std::uint64_t now_ms = 0;
  StatusCompletion done;
  Status result;
};

struct DeleteOp {
  DeleteRequest request;
  DeleteCompletion done;
  std::optional<Result<DeleteResult>> result;
};

using WriteOp = std::variant<PushOp, DeviceSeenOp, AckOp, DeleteOp>;

// Runs the op's completion with its result (catching what a completion throws).
void complete(WriteOp& op);
// Sets the op's result to `status` and runs its completion.
void fail_op(WriteOp& op, const Status& status);

// Progress of one cleanup run.
struct CleanupJob {
  enum class Phase { kExpired, kStaleDevices, kEmptyGroups, kPlanAcked, kAcked, kVacuum, kCheckpoint, kDone };

  struct AckRange {
    std::int64_t group_ref = 0;
    Cursor from = 0;  // exclusive: already dropped through here
    Cursor to = 0;    // inclusive: the group's minimum ACK watermark
  };

  CleanupRequest request;
  std::vector<CleanupCompletion> done;
  Phase phase = Phase::kExpired;
  std::vector<AckRange> ranges;
  std::size_t next_range = 0;
  std::uint64_t last_freelist = 0;
  bool expired_retried = false;  // the expiry pass ran again for blobs applied late
  bool segments_done = false;    // dead segments deleted, sparse ones compacted
  CleanupReport report;
};

class SqliteWriter {
 public:
  // Creates (0600) and migrates the file, prepares every statement, reads the counters.
  static Result<std::unique_ptr<SqliteWriter>> open(const StoreOptions& options);
  ~SqliteWriter();
  SqliteWriter(const SqliteWriter&) = delete;
  SqliteWriter& operator=(const SqliteWriter&) = delete;

  Database& db() noexcept;

  void set_limits(const StoreLimits& limits);

  // Runs the ops in order and sets every op's result (completions are the caller's job): runs of
  // pushes go to the journal, other runs into one transaction each.
  void write_batch(std::vector<WriteOp>& ops);

  // Blobs acknowledged but not yet in SQLite (shared with the store's readers).
  const std::shared_ptr<PendingBlobs>& pending() const noexcept { return pending_; }
  // The segment files, for the store's readers to read payloads from.
  const std::shared_ptr<SegmentFiles>& segment_files() const noexcept { return segment_files_; }
  // When the pending blobs should next be applied (nullopt: nothing pending).
  std::optional<std::chrono::steady_clock::time_point> apply_deadline() const;
  // True when enough is pending (or a sealed segment waits for SQLite), or the deadline passed.
  bool apply_due(std::chrono::steady_clock::time_point now) const;
  // Copies pending blobs into SQLite in one transaction: every one (`everything`), or the oldest
  // groups' up to about apply_max_blobs. On failure the blobs stay pending (and journaled), and
  // new pushes are refused with the error until an apply succeeds. Takes the writer's locks itself.
  Status apply_pending(bool everything);
  // At close: applies what is pending and notes that no segment needs a replay (when the apply
  // fails, the next start replays them).
  void close_journal();

  // Runs one transaction of the job. Returns true when the job is finished (or failed: the error
  // is returned through `status`).
  bool cleanup_step(CleanupJob& job, Status& status);

  // Groups with a row (read by any thread; exact after each commit).
  std::uint64_t group_count() const noexcept { return group_count_.load(std::memory_order_relaxed); }
  // Payload bytes of all groups.
  std::uint64_t total_bytes() const noexcept { return total_bytes_.load(std::memory_order_relaxed); }

  // The checkpointer that cleanup's final checkpoint goes through (SQLite runs one checkpoint at
  // a time). Not owned; may be null (then cleanup skips that checkpoint).
  void set_checkpointer(WalCheckpointer* checkpointer) noexcept { checkpointer_ = checkpointer; }

  // Folds the WAL back into the main file (used at close).
  void checkpoint_truncate();
  // The checkpointer's RESTART on this connection when the WAL grew past its bound (the applier
  // calls it after each apply: applies are what grows the WAL).
  void restart_checkpoint_if_due();

  struct Statements;

 private:
  // What the writer knows about a group with a row: SQLite's values plus the pending blobs.
  struct CachedGroup {
    std::int64_t ref = 0;
    Cursor max_cursor = 0;
    std::int64_t bytes_used = 0;
    // The largest blob id stored or pending (nullopt: none). Blob ids are time-ordered, so a new
    // push's id is almost always above it, and an id above it cannot be a retry: no lookup.
    std::optional<BlobId> max_blob_id;
  };

  SqliteWriter();
  StoreLimits limits() const;
  void write_sql_batch(std::span<WriteOp> ops);
  // Writer, before a run of pushes: applies in the applier's place when it fell behind, and
  // everything once the active journal file reached journal_max_bytes.
  void keep_journal_bounded();
  void journal_pushes(std::span<WriteOp> ops);
  // The group's cached state; creates its row (in its own transaction) when it has none.
  // An error is the push's answer: a limit (STORAGE_FULL) or a storage fault.
  Result<CachedGroup*> cached_group(const GroupId& group_id, std::uint64_t now_ms);
  // The answer to a push that repeats a stored, pending or earlier-in-batch blob (or a lookup
  // error); nullopt for a new blob.
  std::optional<Result<PushResult>> find_retry(const PushRequest& req, const CachedGroup& group,
                                               const std::vector<JournalRecord>& batch);
  Status replay_journal();
  // Creates segment `number` (and makes its directory entry durable): from the spare when one is
  // ready (or, with `wait_for_spare`, once one is made), else as an empty file.
  Result<PushJournal> create_segment(std::uint64_t number, bool wait_for_spare);
  // Deletes the segment files no row points into, below replay_from (at open: what a crash left).
  Status remove_unreferenced_segments(const std::vector<std::uint64_t>& numbers);
  // One cleanup transaction on segments: deletes dead ones or compacts a batch of a sparse one.
  // Returns false once there is nothing left to do.
  Result<bool> segment_cleanup_step();
  // apply_pending with sql_mutex_ held, and journal_mutex_ too when `holding_journal` (then no
  // push can come in, and everything is applied).
  // max_blobs: about how many blobs one transaction carries (apply_max_blobs unless given).
  Status apply_pending_locked(bool everything, bool holding_journal, std::size_t max_blobs = 0);
  // One apply transaction for these groups' blobs as they are now. Requires sql_mutex_.
  Status apply_groups(const std::vector<GroupId>& groups);
  Status apply_refusal() const;
  // Makes every commit so far durable, relaxed ones too (before a segment file is deleted, or at
  // close). Requires sql_mutex_.
  Status sync_commits();
  // Writer, under journal_mutex_: starts the next segment (the active one is full).
  void seal_active_locked();
  // Applier, under sql_mutex_: notes what was applied; moves replay_from past the sealed segments
  // that hold nothing SQLite lacks.
  void release_sealed(const std::vector<std::pair<GroupId, Cursor>>& applied);
  Status store_replay_from(std::uint64_t number);
  std::uint64_t unapplied_bytes() const noexcept {
    return journal_bytes_.load(std::memory_order_relaxed) + sealed_bytes_.load(std::memory_order_relaxed);
  }
  bool delete_needs_apply(std::span<WriteOp> ops) const;

  std::unique_ptr<Statements> s_;
  StoreOptions options_;
  WalCheckpointer* checkpointer_ = nullptr;

  mutable std::mutex limits_mutex_;
  StoreLimits limits_;

  std::atomic<std::uint64_t> group_count_{0};
  std::atomic<std::uint64_t> total_bytes_{0};

  std::mutex journal_mutex_;
  std::mutex sql_mutex_;

  int lock_fd_ = -1;  // <db>-lock, flock'ed: one relay per database
  std::uint64_t epoch_ = 0;
  std::atomic<std::uint64_t> active_segment_{0};       // journal_'s number (changed under sealed_mutex_ too)
  std::optional<PushJournal> journal_;                // journal_mutex_ (reset under all): the active segment
  std::atomic<std::uint64_t> journal_bytes_{0};       // its size, for the applier's checks
  // A segment the writer moved on from while SQLite lacked some of its records.
  struct SealedSegment {
    std::uint64_t number = 0;
    std::uint64_t bytes = 0;
    // The groups whose records it may hold that SQLite lacks, and through which cursor.
    std::unordered_map<GroupId, Cursor, FixedIdHash> waits_for;
  };
  std::mutex sealed_mutex_;
  std::deque<SealedSegment> sealed_;                  // sealed_mutex_, oldest first
  std::atomic<std::uint64_t> sealed_bytes_{0};        // their sizes: the applier should run
  std::uint64_t replay_from_ = 1;                     // sql_mutex_: meta 'replay_from' as stored
  std::shared_ptr<SegmentFiles> segment_files_;
  // With durability full: the zero-filled file the next segment is made from (segment_spare.h).
  std::unique_ptr<SegmentSpare> spare_;
  // Until when the applier stands aside (steady_clock ticks): it fell behind and the writer applies
  // instead. Renewed by every run of pushes while behind, so it lapses when the pushes stop.
  std::atomic<std::chrono::steady_clock::rep> writer_applies_until_{0};
  std::shared_ptr<PendingBlobs> pending_ = std::make_shared<PendingBlobs>();
  std::unordered_map<GroupId, CachedGroup, FixedIdHash> group_cache_;  // writer thread only
  bool relaxed_commits_ = false;  // sql_mutex_: commits without an fsync since the last one with

  mutable std::mutex refusal_mutex_;
  Status apply_refusal_;  // set while the last apply failed: new pushes get it
  std::chrono::steady_clock::time_point apply_retry_at_{};
};

}  // namespace blindsync::relay::sqlite
