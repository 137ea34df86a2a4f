// Tests of the relay's Beast-free layer: the Hub driven through a fake in-memory Connection with a
// real SQLite store in a temporary directory and real Ed25519 signatures, plus the small pieces
// around it (close codes, device names, HTTP routes, /health JSON, relay.key, command line).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "blindsync/auth/identity.h"
#include "blindsync/auth/transcript.h"
#include "blindsync/core/codec.h"
#include "blindsync/core/messages.h"
#include "hub/close_codes.h"
#include "hub/connection.h"
#include "hub/device_name.h"
#include "hub/hub.h"
#include "hub/session_registry.h"
#include "http/health.h"
#include "http/routes.h"
#include "relay_config.h"
#include "relay_keys.h"
#include "store/store.h"

#include "hub_fixture.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;
namespace fs = std::filesystem;
namespace test = blindsync::relay::test;

// The connection, temporary directory, frame helpers and devices come from hub_fixture.h. The
// fixture below is stricter than the shared one: it checks each handshake step (the CHALLENGE's
// request id, the WELCOME's relay signature) and that a reply is the very next frame.
using test::as;
using test::blob_n;
using test::encode;
using test::FakeConnection;
using test::new_group;
using test::TempDir;
using Client = test::Device;

Bytes payload_of(std::size_t size, std::uint8_t fill) { return Bytes(size, fill); }

struct HubFixture : test::HubFixture {
  explicit HubFixture(HubOptions options = {}) : test::HubFixture(std::move(options)) {}

  // on_open + the CHALLENGE it must send.
  Challenge open(Client& c) {
    hub->on_open(c.conn);
    const Frame f = c.conn->frame(0);
    REQUIRE(f.request_id == 0);
    return as<Challenge>(f);
  }

  Hello signed_hello(Client& c, const Challenge& challenge, Cursor last_cursor = 0, std::string name = "laptop") {
    Hello hello;
    hello.device_name = std::move(name);
    hello.last_cursor = last_cursor;
    hello.client_nonce = auth::random_id<Nonce>();
    auth::sign_hello(hello, challenge.relay_id, challenge.relay_nonce, c.key, *c.group);
    return hello;
  }

  // Full handshake; returns the WELCOME after checking its signature.
  Welcome join(Client& c, Cursor last_cursor = 0, std::string name = "laptop") {
    const Challenge challenge = open(c);
    const Hello hello = signed_hello(c, challenge, last_cursor, std::move(name));
    hub->on_frame(c.conn, encode(1, hello));
    const Frame f = c.conn->frame(1);
    REQUIRE(f.request_id == 1);
    const Welcome welcome = as<Welcome>(f);
    const auth::HandshakeInputs inputs{challenge.relay_id, challenge.relay_nonce, hello.client_nonce, hello.device_id,
                                       hello.group_id};
    REQUIRE(auth::verify_welcome(welcome, inputs).is_ok());
    REQUIRE_FALSE(c.conn->close_code().has_value());
    return welcome;
  }

  // Sends PUSH and waits for the hub's answer to it (PUSH_ACK or ERROR), returned as a Frame.
  Frame push(Client& c, const BlobId& id, Bytes payload, std::uint32_t ttl = 0) {
    const std::size_t before = c.conn->frame_count();
    const std::uint32_t rid = c.next_request_id++;
    hub->on_frame(c.conn, encode(rid, Push{id, std::move(payload), ttl}));
    const Frame f = c.conn->frame(before);
    REQUIRE(f.request_id == rid);
    return f;
  }

  PullResponse pull(Client& c, Cursor after, std::uint32_t limit) {
    const std::size_t before = c.conn->frame_count();
    const std::uint32_t rid = c.next_request_id++;
    hub->on_frame(c.conn, encode(rid, Pull{after, limit}));
    const Frame f = c.conn->frame(before);
    REQUIRE(f.request_id == rid);
    return as<PullResponse>(f);
  }
};

void require_error_and_close(FakeConnection& conn, Code code, std::uint16_t close_code) {
  const Frame f = conn.last_frame();
  const Error& error = as<Error>(f);
  CHECK(error.code == static_cast<std::uint16_t>(code));
  CHECK_FALSE(error.message.empty());
  REQUIRE(conn.close_code().has_value());
  CHECK(*conn.close_code() == close_code);
}

// ---------------------------------------------------------------------------------------------
// Handshake

TEST_CASE("hub sends CHALLENGE on open and WELCOME with a valid relay signature for a valid HELLO", "[hub]") {
  HubFixture fx;
  Client a(new_group());
  const Challenge challenge = fx.open(a);
  CHECK(challenge.relay_id == fx.hub->relay_id());
  CHECK(challenge.versions == std::vector<std::uint32_t>{kProtocolVersion});
  CHECK(challenge.limits == Limits{});
  CHECK_FALSE(challenge.relay_nonce.is_zero());
  CHECK(fx.hub->counts().connections == 1);
  CHECK(fx.hub->counts().sessions == 0);

  const Hello hello = fx.signed_hello(a, challenge);
  fx.hub->on_frame(a.conn, encode(7, hello));
  const Frame f = a.conn->frame(1);
  CHECK(f.request_id == 7);
  const Welcome& welcome = as<Welcome>(f);
  CHECK(welcome.session_id != 0);
  CHECK(welcome.max_cursor == 0);
  CHECK(welcome.pending_count == 0);
  CHECK(welcome.limits == Limits{});
  const auth::HandshakeInputs inputs{challenge.relay_id, challenge.relay_nonce, hello.client_nonce, hello.device_id,
                                     hello.group_id};
  CHECK(auth::verify_welcome(welcome, inputs).is_ok());
  CHECK_FALSE(a.conn->close_code().has_value());
  CHECK(fx.hub->counts().sessions == 1);
  CHECK(fx.hub->counts().groups == 1);
}

TEST_CASE("each connection gets a fresh relay nonce and the same epoch", "[hub]") {
  HubFixture fx;
  auto group = new_group();
  Client a(group), b(group);
  const Challenge ca = fx.open(a);
  const Challenge cb = fx.open(b);
  CHECK(ca.relay_nonce != cb.relay_nonce);
  const Welcome wa = fx.join(a);
  Client c(group);
  const Welcome wc = fx.join(c);
  CHECK(wa.epoch == wc.epoch);
  CHECK(wa.session_id != wc.session_id);
}

