// SQLite implementation of the relay Store (store.h).
//
// Threads and connections:
// - One writer thread runs the writes (SqliteWriter, sqlite_writer.h). The submit_* calls append
//   to a queue (mutex + condition variable); the writer takes up to max_batch queued writes: a run
//   of pushes goes to the push journal in one append (one fsync with durability full), other writes
//   run in ONE transaction; completions run only after that returned. A cleanup request waits in
//   its own queue; the writer advances it one short transaction at a time, between batches, so
//   pushes keep flowing while old blobs are removed.
// - An applier thread copies the journaled (pending) blobs into SQLite behind the acks, on the
//   same write connection under the writer's SQL lock: a push run needs that lock only on a
//   group-cache miss or a retry lookup, so acks do not wait for applies.
// - A checkpointer thread (WalCheckpointer, wal_checkpointer.h) copies the WAL into the database
//   file on its own connection, so the writer never pays for a checkpoint inside a push batch.
// - pull(), max_cursor(), stats(), session_start() and list_devices() run on read connections
//   from a small pool guarded by a mutex. In WAL mode readers never block the writer and see a
//   consistent snapshot.
//
// A batch either commits whole or fails whole: on any SQLite error the transaction is rolled
// back and every write in it fails (STORAGE_FULL for a full disk, INTERNAL otherwise). Cursors are
// assigned from groups.max_cursor inside the same transaction, so a rolled-back batch consumes no
// cursor and the per-group sequence stays gap-free.
//
// Payload bytes are never logged.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <limits>
#include <mutex>
#include <thread>
#include <utility>

#include "store/sqlite_db.h"
#include "store/sqlite_schema.h"
#include "store/segment_files.h"
#include "store/sqlite_writer.h"
#include "store/store.h"
#include "store/wal_checkpointer.h"
#include "thread_name.h"
#include "thread_priority.h"

namespace blindsync::relay {
namespace {

using sqlite::CleanupJob;
using sqlite::Database;
using sqlite::SqliteWriter;
using sqlite::Statement;
using sqlite::StatementReset;
using sqlite::WalCheckpointer;
using sqlite::WriteOp;
using sqlite::to_sql_int;

constexpr std::size_t kMaxIdleReaders = 8;
// Reads of a page whose segment was deleted under it (each from a newer snapshot).
constexpr int kPullAttempts = 3;


// A read connection and its statements.
struct ReaderConnection {
  Database db;
  Statement begin;
  Statement commit;
  Statement select_group;
  Statement select_blobs;
  Statement select_stats;
  Statement select_device;
  Statement count_devices;
  Statement list_devices;
};

void prepare_into(Database& db, const char* sql, Statement& out, Status& status) {
  if (!status) return;
  auto stmt = db.prepare(sql);
  if (!stmt) {
    status = stmt.error();
    return;
  }
  out = std::move(*stmt);
}

Result<std::unique_ptr<ReaderConnection>> open_reader(const std::string& path) {
  // No SQLITE_OPEN_CREATE: the writer created the file; a reader must never make a new one.
  auto db = Database::open(path, SQLITE_OPEN_READWRITE);
  if (!db) return db.error();
  auto conn = std::make_unique<ReaderConnection>();
  conn->db = std::move(*db);
  if (auto st = sqlite::configure_reader(conn->db); !st) return st;

  Status st;
  Database& d = conn->db;
  prepare_into(d, "BEGIN", conn->begin, st);
  prepare_into(d, "COMMIT", conn->commit, st);
  prepare_into(d, "SELECT id, max_cursor FROM groups WHERE group_id = ?1", conn->select_group, st);
  // Range scan of the table b-tree through the packed key; expired rows are filtered, not
  // counted against the limit. ?4 is limit + 1 so that has_more needs no second query.
  prepare_into(d,
               "SELECT key, blob_id, sender_id, timestamp_ms, payload, segment, segment_offset, payload_size FROM blobs "
               "WHERE key > ?1 AND key <= ?2 AND expires_at_ms > ?3 ORDER BY key LIMIT ?4",
               conn->select_blobs, st);
  prepare_into(d, "SELECT count(*), coalesce(sum(blob_count), 0), coalesce(sum(bytes_used), 0) FROM groups",
               conn->select_stats, st);
  prepare_into(d,
               "SELECT name, first_seen_ms, last_seen_ms, acked_cursor, revoked FROM devices "
               "WHERE group_ref = ?1 AND device_id = ?2",
               conn->select_device, st);
  prepare_into(d, "SELECT count(*) FROM devices WHERE group_ref = ?1", conn->count_devices, st);
  prepare_into(d,
               "SELECT device_id, name, first_seen_ms, last_seen_ms, acked_cursor, revoked FROM devices "
               "WHERE group_ref = ?1 ORDER BY first_seen_ms, device_id LIMIT ?2",
               conn->list_devices, st);
  if (!st) return st;
  return conn;
}

std::string column_text(const Statement& stmt, int index) {
  const unsigned char* text = sqlite3_column_text(stmt.get(), index);
  const int size = sqlite3_column_bytes(stmt.get(), index);
  if (text == nullptr || size <= 0) return {};
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}

// Runs one read transaction on `r`, so several statements see the same snapshot.
class ReadTransaction {
 public:
  explicit ReadTransaction(ReaderConnection& r) : r_(r) {}
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;
  Status begin() {
    const int rc = r_.begin.step();
    r_.begin.reset();
    if (rc != SQLITE_DONE) return r_.db.error(rc, "read: begin", Code::kInternal);
    return Status::ok();
  }
  ~ReadTransaction() {
    r_.commit.step();
    r_.commit.reset();
    r_.db.rollback_if_open();
  }

