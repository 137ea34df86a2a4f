// SqliteWriter: the relay store's one write connection and everything it writes (private to
// relay/src/store): group-commit batches of pushes, device records, ACK watermarks and DELETEs,
// and the cleanup job, one bounded transaction at a time.
//
// A batch runs in ONE transaction. Refusals that concern one request (a quota, NOT_BLOB_OWNER, a
// full group) are that request's result and the rest of the batch commits; any SQLite error rolls
// the whole batch back and becomes every request's result (STORAGE_FULL for a full disk,
// INTERNAL otherwise), and in-memory counters are only advanced after COMMIT.
//
// Cleanup is a small state machine (CleanupJob) advanced by cleanup_step(), one short transaction
// per step, so the store's writer thread can interleave it with push batches.
//
// Ownership: owns the connection and its statements.
// Thread-safety: one thread (the store's writer) calls everything except set_limits() and the
// counters, which any thread may use.
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

  // Runs the ops in one transaction and sets every op's result (completions are the caller's job).
  void write_batch(std::vector<WriteOp>& ops);

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

  struct Statements;

 private:
  SqliteWriter();
  StoreLimits limits() const;

  std::unique_ptr<Statements> s_;
  StoreOptions options_;
  WalCheckpointer* checkpointer_ = nullptr;

  mutable std::mutex limits_mutex_;
  StoreLimits limits_;

  std::atomic<std::uint64_t> group_count_{0};
  std::atomic<std::uint64_t> total_bytes_{0};
};

}  // namespace blindsync::relay::sqlite