TEST_CASE("hub refuses a HELLO whose device signature is wrong and registers nothing", "[hub][auth]") {
  HubFixture fx;
  Client a(new_group());
  const Challenge challenge = fx.open(a);
  Hello hello = fx.signed_hello(a, challenge);
  hello.device_sig.mutable_bytes()[0] ^= 0x01;
  fx.hub->on_frame(a.conn, encode(3, hello));
  require_error_and_close(*a.conn, Code::kUnauthorized, 4002);
  CHECK(as<Error>(a.conn->last_frame()).request_id == 3);
  CHECK(fx.hub->counts().sessions == 0);
  CHECK(fx.hub->counts().groups == 0);
}

TEST_CASE("hub refuses a HELLO whose group signature is wrong", "[hub][auth]") {
  HubFixture fx;
  Client a(new_group());
  const Challenge challenge = fx.open(a);
  Hello hello = fx.signed_hello(a, challenge);
  // Signed by a key that is not the group's: a device that only knows the group_id.
  const auth::SigningKey impostor = auth::SigningKey::generate();
  Hello forged = hello;
  auth::sign_hello(forged, challenge.relay_id, challenge.relay_nonce, a.key, impostor);
  hello.group_sig = forged.group_sig;
  fx.hub->on_frame(a.conn, encode(3, hello));
  require_error_and_close(*a.conn, Code::kUnauthorized, 4002);
  CHECK(fx.hub->counts().sessions == 0);
}

TEST_CASE("hub refuses a HELLO signed for another relay nonce (replay)", "[hub][auth]") {
  HubFixture fx;
  Client a(new_group());
  const Challenge challenge = fx.open(a);
  Hello hello;
  hello.client_nonce = auth::random_id<Nonce>();
  auth::sign_hello(hello, challenge.relay_id, auth::random_id<Nonce>(), a.key, *a.group);
  fx.hub->on_frame(a.conn, encode(1, hello));
  require_error_and_close(*a.conn, Code::kUnauthorized, 4002);
  CHECK(fx.hub->counts().sessions == 0);
}

TEST_CASE("hub refuses a HELLO signed for another relay id", "[hub][auth]") {
  HubFixture fx;
  Client a(new_group());
  const Challenge challenge = fx.open(a);
  Hello hello;
  hello.client_nonce = auth::random_id<Nonce>();
  auth::sign_hello(hello, auth::random_id<RelayId>(), challenge.relay_nonce, a.key, *a.group);
  fx.hub->on_frame(a.conn, encode(1, hello));
  require_error_and_close(*a.conn, Code::kUnauthorized, 4002);
}

TEST_CASE("PUSH before HELLO is INVALID_STATE and closes with 4006", "[hub][state]") {
  HubFixture fx;
  Client a(new_group());
  fx.open(a);
  fx.hub->on_frame(a.conn, encode(9, Push{blob_n(1), payload_of(10, 1), 0}));
  require_error_and_close(*a.conn, Code::kInvalidState, 4006);
  CHECK(as<Error>(a.conn->last_frame()).request_id == 9);
  CHECK(fx.hub->counts().sessions == 0);
}

TEST_CASE("a second HELLO on an active session is INVALID_STATE and unregisters it", "[hub][state]") {
  HubFixture fx;
  Client a(new_group());
  const Challenge challenge = fx.open(a);
  const Hello hello = fx.signed_hello(a, challenge);
  fx.hub->on_frame(a.conn, encode(1, hello));
  as<Welcome>(a.conn->frame(1));
  REQUIRE(fx.hub->counts().sessions == 1);
  fx.hub->on_frame(a.conn, encode(2, hello));
  require_error_and_close(*a.conn, Code::kInvalidState, 4006);
  CHECK(fx.hub->counts().sessions == 0);
}

TEST_CASE("a client sending a relay-only message is INVALID_STATE", "[hub][state]") {
  HubFixture fx;
  Client a(new_group());
  fx.join(a);
  fx.hub->on_frame(a.conn, encode(4, PushAck{blob_n(1), 1, 1, false}));
  require_error_and_close(*a.conn, Code::kInvalidState, 4006);
}

TEST_CASE("garbage bytes are INVALID_MESSAGE and close with 4000", "[hub][hostile]") {
  Bytes trailing = encode(1, Pull{0, 1});
  trailing.push_back(0x00);
  const std::vector<Bytes> inputs = {
      Bytes{},
      Bytes{0xc1},
      Bytes{0xde, 0xad, 0xbe, 0xef},
      Bytes{0xdd, 0xff, 0xff, 0xff, 0xff},  // array32 claiming 4 billion items
      trailing,
  };
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    HubFixture fx;
    Client a(new_group());
    fx.open(a);
    fx.hub->on_frame(a.conn, inputs[i]);
    INFO("input " << i);
    require_error_and_close(*a.conn, Code::kInvalidMessage, 4000);
    CHECK(fx.hub->counts().sessions == 0);
  }
}

TEST_CASE("frames after a fatal error are ignored", "[hub][hostile]") {
  HubFixture fx;
  Client a(new_group());
  fx.open(a);
  fx.hub->on_frame(a.conn, Bytes{0x01, 0x02});
  const std::size_t frames = a.conn->frame_count();
  fx.hub->on_frame(a.conn, encode(1, Pull{0, 1}));
  fx.hub->on_frame(a.conn, Bytes{0xff});
  CHECK(a.conn->frame_count() == frames);
}

TEST_CASE("a silent client gets HELLO_TIMEOUT and close 4007, active sessions are untouched", "[hub][state]") {
  HubFixture fx;
  auto group = new_group();
  Client silent(group), active(group);
  fx.open(silent);
  fx.join(active);
  fx.hub->on_tick(Hub::Clock::now());  // well within the timeout: nothing happens
  CHECK_FALSE(silent.conn->close_code().has_value());
  fx.hub->on_tick(Hub::Clock::now() + std::chrono::milliseconds(kDefaultHelloTimeoutMs) + std::chrono::seconds(1));
  require_error_and_close(*silent.conn, Code::kHelloTimeout, 4007);
  CHECK_FALSE(active.conn->close_code().has_value());
  CHECK(fx.hub->counts().sessions == 1);
}

