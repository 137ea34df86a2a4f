// The push journal (store/push_journal.h) and what the store does with it: reads that see pending
// blobs, a crash before they reached SQLite, and replays that must neither lose, duplicate nor
// leave a hole.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "store/push_journal.h"
#include "store/sqlite_writer.h"
#include "store/store.h"
#include "store_fixture.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;
using namespace blindsync::relay::test;
using relay::sqlite::JournalRecord;
using relay::sqlite::PushJournal;
namespace fs = std::filesystem;

constexpr std::uint64_t kEpoch = 0x1234'5678'9abc'def0;

void check_same(const std::vector<JournalRecord>& got, const std::vector<JournalRecord>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("record " << i);
    CHECK(got[i].group_id == want[i].group_id);
    CHECK(got[i].blob_id == want[i].blob_id);
    CHECK(got[i].sender_id == want[i].sender_id);
    CHECK(got[i].cursor == want[i].cursor);
    CHECK(got[i].timestamp_ms == want[i].timestamp_ms);
    CHECK(got[i].expires_at_ms == want[i].expires_at_ms);
    CHECK(*got[i].payload == *want[i].payload);
  }
}

// Appends records to the journal file at `path`: segment `segment`, or 0 for the earlier format's.
void append_records(const std::string& path, std::uint64_t epoch, std::vector<JournalRecord> records,
                    std::uint64_t segment = 0) {
  auto journal = PushJournal::open(path, epoch, true, segment);
  if (!journal) FAIL("open: " << journal.error().message());
  REQUIRE(journal->append(records).is_ok());
}

StoreOptions options_at(const std::string& path) {
  StoreOptions options;
  options.path = path;
  options.durability = Durability::kFull;
  return options;
}

std::vector<Cursor> pulled_cursors(Store& store, const GroupId& group) {
  std::vector<Cursor> cursors;
  Cursor after = 0;
  for (int pages = 0; pages < 1000; ++pages) {
    auto page = store.pull(group, after, 64, kNow);
    if (!page) FAIL("pull: " << page.error().message());
    for (const auto& blob : page->blobs) cursors.push_back(after = blob.cursor);
    if (!page->has_more) break;
  }
  return cursors;
}

// The push journal's segment files next to a database, and how far SQLite has them.
std::vector<std::uint64_t> segments_of(const std::string& db) {
  auto numbers = relay::sqlite::list_segments(db);
  if (!numbers) FAIL("list_segments: " << numbers.error().message());
  return std::move(*numbers);
}

std::string newest_segment(const std::string& db) {
  const auto numbers = segments_of(db);
  if (numbers.empty()) FAIL("no segment next to " << db);
  return relay::sqlite::segment_path_for(db, numbers.back());
}

std::uint64_t replay_from(const std::string& db) {
  return static_cast<std::uint64_t>(RawDb(db).integer("SELECT value FROM meta WHERE key = 'replay_from'"));
}

// Bytes of the segments a replay would read: what SQLite may still lack.
std::uintmax_t unapplied_segment_bytes(const std::string& db) {
  const std::uint64_t from = replay_from(db);
  std::uintmax_t bytes = 0;
  for (const std::uint64_t n : segments_of(db)) {
    if (n >= from) bytes += fs::file_size(relay::sqlite::segment_path_for(db, n));
  }
  return bytes;
}

std::vector<Cursor> one_to(Cursor n) {
  std::vector<Cursor> v;
  for (Cursor c = 1; c <= n; ++c) v.push_back(c);
  return v;
}

// ---------------------------------------------------------------------------------------------
// The file

TEST_CASE("journal: records read back exactly as appended, across appends and reopen", "[store][journal]") {
  TempDir dir;
  const std::string path = dir.file("relay.db-pushlog");
  std::vector<JournalRecord> written;
  {
    auto journal = PushJournal::open(path, kEpoch, true);
    REQUIRE(journal);
    for (std::uint32_t batch = 0; batch < 3; ++batch) {
      std::vector<JournalRecord> records;
      for (std::uint32_t i = 0; i < 7; ++i) records.push_back(journal_record_n(group_n(batch), batch * 100 + i, i + 1));
      REQUIRE(journal->append(records).is_ok());
      written.insert(written.end(), records.begin(), records.end());
    }
    check_same(journal->read_all().value(), written);
  }
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  check_same(read_journal(path, kEpoch), written);
}

