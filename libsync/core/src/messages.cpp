// Names of message types and the type of a Message variant.
#include "blindsync/core/messages.h"

#include <type_traits>

#include "message_types.h"

namespace blindsync {
namespace {

template <typename T>
constexpr MessageType type_for() noexcept {
  if constexpr (std::is_same_v<T, Hello>) return MessageType::kHello;
  else if constexpr (std::is_same_v<T, Welcome>) return MessageType::kWelcome;
  else if constexpr (std::is_same_v<T, Challenge>) return MessageType::kChallenge;
  else if constexpr (std::is_same_v<T, Bye>) return MessageType::kBye;
  else if constexpr (std::is_same_v<T, Push>) return MessageType::kPush;
  else if constexpr (std::is_same_v<T, PushAck>) return MessageType::kPushAck;
  else if constexpr (std::is_same_v<T, Pull>) return MessageType::kPull;
  else if constexpr (std::is_same_v<T, PullResponse>) return MessageType::kPullResponse;
  else if constexpr (std::is_same_v<T, Ack>) return MessageType::kAck;
  else if constexpr (std::is_same_v<T, Notify>) return MessageType::kNotify;
  else if constexpr (std::is_same_v<T, Delete>) return MessageType::kDelete;
  else if constexpr (std::is_same_v<T, DeleteAck>) return MessageType::kDeleteAck;
  else if constexpr (std::is_same_v<T, RevokeDevice>) return MessageType::kRevokeDevice;
  else if constexpr (std::is_same_v<T, DeviceRevoked>) return MessageType::kDeviceRevoked;
  else if constexpr (std::is_same_v<T, ListDevices>) return MessageType::kListDevices;
  else if constexpr (std::is_same_v<T, Devices>) return MessageType::kDevices;
  else if constexpr (std::is_same_v<T, RegisterPush>) return MessageType::kRegisterPush;
  else if constexpr (std::is_same_v<T, UnregisterPush>) return MessageType::kUnregisterPush;
  else {
    static_assert(std::is_same_v<T, Error>, "every Message alternative needs a MessageType");
    return MessageType::kError;
  }
}

}  // namespace

std::string_view message_type_name(MessageType type) noexcept {
  switch (type) {
    case MessageType::kHello: return "HELLO";
    case MessageType::kWelcome: return "WELCOME";
    case MessageType::kChallenge: return "CHALLENGE";
    case MessageType::kBye: return "BYE";
    case MessageType::kPush: return "PUSH";
    case MessageType::kPushAck: return "PUSH_ACK";
    case MessageType::kPull: return "PULL";
    case MessageType::kPullResponse: return "PULL_RESPONSE";
    case MessageType::kAck: return "ACK";
    case MessageType::kNotify: return "NOTIFY";
    case MessageType::kDelete: return "DELETE";
    case MessageType::kDeleteAck: return "DELETE_ACK";
    case MessageType::kRevokeDevice: return "REVOKE_DEVICE";
    case MessageType::kDeviceRevoked: return "DEVICE_REVOKED";
    case MessageType::kListDevices: return "LIST_DEVICES";
    case MessageType::kDevices: return "DEVICES";
    case MessageType::kRegisterPush: return "REGISTER_PUSH";
    case MessageType::kUnregisterPush: return "UNREGISTER_PUSH";
    case MessageType::kError: return "ERROR";
  }
  return "UNKNOWN";
}

MessageType type_of(const Message& message) noexcept {
  return std::visit([](const auto& m) { return type_for<std::decay_t<decltype(m)>>(); }, message);
}

namespace detail {

std::optional<MessageType> message_type_from_wire(std::uint64_t value) noexcept {
  if (value > 0xff) return std::nullopt;
  const auto type = static_cast<MessageType>(value);
  if (message_type_name(type) == "UNKNOWN") return std::nullopt;
  return type;
}

}  // namespace detail
}  // namespace blindsync