TEST_CASE("HELLO carries the pending count against the relay's max cursor", "[hub]") {
  HubFixture fx;
  auto group = new_group();
  Client a(group);
  fx.join(a);
  for (std::uint32_t i = 1; i <= 3; ++i) as<PushAck>(fx.push(a, blob_n(i), payload_of(8, 1)));
  Client b(group), c(group), d(new_group());
  const Welcome wb = fx.join(b, 1);
  CHECK(wb.max_cursor == 3);
  CHECK(wb.pending_count == 2);
  const Welcome wc = fx.join(c, 10);  // ahead of the relay (restored database): nothing pending
  CHECK(wc.max_cursor == 3);
  CHECK(wc.pending_count == 0);
  const Welcome wd = fx.join(d, 0);
  CHECK(wd.max_cursor == 0);
}

TEST_CASE("the group's session limit refuses one more with GROUP_FULL and close 4104", "[hub][limits]") {
  HubOptions options;
  options.relay.max_sessions_per_group = 2;
  HubFixture fx(options);
  auto group = new_group();
  Client a(group), b(group), c(group), other(new_group());
  fx.join(a);
  fx.join(b);
  const Challenge challenge = fx.open(c);
  fx.hub->on_frame(c.conn, encode(1, fx.signed_hello(c, challenge)));
  require_error_and_close(*c.conn, Code::kGroupFull, 4104);
  fx.join(other);  // other groups are not affected
  CHECK(fx.hub->counts().sessions == 3);
}

// ---------------------------------------------------------------------------------------------
// PUSH / NOTIFY / PULL

TEST_CASE("pushes are acknowledged with gap-free cursors 1, 2, 3", "[hub][push]") {
  HubFixture fx;
  Client a(new_group());
  fx.join(a);
  for (std::uint32_t i = 1; i <= 3; ++i) {
    const PushAck ack = as<PushAck>(fx.push(a, blob_n(i), payload_of(100, static_cast<std::uint8_t>(i))));
    CHECK(ack.blob_id == blob_n(i));
    CHECK(ack.cursor == i);
    CHECK_FALSE(ack.duplicate);
    CHECK(ack.timestamp > 0);
  }
}

TEST_CASE("a repeated push returns the original cursor with duplicate=true and notifies nobody", "[hub][push]") {
  HubFixture fx;
  auto group = new_group();
  Client a(group), b(group);
  fx.join(a);
  fx.join(b);
  const PushAck first = as<PushAck>(fx.push(a, blob_n(1), payload_of(10, 1)));
  as<PushAck>(fx.push(a, blob_n(2), payload_of(10, 2)));
  REQUIRE(b.conn->wait_for_frames(4));  // CHALLENGE, WELCOME, 2 NOTIFYs
  const PushAck again = as<PushAck>(fx.push(a, blob_n(1), payload_of(10, 1)));
  CHECK(again.cursor == first.cursor);
  CHECK(again.duplicate);
  CHECK(again.timestamp == first.timestamp);
  // A later push's NOTIFY is the next frame b sees: the duplicate produced none.
  as<PushAck>(fx.push(a, blob_n(3), payload_of(10, 3)));
  const Notify n = as<Notify>(b.conn->frame(4));
  CHECK(n.blob_id == blob_n(3));
  CHECK(n.cursor == 3);
}

TEST_CASE("NOTIFY reaches the other sessions of the group, not the pusher and not other groups", "[hub][push]") {
  HubFixture fx;
  auto group = new_group();
  Client pusher(group), peer(group), outsider(new_group());
  fx.join(pusher);
  fx.join(peer);
  fx.join(outsider);
  const Bytes payload = payload_of(300, 0x42);
  const PushAck ack = as<PushAck>(fx.push(pusher, blob_n(1), payload));

  const Notify n = as<Notify>(peer.conn->frame(2));
  CHECK(n.blob_id == blob_n(1));
  CHECK(n.cursor == ack.cursor);
  CHECK(n.sender_id == pusher.device_id());
  CHECK(n.timestamp == ack.timestamp);
  CHECK(n.size == payload.size());
  REQUIRE(n.payload.has_value());
  CHECK(*n.payload == payload);
  CHECK(peer.conn->frame(2).request_id == 0);

  // The pusher got only its ack; the outsider nothing. Another push flushes any stray frame
  // through the same writer thread, so a wrongly sent NOTIFY would be visible by now.
  as<PushAck>(fx.push(pusher, blob_n(2), payload_of(1, 1)));
  REQUIRE(peer.conn->wait_for_frames(4));
  CHECK(pusher.conn->frame_count() == 4);  // CHALLENGE, WELCOME, 2 acks
  CHECK(outsider.conn->frame_count() == 2);
}

TEST_CASE("a session that joins after a PUSH_ACK learns that cursor from WELCOME, not from a NOTIFY",
          "[hub][push]") {
  // The store's writer thread sends the ACK; the test thread joins as soon as it sees it. Done
  // many times, a NOTIFY sent to whoever is in the group after the ACK would reach a newcomer.
  HubFixture fx;
  auto group = new_group();
  Client pusher(group);
  fx.join(pusher);
  for (std::uint32_t i = 1; i <= 40; ++i) {
    const PushAck ack = as<PushAck>(fx.push(pusher, blob_n(2 * i - 1), payload_of(10, 1)));
    Client newcomer(group);
    CHECK(fx.join(newcomer).max_cursor == ack.cursor);
    const PushAck next = as<PushAck>(fx.push(pusher, blob_n(2 * i), payload_of(10, 2)));
    // The newcomer's first frame after WELCOME is the NOTIFY for the push after it joined.
    CHECK(as<Notify>(newcomer.conn->frame(2)).cursor == next.cursor);
    fx.hub->on_close(newcomer.conn);  // under the group's session limit
  }
}