 private:
  ReaderConnection& r_;
};

struct CleanupOp {
  CleanupRequest request;
  CleanupCompletion done;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(StoreOptions options, std::uint64_t epoch, std::unique_ptr<SqliteWriter> writer,
              std::unique_ptr<WalCheckpointer> checkpointer, std::unique_ptr<ReaderConnection> first_reader)
      : options_(std::move(options)),
        max_batch_(std::max<std::size_t>(1, options_.max_batch)),
        epoch_(epoch),
        writer_(std::move(writer)),
        pending_(writer_->pending()),
        segment_files_(writer_->segment_files()),
        checkpointer_(std::move(checkpointer)) {
    idle_readers_.push_back(std::move(first_reader));
    checkpointer_->attach(writer_->db().get());
    writer_->set_checkpointer(checkpointer_.get());
    thread_ = std::thread([this] {
      name_this_thread("store-writer");
      writer_loop();
    });
    applier_ = std::thread([this] {
      name_this_thread("store-applier");
      lower_this_thread_priority();  // nothing acked waits for an apply (thread_priority.h)
      applier_loop();
    });
  }

  ~SqliteStore() override { close(); }

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  std::uint64_t epoch() const override { return epoch_; }

  void set_limits(const StoreLimits& limits) override { writer_->set_limits(limits); }

  void submit_push(PushRequest request, PushCompletion done) override {
    enqueue(sqlite::PushOp{std::move(request), std::move(done), std::nullopt});
  }

  void submit_device_seen(const GroupId& group, const DeviceId& device, std::optional<std::string> name,
                          std::uint64_t now_ms, StatusCompletion done) override {
    enqueue(sqlite::DeviceSeenOp{group, device, std::move(name), now_ms, std::move(done), Status::ok()});
  }

  void submit_ack(const GroupId& group, const DeviceId& device, Cursor acked_cursor, std::uint64_t now_ms,
                  StatusCompletion done) override {
    enqueue(sqlite::AckOp{group, device, acked_cursor, now_ms, std::move(done), Status::ok()});
  }

  void submit_delete(DeleteRequest request, DeleteCompletion done) override {
    enqueue(sqlite::DeleteOp{std::move(request), std::move(done), std::nullopt});
  }

  void submit_cleanup(CleanupRequest request, CleanupCompletion done) override {
    {
      std::lock_guard lock(queue_mutex_);
      if (accepting_) {
        cleanups_.push_back(CleanupOp{request, std::move(done)});
        queue_cv_.notify_one();
        return;
      }
    }
    if (done) done(Status(Code::kRelayShuttingDown, "store is closed"));
  }

