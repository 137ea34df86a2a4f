// Client logic against an in-memory relay (in_memory_transport.h) that speaks protocol v1 with
// real frames and real signatures. Each test uses fresh device homes (real SQLite files).
#include <catch2/catch.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "blindsync/client/client.h"
#include "blindsync/client/invite.h"
#include "blindsync/crypto/group_keys.h"
#include "blindsync/crypto/payload.h"
#include "in_memory_transport.h"
#include "temp_dir.h"

using namespace blindsync;
using blindsync::testing::FakeConnection;
using blindsync::testing::FakeNetwork;
using blindsync::testing::FakeRelay;
using blindsync::test::TempDir;

namespace {

constexpr const char* kUrl = "ws://relay.test:9000/v1/sync";

std::string text_of(const Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }

std::unique_ptr<Client> open_client(const std::string& home, FakeNetwork& network) {
  ClientOptions options;
  options.transport = network.factory();
  options.request_timeout = std::chrono::milliseconds(2000);
  auto client = Client::open(home, std::move(options));
  INFO((client ? std::string() : client.error().to_string()));
  REQUIRE(client.has_value());
  return std::move(*client);
}

Result<PushOutcome> push_text(Client& client, const GroupId& group, const std::string& text) {
  return client.push(group, as_bytes(text));
}

// Collects delivered blobs.
struct Inbox {
  std::vector<ReceivedBlob> blobs;
  BlobHandler handler() {
    return [this](const ReceivedBlob& blob) { blobs.push_back(blob); };
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto& b : blobs) out.push_back(text_of(b.data));
    return out;
  }
  std::vector<Cursor> cursors() const {
    std::vector<Cursor> out;
    for (const auto& b : blobs) out.push_back(b.cursor);
    return out;
  }
};

GroupInfo group_of(Client& client, const GroupId& id) {
  for (const auto& g : client.groups()) {
    if (g.group_id == id) return g;
  }
  FAIL("group not found");
  return {};
}

// Two devices (A created the group at the fake relay, B joined by invite).
struct TwoDevices {
  TempDir tmp;
  FakeNetwork network;
  std::shared_ptr<FakeRelay> relay = network.add(kUrl);
  std::unique_ptr<Client> a = open_client(tmp.sub("a"), network);
  std::unique_ptr<Client> b = open_client(tmp.sub("b"), network);
  GroupId group;
  std::string invite;

  TwoDevices() {
    REQUIRE(a->create_identity("device-a"));
    REQUIRE(b->create_identity("device-b"));
    auto created = a->create_group(kUrl, "notes");
    INFO((created ? std::string() : created.error().to_string()));
    REQUIRE(created.has_value());
    group = created->group.group_id;
    invite = created->invite_link;
    auto joined = b->join_group(invite);
    INFO((joined ? std::string() : joined.error().to_string()));
    REQUIRE(joined.has_value());
  }

  // The group's keys, as any member derives them from the invite.
  crypto::GroupKeys keys() const {
    auto decoded = decode_invite(invite, 0);
    REQUIRE(decoded.has_value());
    return crypto::GroupKeys::derive(decoded->secret);
  }

  // A blob sealed by `sender` as a third device would, stored at the relay without NOTIFY.
  void store_foreign_blob(const std::string& text, const auth::SigningKey& sender) {
    const auto k = keys();
    const BlobId id = auth::random_id<BlobId>();
    const DeviceId sender_id(sender.public_key());
    relay->store_blob(group, id, sender_id, crypto::seal_payload(k.payload_key(), {group, id, sender_id}, as_bytes(text)));
  }
};

}  // namespace

// ---------------------------------------------------------------- identity, groups, invites

TEST_CASE("create_identity refuses a second identity and the identity survives reopen", "[client]") {
  TempDir tmp;
  FakeNetwork network;
  DeviceId first_id;
  {
    auto client = open_client(tmp.sub("home"), network);
    CHECK_FALSE(client->identity().has_value());
    auto created = client->create_identity("laptop");
    REQUIRE(created.has_value());
    first_id = created->device_id;
    auto again = client->create_identity("other");
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().code() == Code::kAlreadyExists);
  }
  auto reopened = open_client(tmp.sub("home"), network);
  REQUIRE(reopened->identity().has_value());
  CHECK(reopened->identity()->device_id == first_id);
  CHECK(reopened->identity()->name == "laptop");
  CHECK(reopened->create_identity("x").error().code() == Code::kAlreadyExists);
}

TEST_CASE("create_identity refuses an empty or over-long name", "[client]") {
  TempDir tmp;
  FakeNetwork network;
  auto client = open_client(tmp.sub("home"), network);
  CHECK(client->create_identity("").error().code() == Code::kInvalidArgument);
  CHECK(client->create_identity(std::string(65, 'n')).error().code() == Code::kInvalidArgument);
  CHECK_FALSE(client->identity().has_value());
}

