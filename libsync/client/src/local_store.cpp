#include "local_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "blindsync/auth/identity.h"
#include "sqlite_statement.h"

namespace blindsync::client_detail {

Secret32::Secret32(Secret32&& other) noexcept : bytes_(other.bytes_) { auth::secure_wipe(other.bytes_); }
Secret32& Secret32::operator=(Secret32&& other) noexcept {
  if (this != &other) {
    bytes_ = other.bytes_;
    auth::secure_wipe(other.bytes_);
  }
  return *this;
}
Secret32::~Secret32() { auth::secure_wipe(bytes_); }

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

constexpr int kBusyTimeoutMs = 5000;

// is_seen for one blob, seen_among for a page (one prepared statement kept for both).
constexpr const char* kSelectSeen = "SELECT 1 FROM seen_blobs WHERE group_id = ? AND blob_id = ?";

// BEGIN (IMMEDIATE for a write) ... COMMIT; rolls back unless commit() succeeded.
class Transaction {
 public:
  // begin: "BEGIN IMMEDIATE" for a write (the write lock at once, so it never fails half-way
  // on a busy database), "BEGIN" for a read.
  explicit Transaction(sqlite3* db, const char* begin = "BEGIN IMMEDIATE") : db_(db) {
    active_ = sqlite3_exec(db_, begin, nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~Transaction() {
    if (active_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  bool active() const noexcept { return active_; }
  Status commit() {
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return sqlite_error(db_, "commit");
    active_ = false;
    return Status::ok();
  }

 private:
  sqlite3* db_;
  bool active_ = false;
};

// For a write whose loss in a power cut costs a repeat, never data: its commit is not fsynced.
// In WAL mode a commit with synchronous=NORMAL is still atomic and survives a crash of the
// process; only a power cut before the next synced commit (which syncs the whole WAL, this one
// included) can undo it. Declared before the Transaction, so that it outlives it: the setting
// may only change outside a transaction.
class UnsyncedCommit {
 public:
  explicit UnsyncedCommit(sqlite3* db) : db_(db) {
    sqlite3_exec(db_, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
  }
  ~UnsyncedCommit() {
    // Every other write must be synced again: were a transaction somehow still open (the setting
    // cannot change inside one), it is rolled back first.
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_exec(db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  }
  UnsyncedCommit(const UnsyncedCommit&) = delete;
  UnsyncedCommit& operator=(const UnsyncedCommit&) = delete;

 private:
  sqlite3* db_;
};

template <typename Id>
Result<Id> id_column(const Statement& stmt, int index) {
  auto id = Id::from_bytes(stmt.column_blob(index));
  if (!id) return Status(Code::kStorageError, "local store: corrupt row: " + id.error().message());
  return id;
}

// Creates the file 0600 (or tightens an existing one) so that SQLite never creates it with the
// process umask; SQLite then gives its -wal and -shm files the same mode.
Status prepare_store_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return Status(Code::kIoError, "cannot create store file " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  Status result;
  if (::fstat(fd, &st) != 0) {
    result = Status(Code::kIoError, "cannot stat " + path + ": " + std::strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    result = Status(Code::kInvalidArgument, path + " is not a regular file");
  } else if ((st.st_mode & 0777) != 0600 && ::fchmod(fd, 0600) != 0) {
    result = Status(Code::kIoError, "cannot chmod 0600 " + path + ": " + std::strerror(errno));
  }
  ::close(fd);
  return result;
}

Status prepare_home(const std::string& home_dir) {
  if (home_dir.empty()) return Status(Code::kInvalidArgument, "home directory must not be empty");
  std::error_code ec;
  const std::filesystem::path home(home_dir);
  if (std::filesystem::exists(home, ec)) {
    if (!std::filesystem::is_directory(home, ec)) {
      return Status(Code::kInvalidArgument, home_dir + " exists and is not a directory");
    }
    return Status::ok();
  }
  if (home.has_parent_path() && !home.parent_path().empty()) {
    std::filesystem::create_directories(home.parent_path(), ec);
    if (ec) return Status(Code::kIoError, "cannot create " + home.parent_path().string() + ": " + ec.message());
  }
  if (::mkdir(home_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status(Code::kIoError, "cannot create " + home_dir + ": " + std::strerror(errno));
  }
  // mkdir applies the umask, which may only remove bits; make the mode exact.
  if (::chmod(home_dir.c_str(), 0700) != 0) {
    return Status(Code::kIoError, "cannot chmod 0700 " + home_dir + ": " + std::strerror(errno));
  }
  return Status::ok();
}

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE identity (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seed BLOB NOT NULL CHECK (length(seed) = 32),
  name TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL
);
CREATE TABLE groups (
  group_id BLOB PRIMARY KEY CHECK (length(group_id) = 32),
  name TEXT NOT NULL,
  secret BLOB NOT NULL CHECK (length(secret) = 32),
  relay_url TEXT NOT NULL,
  relay_id BLOB NOT NULL CHECK (length(relay_id) = 32),
  created_at_ms INTEGER NOT NULL
);
CREATE TABLE cursors (
  group_id BLOB NOT NULL,
  relay_url TEXT NOT NULL,
  cursor INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  PRIMARY KEY (group_id, relay_url)
) WITHOUT ROWID;
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  group_id BLOB NOT NULL,
  blob_id BLOB NOT NULL CHECK (length(blob_id) = 16),
  payload BLOB NOT NULL,
  ttl_seconds INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  UNIQUE (group_id, blob_id)
);
CREATE TABLE seen_blobs (
  group_id BLOB NOT NULL,
  blob_id BLOB NOT NULL,
  cursor INTEGER NOT NULL,
  seen_at_ms INTEGER NOT NULL,
  PRIMARY KEY (group_id, blob_id)
) WITHOUT ROWID;
CREATE INDEX seen_blobs_by_time ON seen_blobs (seen_at_ms);
)sql";

// Version 2: several relays per group, and per-relay acks of outbox entries. Existing groups keep
// their one relay as the primary (position 0); nothing is dropped or recreated.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE group_relays (
  group_id BLOB NOT NULL,
  relay_url TEXT NOT NULL,
  relay_id BLOB NOT NULL CHECK (length(relay_id) = 32),
  position INTEGER NOT NULL,
  PRIMARY KEY (group_id, relay_url)
) WITHOUT ROWID;
INSERT INTO group_relays (group_id, relay_url, relay_id, position)
  SELECT group_id, relay_url, relay_id, 0 FROM groups;
CREATE TABLE outbox_acks (
  group_id BLOB NOT NULL,
  blob_id BLOB NOT NULL,
  relay_url TEXT NOT NULL,
  PRIMARY KEY (group_id, blob_id, relay_url)
) WITHOUT ROWID;
)sql";

// Version 3: giving up on relays that never take an entry. An entry remembers when its first relay
// acked it (entries acked before this migration count from the migration, so nothing is given up
// at once); outbox_acks rows with abandoned = 1 are relays given up for, not acks. The index
// makes the per-retry-round check one range scan of (group, first ack time).
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE outbox ADD COLUMN first_acked_at_ms INTEGER;
ALTER TABLE outbox_acks ADD COLUMN abandoned INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET first_acked_at_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000
  WHERE EXISTS (SELECT 1 FROM outbox_acks a WHERE a.group_id = outbox.group_id AND a.blob_id = outbox.blob_id);
CREATE INDEX outbox_by_first_ack ON outbox (group_id, first_acked_at_ms);
)sql";

}  // namespace

LocalStore::LocalStore(sqlite3* db, std::string path)
    : db_(db), statements_(std::make_unique<StatementCache>(db)), path_(std::move(path)) {}

LocalStore::~LocalStore() {
  statements_.reset();  // finalized before the connection closes
  sqlite3_close_v2(db_);
}

Result<std::unique_ptr<LocalStore>> LocalStore::open(const std::string& home_dir) {
  if (Status s = prepare_home(home_dir); !s) return s;
  const std::string path = (std::filesystem::path(home_dir) / kStoreFileName).string();
  if (Status s = prepare_store_file(path); !s) return s;

  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, nullptr);
  if (rc != SQLITE_OK) {
    Status error = sqlite_error(db, "opening " + path);
    sqlite3_close_v2(db);
    return error;
  }
  std::unique_ptr<LocalStore> store(new LocalStore(db, path));
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // WAL: readers do not block the writer; FULL: an acknowledged outbox write survives power loss;
  // secure_delete: a deleted group's secret is overwritten on disk rather than left in a free page.
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON",
                             "PRAGMA secure_delete=ON"}) {
    if (Status s = store->exec(pragma); !s) return s;
  }
  if (Status s = store->migrate(); !s) return s;
  return store;
}

