// AsyncClient against in-memory relays (in_memory_transport.h, threaded mode): real frames, real
// signatures, real SQLite homes; the client runs its own worker and connection threads. Every wait
// is bounded (EventLog::poll_until); no assertion depends on timing.
#include "blindsync/client/async_client.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "async_test_support.h"
#include "blindsync/auth/identity.h"
#include "blindsync/client/invite.h"
#include "blindsync/crypto/group_keys.h"
#include "blindsync/crypto/payload.h"
#include "in_memory_transport.h"

using namespace blindsync;
using blindsync::testing::AsyncTempDir;
using blindsync::testing::EventLog;
using blindsync::testing::get_within;
using blindsync::testing::FakeNetwork;
using blindsync::testing::FakeRelay;
using blindsync::testing::text_of;

namespace {

constexpr const char* kUrl1 = "ws://relay-one.test:9000/v1/sync";
constexpr const char* kUrl2 = "ws://relay-two.test:9000/v1/sync";

AsyncClientOptions fast_options(FakeNetwork& network, EventLog& log, std::size_t max_events = 10'000) {
  AsyncClientOptions options;
  options.transport = network.threaded_factory();
  options.request_timeout = std::chrono::milliseconds(3000);
  options.backoff = BackoffPolicy{std::chrono::milliseconds(5), std::chrono::milliseconds(40),
                                  std::chrono::milliseconds(5)};
  options.max_queued_events = max_events;
  options.notify = log.notify_hook();
  return options;
}

std::unique_ptr<AsyncClient> open_async(const std::string& home, AsyncClientOptions options) {
  auto client = AsyncClient::open(home, std::move(options));
  INFO((client ? std::string() : client.error().to_string()));
  REQUIRE(client.has_value());
  return std::move(*client);
}

BlobId push_text(AsyncClient& client, const GroupId& group, const std::string& text) {
  auto pushed = client.push(group, as_bytes(text));
  INFO((pushed ? std::string() : pushed.error().to_string()));
  REQUIRE(pushed.has_value());
  return *pushed;
}

const GroupStatus* status_of(const std::vector<GroupStatus>& all, const GroupId& group) {
  for (const auto& g : all) {
    if (g.group.group_id == group) return &g;
  }
  return nullptr;
}

// Device A created a group at the given fake relays; device B joined it by invite.
struct AsyncGroup {
  AsyncTempDir tmp;
  FakeNetwork network;
  std::vector<std::shared_ptr<FakeRelay>> relays;
  EventLog a_log;
  EventLog b_log;
  std::unique_ptr<AsyncClient> a;
  std::unique_ptr<AsyncClient> b;
  GroupId group;
  std::string invite;
  std::vector<std::string> urls;