  Result<PullPage> pull(const GroupId& group, Cursor after_cursor, std::uint32_t limit, std::uint64_t now_ms,
                        std::size_t max_bytes) override {
    // A segment deleted after this pull's snapshot was taken (cleanup moved or dropped its rows)
    // is NOT_FOUND: a newer snapshot no longer points there.
    for (int attempt = 1;; ++attempt) {
      auto page = pull_once(group, after_cursor, limit, now_ms, max_bytes);
      if (page || page.error().code() != Code::kNotFound || attempt == kPullAttempts) return page;
    }
  }

  Result<Cursor> max_cursor(const GroupId& group) override {
    auto lease = acquire_reader();
    if (!lease) return lease.error();
    ReaderConnection& r = *lease->conn;
    // Pending first, SQLite second (as in pull): an apply in between cannot hide the newest cursor.
    const Cursor tail_max = pending_->summary(group).max_cursor;
    StatementReset reset(r.select_group);
    r.select_group.bind_blob(1, group.view());
    const int rc = r.select_group.step();
    if (rc == SQLITE_DONE) return tail_max;
    if (rc != SQLITE_ROW) return r.db.error(rc, "max_cursor", Code::kInternal);
    return std::max(static_cast<Cursor>(r.select_group.column_int64(1)), tail_max);
  }

  Result<StoreStats> stats() override {
    auto lease = acquire_reader();
    if (!lease) return lease.error();
    ReaderConnection& r = *lease->conn;
    // With no apply between its commit and forgetting what it committed, and none starting while
    // the lock is held, SQLite and the pending blobs are read as one state: the counts are exact.
    auto guard = pending_->settled_lock();
    StatementReset reset(r.select_stats);
    const int rc = r.select_stats.step();
    if (rc != SQLITE_ROW) return r.db.error(rc, "stats", Code::kInternal);
    const sqlite::PendingTotals pending = pending_->totals_locked();
    StoreStats stats;
    stats.groups = static_cast<std::uint64_t>(r.select_stats.column_int64(0));
    stats.blobs = static_cast<std::uint64_t>(r.select_stats.column_int64(1)) + pending.blobs;
    stats.bytes = static_cast<std::uint64_t>(r.select_stats.column_int64(2)) + pending.bytes;
    guard.unlock();
    if (auto numbers = sqlite::list_segments(options_.path)) {
      for (const std::uint64_t n : *numbers) {
        std::error_code ec;  // a segment deleted since the listing counts as nothing
        const auto size = std::filesystem::file_size(sqlite::segment_path_for(options_.path, n), ec);
        if (ec) continue;
        ++stats.segment_files;
        stats.segment_bytes += size;
      }
    }
    return stats;
  }

  Result<SessionStart> session_start(const GroupId& group, const DeviceId& device) override {
    auto lease = acquire_reader();
    if (!lease) return lease.error();
    ReaderConnection& r = *lease->conn;
    const Cursor tail_max = pending_->summary(group).max_cursor;  // before SQLite: see max_cursor()
    ReadTransaction tx(r);
    if (auto st = tx.begin(); !st) return st;

    SessionStart start;
    std::int64_t ref = 0;
    {
      StatementReset reset(r.select_group);
      r.select_group.bind_blob(1, group.view());
      const int rc = r.select_group.step();
      if (rc == SQLITE_ROW) {
        ref = r.select_group.column_int64(0);
        start.group_exists = true;
        start.max_cursor = std::max(static_cast<Cursor>(r.select_group.column_int64(1)), tail_max);
      } else if (rc != SQLITE_DONE) {
        return r.db.error(rc, "session start: group", Code::kInternal);
      }
    }
    if (!start.group_exists) {
      start.group_count = writer_->group_count();
      return start;
    }
    {
      StatementReset reset(r.select_device);
      r.select_device.bind_int64(1, ref);
      r.select_device.bind_blob(2, device.view());
      const int rc = r.select_device.step();
      if (rc == SQLITE_ROW) {
        DeviceRecord record;
        record.device_id = device;
        record.name = column_text(r.select_device, 0);
        record.first_seen_ms = static_cast<std::uint64_t>(r.select_device.column_int64(1));
        record.last_seen_ms = static_cast<std::uint64_t>(r.select_device.column_int64(2));
        record.acked_cursor = static_cast<Cursor>(r.select_device.column_int64(3));
        record.revoked = r.select_device.column_int64(4) != 0;
        start.device = std::move(record);
        return start;
      }
      if (rc != SQLITE_DONE) return r.db.error(rc, "session start: device", Code::kInternal);
    }
    StatementReset reset(r.count_devices);
    r.count_devices.bind_int64(1, ref);
    const int rc = r.count_devices.step();
    if (rc != SQLITE_ROW) return r.db.error(rc, "session start: device count", Code::kInternal);
    start.device_count = static_cast<std::uint64_t>(r.count_devices.column_int64(0));
    return start;
  }