TEST_CASE("NOTIFY leaves out payloads above the inline limit", "[hub][push]") {
  HubOptions options;
  options.limits.inline_notify_bytes = 64;
  HubFixture fx(options);
  auto group = new_group();
  Client a(group), b(group);
  fx.join(a);
  fx.join(b);
  as<PushAck>(fx.push(a, blob_n(1), payload_of(64, 1)));
  as<PushAck>(fx.push(a, blob_n(2), payload_of(65, 2)));
  const Notify small = as<Notify>(b.conn->frame(2));
  const Notify large = as<Notify>(b.conn->frame(3));
  CHECK(small.payload.has_value());
  CHECK_FALSE(large.payload.has_value());
  CHECK(large.size == 65);
}

TEST_CASE("a blob over the limit gets BLOB_TOO_LARGE and the session goes on", "[hub][limits]") {
  HubFixture fx;
  Client a(new_group());
  fx.join(a);
  const Frame f = fx.push(a, blob_n(1), payload_of(kDefaultMaxBlobBytes + 1, 7));
  const Error& error = as<Error>(f);
  CHECK(error.code == static_cast<std::uint16_t>(Code::kBlobTooLarge));
  CHECK(error.request_id == f.request_id);
  CHECK_FALSE(a.conn->close_code().has_value());
  const PushAck ack = as<PushAck>(fx.push(a, blob_n(2), payload_of(kDefaultMaxBlobBytes, 7)));  // exactly the limit
  CHECK(ack.cursor == 1);
}

TEST_CASE("pull pages through the group in cursor order", "[hub][pull]") {
  HubFixture fx;
  auto group = new_group();
  Client a(group), b(group);
  fx.join(a);
  for (std::uint32_t i = 1; i <= 5; ++i) as<PushAck>(fx.push(a, blob_n(i), payload_of(20, static_cast<std::uint8_t>(i))));
  fx.join(b);

  Cursor after = 0;
  std::vector<Cursor> seen;
  for (int page = 0; page < 10; ++page) {  // bounded
    const PullResponse r = fx.pull(b, after, 2);
    CHECK(r.max_cursor == 5);
    CHECK(r.blobs.size() <= 2);
    for (const auto& blob : r.blobs) {
      seen.push_back(blob.cursor);
      CHECK(blob.sender_id == a.device_id());
      CHECK(blob.payload == payload_of(20, static_cast<std::uint8_t>(blob.cursor)));
      CHECK(blob.blob_id == blob_n(static_cast<std::uint32_t>(blob.cursor)));
    }
    if (!r.blobs.empty()) after = r.blobs.back().cursor;
    if (!r.has_more) break;
  }
  CHECK(seen == std::vector<Cursor>{1, 2, 3, 4, 5});

  const PullResponse all = fx.pull(b, 0, 0);  // 0 = relay maximum
  CHECK(all.blobs.size() == 5);
  CHECK_FALSE(all.has_more);
  const PullResponse none = fx.pull(b, 5, 100);
  CHECK(none.blobs.empty());
  CHECK_FALSE(none.has_more);
}

TEST_CASE("pull limits above the relay maximum are clamped", "[hub][pull]") {
  HubOptions options;
  options.limits.max_pull_limit = 3;
  HubFixture fx(options);
  Client a(new_group());
  fx.join(a);
  for (std::uint32_t i = 1; i <= 5; ++i) as<PushAck>(fx.push(a, blob_n(i), payload_of(4, 1)));
  const PullResponse r = fx.pull(a, 0, 1'000'000);
  CHECK(r.blobs.size() == 3);
  CHECK(r.has_more);
  const PullResponse zero = fx.pull(a, 0, 0);
  CHECK(zero.blobs.size() == 3);
}

// The PULL_RESPONSEs one PULL gets: every reply to `rid` until one without `continues` (bounded).
std::vector<PullResponse> pull_run(HubFixture& fx, Client& c, const Pull& pull, std::uint32_t rid) {
  const std::size_t before = c.conn->frame_count();
  fx.hub->on_frame(c.conn, encode(rid, pull));
  std::vector<PullResponse> run;
  for (std::size_t i = before; run.size() < 100; ++i) {
    const Frame f = c.conn->frame(i);  // REQUIREs that it arrives
    if (f.request_id != rid) continue;
    run.push_back(as<PullResponse>(f));
    if (!run.back().continues) break;
  }
  return run;
}

std::vector<Cursor> cursors_of(const std::vector<PullResponse>& run) {
  std::vector<Cursor> cursors;
  for (const auto& page : run) {
    for (const auto& blob : page.blobs) cursors.push_back(blob.cursor);
  }
  return cursors;
}

TEST_CASE("one PULL with pages gets them back to back, each after the one before, up to max_pull_pages",
          "[hub][pull]") {
  HubOptions options;
  options.max_pull_pages = 3;
  HubFixture fx(options);
  auto group = new_group();
  Client a(group), b(group);
  fx.join(a);
  for (std::uint32_t i = 1; i <= 9; ++i) as<PushAck>(fx.push(a, blob_n(i), payload_of(20, static_cast<std::uint8_t>(i))));
  fx.join(b);

  // Pages of 2: a run of 3 (max_pull_pages, though 50 were asked for), then the rest.
  const auto run = pull_run(fx, b, Pull{0, 2, 50}, 60);
  REQUIRE(run.size() == 3);
  CHECK(run[0].continues);
  CHECK(run[1].continues);
  CHECK_FALSE(run[2].continues);
  CHECK(run[2].has_more);
  CHECK(cursors_of(run) == std::vector<Cursor>{1, 2, 3, 4, 5, 6});
  for (const auto& page : run) {
    for (const auto& blob : page.blobs) CHECK(blob.payload == payload_of(20, static_cast<std::uint8_t>(blob.cursor)));
  }
  // The last page there is ends a run.
  const auto rest = pull_run(fx, b, Pull{6, 2, 50}, 61);
  REQUIRE(rest.size() == 2);
  CHECK_FALSE(rest[1].has_more);
  CHECK(cursors_of(rest) == std::vector<Cursor>{7, 8, 9});

  // Without pages (a client that predates them): one page, as ever.
  const auto single = pull_run(fx, b, Pull{0, 2}, 62);
  REQUIRE(single.size() == 1);
  CHECK(single[0].has_more);

  // A reader that is behind (its send queue past half) gets one page, and asks again later.
  b.conn->set_congested(true);
  CHECK(pull_run(fx, b, Pull{0, 2, 50}, 63).size() == 1);
  b.conn->set_congested(false);
  CHECK(pull_run(fx, b, Pull{0, 2, 50}, 64).size() == 3);
}

