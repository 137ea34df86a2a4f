// Tests of the SQLite relay store (relay/src/store/store.h) on real database files in a fresh
// temporary directory per test.
#include <sys/stat.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "store/sqlite_db.h"
#include "store/store.h"
#include "store_fixture.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;
using namespace blindsync::relay::test;
namespace fs = std::filesystem;

PushRequest make_push(const GroupId& group, std::uint32_t n, std::uint64_t timestamp_ms = kNow,
                      std::uint64_t expires_at_ms = kNever) {
  PushRequest r;
  r.group_id = group;
  r.blob_id = blob_n(n);
  r.sender_id = device_n(static_cast<std::uint8_t>(n % 7));
  r.payload = payload_n(n);
  r.timestamp_ms = timestamp_ms;
  r.expires_at_ms = expires_at_ms;
  return r;
}

std::unique_ptr<Store> open_store(const std::string& path, Durability durability = Durability::kFull,
                                  std::size_t max_batch = 256) {
  StoreOptions options;
  options.path = path;
  options.durability = durability;
  options.max_batch = max_batch;
  auto store = open_sqlite_store(options);
  if (!store) FAIL("open_sqlite_store: " << store.error().message());
  return std::move(*store);
}

PushResult push_ok(Store& store, PushRequest request) {
  auto r = push_sync(store, std::move(request));
  if (!r) FAIL("push failed: " << r.error().message());
  return *r;
}

// Collects the results of asynchronous pushes by index.
class Collector {
 public:
  explicit Collector(std::size_t n) : results_(n) {}
  PushCompletion at(std::size_t i) {
    return [this, i](Result<PushResult> r) {
      std::lock_guard lock(mutex_);
      results_[i].emplace(std::move(r));
      ++done_;
      cv_.notify_all();
    };
  }
  void wait_all() {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, kStoreHangGuard, [this] { return done_ == results_.size(); })) {
      FAIL("only " << done_ << " of " << results_.size() << " completions ran");
    }
  }
  std::size_t done() {
    std::lock_guard lock(mutex_);
    return done_;
  }
  const Result<PushResult>& operator[](std::size_t i) const { return *results_[i]; }
  std::size_t size() const { return results_.size(); }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::optional<Result<PushResult>>> results_;
  std::size_t done_ = 0;
};

// Holds the writer thread inside a completion until opened, so that every push submitted in the
// meantime is taken by the writer as ONE batch. Declare it after the store it blocks: it opens
// itself on destruction, before the store's destructor joins the writer.
class WriterGate {
 public:
  WriterGate() : release_(release_promise_.get_future().share()) {}
  ~WriterGate() { open(); }
  WriterGate(const WriterGate&) = delete;
  WriterGate& operator=(const WriterGate&) = delete;

  // Submits a push whose completion blocks the writer; returns once the writer is blocked.
  void close_on(Store& store, PushRequest request) {
    auto entered = std::make_shared<std::promise<void>>();
    auto entered_future = entered->get_future();
    auto release = release_;
    store.submit_push(std::move(request), [entered, release](Result<PushResult> r) {
      (void)r;
      entered->set_value();
      release.wait_for(kStoreHangGuard);
    });
    if (entered_future.wait_for(kStoreHangGuard) != std::future_status::ready) FAIL("writer never ran the gate push");
  }
  void open() {
    if (!opened_) {
      opened_ = true;
      release_promise_.set_value();
    }
  }

 private:
  std::promise<void> release_promise_;
  std::shared_future<void> release_;
  bool opened_ = false;
};

// Every non-expired blob of a group, paging through pull().
std::vector<PulledBlob> pull_all(Store& store, const GroupId& group, std::uint32_t page_size = 1000,
                                 std::uint64_t now_ms = kNow) {
  std::vector<PulledBlob> all;
  Cursor after = 0;
  for (int page_count = 0; page_count < 100000; ++page_count) {
    auto page = store.pull(group, after, page_size, now_ms);
    if (!page) FAIL("pull failed: " << page.error().message());
    for (auto& b : page->blobs) all.push_back(std::move(b));
    if (!all.empty()) after = all.back().cursor;
    if (!page->has_more) return all;
  }
  FAIL("pull_all did not finish");
  return all;
}

