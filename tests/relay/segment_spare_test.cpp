// Zero-filled segments (store/segment_spare.h): the spare file, a push journal written over zeros,
// and a store whose segments are made from spares, through a crash and a clean close.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "store/push_journal.h"
#include "store/segment_spare.h"
#include "store/store.h"
#include "store_fixture.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;
using namespace blindsync::relay::test;
using relay::sqlite::JournalRecord;
using relay::sqlite::PushJournal;
using relay::sqlite::SegmentSpare;
namespace fs = std::filesystem;

constexpr std::uint64_t kEpoch = 0x0fed'cba9'8765'4321;

Bytes file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool all_zero(const Bytes& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

void write_zeros(const std::string& path, std::size_t size) {
  std::ofstream out(path, std::ios::binary);
  const std::vector<char> zeros(size, 0);
  out.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
}

// A file of `size` zeros named as segment `number` in `dir`, as a spare renamed into place is.
std::string zero_filled_segment(const TempDir& dir, std::uint64_t number, std::size_t size) {
  const std::string path = relay::sqlite::segment_path_for(dir.file("relay.db"), number);
  write_zeros(path, size);
  return path;
}

std::vector<std::uint64_t> segments_of(const std::string& db) { return relay::sqlite::list_segments(db).value(); }

}  // namespace