TEST_CASE("each page after the first costs one message of the device's budget", "[hub][pull][limits]") {
  HubOptions options;
  options.relay.device_messages_per_minute = 10;
  options.relay.rate_limit_strikes = 0;
  options.max_pull_pages = 64;
  HubFixture fx(options);
  auto group = new_group();
  Client a1(group), a2(group), a3(group), b(group);
  std::uint32_t n = 0;
  for (Client* a : {&a1, &a2, &a3}) {
    fx.join(*a);
    for (int i = 0; i < 8; ++i, ++n) as<PushAck>(fx.push(*a, blob_n(n + 1), payload_of(10, 1)));
  }
  fx.join(b);
  // 24 blobs, pages of 1: the PULL and 9 more pages spend b's 10 messages; the run ends there.
  const auto run = pull_run(fx, b, Pull{0, 1, 64}, 70);
  REQUIRE(run.size() == 10);
  CHECK_FALSE(run.back().continues);
  CHECK(run.back().has_more);
  CHECK(cursors_of(run).back() == 10);
  // The budget is spent: the next PULL is refused like any message over it.
  const std::size_t before = b.conn->frame_count();
  fx.hub->on_frame(b.conn, encode(71, Pull{10, 1, 64}));
  CHECK(as<Error>(b.conn->frame(before)).code == static_cast<std::uint16_t>(Code::kRateLimited));
}

TEST_CASE("a pull response never exceeds the frame limit", "[hub][pull][limits]") {
  HubOptions options;
  options.limits.max_blob_bytes = 40 * 1024;
  options.limits.max_frame_bytes = 64 * 1024;
  HubFixture fx(options);
  Client a(new_group());
  fx.join(a);
  for (std::uint32_t i = 1; i <= 4; ++i) as<PushAck>(fx.push(a, blob_n(i), payload_of(30 * 1024, 9)));
  Cursor after = 0;
  int pages = 0;
  for (; pages < 10; ++pages) {
    const std::size_t before = a.conn->frame_count();
    fx.hub->on_frame(a.conn, encode(50, Pull{after, 0}));
    REQUIRE(a.conn->wait_for_frames(before + 1));
    CHECK(a.conn->raw(before).size() <= options.limits.max_frame_bytes);
    const Frame f = a.conn->frame(before);
    const PullResponse& r = as<PullResponse>(f);
    REQUIRE(r.blobs.size() <= 2);
    REQUIRE_FALSE(r.blobs.empty());
    after = r.blobs.back().cursor;
    if (!r.has_more) break;
  }
  CHECK(after == 4);
  CHECK(pages >= 1);
}

TEST_CASE("pull and push only ever see the session's own group", "[hub][pull]") {
  HubFixture fx;
  Client a(new_group()), b(new_group());
  fx.join(a);
  fx.join(b);
  as<PushAck>(fx.push(a, blob_n(1), payload_of(5, 1)));
  const PushAck ack = as<PushAck>(fx.push(b, blob_n(1), payload_of(5, 2)));  // same blob id, other group
  CHECK(ack.cursor == 1);
  CHECK_FALSE(ack.duplicate);
  const PullResponse r = fx.pull(b, 0, 10);
  REQUIRE(r.blobs.size() == 1);
  CHECK(r.blobs[0].payload == payload_of(5, 2));
}

// ---------------------------------------------------------------------------------------------
// Other messages, closing, shutdown

TEST_CASE("unsupported requests get INVALID_MESSAGE and keep the session", "[hub]") {
  HubFixture fx;
  Client a(new_group());
  fx.join(a);
  fx.hub->on_frame(a.conn, encode(21, RegisterPush{"token", "apns"}));
  const Frame f = a.conn->frame(2);
  CHECK(f.request_id == 21);
  CHECK(as<Error>(f).code == static_cast<std::uint16_t>(Code::kInvalidMessage));
  CHECK_FALSE(a.conn->close_code().has_value());
  fx.hub->on_frame(a.conn, encode(22, Ack{0}));  // accepted silently
  as<PushAck>(fx.push(a, blob_n(1), payload_of(1, 1)));
  CHECK(a.conn->frame_count() == 4);
}

TEST_CASE("LIST_DEVICES answers with the group's online devices and sanitized names", "[hub]") {
  HubFixture fx;
  auto group = new_group();
  Client a(group), b(group), outsider(new_group());
  fx.join(a, 0, "phone");
  fx.join(b, 0, std::string(61, 'x') + "\xC3\xA9\xC3\xA9");  // 64 bytes would split the second é
  fx.join(outsider, 0, "other");
  fx.hub->on_frame(a.conn, encode(5, ListDevices{}));
  const Frame f = a.conn->frame(2);
  CHECK(f.request_id == 5);
  const Devices& devices = as<Devices>(f);
  REQUIRE(devices.devices.size() == 2);
  for (const auto& d : devices.devices) {
    CHECK(d.online);
    CHECK_FALSE(d.revoked);
    if (d.device_id == a.device_id()) {
      CHECK(d.name == "phone");
    } else {
      CHECK(d.device_id == b.device_id());
      CHECK(d.name == std::string(61, 'x') + "\xC3\xA9");
    }
  }
}

TEST_CASE("BYE from the client closes normally and unregisters the session", "[hub]") {
  HubFixture fx;
  Client a(new_group());
  fx.join(a);
  fx.hub->on_frame(a.conn, encode(0, Bye{0, "done"}));
  REQUIRE(a.conn->close_code().has_value());
  CHECK(*a.conn->close_code() == 1000);
  CHECK(fx.hub->counts().sessions == 0);
}