  explicit AsyncGroup(std::vector<std::string> relay_urls = {kUrl1}, std::size_t b_max_events = 10'000)
      : urls(std::move(relay_urls)) {
    for (const auto& url : urls) relays.push_back(network.add(url));
    a = open_async(tmp.sub("a"), fast_options(network, a_log));
    REQUIRE(get_within(a->create_identity("device-a")).has_value());
    auto created = get_within(a->create_group(urls, "notes"));
    INFO((created ? std::string() : created.error().to_string()));
    REQUIRE(created.has_value());
    group = created->group.group_id;
    invite = created->invite_link;
    open_b(b_max_events, /*join=*/true);
  }

  void open_b(std::size_t max_events = 10'000, bool join = false) {
    b.reset();
    b_log.clear();
    b = open_async(tmp.sub("b"), fast_options(network, b_log, max_events));
    if (join) {
      REQUIRE(get_within(b->create_identity("device-b")).has_value());
      auto joined = get_within(b->join_group(invite));
      INFO((joined ? std::string() : joined.error().to_string()));
      REQUIRE(joined.has_value());
    }
  }

  // The group's keys, as any member derives them from the invite.
  crypto::GroupKeys keys() const {
    auto decoded = decode_invite(invite, 0);
    REQUIRE(decoded.has_value());
    return crypto::GroupKeys::derive(decoded->secret);
  }

  template <typename F>
  auto with(F&& fn) {
    return network.with(std::forward<F>(fn));
  }
};

bool all_connected(AsyncClient& client, const GroupId& group) {
  const auto all = client.status();
  const auto* g = status_of(all, group);
  if (g == nullptr || g->relays.empty()) return false;
  for (const auto& relay : g->relays) {
    if (relay.state != ConnectionState::kConnected) return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------- opening, groups

TEST_CASE(
    "async client refuses options without a transport, with a zero event bound or a negative retry limit",
    "[async]") {
  AsyncTempDir tmp;
  auto missing = AsyncClient::open(tmp.sub("h"), AsyncClientOptions{});
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code() == Code::kInvalidArgument);
  FakeNetwork network;
  EventLog log;
  auto options = fast_options(network, log);
  options.max_queued_events = 0;
  auto zero = AsyncClient::open(tmp.sub("h"), std::move(options));
  REQUIRE_FALSE(zero.has_value());
  CHECK(zero.error().code() == Code::kInvalidArgument);
  auto negative_limit = fast_options(network, log);
  negative_limit.outbox_retry_limit = std::chrono::seconds(-1);
  auto refused = AsyncClient::open(tmp.sub("h"), std::move(negative_limit));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code() == Code::kInvalidArgument);
}

TEST_CASE("async create_group pins every relay, the invite carries them all and join stores them all",
          "[async][multi-relay]") {
  AsyncGroup t({kUrl1, kUrl2});
  auto decoded = decode_invite(t.invite, 0);
  REQUIRE(decoded.has_value());
  REQUIRE(decoded->relays.size() == 2);
  CHECK(decoded->relays[0].url == kUrl1);
  CHECK(decoded->relays[0].relay_id == t.relays[0]->relay_id());
  CHECK(decoded->relays[1].url == kUrl2);
  CHECK(decoded->relays[1].relay_id == t.relays[1]->relay_id());

  const auto groups = t.b->groups();
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].relay_url == kUrl1);
  const auto status = t.b->status();
  const auto* g = status_of(status, t.group);
  REQUIRE(g != nullptr);
  REQUIRE(g->relays.size() == 2);
  CHECK(g->relays[0].url == kUrl1);
  CHECK(g->relays[1].url == kUrl2);
  CHECK(t.b->identity().has_value());
}

TEST_CASE("async create_group refuses bad relay lists and stores nothing when a relay is unreachable",
          "[async]") {
  AsyncTempDir tmp;
  FakeNetwork network;
  auto relay = network.add(kUrl1);
  EventLog log;
  auto client = open_async(tmp.sub("a"), fast_options(network, log));
  CHECK(get_within(client->create_group({kUrl1}, "g")).error().code() == Code::kNotFound);  // no identity yet
  REQUIRE(get_within(client->create_identity("a")).has_value());
  CHECK(get_within(client->create_identity("again")).error().code() == Code::kAlreadyExists);
  CHECK(get_within(client->create_group({}, "g")).error().code() == Code::kInvalidArgument);
  CHECK(get_within(client->create_group({kUrl1, kUrl1}, "g")).error().code() == Code::kInvalidArgument);
  auto unreachable = get_within(client->create_group({kUrl1, "ws://nowhere.test:1/v1/sync"}, "g"));
  REQUIRE_FALSE(unreachable.has_value());
  CHECK(unreachable.error().message().find("nowhere.test") != std::string::npos);
  CHECK(client->groups().empty());
  CHECK(client->push(auth::random_id<GroupId>(), as_bytes("x")).error().code() == Code::kNotFound);
}

// ---------------------------------------------------------------- push

TEST_CASE("async push returns after the outbox write, EventBlobPushed and outbox events follow", "[async]") {
  AsyncGroup t;
  const BlobId id = push_text(*t.a, t.group, "hello");
  REQUIRE(
      t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids().count(id) == 1 && t.a_log.outbox() == 0; }));
  const auto pushed = t.a_log.all<EventBlobPushed>();
  REQUIRE(pushed.size() == 1);
  CHECK(pushed[0].group == t.group);
  CHECK(pushed[0].cursor == 1);
  CHECK_FALSE(pushed[0].duplicate);
  CHECK(pushed[0].relay_url == kUrl1);
  // The outbox went 0 -> 1 -> 0 (reported as it changed).
  std::vector<std::uint64_t> sizes;
  for (const auto& e : t.a_log.all<EventOutboxChanged>()) sizes.push_back(e.size);
  REQUIRE_FALSE(sizes.empty());
  CHECK(sizes.back() == 0);
  t.with([&] {
    CHECK(t.relays[0]->copies_of(t.group, id) == 1);
    return 0;
  });
  CHECK(t.a_log.count<EventConnected>() >= 1);
}

