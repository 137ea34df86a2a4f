// LocalStore against real SQLite files in a fresh temporary directory per test.
#include "local_store_fixture.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "blindsync/auth/identity.h"

using namespace blindsync;
using namespace blindsync::client_detail;
using namespace blindsync::testing;

namespace {

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("local store creates home 0700 and the store file 0600", "[local_store]") {
  TempDir tmp;
  const std::string home = tmp.sub("nested/home");
  {
    auto store = open_store(home);
    CHECK(store->path() == home + "/" + kStoreFileName);
  }
  CHECK(mode_of(home) == 0700);
  CHECK(mode_of(home + "/blindsync.db") == 0600);
  // SQLite's WAL companion files inherit the store file's mode.
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string companion = home + "/blindsync.db" + suffix;
    if (std::filesystem::exists(companion)) CHECK(mode_of(companion) == 0600);
  }
}

TEST_CASE("local store tightens a world-readable store file to 0600", "[local_store]") {
  TempDir tmp;
  const std::string home = tmp.sub("home");
  std::filesystem::create_directories(home);
  { std::ofstream(home + "/blindsync.db").flush(); }
  REQUIRE(::chmod((home + "/blindsync.db").c_str(), 0644) == 0);
  auto store = open_store(home);
  CHECK(mode_of(home + "/blindsync.db") == 0600);
}

TEST_CASE("local store refuses a home that is a file and a store file that is not SQLite", "[local_store]") {
  TempDir tmp;
  const std::string file = tmp.sub("plain-file");
  { std::ofstream(file) << "x"; }
  auto not_dir = LocalStore::open(file);
  REQUIRE_FALSE(not_dir.has_value());
  CHECK(not_dir.error().code() == Code::kInvalidArgument);

  const std::string home = tmp.sub("garbage");
  std::filesystem::create_directories(home);
  { std::ofstream(home + "/blindsync.db") << std::string(4096, 'g'); }
  auto garbage = LocalStore::open(home);
  REQUIRE_FALSE(garbage.has_value());
  CHECK(garbage.error().code() == Code::kStorageError);
}

TEST_CASE("local store keeps everything across reopen", "[local_store]") {
  TempDir tmp;
  const std::string home = tmp.sub("home");
  const GroupId group = id_with<GroupId>(1);
  const RelayId relay = id_with<RelayId>(2);
  {
    auto store = open_store(home);
    REQUIRE(store->save_identity(secret_with(7), "laptop"));
    REQUIRE(store->insert_group(GroupRecord{group, "notes", "ws://relay:80/v1/sync", relay}, secret_with(9)));
    REQUIRE(store->set_cursor_state(group, "ws://relay:80/v1/sync", CursorRecord{5, 77}));
    REQUIRE(store->outbox_add(entry(group, 1)));
  }
  auto store = open_store(home);
  auto identity = store->load_identity();
  REQUIRE(identity.has_value());
  REQUIRE(identity->has_value());
  CHECK((*identity)->name == "laptop");
  CHECK((*identity)->seed.bytes()[31] == 7);

  auto groups = store->list_groups();
  REQUIRE(groups.has_value());
  REQUIRE(groups->size() == 1);
  CHECK(groups->front().group_id == group);
  CHECK(groups->front().name == "notes");
  CHECK(groups->front().relay_url == "ws://relay:80/v1/sync");
  CHECK(groups->front().relay_id == relay);

  auto secret = store->load_group_secret(group);
  REQUIRE(secret.has_value());
  CHECK(secret->bytes()[0] == 9);

  auto cursor = store->load_cursor(group, "ws://relay:80/v1/sync");
  REQUIRE(cursor.has_value());
  CHECK(cursor->cursor == 5);
  CHECK(cursor->epoch == 77);

  auto count = store->outbox_count();
  REQUIRE(count.has_value());
  CHECK(*count == 1);
}

TEST_CASE("local store refuses to overwrite the identity", "[local_store]") {
  TempDir tmp;
  auto store = open_store(tmp.sub("home"));
  auto none = store->load_identity();
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());

  REQUIRE(store->save_identity(secret_with(1), "first"));
  const Status again = store->save_identity(secret_with(2), "second");
  CHECK(again.code() == Code::kAlreadyExists);

  auto identity = store->load_identity();
  REQUIRE(identity.has_value());
  REQUIRE(identity->has_value());
  CHECK((*identity)->name == "first");
  CHECK((*identity)->seed.bytes()[0] == 1);
}