TEST_CASE("spare segment: made zero-filled and private, renamed only onto a free name, deleted at the end",
          "[store][spare]") {
  TempDir dir;
  const std::string db = dir.file("relay.db");
  const std::string spare_path = relay::sqlite::spare_segment_path_for(db);
  write_zeros(spare_path, 100);  // what a crash may leave: cut short
  {
    SegmentSpare spare(spare_path, 3 * 1024 * 1024 + 5);
    CHECK_FALSE(fs::exists(spare_path));  // the leftover is never taken
    CHECK_FALSE(spare.take_as(dir.file("a"), /*wait=*/false));  // none made yet

    REQUIRE(spare.take_as(dir.file("a"), /*wait=*/true));
    CHECK_FALSE(fs::exists(spare_path));
    const Bytes made = file_bytes(dir.file("a"));
    CHECK(made.size() == 3 * 1024 * 1024 + 5);
    CHECK(all_zero(made));
    struct stat info {};
    REQUIRE(::stat(dir.file("a").c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);

    // An existing file is never replaced: it would be a segment with records.
    std::ofstream(dir.file("b")) << "records";
    spare.prepare();
    CHECK_FALSE(spare.take_as(dir.file("b"), /*wait=*/true));
    CHECK(file_bytes(dir.file("b")).size() == 7);

    spare.prepare();
    REQUIRE(spare.take_as(dir.file("c"), /*wait=*/true));
    spare.prepare();  // one being made (or made) when the owner goes
  }
  CHECK_FALSE(fs::exists(spare_path));
  CHECK(fs::file_size(dir.file("c")) == 3 * 1024 * 1024 + 5);  // taken spares are the caller's
}

TEST_CASE("journal over zeros: records go over the zeros without growing the file, read back exactly, and a trim "
          "gives the rest back",
          "[store][spare][journal]") {
  TempDir dir;
  constexpr std::size_t kFileBytes = 64 * 1024;
  const std::string path = zero_filled_segment(dir, 7, kFileBytes);
  const GroupId g = group_n(3);
  std::vector<JournalRecord> written;
  std::uint64_t records_end = 0;
  {
    auto journal = PushJournal::open_zero_filled(path, kEpoch, true, 7);
    REQUIRE(journal);
    CHECK_FALSE(journal->has_records());
    for (std::uint32_t run = 0; run < 10; ++run) {
      std::vector<JournalRecord> records;
      for (std::uint32_t i = 1; i <= 5; ++i) records.push_back(journal_record_n(g, run * 5 + i, run * 5 + i));
      REQUIRE(journal->append(records).is_ok());
      written.insert(written.end(), records.begin(), records.end());
      CHECK(fs::file_size(path) == kFileBytes);
    }
    records_end = journal->size_bytes();
    CHECK(records_end < kFileBytes);
  }  // closed as a crash would leave it: zeros after the records
  // The records as a replay finds them: the zeros after them are the end.
  const auto read = read_journal(path, kEpoch);
  REQUIRE(read.size() == written.size());
  for (std::size_t i = 0; i < read.size(); ++i) {
    INFO("record " << i);
    CHECK(read[i].cursor == written[i].cursor);
    CHECK(read[i].blob_id == written[i].blob_id);
    CHECK(*read[i].payload == *written[i].payload);
    CHECK(read[i].payload_offset == written[i].payload_offset);  // where pulls will read it
  }
  {
    // Opened again, it appends after the last record, not after the zeros; past the end of the
    // zeros the file grows, as a plain segment does.
    auto journal = PushJournal::open(path, kEpoch, true, 7);
    REQUIRE(journal);
    CHECK(journal->size_bytes() == records_end);
    std::vector<JournalRecord> big{JournalRecord{g, blob_n(99), device_n(1), 51, kNow, kNever,
                                                 std::make_shared<const Bytes>(payload_n(99, kFileBytes))}};
    REQUIRE(journal->append(big).is_ok());
    CHECK(fs::file_size(path) == journal->size_bytes());
  }
  const auto grown = read_journal(path, kEpoch);
  REQUIRE(grown.size() == written.size() + 1);
  CHECK(*grown.back().payload == payload_n(99, kFileBytes));

  const std::string other = zero_filled_segment(dir, 8, kFileBytes);
  {
    auto journal = PushJournal::open_zero_filled(other, kEpoch, true, 8);
    REQUIRE(journal);
    std::vector<JournalRecord> one{journal_record_n(g, 1, 1)};
    REQUIRE(journal->append(one).is_ok());
    REQUIRE(journal->trim().is_ok());
    CHECK(fs::file_size(other) == journal->size_bytes());
  }
  CHECK(read_journal(other, kEpoch).size() == 1);
}

TEST_CASE("journal over zeros: an append that fails past the zeros is cut back with them, and the next one follows "
          "the last good record",
          "[store][spare][journal]") {
  TempDir dir;
  constexpr std::size_t kFileBytes = 8 * 1024;
  const std::string path = zero_filled_segment(dir, 5, kFileBytes);
  const GroupId g = group_n(2);
  // In a child: RLIMIT_FSIZE stops the write where it would grow the file (EFBIG), the way a full
  // disk would, without touching this test process's limits.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    auto journal = PushJournal::open_zero_filled(path, kEpoch, true, 5);
    if (!journal) ::_exit(10);
    std::vector<JournalRecord> first{journal_record_n(g, 1, 1), journal_record_n(g, 2, 2)};
    if (!journal->append(first).is_ok()) ::_exit(11);
    const std::uint64_t end = journal->size_bytes();
    rlimit limit{};
    ::getrlimit(RLIMIT_FSIZE, &limit);
    const rlimit saved = limit;
    limit.rlim_cur = kFileBytes + 100;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(12);
    std::vector<JournalRecord> too_big{JournalRecord{g, blob_n(3), device_n(1), 3, kNow, kNever,
                                                     std::make_shared<const Bytes>(payload_n(3, kFileBytes))}};
    if (journal->append(too_big).is_ok()) ::_exit(13);
    if (journal->size_bytes() != end || fs::file_size(path) != end) ::_exit(14);  // cut back, zeros and all
    if (::setrlimit(RLIMIT_FSIZE, &saved) != 0) ::_exit(15);
    std::vector<JournalRecord> next{journal_record_n(g, 3, 3)};
    if (!journal->append(next).is_ok()) ::_exit(16);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  const auto read = read_journal(path, kEpoch);
  REQUIRE(read.size() == 3);
  CHECK(read[2].cursor == 3);
  CHECK(*read[2].payload == *journal_record_n(g, 3, 3).payload);
}

TEST_CASE("journal over zeros: only a zero-filled file is taken as one, and a spare renamed just before a crash "
          "opens as an empty segment",
          "[store][spare][journal]") {
  TempDir dir;
  const std::string path = dir.file("relay.db-seg-0000000002");
  {
    std::vector<JournalRecord> records{journal_record_n(group_n(1), 1, 1)};
    auto journal = PushJournal::open(path, kEpoch, true, 2);
    REQUIRE(journal);
    REQUIRE(journal->append(records).is_ok());
  }
  auto refused = PushJournal::open_zero_filled(path, kEpoch, true, 2);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message().find("not a zero-filled spare") != std::string::npos);
  CHECK(read_journal(path, kEpoch).size() == 1);  // untouched

  // The run renamed a spare to this name and stopped before its header was written.
  const std::string renamed = zero_filled_segment(dir, 3, 4096);
  auto opened = PushJournal::open(renamed, kEpoch, true, 3);
  REQUIRE(opened);
  CHECK_FALSE(opened->has_records());
  CHECK(opened->read_all().value().empty());

  // Anything else without a header is still not taken over: a foreign file, and a segment whose
  // header alone was zeroed (damage), which may hold acknowledged pushes after it.
  const std::string foreign = dir.file("relay.db-seg-0000000004");
  std::ofstream(foreign) << std::string(4096, 'x');
  auto not_journal = PushJournal::open(foreign, kEpoch, true, 4);
  REQUIRE_FALSE(not_journal);
  CHECK(not_journal.error().message().find("not a push journal") != std::string::npos);

  Bytes damaged = file_bytes(path);  // segment 2, with its record
  std::fill(damaged.begin(), damaged.begin() + 16, std::uint8_t{0});
  const std::string zeroed_header = dir.file("relay.db-seg-0000000005");
  std::ofstream(zeroed_header, std::ios::binary).write(reinterpret_cast<const char*>(damaged.data()),
                                                        static_cast<std::streamsize>(damaged.size()));
  auto refused_damaged = PushJournal::open(zeroed_header, kEpoch, true, 5);
  REQUIRE_FALSE(refused_damaged);
  CHECK(refused_damaged.error().message().find("not a push journal") != std::string::npos);
  CHECK(file_bytes(zeroed_header) == damaged);  // left as it was
}

