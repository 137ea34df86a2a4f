#include "websocket/ws_frame.h"

#include <algorithm>

#include "blindsync/core/utf8.h"

namespace blindsync::relay::ws {
namespace {

constexpr std::uint8_t kFinBit = 0x80;
constexpr std::uint8_t kRsvBits = 0x70;
constexpr std::uint8_t kOpcodeBits = 0x0F;
constexpr std::uint8_t kMaskBit = 0x80;
constexpr std::uint8_t kLengthBits = 0x7F;
constexpr std::uint8_t kLength16 = 126;
constexpr std::uint8_t kLength64 = 127;

bool is_known_opcode(std::uint8_t value) noexcept {
  switch (value) {
    case 0x0: case 0x1: case 0x2: case 0x8: case 0x9: case 0xA:
      return true;
    default:
      return false;
  }
}

HeaderParse protocol_error(std::string_view why) noexcept {
  HeaderParse parse;
  parse.outcome = HeaderParse::Outcome::kProtocolError;
  parse.error = why;
  return parse;
}

// Close codes a peer may put on the wire (RFC 6455 7.4.1/7.4.2; 1004-1006 and 1015 are reserved,
// 1012-1014 are registered with IANA for servers).
bool is_sendable_close_code(std::uint16_t code) noexcept {
  if (code >= 3000 && code <= 4999) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

// The longest prefix of `text` of at most `limit` bytes that ends on a UTF-8 sequence boundary.
std::string_view cut_utf8(std::string_view text, std::size_t limit) noexcept {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  // Step back over continuation bytes (10xxxxxx) to the start of the sequence that was cut.
  while (end > 0 && (static_cast<std::uint8_t>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

}  // namespace

HeaderParse parse_client_header(std::span<const std::uint8_t> bytes) noexcept {
  if (bytes.size() < 2) return {};
  const std::uint8_t first = bytes[0];
  const std::uint8_t second = bytes[1];
  if ((first & kRsvBits) != 0) return protocol_error("reserved bits set");
  const std::uint8_t opcode = first & kOpcodeBits;
  if (!is_known_opcode(opcode)) return protocol_error("unknown opcode");
  if ((second & kMaskBit) == 0) return protocol_error("client frame not masked");

  FrameHeader header;
  header.fin = (first & kFinBit) != 0;
  header.opcode = static_cast<Opcode>(opcode);
  const std::uint8_t length_field = second & kLengthBits;
  std::size_t length_bytes = 0;
  if (length_field == kLength16) length_bytes = 2;
  if (length_field == kLength64) length_bytes = 8;
  if (is_control(header.opcode)) {
    if (!header.fin) return protocol_error("fragmented control frame");
    if (length_field > kMaxControlPayload) return protocol_error("control frame over 125 bytes");
  }
  header.header_size = 2 + length_bytes + 4;
  if (bytes.size() < header.header_size) return {};

  if (length_bytes == 0) {
    header.payload_size = length_field;
  } else {
    std::uint64_t length = 0;
    for (std::size_t i = 0; i < length_bytes; ++i) length = (length << 8) | bytes[2 + i];
    if (length_bytes == 2 && length < kLength16) return protocol_error("length not in its shortest form");
    if (length_bytes == 8) {
      if ((length >> 63) != 0) return protocol_error("64-bit length with its top bit set");
      if (length <= 0xFFFF) return protocol_error("length not in its shortest form");
    }
    header.payload_size = length;
  }
  std::copy_n(bytes.begin() + static_cast<std::ptrdiff_t>(2 + length_bytes), 4, header.mask.begin());
  HeaderParse parse;
  parse.outcome = HeaderParse::Outcome::kFrame;
  parse.header = header;
  return parse;
}

void unmask(std::span<std::uint8_t> data, const std::array<std::uint8_t, 4>& mask, std::uint64_t offset) noexcept {
  std::size_t phase = static_cast<std::size_t>(offset % 4);
  std::size_t i = 0;
  // Byte by byte until the key lines up with phase 0, then four bytes at a time: a 1 MiB push
  // is unmasked at memory speed rather than one byte per iteration.
  for (; i < data.size() && phase != 0; ++i, phase = (phase + 1) % 4) data[i] ^= mask[phase];
  std::uint32_t word_mask = 0;
  std::copy_n(mask.begin(), 4, reinterpret_cast<std::uint8_t*>(&word_mask));
  for (; i + 4 <= data.size(); i += 4) {
    std::uint32_t word = 0;
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(i), 4, reinterpret_cast<std::uint8_t*>(&word));
    word ^= word_mask;
    std::copy_n(reinterpret_cast<const std::uint8_t*>(&word), 4, data.begin() + static_cast<std::ptrdiff_t>(i));
  }
  for (std::size_t k = 0; i < data.size(); ++i, ++k) data[i] ^= mask[k];
}

std::size_t write_server_header(Opcode opcode, std::uint64_t payload_size,
                                std::array<std::uint8_t, kMaxServerHeaderBytes>& out) noexcept {
  out[0] = static_cast<std::uint8_t>(kFinBit | static_cast<std::uint8_t>(opcode));
  if (payload_size < kLength16) {
    out[1] = static_cast<std::uint8_t>(payload_size);
    return 2;
  }
  std::size_t length_bytes = 8;
  if (payload_size <= 0xFFFF) {
    out[1] = kLength16;
    length_bytes = 2;
  } else {
    out[1] = kLength64;
  }
  for (std::size_t i = 0; i < length_bytes; ++i) {
    out[1 + length_bytes - i] = static_cast<std::uint8_t>(payload_size >> (8 * i));
  }
  return 2 + length_bytes;
}

Bytes make_close_payload(std::uint16_t code, std::string_view reason) {
  const std::string_view kept = cut_utf8(reason, kMaxControlPayload - 2);
  Bytes payload;
  payload.reserve(2 + kept.size());
  payload.push_back(static_cast<std::uint8_t>(code >> 8));
  payload.push_back(static_cast<std::uint8_t>(code & 0xFF));
  payload.insert(payload.end(), kept.begin(), kept.end());
  return payload;
}

CloseParse parse_close_payload(std::span<const std::uint8_t> payload) noexcept {
  CloseParse parse;
  if (payload.empty()) {
    parse.valid = true;
    return parse;
  }
  if (payload.size() == 1) return parse;
  parse.code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
  const std::string_view reason(reinterpret_cast<const char*>(payload.data() + 2), payload.size() - 2);
  parse.valid = is_sendable_close_code(parse.code) && is_valid_utf8(reason);
  return parse;
}

}  // namespace blindsync::relay::ws
