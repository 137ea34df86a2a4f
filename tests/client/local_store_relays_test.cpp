// LocalStore schema version 2: several relays per group, per-relay outbox acks, multi-relay cursor
// commits, and the migration of a version-1 file written by an older blindsync.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "local_store_fixture.h"

using namespace blindsync;
using namespace blindsync::client_detail;
using namespace blindsync::testing;

TEST_CASE("a group stores its relays in order, the primary first, each URL once", "[local_store]") {
  TempDir tmp;
  auto store = open_store(tmp.sub("home"));
  const GroupId group = id_with<GroupId>(1);
  REQUIRE(store->insert_group(GroupRecord{group, "g", kR1, id_with<RelayId>(1)}, secret_with(3),
                              {GroupRelay{kR2, id_with<RelayId>(2)}, GroupRelay{kR1, id_with<RelayId>(9)}}));
  auto relays = store->list_group_relays(group);
  REQUIRE(relays.has_value());
  REQUIRE(relays->size() == 2);
  CHECK((*relays)[0] == GroupRelay{kR1, id_with<RelayId>(1)});
  CHECK((*relays)[1] == GroupRelay{kR2, id_with<RelayId>(2)});
  auto unknown = store->list_group_relays(id_with<GroupId>(7));
  REQUIRE(unknown.has_value());
  CHECK(unknown->empty());
  // A failed insert (the group exists) adds no relay rows either.
  CHECK(
      store->insert_group(GroupRecord{group, "g", "ws://r3:80/v1/sync", id_with<RelayId>(3)}, secret_with(3))
          .code() == Code::kAlreadyExists);
  CHECK(store->list_group_relays(group)->size() == 2);
}

TEST_CASE("an outbox entry leaves the outbox once every relay of its group acked it", "[local_store]") {
  TempDir tmp;
  auto store = open_store(tmp.sub("home"));
  const GroupId group = id_with<GroupId>(1);
  insert_two_relay_group(*store, group);
  REQUIRE(store->outbox_add(entry(group, 1)));
  REQUIRE(store->outbox_add(entry(group, 2)));

  auto first = store->outbox_ack(group, id_with<BlobId>(1), kR2);
  REQUIRE(first.has_value());
  CHECK(first->queued);
  CHECK(first->first);
  CHECK_FALSE(first->removed);
  // The same ack again (a duplicate PUSH_ACK) is not "first" a second time.
  auto again = store->outbox_ack(group, id_with<BlobId>(1), kR2);
  REQUIRE(again.has_value());
  CHECK_FALSE(again->first);
  CHECK_FALSE(again->removed);

  auto for_r2 = store->outbox_list_for_relay(group, kR2);
  REQUIRE(for_r2.has_value());
  REQUIRE(for_r2->size() == 1);
  CHECK(for_r2->front().blob_id == id_with<BlobId>(2));
  CHECK(store->outbox_list_for_relay(group, kR1)->size() == 2);
  CHECK(*store->outbox_count() == 2);

  auto last = store->outbox_ack(group, id_with<BlobId>(1), kR1);
  REQUIRE(last.has_value());
  CHECK_FALSE(last->first);
  CHECK(last->removed);
  CHECK(*store->outbox_count() == 1);
  auto gone = store->outbox_ack(group, id_with<BlobId>(1), kR1);
  REQUIRE(gone.has_value());
  CHECK_FALSE(gone->queued);

  // outbox_remove drops an entry whatever its acks, and its ack rows with it.
  REQUIRE(store->outbox_ack(group, id_with<BlobId>(2), kR1)->first);
  REQUIRE(store->outbox_remove(group, id_with<BlobId>(2)));
  CHECK(*store->outbox_count() == 0);
  REQUIRE(store->outbox_add(entry(group, 2)));  // the same id queued again starts with no acks
  CHECK(store->outbox_ack(group, id_with<BlobId>(2), kR1)->first);
}

TEST_CASE("an outbox ack commits without an fsync and leaves every other commit synced", "[local_store]") {
  TempDir tmp;
  auto store = open_store(tmp.sub("home"));
  const GroupId group = id_with<GroupId>(1);
  insert_two_relay_group(*store, group);
  REQUIRE(store->commits_synced());
  REQUIRE(store->outbox_add(entry(group, 1)));
  // Every path out of outbox_ack: a recorded ack, the one that removes the entry, and an ack of
  // an entry no longer queued (which returns from inside its transaction).
  REQUIRE(store->outbox_ack(group, id_with<BlobId>(1), kR2)->first);
  CHECK(store->commits_synced());
  REQUIRE(store->outbox_ack(group, id_with<BlobId>(1), kR1)->removed);
  CHECK(store->commits_synced());
  REQUIRE_FALSE(store->outbox_ack(group, id_with<BlobId>(1), kR1)->queued);
  CHECK(store->commits_synced());

  // The unsynced ack still survives the connection: it is committed, only not fsynced yet.
  REQUIRE(store->outbox_add(entry(group, 2)));
  REQUIRE(store->outbox_ack(group, id_with<BlobId>(2), kR2)->first);
  store.reset();
  auto reopened = open_store(tmp.sub("home"));
  auto for_r2 = reopened->outbox_list_for_relay(group, kR2);
  REQUIRE(for_r2.has_value());
  CHECK(for_r2->empty());
  CHECK(reopened->outbox_list_for_relay(group, kR1)->size() == 1);
  CHECK(reopened->commits_synced());
}