Status LocalStore::exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    return Status(Code::kStorageError, std::string("local store: ") + text);
  }
  return Status::ok();
}

Status LocalStore::migrate() {
  Transaction tx(db_);
  if (!tx.active()) return sqlite_error(db_, "starting migration");
  Statement version_stmt(*statements_, "PRAGMA user_version");
  if (!version_stmt.ok() || version_stmt.step() != SQLITE_ROW) return sqlite_error(db_, "reading schema version");
  const std::int64_t version = version_stmt.column_int(0);
  if (version > kStoreSchemaVersion) {
    return Status(Code::kStorageError, "local store " + path_ + " has schema version " + std::to_string(version) +
                                           ", newer than this blindsync understands (" +
                                           std::to_string(kStoreSchemaVersion) + ")");
  }
  if (version < 1) {
    if (Status s = exec(kSchemaV1); !s) return s;
  }
  if (version < 2) {
    if (Status s = exec(kSchemaV2); !s) return s;
  }
  if (version < 3) {
    if (Status s = exec(kSchemaV3); !s) return s;
  }
  // Future migrations: if (version < 4) { ... } (append only; never edit one that shipped)
  if (version != kStoreSchemaVersion) {
    const std::string set = "PRAGMA user_version=" + std::to_string(kStoreSchemaVersion);
    if (Status s = exec(set.c_str()); !s) return s;
  }
  return tx.commit();
}