TEST_CASE("journal: a torn or damaged tail is cut off, everything before it is kept", "[store][journal]") {
  TempDir dir;
  const std::string path = dir.file("relay.db-pushlog");
  std::vector<JournalRecord> written;
  for (std::uint32_t i = 0; i < 5; ++i) written.push_back(journal_record_n(group_n(1), i, i + 1));
  {
    auto journal = PushJournal::open(path, kEpoch, true);
    REQUIRE(journal);
    REQUIRE(journal->append(written).is_ok());
  }
  const auto full_size = fs::file_size(path);

  SECTION("the last record is short") {
    fs::resize_file(path, full_size - 3);
    check_same(read_journal(path, kEpoch), {written.begin(), written.end() - 1});
  }
  SECTION("garbage follows the last record") {
    std::ofstream(path, std::ios::binary | std::ios::app) << std::string(100, '\x7f');
    check_same(read_journal(path, kEpoch), written);
  }
  SECTION("a byte of the third record's payload flipped") {
    // 16-byte header, then each record: 12-byte header + 104-byte fixed body + payload.
    std::uint64_t offset = 16;
    for (int i = 0; i < 2; ++i) offset += 12 + 104 + written[static_cast<std::size_t>(i)].payload->size();
    offset += 12 + 104 + 5;
    std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
    file.seekg(static_cast<std::streamoff>(offset));
    char byte = 0;
    file.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x01);
    file.seekp(static_cast<std::streamoff>(offset));
    file.write(&byte, 1);
    file.close();
    check_same(read_journal(path, kEpoch), {written.begin(), written.begin() + 2});
  }
}

TEST_CASE("journal: records of another database refuse the open, an empty journal of one is taken over",
          "[store][journal]") {
  TempDir dir;
  const std::string path = dir.file("relay.db-pushlog");
  {
    auto journal = PushJournal::open(path, kEpoch, true);
    REQUIRE(journal);
  }
  CHECK(PushJournal::open(path, kEpoch + 1, true).has_value());  // header only: nothing to lose
  CHECK(read_journal(path, kEpoch + 1).empty());
  {
    auto journal = PushJournal::open(path, kEpoch + 1, true);
    REQUIRE(journal);
    std::vector<JournalRecord> records{journal_record_n(group_n(1), 1, 1)};
    REQUIRE(journal->append(records).is_ok());
  }
  auto foreign = PushJournal::open(path, kEpoch, true);
  REQUIRE_FALSE(foreign.has_value());
  CHECK(foreign.error().message().find("another database") != std::string::npos);
  CHECK(read_journal(path, kEpoch + 1).size() == 1);  // the refused open changed nothing

  std::ofstream(dir.file("not-a-journal"), std::ios::binary) << "hello, this is some other file";
  auto other = PushJournal::open(dir.file("not-a-journal"), kEpoch, true);
  REQUIRE_FALSE(other.has_value());
  CHECK(other.error().message().find("not a push journal") != std::string::npos);
}

TEST_CASE("journal: a second store on the same database is refused while the first one runs", "[store][journal]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  auto first = open_sqlite_store(options_at(path));
  REQUIRE(first);
  auto second = open_sqlite_store(options_at(path));
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().message().find("in use by another relay process") != std::string::npos);
  // The refused open changed nothing: the first store serves on, and after it closes a new one opens.
  CHECK(push_sync(**first, PushRequest{group_n(1), blob_n(1), device_n(1), payload_n(1), kNow, kNever})->cursor == 1);
  (*first)->close();
  auto third = open_sqlite_store(options_at(path));
  REQUIRE(third);
  CHECK((*third)->max_cursor(group_n(1)).value() == 1);
}

// ---------------------------------------------------------------------------------------------
// The store