TEST_CASE("commit_delivery moves several relay cursors forward and records seen blobs at once",
          "[local_store]") {
  TempDir tmp;
  auto store = open_store(tmp.sub("home"));
  const GroupId group = id_with<GroupId>(1);
  REQUIRE(store->set_cursor_state(group, kR2, CursorRecord{9, 5}));
  REQUIRE(store->commit_delivery(group, {RelayCursor{kR1, 4}, RelayCursor{kR2, 3}},
                                 {SeenBlob{id_with<BlobId>(1), 4}}));
  CHECK(store->load_cursor(group, kR1)->cursor == 4);
  CHECK(store->load_cursor(group, kR2)->cursor == 9);  // never backwards
  CHECK(store->load_cursor(group, kR2)->epoch == 5);
  CHECK(*store->is_seen(group, id_with<BlobId>(1)));
}

TEST_CASE("a version-1 store is migrated in place: its group keeps its relay and its outbox",
          "[local_store]") {
  TempDir tmp;
  const std::string home = tmp.sub("home");
  std::filesystem::create_directories(home);
  const std::string path = home + "/" + kStoreFileName;
  const GroupId group = id_with<GroupId>(4);
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    // The version-1 schema, as blindsync 0.1 wrote it.
    exec(db, R"sql(
      CREATE TABLE identity (id INTEGER PRIMARY KEY CHECK (id = 1), seed BLOB NOT NULL CHECK (length(seed) = 32),
        name TEXT NOT NULL, created_at_ms INTEGER NOT NULL);
      CREATE TABLE groups (group_id BLOB PRIMARY KEY CHECK (length(group_id) = 32), name TEXT NOT NULL,
        secret BLOB NOT NULL CHECK (length(secret) = 32), relay_url TEXT NOT NULL,
        relay_id BLOB NOT NULL CHECK (length(relay_id) = 32), created_at_ms INTEGER NOT NULL);
      CREATE TABLE cursors (group_id BLOB NOT NULL, relay_url TEXT NOT NULL, cursor INTEGER NOT NULL,
        epoch INTEGER NOT NULL, PRIMARY KEY (group_id, relay_url)) WITHOUT ROWID;
      CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, group_id BLOB NOT NULL,
        blob_id BLOB NOT NULL CHECK (length(blob_id) = 16), payload BLOB NOT NULL, ttl_seconds INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL, UNIQUE (group_id, blob_id));
      CREATE TABLE seen_blobs (group_id BLOB NOT NULL, blob_id BLOB NOT NULL, cursor INTEGER NOT NULL,
        seen_at_ms INTEGER NOT NULL, PRIMARY KEY (group_id, blob_id)) WITHOUT ROWID;
      CREATE INDEX seen_blobs_by_time ON seen_blobs (seen_at_ms);
      PRAGMA user_version = 1;
    )sql");
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(
                db, "INSERT INTO groups VALUES (?, 'old', zeroblob(32), 'ws://old:80/v1/sync', ?, 1); ", -1,
                &stmt, nullptr) == SQLITE_OK);
    sqlite3_bind_blob(stmt, 1, group.data(), 32, SQLITE_TRANSIENT);
    const RelayId relay = id_with<RelayId>(8);
    sqlite3_bind_blob(stmt, 2, relay.data(), 32, SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(stmt) == SQLITE_DONE);
    sqlite3_finalize(stmt);
    REQUIRE(sqlite3_prepare_v2(db,
                               "INSERT INTO outbox (group_id, blob_id, payload, ttl_seconds, created_at_ms) "
                               "VALUES (?, ?, x'00', 0, 1)",
                               -1, &stmt, nullptr) == SQLITE_OK);
    sqlite3_bind_blob(stmt, 1, group.data(), 32, SQLITE_TRANSIENT);
    const BlobId blob = id_with<BlobId>(6);
    sqlite3_bind_blob(stmt, 2, blob.data(), 16, SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(stmt) == SQLITE_DONE);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
  }
  {
    auto store = open_store(home);
    auto relays = store->list_group_relays(group);
    REQUIRE(relays.has_value());
    REQUIRE(relays->size() == 1);
    CHECK(relays->front() == GroupRelay{"ws://old:80/v1/sync", id_with<RelayId>(8)});
    auto queued = store->outbox_list_for_relay(group, "ws://old:80/v1/sync");
    REQUIRE(queued.has_value());
    REQUIRE(queued->size() == 1);
    CHECK(queued->front().blob_id == id_with<BlobId>(6));
    // With its one relay acked, the old entry leaves the outbox.
    CHECK(store->outbox_ack(group, id_with<BlobId>(6), "ws://old:80/v1/sync")->removed);
  }
  // Reopening a migrated store changes nothing; it is at the latest version (3) now.
  auto store = open_store(home);
  CHECK(store->list_group_relays(group)->size() == 1);
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  CHECK(sqlite3_column_int(stmt, 0) == kStoreSchemaVersion);
  static_assert(kStoreSchemaVersion == 3, "this test writes a version-2 file and expects migration 3");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}