std::vector<Cursor> cursors_of(const std::vector<PulledBlob>& blobs) {
  std::vector<Cursor> out;
  for (const auto& b : blobs) out.push_back(b.cursor);
  return out;
}

std::vector<Cursor> range(Cursor first, Cursor last) {
  std::vector<Cursor> out;
  for (Cursor c = first; c <= last; ++c) out.push_back(c);
  return out;
}

}  // namespace

TEST_CASE("cursors start at 1 and are gap-free per group, independent across groups", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"));
  const GroupId a = group_n(1);
  const GroupId b = group_n(2);

  std::vector<Cursor> got_a;
  std::vector<Cursor> got_b;
  for (std::uint32_t i = 0; i < 10; ++i) {
    got_a.push_back(push_ok(*store, make_push(a, 100 + i)).cursor);
    if (i % 2 == 0) got_b.push_back(push_ok(*store, make_push(b, 200 + i)).cursor);
  }
  CHECK(got_a == range(1, 10));
  CHECK(got_b == range(1, 5));
  CHECK(store->max_cursor(a).value() == 10);
  CHECK(store->max_cursor(b).value() == 5);

  auto blobs = pull_all(*store, a);
  REQUIRE(blobs.size() == 10);
  for (std::uint32_t i = 0; i < 10; ++i) {
    CHECK(blobs[i].cursor == i + 1);
    CHECK(blobs[i].blob_id == blob_n(100 + i));
    CHECK(blobs[i].sender_id == device_n(static_cast<std::uint8_t>((100 + i) % 7)));
    CHECK(blobs[i].timestamp == kNow);
    CHECK(blobs[i].payload == payload_n(100 + i));
  }
}

TEST_CASE("a repeated push returns the original cursor and timestamp with duplicate=true", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"));
  const GroupId g = group_n(1);

  auto first = push_ok(*store, make_push(g, 7, 1000));
  CHECK(first.cursor == 1);
  CHECK(first.timestamp_ms == 1000);
  CHECK_FALSE(first.duplicate);
  CHECK(push_ok(*store, make_push(g, 8, 2000)).cursor == 2);

  PushRequest retry = make_push(g, 7, 9999);
  retry.payload = payload_n(4242);  // a retry with other bytes does not overwrite the original
  auto again = push_ok(*store, retry);
  CHECK(again.cursor == 1);
  CHECK(again.timestamp_ms == 1000);
  CHECK(again.duplicate);

  CHECK(store->max_cursor(g).value() == 2);
  CHECK(push_ok(*store, make_push(g, 9)).cursor == 3);  // the duplicate consumed no cursor
  auto blobs = pull_all(*store, g);
  REQUIRE(blobs.size() == 3);
  CHECK(blobs[0].payload == payload_n(7));
  auto stats = store->stats().value();
  CHECK(stats.blobs == 3);
  CHECK(stats.bytes == 3 * payload_n(0).size());
}

TEST_CASE("duplicates within one batch get the first push's cursor", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"));
  WriterGate gate;
  const GroupId g = group_n(1);
  const GroupId other = group_n(2);

  gate.close_on(*store, make_push(g, 1));  // cursor 1; the writer now waits in its completion
  Collector results(5);
  store->submit_push(make_push(g, 10, 111), results.at(0));
  store->submit_push(make_push(g, 11, 222), results.at(1));
  store->submit_push(make_push(g, 10, 333), results.at(2));      // duplicate of #0, same batch
  store->submit_push(make_push(g, 12, 444), results.at(3));
  store->submit_push(make_push(other, 10, 555), results.at(4));  // same blob id, other group
  gate.open();
  results.wait_all();

  for (std::size_t i = 0; i < results.size(); ++i) REQUIRE(results[i].has_value());
  CHECK(results[0]->cursor == 2);
  CHECK_FALSE(results[0]->duplicate);
  CHECK(results[1]->cursor == 3);
  CHECK(results[2]->cursor == 2);
  CHECK(results[2]->timestamp_ms == 111);
  CHECK(results[2]->duplicate);
  CHECK(results[3]->cursor == 4);
  CHECK_FALSE(results[3]->duplicate);
  CHECK(results[4]->cursor == 1);
  CHECK_FALSE(results[4]->duplicate);
  CHECK(cursors_of(pull_all(*store, g)) == range(1, 4));
  CHECK(store->max_cursor(other).value() == 1);
}