TEST_CASE("create_group pins the relay id learned in the handshake and its invite lets a device join",
          "[client]") {
  TwoDevices t;
  const GroupInfo a_group = group_of(*t.a, t.group);
  CHECK(a_group.relay_id == t.relay->relay_id());
  CHECK(a_group.relay_url == kUrl);
  CHECK(a_group.name == "notes");
  CHECK(a_group.epoch == t.relay->epoch);
  REQUIRE(t.relay->hellos_received.size() == 1);
  CHECK(t.relay->hellos_received[0].group_id == t.group);
  CHECK(t.relay->hellos_received[0].device_name == "device-a");

  auto decoded = decode_invite(t.invite, 0);
  REQUIRE(decoded.has_value());
  REQUIRE(decoded->relays.size() == 1);
  CHECK(decoded->relays[0].url == kUrl);
  CHECK(decoded->relays[0].relay_id == t.relay->relay_id());
  CHECK(decoded->group_name == "notes");
  CHECK(decoded->expires_at_ms > 0);

  const GroupInfo b_group = group_of(*t.b, t.group);
  CHECK(b_group.relay_id == t.relay->relay_id());
  CHECK(b_group.name == "notes");
  CHECK(b_group.epoch == 0);  // B has not connected yet

  auto again = t.b->join_group(t.invite);
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().code() == Code::kAlreadyExists);

  // A fresh invite for the same group joins the same group id.
  auto link = t.a->invite_link(t.group);
  REQUIRE(link.has_value());
  auto relinked = decode_invite(*link, 0);
  REQUIRE(relinked.has_value());
  CHECK(crypto::GroupKeys::derive(relinked->secret).group_id() == t.group);
}

TEST_CASE("create_group fails cleanly when the relay cannot be reached and stores nothing", "[client]") {
  TempDir tmp;
  FakeNetwork network;
  auto relay = network.add(kUrl);
  relay->fail_connects = 1;
  auto client = open_client(tmp.sub("home"), network);
  REQUIRE(client->create_identity("d"));
  auto created = client->create_group(kUrl, "g");
  REQUIRE_FALSE(created.has_value());
  CHECK(created.error().code() == Code::kIoError);
  CHECK(client->groups().empty());

  auto nowhere = client->create_group("ws://unknown.test/v1/sync", "g");
  REQUIRE_FALSE(nowhere.has_value());
  CHECK(client->groups().empty());
}

TEST_CASE("join_group refuses expired and malformed invites", "[client]") {
  TempDir tmp;
  FakeNetwork network;
  auto relay = network.add(kUrl);
  auto client = open_client(tmp.sub("home"), network);

  Invite invite;
  invite.relays.push_back(InviteRelay{kUrl, relay->relay_id()});
  invite.secret = crypto::generate_group_secret();
  invite.group_name = "old";
  invite.expires_at_ms = 1000;  // long ago
  auto expired = client->join_group(encode_invite(invite));
  REQUIRE_FALSE(expired.has_value());
  CHECK(expired.error().code() == Code::kExpired);

  auto garbage = client->join_group("blindsync://join/!!!not-base64!!!");
  REQUIRE_FALSE(garbage.has_value());
  CHECK(garbage.error().code() == Code::kInvalidArgument);
  CHECK(client->groups().empty());

  invite.expires_at_ms = 0;
  invite.group_name.clear();
  auto joined = client->join_group(encode_invite(invite));
  REQUIRE(joined.has_value());
  CHECK(joined->name.rfind("group-", 0) == 0);  // a name is made up from the id
}

TEST_CASE("find_group selects by name, id or id prefix and explains ambiguity", "[client]") {
  TempDir tmp;
  FakeNetwork network;
  network.add(kUrl);
  auto client = open_client(tmp.sub("home"), network);
  REQUIRE(client->create_identity("d"));

  CHECK(client->find_group("").error().code() == Code::kNotFound);
  auto notes = client->create_group(kUrl, "notes");
  REQUIRE(notes.has_value());
  auto only = client->find_group("");
  REQUIRE(only.has_value());
  CHECK(only->group_id == notes->group.group_id);

  auto photos = client->create_group(kUrl, "photos");
  REQUIRE(photos.has_value());
  auto ambiguous = client->find_group("");
  REQUIRE_FALSE(ambiguous.has_value());
  CHECK(ambiguous.error().code() == Code::kInvalidArgument);
  CHECK(ambiguous.error().message().find("notes") != std::string::npos);
  CHECK(ambiguous.error().message().find("photos") != std::string::npos);

  CHECK(client->find_group("photos")->group_id == photos->group.group_id);
  const std::string hex = notes->group.group_id.to_hex();
  CHECK(client->find_group(hex)->group_id == notes->group.group_id);
  CHECK(client->find_group(hex.substr(0, 10))->group_id == notes->group.group_id);
  CHECK(client->find_group("nothing-like-this").error().code() == Code::kNotFound);
}

// ---------------------------------------------------------------- push

