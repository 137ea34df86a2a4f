// Byte buffers and their text encodings (lower-case hex, unpadded base64url).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "blindsync/core/status.h"

namespace blindsync {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(ByteView b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::string to_hex(ByteView bytes);
Result<Bytes> from_hex(std::string_view text);

// RFC 4648 section 5 alphabet, no padding on output; padding accepted on input.
std::string to_base64url(ByteView bytes);
Result<Bytes> from_base64url(std::string_view text);

// Standard base64 with padding (RFC 4648 section 4), used for JSON output.
std::string to_base64(ByteView bytes);

}  // namespace blindsync