TEST_CASE("8 threads x 500 concurrent pushes get cursors 1..4000 with no gap or duplicate", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"));
  const GroupId g = group_n(9);
  constexpr std::uint32_t kThreads = 8;
  constexpr std::uint32_t kPerThread = 500;
  Collector results(kThreads * kPerThread);

  std::vector<std::thread> threads;
  for (std::uint32_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (std::uint32_t i = 0; i < kPerThread; ++i) {
        const std::uint32_t n = t * kPerThread + i;
        store->submit_push(make_push(g, n), results.at(n));
      }
    });
  }
  for (auto& th : threads) th.join();
  results.wait_all();

  std::vector<Cursor> cursors;
  std::map<Cursor, std::uint32_t> blob_at;
  for (std::uint32_t n = 0; n < results.size(); ++n) {
    REQUIRE(results[n].has_value());
    CHECK_FALSE(results[n]->duplicate);
    cursors.push_back(results[n]->cursor);
    blob_at[results[n]->cursor] = n;
  }
  std::sort(cursors.begin(), cursors.end());
  CHECK(cursors == range(1, kThreads * kPerThread));

  auto blobs = pull_all(*store, g, 333);
  REQUIRE(blobs.size() == kThreads * kPerThread);
  for (const auto& b : blobs) {
    const std::uint32_t n = blob_at[b.cursor];
    CHECK(b.blob_id == blob_n(n));  // the stored row at each acked cursor is that push's blob
    CHECK(b.payload == payload_n(n));
  }
}

TEST_CASE("reopening keeps the blobs and the epoch, and continues the cursors", "[store]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  const GroupId g = group_n(3);
  std::uint64_t epoch = 0;
  {
    auto store = open_store(path);
    epoch = store->epoch();
    CHECK(epoch != 0);
    for (std::uint32_t i = 1; i <= 3; ++i) CHECK(push_ok(*store, make_push(g, i)).cursor == i);
  }
  auto store = open_store(path, Durability::kNormal);
  CHECK(store->epoch() == epoch);
  CHECK(store->max_cursor(g).value() == 3);
  CHECK(cursors_of(pull_all(*store, g)) == range(1, 3));
  auto retry = push_ok(*store, make_push(g, 2));
  CHECK(retry.duplicate);
  CHECK(retry.cursor == 2);
  CHECK(push_ok(*store, make_push(g, 4)).cursor == 4);
}

TEST_CASE("each new database gets its own random epoch", "[store]") {
  TempDir dir;
  auto one = open_store(dir.file("one.db"));
  auto two = open_store(dir.file("two.db"));
  CHECK(one->epoch() != 0);
  CHECK(two->epoch() != 0);
  CHECK(one->epoch() != two->epoch());
}

