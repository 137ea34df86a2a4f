// The relay store's SQLite schema: connection settings, versioned migrations and the layout
// constants shared by the reader and writer code (private to relay/src/store).
//
// Blob rows are keyed by one packed 64-bit integer, (group ref << kCursorBits) | cursor, where the
// group ref is the small integer id of the group's row in `groups`. See sqlite_schema.cpp for why.
//
// Thread-safety: free functions over a Database the caller uses from one thread at a time.
#pragma once

#include <cstdint>

#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"
#include "store/sqlite_db.h"

namespace blindsync::relay::sqlite {

// Latest schema version (PRAGMA user_version after every migration ran).
int schema_version() noexcept;

inline constexpr int kCursorBits = 36;
inline constexpr std::int64_t kMaxCursor = (std::int64_t{1} << kCursorBits) - 1;  // 68.7e9 per group
inline constexpr std::int64_t kMaxGroupRef = (std::int64_t{1} << (63 - kCursorBits)) - 1;  // 134M groups

inline std::int64_t blob_key(std::int64_t group_ref, std::int64_t cursor) noexcept {
  return (group_ref << kCursorBits) | cursor;
}
inline Cursor cursor_of_key(std::int64_t key) noexcept { return static_cast<Cursor>(key & kMaxCursor); }

// Connection settings of the writer (it alone creates and migrates the file): busy timeout,
// auto_vacuum=INCREMENTAL (before any table exists), WAL, foreign keys, and synchronous FULL
// (full_sync) or NORMAL.
Status configure_writer(Database& db, bool full_sync);

// Connection settings of a read connection: busy timeout, foreign keys, query_only.
Status configure_reader(Database& db);

// Applies every migration newer than the file's user_version, in order, each in its own
// BEGIN IMMEDIATE transaction that also bumps user_version. Refuses (kStorageError) a file whose
// user_version is newer than this build knows.
Status migrate(Database& db);

// The random epoch stored in `meta` by migration 1.
Result<std::uint64_t> read_epoch(Database& db);

}  // namespace blindsync::relay::sqlite