TEST_CASE("async push refuses an over-long blob and an unknown group without queueing", "[async]") {
  AsyncGroup t;
  const Bytes big(kDefaultMaxBlobBytes, 0x42);
  auto refused = t.a->push(t.group, big);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code() == Code::kBlobTooLarge);
  CHECK(t.a->push(auth::random_id<GroupId>(), as_bytes("x")).error().code() == Code::kNotFound);
  const auto status = t.a->status();
  REQUIRE(status_of(status, t.group) != nullptr);
  CHECK(status_of(status, t.group)->outbox == 0);
}

TEST_CASE("pushes made while the relay is down are sent, in order, once it is back", "[async][reconnect]") {
  AsyncGroup t;
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return all_connected(*t.a, t.group); }));
  t.with([&] {
    t.relays[0]->fail_connects = 1'000'000;
    t.relays[0]->drop_connections();
    return 0;
  });
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return t.a_log.count<EventDisconnected>() >= 1; }));
  std::vector<BlobId> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(push_text(*t.a, t.group, "offline " + std::to_string(i)));
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return t.a_log.count<EventReconnecting>() >= 3; }));
  CHECK(t.a_log.outbox() == 20);
  t.with([&] {
    t.relays[0]->fail_connects = 0;
    return 0;
  });
  REQUIRE(
      t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids().size() == 20 && t.a_log.outbox() == 0; }));
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 20; }));
  std::vector<std::string> expected;
  for (int i = 0; i < 20; ++i) expected.push_back("offline " + std::to_string(i));
  CHECK(t.b_log.received_texts() == expected);
  t.with([&] {
    for (const auto& id : ids) CHECK(t.relays[0]->copies_of(t.group, id) == 1);
    return 0;
  });
  // Attempts count up while failing, and start again from 1 after a success.
  const auto retries = t.a_log.all<EventReconnecting>();
  for (std::size_t i = 0; i < retries.size(); ++i) CHECK(retries[i].attempt == i + 1);
  t.with([&] {
    t.relays[0]->drop_connections();
    return 0;
  });
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return t.a_log.count<EventReconnecting>() > retries.size(); }));
  CHECK(t.a_log.all<EventReconnecting>().back().attempt == 1);
}

TEST_CASE("a relay that stops answering is disconnected after request_timeout and retried",
          "[async][reconnect]") {
  AsyncGroup t;
  // A short timeout for this client only.
  t.a.reset();
  t.a_log.clear();
  auto options = fast_options(t.network, t.a_log);
  options.request_timeout = std::chrono::milliseconds(300);
  t.a = open_async(t.tmp.sub("a"), std::move(options));
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return all_connected(*t.a, t.group); }));
  t.with([&] {
    t.relays[0]->silent = true;
    return 0;
  });
  const BlobId id = push_text(*t.a, t.group, "stuck");
  REQUIRE(t.a_log.poll_until(*t.a, [&] {
    for (const auto& e : t.a_log.all<EventDisconnected>()) {
      if (e.reason.code() == Code::kTimeout) return true;
    }
    return false;
  }));
  t.with([&] {
    t.relays[0]->silent = false;
    return 0;
  });
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids().count(id) == 1; }));
  t.with([&] {
    CHECK(t.relays[0]->copies_of(t.group, id) == 1);
    return 0;
  });
}

