#include "sqlite_statement.h"

#include <utility>

namespace blindsync::client_detail {

Status sqlite_error(sqlite3* db, const std::string& what) {
  return Status(Code::kStorageError, "local store: " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

sqlite3_stmt* StatementCache::take(const char* sql) {
  if (auto it = idle_.find(sql); it != idle_.end() && !it->second.empty()) {
    sqlite3_stmt* stmt = it->second.back();
    it->second.pop_back();
    return stmt;
  }
  sqlite3_stmt* stmt = nullptr;
  // PERSISTENT: a hint that the statement lives long, so SQLite does not take its memory from
  // the lookaside pool meant for short-lived ones.
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return nullptr;
  }
  return stmt;
}

void StatementCache::give_back(const char* sql, sqlite3_stmt* stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  try {
    idle_[sql].push_back(stmt);
  } catch (...) {  // no memory to keep it: let it go
    sqlite3_finalize(stmt);
  }
}

void StatementCache::clear() noexcept {
  for (auto& [sql, statements] : idle_) {
    for (sqlite3_stmt* stmt : statements) sqlite3_finalize(stmt);
  }
  idle_.clear();
}

Status Statement::prepare_status(const char* what) const {
  return sqlite_error(cache_.db(), std::string("preparing ") + what);
}

ByteView Statement::column_blob(int index) const {
  const void* data = sqlite3_column_blob(stmt_, index);
  const int size = sqlite3_column_bytes(stmt_, index);
  if (data == nullptr || size <= 0) return {};
  return ByteView(static_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size));
}

std::string Statement::column_text(int index) const {
  const auto* data = sqlite3_column_text(stmt_, index);
  const int size = sqlite3_column_bytes(stmt_, index);
  if (data == nullptr || size <= 0) return {};
  return std::string(reinterpret_cast<const char*>(data), static_cast<std::size_t>(size));
}

}  // namespace blindsync::client_detail
