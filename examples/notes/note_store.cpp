#include "note_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace notes {

using blindsync::Code;
using blindsync::Result;
using blindsync::Status;

namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS notes (
  note_id       TEXT PRIMARY KEY NOT NULL,
  title         TEXT NOT NULL,
  body          TEXT NOT NULL,
  hlc_wall_ms   INTEGER NOT NULL,
  hlc_counter   INTEGER NOT NULL,
  origin_device TEXT NOT NULL,
  deleted       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pending (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value INTEGER NOT NULL
);
)sql";

Status db_error(sqlite3* db, const std::string& what) {
  return Status(Code::kStorageError, what + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

// A prepared statement, finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const noexcept { return stmt_ != nullptr; }
  Stmt& bind(int index, const std::string& text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int index, std::int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  std::string text(int column) const {
    const auto* p = sqlite3_column_text(stmt_, column);
    return p == nullptr ? std::string()
                        : std::string(reinterpret_cast<const char*>(p),
                                      static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
  }
  std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

Status exec(sqlite3* db, const char* sql, const std::string& what) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return db_error(db, what);
  return Status::ok();
}

// BEGIN IMMEDIATE ... COMMIT; rolled back unless commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { begun_ = exec(db_, "BEGIN IMMEDIATE", "begin transaction"); }
  ~Transaction() {
    if (begun_.is_ok() && !committed_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  const Status& begun() const noexcept { return begun_; }
  Status commit() {
    Status done = exec(db_, "COMMIT", "commit");
    committed_ = done.is_ok();
    return done;
  }

 private:
  sqlite3* db_;
  Status begun_;
  bool committed_ = false;
};

Note note_from_row(const Stmt& row) {
  Note note;
  note.note_id = row.text(0);
  note.title = row.text(1);
  note.body = row.text(2);
  note.hlc = Hlc{static_cast<std::uint64_t>(row.integer(3)), static_cast<std::uint32_t>(row.integer(4)),
                 row.text(5)};
  note.deleted = row.integer(6) != 0;
  return note;
}

constexpr const char* kSelectNote =
    "SELECT note_id, title, body, hlc_wall_ms, hlc_counter, origin_device, deleted FROM notes";

Result<std::optional<Note>> select_note(sqlite3* db, const std::string& note_id) {
  Stmt stmt(db, (std::string(kSelectNote) + " WHERE note_id = ?1").c_str());
  if (!stmt.ok()) return db_error(db, "read note");
  stmt.bind(1, note_id);
  const int rc = stmt.step();
  if (rc == SQLITE_ROW) return std::optional<Note>(note_from_row(stmt));
  if (rc == SQLITE_DONE) return std::optional<Note>();
  return db_error(db, "read note");
}

Status write_note(sqlite3* db, const NoteOp& op) {
  Stmt stmt(db,
            "INSERT INTO notes (note_id, title, body, hlc_wall_ms, hlc_counter, origin_device, deleted) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (note_id) DO UPDATE SET title = excluded.title, "
            "body = excluded.body, hlc_wall_ms = excluded.hlc_wall_ms, hlc_counter = excluded.hlc_counter, "
            "origin_device = excluded.origin_device, deleted = excluded.deleted");
  if (!stmt.ok()) return db_error(db, "write note");
  stmt.bind(1, op.note_id)
      .bind(2, op.title)
      .bind(3, op.body)
      .bind(4, static_cast<std::int64_t>(op.hlc.wall_ms))
      .bind(5, static_cast<std::int64_t>(op.hlc.counter))
      .bind(6, op.hlc.device)
      .bind(7, std::int64_t{op.kind == OpKind::kDelete ? 1 : 0});
  if (stmt.step() != SQLITE_DONE) return db_error(db, "write note");
  return Status::ok();
}

Result<HlcClock> load_clock(sqlite3* db, const std::string& device) {
  Stmt stmt(db, "SELECT key, value FROM meta WHERE key IN ('hlc_wall_ms', 'hlc_counter')");
  if (!stmt.ok()) return db_error(db, "read clock");
  std::uint64_t wall = 0;
  std::uint32_t counter = 0;
  int rc = SQLITE_ROW;
  while ((rc = stmt.step()) == SQLITE_ROW) {
    if (stmt.text(0) == "hlc_wall_ms") {
      wall = static_cast<std::uint64_t>(stmt.integer(1));
    } else {
      counter = static_cast<std::uint32_t>(stmt.integer(1));
    }
  }
  if (rc != SQLITE_DONE) return db_error(db, "read clock");
  return HlcClock(device, wall, counter);
}

Status save_clock(sqlite3* db, const HlcClock& clock) {
  Stmt stmt(db,
            "INSERT INTO meta (key, value) VALUES ('hlc_wall_ms', ?1), ('hlc_counter', ?2) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  if (!stmt.ok()) return db_error(db, "save clock");
  stmt.bind(1, static_cast<std::int64_t>(clock.wall_ms()))
      .bind(2, static_cast<std::int64_t>(clock.counter()));
  if (stmt.step() != SQLITE_DONE) return db_error(db, "save clock");
  return Status::ok();
}

// Creates the file 0600 before SQLite opens it (SQLite gives its -wal/-shm files the same mode).
Status create_private_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status(Code::kIoError, "cannot create " + path + ": " + std::strerror(errno));
  ::close(fd);
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<NoteStore>> NoteStore::open(const std::string& path) {
  if (Status created = create_private_file(path); !created) return created;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    Status error = db_error(db, "open " + path);
    sqlite3_close(db);
    return error;
  }
  std::unique_ptr<NoteStore> store(new NoteStore(db));
  sqlite3_busy_timeout(db, 10'000);
  sqlite3_extended_result_codes(db, 1);
  if (Status s = exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON",
                      "configure " + path);
      !s) {
    return s;
  }
  Transaction tx(db);
  if (!tx.begun()) return tx.begun();
  std::int64_t found = 0;
  {
    Stmt version(db, "PRAGMA user_version");
    if (!version.ok() || version.step() != SQLITE_ROW) return db_error(db, "read schema version");
    found = version.integer(0);
  }
  if (found > kSchemaVersion) {
    return Status(Code::kUnsupportedVersion, path + " has schema version " + std::to_string(found) +
                                                 "; this blindsync-notes reads version " +
                                                 std::to_string(kSchemaVersion));
  }
  if (found < kSchemaVersion) {
    if (Status s = exec(db, kSchema, "create tables"); !s) return s;
    const std::string set_version = "PRAGMA user_version = " + std::to_string(kSchemaVersion);
    if (Status s = exec(db, set_version.c_str(), "set schema version"); !s) return s;
  }
  if (Status s = tx.commit(); !s) return s;
  return store;
}

NoteStore::~NoteStore() { sqlite3_close(db_); }

Result<NoteOp> NoteStore::local_edit(const std::string& device, NoteOp op, bool keep_title,
                                     std::uint64_t now_ms) {
  Transaction tx(db_);
  if (!tx.begun()) return tx.begun();
  auto current = select_note(db_, op.note_id);
  if (!current) return current.error();
  if (op.kind == OpKind::kDelete && (!*current || (*current)->deleted)) {
    return Status(Code::kNotFound, "there is no note '" + op.note_id + "'");
  }
  if (keep_title && *current && !(*current)->deleted) op.title = (*current)->title;
  auto clock = load_clock(db_, device);
  if (!clock) return clock.error();
  op.hlc = clock->tick(now_ms);
  // The stored version is behind the clock (merge() observes every version it stores), unless the
  // clock state was lost: an edit must never lose to the version it replaces.
  if (*current && op.hlc <= (*current)->hlc) {
    clock->observe((*current)->hlc, now_ms);
    op.hlc = clock->tick(now_ms);
  }
  auto payload = encode_note_op(op);
  if (!payload) return payload.error();
  if (Status s = write_note(db_, op); !s) return s;
  Stmt queue(db_, "INSERT INTO pending (payload) VALUES (?1)");
  if (!queue.ok()) return db_error(db_, "queue edit");
  queue.bind(1, *payload);
  if (queue.step() != SQLITE_DONE) return db_error(db_, "queue edit");
  if (Status s = save_clock(db_, *clock); !s) return s;
  if (Status s = tx.commit(); !s) return s;
  return op;
}

Result<NoteOp> NoteStore::put(const std::string& device, const std::string& note_id,
                              const std::optional<std::string>& title, const std::string& body,
                              std::uint64_t now_ms) {
  NoteOp op;
  op.kind = OpKind::kPut;
  op.note_id = note_id;
  op.title = title.value_or(std::string());
  op.body = body;
  return local_edit(device, std::move(op), !title.has_value(), now_ms);
}

Result<NoteOp> NoteStore::remove(const std::string& device, const std::string& note_id,
                                 std::uint64_t now_ms) {
  NoteOp op;
  op.kind = OpKind::kDelete;
  op.note_id = note_id;
  return local_edit(device, std::move(op), false, now_ms);
}

Result<MergeOutcome> NoteStore::merge(const NoteOp& op, std::uint64_t now_ms) {
  Transaction tx(db_);
  if (!tx.begun()) return tx.begun();
  auto clock = load_clock(db_, std::string());
  if (!clock) return clock.error();
  clock->observe(op.hlc, now_ms);
  if (Status s = save_clock(db_, *clock); !s) return s;
  auto current = select_note(db_, op.note_id);
  if (!current) return current.error();
  MergeOutcome outcome = MergeOutcome::kIgnored;
  if (!*current || op.hlc > (*current)->hlc) {
    NoteOp stored = op;
    if (stored.kind == OpKind::kDelete) {
      stored.title.clear();
      stored.body.clear();
    }
    if (Status s = write_note(db_, stored); !s) return s;
    outcome = MergeOutcome::kApplied;
  }
  if (Status s = tx.commit(); !s) return s;
  return outcome;
}

Result<std::optional<Note>> NoteStore::get(const std::string& note_id) { return select_note(db_, note_id); }

Result<std::vector<Note>> NoteStore::list(bool include_deleted) {
  Stmt stmt(db_,
            (std::string(kSelectNote) + (include_deleted ? "" : " WHERE deleted = 0") + " ORDER BY note_id")
                .c_str());
  if (!stmt.ok()) return db_error(db_, "list notes");
  std::vector<Note> out;
  int rc = SQLITE_ROW;
  while ((rc = stmt.step()) == SQLITE_ROW) out.push_back(note_from_row(stmt));
  if (rc != SQLITE_DONE) return db_error(db_, "list notes");
  return out;
}

Result<std::vector<PendingOp>> NoteStore::pending(std::size_t max) {
  Stmt stmt(db_, "SELECT seq, payload FROM pending ORDER BY seq LIMIT ?1");
  if (!stmt.ok()) return db_error(db_, "read pending edits");
  stmt.bind(1, static_cast<std::int64_t>(max));
  std::vector<PendingOp> out;
  int rc = SQLITE_ROW;
  while ((rc = stmt.step()) == SQLITE_ROW) out.push_back(PendingOp{stmt.integer(0), stmt.text(1)});
  if (rc != SQLITE_DONE) return db_error(db_, "read pending edits");
  return out;
}

Status NoteStore::drop_pending(std::int64_t seq) {
  Stmt stmt(db_, "DELETE FROM pending WHERE seq = ?1");
  if (!stmt.ok()) return db_error(db_, "drop pending edit");
  stmt.bind(1, seq);
  if (stmt.step() != SQLITE_DONE) return db_error(db_, "drop pending edit");
  return Status::ok();
}

Result<std::uint64_t> NoteStore::pending_count() {
  Stmt stmt(db_, "SELECT COUNT(*) FROM pending");
  if (!stmt.ok() || stmt.step() != SQLITE_ROW) return db_error(db_, "count pending edits");
  return static_cast<std::uint64_t>(stmt.integer(0));
}

}  // namespace notes