TEST_CASE("relay errors on push: RATE_LIMITED is retried later, BLOB_TOO_LARGE drops the blob", "[async]") {
  AsyncGroup t;
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return all_connected(*t.a, t.group); }));
  t.with([&] {
    t.relays[0]->push_error = Code::kRateLimited;
    return 0;
  });
  const BlobId limited = push_text(*t.a, t.group, "later");
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return t.a_log.has_error(Code::kRateLimited); }));
  t.with([&] {
    t.relays[0]->push_error.reset();
    return 0;
  });
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids().count(limited) == 1; }));

  t.with([&] {
    t.relays[0]->push_error = Code::kBlobTooLarge;
    return 0;
  });
  const BlobId big = push_text(*t.a, t.group, "too big for this relay");
  REQUIRE(t.a_log.poll_until(
      *t.a, [&] { return t.a_log.has_error(Code::kBlobTooLarge) && t.a_log.outbox() == 0; }));
  CHECK(t.a_log.pushed_ids().count(big) == 0);
}

// ---------------------------------------------------------------- receive

TEST_CASE("blobs reach the other device in cursor order, caught up and then live", "[async]") {
  AsyncGroup t;
  for (int i = 0; i < 5; ++i) push_text(*t.a, t.group, "early " + std::to_string(i));
  REQUIRE(
      t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids().size() == 5 && t.a_log.outbox() == 0; }));
  // B starts now: one catch-up PULL brings all five (no NOTIFY races with it).
  t.open_b();
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 5; }));
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return all_connected(*t.b, t.group); }));
  const DeviceId b_device = t.b->identity()->device_id;
  auto b_pulls = [&] { return t.with([&] { return t.relays[0]->pulls_by_device[b_device].size(); }); };
  const auto pulls_before = b_pulls();
  for (int i = 0; i < 5; ++i) push_text(*t.a, t.group, "live " + std::to_string(i));
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 10; }));
  std::vector<std::string> expected;
  for (int i = 0; i < 5; ++i) expected.push_back("early " + std::to_string(i));
  for (int i = 0; i < 5; ++i) expected.push_back("live " + std::to_string(i));
  CHECK(t.b_log.received_texts() == expected);
  std::vector<Cursor> cursors;
  for (const auto& e : t.b_log.all<EventBlobReceived>()) cursors.push_back(e.blob.cursor);
  CHECK(cursors == std::vector<Cursor>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  const auto identity = t.a->identity();
  REQUIRE(identity.has_value());
  for (const auto& e : t.b_log.all<EventBlobReceived>()) CHECK(e.blob.sender_id == identity->device_id);
  // Live blobs came inline with NOTIFY: no PULL was needed for them.
  CHECK(b_pulls() == pulls_before);
  // A does not receive its own blobs back.
  t.a_log.take(*t.a);
  CHECK(t.a_log.count<EventBlobReceived>() == 0);
}

TEST_CASE("a taken blob that was never committed is delivered again after a restart (at-least-once)",
          "[async][durability]") {
  AsyncGroup t;
  push_text(*t.a, t.group, "x");
  REQUIRE(
      t.b_log.poll_until(*t.b, [&] { return t.b_log.received_texts() == std::vector<std::string>{"x"}; }));
  // Crash-like: B goes away without polling again or calling commit_received().
  t.open_b();
  REQUIRE(
      t.b_log.poll_until(*t.b, [&] { return t.b_log.received_texts() == std::vector<std::string>{"x"}; }));
  // This time B confirms it; a restart then only brings what is new.
  REQUIRE(t.b->commit_received().is_ok());
  const auto committed = t.b->status();
  REQUIRE(status_of(committed, t.group) != nullptr);
  CHECK(status_of(committed, t.group)->relays.at(0).cursor == 1);
  CHECK(status_of(committed, t.group)->group.cursor == 1);
  t.open_b();
  push_text(*t.a, t.group, "y");
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 1; }));
  CHECK(t.b_log.received_texts() == std::vector<std::string>{"y"});
}

TEST_CASE("polling again commits the blobs the previous poll handed out and ACKs the relay",
          "[async][durability]") {
  AsyncGroup t;
  for (const char* text : {"1", "2", "3"}) push_text(*t.a, t.group, text);
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 3; }));
  t.b_log.take(*t.b);  // commits what the previous polls handed out
  REQUIRE(t.b_log.poll_until(*t.b, [&] {
    return t.with([&] {
      const auto& acks = t.relays[0]->acks_received;
      return !acks.empty() && acks.back() == 3;
    });
  }));
  t.open_b();
  push_text(*t.a, t.group, "4");
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 1; }));
  CHECK(t.b_log.received_texts() == std::vector<std::string>{"4"});
}

