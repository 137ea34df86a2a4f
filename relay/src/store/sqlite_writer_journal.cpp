// The writer's push path: cursors from the group cache, the push journal, the pending blobs, and
// applying them to SQLite. See sqlite_writer.h and push_journal.h.
//
// Invariants:
// - Every group that has pending blobs has a row in SQLite (cached_group() makes it first), so
//   readers, DeviceSeen and cleanup never meet a group that exists only in memory.
// - A group's cached max_cursor and bytes_used are SQLite's values plus its pending blobs, so the
//   cache may be dropped at any time and reloaded.
// - Pending blobs are added only after their journal append succeeded: nothing a reader can see
//   is less durable than an acknowledgement.
//
// Payload bytes are never logged.
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <unordered_set>
#include <string>
#include <utility>

#include "store/sqlite_schema.h"
#include "store/sqlite_writer.h"
#include "store/sqlite_writer_statements.h"

namespace blindsync::relay::sqlite {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kEverything = std::numeric_limits<std::size_t>::max();

// Blobs per apply when the writer applies in the applier's place: a few milliseconds before each
// run of pushes.
constexpr std::size_t kWriterApplyBlobs = 256;
// How long the applier stands aside after the writer last found it behind.
constexpr auto kWriterApplyLease = std::chrono::milliseconds(100);

// How long pushes stay refused after an apply failed, before it is tried again.
constexpr auto kApplyRetryDelay = std::chrono::milliseconds(200);

// A segment whose live payload bytes are less than 1/this of its size is compacted.
constexpr std::uint64_t kSparseSegmentRatio = 4;

Status step_done(Statement& stmt, Database& db, std::string_view what) {
  StatementReset reset(stmt);
  const int rc = stmt.step();
  if (rc != SQLITE_DONE) return db.error(rc, what, write_failure_code(rc));
  return Status::ok();
}

// Inserts one journaled blob into the group's rows. Returns whether a row was added (false: the
// blob id was already stored, which only a replay can meet).
Result<bool> insert_blob(SqliteWriter::Statements& s, std::int64_t ref, const JournalRecord& r) {
  StatementReset reset(s.insert_blob);
  s.insert_blob.bind_int64(1, blob_key(ref, static_cast<std::int64_t>(r.cursor)));
  s.insert_blob.bind_int64(2, ref);
  s.insert_blob.bind_blob(3, r.blob_id.view());
  s.insert_blob.bind_blob(4, r.sender_id.view());
  s.insert_blob.bind_int64(5, to_sql_int(r.timestamp_ms));
  s.insert_blob.bind_int64(6, to_sql_int(r.expires_at_ms));
  if (r.segment == 0) {
    // The earlier format's files: the payload goes inline.
    if (int rc = s.insert_blob.bind_blob(7, *r.payload); rc != SQLITE_OK) return s.db.error(rc, "bind payload");
  } else {
    sqlite3_bind_zeroblob(s.insert_blob.get(), 7, 0);  // empty, not NULL: the payload is in the segment
  }
  s.insert_blob.bind_int64(8, static_cast<std::int64_t>(r.segment));
  s.insert_blob.bind_int64(9, r.segment == 0 ? 0 : static_cast<std::int64_t>(r.payload_offset));
  s.insert_blob.bind_int64(10, r.segment == 0 ? 0 : static_cast<std::int64_t>(r.payload->size()));
  if (int rc = s.insert_blob.step(); rc != SQLITE_DONE) return s.db.error(rc, "insert blob", write_failure_code(rc));
  return sqlite3_changes(s.db.get()) == 1;
}

// Per segment: the rows an apply or replay made point into it, and their payload bytes.
using SegmentCounts = std::unordered_map<std::uint64_t, std::pair<std::int64_t, std::int64_t>>;

void count_in_segment(SegmentCounts& counts, const JournalRecord& r) {
  if (r.segment == 0) return;
  auto& [blobs, bytes] = counts[r.segment];
  ++blobs;
  bytes += static_cast<std::int64_t>(r.payload->size());
}

Status add_to_segments(SqliteWriter::Statements& s, const SegmentCounts& counts) {
  for (const auto& [segment, count] : counts) {
    StatementReset reset(s.add_to_segment);
    s.add_to_segment.bind_int64(1, static_cast<std::int64_t>(segment));
    s.add_to_segment.bind_int64(2, count.first);
    s.add_to_segment.bind_int64(3, count.second);
    if (int rc = s.add_to_segment.step(); rc != SQLITE_DONE) {
      return s.db.error(rc, "count segment rows", write_failure_code(rc));
    }
  }
  return Status::ok();
}

Status update_group(SqliteWriter::Statements& s, std::int64_t ref, Cursor max_cursor, std::int64_t bytes,
                    std::int64_t blobs) {
  StatementReset reset(s.update_group);
  s.update_group.bind_int64(1, ref);
  s.update_group.bind_int64(2, static_cast<std::int64_t>(max_cursor));
  s.update_group.bind_int64(3, bytes);
  s.update_group.bind_int64(4, blobs);
  if (int rc = s.update_group.step(); rc != SQLITE_DONE) return s.db.error(rc, "update group", write_failure_code(rc));
  return Status::ok();
}

struct GroupRow {
  std::int64_t ref = 0;  // 0: no row
  Cursor max_cursor = 0;
  std::int64_t bytes_used = 0;
};

Result<GroupRow> select_group(SqliteWriter::Statements& s, const GroupId& group_id) {
  StatementReset reset(s.select_group);
  s.select_group.bind_blob(1, group_id.view());
  const int rc = s.select_group.step();
  if (rc == SQLITE_DONE) return GroupRow{};
  if (rc != SQLITE_ROW) return s.db.error(rc, "group lookup", Code::kInternal);
  return GroupRow{s.select_group.column_int64(0), static_cast<Cursor>(s.select_group.column_int64(1)),
                  s.select_group.column_int64(2)};
}

// Inserts the group's row inside the caller's transaction; returns its ref.
Result<std::int64_t> insert_group(SqliteWriter::Statements& s, const GroupId& group_id, std::uint64_t now_ms) {
  StatementReset reset(s.insert_group);
  s.insert_group.bind_blob(1, group_id.view());
  s.insert_group.bind_int64(2, to_sql_int(now_ms));
  if (int rc = s.insert_group.step(); rc != SQLITE_DONE) return s.db.error(rc, "insert group", write_failure_code(rc));
  return sqlite3_last_insert_rowid(s.db.get());
}

// The stored (cursor, timestamp) of a blob already in SQLite, for a retried push.
Result<std::optional<PushResult>> find_stored(SqliteWriter::Statements& s, std::int64_t ref, const BlobId& blob_id) {
  StatementReset reset(s.select_duplicate);
  s.select_duplicate.bind_int64(1, ref);
  s.select_duplicate.bind_blob(2, blob_id.view());
  const int rc = s.select_duplicate.step();
  if (rc == SQLITE_DONE) return std::optional<PushResult>();
  if (rc != SQLITE_ROW) return s.db.error(rc, "duplicate lookup", Code::kInternal);
  return std::optional<PushResult>(PushResult{cursor_of_key(s.select_duplicate.column_int64(0)),
                                              static_cast<std::uint64_t>(s.select_duplicate.column_int64(1)), true, nullptr});
}

Result<std::optional<BlobId>> max_stored_blob_id(SqliteWriter::Statements& s, std::int64_t ref) {
  StatementReset reset(s.select_max_blob_id);
  s.select_max_blob_id.bind_int64(1, ref);
  const int rc = s.select_max_blob_id.step();
  if (rc != SQLITE_ROW) return s.db.error(rc == SQLITE_DONE ? SQLITE_INTERNAL : rc, "max blob id", Code::kInternal);
  const ByteView id = s.select_max_blob_id.column_blob(0);
  if (id.empty()) return std::optional<BlobId>();  // NULL: the group has no blob
  auto parsed = BlobId::from_bytes(id);
  if (!parsed) return Status(Code::kInternal, "malformed blob id row");
  return std::optional<BlobId>(*parsed);
}

}  // namespace