// ---- identity ----

Result<std::optional<IdentityRecord>> LocalStore::load_identity() {
  Statement stmt(*statements_, "SELECT seed, name FROM identity WHERE id = 1");
  if (!stmt.ok()) return stmt.prepare_status("identity query");
  const int rc = stmt.step();
  if (rc == SQLITE_DONE) return std::optional<IdentityRecord>();
  if (rc != SQLITE_ROW) return sqlite_error(db_, "reading identity");
  const ByteView seed = stmt.column_blob(0);
  if (seed.size() != 32) return Status(Code::kStorageError, "local store: corrupt identity seed");
  IdentityRecord record;
  std::copy(seed.begin(), seed.end(), record.seed.mutable_bytes().begin());
  record.name = stmt.column_text(1);
  return std::optional<IdentityRecord>(std::move(record));
}

Status LocalStore::save_identity(const Secret32& seed, const std::string& name) {
  Statement stmt(*statements_, "INSERT INTO identity (id, seed, name, created_at_ms) VALUES (1, ?, ?, ?)");
  if (!stmt.ok()) return stmt.prepare_status("identity insert");
  stmt.bind(1, ByteView(seed.bytes()));
  stmt.bind(2, name);
  stmt.bind(3, now_unix_ms());
  const int rc = stmt.step();
  if (rc == SQLITE_CONSTRAINT) return Status(Code::kAlreadyExists, "this home already has a device identity");
  if (rc != SQLITE_DONE) return sqlite_error(db_, "saving identity");
  return Status::ok();
}

// ---- groups ----

Status LocalStore::insert_group(const GroupRecord& group, const Secret32& secret,
                                const std::vector<GroupRelay>& more_relays) {
  Transaction tx(db_);
  if (!tx.active()) return sqlite_error(db_, "starting group transaction");
  {
    Statement stmt(*statements_,
                   "INSERT INTO groups (group_id, name, secret, relay_url, relay_id, created_at_ms) "
                   "VALUES (?, ?, ?, ?, ?, ?)");
    if (!stmt.ok()) return stmt.prepare_status("group insert");
    stmt.bind(1, group.group_id.view());
    stmt.bind(2, group.name);
    stmt.bind(3, ByteView(secret.bytes()));
    stmt.bind(4, group.relay_url);
    stmt.bind(5, group.relay_id.view());
    stmt.bind(6, now_unix_ms());
    const int rc = stmt.step();
    if (rc == SQLITE_CONSTRAINT) {
      return Status(Code::kAlreadyExists, "this device is already in group " + group.group_id.to_hex());
    }
    if (rc != SQLITE_DONE) return sqlite_error(db_, "saving group");
  }
  {
    Statement stmt(*statements_,
                   "INSERT OR IGNORE INTO group_relays (group_id, relay_url, relay_id, position) VALUES (?, ?, ?, ?)");
    if (!stmt.ok()) return stmt.prepare_status("group relay insert");
    std::int64_t position = 0;
    auto add = [&](const std::string& url, const RelayId& relay_id) -> Status {
      stmt.reset();
      stmt.bind(1, group.group_id.view());
      stmt.bind(2, url);
      stmt.bind(3, relay_id.view());
      stmt.bind(4, position++);
      if (stmt.step() != SQLITE_DONE) return sqlite_error(db_, "saving group relay");
      return Status::ok();
    };
    if (Status s = add(group.relay_url, group.relay_id); !s) return s;
    for (const auto& relay : more_relays) {
      if (Status s = add(relay.url, relay.relay_id); !s) return s;
    }
  }
  return tx.commit();
}

