// Exactly-once storage: a PUSH retried with the same blob_id is stored once and answered with the
// original cursor and duplicate=true, on the same connection or after reconnecting.
#include <filesystem>

#include <catch2/catch.hpp>

#include "blindsync/crypto/payload.h"
#include "raw_client.h"
#include "relay_process.h"
#include "temp_dir.h"

using namespace blindsync;
using namespace blindsync::test;

TEST_CASE("a retried PUSH with the same blob_id is stored once and acked with the same cursor",
          "[integration][protocol]") {
  TempDir dir;
  auto relay = RelayProcess::start(dir.sub("relay"));
  const auto member = GroupMember::make_random();

  auto client = RawClient::connect(relay->url());
  REQUIRE(client.has_value());
  REQUIRE((*client)->challenge().relay_id.to_hex() == relay->relay_id_hex());
  auto welcome = (*client)->handshake(member);
  INFO(welcome.status().to_string());
  REQUIRE(welcome.has_value());
  REQUIRE(welcome->max_cursor == 0);

  const BlobId blob_id = auth::random_id<BlobId>();
  const Bytes payload = crypto::seal_payload(member.group.payload_key(),
                                             {member.group.group_id(), blob_id, member.device_id()},
                                             as_bytes("retry me"));
  auto first = (*client)->push(blob_id, payload);
  INFO(first.status().to_string());
  REQUIRE(first.has_value());
  REQUIRE(first->cursor == 1);
  REQUIRE(first->duplicate == false);
  REQUIRE(first->blob_id == blob_id);

  auto second = (*client)->push(blob_id, payload);
  REQUIRE(second.has_value());
  REQUIRE(second->cursor == first->cursor);
  REQUIRE(second->duplicate == true);
  (*client)->close();

  // A retry after a reconnect (the client outbox case) is also a duplicate.
  auto again = RawClient::connect(relay->url());
  REQUIRE(again.has_value());
  auto welcome_again = (*again)->handshake(member);
  REQUIRE(welcome_again.has_value());
  REQUIRE(welcome_again->max_cursor == 1);
  auto third = (*again)->push(blob_id, payload);
  REQUIRE(third.has_value());
  REQUIRE(third->cursor == 1);
  REQUIRE(third->duplicate == true);

  // Stored once: a pull returns one blob, the exact bytes pushed; the next blob gets cursor 2.
  auto pulled = (*again)->pull(0);
  REQUIRE(pulled.has_value());
  REQUIRE(pulled->blobs.size() == 1);
  REQUIRE(pulled->blobs[0].blob_id == blob_id);
  REQUIRE(pulled->blobs[0].payload == payload);
  REQUIRE(pulled->blobs[0].sender_id == member.device_id());
  REQUIRE(pulled->has_more == false);

  auto next = (*again)->push(auth::random_id<BlobId>(), payload);
  REQUIRE(next.has_value());
  REQUIRE(next->cursor == 2);
  REQUIRE(next->duplicate == false);
  (*again)->close();
  CHECK(relay->stop() == 0);
}