Result<SqliteWriter::CachedGroup*> SqliteWriter::cached_group(const GroupId& group_id, std::uint64_t now_ms) {
  if (auto it = group_cache_.find(group_id); it != group_cache_.end()) return &it->second;
  // SQLite's row and the pending blobs are read under the SQL lock, which an apply holds from
  // its snapshot to its commit: a blob is counted in one of them, never both or neither.
  std::lock_guard sql(sql_mutex_);
  Statements& s = *s_;
  auto row = select_group(s, group_id);
  if (!row) return row.error();
  if (row->ref == 0) {
    const StoreLimits lim = limits();
    if (lim.max_groups != 0 && group_count() >= lim.max_groups) {
      return Status(Code::kStorageFull, "the relay has reached its limit of " + std::to_string(lim.max_groups) + " groups");
    }
    // The row comes first, in its own transaction: a group with pending blobs always has one.
    if (auto st = step_done(s.begin, s.db, "begin"); !st) return st;
    auto ref = insert_group(s, group_id, now_ms);
    Status st = ref ? step_done(s.commit, s.db, "commit") : ref.error();
    if (!st) {
      s.db.rollback_if_open();
      return st;
    }
    row->ref = *ref;
    group_count_.fetch_add(1, std::memory_order_relaxed);
  }
  if (row->ref <= 0 || row->ref > kMaxGroupRef) return Status(Code::kStorageFull, "relay group table is full");
  auto stored_max = max_stored_blob_id(s, row->ref);
  if (!stored_max) return stored_max.error();
  const PendingSummary pending = pending_->summary(group_id);
  CachedGroup group{row->ref, std::max(row->max_cursor, pending.max_cursor),
                    row->bytes_used + static_cast<std::int64_t>(pending.bytes), std::max(*stored_max, pending.max_blob_id)};
  return &group_cache_.insert_or_assign(group_id, group).first->second;
}

