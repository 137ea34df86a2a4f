// SessionMachine: the sans-I/O protocol state machine shared by the client and the relay.
//
//   relay : Connecting --send CHALLENGE--> AwaitingHello --recv HELLO--> Verifying
//           --send WELCOME--> Active --send/recv BYE, send fatal ERROR--> Closing --> Closed
//   client: Connecting --recv CHALLENGE--> Challenged --send HELLO--> AwaitingWelcome
//           --recv WELCOME--> Active --> Closing --> Closed
//
// It validates that each frame is allowed in the current state and direction and advances the
// state; it never touches sockets, threads or clocks (time is passed in). A frame out of place
// yields kInvalidState; the caller answers with ERROR 1006 and closes (see DESIGN.md).
// The handshake deadline (HELLO timeout on the relay, WELCOME timeout on the client) is reported
// through deadline()/handshake_expired().
//
// Thread-safety: none; owned by one session.
#pragma once

#include <chrono>
#include <optional>

#include "blindsync/core/messages.h"
#include "blindsync/core/status.h"

namespace blindsync {

enum class Role { kClient, kRelay };

enum class SessionState {
  kConnecting,
  kAwaitingHello,    // relay: CHALLENGE sent
  kVerifying,        // relay: HELLO received, signatures being checked
  kChallenged,       // client: CHALLENGE received
  kAwaitingWelcome,  // client: HELLO sent
  kActive,
  kClosing,
  kClosed,
};

std::string_view session_state_name(SessionState state) noexcept;

class SessionMachine {
 public:
  using Clock = std::chrono::steady_clock;

  SessionMachine(Role role, Clock::time_point now,
                 std::chrono::milliseconds handshake_timeout = std::chrono::milliseconds(kDefaultHelloTimeoutMs));

  // Validates an incoming frame of this type and advances the state.
  Status on_receive(MessageType type);
  // Validates an outgoing frame of this type and advances the state.
  Status on_send(MessageType type);
  // Enters Closing (idempotent); after the transport is gone call on_closed().
  void begin_close();
  void on_closed();

  SessionState state() const noexcept { return state_; }
  Role role() const noexcept { return role_; }
  bool is_active() const noexcept { return state_ == SessionState::kActive; }
  bool is_open() const noexcept { return state_ != SessionState::kClosing && state_ != SessionState::kClosed; }

  // When the handshake must have completed, while it is in progress; nullopt otherwise.
  std::optional<Clock::time_point> deadline() const;
  bool handshake_expired(Clock::time_point now) const;

 private:
  Role role_;
  SessionState state_ = SessionState::kConnecting;
  Clock::time_point handshake_deadline_;
};

}  // namespace blindsync