Result<std::vector<GroupRelay>> LocalStore::list_group_relays(const GroupId& group) {
  Statement stmt(*statements_, "SELECT relay_url, relay_id FROM group_relays WHERE group_id = ? ORDER BY position");
  if (!stmt.ok()) return stmt.prepare_status("group relay list");
  stmt.bind(1, group.view());
  std::vector<GroupRelay> relays;
  for (;;) {
    const int rc = stmt.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return sqlite_error(db_, "listing group relays");
    auto relay_id = id_column<RelayId>(stmt, 1);
    if (!relay_id) return relay_id.error();
    relays.push_back(GroupRelay{stmt.column_text(0), *relay_id});
  }
  return relays;
}

namespace {
Result<GroupRecord> group_from_row(const Statement& stmt) {
  GroupRecord record;
  auto group_id = id_column<GroupId>(stmt, 0);
  if (!group_id) return group_id.error();
  auto relay_id = id_column<RelayId>(stmt, 3);
  if (!relay_id) return relay_id.error();
  record.group_id = *group_id;
  record.name = stmt.column_text(1);
  record.relay_url = stmt.column_text(2);
  record.relay_id = *relay_id;
  return record;
}
}  // namespace

Result<std::vector<GroupRecord>> LocalStore::list_groups() {
  Statement stmt(*statements_, "SELECT group_id, name, relay_url, relay_id FROM groups ORDER BY created_at_ms, name");
  if (!stmt.ok()) return stmt.prepare_status("group list");
  std::vector<GroupRecord> groups;
  for (;;) {
    const int rc = stmt.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return sqlite_error(db_, "listing groups");
    auto record = group_from_row(stmt);
    if (!record) return record.error();
    groups.push_back(std::move(*record));
  }
  return groups;
}

Result<std::optional<GroupRecord>> LocalStore::load_group(const GroupId& group) {
  Statement stmt(*statements_, "SELECT group_id, name, relay_url, relay_id FROM groups WHERE group_id = ?");
  if (!stmt.ok()) return stmt.prepare_status("group query");
  stmt.bind(1, group.view());
  const int rc = stmt.step();
  if (rc == SQLITE_DONE) return std::optional<GroupRecord>();
  if (rc != SQLITE_ROW) return sqlite_error(db_, "reading group");
  auto record = group_from_row(stmt);
  if (!record) return record.error();
  return std::optional<GroupRecord>(std::move(*record));
}

Result<Secret32> LocalStore::load_group_secret(const GroupId& group) {
  Statement stmt(*statements_, "SELECT secret FROM groups WHERE group_id = ?");
  if (!stmt.ok()) return stmt.prepare_status("group secret query");
  stmt.bind(1, group.view());
  const int rc = stmt.step();
  if (rc == SQLITE_DONE) return Status(Code::kNotFound, "unknown group " + group.to_hex());
  if (rc != SQLITE_ROW) return sqlite_error(db_, "reading group secret");
  const ByteView secret = stmt.column_blob(0);
  if (secret.size() != 32) return Status(Code::kStorageError, "local store: corrupt group secret");
  Secret32 out;
  std::copy(secret.begin(), secret.end(), out.mutable_bytes().begin());
  return out;
}

// ---- cursors ----

Result<CursorRecord> LocalStore::load_cursor(const GroupId& group, const std::string& relay_url) {
  Statement stmt(*statements_, "SELECT cursor, epoch FROM cursors WHERE group_id = ? AND relay_url = ?");
  if (!stmt.ok()) return stmt.prepare_status("cursor query");
  stmt.bind(1, group.view());
  stmt.bind(2, relay_url);
  const int rc = stmt.step();
  if (rc == SQLITE_DONE) return CursorRecord{};
  if (rc != SQLITE_ROW) return sqlite_error(db_, "reading cursor");
  return CursorRecord{static_cast<Cursor>(stmt.column_int(0)), static_cast<std::uint64_t>(stmt.column_int(1))};
}

