// Tests of the relay store's limits and retention (store.h): migration 2 (devices), ACK
// watermarks, quotas and caps checked before the write, DELETE ownership, the cleanup job (expiry,
// drop-acked, bounded batches, incremental vacuum), the pull byte budget, and a full database
// that recovers. Real SQLite files in a fresh temporary directory per test.
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "store/push_journal.h"
#include "store/store.h"
#include "store_fixture.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;
using namespace blindsync::relay::test;
namespace fs = std::filesystem;

PushRequest make_push(const GroupId& group, std::uint32_t n, std::size_t size = 100, std::uint64_t expires = kNever,
                      const DeviceId& sender = device_n(1)) {
  PushRequest r;
  r.group_id = group;
  r.blob_id = blob_n(n);
  r.sender_id = sender;
  r.payload = Bytes(size, static_cast<std::uint8_t>(n));
  r.timestamp_ms = kNow;
  r.expires_at_ms = expires;
  return r;
}

template <typename T>
T wait_for(std::future<T>& future) {
  if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) FAIL("store completion never ran");
  return future.get();
}

Cursor push_ok(Store& store, PushRequest request) {
  auto r = push_sync(store, std::move(request));
  if (!r) FAIL("push failed: " << r.error().to_string());
  return r->cursor;
}

Status seen(Store& store, const GroupId& g, const DeviceId& d, std::optional<std::string> name = "dev",
            std::uint64_t now = kNow) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  store.submit_device_seen(g, d, std::move(name), now, [promise](Status st) { promise->set_value(std::move(st)); });
  return wait_for(future);
}

Status ack(Store& store, const GroupId& g, const DeviceId& d, Cursor cursor) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  store.submit_ack(g, d, cursor, kNow + 1, [promise](Status st) { promise->set_value(std::move(st)); });
  return wait_for(future);
}

Result<DeleteResult> remove(Store& store, const GroupId& g, std::uint32_t blob, const DeviceId& requester,
                            bool others) {
  auto promise = std::make_shared<std::promise<Result<DeleteResult>>>();
  auto future = promise->get_future();
  store.submit_delete(DeleteRequest{g, blob_n(blob), requester, others},
                      [promise](Result<DeleteResult> r) { promise->set_value(std::move(r)); });
  return wait_for(future);
}

CleanupReport cleanup(Store& store, std::uint64_t now, bool drop_acked = false, std::uint64_t retention_ms = 0) {
  auto promise = std::make_shared<std::promise<Result<CleanupReport>>>();
  auto future = promise->get_future();
  store.submit_cleanup(CleanupRequest{now, drop_acked, retention_ms},
                       [promise](Result<CleanupReport> r) { promise->set_value(std::move(r)); });
  auto report = wait_for(future);
  if (!report) FAIL("cleanup failed: " << report.error().to_string());
  return *report;
}

std::vector<Cursor> cursors(Store& store, const GroupId& g, std::uint64_t now = kNow) {
  auto page = store.pull(g, 0, 1000, now);
  REQUIRE(page.has_value());
  std::vector<Cursor> out;
  for (const auto& b : page->blobs) out.push_back(b.cursor);
  return out;
}

std::unique_ptr<Store> open_store(const TempDir& dir, StoreOptions options = {}, StoreLimits limits = {}) {
  auto store = open_test_store(dir, options);
  store->set_limits(limits);
  return store;
}

// ---------------------------------------------------------------------------------------------
// Migration 2

// The version-1 schema exactly as migration 1 wrote it (a released relay's database).
constexpr const char* kVersion1Schema = R"sql(
PRAGMA auto_vacuum = INCREMENTAL;
PRAGMA journal_mode = WAL;
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE groups (
  id INTEGER PRIMARY KEY, group_id BLOB NOT NULL UNIQUE CHECK (length(group_id) = 32),
  max_cursor INTEGER NOT NULL DEFAULT 0 CHECK (max_cursor >= 0), bytes_used INTEGER NOT NULL DEFAULT 0,
  blob_count INTEGER NOT NULL DEFAULT 0, created_at_ms INTEGER NOT NULL);
CREATE TABLE blobs (
  key INTEGER PRIMARY KEY, group_ref INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  blob_id BLOB NOT NULL CHECK (length(blob_id) = 16), sender_id BLOB NOT NULL CHECK (length(sender_id) = 32),
  timestamp_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL, payload BLOB NOT NULL,
  CHECK (group_ref = (key >> 36)), UNIQUE (group_ref, blob_id));