TEST_CASE("a blob that does not decrypt is reported and skipped, the next one is delivered", "[async]") {
  AsyncGroup t;
  const auto stranger = auth::SigningKey::generate();
  t.with([&] {
    t.relays[0]->store_blob(t.group, auth::random_id<BlobId>(), DeviceId(stranger.public_key()),
                            Bytes(64, 0x17));
    return 0;
  });
  push_text(*t.a, t.group, "fine");
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 1; }));
  CHECK(t.b_log.received_texts() == std::vector<std::string>{"fine"});
  CHECK(t.b_log.has_error(Code::kCryptoFailure));
}

TEST_CASE("a new relay epoch makes the client re-pull from 0 and drop blobs it already delivered",
          "[async][durability]") {
  AsyncGroup t;
  for (const char* text : {"a1", "a2", "a3"}) push_text(*t.a, t.group, text);
  // A's acks are all processed (else A would push them again after the reset, at new cursors).
  REQUIRE(
      t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids().size() == 3 && t.a_log.outbox() == 0; }));
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 3; }));
  REQUIRE(t.b->commit_received().is_ok());
  // The relay's database is replaced: the old blobs come back at other cursors (re-pushed from
  // some outbox in another order).
  t.with([&] {
    auto old = t.relays[0]->blobs[t.group];
    t.relays[0]->replace_database(t.relays[0]->epoch + 1);
    for (int i : {2, 0, 1}) {
      const auto& blob = old[static_cast<std::size_t>(i)];
      t.relays[0]->store_blob(t.group, blob.blob_id, blob.sender_id, blob.payload);
    }
    t.relays[0]->pulls_received.clear();
    t.relays[0]->drop_connections();
    return 0;
  });
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventConnected>() >= 2; }));
  push_text(*t.a, t.group, "after reset");
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 4; }));
  CHECK(t.b_log.received_texts() == std::vector<std::string>{"a1", "a2", "a3", "after reset"});
  t.with([&] {
    bool from_zero = false;
    for (const auto& pull : t.relays[0]->pulls_received) from_zero = from_zero || pull.after_cursor == 0;
    CHECK(from_zero);
    return 0;
  });
}

TEST_CASE("a relay whose max_cursor fell below ours makes the client re-pull from the start",
          "[async][durability]") {
  AsyncGroup t;
  for (const char* text : {"b1", "b2", "b3"}) push_text(*t.a, t.group, text);
  REQUIRE(
      t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids().size() == 3 && t.a_log.outbox() == 0; }));
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 3; }));
  REQUIRE(t.b->commit_received().is_ok());
  t.with([&] {
    t.relays[0]->blobs[t.group].resize(1);  // restored from an older backup, same epoch
    t.relays[0]->drop_connections();
    return 0;
  });
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventConnected>() >= 2; }));
  push_text(*t.a, t.group, "new at 2");
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 4; }));
  CHECK(t.b_log.received_texts() == std::vector<std::string>{"b1", "b2", "b3", "new at 2"});
  CHECK(t.b_log.all<EventBlobReceived>().back().blob.cursor == 2);
}

TEST_CASE("a revoked device stops reconnecting", "[async][reconnect]") {
  AsyncGroup t;
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return all_connected(*t.b, t.group); }));
  t.with([&] {
    t.relays[0]->hello_error = Code::kDeviceRevoked;
    t.relays[0]->drop_connections();
    return 0;
  });
  REQUIRE(t.b_log.poll_until(*t.b, [&] {
    bool disconnected = false;
    for (const auto& e : t.b_log.all<EventDisconnected>())
      disconnected |= e.reason.code() == Code::kDeviceRevoked;
    return disconnected && t.b_log.has_error(Code::kDeviceRevoked);
  }));
  const std::size_t retries = t.b_log.count<EventReconnecting>();
  const auto status = t.b->status();
  REQUIRE(status_of(status, t.group) != nullptr);
  CHECK(status_of(status, t.group)->relays.at(0).state == ConnectionState::kDisconnected);
  // No retry follows the revocation: wait well past the longest backoff of this test (40 ms + 5 ms jitter) for
  // one, and fail if it comes.
  CHECK_FALSE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventReconnecting>() > retries; },
                                 std::chrono::milliseconds(500)));
}