TEST_CASE("registry counts return to 0 after every connection closes", "[hub]") {
  HubFixture fx;
  auto g1 = new_group();
  auto g2 = new_group();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 6; ++i) clients.push_back(std::make_unique<Client>(i % 2 == 0 ? g1 : g2));
  for (auto& c : clients) fx.join(*c);
  Client half_open(g1);
  fx.open(half_open);
  CHECK(fx.hub->counts().sessions == 6);
  CHECK(fx.hub->counts().groups == 2);
  CHECK(fx.hub->counts().connections == 7);
  for (int i = 0; i < 3; ++i) fx.hub->on_close(clients[static_cast<std::size_t>(i)]->conn);
  CHECK(fx.hub->counts().sessions == 3);
  CHECK(fx.hub->counts().groups == 2);
  for (auto& c : clients) fx.hub->on_close(c->conn);  // closing twice is harmless
  fx.hub->on_close(half_open.conn);
  CHECK(fx.hub->counts().sessions == 0);
  CHECK(fx.hub->counts().groups == 0);
  CHECK(fx.hub->counts().connections == 0);
}

TEST_CASE("a closed session no longer receives NOTIFY", "[hub][push]") {
  HubFixture fx;
  auto group = new_group();
  Client a(group), b(group);
  fx.join(a);
  fx.join(b);
  fx.hub->on_close(b.conn);
  as<PushAck>(fx.push(a, blob_n(1), payload_of(1, 1)));
  as<PushAck>(fx.push(a, blob_n(2), payload_of(1, 1)));
  CHECK(b.conn->frame_count() == 2);
}

TEST_CASE("shutdown acknowledges queued pushes, then sends BYE 3001 and closes with 4201", "[hub]") {
  HubFixture fx;
  auto group = new_group();
  Client a(group), waiting(group);
  fx.join(a);
  fx.open(waiting);
  fx.hub->on_frame(a.conn, encode(77, Push{blob_n(1), payload_of(10, 1), 0}));
  fx.hub->shutdown();
  // The in-flight push was committed and acknowledged before the BYE.
  const std::size_t n = a.conn->frame_count();
  REQUIRE(n == 4);
  CHECK(as<PushAck>(a.conn->frame(2)).cursor == 1);
  CHECK(as<Bye>(a.conn->frame(3)).code == static_cast<std::uint16_t>(Code::kRelayShuttingDown));
  CHECK(*a.conn->close_code() == 4201);
  CHECK(as<Bye>(waiting.conn->last_frame()).code == 3001);
  CHECK(*waiting.conn->close_code() == 4201);
  CHECK(fx.hub->counts().sessions == 0);
  CHECK(fx.hub->counts().connections == 0);
  CHECK_FALSE(fx.hub->store_stats().has_value());

  Client late(group);
  fx.hub->on_open(late.conn);
  CHECK(as<Bye>(late.conn->frame(0)).code == 3001);
  CHECK(*late.conn->close_code() == 4201);
  fx.hub->shutdown();  // idempotent
}

// A store that fails every operation, to check how the hub reports storage faults.
class FailingStore final : public Store {
 public:
  explicit FailingStore(Code push_error) : push_error_(push_error) {}
  std::uint64_t epoch() const override { return 42; }
  void submit_push(PushRequest, PushCompletion done) override { done(Status(push_error_, "disk on fire /var/x")); }
  Result<PullPage> pull(const GroupId&, Cursor, std::uint32_t, std::uint64_t, std::size_t) override {
    return Status(Code::kStorageError, "SQLITE_IOERR");
  }
  Result<Cursor> max_cursor(const GroupId&) override { return Cursor{0}; }
  Result<StoreStats> stats() override { return Status(Code::kStorageError, "SQLITE_IOERR"); }
  void set_limits(const StoreLimits&) override {}
  Result<SessionStart> session_start(const GroupId&, const DeviceId&) override { return SessionStart{}; }
  Result<std::vector<DeviceRecord>> list_devices(const GroupId&, std::size_t) override {
    return Status(Code::kStorageError, "SQLITE_IOERR");
  }
  void submit_device_seen(const GroupId&, const DeviceId&, std::optional<std::string>, std::uint64_t,
                          StatusCompletion done) override {
    done(Status(push_error_, "disk on fire /var/x"));
  }
  void submit_ack(const GroupId&, const DeviceId&, Cursor, std::uint64_t, StatusCompletion done) override {
    done(Status(push_error_, "disk on fire /var/x"));
  }
  void submit_delete(DeleteRequest, DeleteCompletion done) override { done(Status(push_error_, "disk on fire /var/x")); }
  void submit_cleanup(CleanupRequest, CleanupCompletion done) override {
    done(Status(push_error_, "disk on fire /var/x"));
  }
  void close() override {}

 private:
  Code push_error_;
};

TEST_CASE("storage faults answer INTERNAL (or STORAGE_FULL) and keep the session", "[hub][store]") {
  for (const auto& [store_code, wire_code] : {std::pair{Code::kStorageError, Code::kInternal},
                                              std::pair{Code::kStorageFull, Code::kStorageFull}}) {
    Hub hub(HubOptions{}, std::make_unique<FailingStore>(store_code), auth::SigningKey::generate());
    Client a(new_group());
    hub.on_open(a.conn);
    const Challenge challenge = as<Challenge>(a.conn->frame(0));
    Hello hello;
    hello.client_nonce = auth::random_id<Nonce>();
    auth::sign_hello(hello, challenge.relay_id, challenge.relay_nonce, a.key, *a.group);
    hub.on_frame(a.conn, encode(1, hello));
    CHECK(as<Welcome>(a.conn->frame(1)).epoch == 42);

    hub.on_frame(a.conn, encode(2, Push{blob_n(1), payload_of(3, 3), 0}));
    const Error push_error = as<Error>(a.conn->frame(2));
    CHECK(push_error.code == static_cast<std::uint16_t>(wire_code));
    CHECK(push_error.request_id == 2);
    if (wire_code == Code::kInternal) CHECK(push_error.message.find("/var/x") == std::string::npos);  // detail stays in the log

    hub.on_frame(a.conn, encode(3, Pull{0, 10}));
    CHECK(as<Error>(a.conn->frame(3)).code == static_cast<std::uint16_t>(Code::kInternal));
    CHECK_FALSE(a.conn->close_code().has_value());
    CHECK(hub.counts().sessions == 1);
    CHECK_FALSE(hub.store_stats().has_value());
  }
}

