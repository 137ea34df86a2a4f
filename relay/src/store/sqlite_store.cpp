// SQLite implementation of the relay Store (store.h).
//
// Threads and connections:
// - One writer thread owns the only write connection and its prepared statements. submit_push()
//   appends to a queue (mutex + condition variable); the writer takes up to max_batch queued
//   pushes, writes them in ONE transaction (group commit: one fsync per batch with
//   synchronous=FULL), and runs their completions only after COMMIT returned.
// - pull(), max_cursor() and stats() run on read connections from a small pool guarded by a
//   mutex. In WAL mode readers never block the writer and see a consistent snapshot.
//
// A batch either commits whole or fails whole: on any SQLite error the transaction is rolled
// back and every push in it fails (STORAGE_FULL for a full disk, INTERNAL otherwise). Cursors are
// assigned from groups.max_cursor inside the same transaction, so a rolled-back batch consumes no
// cursor and the per-group sequence stays gap-free.
//
// Payload bytes are never logged.
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "store/sqlite_db.h"
#include "store/sqlite_schema.h"
#include "store/store.h"

namespace blindsync::relay {
namespace {

using sqlite::Database;
using sqlite::Statement;
using sqlite::StatementReset;

constexpr std::size_t kMaxIdleReaders = 8;

// SQLite integers are signed 64-bit; clamp so that a huge "never expires" value does not wrap
// into a negative (already expired) one.
std::int64_t to_sql_int(std::uint64_t value) noexcept {
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(value, kMax));
}

// The write connection and the statements the writer reuses for every batch.
struct WriterConnection {
  Database db;
  Statement begin;
  Statement commit;
  Statement select_group;
  Statement insert_group;
  Statement insert_blob;
  Statement select_duplicate;
  Statement update_group;
};

// A read connection and its statements.
struct ReaderConnection {
  Database db;
  Statement begin;
  Statement commit;
  Statement select_group;
  Statement select_blobs;
  Statement select_stats;
};

// Prepares `sql` into `out`, keeping the first failure in `status`.
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

Result<std::unique_ptr<WriterConnection>> open_writer(const StoreOptions& options) {
  if (!options.path.empty()) {
    if (auto created = create_private_file(options.path); !created) return created;
  }
  auto db = Database::open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!db) return db.error();
  auto conn = std::make_unique<WriterConnection>();
  conn->db = std::move(*db);
  if (auto st = sqlite::configure_writer(conn->db, options.durability == Durability::kFull); !st) return st;
  if (auto st = sqlite::migrate(conn->db); !st) return st;

  Status st;
  Database& d = conn->db;
  prepare_into(d, "BEGIN IMMEDIATE", conn->begin, st);
  prepare_into(d, "COMMIT", conn->commit, st);
  prepare_into(d, "SELECT id, max_cursor FROM groups WHERE group_id = ?1", conn->select_group, st);
  prepare_into(d, "INSERT INTO groups (group_id, created_at_ms) VALUES (?1, ?2)", conn->insert_group, st);
  prepare_into(d,
               "INSERT INTO blobs (key, group_ref, blob_id, sender_id, timestamp_ms, expires_at_ms, payload) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (group_ref, blob_id) DO NOTHING",
               conn->insert_blob, st);
  prepare_into(d, "SELECT key, timestamp_ms FROM blobs WHERE group_ref = ?1 AND blob_id = ?2",
               conn->select_duplicate, st);
  prepare_into(d,
               "UPDATE groups SET max_cursor = ?2, bytes_used = bytes_used + ?3, blob_count = blob_count + ?4 "
               "WHERE id = ?1",
               conn->update_group, st);
  if (!st) return st;
  return conn;
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
               "SELECT key, blob_id, sender_id, timestamp_ms, payload FROM blobs "
               "WHERE key > ?1 AND key <= ?2 AND expires_at_ms > ?3 ORDER BY key LIMIT ?4",
               conn->select_blobs, st);
  prepare_into(d, "SELECT count(*), coalesce(sum(blob_count), 0), coalesce(sum(bytes_used), 0) FROM groups",
               conn->select_stats, st);
  if (!st) return st;
  return conn;
}

// A group as the writer sees it during one batch.
struct BatchGroup {
  std::int64_t ref = 0;
  std::int64_t max_cursor = 0;
  std::int64_t added_bytes = 0;
  std::int64_t added_blobs = 0;
  bool usable = true;  // false when its ref does not fit in a blob key
};

