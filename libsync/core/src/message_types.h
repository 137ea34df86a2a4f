// Private: mapping between wire type numbers and MessageType, shared by codec and session.
#pragma once

#include <cstdint>
#include <optional>

#include "blindsync/core/messages.h"

namespace blindsync::detail {

// The MessageType for a wire type number, or nullopt when v1 has no such type.
std::optional<MessageType> message_type_from_wire(std::uint64_t value) noexcept;

}  // namespace blindsync::detail
