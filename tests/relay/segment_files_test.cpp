// SegmentFiles (store/segment_files.h): payload reads out of segment files, neighbours read
// together, a record that does not match its row refused, and a removed segment NOT_FOUND for a
// reader that did not have it open.
#include "store/segment_files.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <random>
#include <vector>

#include "store/push_journal.h"
#include "store_fixture.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay::test;
using relay::sqlite::JournalRecord;
using relay::sqlite::PayloadRead;
using relay::sqlite::PushJournal;
using relay::sqlite::segment_path_for;
using relay::sqlite::SegmentFiles;

constexpr std::uint64_t kEpoch = 77;

// Writes `count` records of varied sizes into segment `number`; returns them with their offsets.
std::vector<JournalRecord> write_segment(const std::string& db, std::uint64_t number, std::uint32_t first,
                                         std::uint32_t count) {
  auto segment = PushJournal::open(segment_path_for(db, number), kEpoch, false, number).value();
  std::vector<JournalRecord> records;
  for (std::uint32_t n = first; n < first + count; ++n) {
    records.push_back(JournalRecord{group_n(1), blob_n(n), device_n(1), n, kNow, kNever,
                                    std::make_shared<const Bytes>(payload_n(n, 1 + (n * 37) % 5000))});
  }
  REQUIRE(segment.append(records).is_ok());
  return records;
}

PayloadRead read_of(const JournalRecord& r, Bytes& out) {
  return PayloadRead{r.segment, r.payload_offset, r.payload->size(), r.blob_id, &out};
}

TEST_CASE("segment files: payloads from two segments, in any order, come back exact", "[store][segments]") {
  TempDir dir;
  const std::string db = dir.file("relay.db");
  auto records = write_segment(db, 1, 1, 200);
  auto more = write_segment(db, 2, 201, 200);
  records.insert(records.end(), more.begin(), more.end());
  // Every third record, shuffled: gaps between the reads and both files at once.
  std::vector<std::size_t> picked;
  for (std::size_t i = 0; i < records.size(); i += 3) picked.push_back(i);
  std::shuffle(picked.begin(), picked.end(), std::mt19937(7));
  std::vector<Bytes> out(picked.size());
  std::vector<PayloadRead> reads;
  for (std::size_t i = 0; i < picked.size(); ++i) reads.push_back(read_of(records[picked[i]], out[i]));
  SegmentFiles files(db);
  REQUIRE(files.read(reads).is_ok());
  for (std::size_t i = 0; i < picked.size(); ++i) {
    INFO("record " << picked[i]);
    CHECK(out[i] == *records[picked[i]].payload);
  }
}

TEST_CASE("segment files: a read whose record is not the row's blob is refused", "[store][segments]") {
  TempDir dir;
  const std::string db = dir.file("relay.db");
  auto records = write_segment(db, 1, 1, 3);
  SegmentFiles files(db);
  Bytes out;
  SECTION("another blob id") {
    PayloadRead read = read_of(records[1], out);
    read.blob_id = blob_n(999);
    auto st = files.read(std::span(&read, 1));
    CHECK(st.code() == Code::kInternal);
    CHECK(st.message().find("does not hold the blob its row names") != std::string::npos);
  }
  SECTION("another size") {
    PayloadRead read = read_of(records[1], out);
    read.size += 1;
    CHECK(files.read(std::span(&read, 1)).code() == Code::kInternal);
  }
  SECTION("an offset inside a payload") {
    PayloadRead read = read_of(records[1], out);
    read.offset += 5;
    CHECK(files.read(std::span(&read, 1)).code() == Code::kInternal);
  }
  SECTION("an impossible size") {
    PayloadRead read = read_of(records[1], out);
    read.size = std::uint64_t{1} << 40;
    auto st = files.read(std::span(&read, 1));
    CHECK(st.message().find("impossible") != std::string::npos);
  }
}

TEST_CASE(
    "segment files: a removed segment stays readable to a reader that had it open, and is NOT_FOUND to a new "
    "one",
    "[store][segments]") {
  TempDir dir;
  const std::string db = dir.file("relay.db");
  auto records = write_segment(db, 1, 1, 5);
  SegmentFiles old_reader(db);
  Bytes out;
  PayloadRead read = read_of(records[2], out);
  REQUIRE(old_reader.read(std::span(&read, 1)).is_ok());  // opens and keeps the file

  SegmentFiles remover(db);
  REQUIRE(remover.remove(1).is_ok());
  CHECK_FALSE(std::filesystem::exists(segment_path_for(db, 1)));
  // The store's readers share one SegmentFiles: remove() drops its descriptor, so a later read
  // opens the path again and learns that the segment is gone (the pull then reads anew).
  auto st = remover.read(std::span(&read, 1));
  CHECK(st.code() == Code::kNotFound);
  CHECK(st.message().find("is gone") != std::string::npos);
  // A reader that still holds the descriptor reads on: the file lives until it lets go.
  out.clear();
  REQUIRE(old_reader.read(std::span(&read, 1)).is_ok());
  CHECK(out == *records[2].payload);
  CHECK(remover.remove(1).is_ok());  // removing twice is no error
}

}  // namespace
