// libFuzzer target: the relay's WebSocket framing (relay/src/websocket/ws_frame.h), fed the bytes
// a client could send after the handshake.
//
// Beyond "no crash, no sanitizer report", every input is held to these properties:
//   1. parse_client_header agrees with an independent reading of RFC 6455 5.2 (reference_parse)
//      and reads at most 14 bytes: the first 14 of the input decide the outcome; "need more"
//      only below 14 bytes, a protocol error always says why;
//   2. a parsed header is what its bytes say (FIN, opcode, mask, length field) and what RFC 6455
//      allows: 6, 8 or 14 bytes within the input, the shortest length form, a length below 2^63,
//      control frames final and at most 125 bytes; every shorter prefix of it needs more bytes;
//   3. the header is canonical: write_server_header for the same opcode and size, with the mask
//      bit and the mask added (and FIN cleared if it was), gives back the exact header bytes;
//   4. unmask is RFC 6455 5.3 (octet i XOR mask[i % 4]) whether the payload arrives whole or in
//      two pieces, and unmasking twice gives back the masked bytes;
//   5. parse_close_payload (of the whole input, and of a close frame's unmasked payload) accepts
//      exactly an empty payload or a sendable code followed by UTF-8; make_close_payload keeps a
//      payload within 125 bytes, never splits a UTF-8 character and parses back to its code.
//   6. FrameReader, fed the input as a stream of frames, makes progress on every event, keeps a
//      message within its limit and ends in "need more" or one fault (check_reader).
// A violated property aborts, so libFuzzer keeps the input as a crash artifact.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "blindsync/core/bytes.h"
#include "blindsync/core/utf8.h"
#include "websocket/ws_frame.h"
#include "websocket/ws_reader.h"
#include "fuzz_check.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay::ws;
using Outcome = HeaderParse::Outcome;

// RFC 6455 5.2 and the relay's narrowing of it (ws_frame.h), written out independently: what
// parse_client_header must answer. A fault the first two bytes show is an error at once, even
// before the rest of the header has arrived.
struct Expected {
  Outcome outcome = Outcome::kNeedMore;
  std::uint64_t payload_size = 0;
};

Expected reference_parse(ByteView in) {
  Expected expected;
  if (in.size() < 2) return expected;
  const std::uint8_t opcode = in[0] & 0x0F;
  const bool fin = (in[0] & 0x80) != 0;
  const bool control = opcode >= 0x8;
  const bool known = opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA);
  const std::uint8_t field = in[1] & 0x7F;
  expected.outcome = Outcome::kProtocolError;
  if ((in[0] & 0x70) != 0 || !known || (in[1] & 0x80) == 0) return expected;
  if (control && (!fin || field > 125)) return expected;
  const std::size_t extended = field == 126 ? 2 : field == 127 ? 8 : 0;
  if (in.size() < 2 + extended + 4) {
    expected.outcome = Outcome::kNeedMore;
    return expected;
  }
  std::uint64_t length = field;
  if (extended != 0) {
    length = 0;
    for (std::size_t i = 0; i < extended; ++i) length = length * 256 + in[2 + i];
  }
  if (extended == 2 && length < 126) return expected;
  if (extended == 8 && (length < 0x10000 || length >= (std::uint64_t{1} << 63))) return expected;
  expected.outcome = Outcome::kFrame;
  expected.payload_size = length;
  return expected;
}

bool same(const HeaderParse& a, const HeaderParse& b) {
  if (a.outcome != b.outcome || a.error != b.error) return false;
  if (a.outcome != Outcome::kFrame) return true;
  return a.header.fin == b.header.fin && a.header.opcode == b.header.opcode &&
         a.header.payload_size == b.header.payload_size && a.header.mask == b.header.mask &&
         a.header.header_size == b.header.header_size;
}

