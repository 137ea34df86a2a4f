// SessionMachine: happy paths, deadline, and a table of every (role, state, direction, type):
// the frames listed in kAllowed advance as listed, every other combination is kInvalidState.
#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "blindsync/core/session.h"
#include "sample_frames.h"

using namespace blindsync;
using namespace std::chrono_literals;
using S = SessionState;
using T = MessageType;

namespace {

enum class Dir { kSend, kReceive };

struct Allowed {
  Role role;
  S state;
  Dir dir;
  T type;
  S next;
};

// The protocol, written out independently of the implementation.
std::vector<Allowed> allowed_table() {
  std::vector<Allowed> t;
  // Handshake.
  t.push_back({Role::kRelay, S::kConnecting, Dir::kSend, T::kChallenge, S::kAwaitingHello});
  t.push_back({Role::kRelay, S::kAwaitingHello, Dir::kReceive, T::kHello, S::kVerifying});
  t.push_back({Role::kRelay, S::kVerifying, Dir::kSend, T::kWelcome, S::kActive});
  t.push_back({Role::kClient, S::kConnecting, Dir::kReceive, T::kChallenge, S::kChallenged});
  t.push_back({Role::kClient, S::kChallenged, Dir::kSend, T::kHello, S::kAwaitingWelcome});
  t.push_back({Role::kClient, S::kAwaitingWelcome, Dir::kReceive, T::kWelcome, S::kActive});
  // Active traffic.
  for (T type : {T::kPush, T::kPull, T::kAck, T::kDelete, T::kRevokeDevice, T::kListDevices, T::kRegisterPush,
                 T::kUnregisterPush}) {
    t.push_back({Role::kClient, S::kActive, Dir::kSend, type, S::kActive});
    t.push_back({Role::kRelay, S::kActive, Dir::kReceive, type, S::kActive});
  }
  for (T type : {T::kPushAck, T::kPullResponse, T::kNotify, T::kDeleteAck, T::kDeviceRevoked, T::kDevices}) {
    t.push_back({Role::kRelay, S::kActive, Dir::kSend, type, S::kActive});
    t.push_back({Role::kClient, S::kActive, Dir::kReceive, type, S::kActive});
  }
  // BYE and ERROR in every open state, both directions; in Closing only received.
  for (Role role : {Role::kRelay, Role::kClient}) {
    const std::vector<S> open = role == Role::kRelay
                                    ? std::vector<S>{S::kConnecting, S::kAwaitingHello, S::kVerifying, S::kActive}
                                    : std::vector<S>{S::kConnecting, S::kChallenged, S::kAwaitingWelcome, S::kActive};
    for (S state : open) {
      for (Dir dir : {Dir::kSend, Dir::kReceive}) {
        t.push_back({role, state, dir, T::kBye, S::kClosing});
        t.push_back({role, state, dir, T::kError, state});
      }
    }
    t.push_back({role, S::kClosing, Dir::kReceive, T::kBye, S::kClosing});
    t.push_back({role, S::kClosing, Dir::kReceive, T::kError, S::kClosing});
  }
  return t;
}

const SessionMachine::Clock::time_point kT0{std::chrono::seconds(1000)};

// A machine of `role` driven into `state` through the normal path.
SessionMachine machine_in(Role role, S state) {
  SessionMachine m(role, kT0, 10s);
  auto step = [&](Dir dir, T type) {
    const Status st = dir == Dir::kSend ? m.on_send(type) : m.on_receive(type);
    REQUIRE(st.is_ok());
  };
  if (state == S::kConnecting) return m;
  if (role == Role::kRelay) {
    step(Dir::kSend, T::kChallenge);
    if (state == S::kAwaitingHello) return m;
    step(Dir::kReceive, T::kHello);
    if (state == S::kVerifying) return m;
    step(Dir::kSend, T::kWelcome);
  } else {
    step(Dir::kReceive, T::kChallenge);
    if (state == S::kChallenged) return m;
    step(Dir::kSend, T::kHello);
    if (state == S::kAwaitingWelcome) return m;
    step(Dir::kReceive, T::kWelcome);
  }
  if (state == S::kActive) return m;
  m.begin_close();
  if (state == S::kClosing) return m;
  m.on_closed();
  return m;
}

std::vector<S> states_of(Role role) {
  if (role == Role::kRelay) {
    return {S::kConnecting, S::kAwaitingHello, S::kVerifying, S::kActive, S::kClosing, S::kClosed};
  }
  return {S::kConnecting, S::kChallenged, S::kAwaitingWelcome, S::kActive, S::kClosing, S::kClosed};
}

}  // namespace