// ---------------------------------------------------------------- several relays

TEST_CASE("with two relays every blob is pushed to both and received once", "[async][multi-relay]") {
  AsyncGroup t({kUrl1, kUrl2});
  std::vector<BlobId> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(push_text(*t.a, t.group, "m" + std::to_string(i)));
  REQUIRE(
      t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids().size() == 8 && t.a_log.outbox() == 0; }));
  CHECK(t.a_log.count<EventBlobPushed>() == 8);  // one event per blob, on the first ack
  // B has handled both relays completely once both relays got its ACK for cursor 8.
  REQUIRE(t.b_log.poll_until(*t.b, [&] {
    return t.with([&] {
      for (const auto& relay : t.relays) {
        if (relay->acks_received.empty() || relay->acks_received.back() != 8) return false;
      }
      return true;
    });
  }));
  std::multiset<std::string> texts;
  for (const auto& text : t.b_log.received_texts()) texts.insert(text);
  CHECK(texts.size() == 8);
  for (int i = 0; i < 8; ++i) CHECK(texts.count("m" + std::to_string(i)) == 1);
  t.with([&] {
    for (const auto& relay : t.relays) {
      for (const auto& id : ids) CHECK(relay->copies_of(t.group, id) == 1);
    }
    return 0;
  });
  const auto status = t.b->status();
  const auto* g = status_of(status, t.group);
  REQUIRE(g != nullptr);
  REQUIRE(g->relays.size() == 2);
  CHECK(g->relays[0].cursor == 8);
  CHECK(g->relays[1].cursor == 8);
}

TEST_CASE("with one of two relays down pushes complete, the other catches up in the background",
          "[async][multi-relay]") {
  AsyncGroup t({kUrl1, kUrl2});
  t.with([&] {
    t.relays[1]->fail_connects = 1'000'000;
    t.relays[1]->drop_connections();
    return 0;
  });
  std::vector<BlobId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(push_text(*t.a, t.group, "p" + std::to_string(i)));
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids().size() == 4; }));
  for (const auto& e : t.a_log.all<EventBlobPushed>()) CHECK(e.relay_url == kUrl1);
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 4; }));
  // Still waiting for the second relay.
  CHECK(t.a_log.outbox() == 4);
  t.with([&] {
    t.relays[1]->fail_connects = 0;
    return 0;
  });
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return t.a_log.outbox() == 0; }));
  t.with([&] {
    for (const auto& id : ids) CHECK(t.relays[1]->copies_of(t.group, id) == 1);
    return 0;
  });
  CHECK(t.a_log.count<EventBlobPushed>() == 4);
  // B later sees the same blobs via the second relay: none is delivered twice.
  REQUIRE(t.b_log.poll_until(*t.b, [&] {
    return t.with(
        [&] { return !t.relays[1]->acks_received.empty() && t.relays[1]->acks_received.back() == 4; });
  }));
  CHECK(t.b_log.count<EventBlobReceived>() == 4);
}

// ---------------------------------------------------------------- event queue, re-entrancy

TEST_CASE("the event queue bound stops fetching until the app polls, nothing is lost or reordered",
          "[async][events]") {
  AsyncGroup t({kUrl1}, /*b_max_events=*/4);
  std::vector<std::string> expected;
  for (int i = 0; i < 15; ++i) {
    expected.push_back("q" + std::to_string(i));
    push_text(*t.a, t.group, expected.back());
  }
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids().size() == 15; }));
  // Give B time to fill its queue before the first poll (the assertions below hold either way;
  // this only makes sure the bound is what stops it).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 15; }));
  CHECK(t.b_log.received_texts() == expected);
  for (const auto& batch : t.b_log.batches) {
    std::size_t blobs = 0;
    for (const auto& e : batch) blobs += std::holds_alternative<EventBlobReceived>(e) ? 1 : 0;
    CHECK(blobs <= 4);
  }
  const auto b_id = t.b->identity();
  REQUIRE(b_id.has_value());
  t.with([&] {
    const auto& pulls = t.relays[0]->pulls_by_device[b_id->device_id];
    CHECK_FALSE(pulls.empty());
    for (const auto& pull : pulls) CHECK(pull.limit <= 4);
    return 0;
  });
}