TEST_CASE("pull pages by limit and after_cursor and reports has_more", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"));
  const GroupId g = group_n(1);
  for (std::uint32_t i = 1; i <= 10; ++i) push_ok(*store, make_push(g, i));

  auto p1 = store->pull(g, 0, 4, kNow).value();
  CHECK(cursors_of(p1.blobs) == range(1, 4));
  CHECK(p1.has_more);
  CHECK(p1.max_cursor == 10);

  auto p2 = store->pull(g, 4, 4, kNow).value();
  CHECK(cursors_of(p2.blobs) == range(5, 8));
  CHECK(p2.has_more);

  auto p3 = store->pull(g, 8, 4, kNow).value();
  CHECK(cursors_of(p3.blobs) == range(9, 10));
  CHECK_FALSE(p3.has_more);
  CHECK(p3.max_cursor == 10);

  auto exact = store->pull(g, 6, 4, kNow).value();  // exactly the remaining four
  CHECK(cursors_of(exact.blobs) == range(7, 10));
  CHECK_FALSE(exact.has_more);

  auto past = store->pull(g, 10, 4, kNow).value();
  CHECK(past.blobs.empty());
  CHECK_FALSE(past.has_more);
  CHECK(past.max_cursor == 10);

  auto beyond = store->pull(g, ~Cursor{0}, 4, kNow).value();  // hostile cursor
  CHECK(beyond.blobs.empty());
  CHECK_FALSE(beyond.has_more);

  auto zero = store->pull(g, 0, 0, kNow).value();
  CHECK(zero.blobs.empty());
  CHECK(zero.has_more);
}

TEST_CASE("expired blobs are never returned", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"));
  const GroupId g = group_n(1);
  // cursors 1..6; 2 and 4 expire at kNow, 5 just after, 6 never.
  push_ok(*store, make_push(g, 1, kNow - 10, kNow + 100));
  push_ok(*store, make_push(g, 2, kNow - 10, kNow));
  push_ok(*store, make_push(g, 3, kNow - 10, kNow + 100));
  push_ok(*store, make_push(g, 4, kNow - 10, kNow - 1));
  push_ok(*store, make_push(g, 5, kNow - 10, kNow + 1));
  push_ok(*store, make_push(g, 6, kNow - 10, kNever));

  auto all = store->pull(g, 0, 100, kNow).value();
  CHECK(cursors_of(all.blobs) == std::vector<Cursor>{1, 3, 5, 6});
  CHECK_FALSE(all.has_more);
  CHECK(all.max_cursor == 6);

  auto paged = store->pull(g, 0, 2, kNow).value();  // expired rows do not use up the limit
  CHECK(cursors_of(paged.blobs) == std::vector<Cursor>{1, 3});
  CHECK(paged.has_more);

  auto later = store->pull(g, 0, 100, kNow + 1).value();
  CHECK(cursors_of(later.blobs) == std::vector<Cursor>{1, 3, 6});

  auto tail = store->pull(g, 3, 1, kNow + 1).value();  // 4 and 5 expired: only 6 is left
  CHECK(cursors_of(tail.blobs) == std::vector<Cursor>{6});
  CHECK_FALSE(tail.has_more);

  auto far = store->pull(g, 0, 100, kNever).value();  // even at the end of time
  CHECK(far.blobs.empty());
  CHECK_FALSE(far.has_more);
  CHECK(far.max_cursor == 6);  // the cursor sequence itself is untouched
}

TEST_CASE("an unknown group pulls an empty page with max_cursor 0", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"));
  push_ok(*store, make_push(group_n(1), 1));
  auto page = store->pull(group_n(77), 0, 100, kNow).value();
  CHECK(page.blobs.empty());
  CHECK_FALSE(page.has_more);
  CHECK(page.max_cursor == 0);
  CHECK(store->max_cursor(group_n(77)).value() == 0);
}

TEST_CASE("payloads round-trip byte for byte, including empty and 1 MiB ones", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"));
  const GroupId g = group_n(1);
  PushRequest empty = make_push(g, 1);
  empty.payload.clear();
  PushRequest big = make_push(g, 2);
  big.payload = payload_n(2, 1024 * 1024);
  CHECK(push_ok(*store, empty).cursor == 1);
  CHECK(push_ok(*store, big).cursor == 2);
  auto blobs = pull_all(*store, g);
  REQUIRE(blobs.size() == 2);
  CHECK(blobs[0].payload.empty());
  CHECK(blobs[1].payload == big.payload);
  CHECK(store->stats().value().bytes == 1024 * 1024);
}