TEST_CASE("relay happy path: challenge, hello, welcome, traffic, bye", "[session]") {
  SessionMachine m(Role::kRelay, kT0);
  CHECK(m.state() == S::kConnecting);
  CHECK(m.is_open());
  REQUIRE(m.on_send(T::kChallenge).is_ok());
  CHECK(m.state() == S::kAwaitingHello);
  REQUIRE(m.on_receive(T::kHello).is_ok());
  CHECK(m.state() == S::kVerifying);
  REQUIRE(m.on_send(T::kWelcome).is_ok());
  CHECK(m.is_active());
  REQUIRE(m.on_receive(T::kPush).is_ok());
  REQUIRE(m.on_send(T::kPushAck).is_ok());
  REQUIRE(m.on_send(T::kNotify).is_ok());
  REQUIRE(m.on_receive(T::kPull).is_ok());
  REQUIRE(m.on_send(T::kPullResponse).is_ok());
  REQUIRE(m.on_receive(T::kError).is_ok());
  CHECK(m.is_active());  // an ERROR alone does not close
  REQUIRE(m.on_receive(T::kBye).is_ok());
  CHECK(m.state() == S::kClosing);
  CHECK_FALSE(m.is_open());
  m.on_closed();
  CHECK(m.state() == S::kClosed);
}

TEST_CASE("client happy path: challenge, hello, welcome, traffic, close", "[session]") {
  SessionMachine m(Role::kClient, kT0);
  REQUIRE(m.on_receive(T::kChallenge).is_ok());
  CHECK(m.state() == S::kChallenged);
  REQUIRE(m.on_send(T::kHello).is_ok());
  CHECK(m.state() == S::kAwaitingWelcome);
  REQUIRE(m.on_receive(T::kWelcome).is_ok());
  CHECK(m.is_active());
  REQUIRE(m.on_send(T::kPush).is_ok());
  REQUIRE(m.on_receive(T::kPushAck).is_ok());
  REQUIRE(m.on_send(T::kListDevices).is_ok());
  REQUIRE(m.on_receive(T::kDevices).is_ok());
  REQUIRE(m.on_send(T::kBye).is_ok());
  CHECK(m.state() == S::kClosing);
  REQUIRE(m.on_receive(T::kBye).is_ok());  // the relay's own goodbye crossing ours
  m.begin_close();                          // idempotent
  CHECK(m.state() == S::kClosing);
  m.on_closed();
  m.begin_close();  // never reopens Closed
  CHECK(m.state() == S::kClosed);
}

TEST_CASE("every frame out of place is INVALID_STATE, for every role, state, direction and type",
          "[session]") {
  const auto table = allowed_table();
  auto types = test::all_message_types();
  types.push_back(static_cast<T>(0x7f));  // not a v1 type at all
  int allowed = 0;
  int refused = 0;
  for (Role role : {Role::kRelay, Role::kClient}) {
    for (S state : states_of(role)) {
      for (Dir dir : {Dir::kSend, Dir::kReceive}) {
        for (T type : types) {
          std::optional<S> expected;
          for (const auto& a : table) {
            if (a.role == role && a.state == state && a.dir == dir && a.type == type) expected = a.next;
          }
          SessionMachine m = machine_in(role, state);
          REQUIRE(m.state() == state);
          const Status st = dir == Dir::kSend ? m.on_send(type) : m.on_receive(type);
          INFO((role == Role::kRelay ? "relay " : "client ") << session_state_name(state)
                                                            << (dir == Dir::kSend ? " send " : " receive ")
                                                            << message_type_name(type));
          if (expected) {
            CHECK(st.is_ok());
            CHECK(m.state() == *expected);
            ++allowed;
          } else {
            REQUIRE_FALSE(st.is_ok());
            CHECK(st.code() == Code::kInvalidState);
            CHECK(st.message().find(std::string(message_type_name(type))) != std::string::npos);
            CHECK(st.message().find(std::string(session_state_name(state))) != std::string::npos);
            CHECK(m.state() == state);  // a refused frame changes nothing
            ++refused;
          }
        }
      }
    }
  }
  CHECK(static_cast<std::size_t>(allowed) == table.size());
  CHECK(refused > 350);
}