namespace {

// Every blob of group g, cursors 1..count, with the payloads push_n made.
void check_all_pulled(Store& store, const GroupId& g, std::uint32_t count, std::size_t payload_bytes) {
  Cursor after = 0;
  for (int pages = 0; pages < 1000 && after < count; ++pages) {
    auto page = store.pull(g, after, 64, kNow).value();
    REQUIRE_FALSE(page.blobs.empty());
    for (const auto& blob : page.blobs) {
      REQUIRE(blob.cursor == after + 1);
      CHECK(blob.payload == payload_n(static_cast<std::uint32_t>(blob.cursor), payload_bytes));
      after = blob.cursor;
    }
  }
  CHECK(after == count);
}

StoreOptions full_options(const std::string& path, std::uint64_t clear_bytes) {
  StoreOptions options;
  options.path = path;
  options.durability = Durability::kFull;
  options.journal_clear_bytes = clear_bytes;
  options.journal_max_bytes = std::max<std::uint64_t>(1u << 20, 4 * clear_bytes);
  return options;
}

}  // namespace

TEST_CASE("store with durability full: a crash in a zero-filled segment loses no acknowledged push, and a clean "
          "close gives its zeros back",
          "[store][spare][crash]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  const GroupId g = group_n(5);
  constexpr std::uint32_t kPushes = 300;  // ~100 KB of records: all in the first segment
  constexpr std::uint64_t kClearBytes = 1u << 20;
  constexpr std::uint64_t kSpareBytes = kClearBytes + kClearBytes / 8;
  const StoreOptions options = full_options(path, kClearBytes);

  // A child pushes and dies without closing the store.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto opened = open_sqlite_store(options);
    if (!opened) ::_exit(3);
    // The first segment is made zero-filled before the store opens.
    const std::string first = relay::sqlite::segment_path_for(path, segments_of(path).back());
    if (fs::file_size(first) != kSpareBytes) ::_exit(4);
    for (std::uint32_t i = 1; i <= kPushes; ++i) {
      auto r = push_sync(**opened, PushRequest{g, blob_n(i), device_n(1), payload_n(i, 300), kNow, kNever});
      if (!r || r->cursor != i) ::_exit(5);
    }
    if (segments_of(path).size() != 1 || fs::file_size(first) != kSpareBytes) ::_exit(6);  // written over zeros
    ::_exit(0);  // the store object is never destroyed
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  const std::string crashed = relay::sqlite::segment_path_for(path, segments_of(path).back());
  CHECK(fs::file_size(crashed) == kSpareBytes);  // zeros after the last record

  {
    auto opened = open_sqlite_store(options);
    REQUIRE(opened);
    check_all_pulled(**opened, g, kPushes, 300);
    auto next = push_sync(**opened, PushRequest{g, blob_n(kPushes + 1), device_n(1), payload_n(1, 10), kNow, kNever});
    REQUIRE(next);
    CHECK(next->cursor == kPushes + 1);
    (*opened)->close();
  }
  // A clean close trims the segment it appended to and leaves no spare behind.
  const std::string last = relay::sqlite::segment_path_for(path, segments_of(path).back());
  CHECK(fs::file_size(last) < kSpareBytes);
  CHECK_FALSE(fs::exists(relay::sqlite::spare_segment_path_for(path)));
}