TEST_CASE("store: pushes still pending in the journal are served by pull, max_cursor and stats", "[store][journal]") {
  TempDir dir;
  StoreOptions options = options_at(dir.file("relay.db"));
  options.apply_delay_ms = 600000;  // nothing reaches SQLite by time during the test
  auto opened = open_sqlite_store(options);
  REQUIRE(opened);
  Store& store = **opened;
  const GroupId g = group_n(1);
  for (std::uint32_t i = 1; i <= 150; ++i) {
    PushRequest request{g, blob_n(i), device_n(1), payload_n(i, 100), kNow, i == 7 ? kNow - 1 : kNever};
    auto r = push_sync(store, std::move(request));
    REQUIRE(r);
    CHECK(r->cursor == i);
  }
  RawDb raw(options.path);
  CHECK(raw.integer("SELECT count(*) FROM blobs") == 0);  // all still pending
  CHECK(store.max_cursor(g).value() == 150);
  const auto stats = store.stats().value();
  CHECK(stats.blobs == 150);
  CHECK(stats.bytes == 150 * 100);
  auto cursors = pulled_cursors(store, g);
  std::vector<Cursor> want = one_to(150);
  want.erase(want.begin() + 6);  // blob 7 expired at kNow - 1
  CHECK(cursors == want);
  // A retried push of a pending blob is answered with its cursor.
  auto retry = push_sync(store, PushRequest{g, blob_n(42), device_n(1), payload_n(42, 100), kNow, kNever});
  REQUIRE(retry);
  CHECK(retry->duplicate);
  CHECK(retry->cursor == 42);
  // A DELETE of a pending blob works (it is applied first).
  std::promise<Result<DeleteResult>> deleted;
  store.submit_delete(DeleteRequest{g, blob_n(10), device_n(1), false},
                      [&](Result<DeleteResult> r) { deleted.set_value(std::move(r)); });
  auto removed = deleted.get_future().get();
  REQUIRE(removed);
  CHECK(removed->removed);
  CHECK(raw.integer("SELECT count(*) FROM blobs") == 149);
  CHECK(store.stats().value().blobs == 149);
}

TEST_CASE("store: retries are found whether their id is below or at the group's largest, pending or stored",
          "[store][journal]") {
  // The writer skips the duplicate lookup for an id above every id of the group (ids are
  // time-ordered); everything else must still be looked up.
  TempDir dir;
  const std::string path = dir.file("relay.db");
  const GroupId g = group_n(6);
  const auto push = [&](Store& store, std::uint32_t n) {
    auto r = push_sync(store, PushRequest{g, blob_n(n), device_n(1), payload_n(n), kNow, kNever});
    if (!r) FAIL("push: " << r.error().message());
    return *r;
  };
  {
    auto store = open_sqlite_store(options_at(path)).value();
    CHECK(push(*store, 10).cursor == 1);
    CHECK(push(*store, 20).cursor == 2);
    CHECK(push(*store, 30).cursor == 3);
    const auto late = push(*store, 15);  // a device with a slow clock: new, below the largest id
    CHECK(late.cursor == 4);
    CHECK_FALSE(late.duplicate);
    for (const auto& [n, cursor] : std::vector<std::pair<std::uint32_t, Cursor>>{{20, 2}, {15, 4}, {30, 3}, {10, 1}}) {
      const auto retry = push(*store, n);
      CHECK(retry.duplicate);
      CHECK(retry.cursor == cursor);
    }
    store->close();
  }
  auto store = open_sqlite_store(options_at(path)).value();  // the largest id now comes from SQLite
  const auto retry = push(*store, 30);
  CHECK(retry.duplicate);
  CHECK(retry.cursor == 3);
  CHECK(push(*store, 40).cursor == 5);
  CHECK(pulled_cursors(*store, g) == one_to(5));
}

TEST_CASE("store: the writer starts a new segment past journal_clear_bytes, rows point into the segments, and "
          "after a clean close nothing is left to replay",
          "[store][journal]") {
  TempDir dir;
  StoreOptions options = options_at(dir.file("relay.db"));
  options.apply_max_blobs = 1'000'000;  // never by count or age: only sealed segments trigger
  options.apply_max_bytes = 1u << 30;
  options.apply_delay_ms = 600000;
  options.journal_clear_bytes = 8 * 1024;
  options.journal_max_bytes = 32 * 1024;
  auto opened = open_sqlite_store(options);
  REQUIRE(opened);
  Store& store = **opened;
  const GroupId g = group_n(4);
  for (std::uint32_t i = 1; i <= 600; ++i) {
    REQUIRE(push_sync(store, PushRequest{g, blob_n(i), device_n(1), payload_n(i, 200), kNow, kNever})->cursor == i);
  }
  // ~320 bytes per record, 600 records: a new segment about every 25 pushes.
  const auto numbers = segments_of(options.path);
  CHECK(numbers.size() >= 20);
  // The sealed ones (the active one may be zero-filled ahead: segment_spare.h).
  std::uintmax_t largest = 0;
  for (std::size_t k = 0; k + 1 < numbers.size(); ++k) {
    largest = std::max(largest, fs::file_size(relay::sqlite::segment_path_for(options.path, numbers[k])));
  }
  CHECK(largest < options.journal_clear_bytes + 400);  // one push past the threshold, never more
  for (std::uint32_t i : {1u, 299u, 600u}) {
    auto page = store.pull(g, i - 1, 1, kNow).value();
    REQUIRE(page.blobs.size() == 1);
    CHECK(page.blobs[0].payload == payload_n(i, 200));
  }
  CHECK(pulled_cursors(store, g) == one_to(600));
  store.close();
  RawDb raw(options.path);
  CHECK(raw.integer("SELECT count(*) FROM blobs WHERE segment = 0") == 0);  // every payload stayed in its segment
  CHECK(raw.integer("SELECT sum(live_blobs) FROM segments") == 600);
  CHECK(replay_from(options.path) > segments_of(options.path).back());
}

