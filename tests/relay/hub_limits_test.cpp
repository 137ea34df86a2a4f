// The relay's protection limits attacked at the Hub level: a fake Connection, a real SQLite store,
// real Ed25519 signatures. Each limit is set small through HubOptions and then exceeded; the
// refusal must carry the documented error code (and close code when the session ends), leave the
// rest of the relay working, and be counted in Metrics. limits_process_test.cpp repeats the
// attacks through real sockets against a blindsync-relay process.
#include <sqlite3.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "hub/close_codes.h"
#include "hub_fixture.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;
using namespace blindsync::relay::test;

std::uint16_t code_of(Code code) { return static_cast<std::uint16_t>(code); }

void require_refused(Device& d, const Frame& f, Code code) {
  const Error& error = as<Error>(f);
  CHECK(error.code == code_of(code));
  REQUIRE(d.conn->close_code().has_value());
  CHECK(*d.conn->close_code() == websocket_close_code(code));
}

void sql(const std::string& path, const std::string& statement) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &err);
  std::string message = err != nullptr ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  INFO(message);
  REQUIRE(rc == SQLITE_OK);
}

std::int64_t sql_int(const std::string& path, const std::string& query) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, query.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
  std::int64_t out = -1;
  if (sqlite3_step(stmt) == SQLITE_ROW) out = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sessions

TEST_CASE("max sessions: one more HELLO gets RELAY_OVERLOADED and close 4200, a freed slot is reused",
          "[hub][limits][sessions]") {
  HubOptions options;
  options.relay.max_sessions = 2;
  HubFixture fx(options);
  Device a(new_group()), b(new_group()), c(new_group());
  fx.join(a);
  fx.join(b);
  require_refused(c, fx.try_join(c), Code::kRelayOverloaded);
  CHECK(fx.hub->counts().sessions == 2);
  CHECK(fx.hub->metrics().rate_limit_hits[static_cast<std::size_t>(RateLimitKind::kSessions)].load() == 1);
  CHECK(fx.hub->metrics().errors(Code::kRelayOverloaded) == 1);

  fx.hub->on_close(a.conn);
  c.reconnect();
  fx.join(c);
  CHECK(fx.hub->counts().sessions == 2);
}

TEST_CASE("group full: GROUP_FULL before registration, and the slot is reusable after a close",
          "[hub][limits][sessions]") {
  HubOptions options;
  options.relay.max_sessions_per_group = 2;
  HubFixture fx(options);
  auto group = new_group();
  Device a(group), b(group), c(group);
  fx.join(a);
  fx.join(b);
  require_refused(c, fx.try_join(c), Code::kGroupFull);
  CHECK(fx.hub->counts().sessions == 2);
  CHECK(fx.hub->metrics().rate_limit_hits[static_cast<std::size_t>(RateLimitKind::kGroupSessions)].load() == 1);
  fx.hub->on_close(b.conn);
  c.reconnect();
  fx.join(c);
}

TEST_CASE("the HELLO timeout is configurable: a short one ends a silent connection with 1007 / 4007",
          "[hub][limits][timeout]") {
  HubOptions options;
  options.limits.hello_timeout_ms = 50;
  HubFixture fx(options);
  Device silent(new_group());
  const Challenge challenge = fx.open(silent);
  CHECK(challenge.limits.hello_timeout_ms == 50);  // announced
  fx.hub->on_tick(Hub::Clock::now() + std::chrono::milliseconds(40));
  CHECK_FALSE(silent.conn->close_code().has_value());
  fx.hub->on_tick(Hub::Clock::now() + std::chrono::milliseconds(100));
  require_refused(silent, silent.conn->last_frame(), Code::kHelloTimeout);
}

// ---------------------------------------------------------------------------------------------
// Message rates

