// SessionCache (libsync/client/src/session_cache.h): which kept session the synchronous Client is
// handed again, against the in-memory relay. The Client-level behaviour (one connect for a run of
// calls, a dead session replaced) is in client_session_test.cpp.
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>

#include "blindsync/auth/identity.h"
#include "in_memory_transport.h"
#include "relay_session.h"
#include "session_cache.h"

namespace blindsync::client_detail {
namespace {

using namespace std::chrono_literals;
using testing::FakeNetwork;
using testing::FakeRelay;

constexpr const char* kUrl = "ws://cache.test/v1/sync";

// One in-memory relay, a group on it, and an empty cache whose clock starts at t0.
struct OneRelay {
  FakeNetwork network;
  std::shared_ptr<FakeRelay> relay = network.add(kUrl);
  auth::SigningKey device = auth::SigningKey::generate();
  auth::SigningKey group_key = auth::SigningKey::generate();
  GroupId group{group_key.public_key()};
  SessionCache cache;
  const SessionCache::Clock::time_point t0 = SessionCache::Clock::now();

  std::unique_ptr<RelaySession> open() {
    SessionParams params;
    params.relay_url = kUrl;
    params.pinned_relay = relay->relay_id();
    params.device_key = &device;
    params.group_id = group;
    params.group_auth_key = &group_key;
    params.device_name = "cache-test";
    params.timeout = 2s;
    auto session = RelaySession::open(network.factory(), params);
    INFO((session ? std::string() : session.error().to_string()));
    REQUIRE(session.has_value());
    return std::move(*session);
  }
};

TEST_CASE("a kept session is handed out again while it is usable, used recently and for the same relay",
          "[client][session-cache]") {
  OneRelay r;
  RelaySession* kept = r.cache.keep(r.group, kUrl, r.open(), r.t0);
  CHECK(r.cache.find(r.group, kUrl, r.t0 + 1s) == kept);
  r.cache.done(r.group, r.t0 + 15s);  // a use restarts the idle clock
  CHECK(r.cache.find(r.group, kUrl, r.t0 + 30s) == kept);

  // Idle for kIdleReuse: closed (BYE) and forgotten.
  CHECK(r.cache.find(r.group, kUrl, r.t0 + 15s + SessionCache::kIdleReuse) == nullptr);
  CHECK(r.cache.find(r.group, kUrl, r.t0 + 16s) == nullptr);  // nothing kept any more

  // Another relay URL for the group (its relays changed): not this session.
  r.cache.keep(r.group, kUrl, r.open(), r.t0);
  CHECK(r.cache.find(r.group, "ws://elsewhere.test/v1/sync", r.t0) == nullptr);
  CHECK(r.cache.find(r.group, kUrl, r.t0) == nullptr);  // the mismatch dropped it

  // A session the relay closed while it sat idle is found dead, not handed out.
  r.cache.keep(r.group, kUrl, r.open(), r.t0);
  r.relay->drop_connections();
  CHECK(r.cache.find(r.group, kUrl, r.t0 + 1s) == nullptr);
}

TEST_CASE("frames that arrived while a session sat idle are dropped when it is handed out again",
          "[client][session-cache]") {
  OneRelay r;
  RelaySession* kept = r.cache.keep(r.group, kUrl, r.open(), r.t0);
  r.relay->broadcast(Frame{0, Notify{BlobId{}, 7, DeviceId{}, 1, 3, std::nullopt}});
  r.relay->broadcast(Frame{0, Notify{BlobId{}, 8, DeviceId{}, 1, 3, std::nullopt}});
  REQUIRE(r.cache.find(r.group, kUrl, r.t0 + 1s) == kept);
  auto next = kept->receive(0ms);  // the NOTIFYs are gone
  REQUIRE_FALSE(next.has_value());
  CHECK(next.error().code() == Code::kTimeout);
  CHECK(kept->usable());
}

}  // namespace
}  // namespace blindsync::client_detail