CREATE INDEX blobs_by_expiry ON blobs (expires_at_ms);
INSERT INTO meta (key, value) VALUES ('epoch', 777);
PRAGMA user_version = 1;
)sql";

TEST_CASE("migration 2 upgrades a version-1 database in place, keeping blobs, epoch and cursors",
          "[store][migration]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  {
    RawDb raw(path);
    raw.exec(kVersion1Schema);
    const std::string group = "x'" + group_n(1).to_hex() + "'";
    const std::string sender = "x'" + device_n(1).to_hex() + "'";
    raw.exec("INSERT INTO groups (id, group_id, max_cursor, bytes_used, blob_count, created_at_ms) VALUES (1, " +
             group + ", 2, 6, 2, 1)");
    raw.exec("INSERT INTO blobs VALUES ((1 << 36) | 1, 1, x'" + blob_n(1).to_hex() + "', " + sender +
             ", 5, 9223372036854775807, x'010203')");
    raw.exec("INSERT INTO blobs VALUES ((1 << 36) | 2, 1, x'" + blob_n(2).to_hex() + "', " + sender +
             ", 6, 9223372036854775807, x'040506')");
  }
  {
    StoreOptions options;
    options.path = path;
    auto opened = open_sqlite_store(options);
    REQUIRE(opened.has_value());
    auto& store = **opened;
    CHECK(store.epoch() == 777);
    CHECK(cursors(store, group_n(1)) == std::vector<Cursor>{1, 2});
    CHECK(push_ok(store, make_push(group_n(1), 3)) == 3);  // cursors continue
    CHECK(seen(store, group_n(1), device_n(1)).is_ok());    // the new table works
    store.close();
  }
  RawDb raw(path);
  CHECK(raw.integer("PRAGMA user_version") == 3);
  CHECK(raw.integer("SELECT count(*) FROM blobs") == 3);
  CHECK(raw.integer("SELECT count(*) FROM devices") == 1);
  CHECK(raw.integer("SELECT ack_dropped_through FROM groups WHERE id = 1") == 0);
  CHECK(raw.integer("SELECT bytes_used FROM groups WHERE id = 1") == 6 + 100);
}

// ---------------------------------------------------------------------------------------------
// Devices and ACK watermarks

TEST_CASE("device records: HELLO creates, ACK raises the watermark, never lowers it, and is clamped",
          "[store][devices]") {
  TempDir dir;
  auto store = open_store(dir);
  const GroupId g = group_n(1);
  auto start = store->session_start(g, device_n(1));
  REQUIRE(start.has_value());
  CHECK_FALSE(start->group_exists);
  CHECK(start->group_count == 0);

  REQUIRE(seen(*store, g, device_n(1), "phone").is_ok());
  REQUIRE(seen(*store, g, device_n(2), "laptop").is_ok());
  for (std::uint32_t i = 1; i <= 5; ++i) push_ok(*store, make_push(g, i));

  REQUIRE(ack(*store, g, device_n(1), 3).is_ok());
  REQUIRE(ack(*store, g, device_n(1), 2).is_ok());         // lower: ignored
  REQUIRE(ack(*store, g, device_n(2), 1'000'000).is_ok());  // beyond max_cursor: clamped to 5
  REQUIRE(ack(*store, g, device_n(9), 4).is_ok());          // never said HELLO: ignored
  REQUIRE(ack(*store, group_n(77), device_n(1), 4).is_ok());  // unknown group: ignored, not created

  start = store->session_start(g, device_n(1));
  REQUIRE(start.has_value());
  CHECK(start->group_exists);
  CHECK(start->max_cursor == 5);
  REQUIRE(start->device.has_value());
  CHECK(start->device->acked_cursor == 3);
  CHECK(start->device->name == "phone");
  CHECK_FALSE(start->device->revoked);

  auto unknown = store->session_start(g, device_n(3));
  REQUIRE(unknown.has_value());
  CHECK_FALSE(unknown->device.has_value());
  CHECK(unknown->device_count == 2);

  auto devices = store->list_devices(g, 100);
  REQUIRE(devices.has_value());
  REQUIRE(devices->size() == 2);
  CHECK((*devices)[0].device_id == device_n(1));
  CHECK((*devices)[1].acked_cursor == 5);
  CHECK((*devices)[1].last_seen_ms == kNow + 1);

  REQUIRE(seen(*store, g, device_n(1), std::nullopt, kNow + 50).is_ok());  // a disconnect keeps the name
  devices = store->list_devices(g, 1);
  REQUIRE(devices->size() == 1);
  CHECK((*devices)[0].name == "phone");
  CHECK((*devices)[0].last_seen_ms == kNow + 50);
  CHECK(store->stats()->groups == 1);  // group 77 was never created
}

