// The relay store's writer: group commit of pushes, device records, ACKs and DELETEs, and the
// cleanup job. See sqlite_writer.h; the schema is described in sqlite_schema.cpp.
//
// Payload bytes are never logged.
#include "store/sqlite_writer.h"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <limits>
#include <unordered_map>
#include <utility>

#include "store/sqlite_schema.h"
#include "store/sqlite_writer_statements.h"

namespace blindsync::relay::sqlite {
namespace {


// Groups examined per drop-acked planning query (the rest wait for the next run).
constexpr int kMaxAckRangesPerRun = 10'000;
// Groups whose acknowledged blobs one cleanup transaction may visit.
constexpr std::size_t kMaxRangesPerTransaction = 256;

// A row's payload size, wherever the payload lies (sqlite_schema.cpp, migration 3). length() of
// a blob column reads its size from the record header, not the payload's pages.
#define BLOB_PAYLOAD_SIZE "CASE segment WHEN 0 THEN length(payload) ELSE payload_size END"

void prepare_into(Database& db, const char* sql, Statement& out, Status& status) {
  if (!status) return;
  auto stmt = db.prepare(sql);
  if (!stmt) {
    status = stmt.error();
    return;
  }
  out = std::move(*stmt);
}

// Creates the database file 0600 before SQLite does (SQLite would use 0644); its -wal and -shm
// files copy the main file's mode. Buffered metadata is not secret, but no one else needs it.
Status create_private_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status(Code::kStorageError, "cannot create '" + path + "': " + std::strerror(errno));
  ::close(fd);
  return Status();
}

template <typename Fn>
void run_completion(Fn&& fn) noexcept {
  try {
    fn();
  } catch (const std::exception& e) {
    spdlog::error("store: completion threw: {}", e.what());
  } catch (...) {
    spdlog::error("store: completion threw");
  }
}

// A group as the writer sees it during one batch.
struct BatchGroup {
  std::int64_t ref = 0;          // 0: no row (and none may be made)
  std::int64_t max_cursor = 0;   // SQLite's (pending blobs are not in it)
  std::int64_t bytes_used = 0;   // the row's value, minus this batch's deletes
  Status refusal;                // set when the group cannot take writes (limits, key space)
};

}  // namespace

void complete(WriteOp& op) {
  std::visit(
      [](auto& o) {
        using T = std::decay_t<decltype(o)>;
        if (!o.done) return;
        run_completion([&] {
          if constexpr (std::is_same_v<T, PushOp> || std::is_same_v<T, DeleteOp>) {
            if (!o.result) o.result.emplace(Status(Code::kInternal, "write not executed"));
            o.done(std::move(*o.result));
          } else {
            o.done(std::move(o.result));
          }
        });
      },
      op);
}

void fail_op(WriteOp& op, const Status& status) {
  std::visit(
      [&](auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, PushOp> || std::is_same_v<T, DeleteOp>) {
          o.result.emplace(status);
        } else {
          o.result = status;
        }
      },
      op);
  complete(op);
}


SqliteWriter::SqliteWriter() : s_(std::make_unique<Statements>()) {}
SqliteWriter::~SqliteWriter() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Database& SqliteWriter::db() noexcept { return s_->db; }