std::optional<Result<PushResult>> SqliteWriter::find_retry(const PushRequest& req, const CachedGroup& group,
                                                           const std::vector<JournalRecord>& batch) {
  // Blob ids are time-ordered: an id above every id of the group is a new blob, no lookup needed.
  if (!group.max_blob_id || *group.max_blob_id < req.blob_id) return std::nullopt;
  if (auto pending = pending_->find(req.group_id, req.blob_id)) {
    return Result<PushResult>(PushResult{pending->first, pending->second, true, nullptr});
  }
  const auto in_batch = std::find_if(batch.begin(), batch.end(), [&](const JournalRecord& r) {
    return r.group_id == req.group_id && r.blob_id == req.blob_id;
  });
  if (in_batch != batch.end()) return Result<PushResult>(PushResult{in_batch->cursor, in_batch->timestamp_ms, true, nullptr});
  // Pending first, SQLite second: a blob applied in between is found in SQLite.
  std::lock_guard sql(sql_mutex_);
  auto stored = find_stored(*s_, group.ref, req.blob_id);
  if (!stored) return Result<PushResult>(stored.error());
  if (*stored) return Result<PushResult>(**stored);
  return std::nullopt;
}

void SqliteWriter::keep_journal_bounded() {
  // The applier brings SQLite up to date behind the pushes. When it falls behind (it runs at a
  // lower priority, and under full load it gets little CPU) past halfway to journal_max_bytes of
  // unapplied segments, it stands aside and the writer applies a small batch itself before each
  // run of pushes: many short waits instead of one long one for the full apply at
  // journal_max_bytes, the last resort that bounds the pending blobs (memory). The writer never
  // waits for the applier's lock (that would wait at the applier's low priority): should the
  // applier be mid-apply, it finishes and starts no other while the writer applies.
  const std::uint64_t unapplied = unapplied_bytes();
  if (unapplied >= options_.journal_max_bytes) {
    (void)apply_pending(/*everything=*/true);
    return;
  }
  const std::uint64_t behind_from = options_.journal_clear_bytes / 2 + options_.journal_max_bytes / 2;
  if (unapplied < behind_from || sealed_bytes_.load(std::memory_order_relaxed) == 0) return;
  writer_applies_until_.store((Clock::now() + kWriterApplyLease).time_since_epoch().count(), std::memory_order_relaxed);
  std::unique_lock sql(sql_mutex_, std::try_to_lock);
  if (sql.owns_lock()) (void)apply_pending_locked(/*everything=*/false, /*holding_journal=*/false, kWriterApplyBlobs);
}

void SqliteWriter::journal_pushes(std::span<WriteOp> ops) {
  keep_journal_bounded();
  const StoreLimits lim = limits();
  const Status refusal = apply_refusal();
  std::vector<JournalRecord> records;
  records.reserve(ops.size());
  std::int64_t added_bytes = 0;

  for (WriteOp& write : ops) {
    PushOp& op = std::get<PushOp>(write);
    PushRequest& req = op.request;
    auto found = cached_group(req.group_id, req.timestamp_ms);
    if (!found) {
      op.result.emplace(found.error());
      continue;
    }
    CachedGroup& group = **found;

    // A retried push is answered with the stored cursor, whatever the limits say now.
    if (auto retry = find_retry(req, group, records)) {
      op.result.emplace(std::move(*retry));
      continue;
    }

    const auto size = static_cast<std::int64_t>(req.payload.size());
    const auto total = static_cast<std::int64_t>(total_bytes()) + added_bytes;
    if (!refusal.is_ok()) {
      op.result.emplace(refusal);
    } else if (lim.group_quota_bytes != 0 && group.bytes_used + size > static_cast<std::int64_t>(lim.group_quota_bytes)) {
      op.result.emplace(Status(Code::kGroupQuotaExceeded, "the group's storage quota of " +
                                                              std::to_string(lim.group_quota_bytes) + " bytes is used up"));
    } else if (lim.storage_cap_bytes != 0 && total + size > static_cast<std::int64_t>(lim.storage_cap_bytes)) {
      op.result.emplace(Status(Code::kStorageFull, "the relay's storage is full"));
    } else if (group.max_cursor >= static_cast<Cursor>(kMaxCursor)) {
      op.result.emplace(Status(Code::kStorageFull, "group cursor space exhausted"));
    }
    if (op.result) continue;

    group.max_cursor += 1;
    group.bytes_used += size;
    if (!group.max_blob_id || *group.max_blob_id < req.blob_id) group.max_blob_id = req.blob_id;
    added_bytes += size;
    auto payload = std::make_shared<const Bytes>(std::move(req.payload));
    records.push_back(JournalRecord{req.group_id, req.blob_id, req.sender_id, group.max_cursor, req.timestamp_ms,
                                    req.expires_at_ms, payload});
    op.result.emplace(PushResult{group.max_cursor, req.timestamp_ms, false, std::move(payload)});
  }
  if (records.empty()) return;

  std::lock_guard journal_lock(journal_mutex_);
  // A broken segment ends at its torn record, which was never acknowledged: the next one takes over.
  if (journal_->size_bytes() >= options_.journal_clear_bytes || journal_->broken()) seal_active_locked();
  if (Status st = journal_->append(records); !st) {
    // Nothing of this run was acknowledged: its cursors are free again (the cache reloads
    // without them) and every push that was to be stored fails.
    spdlog::error("store: {} push(es) not journaled: {}", records.size(), st.message());
    for (const JournalRecord& r : records) group_cache_.erase(r.group_id);
    const auto in_failed_run = [&](const PushRequest& req, Cursor cursor) {
      return std::any_of(records.begin(), records.end(),
                         [&](const JournalRecord& r) { return r.group_id == req.group_id && r.cursor == cursor; });
    };
    for (WriteOp& write : ops) {
      PushOp& op = std::get<PushOp>(write);
      // A retry of a blob earlier in this same run was answered with a cursor that now is not.
      if (op.result && op.result->has_value() && in_failed_run(op.request, op.result->value().cursor)) {
        op.result.emplace(st);
      }
    }
    return;
  }
  journal_bytes_.store(journal_->size_bytes(), std::memory_order_relaxed);
  // Halfway through this segment, the spare for the next one is made in the background.
  if (spare_ && journal_->size_bytes() >= options_.journal_clear_bytes / 2) spare_->prepare();
  total_bytes_.fetch_add(static_cast<std::uint64_t>(added_bytes), std::memory_order_relaxed);
  pending_->add(std::move(records));
}