TEST_CASE("push and pull carry a blob between two devices, end to end encrypted", "[client]") {
  TwoDevices t;
  auto pushed = push_text(*t.a, t.group, "hello from a");
  INFO((pushed ? std::string() : pushed.error().to_string()));
  REQUIRE(pushed.has_value());
  CHECK(pushed->cursor == 1);
  CHECK_FALSE(pushed->duplicate);
  CHECK(t.a->status().outbox_size == 0);

  // The relay only ever holds ciphertext.
  const auto& stored = t.relay->blobs[t.group];
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].blob_id == pushed->blob_id);
  CHECK(text_of(stored[0].payload).find("hello from a") == std::string::npos);
  CHECK(stored[0].payload.size() == std::string("hello from a").size() + crypto::kPayloadOverheadBytes);

  Inbox inbox;
  const Status pulled = t.b->pull(t.group, {}, inbox.handler());
  INFO(pulled.to_string());
  REQUIRE(pulled.is_ok());
  REQUIRE(inbox.blobs.size() == 1);
  CHECK(text_of(inbox.blobs[0].data) == "hello from a");
  CHECK(inbox.blobs[0].blob_id == pushed->blob_id);
  CHECK(inbox.blobs[0].sender_id == t.a->identity()->device_id);
  CHECK(inbox.blobs[0].cursor == 1);
  CHECK(group_of(*t.b, t.group).cursor == 1);
  CHECK(group_of(*t.b, t.group).epoch == t.relay->epoch);
  // B told the relay what it stored.
  REQUIRE_FALSE(t.relay->acks_received.empty());
  CHECK(t.relay->acks_received.back() == 1);
}

TEST_CASE("push makes time-ordered blob ids", "[client]") {
  TwoDevices t;
  auto first = push_text(*t.a, t.group, "1");
  auto second = push_text(*t.a, t.group, "2");
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  CHECK(first->blob_id != second->blob_id);
  auto millis = [](const BlobId& id) {
    std::uint64_t ms = 0;
    for (int i = 0; i < 6; ++i) ms = (ms << 8) | id.bytes()[static_cast<std::size_t>(i)];
    return ms;
  };
  CHECK(millis(first->blob_id) <= millis(second->blob_id));
  const auto now_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                     std::chrono::system_clock::now().time_since_epoch())
                                                     .count());
  CHECK(millis(second->blob_id) <= now_ms);
  CHECK(millis(second->blob_id) + 60'000 > now_ms);
}

TEST_CASE("push goes through the outbox and keeps its blob_id when retried after a failed send", "[client]") {
  TwoDevices t;
  t.relay->drop_on_push = 1;
  auto failed = push_text(*t.a, t.group, "first");
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().code() == Code::kConnectionClosed);
  CHECK(failed.error().message().find("outbox") != std::string::npos);
  CHECK(t.a->status().outbox_size == 1);
  REQUIRE(t.relay->pushes_received.size() == 1);
  const BlobId first_id = t.relay->pushes_received[0];
  CHECK(t.relay->blobs[t.group].empty());

  // The next push sends the queued blob first, with the same id, then its own.
  auto second = push_text(*t.a, t.group, "second");
  REQUIRE(second.has_value());
  CHECK(second->cursor == 2);
  REQUIRE(t.relay->pushes_received.size() == 3);
  CHECK(t.relay->pushes_received[1] == first_id);
  CHECK(t.relay->pushes_received[2] == second->blob_id);
  CHECK(t.a->status().outbox_size == 0);

  Inbox inbox;
  REQUIRE(t.b->pull(t.group, {}, inbox.handler()).is_ok());
  CHECK(inbox.texts() == std::vector<std::string>{"first", "second"});
  CHECK(inbox.blobs[0].blob_id == first_id);
}

TEST_CASE("a push whose ack was lost is stored once: the retry is acked as a duplicate", "[client]") {
  TwoDevices t;
  t.relay->drop_before_ack = 1;
  auto lost = push_text(*t.a, t.group, "once");
  REQUIRE_FALSE(lost.has_value());
  CHECK(t.relay->blobs[t.group].size() == 1);  // stored, but A never heard
  CHECK(t.a->status().outbox_size == 1);

  auto flushed = t.a->flush_outbox(t.group);
  REQUIRE(flushed.has_value());
  CHECK(*flushed == 1);
  CHECK(t.relay->blobs[t.group].size() == 1);
  CHECK(t.relay->pushes_received.size() == 2);
  CHECK(t.relay->pushes_received[0] == t.relay->pushes_received[1]);
  CHECK(t.a->status().outbox_size == 0);
}

TEST_CASE("a push that cannot connect stays queued and flush_outbox sends it later", "[client]") {
  TwoDevices t;
  t.relay->fail_connects = 1;
  auto failed = push_text(*t.a, t.group, "queued");
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().code() == Code::kIoError);
  CHECK(t.a->status().outbox_size == 1);

  auto flushed = t.a->flush_outbox(t.group);
  REQUIRE(flushed.has_value());
  CHECK(*flushed == 1);
  CHECK(t.a->status().outbox_size == 0);
  const int connects = t.relay->connects;
  // An empty outbox needs no connection.
  auto nothing = t.a->flush_outbox(t.group);
  REQUIRE(nothing.has_value());
  CHECK(*nothing == 0);
  CHECK(t.relay->connects == connects);
}

TEST_CASE("calls in a row share one session, NOTIFYs that arrived in between are dropped, and a dead one is "
          "replaced",
          "[client]") {
  TwoDevices t;
  const int connects = t.relay->connects;
  REQUIRE(push_text(*t.a, t.group, "1").has_value());
  REQUIRE(push_text(*t.a, t.group, "2").has_value());
  REQUIRE(t.b->pull(t.group, {}, {}).is_ok());
  CHECK(t.relay->connects == connects + 2);  // one session for A's two pushes, one for B

  // B's session stays open: A's next pushes queue NOTIFYs on it, which B's next call drops
  // before it pulls from its stored cursor.
  REQUIRE(push_text(*t.a, t.group, "3").has_value());
  REQUIRE(push_text(*t.a, t.group, "4").has_value());
  Inbox inbox;
  REQUIRE(t.b->pull(t.group, {}, inbox.handler()).is_ok());
  CHECK(inbox.texts() == std::vector<std::string>{"3", "4"});
  CHECK(t.relay->connects == connects + 2);

  // The relay restarts: the kept sessions are found closed and replaced.
  t.relay->drop_connections();
  REQUIRE(push_text(*t.a, t.group, "5").has_value());
  REQUIRE(t.b->pull(t.group, {}, {}).is_ok());
  CHECK(t.relay->connects == connects + 4);
  CHECK(group_of(*t.b, t.group).cursor == 5);
}