Result<std::unique_ptr<SqliteWriter>> SqliteWriter::open(const StoreOptions& options) {
  if (auto created = create_private_file(options.path); !created) return created;
  std::unique_ptr<SqliteWriter> writer(new SqliteWriter());
  // One relay per database: a second one would hand out the same cursors and append to the same
  // segments. SQLite's own locks serialise writes but cannot see the cursors held in memory.
  const std::string lock_path = options.path + "-lock";
  writer->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (writer->lock_fd_ < 0) {
    return Status(Code::kStorageError, "cannot create '" + lock_path + "': " + std::strerror(errno));
  }
  if (::flock(writer->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Status(Code::kStorageError, "'" + options.path + "' is in use by another relay process on the same database");
  }
  auto db = Database::open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!db) return db.error();
  writer->options_ = options;
  writer->segment_files_ = std::make_shared<SegmentFiles>(options.path);
  // Without fdatasync there is no file size to commit per run of pushes, so nothing to gain.
  if (options.durability == Durability::kFull) {
    writer->spare_ = std::make_unique<SegmentSpare>(spare_segment_path_for(options.path),
                                                    options.journal_clear_bytes + options.journal_clear_bytes / 8);
  }
  Statements& s = *writer->s_;
  s.db = std::move(*db);
  Database& d = s.db;
  if (auto st = configure_writer(d, options.durability == Durability::kFull); !st) return st;
  if (auto st = migrate(d); !st) return st;
  if (options.max_page_count > 0) {
    if (auto st = d.exec("PRAGMA max_page_count = " + std::to_string(options.max_page_count)); !st) return st;
  }
  // The cleanup's work list lives in memory on this connection only.
  if (auto st = d.exec("PRAGMA temp_store = MEMORY"); !st) return st;
  if (auto st = d.exec("CREATE TEMP TABLE IF NOT EXISTS doomed (key INTEGER PRIMARY KEY, group_ref INTEGER NOT NULL, "
                       "size INTEGER NOT NULL, segment INTEGER NOT NULL)");
      !st) {
    return st;
  }

  Status st;
  prepare_into(d, "BEGIN IMMEDIATE", s.begin, st);
  prepare_into(d, "COMMIT", s.commit, st);
  prepare_into(d, "SELECT id, max_cursor, bytes_used FROM groups WHERE group_id = ?1", s.select_group, st);
  prepare_into(d, "INSERT INTO groups (group_id, created_at_ms) VALUES (?1, ?2)", s.insert_group, st);
  prepare_into(d,
               "INSERT INTO blobs (key, group_ref, blob_id, sender_id, timestamp_ms, expires_at_ms, payload, segment, "
               "segment_offset, payload_size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
               "ON CONFLICT (group_ref, blob_id) DO NOTHING",
               s.insert_blob, st);
  prepare_into(d, "SELECT key, timestamp_ms FROM blobs WHERE group_ref = ?1 AND blob_id = ?2", s.select_duplicate, st);
  // The last entry of the group's part of the UNIQUE(group_ref, blob_id) index: one seek.
  prepare_into(d, "SELECT max(blob_id) FROM blobs WHERE group_ref = ?1", s.select_max_blob_id, st);
  prepare_into(d,
               "UPDATE groups SET max_cursor = ?2, bytes_used = bytes_used + ?3, blob_count = blob_count + ?4 "
               "WHERE id = ?1",
               s.update_group, st);
  prepare_into(d, "SELECT 1 FROM devices WHERE group_ref = ?1 AND device_id = ?2", s.device_exists, st);
  prepare_into(d, "SELECT count(*) FROM devices WHERE group_ref = ?1", s.count_devices, st);
  prepare_into(d,
               "INSERT INTO devices (group_ref, device_id, name, first_seen_ms, last_seen_ms) "
               "VALUES (?1, ?2, coalesce(?3, ''), ?4, ?4) "
               "ON CONFLICT (group_ref, device_id) DO UPDATE SET name = coalesce(?3, name), "
               "last_seen_ms = max(last_seen_ms, ?4)",
               s.upsert_device, st);
  prepare_into(d,
               "UPDATE devices SET acked_cursor = max(acked_cursor, ?3), last_seen_ms = max(last_seen_ms, ?4) "
               "WHERE group_ref = ?1 AND device_id = ?2",
               s.ack_device, st);
  prepare_into(d,
               "SELECT key, sender_id, " BLOB_PAYLOAD_SIZE ", segment FROM blobs WHERE group_ref = ?1 AND blob_id = ?2",
               s.select_blob_owner, st);
  prepare_into(d, "DELETE FROM blobs WHERE key = ?1", s.delete_blob, st);
  prepare_into(d, "UPDATE groups SET bytes_used = bytes_used - ?2, blob_count = blob_count - ?3 WHERE id = ?1",
               s.subtract_group, st);
  prepare_into(d, "DELETE FROM temp.doomed", s.clear_doomed, st);
  prepare_into(d,
               "INSERT INTO temp.doomed (key, group_ref, size, segment) SELECT key, group_ref, " BLOB_PAYLOAD_SIZE
               ", segment FROM main.blobs WHERE expires_at_ms <= ?1 ORDER BY expires_at_ms LIMIT ?2",
               s.fill_expired, st);
  // A range of the packed key is a range of one group's cursors: a scan of the table b-tree.
  prepare_into(d,
               "INSERT INTO temp.doomed (key, group_ref, size, segment) SELECT key, group_ref, " BLOB_PAYLOAD_SIZE
               ", segment FROM main.blobs WHERE key > ?1 AND key <= ?2 ORDER BY key LIMIT ?3",
               s.fill_range, st);
  prepare_into(d, "SELECT count(*), coalesce(sum(size), 0) FROM temp.doomed", s.doomed_totals, st);
  prepare_into(d,
               "UPDATE groups SET bytes_used = bytes_used - t.bytes, blob_count = blob_count - t.n "
               "FROM (SELECT group_ref, sum(size) AS bytes, count(*) AS n FROM temp.doomed GROUP BY group_ref) AS t "
               "WHERE groups.id = t.group_ref",
               s.subtract_doomed, st);
  prepare_into(d,
               "UPDATE segments SET live_blobs = live_blobs - t.n, live_bytes = live_bytes - t.bytes "
               "FROM (SELECT segment, sum(size) AS bytes, count(*) AS n FROM temp.doomed WHERE segment <> 0 "
               "GROUP BY segment) AS t WHERE segments.number = t.segment",
               s.subtract_doomed_segments, st);
  prepare_into(d, "DELETE FROM main.blobs WHERE key IN (SELECT key FROM temp.doomed)", s.delete_doomed, st);
  prepare_into(d,
               "SELECT g.id, g.ack_dropped_through, min(d.acked_cursor) FROM main.groups AS g "
               "JOIN main.devices AS d ON d.group_ref = g.id WHERE d.revoked = 0 "
               "GROUP BY g.id HAVING min(d.acked_cursor) > g.ack_dropped_through LIMIT ?1",
               s.plan_acked, st);
  prepare_into(d, "UPDATE groups SET ack_dropped_through = max(ack_dropped_through, ?2) WHERE id = ?1",
               s.set_ack_dropped, st);
  // Revoked devices are kept forever: their row is what keeps refusing them.
  prepare_into(d,
               "DELETE FROM devices WHERE (group_ref, device_id) IN (SELECT group_ref, device_id FROM devices "
               "WHERE revoked = 0 AND last_seen_ms < ?1 LIMIT ?2)",
               s.delete_stale_devices, st);
  // Only groups that never stored a blob: a group with a used cursor must keep its row, or a later
  // push would hand out cursor 1 again.
  prepare_into(d,
               "DELETE FROM groups WHERE id IN (SELECT g.id FROM groups AS g WHERE g.max_cursor = 0 AND "
               "NOT EXISTS (SELECT 1 FROM devices AS d WHERE d.group_ref = g.id) LIMIT ?1)",
               s.delete_empty_groups, st);
  prepare_into(d,
               "INSERT INTO segments (number, live_blobs, live_bytes) VALUES (?1, ?2, ?3) ON CONFLICT (number) "
               "DO UPDATE SET live_blobs = live_blobs + ?2, live_bytes = live_bytes + ?3",
               s.add_to_segment, st);
  prepare_into(d, "UPDATE segments SET live_blobs = live_blobs - ?2, live_bytes = live_bytes - ?3 WHERE number = ?1",
               s.subtract_from_segment, st);
  prepare_into(d, "UPDATE meta SET value = ?1 WHERE key = 'replay_from'", s.set_replay_from, st);
  prepare_into(d, "SELECT number, live_blobs, live_bytes FROM segments WHERE number < ?1 ORDER BY number",
               s.select_segments, st);
  prepare_into(d, "DELETE FROM segments WHERE number = ?1", s.delete_segment, st);
  prepare_into(d,
               "SELECT key, blob_id, segment_offset, payload_size FROM blobs WHERE segment = ?1 ORDER BY segment_offset "
               "LIMIT ?2",
               s.select_segment_rows, st);
  prepare_into(d, "UPDATE blobs SET payload = ?2, segment = 0, segment_offset = 0, payload_size = 0 WHERE key = ?1",
               s.inline_payload, st);
  if (!st) return st;

  auto epoch = read_epoch(d);
  if (!epoch) return epoch.error();
  writer->epoch_ = *epoch;
  if (auto replayed = writer->replay_journal(); !replayed) return replayed;
  writer->journal_bytes_.store(writer->journal_->size_bytes(), std::memory_order_relaxed);

  auto groups = d.query_int64("SELECT count(*) FROM groups");
  if (!groups) return groups.error();
  auto bytes = d.query_int64("SELECT coalesce(sum(bytes_used), 0) FROM groups");
  if (!bytes) return bytes.error();
  writer->group_count_.store(static_cast<std::uint64_t>(std::max<std::int64_t>(0, *groups)));
  writer->total_bytes_.store(static_cast<std::uint64_t>(std::max<std::int64_t>(0, *bytes)));
  return writer;
}