  Result<std::vector<DeviceRecord>> list_devices(const GroupId& group, std::size_t max_devices) override {
    auto lease = acquire_reader();
    if (!lease) return lease.error();
    ReaderConnection& r = *lease->conn;
    ReadTransaction tx(r);
    if (auto st = tx.begin(); !st) return st;
    std::vector<DeviceRecord> devices;
    std::int64_t ref = 0;
    {
      StatementReset reset(r.select_group);
      r.select_group.bind_blob(1, group.view());
      const int rc = r.select_group.step();
      if (rc == SQLITE_DONE) return devices;
      if (rc != SQLITE_ROW) return r.db.error(rc, "list devices: group", Code::kInternal);
      ref = r.select_group.column_int64(0);
    }
    StatementReset reset(r.list_devices);
    r.list_devices.bind_int64(1, ref);
    r.list_devices.bind_int64(2, to_sql_int(max_devices));
    int rc = SQLITE_ROW;
    while ((rc = r.list_devices.step()) == SQLITE_ROW) {
      auto id = DeviceId::from_bytes(r.list_devices.column_blob(0));
      if (!id) return Status(Code::kInternal, "list devices: malformed device row");
      DeviceRecord record;
      record.device_id = *id;
      record.name = column_text(r.list_devices, 1);
      record.first_seen_ms = static_cast<std::uint64_t>(r.list_devices.column_int64(2));
      record.last_seen_ms = static_cast<std::uint64_t>(r.list_devices.column_int64(3));
      record.acked_cursor = static_cast<Cursor>(r.list_devices.column_int64(4));
      record.revoked = r.list_devices.column_int64(5) != 0;
      devices.push_back(std::move(record));
    }
    if (rc != SQLITE_DONE) return r.db.error(rc, "list devices", Code::kInternal);
    return devices;
  }

  void close() override {
    std::lock_guard close_lock(close_mutex_);
    if (closed_) return;
    if (std::this_thread::get_id() == thread_.get_id()) {
      // A completion called close(): joining would deadlock. The contract forbids it.
      spdlog::critical("store: close() called from a completion");
      std::abort();
    }
    {
      std::lock_guard lock(queue_mutex_);
      accepting_ = false;  // from now on submissions fail with RELAY_SHUTTING_DOWN
      stopping_ = true;    // the writer exits once the write queue is drained
    }
    queue_cv_.notify_all();
    if (thread_.joinable()) thread_.join();  // its last round applied everything and closed the journal
    {
      std::lock_guard lock(apply_mutex_);
      apply_stop_ = true;
    }
    apply_cv_.notify_one();
    if (applier_.joinable()) applier_.join();
    writer_->set_checkpointer(nullptr);
    checkpointer_->stop();

    {
      std::lock_guard lock(pool_mutex_);
      pool_closed_ = true;  // readers still leased are closed when they come back
      idle_readers_.clear();
    }
    // Fold the WAL back into the main file so a backup of the .db alone is complete.
    writer_->checkpoint_truncate();
    writer_.reset();
    closed_ = true;
  }

 private:
  // A read connection on loan; it goes back to the pool (or is closed) when the lease ends.
  struct Lease {
    SqliteStore* store = nullptr;
    std::unique_ptr<ReaderConnection> conn;
    Lease(SqliteStore* s, std::unique_ptr<ReaderConnection> c) : store(s), conn(std::move(c)) {}
    Lease(Lease&& other) noexcept : store(other.store), conn(std::move(other.conn)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn) store->release_reader(std::move(conn));
    }
  };

  void enqueue(WriteOp op) {
    {
      std::lock_guard lock(queue_mutex_);
      if (accepting_) {
        queue_.push_back(std::move(op));
        queue_cv_.notify_one();
        return;
      }
    }
    // Closed: no writer thread is left to run the completion, so it runs here (outside the lock).
    sqlite::fail_op(op, Status(Code::kRelayShuttingDown, "store is closed"));
  }

