// Shared helpers for tests that use the relay store (store_test, store_retention_test, the journal
// and spare tests, and the hub tests through hub_fixture.h): a temporary directory, sample ids and
// payloads, push journal records, a store opened in it, a synchronous push, and raw SQL access to
// the database file.
// Thread-safety: one test thread (push_sync's completion runs on the store's writer thread).
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <vector>

#include "store/push_journal.h"
#include "store/store.h"

namespace blindsync::relay::test {

// How long a store completion may take before the test fails: a hang guard, not a timing assertion.
inline constexpr auto kStoreHangGuard = std::chrono::seconds(120);
inline constexpr std::uint64_t kNow = 1'700'000'000'000;  // the tests' "now", in ms
inline constexpr std::uint64_t kNever = ~std::uint64_t{0};  // expires_at_ms that never expires

// A fresh directory under the system temp directory, removed with its files at the end of the test.
class TempDir {
 public:
  explicit TempDir(const char* prefix = "blindsync-relay-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Distinct, recognisable ids: n in a fixed position plus a marker byte.
GroupId group_n(std::uint8_t n);
DeviceId device_n(std::uint8_t n);
BlobId blob_n(std::uint32_t n);  // n big-endian in the last four bytes
// `size` bytes that depend on n and on their position (to catch mixed-up or truncated payloads).
Bytes payload_n(std::uint32_t n, std::size_t size = 24);

// Journal record n of `group` at `cursor`, with payload_n(n, 40 + n % 300).
sqlite::JournalRecord journal_record_n(const GroupId& group, std::uint32_t n, Cursor cursor,
                                       std::uint64_t expires = kNever);
// Every intact record of the journal file at `path` (FAILs if it does not open).
std::vector<sqlite::JournalRecord> read_journal(const std::string& path, std::uint64_t epoch);

// A SQLite store at dir/relay.db with normal durability (tests need no power-loss durability).
std::unique_ptr<Store> open_test_store(const TempDir& dir, StoreOptions options = {});

// Submits one push and waits (bounded by kStoreHangGuard) for its completion.
Result<PushResult> push_sync(Store& store, PushRequest request);

// Direct access to the database file, to inspect or tamper with it (WAL lets it work beside the store).
class RawDb {
 public:
  explicit RawDb(const std::string& path);
  ~RawDb();
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql);
  // The first column of the first row ("" for no row or NULL).
  std::string text(const std::string& sql);
  // The first column of the first row as an integer; FAILs if there is no row.
  std::int64_t integer(const std::string& sql);

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace blindsync::relay::test
