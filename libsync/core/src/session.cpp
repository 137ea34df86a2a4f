// SessionMachine: which frame may travel in which direction in which state (see session.h).
//
// Rules:
//  - BYE (either direction) moves an open session to Closing; ERROR never changes the state
//    (the caller decides whether an error is fatal and then calls begin_close()).
//  - In Closing only receiving BYE or ERROR is accepted: the peer may still be saying goodbye.
//  - In Closed nothing is accepted.
//  - Handshake frames are accepted exactly once, in their state; application frames only in
//    Active and only in their direction (client -> relay or relay -> client).
#include "blindsync/core/session.h"

#include <string>

namespace blindsync {
namespace {

bool is_client_to_relay(MessageType type) noexcept {
  switch (type) {
    case MessageType::kPush:
    case MessageType::kPull:
    case MessageType::kAck:
    case MessageType::kDelete:
    case MessageType::kRevokeDevice:
    case MessageType::kListDevices:
    case MessageType::kRegisterPush:
    case MessageType::kUnregisterPush:
      return true;
    default:
      return false;
  }
}

bool is_relay_to_client(MessageType type) noexcept {
  switch (type) {
    case MessageType::kPushAck:
    case MessageType::kPullResponse:
    case MessageType::kDeleteAck:
    case MessageType::kNotify:
    case MessageType::kDeviceRevoked:
    case MessageType::kDevices:
      return true;
    default:
      return false;
  }
}

bool is_handshake(SessionState state) noexcept {
  switch (state) {
    case SessionState::kConnecting:
    case SessionState::kAwaitingHello:
    case SessionState::kVerifying:
    case SessionState::kChallenged:
    case SessionState::kAwaitingWelcome:
      return true;
    default:
      return false;
  }
}

std::string type_label(MessageType type) {
  std::string name(message_type_name(type));
  if (name == "UNKNOWN") {
    static constexpr char kHex[] = "0123456789abcdef";
    const auto v = static_cast<unsigned>(type);
    name += " (0x";
    name += kHex[(v >> 4) & 0xf];
    name += kHex[v & 0xf];
    name += ")";
  }
  return name;
}

// The state after a handshake or application frame, or nullopt when it is out of place.
std::optional<SessionState> next_state(Role role, SessionState state, bool sending, MessageType type) {
  using S = SessionState;
  using T = MessageType;
  if (role == Role::kRelay) {
    if (state == S::kConnecting && sending && type == T::kChallenge) return S::kAwaitingHello;
    if (state == S::kAwaitingHello && !sending && type == T::kHello) return S::kVerifying;
    if (state == S::kVerifying && sending && type == T::kWelcome) return S::kActive;
    if (state == S::kActive && (sending ? is_relay_to_client(type) : is_client_to_relay(type))) return S::kActive;
  } else {
    if (state == S::kConnecting && !sending && type == T::kChallenge) return S::kChallenged;
    if (state == S::kChallenged && sending && type == T::kHello) return S::kAwaitingWelcome;
    if (state == S::kAwaitingWelcome && !sending && type == T::kWelcome) return S::kActive;
    if (state == S::kActive && (sending ? is_client_to_relay(type) : is_relay_to_client(type))) return S::kActive;
  }
  return std::nullopt;
}

// Checks one frame against the rules above and advances state.
Status advance(Role role, SessionState& state, MessageType type, bool sending) {
  const bool control = type == MessageType::kBye || type == MessageType::kError;
  if (state == SessionState::kClosing && control && !sending) return Status();
  if (state != SessionState::kClosing && state != SessionState::kClosed) {
    if (control) {
      if (type == MessageType::kBye) state = SessionState::kClosing;
      return Status();
    }
    if (auto next = next_state(role, state, sending, type)) {
      state = *next;
      return Status();
    }
  }
  std::string message(role == Role::kRelay ? "relay" : "client");
  message += sending ? " cannot send " : " cannot receive ";
  message += type_label(type);
  message += " in state ";
  message += session_state_name(state);
  return Status(Code::kInvalidState, std::move(message));
}

}  // namespace

std::string_view session_state_name(SessionState state) noexcept {
  switch (state) {
    case SessionState::kConnecting: return "CONNECTING";
    case SessionState::kAwaitingHello: return "AWAITING_HELLO";
    case SessionState::kVerifying: return "VERIFYING";
    case SessionState::kChallenged: return "CHALLENGED";
    case SessionState::kAwaitingWelcome: return "AWAITING_WELCOME";
    case SessionState::kActive: return "ACTIVE";
    case SessionState::kClosing: return "CLOSING";
    case SessionState::kClosed: return "CLOSED";
  }
  return "UNKNOWN";
}

SessionMachine::SessionMachine(Role role, Clock::time_point now, std::chrono::milliseconds handshake_timeout)
    : role_(role), handshake_deadline_(now + handshake_timeout) {}

Status SessionMachine::on_receive(MessageType type) { return advance(role_, state_, type, /*sending=*/false); }

Status SessionMachine::on_send(MessageType type) { return advance(role_, state_, type, /*sending=*/true); }

void SessionMachine::begin_close() {
  if (state_ != SessionState::kClosed) state_ = SessionState::kClosing;
}

void SessionMachine::on_closed() { state_ = SessionState::kClosed; }

std::optional<SessionMachine::Clock::time_point> SessionMachine::deadline() const {
  if (!is_handshake(state_)) return std::nullopt;
  return handshake_deadline_;
}

bool SessionMachine::handshake_expired(Clock::time_point now) const {
  return is_handshake(state_) && now >= handshake_deadline_;
}

}  // namespace blindsync