void SqliteWriter::set_limits(const StoreLimits& limits) {
  std::lock_guard lock(limits_mutex_);
  limits_ = limits;
}

StoreLimits SqliteWriter::limits() const {
  std::lock_guard lock(limits_mutex_);
  return limits_;
}

void SqliteWriter::restart_checkpoint_if_due() {
  std::lock_guard sql(sql_mutex_);
  if (checkpointer_ != nullptr) checkpointer_->restart_if_due();
}

void SqliteWriter::checkpoint_truncate() {
  std::lock_guard sql(sql_mutex_);
  if (auto st = s_->db.exec("PRAGMA wal_checkpoint(TRUNCATE)"); !st) {
    spdlog::warn("store: final checkpoint failed: {}", st.message());
  }
}

// ---------------------------------------------------------------------------------------------
// Write batches

namespace {

class BatchRunner {
 public:
  BatchRunner(SqliteWriter::Statements& s, const StoreLimits& limits, std::uint64_t group_count,
              const PendingBlobs& pending)
      : s_(s), limits_(limits), group_count_(group_count), pending_(pending) {}

  // Ok after COMMIT; otherwise the error that fails every op (the caller rolls back).
  // Pushes never come here (they go through the journal).
  Status run(std::span<WriteOp> ops) {
    {
      StatementReset reset(s_.begin);
      if (int rc = s_.begin.step(); rc != SQLITE_DONE) return fail(rc, "begin");
    }
    for (WriteOp& op : ops) {
      Status st = std::visit([&](auto& o) { return apply(o); }, op);
      if (!st) return st;
    }
    StatementReset reset(s_.commit);
    if (int rc = s_.commit.step(); rc != SQLITE_DONE) return fail(rc, "commit");
    return Status::ok();
  }