TEST_CASE("a group stops accepting new device keys at max_devices_per_group", "[store][devices][limits]") {
  TempDir dir;
  StoreLimits limits;
  limits.max_devices_per_group = 2;
  auto store = open_store(dir, {}, limits);
  const GroupId g = group_n(1);
  CHECK(seen(*store, g, device_n(1)).is_ok());
  CHECK(seen(*store, g, device_n(2)).is_ok());
  CHECK(seen(*store, g, device_n(3)).code() == Code::kGroupFull);
  CHECK(seen(*store, g, device_n(1), "renamed").is_ok());  // known devices still update
  CHECK(seen(*store, group_n(2), device_n(3)).is_ok());    // other groups are not affected
  CHECK(store->list_devices(g, 100)->size() == 2);
}

// ---------------------------------------------------------------------------------------------
// Quotas and caps

TEST_CASE("a group over its quota gets GROUP_QUOTA_EXCEEDED before the write, retries still get duplicates",
          "[store][limits]") {
  TempDir dir;
  StoreLimits limits;
  limits.group_quota_bytes = 1000;
  auto store = open_store(dir, {}, limits);
  const GroupId g = group_n(1);
  for (std::uint32_t i = 1; i <= 3; ++i) push_ok(*store, make_push(g, i, 300));
  auto over = push_sync(*store, make_push(g, 4, 101));  // 900 + 101 > 1000
  REQUIRE_FALSE(over.has_value());
  CHECK(over.error().code() == Code::kGroupQuotaExceeded);
  CHECK(push_ok(*store, make_push(g, 5, 100)) == 4);  // exactly at the quota: fits, no cursor consumed by #4
  auto dup = push_sync(*store, make_push(g, 2, 300));       // a retried push of a stored blob
  REQUIRE(dup.has_value());
  CHECK(dup->duplicate);
  CHECK(dup->cursor == 2);
  CHECK(push_ok(*store, make_push(group_n(2), 1, 900)) == 1);  // quotas are per group
  CHECK(store->stats()->bytes == 1000 + 900);
  // Freeing space (a DELETE) makes room again.
  REQUIRE(remove(*store, g, 1, device_n(1), false).value().removed);
  CHECK(push_ok(*store, make_push(g, 6, 300)) == 5);
}

TEST_CASE("quota is checked within one batch too", "[store][limits]") {
  TempDir dir;
  StoreLimits limits;
  limits.group_quota_bytes = 1000;
  StoreOptions options;
  options.max_batch = 64;
  auto store = open_store(dir, options, limits);
  const GroupId g = group_n(1);
  std::vector<std::future<Result<PushResult>>> futures;
  for (std::uint32_t i = 1; i <= 20; ++i) {
    auto promise = std::make_shared<std::promise<Result<PushResult>>>();
    futures.push_back(promise->get_future());
    store->submit_push(make_push(g, i, 100), [promise](Result<PushResult> r) { promise->set_value(std::move(r)); });
  }
  int stored = 0;
  int refused = 0;
  for (auto& f : futures) {
    auto r = wait_for(f);
    if (r) {
      ++stored;
    } else {
      CHECK(r.error().code() == Code::kGroupQuotaExceeded);
      ++refused;
    }
  }
  CHECK(stored == 10);
  CHECK(refused == 10);
  CHECK(store->stats()->bytes == 1000);
}

TEST_CASE("the relay storage cap refuses with STORAGE_FULL across groups", "[store][limits]") {
  TempDir dir;
  StoreLimits limits;
  limits.storage_cap_bytes = 1000;
  auto store = open_store(dir, {}, limits);
  push_ok(*store, make_push(group_n(1), 1, 600));
  auto full = push_sync(*store, make_push(group_n(2), 1, 600));
  REQUIRE_FALSE(full.has_value());
  CHECK(full.error().code() == Code::kStorageFull);
  push_ok(*store, make_push(group_n(2), 2, 400));  // exactly at the cap
  // Space given back (a DELETE; cleanup does the same) is usable again.
  REQUIRE(remove(*store, group_n(1), 1, device_n(1), false).value().removed);
  push_ok(*store, make_push(group_n(2), 1, 600));
  CHECK(store->stats()->bytes == 1000);
}

