// A thin RAII layer over the SQLite C API for the relay store (private to relay/src/store).
//
// Database owns one sqlite3* connection; Statement owns one sqlite3_stmt*. Both are move-only.
// A Statement must be destroyed before its Database (declare it after the Database member).
// StatementReset resets a statement when it leaves scope, so a half-read SELECT never keeps a
// read transaction (and with it a WAL snapshot) open by accident.
//
// Thread-safety: none. Connections are opened with SQLITE_OPEN_NOMUTEX; the store guarantees that
// one connection (and its statements) is used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "blindsync/core/bytes.h"
#include "blindsync/core/status.h"

namespace blindsync::relay::sqlite {

// SQLite integers are signed 64-bit; clamp so that a huge "never expires" value does not wrap
// into a negative (already expired) one.
inline std::int64_t to_sql_int(std::uint64_t value) noexcept {
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(value, kMax));
}

// The error code a failed write reports to the pusher: STORAGE_FULL when the disk (or the
// configured page limit) is full, INTERNAL for every other storage fault.
Code write_failure_code(int sqlite_rc) noexcept;

class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
  Statement(Statement&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  sqlite3_stmt* get() const noexcept { return stmt_; }

  // Binds are 1-based like the C API. Return the SQLite result code.
  int bind_int64(int index, std::int64_t value) noexcept;
  // Binds a zero-length blob (never NULL) when bytes is empty. The bytes must outlive the step.
  int bind_blob(int index, ByteView bytes) noexcept;

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() noexcept;
  void reset() noexcept;

  std::int64_t column_int64(int index) const noexcept;
  // A view into SQLite's memory, valid until the next step/reset. Empty for NULL or zero length.
  ByteView column_blob(int index) const noexcept;

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets the statement (and clears its bindings) when the scope ends.
class StatementReset {
 public:
  explicit StatementReset(Statement& stmt) noexcept : stmt_(stmt) {}
  StatementReset(const StatementReset&) = delete;
  StatementReset& operator=(const StatementReset&) = delete;
  ~StatementReset() { stmt_.reset(); }

 private:
  Statement& stmt_;
};

class Database {
 public:
  Database() = default;
  Database(Database&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // flags: SQLITE_OPEN_* (NOMUTEX is always added). Errors are kStorageError.
  static Result<Database> open(const std::string& path, int flags);

  sqlite3* get() const noexcept { return db_; }
  bool is_open() const noexcept { return db_ != nullptr; }

  // Runs one or more SQL statements that return no rows we need.
  Status exec(std::string_view sql, Code code = Code::kStorageError);
  Result<Statement> prepare(std::string_view sql);
  // Runs a single-row query (a PRAGMA, a count) and returns column 0 as an integer.
  Result<std::int64_t> query_int64(std::string_view sql);
  // Runs a single-row query and returns column 0 as text.
  Result<std::string> query_text(std::string_view sql);

  // "what: <sqlite message> (rc N)" as a Status with the given code.
  Status error(int rc, std::string_view what, Code code = Code::kStorageError) const;

  // Rolls back when a transaction is open; a no-op in autocommit mode.
  void rollback_if_open() noexcept;

  void close() noexcept;

 private:
  explicit Database(sqlite3* db) noexcept : db_(db) {}
  sqlite3* db_ = nullptr;
};

}  // namespace blindsync::relay::sqlite