class SqliteStore final : public Store {
 public:
  SqliteStore(StoreOptions options, std::uint64_t epoch, std::unique_ptr<WriterConnection> writer,
              std::unique_ptr<ReaderConnection> first_reader)
      : options_(std::move(options)),
        max_batch_(std::max<std::size_t>(1, options_.max_batch)),
        epoch_(epoch),
        writer_(std::move(writer)) {
    idle_readers_.push_back(std::move(first_reader));
    thread_ = std::thread([this] { writer_loop(); });
  }

  ~SqliteStore() override { close(); }

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  std::uint64_t epoch() const override { return epoch_; }

  void submit_push(PushRequest request, PushCompletion done) override {
    {
      std::lock_guard lock(queue_mutex_);
      if (accepting_) {
        queue_.push_back(Pending{std::move(request), std::move(done)});
        queue_cv_.notify_one();
        return;
      }
    }
    // Closed: no writer thread is left to run the completion, so it runs here (outside the lock).
    if (done) done(Status(Code::kRelayShuttingDown, "store is closed"));
  }

  Result<PullPage> pull(const GroupId& group, Cursor after_cursor, std::uint32_t limit,
                        std::uint64_t now_ms) override {
    auto lease = acquire_reader();
    if (!lease) return lease.error();
    ReaderConnection& r = *lease->conn;

    // One read transaction, so max_cursor and the blobs come from the same snapshot.
    if (int rc = r.begin.step(); rc != SQLITE_DONE) {
      r.begin.reset();
      return r.db.error(rc, "pull: begin", Code::kInternal);
    }
    r.begin.reset();
    struct EndRead {
      ReaderConnection& r;
      ~EndRead() {
        r.select_group.reset();
        r.select_blobs.reset();
        r.commit.step();
        r.commit.reset();
        r.db.rollback_if_open();
      }
    } end_read{r};

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
    int rc = SQLITE_ROW;
    while ((rc = r.select_blobs.step()) == SQLITE_ROW) {
      if (page.blobs.size() == limit) {
        page.has_more = true;
        break;
      }
      PulledBlob blob;
      auto blob_id = BlobId::from_bytes(r.select_blobs.column_blob(1));
      auto sender = DeviceId::from_bytes(r.select_blobs.column_blob(2));
      if (!blob_id || !sender) return Status(Code::kInternal, "pull: malformed blob row");
      blob.blob_id = *blob_id;
      blob.sender_id = *sender;
      blob.cursor = sqlite::cursor_of_key(r.select_blobs.column_int64(0));
      blob.timestamp = static_cast<std::uint64_t>(r.select_blobs.column_int64(3));
      const ByteView payload = r.select_blobs.column_blob(4);
      blob.payload.assign(payload.begin(), payload.end());
      page.blobs.push_back(std::move(blob));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return r.db.error(rc, "pull: read blobs", Code::kInternal);
    return page;
  }

  Result<Cursor> max_cursor(const GroupId& group) override {
    auto lease = acquire_reader();
    if (!lease) return lease.error();
    ReaderConnection& r = *lease->conn;
    StatementReset reset(r.select_group);
    r.select_group.bind_blob(1, group.view());
    const int rc = r.select_group.step();
    if (rc == SQLITE_DONE) return Cursor{0};
    if (rc != SQLITE_ROW) return r.db.error(rc, "max_cursor", Code::kInternal);
    return static_cast<Cursor>(r.select_group.column_int64(1));
  }

  Result<StoreStats> stats() override {
    auto lease = acquire_reader();
    if (!lease) return lease.error();
    ReaderConnection& r = *lease->conn;
    StatementReset reset(r.select_stats);
    const int rc = r.select_stats.step();
    if (rc != SQLITE_ROW) return r.db.error(rc, "stats", Code::kInternal);
    StoreStats stats;
    stats.groups = static_cast<std::uint64_t>(r.select_stats.column_int64(0));
    stats.blobs = static_cast<std::uint64_t>(r.select_stats.column_int64(1));
    stats.bytes = static_cast<std::uint64_t>(r.select_stats.column_int64(2));
    return stats;
  }

  void close() override {
    std::lock_guard close_lock(close_mutex_);
    if (closed_) return;
    if (std::this_thread::get_id() == thread_.get_id()) {
      // A completion called close(): joining would deadlock. The contract forbids it.
      spdlog::critical("store: close() called from a push completion");
      std::abort();
    }
    {
      std::lock_guard lock(queue_mutex_);
      accepting_ = false;  // from now on submit_push fails with RELAY_SHUTTING_DOWN
      stopping_ = true;    // the writer exits once the queue is drained
    }
    queue_cv_.notify_all();
    if (thread_.joinable()) thread_.join();

    {
      std::lock_guard lock(pool_mutex_);
      pool_closed_ = true;  // readers still leased are closed when they come back
      idle_readers_.clear();
    }
    // Fold the WAL back into the main file so a backup of the .db alone is complete.
    if (auto st = writer_->db.exec("PRAGMA wal_checkpoint(TRUNCATE)"); !st) {
      spdlog::warn("store: final checkpoint failed: {}", st.message());
    }
    writer_.reset();
    closed_ = true;
  }

 private:
  struct Pending {
    PushRequest request;
    PushCompletion done;
  };

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

  void writer_loop() {
    std::vector<Pending> batch;
    std::vector<Result<PushResult>> results;
    for (;;) {
      batch.clear();
      {
        std::unique_lock lock(queue_mutex_);
        queue_cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
        if (queue_.empty()) return;  // stopping and drained
        const std::size_t n = std::min(queue_.size(), max_batch_);
        batch.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      results.clear();
      write_batch(batch, results);
      // Completions only after COMMIT (or rollback) and outside every lock.
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!batch[i].done) continue;
        try {
          batch[i].done(std::move(results[i]));
        } catch (const std::exception& e) {
          spdlog::error("store: push completion threw: {}", e.what());
        } catch (...) {
          spdlog::error("store: push completion threw");
        }
      }
    }
  }