TEST_CASE("frames from connections the hub never opened are ignored", "[hub][hostile]") {
  HubFixture fx;
  auto stranger = std::make_shared<FakeConnection>();
  fx.hub->on_frame(stranger, encode(1, Pull{0, 1}));
  fx.hub->on_close(stranger);
  CHECK(stranger->frame_count() == 0);
  CHECK(fx.hub->counts().connections == 0);
}

// ---------------------------------------------------------------------------------------------
// Registry, close codes, device names

TEST_CASE("session registry counts exactly and refuses a full group", "[registry]") {
  SessionRegistry registry(2);
  GroupId::Array g1{};
  g1[0] = 1;
  GroupId::Array g2{};
  g2[0] = 2;
  auto conn = std::make_shared<FakeConnection>();
  REQUIRE(registry.add(GroupId(g1), {1, {}, "a", 0, conn}).is_ok());
  REQUIRE(registry.add(GroupId(g1), {2, {}, "b", 0, conn}).is_ok());
  CHECK(registry.add(GroupId(g1), {3, {}, "c", 0, conn}).code() == Code::kGroupFull);
  CHECK(registry.add(GroupId(g1), {2, {}, "b", 0, conn}).code() == Code::kAlreadyExists);
  REQUIRE(registry.add(GroupId(g2), {4, {}, "d", 0, conn}).is_ok());
  CHECK(registry.counts().sessions == 3);
  CHECK(registry.counts().groups == 2);
  CHECK(registry.peers_of(GroupId(g1), 1).size() == 1);
  CHECK(registry.sessions_of(GroupId(g1)).size() == 2);
  CHECK(registry.remove(GroupId(g1), 1));
  CHECK_FALSE(registry.remove(GroupId(g1), 1));
  CHECK_FALSE(registry.remove(GroupId(g2), 2));
  CHECK(registry.remove(GroupId(g2), 4));
  CHECK(registry.counts().sessions == 1);
  CHECK(registry.counts().groups == 1);
  CHECK(registry.all_connections().size() == 1);
}

TEST_CASE("error codes map onto WebSocket close codes in the 4000 range", "[close_codes]") {
  CHECK(websocket_close_code(Code::kOk) == 1000);
  CHECK(websocket_close_code(Code::kInvalidMessage) == 4000);
  CHECK(websocket_close_code(Code::kUnauthorized) == 4002);
  CHECK(websocket_close_code(Code::kUnsupportedVersion) == 4005);
  CHECK(websocket_close_code(Code::kInvalidState) == 4006);
  CHECK(websocket_close_code(Code::kHelloTimeout) == 4007);
  CHECK(websocket_close_code(Code::kRateLimited) == 4100);
  CHECK(websocket_close_code(Code::kBlobTooLarge) == 4101);
  CHECK(websocket_close_code(Code::kRelayOverloaded) == 4200);
  CHECK(websocket_close_code(Code::kStorageFull) == 4203);
  CHECK(websocket_close_code(Code::kTimeout) == 4202);  // local codes never leak: INTERNAL
}

TEST_CASE("device names are truncated to 64 bytes without splitting a code point", "[device_name]") {
  CHECK(sanitize_device_name("laptop") == "laptop");
  CHECK(sanitize_device_name(std::string(100, 'a')) == std::string(64, 'a'));
  // 63 ASCII bytes then a 2-byte character: it does not fit whole, so it goes.
  CHECK(sanitize_device_name(std::string(63, 'a') + "\xC3\xA9") == std::string(63, 'a'));
  // 4-byte emoji straddling the limit.
  CHECK(sanitize_device_name(std::string(62, 'a') + "\xF0\x9F\x98\x80") == std::string(62, 'a'));
  CHECK(sanitize_device_name(std::string(60, 'a') + "\xF0\x9F\x98\x80") == std::string(60, 'a') + "\xF0\x9F\x98\x80");
  for (std::size_t n = 0; n < 200; ++n) {
    const std::string name = sanitize_device_name(std::string(n, 'x') + "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC");
    CHECK(name.size() <= kMaxDeviceNameBytes);
  }
}

TEST_CASE("device names lose invalid UTF-8 and control characters", "[device_name][hostile]") {
  CHECK(sanitize_device_name("a\xFF" "b") == "ab");
  CHECK(sanitize_device_name("\xC0\xAF") == "");          // overlong '/'
  CHECK(sanitize_device_name("\xED\xA0\x80") == "");      // surrogate
  CHECK(sanitize_device_name("\xF4\x90\x80\x80") == "");  // above U+10FFFF
  CHECK(sanitize_device_name("\xE2\x82") == "");          // truncated sequence
  CHECK(sanitize_device_name("line\nforged\x1b[31m") == "lineforged[31m");
  CHECK(sanitize_device_name("caf\xC3\xA9") == "caf\xC3\xA9");
  CHECK(sanitize_device_name(std::string("a\0b", 3)) == "ab");
}

// ---------------------------------------------------------------------------------------------
// HTTP routes and /health

TEST_CASE("HTTP routes: /health, the WebSocket endpoint, 404 and 405", "[http]") {
  CHECK(route_request("GET", "/health", false) == Route::kHealth);
  CHECK(route_request("GET", "/health?verbose=1", false) == Route::kHealth);
  CHECK(route_request("POST", "/health", false) == Route::kMethodNotAllowed);
  CHECK(route_request("GET", "/v1/sync", true) == Route::kSync);
  CHECK(route_request("GET", "/v1/sync", false) == Route::kUpgradeRequired);
  CHECK(route_request("PUT", "/v1/sync", true) == Route::kMethodNotAllowed);
  CHECK(route_request("GET", "/v1/sync/extra", true) == Route::kNotFound);
  CHECK(route_request("GET", "/", false) == Route::kNotFound);
  CHECK(route_request("GET", "/v2/sync", true) == Route::kNotFound);
  CHECK(route_request("GET", "", false) == Route::kNotFound);
}

