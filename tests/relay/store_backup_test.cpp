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

StoreOptions churn_options(const TempDir& dir, std::uint64_t segment_bytes) {
  StoreOptions options;
  options.path = dir.file("relay.db");
  options.durability = Durability::kNormal;
  options.journal_clear_bytes = segment_bytes;
  options.apply_max_blobs = 20;
  options.apply_delay_ms = 1;
  return options;
}

const GroupId kKept = group_n(1);
const GroupId kChurned = group_n(2);

// A store under churn. One thread pushes blobs that live on to kKept, and after each seven to
// kChurned that expire at once; another runs cleanup over and over, which finds the sealed
// segments mostly dead, compacts them (their live payloads move inline) and deletes them. The
// threads stop at the last kept push or at stop(), and are joined on destruction.
class ChurningStore {
 public:
  ChurningStore(Store& store, std::uint32_t kept_pushes, std::chrono::milliseconds cleanup_pause)
      : pusher_([this, &store, kept_pushes] { push(store, kept_pushes); }),
        cleaner_([this, &store, cleanup_pause] { clean(store, cleanup_pause); }) {}
  ~ChurningStore() { stop(); }
  ChurningStore(const ChurningStore&) = delete;
  ChurningStore& operator=(const ChurningStore&) = delete;

  void stop() {
    running_ = false;
    if (pusher_.joinable()) pusher_.join();
    if (cleaner_.joinable()) cleaner_.join();
  }
  std::uint32_t kept_acked() const { return kept_acked_.load(); }
  int failures() const { return failures_.load(); }

 private:
  void push(Store& store, std::uint32_t kept_pushes) {
    std::uint32_t churn_n = 0;
    for (std::uint32_t i = 1; i <= kept_pushes && running_.load(); ++i) {
      auto r = push_sync(
          store, PushRequest{kKept, blob_n(i), device_n(1), payload_n(i, kPayloadBytes), kNow, kNever});
      if (!r || r->cursor != i) ++failures_;
      kept_acked_ = i;
      for (int k = 0; k < 7; ++k) {
        ++churn_n;
        if (!push_sync(store, PushRequest{kChurned, blob_n(1'000'000 + churn_n), device_n(1),
                                          payload_n(churn_n, kPayloadBytes), kNow, kNow + 1})) {
          ++failures_;
        }
      }
    }
  }
  void clean(Store& store, std::chrono::milliseconds pause) {
    while (running_.load()) {
      if (!cleanup_sync(store, kNow + 10)) ++failures_;
      std::this_thread::sleep_for(pause);
    }
  }

  std::atomic<bool> running_{true};
  std::atomic<std::uint32_t> kept_acked_{0};
  std::atomic<int> failures_{0};
  std::thread pusher_;
  std::thread cleaner_;
};

// The kept group read from cursor 0 in pages of `page_limit`.
struct ReadBack {
  Cursor last = 0;          // the last cursor read
  std::uint32_t wrong = 0;  // blobs out of order or not holding their payload
  bool failed = false;      // a pull failed
};

ReadBack read_kept(Store& store, std::uint32_t page_limit) {
  ReadBack read;
  for (int page_no = 0; page_no < 10'000; ++page_no) {
    auto page = store.pull(kKept, read.last, page_limit, kNow);
    if (!page) {
      read.failed = true;
      break;
    }
    for (const auto& blob : page->blobs) {
      if (blob.cursor != read.last + 1 ||
          blob.payload != payload_n(static_cast<std::uint32_t>(blob.cursor), kPayloadBytes)) {
        ++read.wrong;
      }
      read.last = blob.cursor;
    }
    if (!page->has_more) break;
  }
  return read;
}

TEST_CASE(
    "backup: a copy taken while pushes, applies and cleanups delete segments holds every blob acknowledged "
    "before it",
    "[store][backup]") {
  TempDir dir;
  const StoreOptions options = churn_options(dir, 16 * 1024);  // a new segment every ~45 pushes
  auto store = open_sqlite_store(options).value();
  ChurningStore churn(*store, 100'000, std::chrono::milliseconds(5));

  for (int b = 0; b < 4; ++b) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    const std::uint32_t acked_before = churn.kept_acked();
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
    const ReadBack read = read_kept(**restored, 500);
    INFO("backup " << b << ": " << acked_before << " acknowledged before it, " << read.last
                   << " in the copy");
    CHECK_FALSE(read.failed);
    CHECK(read.wrong == 0);
    CHECK(read.last >= acked_before);
    (*restored)->close();
  }
  churn.stop();
  CHECK(churn.failures() == 0);
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
  const StoreOptions options = churn_options(dir, 8 * 1024);
  auto store = open_sqlite_store(options).value();
  ChurningStore churn(*store, 1000, std::chrono::milliseconds(0));
  // Each pass pulls the kept group from the start in small pages: rows move inline and segment
  // files go while it reads (a page whose segment went is read again from a newer snapshot).
  int passes = 0;
  std::uint32_t wrong = 0;
  int errors = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (churn.kept_acked() < 1000 && std::chrono::steady_clock::now() < deadline) {
    const std::uint32_t acked_before = churn.kept_acked();
    const ReadBack read = read_kept(*store, 7);
    if (read.failed) ++errors;
    wrong += read.wrong;
    if (read.last < acked_before) ++wrong;
    ++passes;
  }
  churn.stop();
  INFO(passes << " passes");
  CHECK(passes > 3);
  CHECK(errors == 0);
  CHECK(wrong == 0);
  CHECK(churn.failures() == 0);
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