TEST_CASE("over the device rate: ERROR 2000 keeps the session, repeated abuse closes it with 4100",
          "[hub][limits][rate]") {
  HubOptions options;
  options.relay.device_messages_per_minute = 3;
  options.relay.rate_limit_strikes = 3;
  HubFixture fx(options);
  Device a(new_group()), b(new_group());
  fx.join(a);
  fx.join(b);
  for (int i = 0; i < 3; ++i) fx.pull(a);
  const Frame limited = fx.request(a, Pull{0, 0});
  CHECK(as<Error>(limited).code == code_of(Code::kRateLimited));
  CHECK(as<Error>(limited).request_id == limited.request_id);
  CHECK_FALSE(a.conn->close_code().has_value());
  fx.pull(b);  // another device is not affected

  // A reconnect does not refill the device's bucket: it is keyed by the device, not the session.
  fx.hub->on_close(a.conn);
  a.reconnect();
  fx.join(a);
  CHECK(as<Error>(fx.request(a, Pull{0, 0})).code == code_of(Code::kRateLimited));
  CHECK(as<Error>(fx.request(a, Pull{0, 0})).code == code_of(Code::kRateLimited));
  CHECK_FALSE(a.conn->close_code().has_value());
  const Frame third = fx.request(a, Pull{0, 0});  // third strike in a row
  require_refused(a, third, Code::kRateLimited);
  CHECK(fx.hub->metrics().rate_limit_hits[static_cast<std::size_t>(RateLimitKind::kDeviceMessages)].load() == 4);
}

TEST_CASE("BYE is never rate-limited", "[hub][limits][rate]") {
  HubOptions options;
  options.relay.device_messages_per_minute = 1;
  HubFixture fx(options);
  Device a(new_group());
  fx.join(a);
  fx.pull(a);
  CHECK(as<Error>(fx.request(a, Pull{0, 0})).code == code_of(Code::kRateLimited));
  fx.hub->on_frame(a.conn, encode(0, Bye{0, "done"}));
  REQUIRE(a.conn->close_code().has_value());
  CHECK(*a.conn->close_code() == kCloseNormal);
}

TEST_CASE("the global rate limit holds against fresh device keys, HELLOs included", "[hub][limits][rate][hostile]") {
  HubOptions options;
  options.relay.global_messages_per_second = 5;
  options.relay.device_messages_per_minute = 1000;
  HubFixture fx(options);
  int welcomed = 0;
  int refused = 0;
  std::vector<std::unique_ptr<Device>> devices;
  for (int i = 0; i < 20; ++i) {  // 20 brand-new device keys in 20 new groups
    devices.push_back(std::make_unique<Device>(new_group()));
    const Frame f = fx.try_join(*devices.back());
    if (std::holds_alternative<Welcome>(f.message)) {
      ++welcomed;
    } else {
      require_refused(*devices.back(), f, Code::kRateLimited);
      ++refused;
    }
  }
  INFO("welcomed " << welcomed << ", refused " << refused);
  CHECK(refused > 0);  // a 5/s bucket cannot admit 20 HELLOs made within moments
  CHECK(welcomed >= 5);
  CHECK(fx.hub->metrics().rate_limit_hits[static_cast<std::size_t>(RateLimitKind::kGlobal)].load() ==
        static_cast<std::uint64_t>(refused));
}

// ---------------------------------------------------------------------------------------------
// Connections per address

TEST_CASE("admit_connection hands out max_connections_per_ip slots per address", "[hub][limits][connections]") {
  HubOptions options;
  options.relay.max_connections_per_ip = 2;
  HubFixture fx(options);
  auto s1 = fx.hub->admit_connection("192.0.2.1");
  auto s2 = fx.hub->admit_connection("192.0.2.1");
  REQUIRE(s1);
  REQUIRE(s2);
  CHECK_FALSE(fx.hub->admit_connection("192.0.2.1"));
  CHECK(fx.hub->admit_connection("192.0.2.2"));
  s1.reset();
  CHECK(fx.hub->admit_connection("192.0.2.1"));
  CHECK(fx.hub->metrics().rate_limit_hits[static_cast<std::size_t>(RateLimitKind::kConnectionsPerIp)].load() == 1);
}