  // Fills `results` with one entry per push of `batch`, in order.
  void write_batch(std::vector<Pending>& batch, std::vector<Result<PushResult>>& results) {
    Status outcome;
    try {
      outcome = try_write_batch(batch, results);
    } catch (const std::exception& e) {  // allocation failure: fail the batch, keep the writer alive
      outcome = Status(Code::kInternal, std::string("push batch failed: ") + e.what());
    }
    if (outcome.is_ok()) return;
    writer_->db.rollback_if_open();
    spdlog::error("store: batch of {} push(es) rolled back: {}", batch.size(), outcome.message());
    results.clear();
    for (std::size_t i = 0; i < batch.size(); ++i) results.emplace_back(outcome);
  }

  Status fail(int rc, std::string_view what) {
    return writer_->db.error(rc, what, sqlite::write_failure_code(rc));
  }

  // Runs the whole batch in one transaction. Returns ok after COMMIT; otherwise the error that
  // fails every push (the caller rolls back). Per-push refusals that do not touch the database
  // (a group whose cursor space is exhausted) are results, not batch failures.
  Status try_write_batch(std::vector<Pending>& batch, std::vector<Result<PushResult>>& results) {
    WriterConnection& w = *writer_;
    {
      StatementReset reset(w.begin);
      if (int rc = w.begin.step(); rc != SQLITE_DONE) return fail(rc, "begin");
    }
    std::unordered_map<GroupId, BatchGroup, FixedIdHash> groups;
    results.reserve(batch.size());
    for (Pending& pending : batch) {
      const PushRequest& req = pending.request;
      auto found = groups.find(req.group_id);
      if (found == groups.end()) {
        auto loaded = load_group(req.group_id, req.timestamp_ms);
        if (!loaded) return loaded.error();
        found = groups.emplace(req.group_id, *loaded).first;
      }
      BatchGroup& group = found->second;
      if (!group.usable) {
        results.emplace_back(Status(Code::kStorageFull, "relay group table is full"));
        continue;
      }
      if (group.max_cursor >= sqlite::kMaxCursor) {
        results.emplace_back(Status(Code::kStorageFull, "group cursor space exhausted"));
        continue;
      }
      const std::int64_t cursor = group.max_cursor + 1;
      {
        StatementReset reset(w.insert_blob);
        w.insert_blob.bind_int64(1, sqlite::blob_key(group.ref, cursor));
        w.insert_blob.bind_int64(2, group.ref);
        w.insert_blob.bind_blob(3, req.blob_id.view());
        w.insert_blob.bind_blob(4, req.sender_id.view());
        w.insert_blob.bind_int64(5, to_sql_int(req.timestamp_ms));
        w.insert_blob.bind_int64(6, to_sql_int(req.expires_at_ms));
        if (int rc = w.insert_blob.bind_blob(7, req.payload); rc != SQLITE_OK) return fail(rc, "bind payload");
        if (int rc = w.insert_blob.step(); rc != SQLITE_DONE) return fail(rc, "insert blob");
      }
      if (sqlite3_changes(w.db.get()) == 1) {
        group.max_cursor = cursor;
        group.added_bytes += static_cast<std::int64_t>(req.payload.size());
        group.added_blobs += 1;
        results.emplace_back(PushResult{static_cast<Cursor>(cursor), req.timestamp_ms, false});
        continue;
      }
      // (group, blob_id) exists — committed earlier or inserted earlier in this very batch:
      // answer with the original cursor and timestamp.
      StatementReset reset(w.select_duplicate);
      w.select_duplicate.bind_int64(1, group.ref);
      w.select_duplicate.bind_blob(2, req.blob_id.view());
      const int rc = w.select_duplicate.step();
      if (rc != SQLITE_ROW) return fail(rc == SQLITE_DONE ? SQLITE_INTERNAL : rc, "duplicate lookup");
      results.emplace_back(PushResult{sqlite::cursor_of_key(w.select_duplicate.column_int64(0)),
                                      static_cast<std::uint64_t>(w.select_duplicate.column_int64(1)), true});
    }
    for (const auto& [id, group] : groups) {
      if (group.added_blobs == 0) continue;
      StatementReset reset(w.update_group);
      w.update_group.bind_int64(1, group.ref);
      w.update_group.bind_int64(2, group.max_cursor);
      w.update_group.bind_int64(3, group.added_bytes);
      w.update_group.bind_int64(4, group.added_blobs);
      if (int rc = w.update_group.step(); rc != SQLITE_DONE) return fail(rc, "update group");
    }
    StatementReset reset(w.commit);
    if (int rc = w.commit.step(); rc != SQLITE_DONE) return fail(rc, "commit");
    return Status::ok();
  }

