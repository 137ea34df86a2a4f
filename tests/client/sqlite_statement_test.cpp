// StatementCache and Statement (libsync/client/src/sqlite_statement.h) on a real SQLite database.
#include "sqlite_statement.h"

#include <catch2/catch.hpp>

#include <string>

#include "local_store_fixture.h"

using namespace blindsync;
using namespace blindsync::client_detail;
using namespace blindsync::testing;

namespace {

constexpr const char* kInsert = "INSERT INTO t (k, v) VALUES (?, ?)";
constexpr const char* kSelect = "SELECT v FROM t WHERE k = ?";

struct Db {
  sqlite3* db = nullptr;
  explicit Db(const std::string& path) {
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)", nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  ~Db() { sqlite3_close_v2(db); }
};

// How many statements the connection has prepared and not finalized.
int statements_of(sqlite3* db) {
  int n = 0;
  for (sqlite3_stmt* s = sqlite3_next_stmt(db, nullptr); s != nullptr; s = sqlite3_next_stmt(db, s)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a statement is prepared once and reused, reset and unbound, for the next use of its text",
          "[local_store][statement]") {
  TempDir tmp;
  Db d(tmp.sub("cache.db"));
  StatementCache cache(d.db);

  sqlite3_stmt* first = cache.take(kInsert);
  REQUIRE(first != nullptr);
  cache.give_back(kInsert, first);
  sqlite3_stmt* reused = cache.take(kInsert);
  CHECK(reused == first);
  sqlite3_stmt* second = cache.take(kInsert);  // the text in use twice at once: another statement
  REQUIRE(second != nullptr);
  CHECK(second != first);
  cache.give_back(kInsert, second);
  cache.give_back(kInsert, reused);

  for (int i = 1; i <= 100; ++i) {
    Statement insert(cache, kInsert);
    REQUIRE(insert.ok());
    const std::string value = "v" + std::to_string(i);  // bound SQLITE_STATIC: alive until step()
    insert.bind(1, std::int64_t{i});
    insert.bind(2, value);
    REQUIRE(insert.step() == SQLITE_DONE);
  }
  {
    // A kept statement comes back without its earlier bindings: k binds as NULL, so a new rowid.
    Statement insert(cache, kInsert);
    REQUIRE(insert.step() == SQLITE_DONE);
    CHECK(sqlite3_last_insert_rowid(d.db) == 101);
  }
  {
    Statement select(cache, kSelect);
    select.bind(1, std::int64_t{7});
    REQUIRE(select.step() == SQLITE_ROW);
    CHECK(select.column_text(0) == "v7");
    // Left mid-result: giving it back resets it, so no read transaction stays open.
  }
  CHECK(sqlite3_get_autocommit(d.db) != 0);
  CHECK(statements_of(d.db) == 3);  // two for the insert, one for the select, whatever the uses

  // clear() finalizes every kept statement, before the connection closes.
  cache.clear();
  CHECK(statements_of(d.db) == 0);
}

TEST_CASE("a statement that does not prepare reports why", "[local_store][statement]") {
  TempDir tmp;
  Db d(tmp.sub("cache.db"));
  StatementCache cache(d.db);
  Statement broken(cache, "SELECT nope FROM missing");
  CHECK_FALSE(broken.ok());
  const Status status = broken.prepare_status("a query");
  CHECK(status.code() == Code::kStorageError);
  CHECK(status.message().find("preparing a query") != std::string::npos);
  CHECK(status.message().find("no such table: missing") != std::string::npos);
}
