// Unit tests of relay/src/websocket: the headers of client frames (RFC 6455 5.2) as the relay
// parses them, unmasking in pieces, the headers the relay writes, close payloads (5.5.1, 7.4) and
// the handshake's Sec-WebSocket-Accept (4.2.2). Expected bytes are written out by hand or built by
// the helpers below from the RFC's layout, never by the code under test.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "blindsync/core/bytes.h"
#include "blindsync/core/utf8.h"
#include "store_fixture.h"  // payload_n: deterministic bytes
#include "websocket/ws_frame.h"
#include "websocket/ws_handshake.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay::ws;
using blindsync::relay::test::payload_n;
using Outcome = HeaderParse::Outcome;
using Mask = std::array<std::uint8_t, 4>;

constexpr Mask kMask{0x37, 0xFA, 0x21, 0x3D};  // the mask of RFC 6455 5.7's examples
constexpr std::uint64_t kTopBit = std::uint64_t{1} << 63;

std::uint8_t byte_of(Opcode opcode) { return static_cast<std::uint8_t>(opcode); }

// `value` big-endian in `width` bytes.
Bytes big_endian(std::uint64_t value, std::size_t width) {
  Bytes out(width);
  for (std::size_t i = 0; i < width; ++i) out[width - 1 - i] = static_cast<std::uint8_t>(value >> (8 * i));
  return out;
}

// A client frame header byte by byte: `first` (FIN, RSV, opcode), the mask bit and the 7-bit
// length field, the extended length (`width` bytes of `length`: 0, 2 or 8), then the mask.
Bytes raw_header(std::uint8_t first, std::uint8_t length_field, std::size_t width, std::uint64_t length,
                 bool masked = true, const Mask& mask = kMask) {
  Bytes out{first, static_cast<std::uint8_t>((masked ? 0x80 : 0x00) | length_field)};
  const Bytes extended = big_endian(length, width);
  out.insert(out.end(), extended.begin(), extended.end());
  if (masked) out.insert(out.end(), mask.begin(), mask.end());
  return out;
}

// The header a conforming client sends: the shortest length form (RFC 6455 5.2).
Bytes client_header(Opcode opcode, std::uint64_t size, bool fin = true, const Mask& mask = kMask) {
  const auto first = static_cast<std::uint8_t>((fin ? 0x80 : 0x00) | byte_of(opcode));
  if (size <= 125) return raw_header(first, static_cast<std::uint8_t>(size), 0, 0, true, mask);
  if (size <= 0xFFFF) return raw_header(first, 126, 2, size, true, mask);
  return raw_header(first, 127, 8, size, true, mask);
}

HeaderParse parse(const Bytes& bytes) { return parse_client_header(std::span<const std::uint8_t>(bytes)); }

void check_frame(const Bytes& bytes, bool fin, Opcode opcode, std::uint64_t size, std::size_t header_size,
                 const Mask& mask = kMask) {
  INFO("header " << to_hex(bytes));
  const HeaderParse result = parse(bytes);
  REQUIRE(result.outcome == Outcome::kFrame);
  CHECK(result.error.empty());
  CHECK(result.header.fin == fin);
  CHECK(result.header.opcode == opcode);
  CHECK(result.header.payload_size == size);
  CHECK(result.header.header_size == header_size);
  CHECK(result.header.mask == mask);
}

void check_protocol_error(const Bytes& bytes) {
  INFO("header " << to_hex(bytes));
  const HeaderParse result = parse(bytes);
  CHECK(result.outcome == Outcome::kProtocolError);
  CHECK_FALSE(result.error.empty());
}

constexpr std::array kDataOpcodes{Opcode::kContinuation, Opcode::kText, Opcode::kBinary};
constexpr std::array kControlOpcodes{Opcode::kClose, Opcode::kPing, Opcode::kPong};
constexpr std::array kAllOpcodes{Opcode::kContinuation, Opcode::kText, Opcode::kBinary,
                                 Opcode::kClose,        Opcode::kPing, Opcode::kPong};