Status SqliteWriter::apply_refusal() const {
  std::lock_guard lock(refusal_mutex_);
  return apply_refusal_;
}

std::optional<Clock::time_point> SqliteWriter::apply_deadline() const {
  const auto oldest = pending_->oldest_added();
  if (!oldest) return std::nullopt;
  {
    std::lock_guard lock(refusal_mutex_);
    if (!apply_refusal_.is_ok()) return apply_retry_at_;
  }
  return *oldest + std::chrono::milliseconds(options_.apply_delay_ms);
}

bool SqliteWriter::apply_due(Clock::time_point now) const {
  if (now.time_since_epoch().count() < writer_applies_until_.load(std::memory_order_relaxed)) return false;
  const auto deadline = apply_deadline();
  if (!deadline) return false;
  if (!apply_refusal().is_ok()) return now >= *deadline;
  const PendingTotals totals = pending_->totals();
  return totals.blobs >= options_.apply_max_blobs || totals.bytes >= options_.apply_max_bytes ||
         sealed_bytes_.load(std::memory_order_relaxed) > 0 || now >= *deadline;
}

Status SqliteWriter::apply_groups(const std::vector<GroupId>& groups) {
  Statements& s = *s_;
  // With durability full, an apply need not be fsynced: the segments keep every record, and a
  // replay starts at replay_from, which only moves in a later commit (lost with the apply, it is
  // lost too: the WAL's frames are recovered as a prefix). The next synced commit makes the
  // relaxed ones durable (sync_commits, before a segment file is deleted, and at close).
  const bool relax = options_.durability == Durability::kFull;
  if (relax) (void)s.db.exec("PRAGMA synchronous = NORMAL");
  if (relax) relaxed_commits_ = true;
  // The blobs as they are now; the writer thread may add newer ones meanwhile, which stay pending.
  const std::vector<PendingBlobs::GroupSnapshot> snapshot = pending_->snapshot(groups);
  std::vector<std::pair<GroupId, Cursor>> applied;
  applied.reserve(snapshot.size());
  SegmentCounts segments;
  Status st = step_done(s.begin, s.db, "apply: begin");
  for (const PendingBlobs::GroupSnapshot& group : snapshot) {
    if (!st) break;
    // Every group with pending blobs has a row (cached_group makes it before the first push).
    auto row = select_group(s, group.group_id);
    if (!row) {
      st = row.error();
      break;
    }
    if (row->ref == 0) {
      st = Status(Code::kInternal, "apply: a group with pending blobs has no row");
      break;
    }
    std::int64_t bytes = 0;
    std::int64_t added = 0;
    for (const JournalRecord& r : group.blobs) {
      auto inserted = insert_blob(s, row->ref, r);
      if (!inserted) {
        st = inserted.error();
        break;
      }
      if (*inserted) {
        bytes += static_cast<std::int64_t>(r.payload->size());
        ++added;
        count_in_segment(segments, r);
      }
    }
    if (st) st = update_group(s, row->ref, group.max_cursor, bytes, added);
    if (st) applied.emplace_back(group.group_id, group.max_cursor);
  }
  if (st) st = add_to_segments(s, segments);
  // With durability normal the segments are not synced at each append; a row must never point
  // at bytes a power loss could take, so they are synced before the rows commit.
  if (options_.durability == Durability::kNormal) {
    for (const auto& [segment, count] : segments) {
      if (st) st = segment_files_->sync(segment);
    }
  }
  if (st) {
    // Without the pending lock: pushes keep being journaled and added while SQLite commits (a
    // commit writes megabytes to the WAL). The blobs leave the pending ones only once committed.
    pending_->begin_apply();
    st = step_done(s.commit, s.db, "apply: commit");
    pending_->finish_apply(st ? applied : decltype(applied){});
  }
  if (!st) s.db.rollback_if_open();
  if (relax) (void)s.db.exec("PRAGMA synchronous = FULL");
  if (st) release_sealed(applied);
  return st;
}