// Close codes a peer may send (RFC 6455 7.4.1, 7.4.2 and the IANA registry): written out here
// rather than taken from ws_frame.cpp.
bool sendable(std::uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

void check_close_parse(ByteView payload) {
  const CloseParse parse = parse_close_payload(payload);
  if (payload.empty()) {
    FUZZ_CHECK(parse.valid && parse.code == kCloseNoStatus);
    return;
  }
  if (payload.size() == 1) {
    FUZZ_CHECK(!parse.valid);
    return;
  }
  const auto code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
  FUZZ_CHECK(parse.code == code);
  FUZZ_CHECK(parse.valid == (sendable(code) && is_valid_utf8(as_chars(payload.subspan(2)))));
}

void check_make_close(ByteView input) {
  const auto code = static_cast<std::uint16_t>(input.size() >= 2 ? (input[0] << 8) | input[1] : 1000);
  const std::string_view reason = as_chars(input.size() >= 2 ? input.subspan(2) : input);
  const Bytes payload = make_close_payload(code, reason);
  FUZZ_CHECK(payload.size() >= 2 && payload.size() <= kMaxControlPayload);
  FUZZ_CHECK(payload[0] == (code >> 8) && payload[1] == (code & 0xFF));
  const std::string_view kept = as_chars(ByteView(payload).subspan(2));
  FUZZ_CHECK(reason.substr(0, kept.size()) == kept);
  if (reason.size() <= kMaxControlPayload - 2) FUZZ_CHECK(kept.size() == reason.size());
  if (is_valid_utf8(reason)) {
    FUZZ_CHECK(is_valid_utf8(kept));
    FUZZ_CHECK(kept.size() + 3 >= std::min<std::size_t>(reason.size(), kMaxControlPayload - 2));
    const CloseParse parse = parse_close_payload(payload);
    FUZZ_CHECK(parse.code == code);
    FUZZ_CHECK(parse.valid == sendable(code));
  }
}

void check_header(ByteView input, const FrameHeader& header) {
  const std::size_t size = header.header_size;
  FUZZ_CHECK(size == 6 || size == 8 || size == 14);
  FUZZ_CHECK(size <= input.size());
  FUZZ_CHECK(header.payload_size < (std::uint64_t{1} << 63));
  // What the bytes say.
  FUZZ_CHECK((input[0] & 0x70) == 0);
  FUZZ_CHECK(header.fin == ((input[0] & 0x80) != 0));
  FUZZ_CHECK(static_cast<std::uint8_t>(header.opcode) == (input[0] & 0x0F));
  FUZZ_CHECK((input[1] & 0x80) != 0);
  FUZZ_CHECK(std::equal(header.mask.begin(), header.mask.end(),
                        input.begin() + static_cast<std::ptrdiff_t>(size - 4)));
  const std::uint8_t length_field = input[1] & 0x7F;
  FUZZ_CHECK(size == (length_field == 127 ? 14u : length_field == 126 ? 8u : 6u));
  // The shortest form.
  if (size == 6) FUZZ_CHECK(header.payload_size == length_field);
  if (size == 8) FUZZ_CHECK(header.payload_size >= 126 && header.payload_size <= 0xFFFF);
  if (size == 14) FUZZ_CHECK(header.payload_size > 0xFFFF);
  if (is_control(header.opcode)) FUZZ_CHECK(header.fin && header.payload_size <= kMaxControlPayload);
  // Every shorter prefix needs more bytes.
  for (std::size_t n = 0; n < size; ++n) {
    const HeaderParse prefix = parse_client_header(input.first(n));
    FUZZ_CHECK(prefix.outcome == Outcome::kNeedMore && prefix.error.empty());
  }
  // Canonical: the server's encoding of the same frame, masked, is the same bytes.
  std::array<std::uint8_t, kMaxServerHeaderBytes> server{};
  const std::size_t written = write_server_header(header.opcode, header.payload_size, server);
  FUZZ_CHECK(written + 4 == size);
  Bytes rebuilt(server.begin(), server.begin() + static_cast<std::ptrdiff_t>(written));
  if (!header.fin) rebuilt[0] &= 0x7F;
  rebuilt[1] |= 0x80;
  rebuilt.insert(rebuilt.end(), header.mask.begin(), header.mask.end());
  FUZZ_CHECK(std::equal(rebuilt.begin(), rebuilt.end(), input.begin()));
}

// The rest of the input as the frame's (possibly truncated) payload: unmasked whole, in two
// pieces, and masked again.
void check_unmask(ByteView input, const FrameHeader& header) {
  const ByteView rest = input.subspan(header.header_size);
  const std::size_t size =
      static_cast<std::size_t>(std::min<std::uint64_t>(rest.size(), header.payload_size));
  const Bytes masked(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(size));
  Bytes expected = masked;
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] ^= header.mask[i % 4];

  Bytes whole = masked;
  unmask(whole, header.mask, 0);
  FUZZ_CHECK(whole == expected);

  // Split where the mask says, so that the fuzzer controls it.
  const std::size_t split = size == 0 ? 0 : (header.mask[0] | (header.mask[1] << 8)) % (size + 1);
  Bytes pieces = masked;
  unmask(std::span<std::uint8_t>(pieces).first(split), header.mask, 0);
  unmask(std::span<std::uint8_t>(pieces).subspan(split), header.mask, split);
  FUZZ_CHECK(pieces == expected);

  unmask(pieces, header.mask, 0);
  FUZZ_CHECK(pieces == masked);

  // A whole close frame: its unmasked payload is checked like any close payload.
  if (header.opcode == Opcode::kClose && size == header.payload_size) check_close_parse(expected);
}

}  // namespace