// RFC 6455 5.3 as written: octet i of the payload is XORed with octet (i MOD 4) of the mask.
Bytes naive_unmask(Bytes data, const Mask& mask, std::uint64_t offset) {
  for (std::size_t i = 0; i < data.size(); ++i) data[i] ^= mask[static_cast<std::size_t>((offset + i) % 4)];
  return data;
}

// Sized up front: GCC 12 warns (-Warray-bounds, a false positive) on an insert after big_endian().
Bytes close_payload(std::uint16_t code, std::string_view reason = {}) {
  Bytes out(2 + reason.size());
  const Bytes code_bytes = big_endian(code, 2);
  std::copy(code_bytes.begin(), code_bytes.end(), out.begin());
  std::copy(reason.begin(), reason.end(), out.begin() + 2);
  return out;
}

CloseParse parse_close(const Bytes& payload) {
  return parse_close_payload(std::span<const std::uint8_t>(payload));
}

std::string repeat(std::string_view piece, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += piece;
  return out;
}

// ---- parse_client_header ----------------------------------------------------------------------

TEST_CASE("a client header with a 7-bit length parses to its fields in 6 bytes", "[websocket][frame]") {
  for (const Opcode opcode : kAllOpcodes) {
    for (const std::uint64_t size : {0u, 1u, 4u, 124u, 125u}) {
      check_frame(client_header(opcode, size), true, opcode, size, 6);
    }
  }
  // RFC 6455 5.7: a single-frame masked text message "Hello".
  check_frame(Bytes{0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D}, true, Opcode::kText, 5, 6);
}

TEST_CASE("a data frame header keeps FIN clear when the message continues", "[websocket][frame]") {
  for (const Opcode opcode : kDataOpcodes) {
    check_frame(client_header(opcode, 7, false), false, opcode, 7, 6);
    check_frame(client_header(opcode, 300, false), false, opcode, 300, 8);
    check_frame(client_header(opcode, 70000, false), false, opcode, 70000, 14);
  }
}

TEST_CASE("a client header with a 16-bit length covers 126 to 65535 in 8 bytes", "[websocket][frame]") {
  for (const Opcode opcode : kDataOpcodes) {
    for (const std::uint64_t size : {126u, 127u, 255u, 256u, 1000u, 65534u, 65535u}) {
      const Bytes header = client_header(opcode, size);
      REQUIRE(header.size() == 8);
      CHECK(header[1] == (0x80 | 126));
      check_frame(header, true, opcode, size, 8);
    }
  }
  // Spelled out: binary, 126 bytes.
  check_frame(Bytes{0x82, 0xFE, 0x00, 0x7E, 1, 2, 3, 4}, true, Opcode::kBinary, 126, 8, Mask{1, 2, 3, 4});
  check_frame(Bytes{0x82, 0xFE, 0xFF, 0xFF, 9, 8, 7, 6}, true, Opcode::kBinary, 65535, 8, Mask{9, 8, 7, 6});
}

TEST_CASE("a client header with a 64-bit length covers 65536 to 2^63-1 in 14 bytes", "[websocket][frame]") {
  for (const Opcode opcode : kDataOpcodes) {
    for (const std::uint64_t size : {std::uint64_t{65536}, std::uint64_t{65537}, std::uint64_t{1} << 20,
                                     (std::uint64_t{1} << 32) + 5, kTopBit - 1}) {
      const Bytes header = client_header(opcode, size);
      REQUIRE(header.size() == 14);
      check_frame(header, true, opcode, size, 14);
    }
  }
  // Spelled out: binary, 65536 bytes.
  check_frame(Bytes{0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 0xA1, 0xB2, 0xC3, 0xD4}, true, Opcode::kBinary, 65536,
              14, Mask{0xA1, 0xB2, 0xC3, 0xD4});
}