TEST_CASE("a push whose kept session dies under it runs again on a new session, with the same blob id",
          "[client]") {
  TwoDevices t;
  REQUIRE(push_text(*t.a, t.group, "1").has_value());
  const int connects = t.relay->connects;
  t.relay->drop_on_push = 1;  // the kept session's connection drops at the next PUSH
  auto second = push_text(*t.a, t.group, "2");
  REQUIRE(second.has_value());
  CHECK(second->cursor == 2);
  CHECK(t.relay->connects == connects + 1);
  REQUIRE(t.relay->pushes_received.size() == 3);  // 1; 2 on the dead session; 2 again
  CHECK(t.relay->pushes_received[1] == second->blob_id);
  CHECK(t.relay->pushes_received[2] == second->blob_id);
  CHECK(t.a->status().outbox_size == 0);

  // A pull is not repeated: blobs may have reached the handler. It fails, the next one reconnects.
  t.relay->drop_connections();
  REQUIRE(t.b->pull(t.group, {}, {}).is_ok());  // B had no kept session: a new one
  t.relay->pull_hook = [&](FakeConnection& connection, std::uint32_t, const Pull&) {
    connection.close();
    return true;
  };
  CHECK_FALSE(t.b->pull(t.group, {}, {}).is_ok());
  t.relay->pull_hook = nullptr;
  CHECK(t.b->pull(t.group, {}, {}).is_ok());
}

TEST_CASE("a pull also sends what the outbox still holds", "[client]") {
  TwoDevices t;
  t.relay->fail_connects = 1;
  REQUIRE_FALSE(push_text(*t.a, t.group, "late").has_value());
  Inbox inbox;
  REQUIRE(t.a->pull(t.group, {}, inbox.handler()).is_ok());
  CHECK(t.a->status().outbox_size == 0);
  CHECK(inbox.texts() == std::vector<std::string>{"late"});
}

TEST_CASE("relay errors on push: the code and message reach the caller, only BLOB_TOO_LARGE drops the blob",
          "[client]") {
  TwoDevices t;
  t.relay->push_error = Code::kRateLimited;
  auto limited = push_text(*t.a, t.group, "slow down");
  REQUIRE_FALSE(limited.has_value());
  CHECK(limited.error().code() == Code::kRateLimited);
  CHECK(limited.error().message().find("fake relay refuses") != std::string::npos);
  CHECK(t.a->status().outbox_size == 1);

  auto flush_limited = t.a->flush_outbox(t.group);
  REQUIRE_FALSE(flush_limited.has_value());
  CHECK(flush_limited.error().code() == Code::kRateLimited);
  CHECK(t.a->status().outbox_size == 1);

  t.relay->push_error.reset();
  auto flushed = t.a->flush_outbox(t.group);
  REQUIRE(flushed.has_value());
  CHECK(*flushed == 1);

  t.relay->push_error = Code::kBlobTooLarge;
  auto too_large = push_text(*t.a, t.group, "too big for this relay");
  REQUIRE_FALSE(too_large.has_value());
  CHECK(too_large.error().code() == Code::kBlobTooLarge);
  CHECK(t.a->status().outbox_size == 0);
}

TEST_CASE("push refuses data over the blob limit before queueing it", "[client]") {
  TwoDevices t;
  const Bytes big(kDefaultMaxBlobBytes, 0x42);
  auto refused = t.a->push(t.group, big);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code() == Code::kBlobTooLarge);
  CHECK(t.a->status().outbox_size == 0);
  CHECK(t.relay->pushes_received.empty());
}

TEST_CASE("NOTIFY frames that arrive while waiting for push acks are ignored", "[client]") {
  TwoDevices t;
  t.relay->notify_before_ack = true;
  auto first = push_text(*t.a, t.group, "one");
  auto second = push_text(*t.a, t.group, "two");
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  CHECK(first->cursor == 1);
  CHECK(second->cursor == 2);
}

TEST_CASE("push, pull and watch need a device identity and a known group", "[client]") {
  TempDir tmp;
  FakeNetwork network;
  auto relay = network.add(kUrl);
  auto client = open_client(tmp.sub("home"), network);
  const GroupId unknown = auth::random_id<GroupId>();
  CHECK(client->push(unknown, as_bytes("x")).error().code() == Code::kNotFound);
  CHECK(client->create_group(kUrl, "g").error().code() == Code::kNotFound);
  REQUIRE(client->create_identity("d"));
  CHECK(client->push(unknown, as_bytes("x")).error().code() == Code::kNotFound);
  CHECK(client->pull(unknown, {}, {}).code() == Code::kNotFound);
  CHECK(client->invite_link(unknown).error().code() == Code::kNotFound);
  CHECK(client->flush_outbox(unknown).error().code() == Code::kNotFound);
  CHECK(relay->connects == 0);
}