// 6. FrameReader (ws_reader.h) over the whole input as a stream of client frames, with a small
// message limit so that gathering and its bound are reached: every event consumes what it says
// (within the input, and something unless it needs more), a message never exceeds the limit, a
// control payload never exceeds 125 bytes, and the stream ends in kNeedMore or one kFault.
void check_reader(ByteView input) {
  constexpr std::size_t kLimit = 300;
  FrameReader reader(kLimit);
  std::vector<std::uint8_t> buffer(input.begin(), input.end());
  std::size_t offset = 0;
  for (std::size_t events = 0; events <= buffer.size(); ++events) {
    const ReadEvent event = reader.next(std::span<std::uint8_t>(buffer).subspan(offset));
    FUZZ_CHECK(event.consumed <= buffer.size() - offset);
    switch (event.kind) {
      case ReadEvent::Kind::kNeedMore:
        FUZZ_CHECK(event.consumed == 0);
        return;
      case ReadEvent::Kind::kFault:
        FUZZ_CHECK(event.close_code == kCloseProtocolError || event.close_code == kCloseUnsupportedData ||
                   event.close_code == kCloseMessageTooBig);
        FUZZ_CHECK(!event.reason.empty());
        return;
      case ReadEvent::Kind::kMessage:
        FUZZ_CHECK(event.payload.size() <= kLimit);
        break;
      case ReadEvent::Kind::kPing:
      case ReadEvent::Kind::kPong:
      case ReadEvent::Kind::kClose:
        FUZZ_CHECK(event.payload.size() <= kMaxControlPayload);
        break;
      case ReadEvent::Kind::kFragment:
        FUZZ_CHECK(reader.in_message());
        break;
    }
    FUZZ_CHECK(event.consumed > 0);
    offset += event.consumed;
  }
  FUZZ_CHECK(false);  // more events than bytes: no progress
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  const HeaderParse parse = parse_client_header(input);
  const Expected expected = reference_parse(input);
  FUZZ_CHECK(parse.outcome == expected.outcome);
  if (expected.outcome == Outcome::kFrame) FUZZ_CHECK(parse.header.payload_size == expected.payload_size);
  // Only the first kMaxClientHeaderBytes count.
  if (size > kMaxClientHeaderBytes) {
    FUZZ_CHECK(same(parse, parse_client_header(input.first(kMaxClientHeaderBytes))));
  }
  switch (parse.outcome) {
    case Outcome::kNeedMore:
      FUZZ_CHECK(size < kMaxClientHeaderBytes);
      FUZZ_CHECK(parse.error.empty());
      break;
    case Outcome::kProtocolError:
      FUZZ_CHECK(!parse.error.empty());
      break;
    case Outcome::kFrame:
      FUZZ_CHECK(parse.error.empty());
      check_header(input, parse.header);
      check_unmask(input, parse.header);
      break;
  }
  check_close_parse(input);
  check_make_close(input);
  check_reader(input);
  return 0;
}