  std::uint64_t new_groups() const noexcept { return new_groups_; }
  std::int64_t bytes_delta() const noexcept { return bytes_delta_; }

 private:
  Status fail(int rc, std::string_view what) { return s_.db.error(rc, what, write_failure_code(rc)); }

  // The group's state in this batch; creates its row when `create` (subject to max_groups).
  // nullptr (and ok) when the group has no row and none was to be made.
  Result<BatchGroup*> group(const GroupId& group_id, bool create, std::uint64_t now_ms) {
    if (auto it = groups_.find(group_id); it != groups_.end()) {
      if (it->second.ref == 0 && create && it->second.refusal.is_ok()) {
        // Looked up earlier without creating; fall through and create now.
      } else {
        return &it->second;
      }
    }
    BatchGroup g;
    {
      StatementReset reset(s_.select_group);
      s_.select_group.bind_blob(1, group_id.view());
      const int rc = s_.select_group.step();
      if (rc == SQLITE_ROW) {
        g.ref = s_.select_group.column_int64(0);
        g.max_cursor = s_.select_group.column_int64(1);
        g.bytes_used = s_.select_group.column_int64(2);
      } else if (rc != SQLITE_DONE) {
        return fail(rc, "group lookup");
      }
    }
    if (g.ref == 0 && !create) {
      groups_[group_id] = g;
      return static_cast<BatchGroup*>(nullptr);
    }
    if (g.ref == 0) {
      if (limits_.max_groups != 0 && group_count_ + new_groups_ >= limits_.max_groups) {
        g.refusal = Status(Code::kStorageFull, "the relay has reached its limit of " +
                                                   std::to_string(limits_.max_groups) + " groups");
      } else {
        StatementReset reset(s_.insert_group);
        s_.insert_group.bind_blob(1, group_id.view());
        s_.insert_group.bind_int64(2, to_sql_int(now_ms));
        if (int rc = s_.insert_group.step(); rc != SQLITE_DONE) return fail(rc, "insert group");
        g.ref = sqlite3_last_insert_rowid(s_.db.get());
        ++new_groups_;
      }
    }
    if (g.refusal.is_ok() && (g.ref <= 0 || g.ref > kMaxGroupRef)) {
      g.refusal = Status(Code::kStorageFull, "relay group table is full");
    }
    BatchGroup& stored = groups_[group_id];
    stored = std::move(g);
    return &stored;
  }

  Status apply(DeviceSeenOp& op) {
    auto found = group(op.group_id, /*create=*/true, op.now_ms);
    if (!found) return found.error();
    BatchGroup& g = **found;
    if (!g.refusal.is_ok()) {
      op.result = g.refusal;
      return Status::ok();
    }
    if (limits_.max_devices_per_group != 0) {
      bool exists = false;
      {
        StatementReset reset(s_.device_exists);
        s_.device_exists.bind_int64(1, g.ref);
        s_.device_exists.bind_blob(2, op.device_id.view());
        const int rc = s_.device_exists.step();
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail(rc, "device lookup");
        exists = rc == SQLITE_ROW;
      }
      if (!exists) {
        StatementReset reset(s_.count_devices);
        s_.count_devices.bind_int64(1, g.ref);
        const int rc = s_.count_devices.step();
        if (rc != SQLITE_ROW) return fail(rc == SQLITE_DONE ? SQLITE_INTERNAL : rc, "device count");
        if (s_.count_devices.column_int64(0) >= static_cast<std::int64_t>(limits_.max_devices_per_group)) {
          op.result = Status(Code::kGroupFull, "the group has reached its limit of " +
                                                   std::to_string(limits_.max_devices_per_group) + " devices");
          return Status::ok();
        }
      }
    }
    StatementReset reset(s_.upsert_device);
    s_.upsert_device.bind_int64(1, g.ref);
    s_.upsert_device.bind_blob(2, op.device_id.view());
    if (op.name) {
      sqlite3_bind_text(s_.upsert_device.get(), 3, op.name->data(), static_cast<int>(op.name->size()),
                        SQLITE_TRANSIENT);
    }  // unbound = NULL: keep the stored name
    s_.upsert_device.bind_int64(4, to_sql_int(op.now_ms));
    if (int rc = s_.upsert_device.step(); rc != SQLITE_DONE) return fail(rc, "record device");
    op.result = Status::ok();
    return Status::ok();
  }