  Result<Lease> acquire_reader() {
    {
      std::lock_guard lock(pool_mutex_);
      if (pool_closed_) return Status(Code::kRelayShuttingDown, "store is closed");
      if (!idle_readers_.empty()) {
        auto conn = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return Lease(this, std::move(conn));
      }
    }
    // Every pooled connection is busy: open another one outside the lock.
    auto conn = open_reader(options_.path);
    if (!conn) return Status(Code::kInternal, "cannot open a read connection: " + conn.error().message());
    return Lease(this, std::move(*conn));
  }

  void release_reader(std::unique_ptr<ReaderConnection> conn) {
    std::unique_ptr<ReaderConnection> discard;  // closed outside the lock
    std::lock_guard lock(pool_mutex_);
    if (pool_closed_ || idle_readers_.size() >= kMaxIdleReaders) {
      discard = std::move(conn);
    } else {
      idle_readers_.push_back(std::move(conn));
    }
  }

  Result<PullPage> pull_once(const GroupId& group, Cursor after_cursor, std::uint32_t limit, std::uint64_t now_ms,
                             std::size_t max_bytes) {
    auto lease = acquire_reader();
    if (!lease) return lease.error();
    ReaderConnection& r = *lease->conn;

    // The pending blobs first, SQLite second: a blob applied in between is then in both (and
    // taken once), never in neither. limit + 1 so that has_more needs nothing else.
    const auto tail = pending_->collect(group, after_cursor, std::size_t{limit} + 1, now_ms);

    // One read transaction, so max_cursor and the blobs come from the same snapshot.
    ReadTransaction tx(r);
    if (auto st = tx.begin(); !st) return st;
    StatementReset group_reset(r.select_group);
    StatementReset blobs_reset(r.select_blobs);

    PullPage page;
    r.select_group.bind_blob(1, group.view());
    const int group_rc = r.select_group.step();
    if (group_rc == SQLITE_DONE) return page;  // unknown group: empty, max_cursor 0
    if (group_rc != SQLITE_ROW) return r.db.error(group_rc, "pull: group lookup", Code::kInternal);
    const std::int64_t ref = r.select_group.column_int64(0);
    page.max_cursor = static_cast<Cursor>(r.select_group.column_int64(1));
    if (after_cursor >= static_cast<Cursor>(sqlite::kMaxCursor)) return page;

    r.select_blobs.bind_int64(1, sqlite::blob_key(ref, static_cast<std::int64_t>(after_cursor)));
    r.select_blobs.bind_int64(2, sqlite::blob_key(ref, sqlite::kMaxCursor));
    r.select_blobs.bind_int64(3, to_sql_int(now_ms));
    r.select_blobs.bind_int64(4, static_cast<std::int64_t>(limit) + 1);
    page.blobs.reserve(std::min<std::size_t>(limit, 256));
    std::vector<sqlite::PayloadRead> reads;
    std::vector<std::size_t> read_blobs;  // the page's index of each read's blob
    std::size_t used = 0;
    int rc = SQLITE_ROW;
    while ((rc = r.select_blobs.step()) == SQLITE_ROW) {
      const ByteView inline_payload = r.select_blobs.column_blob(4);
      const std::int64_t segment = r.select_blobs.column_int64(5);
      const std::size_t size = segment == 0 ? inline_payload.size()
                                            : static_cast<std::size_t>(r.select_blobs.column_int64(7));
      if (!fits_in_page(page, limit, max_bytes, used, size)) break;
      PulledBlob blob;
      auto blob_id = BlobId::from_bytes(r.select_blobs.column_blob(1));
      auto sender = DeviceId::from_bytes(r.select_blobs.column_blob(2));
      if (!blob_id || !sender) return Status(Code::kInternal, "pull: malformed blob row");
      blob.blob_id = *blob_id;
      blob.sender_id = *sender;
      blob.cursor = sqlite::cursor_of_key(r.select_blobs.column_int64(0));
      blob.timestamp = static_cast<std::uint64_t>(r.select_blobs.column_int64(3));
      if (segment == 0) {
        blob.payload.assign(inline_payload.begin(), inline_payload.end());
      } else {
        reads.push_back(sqlite::PayloadRead{static_cast<std::uint64_t>(segment),
                                            static_cast<std::uint64_t>(r.select_blobs.column_int64(6)), size,
                                            *blob_id, nullptr});
        read_blobs.push_back(page.blobs.size());
      }
      page.blobs.push_back(std::move(blob));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return r.db.error(rc, "pull: read blobs", Code::kInternal);
    for (std::size_t i = 0; i < reads.size(); ++i) reads[i].out = &page.blobs[read_blobs[i]].payload;
    if (!reads.empty() && options_.before_segment_reads) options_.before_segment_reads();
    if (auto st = segment_files_->read(reads); !st) return st;
    page.max_cursor = std::max(page.max_cursor, tail.max_cursor);
    if (!page.has_more) append_pending(page, tail.blobs, limit, max_bytes, used);
    return page;
  }

  // Whether one more blob of `payload_bytes` fits the page (count and byte budget); if so its
  // cost is added to `used`, if not has_more is set. The byte budget never lets a page hold more
  // than max_bytes of payload (plus overhead), but at least one blob, so a page always makes
  // progress.
  static bool fits_in_page(PullPage& page, std::uint32_t limit, std::size_t max_bytes, std::size_t& used,
                           std::size_t payload_bytes) {
    const std::size_t cost = payload_bytes + kPulledBlobOverheadBytes;
    if (page.blobs.size() == limit || (!page.blobs.empty() && (cost > max_bytes || used > max_bytes - cost))) {
      page.has_more = true;
      return false;
    }
    used += cost;
    return true;
  }

  // Continues a page that SQLite did not fill with the pending blobs after its last cursor.
  static void append_pending(PullPage& page, const std::vector<sqlite::JournalRecord>& tail, std::uint32_t limit,
                             std::size_t max_bytes, std::size_t used) {
    const Cursor last = page.blobs.empty() ? 0 : page.blobs.back().cursor;
    for (const sqlite::JournalRecord& r : tail) {
      if (r.cursor <= last) continue;  // applied while we read: SQLite already gave it
      if (!fits_in_page(page, limit, max_bytes, used, r.payload->size())) return;
      PulledBlob blob;
      blob.blob_id = r.blob_id;
      blob.sender_id = r.sender_id;
      blob.cursor = r.cursor;
      blob.timestamp = r.timestamp_ms;
      blob.payload.assign(r.payload->begin(), r.payload->end());
      page.blobs.push_back(std::move(blob));
    }
  }

  static void finish_cleanup(CleanupJob& job, const Status& status) {
    Result<CleanupReport> result = status.is_ok() ? Result<CleanupReport>(job.report) : Result<CleanupReport>(status);
    for (auto& done : job.done) {
      if (!done) continue;
      try {
        done(result);
      } catch (...) {
        spdlog::error("store: cleanup completion threw");
      }
    }
    job.done.clear();
  }

  void writer_loop() {
    std::vector<WriteOp> batch;
    std::optional<CleanupJob> cleanup;
    const Status closing(Code::kRelayShuttingDown, "store is closing");
    for (;;) {
      batch.clear();
      bool stopping = false;
      bool last_round = false;
      {
        std::unique_lock lock(queue_mutex_);
        const auto has_work = [&] { return !queue_.empty() || stopping_ || !cleanups_.empty() || cleanup; };
        queue_cv_.wait(lock, has_work);
        const std::size_t n = std::min(queue_.size(), max_batch_);
        batch.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        stopping = stopping_;
        last_round = stopping_ && queue_.empty();  // close(): drain the writes, then leave
        if (!cleanup && !cleanups_.empty() && !stopping) {
          cleanup.emplace();
          cleanup->request = cleanups_.front().request;
          cleanup->done.push_back(std::move(cleanups_.front().done));
          cleanups_.pop_front();
        }
      }
      if (!batch.empty()) {
        const bool nothing_pending = pending_->empty();
        writer_->write_batch(batch);
        // Completions only after the journal write or COMMIT (or rollback), outside every lock.
        for (WriteOp& op : batch) sqlite::complete(op);
        // The applier sleeps until its deadline: wake it when that deadline is new, or when
        // enough is pending not to wait for it.
        if ((nothing_pending && !pending_->empty()) || writer_->apply_due(std::chrono::steady_clock::now())) {
          wake_applier();
        }
      }
      if (cleanup) {
        Status status;
        if (stopping) {
          finish_cleanup(*cleanup, closing);  // a closing relay does not start long work
          cleanup.reset();
        } else if (writer_->cleanup_step(*cleanup, status)) {
          // One cleanup transaction per round: pushes queued meanwhile go first next round.
          if (!status) spdlog::error("store: cleanup failed: {}", status.message());
          finish_cleanup(*cleanup, status);
          cleanup.reset();
        }
      }
      if (last_round) {
        writer_->close_journal();
        std::deque<CleanupOp> abandoned;
        {
          std::lock_guard lock(queue_mutex_);
          abandoned.swap(cleanups_);
        }
        for (auto& op : abandoned) {
          if (op.done) op.done(closing);
        }
        return;
      }
    }
  }

  void wake_applier() {
    {
      std::lock_guard lock(apply_mutex_);
      apply_wake_ = true;
    }
    apply_cv_.notify_one();
  }

  // Copies pending blobs into SQLite when they are due (enough of them, or the oldest waited
  // apply_delay_ms, or a failed apply's retry time came), until close().
  void applier_loop() {
    std::unique_lock lock(apply_mutex_);
    for (;;) {
      const auto woken = [&] { return apply_stop_ || apply_wake_; };
      if (const auto deadline = writer_->apply_deadline()) {
        apply_cv_.wait_until(lock, *deadline, woken);
      } else {
        apply_cv_.wait(lock, woken);
      }
      if (apply_stop_) return;
      apply_wake_ = false;
      lock.unlock();
      if (writer_->apply_due(std::chrono::steady_clock::now())) {
        (void)writer_->apply_pending(/*everything=*/false);
        writer_->restart_checkpoint_if_due();
      }
      lock.lock();
    }
  }

  const StoreOptions options_;
  const std::size_t max_batch_;
  const std::uint64_t epoch_;

  std::unique_ptr<SqliteWriter> writer_;  // used only by the writer thread, then by close()
  // Acknowledged blobs not yet in SQLite; every read merges them in.
  const std::shared_ptr<const sqlite::PendingBlobs> pending_;
  const std::shared_ptr<sqlite::SegmentFiles> segment_files_;
  std::unique_ptr<WalCheckpointer> checkpointer_;
  std::thread thread_;
  std::thread applier_;

  std::mutex apply_mutex_;
  std::condition_variable apply_cv_;
  bool apply_wake_ = false;
  bool apply_stop_ = false;

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<WriteOp> queue_;
  std::deque<CleanupOp> cleanups_;
  bool accepting_ = true;
  bool stopping_ = false;

  std::mutex pool_mutex_;
  std::vector<std::unique_ptr<ReaderConnection>> idle_readers_;
  bool pool_closed_ = false;

  std::mutex close_mutex_;
  bool closed_ = false;
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const StoreOptions& options) {
  if (options.path.empty()) return Status(Code::kInvalidArgument, "store path is empty");
  try {
    auto writer = SqliteWriter::open(options);
    if (!writer) return writer.error();
    auto epoch = sqlite::read_epoch((*writer)->db());
    if (!epoch) return epoch.error();
    // Open one reader now so a file readers cannot use fails at startup, not at the first PULL.
    auto reader = open_reader(options.path);
    if (!reader) return reader.error();
    sqlite::CheckpointOptions checkpoints;
    checkpoints.passive_frames = options.checkpoint_passive_pages;
    checkpoints.restart_frames = options.checkpoint_restart_pages;
    auto checkpointer = WalCheckpointer::open(options.path, options.durability == Durability::kFull, checkpoints);
    if (!checkpointer) return checkpointer.error();
    std::unique_ptr<Store> store = std::make_unique<SqliteStore>(options, *epoch, std::move(*writer),
                                                                 std::move(*checkpointer), std::move(*reader));
    return store;
  } catch (const std::exception& e) {  // std::thread or allocation failure
    return Status(Code::kStorageError, std::string("cannot start the store: ") + e.what());
  }
}

}  // namespace blindsync::relay