TEST_CASE("the health report is JSON with the documented fields", "[http]") {
  HealthReport report;
  report.relay_id_hex = std::string(64, 'a');
  report.uptime_seconds = 5;
  report.connections = 3;
  report.sessions = 2;
  report.groups = 1;
  report.blobs_buffered = 10;
  report.bytes_buffered = 5120;
  const auto json = nlohmann::json::parse(render_health_json(report));
  CHECK(json["status"] == "ok");
  CHECK(json["version"] == std::string(relay_version()));
  CHECK(json["relay_id"] == std::string(64, 'a'));
  CHECK(json["uptime_seconds"] == 5);
  CHECK(json["sessions"] == 2);
  CHECK(json["groups"] == 1);
  CHECK(json["blobs_buffered"] == 10);
  CHECK(json["bytes_buffered"] == 5120);

  report.blobs_buffered.reset();
  report.bytes_buffered.reset();
  const auto degraded = nlohmann::json::parse(render_health_json(report));
  CHECK(degraded["status"] == "unavailable");
  CHECK(degraded["blobs_buffered"].is_null());
  CHECK_FALSE(health_ok(report));
}

// ---------------------------------------------------------------------------------------------
// relay.key and the data directory

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

TEST_CASE("the relay key is created 0600 once and loaded unchanged afterwards", "[keys]") {
  TempDir dir;
  const fs::path path = dir.path() / "relay.key";
  auto created = load_or_create_relay_key(path);
  REQUIRE(created.has_value());
  CHECK(mode_of(path) == 0600);
  CHECK(fs::file_size(path) == 32);
  auto loaded = load_or_create_relay_key(path);
  REQUIRE(loaded.has_value());
  CHECK(loaded->public_key() == created->public_key());

  TempDir other;
  auto fresh = load_or_create_relay_key(other.path() / "relay.key");
  REQUIRE(fresh.has_value());
  CHECK(fresh->public_key() != created->public_key());
}

TEST_CASE("a relay key readable by others or of the wrong size is refused", "[keys][hostile]") {
  TempDir dir;
  const fs::path path = dir.path() / "relay.key";
  REQUIRE(load_or_create_relay_key(path).has_value());

  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  auto wide = load_or_create_relay_key(path);
  REQUIRE_FALSE(wide.has_value());
  CHECK(wide.error().message().find("0644") != std::string::npos);
  REQUIRE(::chmod(path.c_str(), 0640) == 0);
  CHECK_FALSE(load_or_create_relay_key(path).has_value());

  REQUIRE(::chmod(path.c_str(), 0600) == 0);
  fs::resize_file(path, 31);
  CHECK_FALSE(load_or_create_relay_key(path).has_value());
  fs::resize_file(path, 64);
  CHECK_FALSE(load_or_create_relay_key(path).has_value());
  CHECK(fs::file_size(path) == 64);  // never overwritten

  const fs::path directory = dir.path() / "dir.key";
  fs::create_directory(directory);
  CHECK_FALSE(load_or_create_relay_key(directory).has_value());
  const fs::path link = dir.path() / "link.key";
  fs::create_symlink(path, link);
  CHECK_FALSE(load_or_create_relay_key(link).has_value());
}

TEST_CASE("the data directory is created with mode 0700", "[keys]") {
  TempDir dir;
  const fs::path data = dir.path() / "nested" / "data";
  REQUIRE(ensure_private_dir(data).is_ok());
  CHECK(fs::is_directory(data));
  CHECK(mode_of(data) == 0700);
  REQUIRE(ensure_private_dir(data).is_ok());  // existing: fine
  const fs::path file = dir.path() / "file";
  std::ofstream(file) << "x";
  CHECK_FALSE(ensure_private_dir(file).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Command line

ParsedArgs parse(std::vector<std::string> args) {
  args.insert(args.begin(), "blindsync-relay");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_relay_args(static_cast<int>(argv.size()), argv.data());
}

TEST_CASE("relay flags have documented defaults", "[config]") {
  const ParsedArgs parsed = parse({});
  REQUIRE(parsed.config.has_value());
  CHECK(parsed.config->listen == ListenAddress{"127.0.0.1", 7600});
  CHECK(parsed.config->data_dir == fs::path("./blindsync-data"));
  CHECK(parsed.config->durability == Durability::kFull);
  CHECK(parsed.config->log_level == "info");
  CHECK(parsed.config->threads == 2);
}

TEST_CASE("relay flags are parsed", "[config]") {
  const ParsedArgs parsed =
      parse({"--listen", "127.0.0.1:0", "--data", "/tmp/x", "--durability", "normal", "--log-level", "debug",
             "--threads", "4"});
  REQUIRE(parsed.config.has_value());
  CHECK(parsed.config->listen == ListenAddress{"127.0.0.1", 0});
  CHECK(parsed.config->data_dir == fs::path("/tmp/x"));
  CHECK(parsed.config->durability == Durability::kNormal);
  CHECK(parsed.config->log_level == "debug");
  CHECK(parsed.config->threads == 4);
  CHECK(parse({"--listen", "[::1]:7600"}).config->listen == ListenAddress{"::1", 7600});
}

TEST_CASE("bad relay flags exit with code 2 and a message", "[config][hostile]") {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--durability", "sometimes"},
           {"--listen", "127.0.0.1"},
           {"--listen", "127.0.0.1:65536"},
           {"--listen", "127.0.0.1:-1"},
           {"--listen", ":7600"},
           {"--listen", "::1:7600"},
           {"--log-level", "loud"},
           {"--threads", "0"},
           {"--no-such-flag"},
           {"stray"},
       }) {
    INFO(args.front() << " " << args.back());
    const ParsedArgs parsed = parse(args);
    CHECK_FALSE(parsed.config.has_value());
    CHECK(parsed.exit_code == 2);
    CHECK(parsed.output_is_error);
    CHECK_FALSE(parsed.output.empty());
  }
  const ParsedArgs help = parse({"--help"});
  CHECK_FALSE(help.config.has_value());
  CHECK(help.exit_code == 0);
  CHECK(help.output.find("--listen") != std::string::npos);
}

}  // namespace
