// LocalStore schema version 3: giving up outbox deliveries to a relay once another relay has had
// the blob for longer than the retry limit (outbox_give_up), the first-ack time it counts from,
// and the migration of a version-2 file (entries acked before it count from the migration).
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "local_store_fixture.h"

using namespace blindsync;
using namespace blindsync::client_detail;
using namespace blindsync::testing;

namespace {

std::vector<BlobId> give_up(LocalStore& store, const GroupId& group, const std::string& relay,
                            std::int64_t cutoff) {
  auto given_up = store.outbox_give_up(group, relay, cutoff);
  INFO((given_up ? std::string() : given_up.error().to_string()));
  REQUIRE(given_up.has_value());
  return *given_up;
}

std::vector<BlobId> ids_for(LocalStore& store, const GroupId& group, const std::string& relay) {
  auto entries = store.outbox_list_for_relay(group, relay);
  REQUIRE(entries.has_value());
  std::vector<BlobId> out;
  for (const auto& e : *entries) out.push_back(e.blob_id);
  return out;
}

constexpr const char* kR3 = "ws://r3:80/v1/sync";
constexpr std::int64_t kHourMs = 3600 * 1000;

void bind_id(sqlite3_stmt* stmt, int index, const auto& id) {
  sqlite3_bind_blob(stmt, index, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
}

}  // namespace

TEST_CASE("the first ack of an outbox entry is timed, later acks and other entries are not",
          "[local_store]") {
  TempDir tmp;
  auto store = open_store(tmp.sub("home"));
  const GroupId group = id_with<GroupId>(1);
  insert_two_relay_group(*store, group);
  REQUIRE(store->outbox_add(entry(group, 1)));
  REQUIRE(store->outbox_add(entry(group, 2)));
  CHECK_FALSE(store->outbox_first_acked_at(group, id_with<BlobId>(1))->has_value());

  const std::int64_t before = now_unix_ms();
  REQUIRE(store->outbox_ack(group, id_with<BlobId>(1), kR2)->first);
  const std::int64_t after = now_unix_ms();
  auto first = store->outbox_first_acked_at(group, id_with<BlobId>(1));
  REQUIRE(first.has_value());
  REQUIRE(first->has_value());
  CHECK(**first >= before);
  CHECK(**first <= after);
  CHECK_FALSE(store->outbox_first_acked_at(group, id_with<BlobId>(2))->has_value());
  CHECK_FALSE(store->outbox_first_acked_at(group, id_with<BlobId>(9))->has_value());  // not queued
}

TEST_CASE("outbox_give_up drops only deliveries another relay acked before the cutoff, never an unacked blob",
          "[local_store]") {
  TempDir tmp;
  auto store = open_store(tmp.sub("home"));
  const GroupId group = id_with<GroupId>(1);
  const GroupId other = id_with<GroupId>(2);
  REQUIRE(store->insert_group(GroupRecord{group, "g", kR1, id_with<RelayId>(1)}, secret_with(3),
                              {GroupRelay{kR2, id_with<RelayId>(2)}, GroupRelay{kR3, id_with<RelayId>(3)}}));
  REQUIRE(store->insert_group(GroupRecord{other, "o", kR1, id_with<RelayId>(1)}, secret_with(4),
                              {GroupRelay{kR2, id_with<RelayId>(2)}}));
  for (std::uint8_t n : {1, 2, 3}) REQUIRE(store->outbox_add(entry(group, n)));
  REQUIRE(store->outbox_add(entry(other, 4)));
  REQUIRE(store->outbox_ack(group, id_with<BlobId>(1), kR1)->first);  // 1: R1 only
  REQUIRE(store->outbox_ack(group, id_with<BlobId>(2), kR1)->first);  // 2: R1 and R2
  REQUIRE_FALSE(store->outbox_ack(group, id_with<BlobId>(2), kR2)->removed);
  REQUIRE(store->outbox_ack(other, id_with<BlobId>(4), kR1)->first);  // another group's entry
  // 3: acked by nobody.
  const std::int64_t now = now_unix_ms();

  // Acked too recently: nothing is given up.
  CHECK(give_up(*store, group, kR2, now - kHourMs).empty());
  CHECK(*store->outbox_count() == 4);

  // Past the limit: R2 is given up for 1 (2 it has, 3 nobody has); R3 still waits for 1.
  CHECK(give_up(*store, group, kR2, now + kHourMs) == std::vector<BlobId>{id_with<BlobId>(1)});
  CHECK(*store->outbox_count() == 4);
  CHECK(ids_for(*store, group, kR2) == std::vector<BlobId>{id_with<BlobId>(3)});
  CHECK(ids_for(*store, group, kR3).size() == 3);
  CHECK(give_up(*store, group, kR2, now + kHourMs).empty());  // once only
  // R2 storing it after all changes nothing (it was given up already), and is not a first ack.
  auto late = store->outbox_ack(group, id_with<BlobId>(1), kR2);
  REQUIRE(late.has_value());
  CHECK(late->queued);
  CHECK_FALSE(late->first);
  CHECK_FALSE(late->removed);

  // R3 given up for 1 and 2: every relay is done with them, so they leave the outbox.
  CHECK(give_up(*store, group, kR3, now + kHourMs) ==
        std::vector<BlobId>{id_with<BlobId>(1), id_with<BlobId>(2)});
  CHECK(*store->outbox_count(group) == 1);

  // The blob no relay has is kept, whatever the cutoff and whichever relay asks.
  for (const char* relay : {kR1, kR2, kR3}) CHECK(give_up(*store, group, relay, INT64_MAX).empty());
  CHECK(ids_for(*store, group, kR1) == std::vector<BlobId>{id_with<BlobId>(3)});
  // A give-up concerns its own group only.
  CHECK(*store->outbox_count(other) == 1);
  CHECK(give_up(*store, other, kR2, now + kHourMs) == std::vector<BlobId>{id_with<BlobId>(4)});
  CHECK(*store->outbox_count(other) == 0);
}

TEST_CASE("a version-2 store is migrated: entries acked before count from the migration, unacked ones stay",
          "[local_store]") {
  TempDir tmp;
  const std::string home = tmp.sub("home");
  std::filesystem::create_directories(home);
  const std::string path = home + "/" + kStoreFileName;
  const GroupId group = id_with<GroupId>(4);
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    // The version-2 schema, as blindsync wrote it before outbox retry limits.
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
      CREATE TABLE group_relays (group_id BLOB NOT NULL, relay_url TEXT NOT NULL,
        relay_id BLOB NOT NULL CHECK (length(relay_id) = 32), position INTEGER NOT NULL,
        PRIMARY KEY (group_id, relay_url)) WITHOUT ROWID;
      CREATE TABLE outbox_acks (group_id BLOB NOT NULL, blob_id BLOB NOT NULL, relay_url TEXT NOT NULL,
        PRIMARY KEY (group_id, blob_id, relay_url)) WITHOUT ROWID;
      PRAGMA user_version = 2;
    )sql");
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "INSERT INTO groups VALUES (?, 'old', zeroblob(32), ?, zeroblob(32), 1)",
                               -1, &stmt, nullptr) == SQLITE_OK);
    bind_id(stmt, 1, group);
    sqlite3_bind_text(stmt, 2, kR1, -1, SQLITE_STATIC);
    REQUIRE(sqlite3_step(stmt) == SQLITE_DONE);
    sqlite3_finalize(stmt);
    for (const char* relay : {kR1, kR2}) {
      REQUIRE(sqlite3_prepare_v2(db, "INSERT INTO group_relays VALUES (?, ?, zeroblob(32), ?)", -1, &stmt,
                                 nullptr) == SQLITE_OK);
      bind_id(stmt, 1, group);
      sqlite3_bind_text(stmt, 2, relay, -1, SQLITE_STATIC);
      sqlite3_bind_int(stmt, 3, relay == kR1 ? 0 : 1);
      REQUIRE(sqlite3_step(stmt) == SQLITE_DONE);
      sqlite3_finalize(stmt);
    }
    for (std::uint8_t n : {6, 7}) {
      REQUIRE(
          sqlite3_prepare_v2(db,
                             "INSERT INTO outbox (group_id, blob_id, payload, ttl_seconds, created_at_ms) "
                             "VALUES (?, ?, x'00', 0, 1)",
                             -1, &stmt, nullptr) == SQLITE_OK);
      bind_id(stmt, 1, group);
      bind_id(stmt, 2, id_with<BlobId>(n));
      REQUIRE(sqlite3_step(stmt) == SQLITE_DONE);
      sqlite3_finalize(stmt);
    }
    // 6 was acked by R1 (an old acked entry: created at 1 ms past the epoch); 7 by nobody.
    REQUIRE(sqlite3_prepare_v2(db, "INSERT INTO outbox_acks VALUES (?, ?, ?)", -1, &stmt, nullptr) ==
            SQLITE_OK);
    bind_id(stmt, 1, group);
    bind_id(stmt, 2, id_with<BlobId>(6));
    sqlite3_bind_text(stmt, 3, kR1, -1, SQLITE_STATIC);
    REQUIRE(sqlite3_step(stmt) == SQLITE_DONE);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
  }
  const std::int64_t before = now_unix_ms();
  {
    auto store = open_store(home);
    const std::int64_t after = now_unix_ms();
    auto first6 = store->outbox_first_acked_at(group, id_with<BlobId>(6));
    REQUIRE(first6.has_value());
    REQUIRE(first6->has_value());
    CHECK(**first6 >= before - 1000);  // whole seconds
    CHECK(**first6 <= after);
    CHECK_FALSE(store->outbox_first_acked_at(group, id_with<BlobId>(7))->has_value());
    // Not given up at once (its clock started at the migration), but after the limit.
    CHECK(give_up(*store, group, kR2, before - kHourMs).empty());
    CHECK(give_up(*store, group, kR2, after + kHourMs) == std::vector<BlobId>{id_with<BlobId>(6)});
    CHECK(*store->outbox_count() == 1);
    CHECK(ids_for(*store, group, kR2) == std::vector<BlobId>{id_with<BlobId>(7)});
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  CHECK(sqlite3_column_int(stmt, 0) == kStoreSchemaVersion);
  sqlite3_finalize(stmt);
  // The retry check (kStaleDeliveriesSql in local_store.cpp, repeated here) is an index range scan
  // of one group's first-ack times, not a table scan.
  REQUIRE(sqlite3_prepare_v2(db,
                             "EXPLAIN QUERY PLAN SELECT o.blob_id FROM outbox o WHERE o.group_id = ?1 "
                             "AND o.first_acked_at_ms <= ?3 AND NOT EXISTS (SELECT 1 FROM outbox_acks a "
                             "WHERE a.group_id = o.group_id AND a.blob_id = o.blob_id AND a.relay_url = ?2) "
                             "ORDER BY o.seq",
                             -1, &stmt, nullptr) == SQLITE_OK);
  std::string plan;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    plan += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
    plan += "\n";
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  INFO(plan);
  CHECK(plan.find("USING INDEX outbox_by_first_ack") != std::string::npos);
}