Result<PushJournal> SqliteWriter::create_segment(std::uint64_t number, bool wait_for_spare) {
  const std::string path = segment_path_for(options_.path, number);
  const bool sync = options_.durability == Durability::kFull;
  auto segment = spare_ && spare_->take_as(path, wait_for_spare) ? PushJournal::open_zero_filled(path, epoch_, sync, number)
                                                                 : PushJournal::open(path, epoch_, sync, number);
  if (!segment) return segment.error();
  if (segment->has_records()) return Status(Code::kInternal, "new segment '" + path + "' already holds records");
  // A record acknowledged in this file must not vanish with its directory entry.
  if (auto st = sync_parent_directory(path); !st) return st;
  return segment;
}

void SqliteWriter::seal_active_locked() {
  const std::uint64_t next = journal_->segment() + 1;
  auto created = create_segment(next, /*wait_for_spare=*/false);
  if (!created) {
    // Keep appending to this one; the next run of pushes tries again.
    spdlog::error("store: cannot start push journal segment {}: {}", next, created.error().message());
    return;
  }
  std::lock_guard sealed(sealed_mutex_);
  // Every pending blob is in this segment or an older sealed one: once each of these groups is
  // applied this far, SQLite has all this segment holds.
  sealed_.push_back(SealedSegment{journal_->segment(), journal_->size_bytes(), pending_->max_cursors()});
  sealed_bytes_.fetch_add(journal_->size_bytes(), std::memory_order_relaxed);
  if (Status st = journal_->trim(); !st) spdlog::warn("store: {}", st.message());  // only disk space
  *journal_ = std::move(*created);
  journal_bytes_.store(journal_->size_bytes(), std::memory_order_relaxed);
  active_segment_.store(next, std::memory_order_relaxed);
}

void SqliteWriter::release_sealed(const std::vector<std::pair<GroupId, Cursor>>& applied) {
  std::uint64_t replay_from = 0;
  // Nothing pending: every record of a sealed segment (added to the pending blobs before the
  // segment was sealed) is in SQLite, or expired and dropped by cleanup (a replay drops it too).
  const bool nothing_pending = pending_->empty();
  {
    std::lock_guard sealed(sealed_mutex_);
    for (SealedSegment& segment : sealed_) {
      if (nothing_pending) segment.waits_for.clear();
      for (const auto& [group_id, through] : applied) {
        const auto it = segment.waits_for.find(group_id);
        if (it != segment.waits_for.end() && through >= it->second) segment.waits_for.erase(it);
      }
    }
    // In order: a replay starts at the oldest segment that may hold records SQLite lacks.
    bool released = false;
    while (!sealed_.empty() && sealed_.front().waits_for.empty()) {
      sealed_bytes_.fetch_sub(sealed_.front().bytes, std::memory_order_relaxed);
      sealed_.pop_front();
      released = true;
    }
    if (!released) return;
    // Past every sealed one: the active segment (the writer changes it under this lock too).
    replay_from = sealed_.empty() ? active_segment_.load(std::memory_order_relaxed) : sealed_.front().number;
  }
  // Lost with a power cut (a relaxed commit), a replay merely starts earlier and skips more.
  if (Status st = store_replay_from(replay_from); !st) {
    spdlog::error("store: cannot note the applied push journal segments: {}", st.message());
  }
}

Status SqliteWriter::store_replay_from(std::uint64_t number) {
  if (number <= replay_from_) return Status::ok();
  StatementReset reset(s_->set_replay_from);
  s_->set_replay_from.bind_int64(1, static_cast<std::int64_t>(number));
  if (int rc = s_->set_replay_from.step(); rc != SQLITE_DONE) return s_->db.error(rc, "note replay_from", write_failure_code(rc));
  replay_from_ = number;
  return Status::ok();
}

Status SqliteWriter::sync_commits() {
  const bool all_synced = options_.durability == Durability::kFull && !relaxed_commits_;
  if (all_synced) return Status::ok();
  // A commit with synchronous=FULL fsyncs the WAL, and with it every commit before it. The row
  // touched is a no-op update; it only gives the commit a page to write.
  (void)s_->db.exec("PRAGMA synchronous = FULL");
  Status st = s_->db.exec("BEGIN IMMEDIATE; UPDATE meta SET value = value WHERE key = 'epoch'; COMMIT");
  if (!st) s_->db.rollback_if_open();
  if (options_.durability == Durability::kNormal) (void)s_->db.exec("PRAGMA synchronous = NORMAL");
  if (st) relaxed_commits_ = false;
  return st;
}