  Status apply(AckOp& op) {
    auto found = group(op.group_id, /*create=*/false, op.now_ms);
    if (!found) return found.error();
    BatchGroup* g = *found;
    op.result = Status::ok();
    if (g == nullptr || g->ref == 0) return Status::ok();  // nothing stored for this group: nothing to ack
    // A device cannot acknowledge what the relay never assigned (pending blobs are assigned).
    const Cursor assigned = std::max<Cursor>(static_cast<Cursor>(g->max_cursor), pending_.summary(op.group_id).max_cursor);
    const Cursor acked = std::min<Cursor>(op.acked_cursor, assigned);
    StatementReset reset(s_.ack_device);
    s_.ack_device.bind_int64(1, g->ref);
    s_.ack_device.bind_blob(2, op.device_id.view());
    s_.ack_device.bind_int64(3, static_cast<std::int64_t>(acked));
    s_.ack_device.bind_int64(4, to_sql_int(op.now_ms));
    if (int rc = s_.ack_device.step(); rc != SQLITE_DONE) return fail(rc, "record ack");
    return Status::ok();
  }

  Status apply(DeleteOp& op) {
    const DeleteRequest& req = op.request;
    auto found = group(req.group_id, /*create=*/false, 0);
    if (!found) return found.error();
    BatchGroup* g = *found;
    if (g == nullptr || g->ref == 0) {
      op.result.emplace(DeleteResult{false});
      return Status::ok();
    }
    std::int64_t key = 0;
    std::int64_t size = 0;
    std::int64_t segment = 0;
    {
      StatementReset reset(s_.select_blob_owner);
      s_.select_blob_owner.bind_int64(1, g->ref);
      s_.select_blob_owner.bind_blob(2, req.blob_id.view());
      const int rc = s_.select_blob_owner.step();
      if (rc == SQLITE_DONE) {
        op.result.emplace(DeleteResult{false});
        return Status::ok();
      }
      if (rc != SQLITE_ROW) return fail(rc, "blob lookup");
      const ByteView sender = s_.select_blob_owner.column_blob(1);
      const bool own = sender.size() == DeviceId::kSize &&
                       std::equal(sender.begin(), sender.end(), req.requester.bytes().begin());
      if (!own && !req.may_delete_others) {
        op.result.emplace(Status(Code::kNotBlobOwner, "only the device that pushed a blob may delete it"));
        return Status::ok();
      }
      key = s_.select_blob_owner.column_int64(0);
      size = s_.select_blob_owner.column_int64(2);
      segment = s_.select_blob_owner.column_int64(3);
    }
    if (segment != 0) {
      StatementReset reset(s_.subtract_from_segment);
      s_.subtract_from_segment.bind_int64(1, segment);
      s_.subtract_from_segment.bind_int64(2, 1);
      s_.subtract_from_segment.bind_int64(3, size);
      if (int rc = s_.subtract_from_segment.step(); rc != SQLITE_DONE) return fail(rc, "update segment");
    }
    {
      StatementReset reset(s_.delete_blob);
      s_.delete_blob.bind_int64(1, key);
      if (int rc = s_.delete_blob.step(); rc != SQLITE_DONE) return fail(rc, "delete blob");
    }
    StatementReset reset(s_.subtract_group);
    s_.subtract_group.bind_int64(1, g->ref);
    s_.subtract_group.bind_int64(2, size);
    s_.subtract_group.bind_int64(3, 1);
    if (int rc = s_.subtract_group.step(); rc != SQLITE_DONE) return fail(rc, "update group");
    g->bytes_used -= size;
    bytes_delta_ -= size;
    op.result.emplace(DeleteResult{true});
    return Status::ok();
  }

  Status apply(PushOp& op) {
    op.result.emplace(Status(Code::kInternal, "push outside the journal"));
    return Status::ok();
  }

  SqliteWriter::Statements& s_;
  const StoreLimits limits_;
  const std::uint64_t group_count_;
  const PendingBlobs& pending_;
  std::unordered_map<GroupId, BatchGroup, FixedIdHash> groups_;
  std::uint64_t new_groups_ = 0;
  std::int64_t bytes_delta_ = 0;
};

}  // namespace

void SqliteWriter::write_batch(std::vector<WriteOp>& ops) {
  // Runs of consecutive pushes go to the journal, the other runs into one transaction each, in
  // order, so every op sees the ones submitted before it.
  std::size_t begin = 0;
  while (begin < ops.size()) {
    const bool pushes = std::holds_alternative<PushOp>(ops[begin]);
    std::size_t end = begin + 1;
    while (end < ops.size() && std::holds_alternative<PushOp>(ops[end]) == pushes) ++end;
    const std::span<WriteOp> run(ops.data() + begin, end - begin);
    if (pushes) {
      journal_pushes(run);
    } else {
      write_sql_batch(run);
    }
    begin = end;
  }
}