TEST_CASE("store: a damaged or missing segment fails the pulls that need it with a clear error, the rest is served",
          "[store][journal]") {
  TempDir dir;
  StoreOptions options = options_at(dir.file("relay.db"));
  options.journal_clear_bytes = 4 * 1024;  // ~12 pushes per segment
  const GroupId g = group_n(1);
  {
    auto store = open_sqlite_store(options).value();
    for (std::uint32_t i = 1; i <= 60; ++i) {
      REQUIRE(push_sync(*store, PushRequest{g, blob_n(i), device_n(1), payload_n(i, 300), kNow, kNever}));
    }
    store->close();
  }
  const auto numbers = segments_of(options.path);
  REQUIRE(numbers.size() >= 4);
  const std::string second = relay::sqlite::segment_path_for(options.path, numbers[1]);
  const auto pull_all = [&](Store& store) {
    std::size_t served = 0;
    std::optional<Status> failed;
    for (Cursor c = 0; c < 60; ++c) {
      auto page = store.pull(g, c, 1, kNow);
      if (page) {
        served += page->blobs.size();
      } else {
        failed = page.error();
      }
    }
    return std::pair{served, failed};
  };

  SECTION("cut short") {
    fs::resize_file(second, fs::file_size(second) / 2);
    auto store = open_sqlite_store(options).value();
    const auto [served, failed] = pull_all(*store);
    REQUIRE(failed.has_value());
    CHECK(failed->code() == Code::kInternal);
    CHECK(failed->message().find("shorter than its rows say") != std::string::npos);
    CHECK(served >= 45);  // every other segment is served
  }
  SECTION("overwritten") {
    {
      std::fstream file(second, std::ios::in | std::ios::out | std::ios::binary);
      file.seekp(16 + 4 + 8 + 32);  // the first record's blob id
      file.write("\xff\xff\xff\xff", 4);
    }
    auto store = open_sqlite_store(options).value();
    const auto [served, failed] = pull_all(*store);
    REQUIRE(failed.has_value());
    CHECK(failed->message().find("does not hold the blob its row names") != std::string::npos);
    CHECK(served >= 59);  // only that blob fails
  }
  SECTION("deleted") {
    fs::remove(second);
    auto store = open_sqlite_store(options).value();
    const auto [served, failed] = pull_all(*store);
    REQUIRE(failed.has_value());
    CHECK(failed->message().find("is gone") != std::string::npos);
    CHECK(served >= 45);
  }
}

TEST_CASE("store: pulls across hundreds of segments keep a bounded number of files open", "[store][journal]") {
  TempDir dir;
  StoreOptions options = options_at(dir.file("relay.db"));
  options.durability = Durability::kNormal;
  options.journal_clear_bytes = 1024;  // ~3 records per segment
  const GroupId g = group_n(1);
  {
    auto store = open_sqlite_store(options).value();
    for (std::uint32_t i = 1; i <= 600; ++i) {
      REQUIRE(push_sync(*store, PushRequest{g, blob_n(i), device_n(1), payload_n(i, 300), kNow, kNever}));
    }
    store->close();
  }
  REQUIRE(segments_of(options.path).size() >= 150);
  const auto open_files = [] {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
  };
  auto store = open_sqlite_store(options).value();
  const std::size_t before = open_files();
  std::size_t most = before;
  for (Cursor c = 0; c < 600; c += 2) {  // one segment after another, a few pages each
    auto page = store->pull(g, c, 2, kNow);
    REQUIRE(page.has_value());
    REQUIRE(page->blobs.size() == 2);
    CHECK(page->blobs[1].payload == payload_n(static_cast<std::uint32_t>(c + 2), 300));
    most = std::max(most, open_files());
  }
  INFO("open files before the pulls " << before << ", at most " << most);
  CHECK(most <= before + 70);
}

