// Schema and migrations of the relay's SQLite store.
//
// Design (migration 1):
//
// meta(key, value)
//   Small key/value facts about the database itself. Today only 'epoch': a random 64-bit number
//   made once, when the file is created, and sent in WELCOME so that clients notice a replaced or
//   restored database (DESIGN.md "Durability").
//
// groups(id, group_id, max_cursor, bytes_used, blob_count, created_at_ms)
//   One row per group ever pushed to. `id` (the rowid) is a small integer "group ref" used inside
//   blob keys instead of the 32-byte group_id, which keeps every blob key 8 bytes long.
//   `max_cursor` is the last cursor handed out: the next push gets max_cursor + 1. It is stored
//   here, not computed as MAX(cursor) over blobs, because blobs expire and get cleaned up while
//   cursors must never be reused. It is updated in the same transaction as the blob rows, so the
//   sequence stays gap-free even when a batch rolls back. `bytes_used` / `blob_count` make quota
//   checks and /health O(1) instead of a scan.
//
// blobs(key, group_ref, blob_id, sender_id, timestamp_ms, expires_at_ms, payload)
//   `key` is the INTEGER PRIMARY KEY (the rowid) and packs (group_ref << 36) | cursor. A PULL is
//   then one range scan of the table b-tree itself (key > base|after AND key <= base|max): no
//   secondary index lookup per row. A WITHOUT ROWID table with (group_ref, cursor) as primary key
//   was considered and rejected: SQLite advises against it for rows this large (payloads up to
//   1 MiB), and a rowid table already gives the clustered range scan through the packed key.
//   36 bits of cursor (68.7e9 blobs per group) and 27 bits of group ref (134M groups) are far
//   beyond what one SQLite relay serves; exceeding either fails the push with STORAGE_FULL.
//   UNIQUE(group_ref, blob_id) makes PUSH idempotent: the writer inserts with
//   ON CONFLICT(group_ref, blob_id) DO NOTHING and reads back the original row on a conflict.
//   The index on expires_at_ms lets cleanup delete expired blobs with one set-based statement.
//   Columns are ordered small-to-large with the payload last, so reading a row's metadata (the
//   duplicate lookup) never touches the payload's overflow pages.
//
// Design (migration 2):
//
// devices(group_ref, device_id, name, first_seen_ms, last_seen_ms, acked_cursor, revoked)
//   One row per device the relay has seen in a group (written at HELLO, ACK and disconnect).
//   `acked_cursor` is the device's ACK watermark: it holds everything <= it. WELCOME's
//   pending_count and drop-acked retention read it. A WITHOUT ROWID table: rows are small and
//   always looked up by (group_ref, device_id), so the primary key is the table.
// groups.ack_dropped_through
//   The cursor up to which drop-acked cleanup already removed the group's blobs, so each run only
//   looks at groups whose minimum watermark moved.
//
// Design (migration 3):
//
// blobs.segment, blobs.segment_offset, blobs.payload_size
//   Where a row's payload lies: in the push journal's segment file `segment` at `segment_offset`
//   (push_journal.h), `payload_size` bytes, with `payload` empty; or, with segment 0, inline in
//   `payload` (rows of earlier versions, and rows compaction moved out of a sparse segment).
//   A payload in SQLite was written three times (the B-tree, the WAL, the checkpoint) after the
//   journal; in a segment it is written once (docs/benchmarks.md).
//   blobs_by_segment finds a segment's rows for compaction; it only holds rows in segments.
// segments(number, live_blobs, live_bytes)
//   How many rows point into each segment, and their payload bytes: a segment with none left is
//   deleted, one mostly dead is compacted (its live payloads moved inline). Kept in the same
//   transactions as the rows.
// meta 'replay_from'
//   The first segment that may hold records SQLite lacks: a start replays it and the ones after.
//
// Migrations are only ever appended to kMigrations; an applied migration is never edited, and the
// database is never dropped and recreated.
#include "store/sqlite_schema.h"

#include <array>
#include <random>
#include <string>

namespace blindsync::relay::sqlite {
namespace {

constexpr int kBusyTimeoutMs = 5000;

constexpr const char* kMigration1 = R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE groups (
  id            INTEGER PRIMARY KEY,
  group_id      BLOB NOT NULL UNIQUE CHECK (length(group_id) = 32),
  max_cursor    INTEGER NOT NULL DEFAULT 0 CHECK (max_cursor >= 0),
  bytes_used    INTEGER NOT NULL DEFAULT 0,
  blob_count    INTEGER NOT NULL DEFAULT 0,
  created_at_ms INTEGER NOT NULL
);

CREATE TABLE blobs (
  key           INTEGER PRIMARY KEY,
  group_ref     INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  blob_id       BLOB NOT NULL CHECK (length(blob_id) = 16),
  sender_id     BLOB NOT NULL CHECK (length(sender_id) = 32),
  timestamp_ms  INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  payload       BLOB NOT NULL,
  CHECK (group_ref = (key >> 36)),
  UNIQUE (group_ref, blob_id)
);

CREATE INDEX blobs_by_expiry ON blobs (expires_at_ms);
)sql";

constexpr const char* kMigration2 = R"sql(
CREATE TABLE devices (
  group_ref     INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  device_id     BLOB NOT NULL CHECK (length(device_id) = 32),
  name          TEXT NOT NULL DEFAULT '',
  first_seen_ms INTEGER NOT NULL,
  last_seen_ms  INTEGER NOT NULL,
  acked_cursor  INTEGER NOT NULL DEFAULT 0 CHECK (acked_cursor >= 0),
  revoked       INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
  PRIMARY KEY (group_ref, device_id)
) WITHOUT ROWID;

ALTER TABLE groups ADD COLUMN ack_dropped_through INTEGER NOT NULL DEFAULT 0;
)sql";