bool SqliteWriter::delete_needs_apply(std::span<WriteOp> ops) const {
  for (const WriteOp& op : ops) {
    const auto* del = std::get_if<DeleteOp>(&op);
    if (del != nullptr && pending_->find(del->request.group_id, del->request.blob_id)) return true;
  }
  return false;
}

void SqliteWriter::write_sql_batch(std::span<WriteOp> ops) {
  std::lock_guard journal_lock(journal_mutex_);
  std::lock_guard sql(sql_mutex_);
  // A DELETE of a blob still pending needs it in SQLite first.
  Status outcome = delete_needs_apply(ops) ? apply_pending_locked(/*everything=*/true, /*holding_journal=*/true)
                                           : Status::ok();
  BatchRunner runner(*s_, limits(), group_count(), *pending_);
  try {
    if (outcome) outcome = runner.run(ops);
  } catch (const std::exception& e) {  // allocation failure: fail the batch, keep the writer alive
    outcome = Status(Code::kInternal, std::string("write batch failed: ") + e.what());
  }
  if (outcome.is_ok()) {
    group_count_.fetch_add(runner.new_groups(), std::memory_order_relaxed);
    const std::int64_t total = static_cast<std::int64_t>(total_bytes()) + runner.bytes_delta();
    total_bytes_.store(static_cast<std::uint64_t>(std::max<std::int64_t>(0, total)), std::memory_order_relaxed);
    // A DELETE lowered some group's bytes: the cache reloads them.
    if (runner.bytes_delta() != 0) group_cache_.clear();
    return;
  }
  s_->db.rollback_if_open();
  spdlog::error("store: batch of {} write(s) rolled back: {}", ops.size(), outcome.message());
  for (WriteOp& op : ops) {
    std::visit(
        [&](auto& o) {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, PushOp> || std::is_same_v<T, DeleteOp>) {
            o.result.emplace(outcome);
          } else {
            o.result = outcome;
          }
        },
        op);
  }
}

// ---------------------------------------------------------------------------------------------
// Cleanup

namespace {

// Moves the rows collected in temp.doomed out of blobs and out of their groups' counts.
// Runs inside the caller's transaction. Returns (blobs, bytes) removed.
Result<std::pair<std::int64_t, std::int64_t>> remove_doomed(SqliteWriter::Statements& s) {
  std::int64_t n = 0;
  std::int64_t bytes = 0;
  {
    StatementReset reset(s.doomed_totals);
    const int rc = s.doomed_totals.step();
    if (rc != SQLITE_ROW) return s.db.error(rc == SQLITE_DONE ? SQLITE_INTERNAL : rc, "cleanup totals", write_failure_code(rc));
    n = s.doomed_totals.column_int64(0);
    bytes = s.doomed_totals.column_int64(1);
  }
  if (n == 0) return std::pair{n, bytes};
  for (Statement* stmt : {&s.subtract_doomed, &s.subtract_doomed_segments, &s.delete_doomed, &s.clear_doomed}) {
    StatementReset reset(*stmt);
    if (int rc = stmt->step(); rc != SQLITE_DONE) return s.db.error(rc, "cleanup delete", write_failure_code(rc));
  }
  return std::pair{n, bytes};
}

}  // namespace