Status LocalStore::set_cursor_state(const GroupId& group, const std::string& relay_url, const CursorRecord& state) {
  Statement stmt(*statements_,
                 "INSERT INTO cursors (group_id, relay_url, cursor, epoch) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (group_id, relay_url) DO UPDATE SET cursor = excluded.cursor, epoch = excluded.epoch");
  if (!stmt.ok()) return stmt.prepare_status("cursor update");
  stmt.bind(1, group.view());
  stmt.bind(2, relay_url);
  // SQLite integers are signed 64-bit: the bit pattern round-trips through the casts.
  stmt.bind(3, static_cast<std::int64_t>(state.cursor));
  stmt.bind(4, static_cast<std::int64_t>(state.epoch));
  if (stmt.step() != SQLITE_DONE) return sqlite_error(db_, "saving cursor");
  return Status::ok();
}

Status LocalStore::advance_cursor(const GroupId& group, const std::string& relay_url, Cursor cursor,
                                  const std::vector<SeenBlob>& seen) {
  return commit_delivery(group, {RelayCursor{relay_url, cursor}}, seen);
}

Status LocalStore::commit_delivery(const GroupId& group, const std::vector<RelayCursor>& cursors,
                                   const std::vector<SeenBlob>& seen) {
  Transaction tx(db_);
  if (!tx.active()) return sqlite_error(db_, "starting cursor transaction");
  {
    Statement stmt(*statements_,
                   "INSERT OR IGNORE INTO seen_blobs (group_id, blob_id, cursor, seen_at_ms) VALUES (?, ?, ?, ?)");
    if (!stmt.ok()) return stmt.prepare_status("seen insert");
    const std::int64_t now = now_unix_ms();
    for (const auto& blob : seen) {
      stmt.reset();
      stmt.bind(1, group.view());
      stmt.bind(2, blob.blob_id.view());
      stmt.bind(3, static_cast<std::int64_t>(blob.cursor));
      stmt.bind(4, now);
      if (stmt.step() != SQLITE_DONE) return sqlite_error(db_, "recording seen blob");
    }
  }
  {
    // Forward only: a pull from an earlier `after` never moves the stored cursor back.
    Statement stmt(*statements_,
                   "INSERT INTO cursors (group_id, relay_url, cursor, epoch) VALUES (?1, ?2, ?3, 0) "
                   "ON CONFLICT (group_id, relay_url) DO UPDATE SET cursor = excluded.cursor "
                   "WHERE excluded.cursor > cursors.cursor");
    if (!stmt.ok()) return stmt.prepare_status("cursor advance");
    for (const auto& relay : cursors) {
      stmt.reset();
      stmt.bind(1, group.view());
      stmt.bind(2, relay.relay_url);
      stmt.bind(3, static_cast<std::int64_t>(relay.cursor));
      if (stmt.step() != SQLITE_DONE) return sqlite_error(db_, "advancing cursor");
    }
  }
  return tx.commit();
}

// ---- seen blobs ----

Result<bool> LocalStore::is_seen(const GroupId& group, const BlobId& blob) {
  Statement stmt(*statements_, kSelectSeen);
  if (!stmt.ok()) return stmt.prepare_status("seen query");
  stmt.bind(1, group.view());
  stmt.bind(2, blob.view());
  const int rc = stmt.step();
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_error(db_, "reading seen blobs");
}

Result<LocalStore::SeenSet> LocalStore::seen_among(const GroupId& group, std::span<const BlobId> blobs) {
  SeenSet seen;
  if (blobs.empty()) return seen;
  Transaction tx(db_, "BEGIN");
  if (!tx.active()) return sqlite_error(db_, "starting seen query");
  Statement stmt(*statements_, kSelectSeen);
  if (!stmt.ok()) return stmt.prepare_status("seen query");
  for (const BlobId& blob : blobs) {
    stmt.reset();
    stmt.bind(1, group.view());
    stmt.bind(2, blob.view());
    const int rc = stmt.step();
    if (rc == SQLITE_ROW) {
      seen.insert(blob);
    } else if (rc != SQLITE_DONE) {
      return sqlite_error(db_, "reading seen blobs");
    }
  }
  stmt.reset();  // no statement in progress when the read ends
  if (Status ended = tx.commit(); !ended) return ended;
  return seen;
}

Status LocalStore::prune_seen(std::int64_t cutoff_ms) {
  Statement stmt(*statements_, "DELETE FROM seen_blobs WHERE seen_at_ms < ?");
  if (!stmt.ok()) return stmt.prepare_status("seen prune");
  stmt.bind(1, cutoff_ms);
  if (stmt.step() != SQLITE_DONE) return sqlite_error(db_, "pruning seen blobs");
  return Status::ok();
}

// ---- outbox ----