TEST_CASE("store: acknowledged pushes a crash kept from SQLite are replayed once, and cursors go on",
          "[store][journal][crash]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  const GroupId groups[] = {group_n(1), group_n(2), group_n(3)};
  constexpr std::uint32_t kPerGroup = 120;

  // A child process pushes, waits for every ack, and dies without closing the store: no apply,
  // no clean shutdown. (fork: the store's threads exist only in the child.)
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    StoreOptions options = options_at(path);
    options.apply_max_blobs = 100;    // some blobs reach SQLite before the crash, the rest do not
    options.apply_delay_ms = 600000;
    auto opened = open_sqlite_store(options);
    if (!opened) ::_exit(3);
    for (std::uint32_t i = 1; i <= kPerGroup; ++i) {
      for (std::uint32_t g = 0; g < 3; ++g) {
        auto r = push_sync(**opened, PushRequest{groups[g], blob_n(g * 1000 + i), device_n(1),
                                                 payload_n(g * 1000 + i, 200), kNow, kNever});
        if (!r || r->cursor != i) ::_exit(4);
      }
    }
    ::_exit(0);  // the store object is never destroyed
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  {
    RawDb raw(path);
    const auto in_sqlite = raw.integer("SELECT count(*) FROM blobs");
    INFO("blobs in SQLite at the crash: " << in_sqlite);
    CHECK(in_sqlite < 3 * kPerGroup);  // the crash left some only in the journal
    CHECK(unapplied_segment_bytes(path) > 16);
  }

  auto opened = open_sqlite_store(options_at(path));
  REQUIRE(opened);
  Store& store = **opened;
  for (std::uint32_t g = 0; g < 3; ++g) {
    INFO("group " << g);
    CHECK(pulled_cursors(store, groups[g]) == one_to(kPerGroup));
    auto page = store.pull(groups[g], kPerGroup - 1, 1, kNow).value();
    REQUIRE(page.blobs.size() == 1);
    CHECK(page.blobs[0].payload == payload_n(g * 1000 + kPerGroup, 200));
    auto next = push_sync(store, PushRequest{groups[g], blob_n(9999), device_n(1), payload_n(1, 10), kNow, kNever});
    REQUIRE(next);
    CHECK(next->cursor == kPerGroup + 1);
  }
  CHECK(store.stats().value().blobs == 3 * (kPerGroup + 1));
  store.close();
  CHECK(replay_from(path) > segments_of(path).back());  // a clean close leaves nothing to replay
  RawDb raw(path);
  CHECK(raw.integer("SELECT count(*) FROM blobs") == 3 * (kPerGroup + 1));
}

TEST_CASE("store: a push whose journal append fails is refused, leaves the journal as it was, and uses no cursor",
          "[store][journal]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  const GroupId g = group_n(8);
  // In a child process: RLIMIT_FSIZE makes the next journal append fail part-way (EFBIG), the
  // way a full disk would, without touching this test process's limits.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    StoreOptions options = options_at(path);
    // Durability normal appends to a segment that grows, which RLIMIT_FSIZE can stop; with full,
    // segments are zero-filled ahead, and a write inside one needs no new block (segment_spare_test
    // fails an append past the zeros).
    options.durability = Durability::kNormal;
    options.apply_delay_ms = 600000;
    auto store = open_sqlite_store(options);
    if (!store) ::_exit(10);
    const auto push = [&](std::uint32_t n) {
      return push_sync(**store, PushRequest{g, blob_n(n), device_n(1), payload_n(n, 1000), kNow, kNever});
    };
    if (!push(1) || push(1)->cursor != 1) ::_exit(11);  // the group row and the cache exist now
    const std::string segment = newest_segment(path);
    const auto before = fs::file_size(segment);
    rlimit limit{};
    ::getrlimit(RLIMIT_FSIZE, &limit);
    const rlimit saved = limit;
    limit.rlim_cur = before + 100;  // room for the record header, not for the record
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(12);
    auto refused = push(2);
    if (refused.has_value()) ::_exit(13);
    if (refused.error().code() != Code::kInternal) ::_exit(14);
    if (fs::file_size(segment) != before) ::_exit(15);
    if (::setrlimit(RLIMIT_FSIZE, &saved) != 0) ::_exit(16);
    auto accepted = push(2);
    if (!accepted || accepted->cursor != 2 || accepted->duplicate) ::_exit(17);
    (*store)->close();
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // 13: accepted past the limit; 15: journal changed; 17: cursor burnt
  auto store = open_sqlite_store(options_at(path)).value();
  CHECK(pulled_cursors(*store, g) == one_to(2));
}

