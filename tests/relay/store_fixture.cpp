#include "store_fixture.h"

#include <stdlib.h>

#include <future>
#include <system_error>
#include <utility>

#include <catch2/catch.hpp>

namespace blindsync::relay::test {

namespace fs = std::filesystem;

TempDir::TempDir(const char* prefix) {
  std::string pattern = (fs::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) FAIL("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

GroupId group_n(std::uint8_t n) {
  GroupId::Array a{};
  a[0] = n;
  a[31] = 0xA5;
  return GroupId(a);
}

DeviceId device_n(std::uint8_t n) {
  DeviceId::Array a{};
  a[0] = 0xD0;
  a[1] = n;
  return DeviceId(a);
}

BlobId blob_n(std::uint32_t n) {
  BlobId::Array a{};
  a[12] = static_cast<std::uint8_t>(n >> 24);
  a[13] = static_cast<std::uint8_t>(n >> 16);
  a[14] = static_cast<std::uint8_t>(n >> 8);
  a[15] = static_cast<std::uint8_t>(n);
  return BlobId(a);
}

Bytes payload_n(std::uint32_t n, std::size_t size) {
  Bytes p(size);
  for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<std::uint8_t>((n * 131 + i * 7) & 0xff);
  return p;
}

sqlite::JournalRecord journal_record_n(const GroupId& group, std::uint32_t n, Cursor cursor, std::uint64_t expires) {
  return sqlite::JournalRecord{group,     blob_n(n), device_n(static_cast<std::uint8_t>(n % 5)),
                               cursor,    kNow + n,  expires,
                               std::make_shared<const Bytes>(payload_n(n, 40 + n % 300))};
}

std::vector<sqlite::JournalRecord> read_journal(const std::string& path, std::uint64_t epoch) {
  auto journal = sqlite::PushJournal::open(path, epoch, true);
  if (!journal) FAIL("open: " << journal.error().message());
  auto records = journal->read_all();
  if (!records) FAIL("read_all: " << records.error().message());
  return std::move(*records);
}

std::unique_ptr<Store> open_test_store(const TempDir& dir, StoreOptions options) {
  options.path = dir.file("relay.db");
  options.durability = Durability::kNormal;
  auto store = open_sqlite_store(options);
  REQUIRE(store.has_value());
  return std::move(store).value();
}

Result<PushResult> push_sync(Store& store, PushRequest request) {
  auto promise = std::make_shared<std::promise<Result<PushResult>>>();
  auto future = promise->get_future();
  store.submit_push(std::move(request), [promise](Result<PushResult> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(kStoreHangGuard) != std::future_status::ready) FAIL("push completion never ran");
  return future.get();
}

RawDb::RawDb(const std::string& path) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) FAIL("sqlite3_open: " << sqlite3_errmsg(db_));
  sqlite3_busy_timeout(db_, 10000);
}

RawDb::~RawDb() { sqlite3_close(db_); }

void RawDb::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err != nullptr ? err : "?";
    sqlite3_free(err);
    FAIL("exec '" << sql << "': " << message);
  }
}

std::string RawDb::text(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) FAIL("prepare: " << sqlite3_errmsg(db_));
  std::string out;
  if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  return out;
}

std::int64_t RawDb::integer(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) FAIL("prepare: " << sqlite3_errmsg(db_));
  const bool has_row = sqlite3_step(stmt) == SQLITE_ROW;
  const std::int64_t out = has_row ? sqlite3_column_int64(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  if (!has_row) FAIL("no row for '" << sql << "'");
  return out;
}

}  // namespace blindsync::relay::test