TEST_CASE("the mask is taken from the four bytes after the length", "[websocket][frame]") {
  const std::vector<Mask> masks{
      {0, 0, 0, 0}, {0xFF, 0xFF, 0xFF, 0xFF}, {0x01, 0x02, 0x03, 0x04}, {0x80, 0x00, 0x7F, 0xFE}};
  for (const Mask& mask : masks) {
    for (const std::uint64_t size : {5u, 300u, 70000u}) {
      const Bytes header = client_header(Opcode::kBinary, size, true, mask);
      check_frame(header, true, Opcode::kBinary, size, header.size(), mask);
    }
  }
}

TEST_CASE("bytes after the header do not change what the header parses to", "[websocket][frame]") {
  for (const std::uint64_t size : {3u, 126u, 65536u}) {
    Bytes frame = client_header(Opcode::kBinary, size);
    const std::size_t header_size = frame.size();
    const Bytes tail = payload_n(static_cast<std::uint32_t>(size), 40);
    frame.insert(frame.end(), tail.begin(), tail.end());
    check_frame(frame, true, Opcode::kBinary, size, header_size);
  }
}

TEST_CASE("every prefix shorter than a valid header needs more bytes", "[websocket][frame]") {
  std::vector<Bytes> headers;
  for (const Opcode opcode : kAllOpcodes) headers.push_back(client_header(opcode, 0));
  for (const Opcode opcode : kControlOpcodes) headers.push_back(client_header(opcode, 125));
  for (const std::uint64_t size :
       {std::uint64_t{125}, std::uint64_t{126}, std::uint64_t{65535}, std::uint64_t{65536}, kTopBit - 1}) {
    headers.push_back(client_header(Opcode::kBinary, size));
    headers.push_back(client_header(Opcode::kContinuation, size, false));
  }
  for (const Bytes& header : headers) {
    INFO("header " << to_hex(header));
    REQUIRE(parse(header).outcome == Outcome::kFrame);
    for (std::size_t n = 0; n < header.size(); ++n) {
      INFO("prefix of " << n << " bytes");
      const HeaderParse result = parse_client_header(std::span<const std::uint8_t>(header.data(), n));
      CHECK(result.outcome == Outcome::kNeedMore);
      CHECK(result.error.empty());
    }
  }
}

TEST_CASE("any RSV bit is a protocol error", "[websocket][frame][hostile]") {
  for (const std::uint8_t rsv : {0x10, 0x20, 0x40, 0x30, 0x50, 0x60, 0x70}) {
    for (const Opcode opcode : kAllOpcodes) {
      for (const std::uint64_t size : {0u, 100u, 1000u, 100000u}) {
        if (is_control(opcode) && size > 125) continue;
        Bytes header = client_header(opcode, size);
        REQUIRE(parse(header).outcome == Outcome::kFrame);
        header[0] |= rsv;
        check_protocol_error(header);
      }
    }
  }
}

TEST_CASE("each opcode RFC 6455 does not define is a protocol error", "[websocket][frame][hostile]") {
  for (const std::uint8_t opcode : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    for (const std::uint8_t fin : {0x80, 0x00}) {
      check_protocol_error(raw_header(static_cast<std::uint8_t>(fin | opcode), 0, 0, 0));
      check_protocol_error(raw_header(static_cast<std::uint8_t>(fin | opcode), 10, 0, 0));
      check_protocol_error(raw_header(static_cast<std::uint8_t>(fin | opcode), 126, 2, 300));
      check_protocol_error(raw_header(static_cast<std::uint8_t>(fin | opcode), 127, 8, 70000));
    }
  }
}