TEST_CASE("store with durability full: sealed segments give back their zeros, whether or not a spare was ready "
          "for the next one",
          "[store][spare]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  const GroupId g = group_n(7);
  constexpr std::uint32_t kPushes = 300;  // ~320 bytes each: a new segment about every 50 pushes
  constexpr std::uint64_t kClearBytes = 16 * 1024;
  constexpr std::uint64_t kSpareBytes = kClearBytes + kClearBytes / 8;
  auto opened = open_sqlite_store(full_options(path, kClearBytes));
  REQUIRE(opened);
  CHECK(fs::file_size(relay::sqlite::segment_path_for(path, segments_of(path).back())) == kSpareBytes);
  for (std::uint32_t i = 1; i <= kPushes; ++i) {
    REQUIRE(push_sync(**opened, PushRequest{g, blob_n(i), device_n(1), payload_n(i, 300), kNow, kNever})->cursor ==
            i);
  }
  const auto numbers = segments_of(path);
  CHECK(numbers.size() >= 4);
  for (std::size_t k = 0; k + 1 < numbers.size(); ++k) {
    INFO("segment " << numbers[k]);
    // Trimmed to its records: one record (432 bytes) past journal_clear_bytes at most.
    CHECK(fs::file_size(relay::sqlite::segment_path_for(path, numbers[k])) <= kClearBytes + 432);
  }
  check_all_pulled(**opened, g, kPushes, 300);
  (*opened)->close();
  CHECK(fs::file_size(relay::sqlite::segment_path_for(path, segments_of(path).back())) <= kClearBytes + 432);
  CHECK_FALSE(fs::exists(relay::sqlite::spare_segment_path_for(path)));
}

TEST_CASE("store with durability normal: no spare is made, segments grow as they fill", "[store][spare]") {
  TempDir dir;
  StoreOptions options;
  options.path = dir.file("relay.db");
  options.durability = Durability::kNormal;
  options.journal_clear_bytes = 16 * 1024;
  auto opened = open_sqlite_store(options);
  REQUIRE(opened);
  const std::string first = relay::sqlite::segment_path_for(options.path, segments_of(options.path).back());
  const auto empty = fs::file_size(first);
  CHECK(empty < 1024);
  REQUIRE(push_sync(**opened, PushRequest{group_n(1), blob_n(1), device_n(1), payload_n(1, 500), kNow, kNever}));
  CHECK(fs::file_size(first) > empty + 500);
  for (std::uint32_t i = 2; i <= 100; ++i) {
    REQUIRE(push_sync(**opened, PushRequest{group_n(1), blob_n(i), device_n(1), payload_n(i, 500), kNow, kNever}));
  }
  CHECK_FALSE(fs::exists(relay::sqlite::spare_segment_path_for(options.path)));
  (*opened)->close();
}

TEST_CASE("store with durability full: a spare that cannot be made (a full disk) leaves segments that grow, and "
          "every push is still stored",
          "[store][spare]") {
  TempDir dir;
  const std::string path = dir.file("relay.db");
  const GroupId g = group_n(6);
  constexpr std::uint32_t kPushes = 40;
  // In a child: RLIMIT_FSIZE refuses any file past 256 KiB (EFBIG), so the 18 MiB spare cannot be
  // made, the way a full disk would refuse it; the database and a growing segment stay below it.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{};
    ::getrlimit(RLIMIT_FSIZE, &limit);
    limit.rlim_cur = 256 * 1024;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(10);
    StoreOptions options;
    options.path = path;
    options.durability = Durability::kFull;
    auto opened = open_sqlite_store(options);
    if (!opened) ::_exit(11);
    const std::string first = relay::sqlite::segment_path_for(path, segments_of(path).back());
    if (fs::file_size(first) > 1024) ::_exit(12);  // made empty, not from a spare
    if (fs::exists(relay::sqlite::spare_segment_path_for(path))) ::_exit(13);  // the failed one is gone
    for (std::uint32_t i = 1; i <= kPushes; ++i) {
      auto r = push_sync(**opened, PushRequest{g, blob_n(i), device_n(1), payload_n(i, 1000), kNow, kNever});
      if (!r || r->cursor != i) ::_exit(14);
    }
    if (fs::file_size(first) < kPushes * 1000) ::_exit(15);  // the records made it grow
    (*opened)->close();
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  StoreOptions options;
  options.path = path;
  options.durability = Durability::kFull;
  auto opened = open_sqlite_store(options);
  REQUIRE(opened);
  auto page = (*opened)->pull(g, 0, 100, kNow).value();
  REQUIRE(page.blobs.size() == kPushes);
  CHECK(page.blobs.back().payload == payload_n(kPushes, 1000));
  (*opened)->close();
}