TEST_CASE("max_groups refuses new groups with STORAGE_FULL and keeps serving existing ones", "[store][limits]") {
  TempDir dir;
  StoreLimits limits;
  limits.max_groups = 2;
  auto store = open_store(dir, {}, limits);
  push_ok(*store, make_push(group_n(1), 1));
  CHECK(seen(*store, group_n(2), device_n(1)).is_ok());  // a HELLO also makes a group
  auto third = push_sync(*store, make_push(group_n(3), 1));
  REQUIRE_FALSE(third.has_value());
  CHECK(third.error().code() == Code::kStorageFull);
  CHECK(seen(*store, group_n(3), device_n(1)).code() == Code::kStorageFull);
  push_ok(*store, make_push(group_n(1), 2));
  push_ok(*store, make_push(group_n(2), 1));
  CHECK(store->stats()->groups == 2);
  auto start = store->session_start(group_n(4), device_n(1));
  REQUIRE(start.has_value());
  CHECK(start->group_count == 2);  // what the hub compares with max_groups at HELLO
}

// ---------------------------------------------------------------------------------------------
// DELETE

TEST_CASE("DELETE: the sender may delete, another device only with force, a missing blob is a no-op",
          "[store][delete]") {
  TempDir dir;
  auto store = open_store(dir);
  const GroupId g = group_n(1);
  push_ok(*store, make_push(g, 1, 100, kNever, device_n(1)));
  push_ok(*store, make_push(g, 2, 100, kNever, device_n(1)));

  auto not_owner = remove(*store, g, 1, device_n(2), false);
  REQUIRE_FALSE(not_owner.has_value());
  CHECK(not_owner.error().code() == Code::kNotBlobOwner);
  CHECK(cursors(*store, g) == std::vector<Cursor>{1, 2});

  CHECK(remove(*store, g, 1, device_n(1), false).value().removed);
  CHECK(remove(*store, g, 2, device_n(2), true).value().removed);  // force
  CHECK_FALSE(remove(*store, g, 2, device_n(1), false).value().removed);  // already gone
  CHECK_FALSE(remove(*store, group_n(9), 1, device_n(1), false).value().removed);  // unknown group
  CHECK(cursors(*store, g).empty());
  CHECK(store->stats()->blobs == 0);
  CHECK(store->stats()->bytes == 0);
  CHECK(push_ok(*store, make_push(g, 3)) == 3);  // cursors are never reused
}

// ---------------------------------------------------------------------------------------------
// Cleanup

TEST_CASE("cleanup removes exactly the expired blobs in bounded batches and fixes the counts", "[store][cleanup]") {
  TempDir dir;
  StoreOptions options;
  options.cleanup_batch = 3;
  auto store = open_store(dir, options);
  const GroupId a = group_n(1);
  const GroupId b = group_n(2);
  for (std::uint32_t i = 1; i <= 10; ++i) push_ok(*store, make_push(a, i, 10, kNow + i * 1000));
  for (std::uint32_t i = 1; i <= 4; ++i) push_ok(*store, make_push(b, i, 20, kNow + i * 1000));

  const CleanupReport first = cleanup(*store, kNow + 5000);  // a 1..5 and b 1..4 expired
  CHECK(first.expired_removed == 9);
  CHECK(first.bytes_removed == 5 * 10 + 4 * 20);
  CHECK(first.transactions >= 4);  // 9 rows in batches of at most 3 (+ the empty last one)
  CHECK(cursors(*store, a) == std::vector<Cursor>{6, 7, 8, 9, 10});
  CHECK(cursors(*store, b).empty());
  const StoreStats stats = store->stats().value();
  CHECK(stats.blobs == 5);
  CHECK(stats.bytes == 50);

  CHECK(cleanup(*store, kNow + 5000).expired_removed == 0);  // idempotent
  CHECK(push_ok(*store, make_push(b, 5)) == 5);              // cursors continue after cleanup
}