// ---------------------------------------------------------------------------------------------
// Admission, revocation, groups and devices

TEST_CASE("access = token: a HELLO without one of the tokens gets 1002 and close 4002", "[hub][limits][admission]") {
  HubOptions options;
  options.relay.access = AdmissionMode::kToken;
  options.relay.access_tokens = {"invite-only-1", "invite-only-2"};
  HubFixture fx(options);
  Device none(new_group()), wrong(new_group()), right(new_group());
  require_refused(none, fx.try_join(none), Code::kUnauthorized);
  require_refused(wrong, fx.try_join(wrong, 0, "invite-only-3"), Code::kUnauthorized);
  fx.join(right, 0, "invite-only-2");
  CHECK(fx.hub->metrics().auth_failures.load() == 2);
  CHECK(fx.hub->counts().sessions == 1);
}

TEST_CASE("access = allowlist: only listed groups get a session", "[hub][limits][admission]") {
  auto listed = new_group();
  HubOptions options;
  options.relay.access = AdmissionMode::kAllowlist;
  options.relay.allowlist = {GroupId(listed->public_key())};
  HubFixture fx(options);
  Device in(listed), out(new_group());
  fx.join(in);
  require_refused(out, fx.try_join(out), Code::kUnauthorized);
}

TEST_CASE("a revoked device gets DEVICE_REVOKED and close 4003", "[hub][limits][admission]") {
  HubFixture fx;
  auto group = new_group();
  Device a(group);
  fx.join(a);
  REQUIRE(eventually([&] { return sql_int(fx.dir.file("relay.db"), "SELECT count(*) FROM devices") == 1; }));
  sql(fx.dir.file("relay.db"), "UPDATE devices SET revoked = 1");
  fx.hub->on_close(a.conn);
  a.reconnect();
  require_refused(a, fx.try_join(a), Code::kDeviceRevoked);
}

TEST_CASE("max_groups: a HELLO for a new group gets STORAGE_FULL once the relay holds the maximum",
          "[hub][limits][storage]") {
  HubOptions options;
  options.relay.max_groups = 2;
  HubFixture fx(options);
  Device a(new_group()), b(new_group()), c(new_group());
  fx.join(a);
  fx.join(b);
  REQUIRE(eventually([&] { return fx.hub->store_stats()->groups == 2; }));
  require_refused(c, fx.try_join(c), Code::kStorageFull);
  // The existing groups keep working.
  CHECK(as<PushAck>(fx.push(a, 1)).cursor == 1);
}

TEST_CASE("max_devices_per_group: a new device key beyond it gets GROUP_FULL", "[hub][limits][devices]") {
  HubOptions options;
  options.relay.max_devices_per_group = 2;
  HubFixture fx(options);
  auto group = new_group();
  Device a(group), b(group), c(group);
  fx.join(a);
  fx.join(b);
  REQUIRE(eventually([&] { return sql_int(fx.dir.file("relay.db"), "SELECT count(*) FROM devices") == 2; }));
  fx.hub->on_close(a.conn);
  require_refused(c, fx.try_join(c), Code::kGroupFull);
  a.reconnect();
  fx.join(a);  // a known device still gets in
}

// ---------------------------------------------------------------------------------------------
// Storage

