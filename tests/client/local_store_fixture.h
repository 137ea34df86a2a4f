// Fixtures shared by the LocalStore tests (local_store_test, local_store_relays_test,
// local_store_outbox_limit_test): a temporary home per test, a store opened on it, and sample ids,
// secrets and outbox entries with predictable bytes. One copy, so the three files cannot drift.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "local_store.h"
#include "temp_dir.h"

namespace blindsync::testing {

// A directory removed with its contents at the end of the test (tests/support).
using TempDir = blindsync::test::TempDir;

// An id whose first byte is `first` and last byte 0x5a (so distinct `first`s give distinct ids).
template <typename Id>
Id id_with(std::uint8_t first) {
  typename Id::Array bytes{};
  bytes[0] = first;
  bytes[bytes.size() - 1] = 0x5a;
  return Id(bytes);
}

// A secret with every byte set to fill.
client_detail::Secret32 secret_with(std::uint8_t fill);

// Outbox entry number n of group: blob id id_with<BlobId>(n), `size` payload bytes of value n,
// created at 1000 + n ms.
client_detail::OutboxEntry entry(const GroupId& group, std::uint8_t n, std::size_t size = 8,
                                 std::uint32_t ttl_seconds = 60);

// LocalStore::open(home), REQUIREd to succeed (the failure message carries the error).
std::unique_ptr<client_detail::LocalStore> open_store(const std::string& home);

// Relay URLs for groups with several relays.
constexpr const char* kR1 = "ws://r1:80/v1/sync";
constexpr const char* kR2 = "ws://r2:80/v1/sync";

// Inserts group "g" (secret_with(3)) with two relays, kR1 its primary and kR2; REQUIREd to succeed.
void insert_two_relay_group(client_detail::LocalStore& store, const GroupId& group);

// Runs raw SQL on a store file (to write files as older blindsync versions did), REQUIREd to succeed.
void exec(sqlite3* db, const char* sql);

}  // namespace blindsync::testing
