#include "store/sqlite_db.h"

#include <limits>
#include <utility>

namespace blindsync::relay::sqlite {

Code write_failure_code(int sqlite_rc) noexcept {
  return (sqlite_rc & 0xff) == SQLITE_FULL ? Code::kStorageFull : Code::kInternal;
}

// --- Statement ---

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

int Statement::bind_int64(int index, std::int64_t value) noexcept {
  return sqlite3_bind_int64(stmt_, index, value);
}

int Statement::bind_blob(int index, ByteView bytes) noexcept {
  // sqlite3_bind_blob with a null pointer binds NULL, which a NOT NULL column rejects:
  // an empty payload must be a zero-length blob instead.
  if (bytes.empty()) return sqlite3_bind_zeroblob(stmt_, index, 0);
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return SQLITE_TOOBIG;
  return sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
}

int Statement::step() noexcept { return sqlite3_step(stmt_); }

void Statement::reset() noexcept {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Statement::column_int64(int index) const noexcept { return sqlite3_column_int64(stmt_, index); }

ByteView Statement::column_blob(int index) const noexcept {
  const void* data = sqlite3_column_blob(stmt_, index);
  const int size = sqlite3_column_bytes(stmt_, index);  // after column_blob, as the docs require
  if (data == nullptr || size <= 0) return {};
  return ByteView(static_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size));
}

// --- Database ---

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

Database::~Database() { close(); }

void Database::close() noexcept {
  // close_v2 defers the close if a statement is still alive, instead of leaking the handle.
  if (db_ != nullptr) sqlite3_close_v2(std::exchange(db_, nullptr));
}

Result<Database> Database::open(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  Database db(raw);  // owns raw even on failure (sqlite3_open_v2 may allocate a handle)
  if (rc != SQLITE_OK) {
    return db.error(rc, "cannot open '" + path + "'");
  }
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Status Database::exec(std::string_view sql, Code code) {
  const std::string text(sql);
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return Status::ok();
  std::string detail = message != nullptr ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return Status(code, detail + " (rc " + std::to_string(rc) + ")");
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  // PERSISTENT: these statements live as long as the connection and are reused for every call.
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                    &raw, nullptr);
  Statement stmt(raw);
  if (rc != SQLITE_OK) return error(rc, "prepare failed");
  if (raw == nullptr) return Status(Code::kStorageError, "prepare: empty statement");
  return stmt;
}

Result<std::int64_t> Database::query_int64(std::string_view sql) {
  auto stmt = prepare(sql);
  if (!stmt) return stmt.error();
  const int rc = stmt->step();
  if (rc != SQLITE_ROW) return error(rc == SQLITE_DONE ? SQLITE_ERROR : rc, std::string("no row from ") + std::string(sql));
  return stmt->column_int64(0);
}

Result<std::string> Database::query_text(std::string_view sql) {
  auto stmt = prepare(sql);
  if (!stmt) return stmt.error();
  const int rc = stmt->step();
  if (rc != SQLITE_ROW) return error(rc == SQLITE_DONE ? SQLITE_ERROR : rc, std::string("no row from ") + std::string(sql));
  const unsigned char* text = sqlite3_column_text(stmt->get(), 0);
  return std::string(text != nullptr ? reinterpret_cast<const char*>(text) : "");
}

Status Database::error(int rc, std::string_view what, Code code) const {
  std::string message(what);
  message += ": ";
  // errmsg describes the most recent failure on this connection; errstr is the generic text.
  message += db_ != nullptr && sqlite3_errcode(db_) == rc ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  message += " (rc " + std::to_string(rc) + ")";
  return Status(code, std::move(message));
}

void Database::rollback_if_open() noexcept {
  if (db_ != nullptr && sqlite3_get_autocommit(db_) == 0) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

}  // namespace blindsync::relay::sqlite