TEST_CASE("local store refuses a group it already has and reports unknown groups", "[local_store]") {
  TempDir tmp;
  auto store = open_store(tmp.sub("home"));
  const GroupId group = id_with<GroupId>(3);
  const GroupRecord record{group, "a", "ws://r/v1/sync", id_with<RelayId>(4)};
  REQUIRE(store->insert_group(record, secret_with(1)));
  CHECK(store->insert_group(record, secret_with(2)).code() == Code::kAlreadyExists);

  auto missing = store->load_group(id_with<GroupId>(9));
  REQUIRE(missing.has_value());
  CHECK_FALSE(missing->has_value());
  auto no_secret = store->load_group_secret(id_with<GroupId>(9));
  REQUIRE_FALSE(no_secret.has_value());
  CHECK(no_secret.error().code() == Code::kNotFound);
}

TEST_CASE("outbox lists entries per group in insertion order and deletes one by blob id", "[local_store]") {
  TempDir tmp;
  auto store = open_store(tmp.sub("home"));
  const GroupId g1 = id_with<GroupId>(1);
  const GroupId g2 = id_with<GroupId>(2);
  // Blob ids deliberately not in insertion order: the outbox keeps push order, not id order.
  // Each entry gets its own TTL (60 s per n) so the listing shows that every entry keeps its own.
  REQUIRE(store->outbox_add(entry(g1, 9, 8, 540)));
  REQUIRE(store->outbox_add(entry(g2, 5, 8, 300)));
  REQUIRE(store->outbox_add(entry(g1, 3, 8, 180)));
  REQUIRE(store->outbox_add(entry(g1, 6, 100'000, 360)));

  auto listed = store->outbox_list(g1);
  REQUIRE(listed.has_value());
  REQUIRE(listed->size() == 3);
  CHECK((*listed)[0].blob_id == id_with<BlobId>(9));
  CHECK((*listed)[1].blob_id == id_with<BlobId>(3));
  CHECK((*listed)[2].blob_id == id_with<BlobId>(6));
  CHECK((*listed)[2].payload == Bytes(100'000, 6));
  CHECK((*listed)[1].ttl_seconds == 180);
  CHECK((*listed)[0].seq < (*listed)[1].seq);

  auto limited = store->outbox_list(g1, 2);
  REQUIRE(limited.has_value());
  CHECK(limited->size() == 2);

  CHECK(store->outbox_add(entry(g1, 9, 8, 540)).code() == Code::kAlreadyExists);

  REQUIRE(store->outbox_remove(g1, id_with<BlobId>(3)));
  auto after = store->outbox_list(g1);
  REQUIRE(after.has_value());
  REQUIRE(after->size() == 2);
  CHECK((*after)[0].blob_id == id_with<BlobId>(9));
  CHECK((*after)[1].blob_id == id_with<BlobId>(6));

  // Removing from another group's outbox leaves this one alone.
  REQUIRE(store->outbox_remove(g2, id_with<BlobId>(9)));
  CHECK(*store->outbox_count(g1) == 2);
  CHECK(*store->outbox_count(g2) == 1);
  CHECK(*store->outbox_count() == 3);
}

TEST_CASE("stored cursor only moves forward, except through an explicit reset", "[local_store]") {
  TempDir tmp;
  auto store = open_store(tmp.sub("home"));
  const GroupId group = id_with<GroupId>(1);
  const std::string relay = "ws://r/v1/sync";

  auto fresh = store->load_cursor(group, relay);
  REQUIRE(fresh.has_value());
  CHECK(fresh->cursor == 0);
  CHECK(fresh->epoch == 0);

  REQUIRE(store->set_cursor_state(group, relay, CursorRecord{0, 11}));
  REQUIRE(store->advance_cursor(group, relay, 10, {}));
  CHECK(store->load_cursor(group, relay)->cursor == 10);
  REQUIRE(store->advance_cursor(group, relay, 4, {}));
  CHECK(store->load_cursor(group, relay)->cursor == 10);
  CHECK(store->load_cursor(group, relay)->epoch == 11);
  REQUIRE(store->advance_cursor(group, relay, 12, {}));
  CHECK(store->load_cursor(group, relay)->cursor == 12);

  // Another relay of the same group has its own cursor.
  CHECK(store->load_cursor(group, "ws://other/v1/sync")->cursor == 0);

  // A relay reset (new epoch) sets it back explicitly.
  REQUIRE(store->set_cursor_state(group, relay, CursorRecord{0, 12}));
  auto reset = store->load_cursor(group, relay);
  CHECK(reset->cursor == 0);
  CHECK(reset->epoch == 12);
}

TEST_CASE("seen blobs are recorded with the cursor and pruned by age", "[local_store]") {
  TempDir tmp;
  auto store = open_store(tmp.sub("home"));
  const GroupId group = id_with<GroupId>(1);
  const GroupId other = id_with<GroupId>(2);
  REQUIRE(store->advance_cursor(group, "ws://r/v1/sync", 2,
                                {SeenBlob{id_with<BlobId>(1), 1}, SeenBlob{id_with<BlobId>(2), 2}}));
  CHECK(*store->is_seen(group, id_with<BlobId>(1)));
  CHECK(*store->is_seen(group, id_with<BlobId>(2)));
  CHECK_FALSE(*store->is_seen(group, id_with<BlobId>(3)));
  CHECK_FALSE(*store->is_seen(other, id_with<BlobId>(1)));
  // A page's worth at once: exactly the seen ones, of this group only.
  const std::vector<BlobId> page{id_with<BlobId>(3), id_with<BlobId>(2), id_with<BlobId>(1), id_with<BlobId>(4)};
  auto among = store->seen_among(group, page);
  REQUIRE(among.has_value());
  CHECK(*among == LocalStore::SeenSet{id_with<BlobId>(1), id_with<BlobId>(2)});
  CHECK(store->seen_among(other, page)->empty());
  CHECK(store->seen_among(group, {})->empty());
  // Recording the same blob again is harmless.
  REQUIRE(store->advance_cursor(group, "ws://r/v1/sync", 2, {SeenBlob{id_with<BlobId>(1), 1}}));

  REQUIRE(store->prune_seen(now_unix_ms() - 60'000));  // nothing that old
  CHECK(*store->is_seen(group, id_with<BlobId>(1)));
  REQUIRE(store->prune_seen(now_unix_ms() + 60'000));  // everything is older than that
  CHECK_FALSE(*store->is_seen(group, id_with<BlobId>(1)));
}

TEST_CASE("two stores on one home see each other's writes", "[local_store]") {
  TempDir tmp;
  const std::string home = tmp.sub("home");
  auto a = open_store(home);
  auto b = open_store(home);
  const GroupId group = id_with<GroupId>(1);
  REQUIRE(a->outbox_add(entry(group, 1)));
  CHECK(*b->outbox_count(group) == 1);
  REQUIRE(b->save_identity(secret_with(1), "b"));
  CHECK(a->save_identity(secret_with(2), "a").code() == Code::kAlreadyExists);
}

TEST_CASE("a store written by a newer schema is refused", "[local_store]") {
  TempDir tmp;
  const std::string home = tmp.sub("home");
  { auto store = open_store(home); }
  {
    // Bump user_version behind the store's back, as a future blindsync would.
    auto store = open_store(home);
    REQUIRE(store->save_identity(secret_with(1), "x"));
  }
  // Raw SQLite is not linked into the tests; emulate by editing the header field: user_version is
  // the big-endian u32 at byte offset 60 of the database file.
  {
    std::fstream file(home + "/blindsync.db", std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(file.good());
    file.seekp(60);
    const char version[4] = {0, 0, 0, 99};
    file.write(version, 4);
  }
  auto newer = LocalStore::open(home);
  REQUIRE_FALSE(newer.has_value());
  CHECK(newer.error().code() == Code::kStorageError);
  CHECK(newer.error().message().find("schema version 99") != std::string::npos);
}