TEST_CASE("an unmasked client frame is a protocol error", "[websocket][frame][hostile]") {
  for (const Opcode opcode : kAllOpcodes) {
    const auto first = static_cast<std::uint8_t>(0x80 | byte_of(opcode));
    check_protocol_error(raw_header(first, 0, 0, 0, false));
    check_protocol_error(raw_header(first, 5, 0, 0, false));
    // An unmasked header is 4 bytes shorter: padded so that "need more" is not an excuse.
    Bytes padded = raw_header(first, 126, 2, 300, false);
    padded.resize(14, 0xAA);
    check_protocol_error(padded);
    padded = raw_header(first, 127, 8, 70000, false);
    padded.resize(14, 0xAA);
    check_protocol_error(padded);
  }
  // What a server writes, sent back by a client: "Hello" unmasked (RFC 6455 5.7).
  check_protocol_error(Bytes{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
}

TEST_CASE("a control frame that is not final is a protocol error", "[websocket][frame][hostile]") {
  for (const Opcode opcode : kControlOpcodes) {
    for (const std::uint64_t size : {0u, 2u, 125u}) {
      REQUIRE(parse(client_header(opcode, size, true)).outcome == Outcome::kFrame);
      check_protocol_error(client_header(opcode, size, false));
    }
  }
}

TEST_CASE("a control frame with more than 125 bytes is a protocol error", "[websocket][frame][hostile]") {
  for (const Opcode opcode : kControlOpcodes) {
    const auto first = static_cast<std::uint8_t>(0x80 | byte_of(opcode));
    check_frame(raw_header(first, 125, 0, 0), true, opcode, 125, 6);
    check_protocol_error(raw_header(first, 126, 2, 126));
    check_protocol_error(raw_header(first, 126, 2, 65535));
    check_protocol_error(raw_header(first, 127, 8, 65536));
    check_protocol_error(raw_header(first, 127, 8, kTopBit - 1));
    // A length field of 126 or 127 is refused even when what follows would say 125 or less.
    check_protocol_error(raw_header(first, 126, 2, 100));
    check_protocol_error(raw_header(first, 127, 8, 0));
  }
}

TEST_CASE("a length not in its shortest form is a protocol error", "[websocket][frame][hostile]") {
  for (const Opcode opcode : kDataOpcodes) {
    const auto first = static_cast<std::uint8_t>(0x80 | byte_of(opcode));
    // 16-bit form for what fits in 7 bits.
    for (const std::uint64_t size : {0u, 1u, 100u, 125u}) {
      check_protocol_error(raw_header(first, 126, 2, size));
    }
    check_frame(raw_header(first, 126, 2, 126), true, opcode, 126, 8);
    // 64-bit form for what fits in 7 or 16 bits.
    for (const std::uint64_t size : {0u, 100u, 125u, 126u, 1000u, 65535u}) {
      check_protocol_error(raw_header(first, 127, 8, size));
    }
    check_frame(raw_header(first, 127, 8, 65536), true, opcode, 65536, 14);
  }
}

TEST_CASE("a 64-bit length with its top bit set is a protocol error", "[websocket][frame][hostile]") {
  for (const std::uint64_t size : {kTopBit, kTopBit + 1, kTopBit + 65536, ~std::uint64_t{0}}) {
    check_protocol_error(raw_header(0x82, 127, 8, size));
    check_protocol_error(raw_header(0x00, 127, 8, size));
  }
  check_frame(raw_header(0x82, 127, 8, kTopBit - 1), true, Opcode::kBinary, kTopBit - 1, 14);
}

// ---- unmask -----------------------------------------------------------------------------------

TEST_CASE("unmask XORs each byte with the mask byte at its payload position", "[websocket][unmask]") {
  const std::vector<Mask> masks{kMask, {0xFF, 0x00, 0xFF, 0x00}, {0x01, 0x02, 0x04, 0x80}};
  for (const Mask& mask : masks) {
    for (std::size_t size = 0; size <= 70; ++size) {
      const Bytes plain = payload_n(static_cast<std::uint32_t>(size + 1), size);
      for (const std::uint64_t offset :
           {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{3}, std::uint64_t{4},
            std::uint64_t{5}, std::uint64_t{6}, std::uint64_t{7}, (std::uint64_t{1} << 32) + 3,
            ~std::uint64_t{0}}) {
        INFO("size " << size << ", offset " << offset);
        Bytes data = plain;
        unmask(data, mask, offset);
        CHECK(data == naive_unmask(plain, mask, offset));
        unmask(data, mask, offset);  // XOR twice: back to the start
        CHECK(data == plain);
      }
    }
  }
}

TEST_CASE("unmask works on a span that does not start on a word boundary", "[websocket][unmask]") {
  Bytes buffer = payload_n(99, 80);
  for (std::size_t start = 0; start < 8; ++start) {
    for (std::size_t size = 0; start + size <= buffer.size(); size += 7) {
      INFO("start " << start << ", size " << size);
      Bytes data = buffer;
      unmask(std::span<std::uint8_t>(data.data() + start, size), kMask, 0);
      Bytes expected = buffer;
      const Bytes piece = naive_unmask(Bytes(buffer.begin() + static_cast<std::ptrdiff_t>(start),
                                             buffer.begin() + static_cast<std::ptrdiff_t>(start + size)),
                                       kMask, 0);
      std::copy(piece.begin(), piece.end(), expected.begin() + static_cast<std::ptrdiff_t>(start));
      CHECK(data == expected);  // and nothing outside the span is touched
    }
  }
}

TEST_CASE("a payload unmasked in two pieces equals the payload unmasked whole", "[websocket][unmask]") {
  for (std::size_t size = 0; size <= 70; ++size) {
    const Bytes masked = payload_n(static_cast<std::uint32_t>(1000 + size), size);
    for (std::uint64_t start = 0; start < 8; ++start) {
      const Bytes expected = naive_unmask(masked, kMask, start);
      for (std::size_t split = 0; split <= size; ++split) {
        INFO("size " << size << ", first piece at offset " << start << ", split at " << split);
        Bytes data = masked;
        unmask(std::span<std::uint8_t>(data.data(), split), kMask, start);
        unmask(std::span<std::uint8_t>(data.data() + split, size - split), kMask, start + split);
        CHECK(data == expected);
      }
    }
  }
}

TEST_CASE("unmasking RFC 6455's masked Hello gives Hello", "[websocket][unmask]") {
  Bytes data{0x7f, 0x9f, 0x4d, 0x51, 0x58};
  unmask(data, kMask, 0);
  CHECK(std::string(data.begin(), data.end()) == "Hello");
}

// ---- write_server_header ----------------------------------------------------------------------

TEST_CASE("a server header uses the shortest length form, big-endian, in 2, 4 or 10 bytes",
          "[websocket][server]") {
  struct Case {
    std::uint64_t size;
    Bytes bytes;
  };
  const std::vector<Case> cases{
      {0, {0x82, 0x00}},
      {5, {0x82, 0x05}},
      {125, {0x82, 0x7D}},
      {126, {0x82, 0x7E, 0x00, 0x7E}},
      {0x1234, {0x82, 0x7E, 0x12, 0x34}},
      {65535, {0x82, 0x7E, 0xFF, 0xFF}},
      {65536, {0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}},
      {(std::uint64_t{1} << 32) + 5, {0x82, 0x7F, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05}},
      {0x0102030405060708, {0x82, 0x7F, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}},
  };
  for (const Case& c : cases) {
    INFO("payload size " << c.size);
    std::array<std::uint8_t, kMaxServerHeaderBytes> out{};
    const std::size_t written = write_server_header(Opcode::kBinary, c.size, out);
    REQUIRE(written == c.bytes.size());
    CHECK(Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(written)) == c.bytes);
  }
}

TEST_CASE("a server header is final, unmasked and carries its opcode", "[websocket][server]") {
  for (const Opcode opcode : kAllOpcodes) {
    for (const std::uint64_t size :
         {std::uint64_t{0}, std::uint64_t{125}, std::uint64_t{126}, std::uint64_t{65535},
          std::uint64_t{65536}, (std::uint64_t{1} << 32) + 5}) {
      if (is_control(opcode) && size > 125) continue;
      INFO("opcode " << int(byte_of(opcode)) << ", size " << size);
      std::array<std::uint8_t, kMaxServerHeaderBytes> out{};
      out.fill(0xEE);
      const std::size_t written = write_server_header(opcode, size, out);
      CHECK(written == (size <= 125 ? 2u : size <= 65535 ? 4u : 10u));
      CHECK(out[0] == (0x80 | byte_of(opcode)));  // FIN, no RSV bit
      CHECK((out[1] & 0x80) == 0);                 // no mask bit
      // Nothing written past the header.
      for (std::size_t i = written; i < out.size(); ++i) CHECK(out[i] == 0xEE);
    }
  }
}

TEST_CASE("a server header with the mask bit and a mask added parses as a client header",
          "[websocket][server]") {
  for (const Opcode opcode : kAllOpcodes) {
    for (const std::uint64_t size :
         {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{125}, std::uint64_t{126}, std::uint64_t{65535},
          std::uint64_t{65536}, (std::uint64_t{1} << 32) + 5, kTopBit - 1}) {
      if (is_control(opcode) && size > 125) continue;
      INFO("opcode " << int(byte_of(opcode)) << ", size " << size);
      std::array<std::uint8_t, kMaxServerHeaderBytes> out{};
      const std::size_t written = write_server_header(opcode, size, out);
      Bytes header(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(written));
      header[1] |= 0x80;
      header.insert(header.end(), kMask.begin(), kMask.end());
      check_frame(header, true, opcode, size, written + 4);
      CHECK(header == client_header(opcode, size));
    }
  }
}

// ---- make_close_payload -----------------------------------------------------------------------

TEST_CASE("a close payload is the code big-endian, then the reason", "[websocket][close]") {
  CHECK(make_close_payload(1000, "bye") == Bytes{0x03, 0xE8, 'b', 'y', 'e'});
  CHECK(make_close_payload(kCloseProtocolError, "") == Bytes{0x03, 0xEA});
  CHECK(make_close_payload(4201, "x") == Bytes{0x10, 0x69, 'x'});
  CHECK(make_close_payload(0xABCD, "") == Bytes{0xAB, 0xCD});
  const std::string utf8 = "d\xC3\xA9j\xC3\xA0 vu \xE2\x82\xAC \xF0\x9F\x98\x80";
  CHECK(make_close_payload(1001, utf8) == close_payload(1001, utf8));
}

TEST_CASE("a close reason is cut to 123 bytes so the payload fits in 125", "[websocket][close]") {
  const std::string reason(200, 'r');
  const Bytes payload = make_close_payload(1000, reason);
  CHECK(payload.size() == 125);
  CHECK(payload == close_payload(1000, reason.substr(0, 123)));
  // At the limit: 123 bytes are kept whole, 124 lose one.
  CHECK(make_close_payload(1000, std::string(123, 'a')) == close_payload(1000, std::string(123, 'a')));
  CHECK(make_close_payload(1000, std::string(124, 'a')) == close_payload(1000, std::string(123, 'a')));
}

TEST_CASE("a close reason is cut without splitting a UTF-8 sequence", "[websocket][close]") {
  struct Case {
    std::string reason;
    std::size_t kept;  // bytes of the reason that fit whole in 123
  };
  const std::string e_acute = "\xC3\xA9";       // 2 bytes
  const std::string euro = "\xE2\x82\xAC";      // 3 bytes
  const std::string grin = "\xF0\x9F\x98\x80";  // 4 bytes
  const std::vector<Case> cases{
      {repeat(e_acute, 100), 122},        // byte 123 is the second of a pair
      {"a" + repeat(e_acute, 100), 123},  // a pair ends exactly at 123
      {repeat(euro, 50), 123},            // 41 whole characters
      {"a" + repeat(euro, 50), 121},      // 1 + 40 * 3: the 41st is cut after 2 of 3 bytes
      {"ab" + repeat(euro, 50), 122},     // 2 + 40 * 3: the 41st is cut after 1 of 3 bytes
      {repeat(grin, 40), 120},            // 30 whole, the 31st cut after 3 of 4 bytes
      {"abc" + repeat(grin, 40), 123},    // 3 + 30 * 4
      {"a" + repeat(grin, 40), 121},
  };
  for (const Case& c : cases) {
    INFO("reason " << to_hex(as_bytes(c.reason)));
    REQUIRE(is_valid_utf8(c.reason));
    const Bytes payload = make_close_payload(1000, c.reason);
    CHECK(payload.size() <= 125);
    CHECK(payload == close_payload(1000, c.reason.substr(0, c.kept)));
    const std::string_view kept(reinterpret_cast<const char*>(payload.data()) + 2, payload.size() - 2);
    CHECK(is_valid_utf8(kept));
    const CloseParse parsed = parse_close(payload);
    CHECK(parsed.valid);
    CHECK(parsed.code == 1000);
  }
  // Every length of a mixed reason: the kept part is valid, a prefix, and as long as it can be.
  const std::string mixed = repeat("a" + e_acute + euro + grin, 20);
  for (std::size_t length = 0; length <= mixed.size(); ++length) {
    std::string reason = mixed.substr(0, length);
    while (!reason.empty() && !is_valid_utf8(reason)) reason.pop_back();  // whole characters only
    INFO("reason of " << reason.size() << " bytes");
    const Bytes payload = make_close_payload(3000, reason);
    const std::string_view kept(reinterpret_cast<const char*>(payload.data()) + 2, payload.size() - 2);
    CHECK(payload.size() <= 125);
    CHECK(is_valid_utf8(kept));
    CHECK(reason.substr(0, kept.size()) == kept);
    CHECK(kept.size() >= std::min<std::size_t>(reason.size(), 120));  // loses at most 3 bytes of a character
  }
}

// ---- parse_close_payload ----------------------------------------------------------------------

TEST_CASE("an empty close payload is valid and means no status code", "[websocket][close]") {
  const CloseParse parsed = parse_close(Bytes{});
  CHECK(parsed.valid);
  CHECK(parsed.code == kCloseNoStatus);
  CHECK(kCloseNoStatus == 1005);
}

TEST_CASE("a one-byte close payload is invalid", "[websocket][close][hostile]") {
  for (const std::uint8_t b : {0x00, 0x03, 0xE8, 0xFF}) CHECK_FALSE(parse_close(Bytes{b}).valid);
}

TEST_CASE("the close codes a peer may send are valid, with or without a reason", "[websocket][close]") {
  for (const std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                                   3000, 3999, 4000, 4201, 4999}) {
    for (const std::string_view reason : {std::string_view{}, std::string_view{"bye"},
                                          std::string_view{"\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80"}}) {
      INFO("code " << code << ", reason \"" << reason << "\"");
      const CloseParse parsed = parse_close(close_payload(code, reason));
      CHECK(parsed.valid);
      CHECK(parsed.code == code);
    }
  }
}