TEST_CASE("store: a replay skips what SQLite already has, drops expired blobs but keeps their cursors, and refuses "
          "a hole",
          "[store][journal][crash]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  const GroupId g = group_n(1);
  std::uint64_t epoch = 0;
  {
    auto store = open_sqlite_store(options_at(path)).value();
    epoch = store->epoch();
    for (std::uint32_t i = 1; i <= 3; ++i) REQUIRE(push_sync(*store, PushRequest{g, blob_n(i), device_n(1), payload_n(i), kNow, kNever}));
    store->close();
  }
  const std::string journal_path = path + "-pushlog";

  SECTION("records in segments past replay_from are replayed, pointing into their segments") {
    const std::uint64_t first = replay_from(path);
    append_records(relay::sqlite::segment_path_for(path, first), epoch,
                   {journal_record_n(g, 2, 2), journal_record_n(g, 4, 4), journal_record_n(g, 5, 5)}, first);
    append_records(relay::sqlite::segment_path_for(path, first + 1), epoch, {journal_record_n(g, 6, 6)}, first + 1);
    {
      auto store = open_sqlite_store(options_at(path)).value();
      CHECK(pulled_cursors(*store, g) == one_to(6));
      auto page = store->pull(g, 4, 2, kNow).value();
      REQUIRE(page.blobs.size() == 2);
      CHECK(page.blobs[0].payload == *journal_record_n(g, 5, 5).payload);
      CHECK(page.blobs[1].payload == *journal_record_n(g, 6, 6).payload);
      CHECK(store->stats().value().blobs == 6);
    }
    RawDb raw(path);
    CHECK(raw.integer("SELECT count(*) FROM blobs WHERE segment <> 0") == 6);
    auto store = open_sqlite_store(options_at(path)).value();  // nothing is replayed twice
    CHECK(store->stats().value().blobs == 6);
    CHECK(push_sync(*store, PushRequest{g, blob_n(77), device_n(1), payload_n(77), kNow, kNever})->cursor == 7);
  }
  SECTION("a replayed segment no row points into (its records expired) is deleted at the start") {
    const std::uint64_t first = replay_from(path);
    const std::string expired_only = relay::sqlite::segment_path_for(path, first);
    append_records(expired_only, epoch, {journal_record_n(g, 4, 4, /*expires=*/1)}, first);
    auto store = open_sqlite_store(options_at(path)).value();
    CHECK_FALSE(fs::exists(expired_only));
    CHECK(push_sync(*store, PushRequest{g, blob_n(77), device_n(1), payload_n(77), kNow, kNever})->cursor == 5);
  }
  SECTION("a hole between segments refuses the start and keeps them") {
    const std::uint64_t first = replay_from(path);
    append_records(relay::sqlite::segment_path_for(path, first), epoch, {journal_record_n(g, 4, 4)}, first);
    append_records(relay::sqlite::segment_path_for(path, first + 1), epoch, {journal_record_n(g, 6, 6)}, first + 1);
    auto refused = open_sqlite_store(options_at(path));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message().find("skips from cursor 4 to 6") != std::string::npos);
    CHECK(read_journal(relay::sqlite::segment_path_for(path, first + 1), epoch).size() == 1);
  }
  SECTION("the earlier format's file: records SQLite has are skipped (a crash between apply and emptying it)") {
    std::vector<JournalRecord> records;
    for (std::uint32_t i = 1; i <= 5; ++i) records.push_back(journal_record_n(g, i, i));
    records[3].expires_at_ms = 1;  // cursor 4 expired long ago
    append_records(journal_path, epoch, std::move(records));
    auto store = open_sqlite_store(options_at(path)).value();
    CHECK(pulled_cursors(*store, g) == std::vector<Cursor>{1, 2, 3, 5});
    CHECK(store->max_cursor(g).value() == 5);
    CHECK(push_sync(*store, PushRequest{g, blob_n(77), device_n(1), payload_n(77), kNow, kNever})->cursor == 6);
    CHECK(store->stats().value().blobs == 5);
  }
  SECTION("the earlier format's two files: a group's records split between them are replayed in cursor order, whichever file is older") {
    const GroupId h = group_n(2);
    append_records(journal_path, epoch, {journal_record_n(g, 7, 7), journal_record_n(h, 3, 3), journal_record_n(g, 8, 8)});
    append_records(path + "-pushlog2", epoch,
                   {journal_record_n(h, 1, 1), journal_record_n(g, 4, 4), journal_record_n(g, 5, 5), journal_record_n(h, 2, 2), journal_record_n(g, 6, 6)});
    auto store = open_sqlite_store(options_at(path)).value();
    CHECK(pulled_cursors(*store, g) == one_to(8));
    CHECK(pulled_cursors(*store, group_n(2)) == one_to(3));
    CHECK(push_sync(*store, PushRequest{g, blob_n(77), device_n(1), payload_n(77), kNow, kNever})->cursor == 9);
    CHECK(store->stats().value().blobs == 3 + 5 + 1 + 3);
    store->close();
    CHECK_FALSE(fs::exists(path + "-pushlog2"));
  }
  SECTION("a hole between the earlier format's two files refuses the start") {
    append_records(journal_path, epoch, {journal_record_n(g, 6, 6)});
    append_records(path + "-pushlog2", epoch, {journal_record_n(g, 4, 4)});
    auto refused = open_sqlite_store(options_at(path));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message().find("skips from cursor 4 to 6") != std::string::npos);
    CHECK(read_journal(path + "-pushlog2", epoch).size() == 1);
  }
  SECTION("a record past a hole in the earlier format's file refuses the start and keeps the file") {
    append_records(journal_path, epoch, {journal_record_n(g, 9, 9)});
    auto refused = open_sqlite_store(options_at(path));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message().find("skips from cursor 3 to 9") != std::string::npos);
    CHECK(read_journal(journal_path, epoch).size() == 1);
  }
}

}  // namespace