TEST_CASE("stats count groups, stored blobs and payload bytes", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"));
  auto empty = store->stats().value();
  CHECK(empty.groups == 0);
  CHECK(empty.blobs == 0);
  CHECK(empty.bytes == 0);
  for (std::uint32_t i = 0; i < 5; ++i) push_ok(*store, make_push(group_n(static_cast<std::uint8_t>(i % 2)), i));
  push_ok(*store, make_push(group_n(0), 0));  // duplicate: counted once
  auto s = store->stats().value();
  CHECK(s.groups == 2);
  CHECK(s.blobs == 5);
  CHECK(s.bytes == 5 * payload_n(0).size());
}

TEST_CASE("close drains queued pushes and runs every completion", "[store]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  const GroupId g = group_n(1);
  auto store = open_store(path);
  WriterGate gate;
  gate.close_on(*store, make_push(g, 0));  // cursor 1; the writer now waits

  constexpr std::uint32_t kQueued = 200;
  Collector results(kQueued);
  for (std::uint32_t i = 0; i < kQueued; ++i) store->submit_push(make_push(g, i + 1), results.at(i));

  std::thread closer([&] { store->close(); });
  // Wait until close() has stopped intake: a refused push completes synchronously.
  bool refused = false;
  for (int attempt = 0; attempt < 20000 && !refused; ++attempt) {
    struct Probe {
      std::mutex m;
      std::optional<Result<PushResult>> result;
    };
    auto probe = std::make_shared<Probe>();  // an accepted probe completes after this loop
    store->submit_push(make_push(g, 100000 + static_cast<std::uint32_t>(attempt)), [probe](Result<PushResult> r) {
      std::lock_guard lock(probe->m);
      probe->result.emplace(std::move(r));
    });
    std::lock_guard lock(probe->m);
    if (probe->result.has_value()) {
      refused = true;
      CHECK(probe->result->error().code() == Code::kRelayShuttingDown);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  REQUIRE(refused);
  CHECK(results.done() == 0);  // still queued behind the gate while close() waits
  gate.open();
  closer.join();

  REQUIRE(results.done() == kQueued);
  for (std::uint32_t i = 0; i < kQueued; ++i) {
    REQUIRE(results[i].has_value());
    CHECK(results[i]->cursor == i + 2);
  }
  store.reset();
  // Accepted probes (if any got in before intake stopped) were drained too: the file holds a
  // gap-free sequence that contains all of the queued pushes.
  auto reopened = open_store(path);
  const Cursor max = reopened->max_cursor(g).value();
  CHECK(max >= kQueued + 1);
  CHECK(cursors_of(pull_all(*reopened, g)) == range(1, max));
}

TEST_CASE("after close, pushes fail with RELAY_SHUTTING_DOWN and reads fail cleanly", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"));
  push_ok(*store, make_push(group_n(1), 1));
  store->close();
  store->close();  // idempotent

  auto r = push_sync(*store, make_push(group_n(1), 2));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == Code::kRelayShuttingDown);
  auto page = store->pull(group_n(1), 0, 10, kNow);
  REQUIRE_FALSE(page.has_value());
  CHECK(page.error().code() == Code::kRelayShuttingDown);
  CHECK_FALSE(store->max_cursor(group_n(1)).has_value());
  CHECK_FALSE(store->stats().has_value());
}

TEST_CASE("a new file gets WAL, incremental auto_vacuum, user_version and a stored epoch", "[store]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  std::uint64_t epoch = 0;
  {
    auto store = open_store(path);
    epoch = store->epoch();
    push_ok(*store, make_push(group_n(1), 1));
  }
  CHECK(fs::exists(path));
  const std::string wal = path + "-wal";
  CHECK((!fs::exists(wal) || fs::file_size(wal) == 0));  // checkpointed on close

  RawDb raw(path);
  CHECK(raw.integer("PRAGMA user_version") == 3);
  CHECK(raw.text("PRAGMA journal_mode") == "wal");
  CHECK(raw.integer("PRAGMA auto_vacuum") == 2);  // INCREMENTAL
  CHECK(static_cast<std::uint64_t>(raw.integer("SELECT value FROM meta WHERE key = 'epoch'")) == epoch);
  CHECK(raw.integer("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                    "name IN ('meta', 'groups', 'blobs', 'devices')") == 4);
  CHECK(raw.text("PRAGMA integrity_check") == "ok");
  CHECK(raw.integer("SELECT count(*) FROM pragma_foreign_key_check") == 0);
}

TEST_CASE("a database from a newer schema version is refused and left untouched", "[store]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  open_store(path)->close();
  RawDb(path).exec("PRAGMA user_version = 99");

  StoreOptions options;
  options.path = path;
  auto store = open_sqlite_store(options);
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().code() == Code::kStorageError);
  CHECK_THAT(store.error().message(), Catch::Contains("newer"));
  CHECK(RawDb(path).integer("PRAGMA user_version") == 99);
}

TEST_CASE("a file that is not a database, a missing directory and an empty path are refused", "[store]") {
  TempDir dir;
  const std::string junk = dir.file("junk.db");
  {
    std::ofstream out(junk, std::ios::binary);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>(i * 37));
  }
  StoreOptions options;
  options.path = junk;
  auto bad = open_sqlite_store(options);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code() == Code::kStorageError);

  options.path = dir.file("no/such/dir/relay.db");
  auto missing = open_sqlite_store(options);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code() == Code::kStorageError);

  options.path.clear();
  auto empty = open_sqlite_store(options);
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().code() == Code::kInvalidArgument);
}