TEST_CASE("a client without a transport reports it instead of crashing", "[client]") {
  TempDir tmp;
  auto client = Client::open(tmp.sub("home"), ClientOptions{});
  REQUIRE(client.has_value());
  REQUIRE((*client)->create_identity("d"));
  auto created = (*client)->create_group(kUrl, "g");
  REQUIRE_FALSE(created.has_value());
  CHECK(created.error().code() == Code::kInvalidArgument);
}

// ---------------------------------------------------------------- pull

TEST_CASE("pull reads every page, delivers in cursor order and persists the cursor", "[client]") {
  TwoDevices t;
  for (int i = 1; i <= 10; ++i) REQUIRE(push_text(*t.a, t.group, "blob " + std::to_string(i)).has_value());
  t.relay->page_size = 3;
  t.relay->max_pages = 1;  // a relay that predates Pull::pages: one PULL per page
  t.relay->pulls_received.clear();

  Inbox inbox;
  REQUIRE(t.b->pull(t.group, {}, inbox.handler()).is_ok());
  CHECK(inbox.cursors() == std::vector<Cursor>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(inbox.texts().front() == "blob 1");
  CHECK(inbox.texts().back() == "blob 10");
  REQUIRE(t.relay->pulls_received.size() == 4);
  CHECK(t.relay->pulls_received[0].after_cursor == 0);
  CHECK(t.relay->pulls_received[1].after_cursor == 3);
  CHECK(t.relay->pulls_received[3].after_cursor == 9);
  CHECK(t.relay->pulls_received[0].limit == 1000);

  // The cursor is on disk: a new Client on the same home starts after it.
  const std::string home = t.tmp.sub("b");
  t.b.reset();
  auto reopened = open_client(home, t.network);
  CHECK(group_of(*reopened, t.group).cursor == 10);
  Inbox again;
  t.relay->pulls_received.clear();
  REQUIRE(reopened->pull(t.group, {}, again.handler()).is_ok());
  CHECK(again.blobs.empty());
  REQUIRE(t.relay->pulls_received.size() == 1);
  CHECK(t.relay->pulls_received[0].after_cursor == 10);
}

TEST_CASE("pull asks for several pages per PULL and follows them until the run ends", "[client]") {
  TwoDevices t;
  for (int i = 1; i <= 10; ++i) REQUIRE(push_text(*t.a, t.group, "blob " + std::to_string(i)).has_value());
  t.relay->page_size = 2;
  t.relay->max_pages = 3;  // 5 pages: a run of 3, then one of 2
  t.relay->pulls_received.clear();

  Inbox inbox;
  REQUIRE(t.b->pull(t.group, {}, inbox.handler()).is_ok());
  CHECK(inbox.cursors() == std::vector<Cursor>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  REQUIRE(t.relay->pulls_received.size() == 2);
  CHECK(t.relay->pulls_received[0].after_cursor == 0);
  CHECK(t.relay->pulls_received[0].pages == kCatchUpPullPages);
  CHECK(t.relay->pulls_received[1].after_cursor == 6);
  CHECK(group_of(*t.b, t.group).cursor == 10);
}

TEST_CASE("pull with an explicit start re-delivers but never moves the stored cursor back", "[client]") {
  TwoDevices t;
  for (int i = 1; i <= 5; ++i) REQUIRE(push_text(*t.a, t.group, std::to_string(i)).has_value());
  REQUIRE(t.b->pull(t.group, {}, {}).is_ok());
  CHECK(group_of(*t.b, t.group).cursor == 5);

  Inbox inbox;
  PullOptions from_two;
  from_two.after = 2;
  REQUIRE(t.b->pull(t.group, from_two, inbox.handler()).is_ok());
  CHECK(inbox.texts() == std::vector<std::string>{"3", "4", "5"});
  CHECK(group_of(*t.b, t.group).cursor == 5);
}

TEST_CASE("pull skips a tampered or re-attributed blob, still delivers the rest, and reports it", "[client]") {
  TwoDevices t;
  for (const char* text : {"one", "two", "three", "four"}) REQUIRE(push_text(*t.a, t.group, text).has_value());
  auto& stored = t.relay->blobs[t.group];
  stored[1].payload.back() ^= 0x01;                         // ciphertext / tag modified
  stored[2].sender_id = t.b->identity()->device_id;         // claims another sender (AAD mismatch)

  Inbox inbox;
  const Status pulled = t.b->pull(t.group, {}, inbox.handler());
  CHECK(pulled.code() == Code::kCryptoFailure);
  CHECK(pulled.message().find("2 blob") != std::string::npos);
  CHECK(inbox.texts() == std::vector<std::string>{"one", "four"});
  // The device is not stuck behind the bad blobs.
  CHECK(group_of(*t.b, t.group).cursor == 4);
}

TEST_CASE("pull treats cursor holes in a page as expired blobs", "[client]") {
  TwoDevices t;
  for (int i = 1; i <= 5; ++i) REQUIRE(push_text(*t.a, t.group, std::to_string(i)).has_value());
  auto& stored = t.relay->blobs[t.group];
  stored.erase(stored.begin() + 1, stored.begin() + 3);  // cursors 2 and 3 expired
  Inbox inbox;
  REQUIRE(t.b->pull(t.group, {}, inbox.handler()).is_ok());
  CHECK(inbox.cursors() == std::vector<Cursor>{1, 4, 5});
  CHECK(group_of(*t.b, t.group).cursor == 5);
}

TEST_CASE("a blob handler that throws stops the pull at that blob, which is delivered again next time",
          "[client]") {
  TwoDevices t;
  for (int i = 1; i <= 3; ++i) REQUIRE(push_text(*t.a, t.group, std::to_string(i)).has_value());
  int calls = 0;
  const Status failed = t.b->pull(t.group, {}, [&](const ReceivedBlob&) {
    if (++calls == 2) throw std::runtime_error("disk full");
  });
  CHECK(failed.code() == Code::kInternal);
  CHECK(failed.message().find("disk full") != std::string::npos);
  CHECK(group_of(*t.b, t.group).cursor == 1);

  Inbox inbox;
  REQUIRE(t.b->pull(t.group, {}, inbox.handler()).is_ok());
  CHECK(inbox.texts() == std::vector<std::string>{"2", "3"});
}

TEST_CASE("a new relay epoch resets the cursor, the re-pull skips blobs already delivered", "[client]") {
  TwoDevices t;
  for (const char* text : {"a1", "a2", "a3"}) REQUIRE(push_text(*t.a, t.group, text).has_value());
  REQUIRE(t.b->pull(t.group, {}, {}).is_ok());
  CHECK(group_of(*t.b, t.group).cursor == 3);

  // The relay's database is replaced: new epoch, the old blobs come back at other cursors (say,
  // re-pushed from outboxes in another order), and a new blob follows.
  auto old_blobs = t.relay->blobs[t.group];
  t.relay->blobs[t.group].clear();
  t.relay->epoch += 1;
  t.relay->drop_connections();  // the relay restarted on the new database
  for (int i : {2, 0, 1}) {
    t.relay->store_blob(t.group, old_blobs[static_cast<std::size_t>(i)].blob_id,
                        old_blobs[static_cast<std::size_t>(i)].sender_id, old_blobs[static_cast<std::size_t>(i)].payload);
  }
  REQUIRE(push_text(*t.a, t.group, "after reset").has_value());
  CHECK(t.relay->max_cursor(t.group) == 4);

  t.relay->pulls_received.clear();
  Inbox inbox;
  REQUIRE(t.b->pull(t.group, {}, inbox.handler()).is_ok());
  CHECK(inbox.texts() == std::vector<std::string>{"after reset"});
  REQUIRE_FALSE(t.relay->pulls_received.empty());
  CHECK(t.relay->pulls_received[0].after_cursor == 0);
  const GroupInfo info = group_of(*t.b, t.group);
  CHECK(info.cursor == 4);
  CHECK(info.epoch == t.relay->epoch);
}

TEST_CASE("a relay whose max_cursor fell below ours (restored backup) makes us re-pull from the start",
          "[client]") {
  TwoDevices t;
  for (const char* text : {"b1", "b2", "b3"}) REQUIRE(push_text(*t.a, t.group, text).has_value());
  REQUIRE(t.b->pull(t.group, {}, {}).is_ok());
  t.relay->blobs[t.group].resize(1);  // rolled back to cursor 1, same epoch
  t.relay->drop_connections();        // the relay restarted on the restored database
  REQUIRE(push_text(*t.a, t.group, "new at 2").has_value());
  // A's outbox was empty; the rolled-back blobs are gone from this relay.
  CHECK(t.relay->max_cursor(t.group) == 2);

  t.relay->pulls_received.clear();
  Inbox inbox;
  REQUIRE(t.b->pull(t.group, {}, inbox.handler()).is_ok());
  CHECK(inbox.texts() == std::vector<std::string>{"new at 2"});
  CHECK(t.relay->pulls_received[0].after_cursor == 0);
  CHECK(group_of(*t.b, t.group).cursor == 2);
}

// ---------------------------------------------------------------- relay identity

TEST_CASE("a relay presenting another relay_id is refused before HELLO is signed", "[client]") {
  TwoDevices t;
  auto impostor = t.network.add(kUrl);  // same URL, different key
  Inbox inbox;
  const Status pulled = t.b->pull(t.group, {}, inbox.handler());
  CHECK(pulled.code() == Code::kUnauthorized);
  CHECK(pulled.message().find("relay identity changed") != std::string::npos);
  CHECK(impostor->hellos_received.empty());

  auto pushed = push_text(*t.a, t.group, "secret");
  REQUIRE_FALSE(pushed.has_value());
  CHECK(pushed.error().code() == Code::kUnauthorized);
  CHECK(pushed.error().message().find("relay identity changed") != std::string::npos);
  CHECK(impostor->pushes_received.empty());
  CHECK(t.a->status().outbox_size == 1);
}

TEST_CASE("a WELCOME whose signature does not verify is refused", "[client]") {
  TwoDevices t;
  t.relay->corrupt_welcome = true;
  const Status pulled = t.b->pull(t.group, {}, {});
  CHECK(pulled.code() == Code::kUnauthorized);
  CHECK(t.relay->pulls_received.empty());
}

TEST_CASE("a relay that refuses HELLO reports its error code and message", "[client]") {
  TwoDevices t;
  t.relay->hello_error = Code::kUnauthorized;
  const Status pulled = t.b->pull(t.group, {}, {});
  CHECK(pulled.code() == Code::kUnauthorized);
  CHECK(pulled.message().find("device not admitted") != std::string::npos);
  CHECK(t.relay->pulls_received.empty());
}

// ---------------------------------------------------------------- hostile relay replies

TEST_CASE("malformed or out-of-place relay frames end the exchange with a clear error", "[client]") {
  TwoDevices t;
  REQUIRE(push_text(*t.a, t.group, "x").has_value());

  SECTION("garbage bytes") {
    t.relay->pull_hook = [](FakeConnection& c, std::uint32_t, const Pull&) {
      c.queue_raw(Bytes{0x94, 0x01, 0x21, 0x05, 0xc1});
      return true;
    };
    const Status pulled = t.b->pull(t.group, {}, {});
    CHECK(pulled.code() == Code::kInvalidMessage);
  }
  SECTION("a handshake frame after WELCOME") {
    t.relay->pull_hook = [](FakeConnection& c, std::uint32_t request_id, const Pull&) {
      c.queue(Frame{request_id, Challenge{}});
      return true;
    };
    const Status pulled = t.b->pull(t.group, {}, {});
    CHECK(pulled.code() == Code::kInvalidState);
  }
  SECTION("has_more with an empty page") {
    t.relay->pull_hook = [](FakeConnection& c, std::uint32_t request_id, const Pull&) {
      PullResponse response;
      response.has_more = true;
      c.queue(Frame{request_id, response});
      return true;
    };
    const Status pulled = t.b->pull(t.group, {}, {});
    CHECK(pulled.code() == Code::kInvalidMessage);
  }
  SECTION("a relay-initiated ERROR") {
    t.relay->pull_hook = [](FakeConnection& c, std::uint32_t, const Pull&) {
      c.queue(Frame{0, Error{3001, "shutting down", 0}});
      return true;
    };
    const Status pulled = t.b->pull(t.group, {}, {});
    CHECK(pulled.code() == Code::kRelayShuttingDown);
    CHECK(pulled.message().find("shutting down") != std::string::npos);
  }
  SECTION("BYE") {
    t.relay->pull_hook = [](FakeConnection& c, std::uint32_t, const Pull&) {
      c.queue(Frame{0, Bye{3001, "maintenance"}});
      return true;
    };
    const Status pulled = t.b->pull(t.group, {}, {});
    CHECK(pulled.code() == Code::kConnectionClosed);
    CHECK(pulled.message().find("maintenance") != std::string::npos);
  }
  SECTION("no answer") {
    t.relay->pull_hook = [](FakeConnection&, std::uint32_t, const Pull&) { return true; };
    const Status pulled = t.b->pull(t.group, {}, {});
    CHECK(pulled.code() == Code::kTimeout);
  }
  SECTION("pages going backwards deliver nothing twice") {
    t.relay->pull_hook = [&t](FakeConnection& c, std::uint32_t request_id, const Pull&) {
      PullResponse response;
      const auto& blob = t.relay->blobs[t.group][0];
      PulledBlob pulled{blob.blob_id, blob.cursor, blob.sender_id, blob.timestamp, blob.payload};
      response.blobs = {pulled, pulled, pulled};
      response.has_more = true;  // and the next page starts at cursor 1 again
      c.queue(Frame{request_id, response});
      return true;
    };
    Inbox inbox;
    const Status pulled = t.b->pull(t.group, {}, inbox.handler());
    CHECK(pulled.code() == Code::kInvalidMessage);  // second page makes no progress
    CHECK(inbox.blobs.size() == 1);
  }
  CHECK(group_of(*t.b, t.group).cursor <= 1);
}

// ---------------------------------------------------------------- watch

TEST_CASE("watch catches up, then delivers live NOTIFYs until should_stop", "[client][watch]") {
  TwoDevices t;
  REQUIRE(push_text(*t.a, t.group, "before").has_value());
  Inbox inbox;
  int polls = 0;
  WatchOptions options;
  options.should_stop = [&] {
    ++polls;
    if (polls == 3) REQUIRE(push_text(*t.a, t.group, "live 1").has_value());
    if (polls == 6) REQUIRE(push_text(*t.a, t.group, "live 2").has_value());
    return inbox.blobs.size() >= 3 || polls > 10'000;
  };
  t.relay->pulls_received.clear();
  const Status watched = t.b->watch(t.group, options, inbox.handler());
  INFO(watched.to_string());
  REQUIRE(watched.is_ok());
  CHECK(inbox.texts() == std::vector<std::string>{"before", "live 1", "live 2"});
  // Inline payloads need no extra PULL beyond the catch-up.
  CHECK(t.relay->pulls_received.size() == 1);
  CHECK(group_of(*t.b, t.group).cursor == 3);
  CHECK(t.relay->acks_received.back() == 3);
}

TEST_CASE("watch re-pulls when a NOTIFY shows a gap or carries no payload", "[client][watch]") {
  TwoDevices t;
  const auto third = auth::SigningKey::generate();
  Inbox inbox;
  int polls = 0;
  WatchOptions options;

  SECTION("gap") {
    options.should_stop = [&] {
      ++polls;
      if (polls == 2) {
        t.store_foreign_blob("missed", third);  // cursor 1, no NOTIFY
        REQUIRE(push_text(*t.a, t.group, "noticed").has_value());  // cursor 2, NOTIFY
      }
      return inbox.blobs.size() >= 2 || polls > 10'000;
    };
  }
  SECTION("payload not inline") {
    t.relay->inline_notify_payload = false;
    options.should_stop = [&] {
      ++polls;
      if (polls == 2) {
        REQUIRE(push_text(*t.a, t.group, "missed").has_value());
        REQUIRE(push_text(*t.a, t.group, "noticed").has_value());
      }
      return inbox.blobs.size() >= 2 || polls > 10'000;
    };
  }
  t.relay->pulls_received.clear();
  const Status watched = t.b->watch(t.group, options, inbox.handler());
  INFO(watched.to_string());
  REQUIRE(watched.is_ok());
  CHECK(inbox.texts() == std::vector<std::string>{"missed", "noticed"});
  CHECK(inbox.cursors() == std::vector<Cursor>{1, 2});
  REQUIRE(t.relay->pulls_received.size() >= 2);
  CHECK(t.relay->pulls_received[1].after_cursor == 0);
  CHECK(group_of(*t.b, t.group).cursor == 2);
}

TEST_CASE("watch fetches a blob announced by a NOTIFY that overtook the catch-up page", "[client][watch]") {
  TwoDevices t;
  REQUIRE(push_text(*t.a, t.group, "old").has_value());
  const auto third = auth::SigningKey::generate();
  bool raced = false;
  // First PULL: the page is cut before a blob that is committed (and announced) right after it.
  t.relay->pull_hook = [&](FakeConnection& c, std::uint32_t request_id, const Pull& pull) {
    if (raced) return false;
    raced = true;
    PullResponse page;
    for (const auto& blob : t.relay->blobs[t.group]) {
      if (blob.cursor > pull.after_cursor) {
        page.blobs.push_back(PulledBlob{blob.blob_id, blob.cursor, blob.sender_id, blob.timestamp, blob.payload});
      }
    }
    t.store_foreign_blob("raced", third);
    const auto& late = t.relay->blobs[t.group].back();
    Notify notify;
    notify.blob_id = late.blob_id;
    notify.cursor = late.cursor;
    notify.sender_id = late.sender_id;
    c.queue(Frame{0, notify});  // payload-less, and ahead of the page
    page.max_cursor = late.cursor - 1;
    c.queue(Frame{request_id, page});
    return true;
  };
  Inbox inbox;
  int polls = 0;
  WatchOptions options;
  options.should_stop = [&] { return inbox.blobs.size() >= 2 || ++polls > 10'000; };
  REQUIRE(t.b->watch(t.group, options, inbox.handler()).is_ok());
  CHECK(inbox.texts() == std::vector<std::string>{"old", "raced"});
  CHECK(polls < 10'000);
}

TEST_CASE("watch returns kConnectionClosed when the relay drops the connection", "[client][watch]") {
  TwoDevices t;
  int polls = 0;
  WatchOptions options;
  options.should_stop = [&] {
    if (++polls == 3) {
      for (auto* connection : t.relay->connections()) connection->close();
    }
    return polls > 10'000;
  };
  const Status watched = t.b->watch(t.group, options, {});
  CHECK(watched.code() == Code::kConnectionClosed);
  CHECK(polls < 10'000);
}

TEST_CASE("watch ends after its duration", "[client][watch]") {
  TwoDevices t;
  WatchOptions options;
  options.duration = std::chrono::milliseconds(30);
  CHECK(t.b->watch(t.group, options, {}).is_ok());
}

TEST_CASE("watch reports a revocation of this device", "[client][watch]") {
  TwoDevices t;
  int polls = 0;
  WatchOptions options;
  options.should_stop = [&] {
    if (++polls == 2) {
      t.relay->broadcast(Frame{0, DeviceRevoked{t.b->identity()->device_id, "lost phone", {}, 0}});
    }
    return polls > 10'000;
  };
  const Status watched = t.b->watch(t.group, options, {});
  CHECK(watched.code() == Code::kDeviceRevoked);
  CHECK(watched.message().find("lost phone") != std::string::npos);
}

// ---------------------------------------------------------------- status

TEST_CASE("status lists identity, groups with cursors and the outbox size", "[client]") {
  TwoDevices t;
  REQUIRE(push_text(*t.a, t.group, "1").has_value());
  t.relay->drop_connections();  // the relay went away, and cannot be reached for the next push
  t.relay->fail_connects = 1;
  REQUIRE_FALSE(push_text(*t.a, t.group, "2").has_value());
  REQUIRE(t.b->pull(t.group, {}, {}).is_ok());

  const ClientStatus a = t.a->status();
  REQUIRE(a.device.has_value());
  CHECK(a.device->name == "device-a");
  CHECK(a.outbox_size == 1);
  REQUIRE(a.groups.size() == 1);
  CHECK(a.groups[0].name == "notes");

  const ClientStatus b = t.b->status();
  REQUIRE(b.groups.size() == 1);
  CHECK(b.groups[0].cursor == 1);
  CHECK(b.groups[0].epoch == t.relay->epoch);
  CHECK(b.outbox_size == 0);
}
