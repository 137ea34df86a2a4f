// RFC 6455 framing as the relay speaks it, with no I/O: parses the frame headers a client sends
// and builds the headers the relay sends. The relay reads and writes its WebSocket frames itself
// (net/ws_session.cpp) rather than through Beast's websocket::stream, whose per-connection state
// (a fixed 1.5 KiB read buffer, a timer and its pending wait) was half of what an idle session
// cost (W4 in docs/benchmarks.md). What the relay accepts is deliberately narrow:
//   - client frames must be masked (RFC 6455 5.1) and carry no RSV bit: no extension is ever
//     negotiated (no permessage-deflate);
//   - opcodes are the six of RFC 6455; control frames are final and carry at most 125 bytes;
//   - a length must use its shortest encoding and the 64-bit form must not set its top bit.
// Everything else is a protocol error (close code 1002). Fuzzed by ws_frame_fuzz.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "blindsync/core/bytes.h"

namespace blindsync::relay::ws {

enum class Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

constexpr bool is_control(Opcode opcode) noexcept { return (static_cast<std::uint8_t>(opcode) & 0x8) != 0; }

// RFC 6455 7.4.1 close codes the framing layer sends or checks (1000, the normal closure, is
// wire::kCloseNormal in blindsync/core/wire_format.h).
inline constexpr std::uint16_t kCloseProtocolError = 1002;
inline constexpr std::uint16_t kCloseUnsupportedData = 1003;
inline constexpr std::uint16_t kCloseNoStatus = 1005;  // never on the wire: "the close frame had no code"
inline constexpr std::uint16_t kCloseMessageTooBig = 1009;

inline constexpr std::size_t kMaxControlPayload = 125;
inline constexpr std::size_t kMaxClientHeaderBytes = 14;  // 2 + 8 (length) + 4 (mask)
inline constexpr std::size_t kMaxServerHeaderBytes = 10;  // 2 + 8 (length), never masked

struct FrameHeader {
  bool fin = false;
  Opcode opcode = Opcode::kContinuation;
  std::uint64_t payload_size = 0;
  std::array<std::uint8_t, 4> mask{};
  std::size_t header_size = 0;  // bytes of the header, 6 to 14
};

struct HeaderParse {
  enum class Outcome { kFrame, kNeedMore, kProtocolError };
  Outcome outcome = Outcome::kNeedMore;
  FrameHeader header;          // kFrame only
  std::string_view error;      // kProtocolError only: why, for the close reason and the log
};

// Parses the header of a client-to-server frame at the start of `bytes` (which may hold less
// than a header: kNeedMore, and nothing is consumed). Reads at most kMaxClientHeaderBytes.
HeaderParse parse_client_header(std::span<const std::uint8_t> bytes) noexcept;

// XORs `data` with the frame's mask; `offset` is how far into the frame's payload data starts,
// so a payload can be unmasked in pieces as it arrives.
void unmask(std::span<std::uint8_t> data, const std::array<std::uint8_t, 4>& mask, std::uint64_t offset) noexcept;

// The header of a final, unmasked server frame; returns how many bytes of `out` it took (2, 4
// or 10).
std::size_t write_server_header(Opcode opcode, std::uint64_t payload_size,
                                std::array<std::uint8_t, kMaxServerHeaderBytes>& out) noexcept;

// A close frame's payload: the code in network order, then the reason cut to what fits in 125
// bytes without splitting a UTF-8 sequence.
Bytes make_close_payload(std::uint16_t code, std::string_view reason);

struct CloseParse {
  bool valid = false;
  std::uint16_t code = kCloseNoStatus;  // kCloseNoStatus when the payload is empty
};

// Checks a close frame a client sent (RFC 6455 5.5.1, 7.4): empty, or a code a peer may send
// (1000-1003, 1007-1011, 3000-4999) followed by a UTF-8 reason.
CloseParse parse_close_payload(std::span<const std::uint8_t> payload) noexcept;

}  // namespace blindsync::relay::ws