Status SqliteWriter::apply_pending(bool everything) {
  // Only `everything` stops the pushes (journal_mutex_).
  std::unique_lock journal_lock(journal_mutex_, std::defer_lock);
  if (everything) journal_lock.lock();
  std::lock_guard sql(sql_mutex_);
  return apply_pending_locked(everything, everything);
}

Status SqliteWriter::apply_pending_locked(bool everything, bool holding_journal, std::size_t max_blobs) {
  if (!journal_) return Status::ok();  // closed
  if (pending_->empty() && sealed_bytes_.load(std::memory_order_relaxed) > 0) release_sealed({});
  if (!pending_->empty()) {
    // Oldest groups first, whole groups at a time, about apply_max_blobs per transaction: large
    // enough that each group's pages are written once for many blobs. With the journal held,
    // everything: nothing new can come in, so SQLite then has every record.
    const bool all = everything || holding_journal;
    const auto groups = all ? pending_->oldest_groups(kEverything, kEverything)
                            : pending_->oldest_groups(max_blobs != 0 ? max_blobs : options_.apply_max_blobs,
                                                      options_.apply_max_bytes);
    if (Status st = apply_groups(groups); !st) {
      std::lock_guard lock(refusal_mutex_);
      if (apply_refusal_.is_ok()) {
        spdlog::error("store: cannot apply {} pending push(es), new pushes are refused until it works: {}",
                      pending_->totals().blobs, st.message());
      }
      apply_refusal_ = Status(st.code() == Code::kStorageFull ? Code::kStorageFull : Code::kInternal,
                              st.code() == Code::kStorageFull ? "the relay's storage is full"
                                                              : "the relay cannot store pushes right now");
      apply_retry_at_ = Clock::now() + kApplyRetryDelay;
      return st;
    }
    std::lock_guard lock(refusal_mutex_);
    if (!apply_refusal_.is_ok()) spdlog::info("store: pending pushes applied, accepting pushes again");
    apply_refusal_ = Status::ok();
  }
  return Status::ok();
}

void SqliteWriter::close_journal() {
  std::lock_guard journal_lock(journal_mutex_);
  std::lock_guard sql(sql_mutex_);
  if (!journal_) return;
  Status st = apply_pending_locked(/*everything=*/true, /*holding_journal=*/true);
  // SQLite has every record: the next start replays nothing (a new segment follows this one).
  const std::uint64_t active = journal_->segment();
  if (st) st = store_replay_from(active + 1);
  if (st) st = sync_commits();
  if (!st) {
    spdlog::error("store: pending pushes stay in the push journal for the next start: {}", st.message());
    return;
  }
  const bool empty = !journal_->has_records();
  if (!empty) {
    if (Status trimmed = journal_->trim(); !trimmed) spdlog::warn("store: {}", trimmed.message());  // only disk space
  }
  journal_.reset();
  if (empty) (void)segment_files_->remove(active);
}