constexpr const char* kMigration3 = R"sql(
ALTER TABLE blobs ADD COLUMN segment INTEGER NOT NULL DEFAULT 0 CHECK (segment >= 0);
ALTER TABLE blobs ADD COLUMN segment_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN payload_size INTEGER NOT NULL DEFAULT 0;
CREATE INDEX blobs_by_segment ON blobs (segment) WHERE segment <> 0;

CREATE TABLE segments (
  number     INTEGER PRIMARY KEY CHECK (number > 0),
  live_blobs INTEGER NOT NULL DEFAULT 0,
  live_bytes INTEGER NOT NULL DEFAULT 0
);

INSERT INTO meta (key, value) VALUES ('replay_from', 1);
)sql";

// Random, never zero (0 reads as "no epoch" to a client that has not met this relay yet).
std::uint64_t make_epoch() {
  std::random_device device;  // getrandom(2) on Linux/libstdc++
  std::uint64_t epoch = 0;
  for (int attempt = 0; attempt < 8 && epoch == 0; ++attempt) {
    epoch = (static_cast<std::uint64_t>(device()) << 32) | static_cast<std::uint64_t>(device());
  }
  return epoch == 0 ? 1 : epoch;
}

Status apply_migration_1(Database& db) {
  if (auto st = db.exec(kMigration1); !st) return st;
  auto insert = db.prepare("INSERT INTO meta (key, value) VALUES ('epoch', ?1)");
  if (!insert) return insert.error();
  // The epoch is stored as the signed 64-bit pattern of the unsigned value.
  insert->bind_int64(1, static_cast<std::int64_t>(make_epoch()));
  const int rc = insert->step();
  if (rc != SQLITE_DONE) return db.error(rc, "store epoch");
  return Status::ok();
}

Status apply_migration_2(Database& db) { return db.exec(kMigration2); }

Status apply_migration_3(Database& db) { return db.exec(kMigration3); }

struct Migration {
  int version;
  Status (*apply)(Database&);
};

constexpr std::array kMigrations{
    Migration{1, &apply_migration_1},
    Migration{2, &apply_migration_2},
    Migration{3, &apply_migration_3},
};

Status apply_one(Database& db, const Migration& migration) {
  if (auto st = db.exec("BEGIN IMMEDIATE"); !st) return st;
  // Re-read inside the write lock: another process may have migrated since we looked.
  auto current = db.query_int64("PRAGMA user_version");
  if (!current) {
    db.rollback_if_open();
    return current.error();
  }
  if (*current >= migration.version) {
    db.rollback_if_open();
    return Status::ok();
  }
  Status st = migration.apply(db);
  // PRAGMA user_version is written in the database header, inside this same transaction.
  if (st) st = db.exec("PRAGMA user_version = " + std::to_string(migration.version));
  if (st) st = db.exec("COMMIT");
  if (!st) {
    db.rollback_if_open();
    return Status(Code::kStorageError,
                  "schema migration " + std::to_string(migration.version) + " failed: " + st.message());
  }
  return Status::ok();
}

}  // namespace

int schema_version() noexcept { return kMigrations.back().version; }

Status configure_writer(Database& db, bool full_sync) {
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  // auto_vacuum only takes effect if set before the first table is created; on an existing
  // file this is a harmless no-op. It must also come before journal_mode=WAL, which may write
  // the first page of a new file.
  if (auto st = db.exec("PRAGMA auto_vacuum = INCREMENTAL"); !st) return st;
  auto mode = db.query_text("PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  if (*mode != "wal") return Status(Code::kStorageError, "cannot enable WAL (journal_mode is " + *mode + ")");
  // FULL: the WAL is fsynced at every commit, so an acked blob survives power loss.
  // NORMAL: fsync only at checkpoints; survives a process crash, not a power loss.
  if (auto st = db.exec(full_sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"); !st) return st;
  if (auto st = db.exec("PRAGMA foreign_keys = ON"); !st) return st;
  // Keep the WAL file from staying huge after a burst once it has been checkpointed.
  if (auto st = db.exec("PRAGMA journal_size_limit = 67108864"); !st) return st;
  return Status::ok();
}

Status configure_reader(Database& db) {
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  if (auto st = db.exec("PRAGMA foreign_keys = ON"); !st) return st;
  // Read connections never write: make a bug that tries fail loudly.
  return db.exec("PRAGMA query_only = ON");
}

Status migrate(Database& db) {
  auto current = db.query_int64("PRAGMA user_version");
  if (!current) return current.error();
  if (*current > schema_version()) {
    return Status(Code::kStorageError, "database schema version " + std::to_string(*current) +
                                           " is newer than this relay understands (" +
                                           std::to_string(schema_version()) + ")");
  }
  if (*current < 0) return Status(Code::kStorageError, "database has a negative schema version");
  for (const Migration& migration : kMigrations) {
    if (migration.version <= *current) continue;
    if (auto st = apply_one(db, migration); !st) return st;
  }
  return Status::ok();
}

Result<std::uint64_t> read_epoch(Database& db) {
  auto value = db.query_int64("SELECT value FROM meta WHERE key = 'epoch'");
  if (!value) return Status(Code::kStorageError, "database has no epoch: " + value.error().message());
  return static_cast<std::uint64_t>(*value);
}

}  // namespace blindsync::relay::sqlite