bool SqliteWriter::cleanup_step(CleanupJob& job, Status& status) {
  // One step at a time holds both locks: no apply runs in between (expired pending blobs are
  // removed from memory here, so none may be in an apply's snapshot).
  std::lock_guard journal_lock(journal_mutex_);
  std::lock_guard sql(sql_mutex_);
  // Cleanup works on SQLite: pending blobs join it first. If that fails (a full disk), cleanup
  // goes on anyway, since what it removes is how space comes back.
  if (!pending_->empty()) (void)apply_pending_locked(/*everything=*/true, /*holding_journal=*/true);
  // Cleanup changes groups' byte counts: the cache reloads them.
  group_cache_.clear();
  Statements& s = *s_;
  const std::int64_t batch = static_cast<std::int64_t>(std::max<std::size_t>(1, options_.cleanup_batch));
  using Phase = CleanupJob::Phase;

  // One transaction collecting up to `batch` rows into temp.doomed through `fill`, then removing them.
  auto transaction = [&](auto fill) -> Result<std::pair<std::int64_t, std::int64_t>> {
    {
      StatementReset reset(s.begin);
      if (int rc = s.begin.step(); rc != SQLITE_DONE) return s.db.error(rc, "cleanup begin", write_failure_code(rc));
    }
    ++job.report.transactions;
    {
      StatementReset reset(s.clear_doomed);
      if (int rc = s.clear_doomed.step(); rc != SQLITE_DONE) {
        s.db.rollback_if_open();
        return s.db.error(rc, "cleanup clear", write_failure_code(rc));
      }
    }
    if (Status st = fill(); !st) {
      s.db.rollback_if_open();
      return st;
    }
    auto removed = remove_doomed(s);
    if (!removed) {
      s.db.rollback_if_open();
      return removed.error();
    }
    StatementReset reset(s.commit);
    if (int rc = s.commit.step(); rc != SQLITE_DONE) {
      s.db.rollback_if_open();
      return s.db.error(rc, "cleanup commit", write_failure_code(rc));
    }
    const std::int64_t total = static_cast<std::int64_t>(total_bytes()) - removed->second;
    total_bytes_.store(static_cast<std::uint64_t>(std::max<std::int64_t>(0, total)), std::memory_order_relaxed);
    job.report.bytes_removed += static_cast<std::uint64_t>(removed->second);
    return removed;
  };

  try {
    switch (job.phase) {
      case Phase::kExpired: {
        // Expired blobs that never reached SQLite go from memory; their journal records are
        // skipped by a replay, which drops what expired (store/sqlite_writer_journal.cpp).
        const auto [pending_blobs, pending_bytes] = pending_->remove_expired(job.request.now_ms);
        job.report.expired_removed += pending_blobs;
        job.report.bytes_removed += pending_bytes;
        total_bytes_.fetch_sub(std::min(pending_bytes, total_bytes()), std::memory_order_relaxed);
        auto removed = transaction([&]() -> Status {
          StatementReset reset(s.fill_expired);
          s.fill_expired.bind_int64(1, to_sql_int(job.request.now_ms));
          s.fill_expired.bind_int64(2, batch);
          if (int rc = s.fill_expired.step(); rc != SQLITE_DONE) {
            return s.db.error(rc, "cleanup: expired", write_failure_code(rc));
          }
          return Status::ok();
        });
        if (!removed) {
          status = removed.error();
          return true;
        }
        job.report.expired_removed += static_cast<std::uint64_t>(removed->first);
        if (removed->first < batch) {
          // Blobs that could not be applied before this pass may fit now: one more pass, which
          // applies them first, so expired ones among them go too.
          if (!pending_->empty() && !job.expired_retried) {
            job.expired_retried = true;
          } else {
            job.phase = Phase::kStaleDevices;
          }
        }
        return false;
      }
      case Phase::kStaleDevices:
      case Phase::kEmptyGroups: {
        const bool devices = job.phase == Phase::kStaleDevices;
        if (devices && (job.request.device_retention_ms == 0 || job.request.device_retention_ms >= job.request.now_ms)) {
          job.phase = job.request.drop_acked ? Phase::kPlanAcked : Phase::kVacuum;
          return false;
        }
        // A group whose only blobs are still pending has max_cursor 0 in SQLite: not empty.
        if (!devices && !pending_->empty()) {
          job.phase = job.request.drop_acked ? Phase::kPlanAcked : Phase::kVacuum;
          return false;
        }
        Statement& stmt = devices ? s.delete_stale_devices : s.delete_empty_groups;
        {
          StatementReset reset(s.begin);
          if (int rc = s.begin.step(); rc != SQLITE_DONE) {
            status = s.db.error(rc, "cleanup begin", write_failure_code(rc));
            return true;
          }
        }
        ++job.report.transactions;
        {
          StatementReset reset(stmt);
          if (devices) {
            stmt.bind_int64(1, to_sql_int(job.request.now_ms - job.request.device_retention_ms));
            stmt.bind_int64(2, batch);
          } else {
            stmt.bind_int64(1, batch);
          }
          if (int rc = stmt.step(); rc != SQLITE_DONE) {
            s.db.rollback_if_open();
            status = s.db.error(rc, devices ? "cleanup: devices" : "cleanup: groups", write_failure_code(rc));
            return true;
          }
        }
        const auto removed = static_cast<std::int64_t>(sqlite3_changes(s.db.get()));
        {
          StatementReset reset(s.commit);
          if (int rc = s.commit.step(); rc != SQLITE_DONE) {
            s.db.rollback_if_open();
            status = s.db.error(rc, "cleanup commit", write_failure_code(rc));
            return true;
          }
        }
        if (devices) {
          job.report.devices_removed += static_cast<std::uint64_t>(removed);
        } else {
          job.report.groups_removed += static_cast<std::uint64_t>(removed);
          const std::uint64_t count = group_count();
          group_count_.store(count - std::min<std::uint64_t>(count, static_cast<std::uint64_t>(removed)),
                             std::memory_order_relaxed);
        }
        if (removed < batch) {
          if (devices) {
            job.phase = Phase::kEmptyGroups;
          } else {
            job.phase = job.request.drop_acked ? Phase::kPlanAcked : Phase::kVacuum;
          }
        }
        return false;
      }
      case Phase::kPlanAcked: {
        job.ranges.clear();
        job.next_range = 0;
        StatementReset reset(s.plan_acked);
        s.plan_acked.bind_int64(1, kMaxAckRangesPerRun);
        int rc = SQLITE_ROW;
        while ((rc = s.plan_acked.step()) == SQLITE_ROW) {
          job.ranges.push_back(CleanupJob::AckRange{s.plan_acked.column_int64(0),
                                                    static_cast<Cursor>(s.plan_acked.column_int64(1)),
                                                    static_cast<Cursor>(s.plan_acked.column_int64(2))});
        }
        if (rc != SQLITE_DONE) {
          status = s.db.error(rc, "cleanup: plan acked", Code::kInternal);
          return true;
        }
        job.phase = job.ranges.empty() ? Phase::kVacuum : Phase::kAcked;
        return false;
      }
      case Phase::kAcked: {
        auto removed = transaction([&]() -> Status {
          std::int64_t left = batch;
          std::size_t visited = 0;
          while (job.next_range < job.ranges.size() && left > 0 && visited < kMaxRangesPerTransaction) {
            const auto& range = job.ranges[job.next_range];
            const auto to = static_cast<std::int64_t>(std::min<Cursor>(range.to, static_cast<Cursor>(kMaxCursor)));
            const auto from = static_cast<std::int64_t>(std::min<Cursor>(range.from, static_cast<Cursor>(to)));
            StatementReset reset(s.fill_range);
            s.fill_range.bind_int64(1, blob_key(range.group_ref, from));
            s.fill_range.bind_int64(2, blob_key(range.group_ref, to));
            s.fill_range.bind_int64(3, left);
            if (int rc = s.fill_range.step(); rc != SQLITE_DONE) {
              return s.db.error(rc, "cleanup: acked", write_failure_code(rc));
            }
            const auto got = static_cast<std::int64_t>(sqlite3_changes(s.db.get()));
            left -= got;
            ++visited;
            if (left > 0) {  // the whole range fit: the group is done up to its watermark
              StatementReset mark_reset(s.set_ack_dropped);
              s.set_ack_dropped.bind_int64(1, range.group_ref);
              s.set_ack_dropped.bind_int64(2, to);
              if (int rc = s.set_ack_dropped.step(); rc != SQLITE_DONE) {
                return s.db.error(rc, "cleanup: mark acked", write_failure_code(rc));
              }
              ++job.next_range;
            }
          }
          return Status::ok();
        });
        if (!removed) {
          status = removed.error();
          return true;
        }
        job.report.acked_removed += static_cast<std::uint64_t>(removed->first);
        if (job.next_range >= job.ranges.size()) job.phase = Phase::kVacuum;
        return false;
      }
      case Phase::kVacuum: {
        if (!job.segments_done) {
          ++job.report.transactions;
          auto more = segment_cleanup_step();
          if (!more) {
            status = more.error();
            return true;
          }
          job.segments_done = !*more;
          return false;
        }
        auto freelist = s.db.query_int64("PRAGMA freelist_count");
        if (!freelist) {
          status = Status(Code::kInternal, freelist.error().message());
          return true;
        }
        const auto free_pages = static_cast<std::uint64_t>(std::max<std::int64_t>(0, *freelist));
        // Done when nothing is free, or when the last step released nothing (never loop forever).
        if (free_pages == 0 || (job.last_freelist != 0 && free_pages >= job.last_freelist)) {
          job.phase = Phase::kCheckpoint;
          return false;
        }
        job.last_freelist = free_pages;
        ++job.report.transactions;
        if (auto st = s.db.exec("PRAGMA incremental_vacuum(" + std::to_string(std::max<std::uint32_t>(1, options_.vacuum_pages)) + ")");
            !st) {
          status = Status(Code::kInternal, st.message());
          return true;
        }
        auto after = s.db.query_int64("PRAGMA freelist_count");
        if (after && *after >= 0 && static_cast<std::uint64_t>(*after) < free_pages) {
          job.report.pages_released += free_pages - static_cast<std::uint64_t>(*after);
        }
        return false;
      }
      case Phase::kCheckpoint: {
        // PASSIVE: never waits for readers. When it copies the whole WAL it also truncates the
        // database file to its new, vacuumed size.
        if (checkpointer_ != nullptr) checkpointer_->checkpoint_on_writer(SQLITE_CHECKPOINT_PASSIVE);
        job.phase = Phase::kDone;
        return true;
      }
      case Phase::kDone:
        return true;
    }
  } catch (const std::exception& e) {
    s.db.rollback_if_open();
    status = Status(Code::kInternal, std::string("cleanup failed: ") + e.what());
    return true;
  }
  return true;
}

}  // namespace blindsync::relay::sqlite
