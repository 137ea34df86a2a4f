#include "local_store_fixture.h"

#include <catch2/catch.hpp>

namespace blindsync::testing {

client_detail::Secret32 secret_with(std::uint8_t fill) {
  client_detail::Secret32 secret;
  secret.mutable_bytes().fill(fill);
  return secret;
}

client_detail::OutboxEntry entry(const GroupId& group, std::uint8_t n, std::size_t size,
                                 std::uint32_t ttl_seconds) {
  client_detail::OutboxEntry e;
  e.group_id = group;
  e.blob_id = id_with<BlobId>(n);
  e.payload.assign(size, n);
  e.ttl_seconds = ttl_seconds;
  e.created_at_ms = 1000 + n;
  return e;
}

std::unique_ptr<client_detail::LocalStore> open_store(const std::string& home) {
  auto store = client_detail::LocalStore::open(home);
  INFO((store ? std::string() : store.error().to_string()));
  REQUIRE(store.has_value());
  return std::move(*store);
}

void insert_two_relay_group(client_detail::LocalStore& store, const GroupId& group) {
  REQUIRE(store.insert_group(client_detail::GroupRecord{group, "g", kR1, id_with<RelayId>(1)}, secret_with(3),
                             {client_detail::GroupRelay{kR2, id_with<RelayId>(2)}}));
}

void exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
  INFO((message ? message : ""));
  sqlite3_free(message);
  REQUIRE(rc == SQLITE_OK);
}

}  // namespace blindsync::testing