  // Reads the group's row, creating it on first push. max_cursor is read inside the batch's
  // BEGIN IMMEDIATE transaction rather than cached across batches, so the assignment stays
  // correct even if another process (a second relay, an admin tool) wrote to the file.
  Result<BatchGroup> load_group(const GroupId& group_id, std::uint64_t now_ms) {
    WriterConnection& w = *writer_;
    BatchGroup group;
    {
      StatementReset reset(w.select_group);
      w.select_group.bind_blob(1, group_id.view());
      const int rc = w.select_group.step();
      if (rc == SQLITE_ROW) {
        group.ref = w.select_group.column_int64(0);
        group.max_cursor = w.select_group.column_int64(1);
      } else if (rc != SQLITE_DONE) {
        return fail(rc, "group lookup");
      }
    }
    if (group.ref == 0) {
      StatementReset reset(w.insert_group);
      w.insert_group.bind_blob(1, group_id.view());
      w.insert_group.bind_int64(2, to_sql_int(now_ms));
      if (int rc = w.insert_group.step(); rc != SQLITE_DONE) return fail(rc, "insert group");
      group.ref = sqlite3_last_insert_rowid(w.db.get());
    }
    group.usable = group.ref > 0 && group.ref <= sqlite::kMaxGroupRef;
    return group;
  }

  const StoreOptions options_;
  const std::size_t max_batch_;
  const std::uint64_t epoch_;

  std::unique_ptr<WriterConnection> writer_;  // used only by the writer thread, then by close()
  std::thread thread_;

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<Pending> queue_;
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
    auto writer = open_writer(options);
    if (!writer) return writer.error();
    auto epoch = sqlite::read_epoch((*writer)->db);
    if (!epoch) return epoch.error();
    // Open one reader now so a file readers cannot use fails at startup, not at the first PULL.
    auto reader = open_reader(options.path);
    if (!reader) return reader.error();
    std::unique_ptr<Store> store = std::make_unique<SqliteStore>(options, *epoch, std::move(*writer),
                                                                 std::move(*reader));
    return store;
  } catch (const std::exception& e) {  // std::thread or allocation failure
    return Status(Code::kStorageError, std::string("cannot start the store: ") + e.what());
  }
}

}  // namespace blindsync::relay
