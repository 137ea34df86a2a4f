// Prepared statements of the LocalStore's SQLite connection (local_store.cpp).
//
// StatementCache keeps every statement the store has prepared, for as long as the connection is
// open: the store runs the same few dozen SQL texts over and over, and preparing one costs more
// CPU than running it (W5 in docs/benchmarks-log.md, 2026-11-23 02:00: 16% of the client's CPU
// went to sqlite3_prepare_v2 before the cache). Only constant SQL texts may go through it: it
// keeps one entry per distinct text.
//
// Statement borrows one for a scope and gives it back reset, its bindings cleared.
//
// Thread-safety: none, like the LocalStore that owns the cache.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "blindsync/core/bytes.h"
#include "blindsync/core/status.h"

namespace blindsync::client_detail {

// A STORAGE_ERROR naming what failed and SQLite's message for db ("out of memory" without one).
Status sqlite_error(sqlite3* db, const std::string& what);

class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) noexcept : db_(db) {}
  ~StatementCache() { clear(); }
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  sqlite3* db() const noexcept { return db_; }
  // A statement for sql, ready to bind: a kept one, or a newly prepared one (nullptr if sql does
  // not prepare; sqlite3_errmsg tells why).
  sqlite3_stmt* take(const char* sql);
  // Back after use: reset, its bindings cleared, kept for the next take of the same text (the
  // one it was taken for).
  void give_back(const char* sql, sqlite3_stmt* stmt);
  // Finalizes every kept statement (before the connection closes).
  void clear() noexcept;

 private:
  sqlite3* db_;
  // Idle statements by SQL text. Usually one each; two only for a text in use twice at once.
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> idle_;
};

// One statement for the scope; back to the cache on destruction. Bind indexes start at 1,
// columns at 0.
class Statement {
 public:
  Statement(StatementCache& cache, const char* sql) : cache_(cache), sql_(sql), stmt_(cache.take(sql)) {}
  ~Statement() {
    if (stmt_ != nullptr) cache_.give_back(sql_, stmt_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const noexcept { return stmt_ != nullptr; }
  Status prepare_status(const char* what) const;

  void bind(int index, ByteView blob) {
    // SQLITE_STATIC: the caller keeps the bytes alive until the statement has run.
    sqlite3_bind_blob(stmt_, index, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
  }
  void bind(int index, const std::string& text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  }
  void bind(int index, std::int64_t value) { sqlite3_bind_int64(stmt_, index, value); }

  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }

  ByteView column_blob(int index) const;
  std::string column_text(int index) const;
  std::int64_t column_int(int index) const { return sqlite3_column_int64(stmt_, index); }
  bool column_is_null(int index) const { return sqlite3_column_type(stmt_, index) == SQLITE_NULL; }

 private:
  StatementCache& cache_;
  const char* sql_;
  sqlite3_stmt* stmt_;
};

}  // namespace blindsync::client_detail