Status SqliteWriter::replay_journal() {
  Statements& s = *s_;
  const bool sync = options_.durability == Durability::kFull;
  auto stored_from = s.db.query_int64("SELECT value FROM meta WHERE key = 'replay_from'");
  if (!stored_from) return stored_from.error();
  replay_from_ = static_cast<std::uint64_t>(std::max<std::int64_t>(1, *stored_from));
  auto numbers = list_segments(options_.path);
  if (!numbers) return numbers.error();

  // The earlier format's two files, then every segment a replay must read. A record whose cursor
  // SQLite has is skipped, so reading more than needed is harmless.
  std::vector<JournalRecord> records;
  std::vector<std::string> legacy_files;
  for (const std::string& path : {journal_path_for(options_.path), second_journal_path_for(options_.path)}) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    auto file = PushJournal::open(path, epoch_, sync);
    if (!file) return file.error();
    auto read = file->read_all();
    if (!read) return read.error();
    records.insert(records.end(), std::make_move_iterator(read->begin()), std::make_move_iterator(read->end()));
    legacy_files.push_back(path);
  }
  std::uint64_t next_segment = replay_from_;
  for (const std::uint64_t number : *numbers) {
    next_segment = std::max(next_segment, number + 1);
    if (number < replay_from_) continue;
    auto file = PushJournal::open(segment_path_for(options_.path, number), epoch_, sync, number);
    if (!file) return file.error();
    auto read = file->read_all();
    if (!read) return read.error();
    records.insert(records.end(), std::make_move_iterator(read->begin()), std::make_move_iterator(read->end()));
  }
  // A group's records may be split between files; in cursor order per group, the checks below
  // hold whichever file is older.
  std::stable_sort(records.begin(), records.end(), [](const JournalRecord& a, const JournalRecord& b) {
    return a.group_id == b.group_id ? a.cursor < b.cursor : a.group_id < b.group_id;
  });

  // Records whose cursor SQLite already has were applied before the crash; the rest must follow
  // each group's max_cursor without a gap.
  struct Replayed {
    GroupRow row;
    Cursor next = 0;
    std::int64_t bytes = 0;
    std::int64_t blobs = 0;
  };
  std::unordered_map<GroupId, Replayed, FixedIdHash> groups;
  SegmentCounts segments;
  std::uint64_t applied = 0;
  const auto now_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  Status st = step_done(s.begin, s.db, "replay: begin");
  for (const JournalRecord& r : records) {
    if (!st) break;
    auto it = groups.find(r.group_id);
    if (it == groups.end()) {
      auto row = select_group(s, r.group_id);
      if (!row) {
        st = row.error();
        break;
      }
      if (row->ref == 0) {
        auto ref = insert_group(s, r.group_id, r.timestamp_ms);
        if (!ref) {
          st = ref.error();
          break;
        }
        row->ref = *ref;
      }
      it = groups.emplace(r.group_id, Replayed{*row, row->max_cursor + 1, 0, 0}).first;
    }
    Replayed& g = it->second;
    if (r.cursor < g.next) continue;
    if (r.cursor != g.next) {
      st = Status(Code::kStorageError, "the push journal next to '" + options_.path + "' skips from cursor " +
                                           std::to_string(g.next - 1) + " to " + std::to_string(r.cursor) +
                                           " in a group; refusing to start rather than leave a hole");
      break;
    }
    g.next = r.cursor + 1;
    // Cleanup may have dropped it from memory already; either way its cursor stays used.
    if (r.expires_at_ms <= now_ms) continue;
    auto inserted = insert_blob(s, g.row.ref, r);
    if (!inserted) {
      st = inserted.error();
      break;
    }
    if (*inserted) {
      g.bytes += static_cast<std::int64_t>(r.payload->size());
      ++g.blobs;
      ++applied;
      count_in_segment(segments, r);
    }
  }
  for (const auto& [group_id, g] : groups) {
    if (!st) break;
    if (g.next - 1 > g.row.max_cursor) st = update_group(s, g.row.ref, g.next - 1, g.bytes, g.blobs);
  }
  if (st) st = add_to_segments(s, segments);
  if (st) st = store_replay_from(next_segment);
  if (st) st = step_done(s.commit, s.db, "replay: commit");
  if (!st) {
    s.db.rollback_if_open();
    replay_from_ = static_cast<std::uint64_t>(std::max<std::int64_t>(1, *stored_from));
    return Status(Code::kStorageError, "cannot replay the push journal: " + st.message());
  }
  if (applied > 0) spdlog::info("store: recovered {} acknowledged push(es) from the push journal", applied);
  // The earlier format's files and empty or dead segments go only once the replay is durable.
  if (st = sync_commits(); !st) return st;
  for (const std::string& path : legacy_files) ::unlink(path.c_str());
  if (st = remove_unreferenced_segments(*numbers); !st) return st;

  // The first segment waits for a spare, or with little traffic the whole run would append.
  auto active = create_segment(next_segment, /*wait_for_spare=*/true);
  if (!active) return active.error();
  journal_.emplace(std::move(*active));
  active_segment_.store(next_segment, std::memory_order_relaxed);
  return Status::ok();
}

Status SqliteWriter::remove_unreferenced_segments(const std::vector<std::uint64_t>& numbers) {
  // Below replay_from, only the segments that rows point into stay; their rows say which.
  std::unordered_set<std::uint64_t> live;
  std::vector<std::uint64_t> dead_rows;
  {
    StatementReset reset(s_->select_segments);
    s_->select_segments.bind_int64(1, static_cast<std::int64_t>(replay_from_));
    int rc = SQLITE_ROW;
    while ((rc = s_->select_segments.step()) == SQLITE_ROW) {
      const auto number = static_cast<std::uint64_t>(s_->select_segments.column_int64(0));
      if (s_->select_segments.column_int64(1) > 0) {
        live.insert(number);
      } else {
        dead_rows.push_back(number);
      }
    }
    if (rc != SQLITE_DONE) return s_->db.error(rc, "list segments", Code::kInternal);
  }
  for (const std::uint64_t number : numbers) {
    if (number >= replay_from_ || live.count(number) != 0) continue;
    if (auto st = segment_files_->remove(number); !st) return st;
  }
  for (const std::uint64_t number : dead_rows) {
    StatementReset reset(s_->delete_segment);
    s_->delete_segment.bind_int64(1, static_cast<std::int64_t>(number));
    if (int rc = s_->delete_segment.step(); rc != SQLITE_DONE) return s_->db.error(rc, "delete segment row");
  }
  return Status::ok();
}