TEST_CASE("a catch-up asks for several pages per PULL and delivers them all in order", "[async][events]") {
  AsyncGroup t({kUrl1});
  t.b.reset();
  t.with([&] {
    t.relays[0]->page_size = 2;
    t.relays[0]->advertise_page_size = true;
    // B's first session (AsyncGroup opens it) may have made its catch-up PULL before it closed.
    t.relays[0]->pulls_by_device.clear();
    return 0;
  });
  std::vector<std::string> expected;
  for (int i = 0; i < 15; ++i) {
    expected.push_back("m" + std::to_string(i));
    push_text(*t.a, t.group, expected.back());
  }
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids().size() == 15; }));
  t.open_b();
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventCaughtUp>() >= 1; }));
  CHECK(t.b_log.received_texts() == expected);
  const auto b_id = t.b->identity();
  REQUIRE(b_id.has_value());
  t.with([&] {
    const auto& pulls = t.relays[0]->pulls_by_device[b_id->device_id];
    REQUIRE_FALSE(pulls.empty());
    CHECK(pulls.front().limit == 2);
    CHECK(pulls.front().pages == kCatchUpPullPages);
    CHECK(pulls.size() == 1);  // 8 pages of 2 hold the 15 blobs
    return 0;
  });
}

TEST_CASE("EventCaughtUp comes after every blob the relay held, even when the queue bound splits the pull",
          "[async][events][caught-up]") {
  AsyncGroup t({kUrl1}, /*b_max_events=*/4);
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventCaughtUp>() >= 1; }));
  CHECK(t.b_log.all<EventCaughtUp>().front().cursor == 0);
  CHECK(t.b_log.all<EventCaughtUp>().front().relay_url == kUrl1);

  // B is closed while A pushes more than B's queue holds; B opens again and catches up in parts.
  t.b.reset();
  std::vector<std::string> expected;
  for (int i = 0; i < 11; ++i) {
    expected.push_back("c" + std::to_string(i));
    push_text(*t.a, t.group, expected.back());
  }
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids().size() == 11; }));
  t.open_b(/*max_events=*/4);
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventCaughtUp>() >= 1; }));
  CHECK(t.b_log.received_texts() == expected);
  std::size_t blobs_before = 0;  // all of them came before the event
  for (const auto& event : t.b_log.events) {
    if (std::holds_alternative<EventCaughtUp>(event)) break;
    blobs_before += std::holds_alternative<EventBlobReceived>(event) ? 1 : 0;
  }
  CHECK(blobs_before == 11);
  const auto caught_up = t.b_log.all<EventCaughtUp>();
  REQUIRE(caught_up.size() == 1);
  CHECK(caught_up[0].cursor == 11);
  REQUIRE(t.b->commit_received().is_ok());
  {
    const auto status = t.b->status();
    const auto* g = status_of(status, t.group);
    REQUIRE(g != nullptr);
    REQUIRE(g->relays.size() == 1);
    CHECK(g->relays[0].cursor == 11);
    CHECK(g->relays[0].relay_max_cursor == 11);
  }

  // Live blobs need no pull, hence no new event; a dropped connection brings a re-pull and one.
  push_text(*t.a, t.group, "live");
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 12; }));
  t.with([&] {
    t.relays[0]->drop_connections();
    return 0;
  });
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventCaughtUp>() >= 2; }));
  CHECK(t.b_log.all<EventCaughtUp>().back().cursor == 12);
  CHECK(t.b_log.count<EventBlobReceived>() == 12);
}