TEST_CASE("drop-acked cleanup removes what every non-revoked device ACKed, and only when enabled",
          "[store][cleanup]") {
  TempDir dir;
  auto store = open_store(dir);
  const GroupId g = group_n(1);
  REQUIRE(seen(*store, g, device_n(1)).is_ok());
  REQUIRE(seen(*store, g, device_n(2)).is_ok());
  REQUIRE(seen(*store, g, device_n(3)).is_ok());
  for (std::uint32_t i = 1; i <= 6; ++i) push_ok(*store, make_push(g, i));
  REQUIRE(ack(*store, g, device_n(1), 6).is_ok());
  REQUIRE(ack(*store, g, device_n(2), 4).is_ok());
  REQUIRE(ack(*store, g, device_n(3), 2).is_ok());

  CHECK(cleanup(*store, kNow, /*drop_acked=*/false).acked_removed == 0);
  CHECK(cursors(*store, g).size() == 6);

  CHECK(cleanup(*store, kNow, true).acked_removed == 2);  // min watermark is 2
  CHECK(cursors(*store, g) == std::vector<Cursor>{3, 4, 5, 6});

  // Device 3 is revoked: it no longer holds anything back.
  {
    RawDb raw(dir.file("relay.db"));
    raw.exec("UPDATE devices SET revoked = 1 WHERE device_id = x'" + device_n(3).to_hex() + "'");
  }
  CHECK(cleanup(*store, kNow, true).acked_removed == 2);  // now the minimum is 4
  CHECK(cursors(*store, g) == std::vector<Cursor>{5, 6});
  auto start = store->session_start(g, device_n(3));
  REQUIRE(start->device.has_value());
  CHECK(start->device->revoked);
  CHECK(store->stats()->blobs == 2);
}

TEST_CASE("drop-acked cleanup of a large group runs in many short transactions", "[store][cleanup]") {
  TempDir dir;
  StoreOptions options;
  options.cleanup_batch = 16;
  auto store = open_store(dir, options);
  const GroupId g = group_n(1);
  REQUIRE(seen(*store, g, device_n(1)).is_ok());
  for (std::uint32_t i = 1; i <= 100; ++i) push_ok(*store, make_push(g, i, 10));
  REQUIRE(ack(*store, g, device_n(1), 90).is_ok());
  const CleanupReport report = cleanup(*store, kNow, true);
  CHECK(report.acked_removed == 90);
  CHECK(report.transactions >= 90 / 16);
  CHECK(cursors(*store, g).size() == 10);
  CHECK(store->stats()->bytes == 100);
}