TEST_CASE("out-of-place messages read clearly", "[session]") {
  SessionMachine relay = machine_in(Role::kRelay, S::kAwaitingHello);
  CHECK(relay.on_receive(T::kPush).message() == "relay cannot receive PUSH in state AWAITING_HELLO");
  SessionMachine client = machine_in(Role::kClient, S::kActive);
  CHECK(client.on_receive(T::kPush).message() == "client cannot receive PUSH in state ACTIVE");
  CHECK(client.on_send(static_cast<T>(0x7f)).message() == "client cannot send UNKNOWN (0x7f) in state ACTIVE");
}

TEST_CASE("handshake deadline runs from construction until Active", "[session]") {
  for (Role role : {Role::kRelay, Role::kClient}) {
    SessionMachine m(role, kT0, 2500ms);
    REQUIRE(m.deadline().has_value());
    CHECK(*m.deadline() == kT0 + 2500ms);
    CHECK_FALSE(m.handshake_expired(kT0));
    CHECK_FALSE(m.handshake_expired(kT0 + 2499ms));
    CHECK(m.handshake_expired(kT0 + 2500ms));
    CHECK(m.handshake_expired(kT0 + 1h));
    // Still pending mid-handshake.
    REQUIRE((role == Role::kRelay ? m.on_send(T::kChallenge) : m.on_receive(T::kChallenge)).is_ok());
    CHECK(*m.deadline() == kT0 + 2500ms);
    CHECK(m.handshake_expired(kT0 + 3s));
  }
  SessionMachine active = machine_in(Role::kRelay, S::kActive);
  CHECK_FALSE(active.deadline().has_value());
  CHECK_FALSE(active.handshake_expired(kT0 + 1h));
  SessionMachine closing = machine_in(Role::kClient, S::kClosing);
  CHECK_FALSE(closing.deadline().has_value());
  CHECK_FALSE(closing.handshake_expired(kT0 + 1h));
}

TEST_CASE("default handshake timeout is the HELLO timeout", "[session]") {
  SessionMachine m(Role::kRelay, kT0);
  REQUIRE(m.deadline().has_value());
  CHECK(*m.deadline() == kT0 + std::chrono::milliseconds(kDefaultHelloTimeoutMs));
}

TEST_CASE("a session closed during the handshake has no deadline", "[session]") {
  SessionMachine m(Role::kRelay, kT0);
  REQUIRE(m.on_send(T::kChallenge).is_ok());
  REQUIRE(m.on_send(T::kBye).is_ok());
  CHECK(m.state() == S::kClosing);
  CHECK_FALSE(m.deadline().has_value());
  CHECK(m.on_send(T::kError).code() == Code::kInvalidState);
}

TEST_CASE("session_state_name names every state", "[session]") {
  CHECK(session_state_name(S::kConnecting) == "CONNECTING");
  CHECK(session_state_name(S::kAwaitingHello) == "AWAITING_HELLO");
  CHECK(session_state_name(S::kVerifying) == "VERIFYING");
  CHECK(session_state_name(S::kChallenged) == "CHALLENGED");
  CHECK(session_state_name(S::kAwaitingWelcome) == "AWAITING_WELCOME");
  CHECK(session_state_name(S::kActive) == "ACTIVE");
  CHECK(session_state_name(S::kClosing) == "CLOSING");
  CHECK(session_state_name(S::kClosed) == "CLOSED");
}
