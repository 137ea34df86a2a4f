// The store's online backup (store/store_backup.h): a copy taken while pushes, applies and
// cleanups run, and segments are compacted and deleted under it, must open as a store that holds
// every blob acknowledged before the copy started, exactly.
#include "store/store_backup.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "store/push_journal.h"
#include "store/store.h"
#include "store_fixture.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;
using namespace blindsync::relay::test;
namespace fs = std::filesystem;

constexpr std::size_t kPayloadBytes = 300;

Result<CleanupReport> cleanup_sync(Store& store, std::uint64_t now_ms) {
  auto promise = std::make_shared<std::promise<Result<CleanupReport>>>();
  auto future = promise->get_future();
  store.submit_cleanup(CleanupRequest{now_ms, false},
                       [promise](Result<CleanupReport> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(kStoreHangGuard) != std::future_status::ready) FAIL("cleanup hung");
  return future.get();
}

TEST_CASE(
    "backup: a copy taken while pushes, applies and cleanups delete segments holds every blob acknowledged "
    "before it",
    "[store][backup]") {
  TempDir dir;
  StoreOptions options;
  options.path = dir.file("relay.db");
  options.durability = Durability::kNormal;
  options.journal_clear_bytes = 16 * 1024;  // a new segment every ~45 pushes
  options.apply_max_blobs = 20;
  options.apply_delay_ms = 1;
  auto store = open_sqlite_store(options).value();
  const GroupId kept = group_n(1);
  const GroupId churned = group_n(2);

  // One push in eight lives on; the rest expire at once, so cleanup finds the sealed segments
  // mostly dead: it compacts them (their live payloads move inline) and deletes them.
  std::atomic<bool> running{true};
  std::atomic<std::uint32_t> kept_acked{0};
  std::atomic<int> failures{0};
  std::thread pusher([&] {
    std::uint32_t churn_n = 0;
    for (std::uint32_t i = 1; i <= 100'000 && running.load(); ++i) {
      auto r = push_sync(
          *store, PushRequest{kept, blob_n(i), device_n(1), payload_n(i, kPayloadBytes), kNow, kNever});
      if (!r || r->cursor != i) ++failures;
      kept_acked = i;
      for (int k = 0; k < 7; ++k) {
        ++churn_n;
        auto c = push_sync(*store, PushRequest{churned, blob_n(1'000'000 + churn_n), device_n(1),
                                               payload_n(churn_n, kPayloadBytes), kNow, kNow + 1});
        if (!c) ++failures;
      }
    }
  });
  std::thread cleaner([&] {
    while (running.load()) {
      auto report = cleanup_sync(*store, kNow + 10);
      if (!report) ++failures;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });

  for (int b = 0; b < 4; ++b) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    const std::uint32_t acked_before = kept_acked.load();
    const std::string destination = dir.file("backup-" + std::to_string(b));
    auto report = backup_sqlite_store(options.path, destination);
    if (!report) FAIL_CHECK("backup: " << report.error().message());
    if (!report) break;
    CHECK(report->segments > 0);
    CHECK((fs::status(destination).permissions() & fs::perms::others_all) == fs::perms::none);

    StoreOptions copy = options;
    copy.path = destination + "/relay.db";
    auto restored = open_sqlite_store(copy);
    if (!restored) FAIL_CHECK("the copy does not open: " << restored.error().message());
    if (!restored) break;
    Cursor after = 0;
    std::uint32_t wrong = 0;
    for (int page_no = 0; page_no < 10'000; ++page_no) {
      auto page = (*restored)->pull(kept, after, 500, kNow);
      REQUIRE(page.has_value());
      for (const auto& blob : page->blobs) {
        if (blob.cursor != after + 1 ||
            blob.payload != payload_n(static_cast<std::uint32_t>(blob.cursor), kPayloadBytes)) {
          ++wrong;
        }
        after = blob.cursor;
      }
      if (!page->has_more) break;
    }
    INFO("backup " << b << ": " << acked_before << " acknowledged before it, " << after << " in the copy");
    CHECK(wrong == 0);
    CHECK(after >= acked_before);
    (*restored)->close();
  }
  running = false;
  pusher.join();
  cleaner.join();
  CHECK(failures == 0);
  // The test only means something if segments went away under the backups.
  auto left = relay::sqlite::list_segments(options.path).value();
  INFO("segments left: " << left.size());
  CHECK(left.front() > 1);
  store->close();
}

TEST_CASE(
    "store: pulls running while cleanup compacts and deletes segments under them get every blob, exactly",
    "[store][journal][concurrency]") {
  TempDir dir;
  StoreOptions options;
  options.path = dir.file("relay.db");
  options.durability = Durability::kNormal;
  options.journal_clear_bytes = 8 * 1024;
  options.apply_max_blobs = 20;
  options.apply_delay_ms = 1;
  auto store = open_sqlite_store(options).value();
  const GroupId kept = group_n(1);
  const GroupId churned = group_n(2);

  std::atomic<bool> running{true};
  std::atomic<std::uint32_t> kept_acked{0};
  std::atomic<int> failures{0};
  std::thread pusher([&] {
    std::uint32_t churn_n = 0;
    for (std::uint32_t i = 1; i <= 1000 && running.load(); ++i) {
      if (!push_sync(*store,
                     PushRequest{kept, blob_n(i), device_n(1), payload_n(i, kPayloadBytes), kNow, kNever})) {
        ++failures;
      }
      kept_acked = i;
      for (int k = 0; k < 7; ++k) {
        ++churn_n;
        if (!push_sync(*store, PushRequest{churned, blob_n(1'000'000 + churn_n), device_n(1),
                                           payload_n(churn_n, kPayloadBytes), kNow, kNow + 1})) {
          ++failures;
        }
      }
    }
  });
  std::thread cleaner([&] {
    while (running.load()) {
      if (!cleanup_sync(*store, kNow + 10)) ++failures;
    }
  });
  // Each pass pulls the kept group from the start in small pages: rows move inline and segment
  // files go while it reads (a page whose segment went is read again from a newer snapshot).
  int passes = 0;
  std::uint32_t wrong = 0;
  int errors = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (kept_acked.load() < 1000 && std::chrono::steady_clock::now() < deadline) {
    const std::uint32_t acked_before = kept_acked.load();
    Cursor after = 0;
    for (int page_no = 0; page_no < 10'000; ++page_no) {
      auto page = store->pull(kept, after, 7, kNow);
      if (!page) {
        ++errors;
        break;
      }
      for (const auto& blob : page->blobs) {
        if (blob.cursor != after + 1 ||
            blob.payload != payload_n(static_cast<std::uint32_t>(blob.cursor), kPayloadBytes)) {
          ++wrong;
        }
        after = blob.cursor;
      }
      if (!page->has_more) break;
    }
    if (after < acked_before) ++wrong;
    ++passes;
  }
  running = false;
  pusher.join();
  cleaner.join();
  INFO(passes << " passes");
  CHECK(passes > 3);
  CHECK(errors == 0);
  CHECK(wrong == 0);
  CHECK(failures == 0);
  store->close();
  RawDb raw(options.path);
  CHECK(raw.integer("SELECT count(*) FROM blobs WHERE segment = 0") > 0);  // compaction moved some inline
  CHECK(relay::sqlite::list_segments(options.path).value().front() > 1);   // and deleted segments
}

TEST_CASE("backup: refuses a destination that is not empty, and a data directory that has no database",
          "[store][backup]") {
  TempDir dir;
  StoreOptions options;
  options.path = dir.file("relay.db");
  auto store = open_sqlite_store(options).value();
  REQUIRE(push_sync(*store, PushRequest{group_n(1), blob_n(1), device_n(1), payload_n(1), kNow, kNever}));
  fs::create_directory(dir.file("full"));
  std::ofstream(dir.file("full/old")) << "x";
  auto refused = backup_sqlite_store(options.path, dir.file("full"));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message().find("is not empty") != std::string::npos);
  CHECK(fs::exists(dir.file("full/old")));  // nothing of it touched
  auto missing = backup_sqlite_store(dir.file("nothing.db"), dir.file("new"));
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message().find("no database") != std::string::npos);
  store->close();
}

}  // namespace