TEST_CASE("cleanup forgets long-absent devices but never revoked ones, and groups that never stored a blob",
          "[store][cleanup][devices]") {
  TempDir dir;
  auto store = open_store(dir);
  const GroupId used = group_n(1), empty = group_n(2), guarded = group_n(3), orphan = group_n(4);
  REQUIRE(seen(*store, used, device_n(1), "old", kNow).is_ok());
  REQUIRE(seen(*store, used, device_n(2), "recent", kNow + 100'000).is_ok());
  REQUIRE(seen(*store, empty, device_n(3), "old", kNow).is_ok());
  REQUIRE(seen(*store, guarded, device_n(4), "revoked", kNow).is_ok());
  push_ok(*store, make_push(used, 1));
  push_ok(*store, make_push(orphan, 1));  // a group with blobs but no device rows
  {
    RawDb raw(dir.file("relay.db"));
    raw.exec("UPDATE devices SET revoked = 1 WHERE device_id = x'" + device_n(4).to_hex() + "'");
  }
  CHECK(store->stats()->groups == 4);

  // Retention 10 s at kNow + 50 s: everything last seen before kNow + 40 s is stale.
  const CleanupReport report = cleanup(*store, kNow + 50'000, false, 10'000);
  CHECK(report.devices_removed == 2);  // device 1 and device 3; the revoked device 4 stays
  CHECK(report.groups_removed == 1);   // `empty`: no cursor used, no device left
  CHECK(store->stats()->groups == 3);
  auto gone = store->session_start(empty, device_n(3));
  REQUIRE(gone.has_value());
  CHECK_FALSE(gone->group_exists);
  CHECK(gone->group_count == 3);
  auto revoked = store->session_start(guarded, device_n(4));
  REQUIRE(revoked->device.has_value());
  CHECK(revoked->device->revoked);
  CHECK(store->list_devices(used, 10)->size() == 1);
  CHECK(cursors(*store, orphan) == std::vector<Cursor>{1});  // groups with a used cursor are never forgotten
  CHECK(push_ok(*store, make_push(used, 2)) == 2);
  CHECK(cleanup(*store, kNow + 50'000, false, 0).devices_removed == 0);  // retention 0: keep forever
}

// The database file and the push journal's segment files: what the store holds on disk.
std::uintmax_t disk_bytes(const TempDir& dir) {
  std::uintmax_t bytes = fs::file_size(dir.file("relay.db"));
  for (const auto& entry : fs::directory_iterator(dir.file(""))) {
    if (entry.path().filename().string().rfind("relay.db-seg-", 0) == 0) bytes += entry.file_size();
  }
  return bytes;
}

TEST_CASE("cleanup gives the disk back: dead segments are deleted, sparse ones compacted inline, and the database "
          "file shrinks with incremental vacuum",
          "[store][cleanup]") {
  TempDir dir;
  StoreOptions options;
  options.journal_clear_bytes = 1 << 20;  // segments of ~1 MiB, so most of them are sealed
  auto store = open_store(dir, options);
  const GroupId g = group_n(1);
  // 160 blobs of 64 KiB; every 16th lives on (10 blobs, 1/16 of the bytes: each segment is sparse).
  for (std::uint32_t i = 1; i <= 160; ++i) {
    push_ok(*store, make_push(g, i, 64 * 1024, i % 16 == 0 ? kNow + 5000 : kNow + 1000));
  }
  (void)cleanup(*store, kNow);  // applies everything, and folds the WAL into the file
  const auto before = disk_bytes(dir);
  CHECK(before > 10 * 1024 * 1024);
  const StoreStats stats_before = store->stats().value();  // what /metrics reports
  CHECK(stats_before.segment_files >= 10);
  CHECK(stats_before.segment_bytes == before - fs::file_size(dir.file("relay.db")));

  const CleanupReport first = cleanup(*store, kNow + 1000);
  CHECK(first.expired_removed == 150);
  const auto compacted = disk_bytes(dir);
  INFO("on disk before " << before << " bytes, after the first cleanup " << compacted);
  CHECK(compacted < before / 4);
  const StoreStats stats_after = store->stats().value();
  CHECK(stats_after.segment_files <= 2);
  CHECK(stats_after.segment_bytes == compacted - fs::file_size(dir.file("relay.db")));
  {
    RawDb raw(dir.file("relay.db"));
    // The live payloads of sealed segments moved inline; only the newest segment may keep some.
    CHECK(raw.integer("SELECT count(*) FROM blobs WHERE segment = 0") >= 8);
    CHECK(raw.integer("SELECT count(*) FROM segments") <= 2);
  }
  for (std::uint32_t i = 16; i <= 160; i += 16) {  // compaction changed where they lie, not what they hold
    auto page = store->pull(g, i - 1, 1, kNow).value();
    REQUIRE(page.blobs.size() == 1);
    CHECK(page.blobs[0].payload == make_push(g, i, 64 * 1024).payload);
  }

  const auto database_before = fs::file_size(dir.file("relay.db"));
  const CleanupReport second = cleanup(*store, kNow + 5000);
  CHECK(second.expired_removed == 10);
  CHECK(second.pages_released > 0);  // the inline payloads' pages
  const auto database_after = fs::file_size(dir.file("relay.db"));
  INFO("database file before the second cleanup " << database_before << " bytes, after " << database_after);
  CHECK(database_after < database_before / 2);
}

TEST_CASE("a pull whose segment a cleanup deletes after the pull's snapshot reads the blob again from a newer one",
          "[store][cleanup]") {
  TempDir dir;
  StoreOptions options;
  options.journal_clear_bytes = 1 << 20;
  // Between the pull's snapshot (which points into a segment) and its read of that segment, the
  // first time only: a cleanup that moves the live blob inline and deletes the sparse segment.
  std::function<void()> between;
  int reads = 0;
  options.before_segment_reads = [&] {
    ++reads;
    if (between) std::exchange(between, nullptr)();
  };
  auto store = open_store(dir, options);
  const GroupId g = group_n(1);
  for (std::uint32_t i = 1; i <= 48; ++i) {  // every 16th lives on: the sealed segments are sparse
    push_ok(*store, make_push(g, i, 64 * 1024, i % 16 == 0 ? kNow + 5000 : kNow + 1000));
  }
  (void)cleanup(*store, kNow);  // applies everything: blob 16's row points into the first segment
  const auto first_segment = relay::sqlite::list_segments(dir.file("relay.db")).value().front();
  CleanupReport report;
  between = [&] { report = cleanup(*store, kNow + 1000); };

  const auto page = store->pull(g, 15, 1, kNow);
  REQUIRE(page.has_value());
  REQUIRE(page->blobs.size() == 1);
  CHECK(page->blobs[0].cursor == 16);
  CHECK(page->blobs[0].payload == make_push(g, 16, 64 * 1024).payload);
  CHECK(report.expired_removed == 45);
  CHECK_FALSE(fs::exists(relay::sqlite::segment_path_for(dir.file("relay.db"), first_segment)));
  CHECK(reads == 1);  // the second snapshot found blob 16 inline: no segment read at all
}

TEST_CASE("a cleanup queued at close completes with RELAY_SHUTTING_DOWN or its report", "[store][cleanup]") {
  TempDir dir;
  auto store = open_store(dir);
  push_ok(*store, make_push(group_n(1), 1, 10, kNow));
  auto promise = std::make_shared<std::promise<Result<CleanupReport>>>();
  auto future = promise->get_future();
  store->submit_cleanup(CleanupRequest{kNow + 1, false},
                        [promise](Result<CleanupReport> r) { promise->set_value(std::move(r)); });
  store->close();
  auto result = wait_for(future);
  if (!result) CHECK(result.error().code() == Code::kRelayShuttingDown);
  bool late_called = false;
  store->submit_cleanup(CleanupRequest{kNow, false}, [&](Result<CleanupReport> r) {
    late_called = true;
    CHECK(r.error().code() == Code::kRelayShuttingDown);
  });
  CHECK(late_called);
}

// ---------------------------------------------------------------------------------------------
// Pull byte budget

TEST_CASE("pull stops at its byte budget but always returns at least one blob", "[store][pull]") {
  TempDir dir;
  auto store = open_store(dir);
  const GroupId g = group_n(1);
  for (std::uint32_t i = 1; i <= 10; ++i) push_ok(*store, make_push(g, i, 100 * 1024));
  const std::size_t budget = 3 * (100 * 1024 + kPulledBlobOverheadBytes) + 10;
  auto page = store->pull(g, 0, 1000, kNow, budget).value();
  CHECK(page.blobs.size() == 3);
  CHECK(page.has_more);
  auto tiny = store->pull(g, 3, 1000, kNow, 10).value();  // budget below one blob: still one
  REQUIRE(tiny.blobs.size() == 1);
  CHECK(tiny.blobs[0].cursor == 4);
  CHECK(tiny.has_more);
  auto rest = store->pull(g, 4, 1000, kNow).value();  // no budget: everything
  CHECK(rest.blobs.size() == 6);
  CHECK_FALSE(rest.has_more);
}

// ---------------------------------------------------------------------------------------------
// A full database

TEST_CASE("a full database answers STORAGE_FULL, keeps serving pulls, and recovers when space returns",
          "[store][disk]") {
  // PRAGMA max_page_count makes SQLite report SQLITE_FULL exactly as a full disk does; the relay
  // process test does the same on a real 4 MiB tmpfs when it may mount one.
  TempDir dir;
  StoreOptions options;
  // ~240 KB with 4 KiB pages: payloads live in the segment files, so the rows fill it.
  options.max_page_count = 60;
  auto store = open_store(dir, options);
  const GroupId g = group_n(1);
  std::uint32_t n = 0;
  std::optional<Status> full;
  while (n < 20000 && !full) {
    auto r = push_sync(*store, make_push(g, ++n, 1024, kNow + 1000));
    if (!r) full = r.error();
  }
  REQUIRE(full.has_value());
  CHECK(full->code() == Code::kStorageFull);
  const std::size_t stored = n - 1;
  CHECK(stored > 10);
  std::size_t readable = 0;  // reads still work
  for (Cursor after = 0;;) {
    auto page = store->pull(g, after, 1000, kNow);
    REQUIRE(page.has_value());
    readable += page->blobs.size();
    if (page->blobs.empty() || !page->has_more) break;
    after = page->blobs.back().cursor;
  }
  CHECK(readable == stored);

  // Space comes back (here: the blobs expire and cleanup removes them).
  CHECK(cleanup(*store, kNow + 1000).expired_removed == stored);
  CHECK(push_ok(*store, make_push(g, 50000, 1024)) == stored + 1);  // no cursor was burnt by the failure
}

}  // namespace