TEST_CASE("store: applies running beside pushes and reads lose, repeat and reorder nothing",
          "[store][journal][concurrency]") {
  TempDir dir;
  StoreOptions options = options_at(dir.file("relay.db"));
  options.durability = Durability::kNormal;
  options.apply_max_blobs = 7;          // many small applies, each a prefix of a group's blobs
  options.apply_delay_ms = 1;
  options.journal_clear_bytes = 16 * 1024;  // and a new segment often, under the pushes
  auto opened = open_sqlite_store(options);
  REQUIRE(opened);
  Store& store = **opened;

  constexpr std::uint32_t kWriters = 4;
  constexpr std::uint32_t kPushesEach = 400;
  std::atomic<bool> writing{true};
  std::atomic<int> bad_pages{0};
  std::atomic<int> pages_read{0};
  // A reader pulls the groups over and over while they grow and move into SQLite: every page it
  // gets must be the next cursors in order, without a hole or a repeat.
  std::thread reader([&] {
    for (int round = 0; round < 100'000 && writing.load(); ++round) {
      const GroupId g = group_n(static_cast<std::uint8_t>(1 + round % kWriters));
      Cursor after = 0;
      for (int page_no = 0; page_no < 1000; ++page_no) {
        auto page = store.pull(g, after, 50, kNow);
        if (!page) {
          ++bad_pages;
          break;
        }
        ++pages_read;
        for (const auto& blob : page->blobs) {
          if (blob.cursor != after + 1) ++bad_pages;
          after = blob.cursor;
        }
        if (!page->has_more) break;
      }
    }
  });
  // stats() adds SQLite's counts to the pending blobs' while applies commit (without the
  // pending lock) beside it: every sample must lie between the pushes acknowledged before it was
  // taken and those acknowledged after (plus one in flight per writer: a blob is stored before its
  // completion returns), never count a blob twice or not at all.
  std::atomic<std::uint64_t> acked{0};
  std::atomic<int> bad_stats{0};
  std::atomic<int> stats_read{0};
  std::thread counter([&] {
    for (int round = 0; round < 1'000'000 && writing.load(); ++round) {
      const std::uint64_t before = acked.load();
      auto stats = store.stats();
      const std::uint64_t after = acked.load();
      if (!stats || stats->blobs < before || stats->blobs > after + kWriters || stats->bytes != stats->blobs * 300) ++bad_stats;
      ++stats_read;
    }
  });
  std::vector<std::thread> writers;
  std::atomic<int> wrong_cursors{0};
  for (std::uint32_t w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const GroupId g = group_n(static_cast<std::uint8_t>(1 + w));
      for (std::uint32_t i = 1; i <= kPushesEach; ++i) {
        auto r = push_sync(store, PushRequest{g, blob_n(w * 100'000 + i), device_n(1), payload_n(i, 300), kNow, kNever});
        if (!r || r->cursor != i) ++wrong_cursors;
        ++acked;
      }
    });
  }
  for (auto& t : writers) t.join();
  writing = false;
  reader.join();
  counter.join();
  CHECK(wrong_cursors == 0);
  CHECK(bad_pages == 0);
  CHECK(pages_read > 0);
  CHECK(bad_stats == 0);
  CHECK(stats_read > 0);
  const auto stats = store.stats().value();
  CHECK(stats.blobs == kWriters * kPushesEach);
  CHECK(stats.bytes == kWriters * kPushesEach * 300);
  for (std::uint32_t w = 0; w < kWriters; ++w) {
    CHECK(pulled_cursors(store, group_n(static_cast<std::uint8_t>(1 + w))) == one_to(kPushesEach));
  }
  store.close();
  CHECK(replay_from(options.path) > segments_of(options.path).back());
  RawDb raw(options.path);
  CHECK(raw.integer("SELECT count(*) FROM blobs") == kWriters * kPushesEach);
  CHECK(raw.integer("SELECT sum(max_cursor) FROM groups") == kWriters * kPushesEach);
}

TEST_CASE("store: with no applier running, the writer applies itself once the unapplied segments are past halfway "
          "to their bound, so they never reach journal_max_bytes, the applier stands aside meanwhile",
          "[store][journal]") {
  // The writer alone, without the store's applier thread: exactly an applier that has fallen
  // behind. Without the writer's help the unapplied segments would grow to journal_max_bytes and
  // every push would then wait for a full apply.
  TempDir dir;
  StoreOptions options = options_at(dir.file("relay.db"));
  options.durability = Durability::kNormal;
  options.apply_max_blobs = 16;
  options.journal_clear_bytes = 8 * 1024;
  options.journal_max_bytes = 64 * 1024;  // the writer helps past (8 + 64) / 2 = 36 KiB
  auto opened = relay::sqlite::SqliteWriter::open(options);
  REQUIRE(opened);
  relay::sqlite::SqliteWriter& writer = **opened;

  constexpr std::uint32_t kGroups = 4;
  constexpr std::uint32_t kPerGroup = 150;  // ~300 bytes per record: ~180 KiB in all
  std::uintmax_t largest = 0;
  int wrong = 0;
  int applier_stood_aside = 0;
  int lease_outlived = 0;
  for (std::uint32_t i = 1; i <= kPerGroup; ++i) {
    std::vector<relay::sqlite::WriteOp> ops;
    for (std::uint32_t g = 0; g < kGroups; ++g) {
      ops.emplace_back(relay::sqlite::PushOp{
          PushRequest{group_n(static_cast<std::uint8_t>(1 + g)), blob_n(g * 1000 + i), device_n(1), payload_n(i, 200),
                      kNow, kNever},
          nullptr, std::nullopt});
    }
    writer.write_batch(ops);
    for (const auto& op : ops) {
      const auto& result = std::get<relay::sqlite::PushOp>(op).result;
      if (!result || !result->has_value() || result->value().cursor != i) ++wrong;
    }
    largest = std::max(largest, unapplied_segment_bytes(options.path));
    // More than apply_max_blobs wait after the first few runs, so an applier would be due; it is
    // not while the writer applies in its place, and is again once that lapses (no more pushes).
    const auto now = std::chrono::steady_clock::now();
    if (i > 8 && !writer.apply_due(now)) ++applier_stood_aside;
    if (!writer.apply_due(now + std::chrono::seconds(1))) ++lease_outlived;
  }
  CHECK(wrong == 0);
  CHECK(applier_stood_aside > 0);
  CHECK(lease_outlived == 0);
  INFO("most unapplied segment bytes: " << largest);
  // Past 36 KiB each run of pushes applies the oldest group's blobs first, one group per run (16
  // blobs per apply), so the unapplied bytes grow by a few runs more; far from 64 KiB.
  CHECK(largest < options.journal_max_bytes * 3 / 4);
  const auto in_sqlite = RawDb(options.path).integer("SELECT count(*) FROM blobs");
  CHECK(in_sqlite > 0);  // nothing but the writer applied them
  CHECK(in_sqlite < kGroups * kPerGroup);  // and not by one full apply of everything
  writer.close_journal();
  CHECK(RawDb(options.path).integer("SELECT count(*) FROM blobs") == kGroups * kPerGroup);
}