TEST_CASE("the database and its WAL files are created readable by the owner only", "[store]") {
  TempDir dir;
  StoreOptions options;
  options.path = dir.file("relay.db");
  auto store = open_sqlite_store(options);
  REQUIRE(store.has_value());
  for (const std::string suffix : {"", "-wal", "-shm"}) {
    struct stat info {};
    REQUIRE(::stat((options.path + suffix).c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);
  }
}

TEST_CASE("a fault while applying to SQLite keeps every acknowledged push, refuses new ones, and applies them once "
          "it is gone",
          "[store][journal]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  const GroupId g = group_n(1);
  const GroupId h = group_n(2);
  StoreOptions options;
  options.path = path;
  options.apply_max_blobs = 3;      // the third pending push wakes the applier
  options.apply_delay_ms = 600000;  // never by time in this test
  auto opened = open_sqlite_store(options);
  REQUIRE(opened);
  Store& store = **opened;
  CHECK(push_ok(store, make_push(g, 1)).cursor == 1);

  RawDb raw(path);
  // Inject a storage failure: any insert of blob 666 aborts its statement.
  raw.exec("CREATE TRIGGER inject_failure BEFORE INSERT ON blobs WHEN NEW.blob_id = x'" + blob_n(666).to_hex() +
           "' BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  // Acknowledged from the journal; the apply of all three then fails on blob 666. The applier
  // runs beside the pushes: a push to h may still be taken before the failure, none after it.
  CHECK(push_ok(store, make_push(g, 2)).cursor == 2);
  CHECK(push_ok(store, make_push(g, 666)).cursor == 3);
  Cursor taken_in_h = 0;
  std::optional<Status> refused;
  for (std::uint32_t attempt = 0; attempt < 200 && !refused; ++attempt) {
    auto r = push_sync(store, make_push(h, 100 + attempt));
    if (r) {
      CHECK(r->cursor == ++taken_in_h);
    } else {
      refused = r.error();
    }
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(refused.has_value());
  CHECK(refused->code() == Code::kInternal);
  CHECK(raw.integer("SELECT count(*) FROM blobs") == 0);  // the failed apply left nothing behind

  // Nothing acknowledged is lost: it is served from memory, and a retry is still a duplicate.
  CHECK(cursors_of(pull_all(store, g)) == range(1, 3));
  CHECK(store.max_cursor(g).value() == 3);
  CHECK(store.max_cursor(h).value() == taken_in_h);
  auto retried = push_ok(store, make_push(g, 2));
  CHECK(retried.duplicate);
  CHECK(retried.cursor == 2);

  raw.exec("DROP TRIGGER inject_failure");
  // The writer retries the apply by itself; pushes are taken again once it worked.
  std::optional<PushResult> accepted;
  for (int attempt = 0; attempt < 250 && !accepted; ++attempt) {
    auto r = push_sync(store, make_push(h, 4));
    if (r) {
      accepted = *r;
    } else {
      CHECK(r.error().code() == Code::kInternal);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  REQUIRE(accepted.has_value());
  CHECK(accepted->cursor == taken_in_h + 1);  // refused attempts consumed no cursor
  CHECK(raw.integer("SELECT count(*) FROM blobs WHERE group_ref = (SELECT id FROM groups WHERE group_id = x'" +
                    g.to_hex() + "')") == 3);
  CHECK(push_ok(store, make_push(g, 5)).cursor == 4);
  store.close();

  auto reopened = open_store(path);
  CHECK(cursors_of(pull_all(*reopened, g)) == range(1, 4));
  CHECK(cursors_of(pull_all(*reopened, h)) == range(1, taken_in_h + 1));
}

TEST_CASE("a full disk is reported as STORAGE_FULL, other write faults as INTERNAL", "[store]") {
  CHECK(relay::sqlite::write_failure_code(SQLITE_FULL) == Code::kStorageFull);
  CHECK(relay::sqlite::write_failure_code(SQLITE_IOERR_WRITE) == Code::kInternal);
  CHECK(relay::sqlite::write_failure_code(SQLITE_BUSY) == Code::kInternal);
  CHECK(relay::sqlite::write_failure_code(SQLITE_CONSTRAINT_TRIGGER) == Code::kInternal);
}

TEST_CASE("a completion that throws does not stop the writer", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"));
  const GroupId g = group_n(1);
  store->submit_push(make_push(g, 1), [](Result<PushResult>) { throw std::runtime_error("completion bug"); });
  CHECK(push_ok(*store, make_push(g, 2)).cursor == 2);
  store->submit_push(make_push(g, 3), PushCompletion{});  // no completion at all is accepted too
  CHECK(push_ok(*store, make_push(g, 4)).cursor == 4);
}

TEST_CASE("a batch limit of 1 still commits every push in order", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"), Durability::kNormal, 1);
  const GroupId g = group_n(1);
  Collector results(50);
  for (std::uint32_t i = 0; i < 50; ++i) store->submit_push(make_push(g, i), results.at(i));
  results.wait_all();
  for (std::uint32_t i = 0; i < 50; ++i) CHECK(results[i]->cursor == i + 1);
}

TEST_CASE("concurrent pulls see a gap-free prefix while pushes commit", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("relay.db"));
  const GroupId g = group_n(5);
  constexpr std::uint32_t kPushes = 1500;
  Collector results(kPushes);
  std::atomic<bool> done{false};
  std::atomic<int> violations{0};
  std::atomic<int> pulls{0};

  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      for (int iteration = 0; iteration < 100000 && !done.load(); ++iteration) {
        auto page = store->pull(g, 0, 5000, kNow);
        if (!page) {
          ++violations;
          continue;
        }
        ++pulls;
        const auto& blobs = page->blobs;
        for (std::size_t i = 0; i < blobs.size(); ++i) {
          if (blobs[i].cursor != i + 1) ++violations;
        }
        if (blobs.size() != page->max_cursor) ++violations;  // same snapshot: all of them, no more
        if (!store->max_cursor(g)) ++violations;
      }
    });
  }
  for (std::uint32_t i = 0; i < kPushes; ++i) store->submit_push(make_push(g, i), results.at(i));
  results.wait_all();
  done = true;
  for (auto& th : readers) th.join();
  CHECK(violations.load() == 0);
  CHECK(pulls.load() > 0);
  CHECK(store->max_cursor(g).value() == kPushes);
}

// Not a pass/fail test: prints pushes/s for 20k x 1 KiB from 64 threads, each waiting for its ack.
TEST_CASE("push throughput with 64 pushing threads", "[.bench][store]") {
  for (Durability durability : {Durability::kFull, Durability::kNormal}) {
    TempDir dir;
    auto store = open_store(dir.file("bench.db"), durability);
    constexpr std::uint32_t kThreads = 64;
    constexpr std::uint32_t kTotal = 20000;
    std::atomic<std::uint32_t> failures{0};
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (std::uint32_t t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (std::uint32_t n = t; n < kTotal; n += kThreads) {
          PushRequest r = make_push(group_n(static_cast<std::uint8_t>(n % 16)), n);
          r.payload = payload_n(n, 1024);
          auto promise = std::make_shared<std::promise<bool>>();
          auto future = promise->get_future();
          store->submit_push(std::move(r), [promise](Result<PushResult> res) { promise->set_value(res.has_value()); });
          if (future.wait_for(kStoreHangGuard) != std::future_status::ready || !future.get()) ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(failures.load() == 0);
    CHECK(store->stats().value().blobs == kTotal);
    std::printf("store bench: durability=%s  %u pushes x 1 KiB from %u threads in %.2f s = %.0f pushes/s\n",
                durability == Durability::kFull ? "full" : "normal", kTotal, kThreads, seconds, kTotal / seconds);
  }
}

TEST_CASE("WAL checkpoints keep the WAL file small under continuous pushes, and lose nothing", "[store][checkpoint]") {
  // The writer's own auto-checkpoint is off (store/wal_checkpointer.h): if the checkpointer thread
  // did not copy and restart the WAL, every pushed byte would still be in the WAL file at the end.
  TempDir dir;
  const std::string path = dir.file("relay.db");
  constexpr std::uint32_t kPushes = 8000;
  constexpr std::size_t kPayload = 1024;
  constexpr std::uintmax_t kPayloadTotal = std::uintmax_t{kPushes} * kPayload;
  {
    StoreOptions options;
    options.path = path;
    options.durability = Durability::kNormal;
    options.max_batch = 64;
    options.checkpoint_passive_pages = 32;
    options.checkpoint_restart_pages = 128;
    // One apply transaction is in the WAL whole before any of it can be checkpointed: keep them
    // small here, as this test is about the checkpointer, not about large applies.
    options.apply_max_blobs = 128;
    auto opened = open_sqlite_store(options);
    REQUIRE(opened);
    Store& store = **opened;
    std::uintmax_t largest_wal = 0;
    for (std::uint32_t first = 0; first < kPushes; first += 64) {
      Collector results(64);
      for (std::uint32_t i = 0; i < 64; ++i) {
        const std::uint32_t n = first + i;
        PushRequest request = make_push(group_n(static_cast<std::uint8_t>(n % 8)), n);
        request.payload = payload_n(n, kPayload);
        store.submit_push(std::move(request), results.at(i));
      }
      results.wait_all();
      for (std::size_t i = 0; i < results.size(); ++i) REQUIRE(results[i]);
      std::error_code ec;
      const auto wal = fs::file_size(path + "-wal", ec);
      if (!ec) largest_wal = std::max(largest_wal, wal);
    }
    INFO("largest WAL " << largest_wal << " bytes for " << kPayloadTotal << " payload bytes");
    CHECK(largest_wal > 0);
    CHECK(largest_wal < kPayloadTotal / 4);
    store.close();
  }
  auto reopened = open_store(path);
  std::size_t total = 0;
  for (std::uint8_t g = 0; g < 8; ++g) {
    const auto blobs = pull_all(*reopened, group_n(g));
    CHECK(cursors_of(blobs) == range(1, kPushes / 8));
    total += blobs.size();
  }
  CHECK(total == kPushes);
}