Status LocalStore::outbox_add(const OutboxEntry& entry) {
  Statement stmt(*statements_,
                 "INSERT INTO outbox (group_id, blob_id, payload, ttl_seconds, created_at_ms) VALUES (?, ?, ?, ?, ?)");
  if (!stmt.ok()) return stmt.prepare_status("outbox insert");
  stmt.bind(1, entry.group_id.view());
  stmt.bind(2, entry.blob_id.view());
  stmt.bind(3, ByteView(entry.payload));
  stmt.bind(4, static_cast<std::int64_t>(entry.ttl_seconds));
  stmt.bind(5, entry.created_at_ms);
  const int rc = stmt.step();
  if (rc == SQLITE_CONSTRAINT) return Status(Code::kAlreadyExists, "blob " + entry.blob_id.to_hex() + " is already queued");
  if (rc != SQLITE_DONE) return sqlite_error(db_, "writing outbox");
  return Status::ok();
}

namespace {
Result<std::vector<OutboxEntry>> read_outbox_rows(sqlite3* db, Statement& stmt) {
  std::vector<OutboxEntry> entries;
  for (;;) {
    const int rc = stmt.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return sqlite_error(db, "reading outbox");
    OutboxEntry entry;
    entry.seq = stmt.column_int(0);
    auto group_id = id_column<GroupId>(stmt, 1);
    if (!group_id) return group_id.error();
    auto blob_id = id_column<BlobId>(stmt, 2);
    if (!blob_id) return blob_id.error();
    entry.group_id = *group_id;
    entry.blob_id = *blob_id;
    const ByteView payload = stmt.column_blob(3);
    entry.payload.assign(payload.begin(), payload.end());
    entry.ttl_seconds = static_cast<std::uint32_t>(stmt.column_int(4));
    entry.created_at_ms = stmt.column_int(5);
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::int64_t sql_limit(std::size_t limit) {
  return limit > static_cast<std::size_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(limit);
}
}  // namespace

Result<std::vector<OutboxEntry>> LocalStore::outbox_list(const GroupId& group, std::size_t limit,
                                                         std::int64_t after_seq) {
  Statement stmt(*statements_,
                 "SELECT seq, group_id, blob_id, payload, ttl_seconds, created_at_ms FROM outbox "
                 "WHERE group_id = ? AND seq > ? ORDER BY seq LIMIT ?");
  if (!stmt.ok()) return stmt.prepare_status("outbox query");
  stmt.bind(1, group.view());
  stmt.bind(2, after_seq);
  stmt.bind(3, sql_limit(limit));
  return read_outbox_rows(db_, stmt);
}

Result<std::vector<OutboxEntry>> LocalStore::outbox_list_for_relay(const GroupId& group, const std::string& relay_url,
                                                                   std::size_t limit, std::int64_t after_seq) {
  Statement stmt(*statements_,
                 "SELECT seq, group_id, blob_id, payload, ttl_seconds, created_at_ms FROM outbox o "
                 "WHERE group_id = ?1 AND seq > ?2 AND NOT EXISTS (SELECT 1 FROM outbox_acks a "
                 "WHERE a.group_id = o.group_id AND a.blob_id = o.blob_id AND a.relay_url = ?3) "
                 "ORDER BY seq LIMIT ?4");
  if (!stmt.ok()) return stmt.prepare_status("outbox query");
  stmt.bind(1, group.view());
  stmt.bind(2, after_seq);
  stmt.bind(3, relay_url);
  stmt.bind(4, sql_limit(limit));
  return read_outbox_rows(db_, stmt);
}

bool LocalStore::commits_synced() {
  Statement stmt(*statements_, "PRAGMA synchronous");
  return stmt.ok() && stmt.step() == SQLITE_ROW && stmt.column_int(0) == 2;  // 2: FULL
}

Result<OutboxAckResult> LocalStore::outbox_ack(const GroupId& group, const BlobId& blob, const std::string& relay_url) {
  // Lost with a power cut, an ack only means the blob is sent again with the same blob_id, and
  // the relay answers the repeat with the cursor it stored: not worth an fsync per acked blob.
  UnsyncedCommit unsynced(db_);
  Transaction tx(db_);
  if (!tx.active()) return sqlite_error(db_, "starting outbox ack transaction");
  OutboxAckResult result;
  {
    Statement stmt(*statements_, "SELECT 1 FROM outbox WHERE group_id = ? AND blob_id = ?");
    if (!stmt.ok()) return stmt.prepare_status("outbox lookup");
    stmt.bind(1, group.view());
    stmt.bind(2, blob.view());
    const int rc = stmt.step();
    if (rc == SQLITE_DONE) return result;  // acked through another path already (e.g. a flush)
    if (rc != SQLITE_ROW) return sqlite_error(db_, "reading outbox");
    result.queued = true;
  }
  {
    Statement stmt(*statements_, "INSERT OR IGNORE INTO outbox_acks (group_id, blob_id, relay_url) VALUES (?, ?, ?)");
    if (!stmt.ok()) return stmt.prepare_status("outbox ack insert");
    stmt.bind(1, group.view());
    stmt.bind(2, blob.view());
    stmt.bind(3, relay_url);
    if (stmt.step() != SQLITE_DONE) return sqlite_error(db_, "recording outbox ack");
    const bool inserted = sqlite3_changes(db_) > 0;
    Statement count(*statements_,
                    "SELECT count(*) FROM outbox_acks WHERE group_id = ? AND blob_id = ? AND abandoned = 0");
    if (!count.ok()) return count.prepare_status("outbox ack count");
    count.bind(1, group.view());
    count.bind(2, blob.view());
    if (count.step() != SQLITE_ROW) return sqlite_error(db_, "counting outbox acks");
    result.first = inserted && count.column_int(0) == 1;
  }
  if (result.first) {
    // The retry limit of the other relays counts from here (see outbox_give_up).
    Statement stmt(*statements_,
                   "UPDATE outbox SET first_acked_at_ms = ? WHERE group_id = ? AND blob_id = ? "
                   "AND first_acked_at_ms IS NULL");
    if (!stmt.ok()) return stmt.prepare_status("outbox first ack");
    stmt.bind(1, now_unix_ms());
    stmt.bind(2, group.view());
    stmt.bind(3, blob.view());
    if (stmt.step() != SQLITE_DONE) return sqlite_error(db_, "recording first ack");
  }
  {
    // Relays of the group that still have to store it. A group with no relay rows (cannot happen
    // after migration 2) counts as fully acked, so an entry never gets stuck.
    Statement stmt(*statements_,
                   "SELECT count(*) FROM group_relays r WHERE r.group_id = ?1 AND NOT EXISTS (SELECT 1 FROM "
                   "outbox_acks a WHERE a.group_id = ?1 AND a.blob_id = ?2 AND a.relay_url = r.relay_url)");
    if (!stmt.ok()) return stmt.prepare_status("outbox pending relays");
    stmt.bind(1, group.view());
    stmt.bind(2, blob.view());
    if (stmt.step() != SQLITE_ROW) return sqlite_error(db_, "counting pending relays");
    result.removed = stmt.column_int(0) == 0;
  }
  if (result.removed) {
    if (Status deleted = delete_outbox_entry(group, blob); !deleted) return deleted;
  }
  if (Status committed = tx.commit(); !committed) return committed;
  return result;
}

Status LocalStore::outbox_remove(const GroupId& group, const BlobId& blob) {
  Transaction tx(db_);
  if (!tx.active()) return sqlite_error(db_, "starting outbox delete");
  if (Status deleted = delete_outbox_entry(group, blob); !deleted) return deleted;
  return tx.commit();
}

Status LocalStore::delete_outbox_entry(const GroupId& group, const BlobId& blob) {
  for (const char* sql : {"DELETE FROM outbox WHERE group_id = ? AND blob_id = ?",
                          "DELETE FROM outbox_acks WHERE group_id = ? AND blob_id = ?"}) {
    Statement stmt(*statements_, sql);
    if (!stmt.ok()) return stmt.prepare_status("outbox delete");
    stmt.bind(1, group.view());
    stmt.bind(2, blob.view());
    if (stmt.step() != SQLITE_DONE) return sqlite_error(db_, "deleting outbox entry");
  }
  return Status::ok();
}

namespace {
// Entries of group ?1 that some relay acked at or before ?3 and relay ?2 is not done with. Uses
// outbox_by_first_ack (a range of one group's first-ack times) and the outbox_acks primary key.
constexpr const char* kStaleDeliveriesSql =
    "SELECT o.blob_id FROM outbox o WHERE o.group_id = ?1 AND o.first_acked_at_ms <= ?3 "
    "AND NOT EXISTS (SELECT 1 FROM outbox_acks a WHERE a.group_id = o.group_id AND a.blob_id = o.blob_id "
    "AND a.relay_url = ?2) ORDER BY o.seq";

Result<std::vector<BlobId>> stale_deliveries(StatementCache& statements, const GroupId& group, const std::string& relay_url,
                                             std::int64_t cutoff_ms) {
  Statement stmt(statements, kStaleDeliveriesSql);
  if (!stmt.ok()) return stmt.prepare_status("outbox stale query");
  stmt.bind(1, group.view());
  stmt.bind(2, relay_url);
  stmt.bind(3, cutoff_ms);
  std::vector<BlobId> blobs;
  for (;;) {
    const int rc = stmt.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return sqlite_error(statements.db(), "reading stale outbox entries");
    auto blob = id_column<BlobId>(stmt, 0);
    if (!blob) return blob.error();
    blobs.push_back(*blob);
  }
  return blobs;
}
}  // namespace

Result<std::vector<BlobId>> LocalStore::outbox_give_up(const GroupId& group, const std::string& relay_url,
                                                       std::int64_t cutoff_ms) {
  // Read first without a write lock: almost always there is nothing to give up.
  auto candidates = stale_deliveries(*statements_, group, relay_url, cutoff_ms);
  if (!candidates || candidates->empty()) return candidates;
  Transaction tx(db_);
  if (!tx.active()) return sqlite_error(db_, "starting outbox give-up");
  // Again under the write lock: another process sharing this home may have changed the outbox.
  auto blobs = stale_deliveries(*statements_, group, relay_url, cutoff_ms);
  if (!blobs) return blobs.error();
  Statement mark(
      *statements_, "INSERT OR IGNORE INTO outbox_acks (group_id, blob_id, relay_url, abandoned) VALUES (?, ?, ?, 1)");
  if (!mark.ok()) return mark.prepare_status("outbox give-up insert");
  // Relays of the group still pending for the entry (neither acked nor given up).
  Statement pending(*statements_,
                    "SELECT count(*) FROM group_relays r WHERE r.group_id = ?1 AND NOT EXISTS (SELECT 1 FROM "
                    "outbox_acks a WHERE a.group_id = ?1 AND a.blob_id = ?2 AND a.relay_url = r.relay_url)");
  if (!pending.ok()) return pending.prepare_status("outbox pending relays");
  for (const auto& blob : *blobs) {
    mark.reset();
    mark.bind(1, group.view());
    mark.bind(2, blob.view());
    mark.bind(3, relay_url);
    if (mark.step() != SQLITE_DONE) return sqlite_error(db_, "giving up an outbox delivery");
    pending.reset();
    pending.bind(1, group.view());
    pending.bind(2, blob.view());
    if (pending.step() != SQLITE_ROW) return sqlite_error(db_, "counting pending relays");
    if (pending.column_int(0) != 0) continue;
    if (Status deleted = delete_outbox_entry(group, blob); !deleted) return deleted;
  }
  if (Status committed = tx.commit(); !committed) return committed;
  return blobs;
}

Result<std::optional<std::int64_t>> LocalStore::outbox_first_acked_at(const GroupId& group,
                                                                      const BlobId& blob) {
  Statement stmt(*statements_, "SELECT first_acked_at_ms FROM outbox WHERE group_id = ? AND blob_id = ?");
  if (!stmt.ok()) return stmt.prepare_status("outbox first ack query");
  stmt.bind(1, group.view());
  stmt.bind(2, blob.view());
  const int rc = stmt.step();
  if (rc == SQLITE_DONE) return std::optional<std::int64_t>();
  if (rc != SQLITE_ROW) return sqlite_error(db_, "reading outbox first ack");
  if (stmt.column_is_null(0)) return std::optional<std::int64_t>();
  return std::optional<std::int64_t>(stmt.column_int(0));
}

Result<std::uint64_t> LocalStore::outbox_count() {
  Statement stmt(*statements_, "SELECT count(*) FROM outbox");
  if (!stmt.ok()) return stmt.prepare_status("outbox count");
  if (stmt.step() != SQLITE_ROW) return sqlite_error(db_, "counting outbox");
  return static_cast<std::uint64_t>(stmt.column_int(0));
}

Result<std::uint64_t> LocalStore::outbox_count(const GroupId& group) {
  Statement stmt(*statements_, "SELECT count(*) FROM outbox WHERE group_id = ?");
  if (!stmt.ok()) return stmt.prepare_status("outbox count");
  stmt.bind(1, group.view());
  if (stmt.step() != SQLITE_ROW) return sqlite_error(db_, "counting outbox");
  return static_cast<std::uint64_t>(stmt.column_int(0));
}

}  // namespace blindsync::client_detail