TEST_CASE("blob size, group quota and storage cap answer 2001 / 2002 / 3003 and keep the session",
          "[hub][limits][storage]") {
  HubOptions options;
  options.limits.max_blob_bytes = 1000;
  options.relay.group_quota_bytes = 2500;
  options.relay.storage_cap_bytes = 4000;
  HubFixture fx(options);
  CHECK(fx.hub->limits().max_frame_bytes >= 1000 + kFrameOverheadBytes);
  Device a(new_group()), b(new_group());
  fx.join(a);
  fx.join(b);
  CHECK(as<Error>(fx.push(a, 1, 1001)).code == code_of(Code::kBlobTooLarge));
  CHECK(as<PushAck>(fx.push(a, 2, 1000)).cursor == 1);
  CHECK(as<PushAck>(fx.push(a, 3, 1000)).cursor == 2);
  const Frame quota = fx.push(a, 4, 1000);
  CHECK(as<Error>(quota).code == code_of(Code::kGroupQuotaExceeded));
  CHECK(as<PushAck>(fx.push(a, 2, 1000)).duplicate);  // a retry of a stored blob is still acknowledged
  CHECK(as<PushAck>(fx.push(b, 1, 1000)).cursor == 1);
  CHECK(as<PushAck>(fx.push(b, 2, 1000)).cursor == 2);  // 4000 bytes stored: the cap
  CHECK(as<Error>(fx.push(b, 3, 1)).code == code_of(Code::kStorageFull));
  CHECK_FALSE(a.conn->close_code().has_value());
  CHECK_FALSE(b.conn->close_code().has_value());
  CHECK(fx.pull(a).blobs.size() == 2);  // reads keep working
  CHECK(fx.hub->metrics().errors(Code::kGroupQuotaExceeded) == 1);
  CHECK(fx.hub->metrics().errors(Code::kStorageFull) == 1);
  CHECK(fx.hub->metrics().errors(Code::kBlobTooLarge) == 1);
}