TEST_CASE("a blob handler and the notify hook may call back into the client without deadlock",
          "[async][events]") {
  AsyncGroup t;
  std::atomic<AsyncClient*> hooked{nullptr};
  std::atomic<int> hook_calls{0};
  // Reopen B with a notify hook that calls into the client (on the worker thread).
  t.b.reset();
  t.b_log.clear();
  auto options = fast_options(t.network, t.b_log);
  auto wake = t.b_log.notify_hook();
  options.notify = [&hooked, &hook_calls, wake] {
    if (AsyncClient* client = hooked.load()) {
      (void)client->status();
      ++hook_calls;
    }
    wake();
  };
  t.b = open_async(t.tmp.sub("b"), std::move(options));
  hooked = t.b.get();

  std::vector<std::string> handled;
  t.b->set_blob_handler(t.group, [&](const ReceivedBlob& blob) {
    const std::string text = text_of(blob.data);
    handled.push_back(text);
    if (text.rfind("echo:", 0) == 0) return;
    // Re-entrant calls from inside poll_events().
    auto pushed = t.b->push(t.group, as_bytes("echo:" + text));
    CHECK(pushed.has_value());
    CHECK_FALSE(t.b->status().empty());
    CHECK(t.b->groups().size() == 1);
    CHECK(t.b->commit_received().is_ok());
    (void)t.b->poll_events(0);
  });

  auto run = std::async(std::launch::async, [&] {
    push_text(*t.a, t.group, "ping");
    return t.b_log.poll_until(*t.b, [&] { return handled.size() == 1; }) && t.a_log.poll_until(*t.a, [&] {
      return t.a_log.received_texts() == std::vector<std::string>{"echo:ping"};
    });
  });
  if (run.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    std::cerr << "re-entrant calls deadlocked\n";
    std::abort();
  }
  CHECK(run.get());
  CHECK(handled == std::vector<std::string>{"ping"});
  CHECK(hook_calls.load() >= 1);
  hooked = nullptr;

  // Removing the handler stops the calls; events still arrive.
  t.b->set_blob_handler(t.group, {});
  push_text(*t.a, t.group, "quiet");
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= 2; }));
  CHECK(handled.size() == 1);
}

TEST_CASE("several app threads push at once, every blob is stored once and pushed once", "[async][threads]") {
  AsyncGroup t;
  constexpr int kThreads = 4;
  constexpr int kEach = 10;
  std::vector<std::thread> threads;
  std::mutex ids_mu;
  std::set<BlobId> ids;
  for (int n = 0; n < kThreads; ++n) {
    threads.emplace_back([&, n] {
      for (int i = 0; i < kEach; ++i) {
        auto pushed = t.a->push(t.group, as_bytes("t" + std::to_string(n) + "-" + std::to_string(i)));
        if (pushed) {
          std::lock_guard lock(ids_mu);
          ids.insert(*pushed);
        }
        (void)t.a->status();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  REQUIRE(ids.size() == kThreads * kEach);
  REQUIRE(t.a_log.poll_until(*t.a, [&] { return t.a_log.pushed_ids() == ids; }));
  REQUIRE(t.b_log.poll_until(*t.b, [&] { return t.b_log.count<EventBlobReceived>() >= kThreads * kEach; }));
  // Counted, not only collected into sets: a blob pushed or received twice must show.
  CHECK(t.a_log.count<EventBlobPushed>() == static_cast<std::size_t>(kThreads * kEach));
  const auto received = t.b_log.received_texts();
  CHECK(received.size() == static_cast<std::size_t>(kThreads * kEach));
  const std::set<std::string> texts(received.begin(), received.end());
  CHECK(texts.size() == static_cast<std::size_t>(kThreads * kEach));
}

TEST_CASE("two app threads polling one client share the events: each blob is handed out once",
          "[async][threads]") {
  AsyncGroup t;
  constexpr int kCount = 40;
  std::mutex mu;
  std::multiset<std::string> seen;
  std::atomic<bool> done{false};
  auto poller = [&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done && std::chrono::steady_clock::now() < deadline) {
      for (const auto& event : t.b->poll_events(3)) {
        if (const auto* received = std::get_if<EventBlobReceived>(&event)) {
          std::lock_guard lock(mu);
          seen.insert(text_of(received->blob.data));
          if (seen.size() == kCount) done = true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };
  std::thread first(poller);
  std::thread second(poller);
  for (int i = 0; i < kCount; ++i) push_text(*t.a, t.group, "shared " + std::to_string(i));
  first.join();
  second.join();
  REQUIRE(seen.size() == static_cast<std::size_t>(kCount));
  for (int i = 0; i < kCount; ++i) CHECK(seen.count("shared " + std::to_string(i)) == 1);
  CHECK(t.b->commit_received().is_ok());
}