Result<bool> SqliteWriter::segment_cleanup_step() {
  Statements& s = *s_;
  struct Candidate {
    std::uint64_t number = 0;
    std::int64_t live_blobs = 0;
    std::int64_t live_bytes = 0;
  };
  std::vector<Candidate> dead;
  std::optional<Candidate> sparse;
  {
    StatementReset reset(s.select_segments);
    s.select_segments.bind_int64(1, static_cast<std::int64_t>(replay_from_));
    int rc = SQLITE_ROW;
    while ((rc = s.select_segments.step()) == SQLITE_ROW) {
      Candidate c{static_cast<std::uint64_t>(s.select_segments.column_int64(0)), s.select_segments.column_int64(1),
                  s.select_segments.column_int64(2)};
      if (c.live_blobs <= 0) {
        dead.push_back(c);
        continue;
      }
      std::error_code ec;
      const auto file_bytes = std::filesystem::file_size(segment_path_for(options_.path, c.number), ec);
      // Less than a quarter live: moving the rest inline frees three quarters of the file.
      if (!sparse && !ec && static_cast<std::uint64_t>(c.live_bytes) * kSparseSegmentRatio < file_bytes) sparse = c;
    }
    if (rc != SQLITE_DONE) return s.db.error(rc, "list segments", Code::kInternal);
  }
  if (!dead.empty()) {
    Status st = step_done(s.begin, s.db, "segments: begin");
    for (const Candidate& c : dead) {
      if (!st) break;
      StatementReset reset(s.delete_segment);
      s.delete_segment.bind_int64(1, static_cast<std::int64_t>(c.number));
      if (int rc = s.delete_segment.step(); rc != SQLITE_DONE) st = s.db.error(rc, "delete segment row", write_failure_code(rc));
    }
    if (st) st = step_done(s.commit, s.db, "segments: commit");
    // No durable row may point at a file that is gone: what moved the rows away is synced first.
    if (st) st = sync_commits();
    if (!st) {
      s.db.rollback_if_open();
      return st;
    }
    for (const Candidate& c : dead) {
      if (auto removed = segment_files_->remove(c.number); !removed) return removed;
    }
    return true;
  }
  if (!sparse) return false;

  // A batch of the sparse segment's rows gets its payload inline.
  std::vector<std::int64_t> keys;
  std::vector<Bytes> payloads;
  std::vector<PayloadRead> reads;
  {
    StatementReset reset(s.select_segment_rows);
    s.select_segment_rows.bind_int64(1, static_cast<std::int64_t>(sparse->number));
    s.select_segment_rows.bind_int64(2, static_cast<std::int64_t>(std::max<std::size_t>(1, options_.cleanup_batch)));
    int rc = SQLITE_ROW;
    while ((rc = s.select_segment_rows.step()) == SQLITE_ROW) {
      auto blob_id = BlobId::from_bytes(s.select_segment_rows.column_blob(1));
      if (!blob_id) return Status(Code::kInternal, "malformed blob id row");
      keys.push_back(s.select_segment_rows.column_int64(0));
      reads.push_back(PayloadRead{sparse->number, static_cast<std::uint64_t>(s.select_segment_rows.column_int64(2)),
                                  static_cast<std::uint64_t>(s.select_segment_rows.column_int64(3)), *blob_id, nullptr});
    }
    if (rc != SQLITE_DONE) return s.db.error(rc, "segment rows", Code::kInternal);
  }
  payloads.resize(reads.size());
  for (std::size_t i = 0; i < reads.size(); ++i) reads[i].out = &payloads[i];
  if (auto st = segment_files_->read(reads); !st) return st;
  std::int64_t moved_bytes = 0;
  Status st = step_done(s.begin, s.db, "compact: begin");
  for (std::size_t i = 0; i < keys.size() && st; ++i) {
    StatementReset reset(s.inline_payload);
    s.inline_payload.bind_int64(1, keys[i]);
    if (int rc = s.inline_payload.bind_blob(2, payloads[i]); rc != SQLITE_OK) {
      st = s.db.error(rc, "bind payload");
      break;
    }
    if (int rc = s.inline_payload.step(); rc != SQLITE_DONE) st = s.db.error(rc, "compact", write_failure_code(rc));
    moved_bytes += static_cast<std::int64_t>(payloads[i].size());
  }
  if (st) {
    StatementReset reset(s.subtract_from_segment);
    s.subtract_from_segment.bind_int64(1, static_cast<std::int64_t>(sparse->number));
    s.subtract_from_segment.bind_int64(2, static_cast<std::int64_t>(keys.size()));
    s.subtract_from_segment.bind_int64(3, moved_bytes);
    if (int rc = s.subtract_from_segment.step(); rc != SQLITE_DONE) st = s.db.error(rc, "compact", write_failure_code(rc));
  }
  if (st) st = step_done(s.commit, s.db, "compact: commit");
  if (!st) {
    s.db.rollback_if_open();
    return st;
  }
  return true;
}

}  // namespace blindsync::relay::sqlite
