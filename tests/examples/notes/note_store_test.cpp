// The notes example's SQLite store: local edits, last-writer-wins merging, tombstones, the
// pending queue, and the database file's mode.
#include "note_store.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>

#include "temp_dir.h"

using blindsync::Code;
using notes::Hlc;
using notes::MergeOutcome;
using notes::NoteOp;
using notes::NoteStore;
using notes::OpKind;

namespace {

const std::string kSelf = std::string(64, 'a');
const std::string kPeer = std::string(64, 'b');

std::unique_ptr<NoteStore> open_store(const blindsync::test::TempDir& dir) {
  auto store = NoteStore::open(dir.sub("notes.db"));
  INFO((store ? std::string() : store.error().to_string()));
  REQUIRE(store.has_value());
  return std::move(*store);
}

NoteOp remote_put(const std::string& id, const std::string& body, Hlc hlc) {
  NoteOp op;
  op.kind = OpKind::kPut;
  op.note_id = id;
  op.title = "t";
  op.body = body;
  op.hlc = std::move(hlc);
  return op;
}

NoteOp remote_delete(const std::string& id, Hlc hlc) {
  NoteOp op;
  op.kind = OpKind::kDelete;
  op.note_id = id;
  op.hlc = std::move(hlc);
  return op;
}

}  // namespace

TEST_CASE("notes store: the database file is created 0600 and reopens with its notes", "[notes][store]") {
  blindsync::test::TempDir dir("notes-store");
  {
    auto store = open_store(dir);
    REQUIRE(store->put(kSelf, "n1", std::string("Title"), "body", 1000).has_value());
  }
  struct stat st {};
  REQUIRE(::stat(dir.sub("notes.db").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto store = open_store(dir);
  auto note = store->get("n1");
  REQUIRE(note.has_value());
  REQUIRE(note->has_value());
  CHECK((*note)->title == "Title");
  CHECK((*note)->body == "body");
  CHECK((*note)->hlc == Hlc{1000, 0, kSelf});
}

TEST_CASE("notes store: local edits are stored, stamped and queued in one step", "[notes][store]") {
  blindsync::test::TempDir dir("notes-store");
  auto store = open_store(dir);
  auto first = store->put(kSelf, "n1", std::string("Title"), "v1", 1000);
  REQUIRE(first.has_value());
  auto second = store->put(kSelf, "n1", std::nullopt, "v2", 1000);  // keeps the title
  REQUIRE(second.has_value());
  CHECK(second->title == "Title");
  CHECK(second->hlc > first->hlc);
  auto pending = store->pending(10);
  REQUIRE(pending.has_value());
  REQUIRE(pending->size() == 2);
  auto decoded = notes::decode_note_op(blindsync::as_bytes((*pending)[1].payload));
  REQUIRE(decoded.has_value());
  CHECK(decoded->body == "v2");
  CHECK(decoded->hlc == second->hlc);
  REQUIRE(store->drop_pending((*pending)[0].seq).is_ok());
  CHECK(*store->pending_count() == 1);

  SECTION("a refused edit changes nothing") {
    CHECK_FALSE(store->put(kSelf, "", std::nullopt, "x", 2000).has_value());
    CHECK_FALSE(store->put(kSelf, "n2", std::nullopt, "bad \xff utf-8", 2000).has_value());
    CHECK(store->remove(kSelf, "missing", 2000).error().code() == Code::kNotFound);
    CHECK(*store->pending_count() == 1);
    CHECK(store->list(true)->size() == 1);
  }
  SECTION("deleting leaves a tombstone that list hides") {
    auto deleted = store->remove(kSelf, "n1", 3000);
    REQUIRE(deleted.has_value());
    CHECK(store->list(false)->empty());
    REQUIRE(store->list(true)->size() == 1);
    CHECK(store->list(true)->front().deleted);
    CHECK(store->remove(kSelf, "n1", 3000).error().code() == Code::kNotFound);
  }
}

TEST_CASE("notes store: merging keeps the version with the greater HLC, in any arrival order",
          "[notes][store]") {
  blindsync::test::TempDir dir("notes-store");
  auto store = open_store(dir);
  const Hlc older{1000, 0, kPeer};
  const Hlc newer{1000, 1, kPeer};

  CHECK(*store->merge(remote_put("n", "newer", newer), 500) == MergeOutcome::kApplied);
  CHECK(*store->merge(remote_put("n", "older", older), 500) == MergeOutcome::kIgnored);
  CHECK(*store->merge(remote_put("n", "again", newer), 500) == MergeOutcome::kIgnored);  // re-delivery
  CHECK((*store->get("n"))->body == "newer");

  SECTION("the device id breaks a tie of wall time and counter") {
    CHECK(*store->merge(remote_put("n", "from a", Hlc{1000, 1, kSelf}), 500) == MergeOutcome::kIgnored);
    CHECK(*store->merge(remote_put("n", "from c", Hlc{1000, 1, std::string(64, 'c')}), 500) ==
          MergeOutcome::kApplied);
  }
  SECTION("a late older put cannot resurrect a deleted note") {
    CHECK(*store->merge(remote_delete("n", Hlc{2000, 0, kPeer}), 500) == MergeOutcome::kApplied);
    CHECK(*store->merge(remote_put("n", "late", Hlc{1500, 0, kPeer}), 500) == MergeOutcome::kIgnored);
    CHECK(store->list(false)->empty());
    // A delete can arrive before the note it deletes ever did.
    CHECK(*store->merge(remote_delete("m", Hlc{3000, 0, kPeer}), 500) == MergeOutcome::kApplied);
    CHECK(*store->merge(remote_put("m", "first", Hlc{2500, 0, kPeer}), 500) == MergeOutcome::kIgnored);
    CHECK(store->list(false)->empty());
  }
  SECTION("receiving advances the local clock: the next local edit wins over what was seen") {
    CHECK(*store->merge(remote_put("far", "future", Hlc{9'000'000, 4, kPeer}), 500) ==
          MergeOutcome::kApplied);
    auto local = store->put(kSelf, "far", std::nullopt, "mine", 600);  // our wall clock is far behind
    REQUIRE(local.has_value());
    CHECK(local->hlc > Hlc{9'000'000, 4, kPeer});
    CHECK((*store->get("far"))->body == "mine");
  }
}