TEST_CASE("a PUSH's TTL is capped by max_ttl_seconds", "[hub][limits][storage]") {
  HubOptions options;
  options.limits.max_ttl_seconds = 60;
  HubFixture fx(options);
  Device a(new_group());
  fx.join(a);
  as<PushAck>(fx.push(a, 1, 8, 4'000'000'000u));
  as<PushAck>(fx.push(a, 2, 8, 30));
  // Acknowledged pushes reach the SQLite file shortly after their ack (store/push_journal.h).
  REQUIRE(eventually([&] { return sql_int(fx.dir.file("relay.db"), "SELECT count(*) FROM blobs") == 2; }));
  CHECK(sql_int(fx.dir.file("relay.db"), "SELECT max(expires_at_ms - timestamp_ms) FROM blobs") == 60'000);
  CHECK(sql_int(fx.dir.file("relay.db"), "SELECT min(expires_at_ms - timestamp_ms) FROM blobs") == 30'000);
}

// ---------------------------------------------------------------------------------------------
// ACK, LIST_DEVICES, DELETE

TEST_CASE("ACK watermarks are stored: WELCOME.pending_count and LIST_DEVICES use them", "[hub][retention]") {
  HubFixture fx;
  auto group = new_group();
  Device a(group), b(group);
  fx.join(a);
  fx.join(b);
  for (std::uint32_t i = 1; i <= 5; ++i) as<PushAck>(fx.push(a, i));
  fx.hub->on_frame(b.conn, encode(0, Ack{3}));
  fx.hub->on_frame(a.conn, encode(0, Ack{999}));  // beyond any cursor handed out: ignored
  fx.hub->on_frame(a.conn, encode(0, Ack{5}));
  // ACK writes are coalesced: nothing reaches the store before a tick (or a close).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(sql_int(fx.dir.file("relay.db"), "SELECT count(*) FROM devices WHERE acked_cursor > 0") == 0);
  fx.hub->on_tick(Hub::Clock::now());
  // Both devices' ACKs (the tick submits them one by one; they may commit in separate batches).
  REQUIRE(eventually([&] {
    return sql_int(fx.dir.file("relay.db"), "SELECT count(*) FROM devices WHERE acked_cursor = 3") == 1 &&
           sql_int(fx.dir.file("relay.db"), "SELECT count(*) FROM devices WHERE acked_cursor = 5") == 1;
  }));
  fx.hub->on_close(b.conn);
  b.reconnect();
  const Welcome welcome = fx.join(b, 0);  // the device lost its cursor; the relay knows its ACK
  CHECK(welcome.max_cursor == 5);
  CHECK(welcome.pending_count == 2);

  fx.hub->on_close(b.conn);
  const Devices list = as<Devices>(fx.request(a, ListDevices{}));
  REQUIRE(list.devices.size() == 2);
  for (const auto& d : list.devices) {
    if (d.device_id == a.device_id()) {
      CHECK(d.online);
      CHECK(d.acked_cursor == 5);
    } else {
      CHECK(d.device_id == b.device_id());
      CHECK_FALSE(d.online);
      CHECK(d.last_seen > 0);
    }
  }
}

TEST_CASE("DELETE: others get NOT_BLOB_OWNER and keep their session, the sender or force deletes, with DELETE_ACK",
          "[hub][delete]") {
  HubFixture fx;
  auto group = new_group();
  Device a(group), b(group);
  fx.join(a);
  fx.join(b);
  as<PushAck>(fx.push(a, 1));
  as<PushAck>(fx.push(a, 2));
  const Frame refused = fx.request(b, Delete{blob_n(1), false});
  CHECK(as<Error>(refused).code == code_of(Code::kNotBlobOwner));
  CHECK_FALSE(b.conn->close_code().has_value());

  const Frame own = fx.request(a, Delete{blob_n(1), false});  // the sender
  CHECK(as<DeleteAck>(own) == DeleteAck{blob_n(1), true});
  const Frame forced = fx.request(b, Delete{blob_n(2), true});  // force
  CHECK(as<DeleteAck>(forced) == DeleteAck{blob_n(2), true});
  CHECK(fx.hub->metrics().blobs_removed.load() == 2);  // counted before the reply is sent
  CHECK(fx.hub->store_stats()->blobs == 0);
  CHECK(fx.pull(b).blobs.empty());
  // Deleting what is not stored is idempotent: acknowledged, removed = false, for owner or not.
  CHECK(as<DeleteAck>(fx.request(a, Delete{blob_n(1), false})) == DeleteAck{blob_n(1), false});
  CHECK(as<DeleteAck>(fx.request(b, Delete{blob_n(9), false})) == DeleteAck{blob_n(9), false});
  CHECK(fx.hub->metrics().blobs_removed.load() == 2);
  CHECK(fx.hub->metrics().errors(Code::kNotBlobOwner) == 1);
  CHECK_FALSE(a.conn->close_code().has_value());
  CHECK_FALSE(b.conn->close_code().has_value());
}

// ---------------------------------------------------------------------------------------------
// Slow readers, cleanup, metrics

TEST_CASE("ACKs that advance the watermark are free, repeated ones spend the device budget", "[hub][limits][rate]") {
  HubOptions options;
  options.relay.device_messages_per_minute = 3;
  options.relay.rate_limit_strikes = 2;
  HubFixture fx(options);
  auto group = new_group();
  Device pusher(group), reader(group);
  fx.join(reader);
  fx.join(pusher);
  // The pusher has a budget of 3 messages: 3 pushes. The reader ACKs each NOTIFY and more.
  for (std::uint32_t i = 1; i <= 3; ++i) as<PushAck>(fx.push(pusher, i));
  for (Cursor c = 1; c <= 3; ++c) fx.hub->on_frame(reader.conn, encode(0, Ack{c}));
  CHECK(fx.pull(reader).blobs.size() == 3);  // its budget is untouched by the three ACKs
  fx.pull(reader);
  fx.pull(reader);  // 3 of 3 used
  fx.hub->on_frame(reader.conn, encode(0, Ack{3}));  // a repeat: charged, refused, strike 1
  CHECK_FALSE(reader.conn->close_code().has_value());
  fx.hub->on_frame(reader.conn, encode(0, Ack{2}));  // backwards: strike 2 -> closed
  REQUIRE(reader.conn->close_code().has_value());
  CHECK(*reader.conn->close_code() == websocket_close_code(Code::kRateLimited));
}

TEST_CASE("a congested session gets NOTIFY without its inline payload", "[hub][limits][slow]") {
  HubFixture fx;
  auto group = new_group();
  Device pusher(group), fast(group), slow(group);
  fx.join(pusher);
  fx.join(fast);
  fx.join(slow);
  slow.conn->set_congested(true);
  as<PushAck>(fx.push(pusher, 1, 100));
  REQUIRE(fast.conn->wait_for_frames(3));
  REQUIRE(slow.conn->wait_for_frames(3));
  const Notify full = as<Notify>(fast.conn->frame(2));
  const Notify bare = as<Notify>(slow.conn->frame(2));
  REQUIRE(full.payload.has_value());
  CHECK(full.payload->size() == 100);
  CHECK_FALSE(bare.payload.has_value());
  CHECK(bare.size == 100);
  CHECK(bare.cursor == full.cursor);
  CHECK(fx.hub->metrics().notifies.load() == 2);
}

TEST_CASE("cleanup runs from on_tick at its interval and removes expired and acknowledged blobs",
          "[hub][retention][cleanup]") {
  HubOptions options;
  options.relay.cleanup_interval_ms = 60'000;
  options.relay.drop_acked = true;
  HubFixture fx(options);
  auto group = new_group();
  Device a(group), b(group);
  fx.join(a);
  fx.join(b);
  as<PushAck>(fx.push(a, 1, 8, 1));  // expires in 1 s
  as<PushAck>(fx.push(a, 2));
  as<PushAck>(fx.push(a, 3));
  fx.hub->on_frame(a.conn, encode(0, Ack{2}));
  fx.hub->on_frame(b.conn, encode(0, Ack{2}));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // let blob 1 expire (wall clock)

  const auto t0 = Hub::Clock::now();
  fx.hub->on_tick(t0);  // writes both ACKs, then starts the first cleanup run behind them
  REQUIRE(eventually([&] { return fx.hub->metrics().cleanup_runs.load() == 1; }));
  fx.hub->on_tick(t0 + std::chrono::seconds(1));  // within the interval: no new run
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(fx.hub->metrics().cleanup_runs.load() == 1);
  CHECK(fx.hub->metrics().blobs_removed.load() == 2);  // #1 expired, #2 acknowledged by both
  const PullResponse page = fx.pull(b);
  REQUIRE(page.blobs.size() == 1);
  CHECK(page.blobs[0].cursor == 3);
  fx.hub->on_tick(t0 + std::chrono::seconds(61));
  REQUIRE(eventually([&] { return fx.hub->metrics().cleanup_runs.load() == 2; }));
}

TEST_CASE("metrics count sessions, pushes, duplicates, pulls, notifies, errors and commit latency", "[hub][metrics]") {
  HubFixture fx;
  auto group = new_group();
  Device a(group), b(group), bad(group);
  fx.join(a);
  fx.join(b);
  as<PushAck>(fx.push(a, 1));
  as<PushAck>(fx.push(a, 1));  // duplicate
  fx.pull(b);
  const Challenge challenge = fx.open(bad);
  Hello hello = fx.hello_for(bad, challenge);
  hello.device_sig.mutable_bytes()[0] ^= 1;
  fx.hub->on_frame(bad.conn, encode(1, hello));
  require_refused(bad, bad.conn->last_frame(), Code::kUnauthorized);

  const Metrics& m = fx.hub->metrics();
  CHECK(m.sessions_total.load() == 2);
  CHECK(m.pushes.load() == 2);
  CHECK(m.push_duplicates.load() == 1);
  CHECK(m.pulls.load() == 1);
  CHECK(m.notifies.load() == 1);
  CHECK(m.auth_failures.load() == 1);
  CHECK(m.errors(Code::kUnauthorized) == 1);
  CHECK(m.push_commit_latency.count() == 2);
}

TEST_CASE("a shared Metrics object passed in HubOptions is the one the hub counts into", "[hub][metrics]") {
  auto metrics = std::make_shared<Metrics>();
  HubOptions options;
  options.metrics = metrics;
  HubFixture fx(options);
  Device a(new_group());
  fx.join(a);
  CHECK(metrics->sessions_total.load() == 1);
  CHECK(&fx.hub->metrics() == metrics.get());
}

}  // namespace