TEST_CASE("reserved, unassigned and out-of-range close codes are invalid", "[websocket][close][hostile]") {
  for (const std::uint16_t code : {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    INFO("code " << code);
    const CloseParse parsed = parse_close(close_payload(code));
    CHECK_FALSE(parsed.valid);
    CHECK_FALSE(parse_close(close_payload(code, "reason")).valid);
  }
}

TEST_CASE("a close reason that is not valid UTF-8 is invalid", "[websocket][close][hostile]") {
  CHECK_FALSE(parse_close(close_payload(1000, "\xC3\x28")).valid);          // bad continuation
  CHECK_FALSE(parse_close(close_payload(1000, "ok \xC3")).valid);           // cut sequence
  CHECK_FALSE(parse_close(close_payload(1000, "\xC0\xAF")).valid);          // overlong '/'
  CHECK_FALSE(parse_close(close_payload(1000, "\xED\xA0\x80")).valid);      // surrogate
  CHECK_FALSE(parse_close(close_payload(1000, "\xF4\x90\x80\x80")).valid);  // above U+10FFFF
  CHECK_FALSE(parse_close(close_payload(1000, "\xFF")).valid);
  CHECK(parse_close(close_payload(1000, "\xC3\xA9")).valid);
  CHECK(parse_close(close_payload(1000, std::string_view("a\0b", 3))).valid);  // NUL is UTF-8
}

TEST_CASE("a close payload the relay makes parses back to its code", "[websocket][close]") {
  for (const std::uint16_t code : {std::uint16_t{1000}, kCloseProtocolError, kCloseUnsupportedData,
                                   std::uint16_t{1007}, kCloseMessageTooBig, std::uint16_t{4000}}) {
    for (const std::string& reason :
         {std::string{}, std::string("frame too big"), std::string(300, 'z'), repeat("\xE2\x82\xAC", 60)}) {
      const CloseParse parsed = parse_close(make_close_payload(code, reason));
      CHECK(parsed.valid);
      CHECK(parsed.code == code);
    }
  }
}

// ---- accept_key -------------------------------------------------------------------------------

TEST_CASE("accept_key gives RFC 6455's example answer", "[websocket][handshake]") {
  CHECK(accept_key("dGhlIHNhbXBsZSBub25jZQ==") == std::optional<std::string>("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
}

TEST_CASE("accept_key is base64 of SHA-1 of the key and the GUID", "[websocket][handshake]") {
  // Expected values from Python: base64.b64encode(hashlib.sha1(key + GUID).digest()).
  CHECK(accept_key("AQIDBAUGBwgJCgsMDQ4PEA==") == std::optional<std::string>("C/0nmHhBztSRGR1CwL6Tf4ZjwpY="));
  CHECK(accept_key("AAAAAAAAAAAAAAAAAAAAAA==") == std::optional<std::string>("ICX+Yqv66kxgM0FcWaLWlFLwTAI="));
  CHECK(accept_key("/////////////////////w==") == std::optional<std::string>("XXpj4jYzLM2yUE0C7TIgMwTQh2g="));
  // The four characters that can end 16 bytes: low 4 bits zero.
  for (const char last : {'A', 'Q', 'g', 'w'}) {
    std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
    key[21] = last;
    const auto accept = accept_key(key);
    REQUIRE(accept.has_value());
    CHECK(accept->size() == 28);
    CHECK(accept->back() == '=');
  }
}

TEST_CASE("accept_key refuses a key that is not 16 bytes in base64", "[websocket][handshake][hostile]") {
  const std::vector<std::string_view> refused{
      "",
      "dGhlIHNhbXBsZSBub25jZQ=",    // 23 characters
      "dGhlIHNhbXBsZSBub25jZQ===",  // 25 characters
      "dGhlIHNhbXBsZSBub25jZQ",     // no padding
      "dGhlIHNhbXBsZSBub25jZQAA",   // 24 characters, no "=="
      "dGhlIHNhbXBsZSBub25jZQ=A",
      "dGhlIHNhbXBsZSBub25jZQA=",  // one "=" only
      "dGhlIHNhbXBsZSBub25jZQ/=",
      "dGhlIHNhbXBsZSBub25jZ===",  // 15 bytes and a bad pad
      "dGhl*HNhbXBsZSBub25jZQ==",  // not base64
      "dGhlIHNhbXBsZSBub25jZ\xC3==",
      "dGhlIHNh-XBsZSBub25jZQ==",  // base64url, not base64
      "dGhlIHNh_XBsZSBub25jZQ==",
      "dGhlIHNh XBsZSBub25jZQ==",
      std::string_view("dGhlIHNh\0XBsZSBub25jZQ==", 24),
      "dGhlIHNhbXBsZSBub25jZR==",  // the last character carries nonzero low bits
      "dGhlIHNhbXBsZSBub25jZ/==",
      "dGhlIHNhbXBsZSBub25jZB==",
      "dGhlIHNhbXBsZSBub25jZQ==\r",
      " dGhlIHNhbXBsZSBub25jZQ==",
      "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
  };
  for (const std::string_view key : refused) {
    INFO("key \"" << key << "\"");
    CHECK_FALSE(accept_key(key).has_value());
  }
}

}  // namespace
