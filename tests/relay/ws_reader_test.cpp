// FrameReader (relay/src/websocket/ws_reader.h): client bytes into messages and control frames.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "websocket/ws_reader.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay::ws;
using Kind = ReadEvent::Kind;

constexpr std::uint8_t kMask[4] = {0x37, 0xFA, 0x21, 0x3D};

// A masked client frame, built by hand (independently of ws_frame.cpp's server header writer).
Bytes client_frame(std::uint8_t first_byte, const Bytes& payload) {
  Bytes frame{first_byte};
  if (payload.size() < 126) {
    frame.push_back(static_cast<std::uint8_t>(0x80 | payload.size()));
  } else {
    frame.push_back(0x80 | 126);
    frame.push_back(static_cast<std::uint8_t>(payload.size() >> 8));
    frame.push_back(static_cast<std::uint8_t>(payload.size()));
  }
  frame.insert(frame.end(), kMask, kMask + 4);
  for (std::size_t i = 0; i < payload.size(); ++i) frame.push_back(payload[i] ^ kMask[i % 4]);
  return frame;
}

Bytes bytes_of(const std::string& text) { return Bytes(text.begin(), text.end()); }

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

// Feeds `stream` to the reader as a socket would, `chunk` bytes at a time, and records what the
// session would do: every message and control payload, and a fault if one came.
struct Transcript {
  std::vector<std::pair<Kind, Bytes>> events;
  std::uint16_t fault = 0;
};

Transcript feed(FrameReader& reader, const Bytes& stream, std::size_t chunk) {
  Transcript out;
  Bytes buffer;
  std::size_t fed = 0;
  for (int guard = 0; guard < 100'000; ++guard) {
    const ReadEvent event = reader.next(buffer);
    if (event.kind == Kind::kFault) {
      out.fault = event.close_code;
      return out;
    }
    if (event.kind == Kind::kNeedMore) {
      if (fed == stream.size()) return out;
      const std::size_t n = std::min(chunk, stream.size() - fed);
      buffer.insert(buffer.end(), stream.begin() + static_cast<std::ptrdiff_t>(fed),
                    stream.begin() + static_cast<std::ptrdiff_t>(fed + n));
      fed += n;
      continue;
    }
    if (event.kind != Kind::kFragment) out.events.emplace_back(event.kind, Bytes(event.payload.begin(), event.payload.end()));
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(event.consumed));
  }
  FAIL("the reader made no progress");
  return out;
}

}  // namespace

TEST_CASE("frame reader: one-frame messages and control frames come out in order, however the bytes arrive",
          "[websocket][reader]") {
  const Bytes first(300, 0xAB);
  const Bytes stream = concat({client_frame(0x82, first), client_frame(0x89, bytes_of("ping!")),
                               client_frame(0x82, bytes_of("second")), client_frame(0x8A, bytes_of("pong")),
                               client_frame(0x88, Bytes{0x03, 0xE8})});
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{64}, stream.size()}) {
    INFO("chunk " << chunk);
    FrameReader reader(1000);
    const Transcript t = feed(reader, stream, chunk);
    CHECK(t.fault == 0);
    REQUIRE(t.events.size() == 5);
    CHECK(t.events[0] == std::pair{Kind::kMessage, first});
    CHECK(t.events[1] == std::pair{Kind::kPing, bytes_of("ping!")});
    CHECK(t.events[2] == std::pair{Kind::kMessage, bytes_of("second")});
    CHECK(t.events[3] == std::pair{Kind::kPong, bytes_of("pong")});
    CHECK(t.events[4] == std::pair{Kind::kClose, (Bytes{0x03, 0xE8})});
  }
}

TEST_CASE("frame reader: a fragmented message is gathered across control frames and handed out once",
          "[websocket][reader]") {
  const Bytes stream = concat({client_frame(0x02, bytes_of("frag")), client_frame(0x89, bytes_of("p")),
                               client_frame(0x00, bytes_of("ment")), client_frame(0x80, bytes_of("ed")),
                               client_frame(0x82, bytes_of("next"))});
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, stream.size()}) {
    INFO("chunk " << chunk);
    FrameReader reader(100);
    const Transcript t = feed(reader, stream, chunk);
    CHECK(t.fault == 0);
    REQUIRE(t.events.size() == 3);
    CHECK(t.events[0] == std::pair{Kind::kPing, bytes_of("p")});
    CHECK(t.events[1] == std::pair{Kind::kMessage, bytes_of("fragmented")});
    CHECK(t.events[2] == std::pair{Kind::kMessage, bytes_of("next")});
    CHECK_FALSE(reader.in_message());
  }
}

TEST_CASE("frame reader: a one-frame message is handed out in place, not copied", "[websocket][reader]") {
  Bytes buffer = client_frame(0x82, bytes_of("in place"));
  FrameReader reader(100);
  const ReadEvent event = reader.next(buffer);
  REQUIRE(event.kind == Kind::kMessage);
  CHECK(event.payload.data() == buffer.data() + 6);
  CHECK(event.consumed == buffer.size());
  CHECK(Bytes(event.payload.begin(), event.payload.end()) == bytes_of("in place"));
}

TEST_CASE("frame reader: an incomplete frame says how much of its payload is missing", "[websocket][reader]") {
  const Bytes frame = client_frame(0x82, Bytes(200, 1));
  FrameReader reader(1000);
  Bytes header_only(frame.begin(), frame.begin() + 3);
  CHECK(reader.next(header_only).missing == 0);  // not even the header yet
  Bytes part(frame.begin(), frame.begin() + 8 + 50);  // 8-byte header, 50 of 200 bytes
  const ReadEvent event = reader.next(part);
  CHECK(event.kind == Kind::kNeedMore);
  CHECK(event.consumed == 0);
  CHECK(event.missing == 150);
}

TEST_CASE("frame reader: faults come back as the close code that names them", "[websocket][reader][hostile]") {
  const auto first_fault = [](const Bytes& stream, std::size_t limit = 100) {
    FrameReader reader(limit);
    return feed(reader, stream, stream.size()).fault;
  };
  CHECK(first_fault(client_frame(0x81, bytes_of("text"))) == kCloseUnsupportedData);
  CHECK(first_fault(client_frame(0x80, bytes_of("cont"))) == kCloseProtocolError);  // no message begun
  CHECK(first_fault(concat({client_frame(0x02, bytes_of("a")), client_frame(0x82, bytes_of("b"))})) ==
        kCloseProtocolError);  // a new message inside a fragmented one
  CHECK(first_fault(client_frame(0xC2, bytes_of("rsv"))) == kCloseProtocolError);
  Bytes unmasked = client_frame(0x82, bytes_of("x"));
  unmasked[1] &= 0x7F;
  CHECK(first_fault(unmasked) == kCloseProtocolError);
  // The limit is on the whole message: each fragment fits, their sum does not.
  CHECK(first_fault(concat({client_frame(0x02, Bytes(60, 1)), client_frame(0x80, Bytes(60, 2))}), 100) ==
        kCloseMessageTooBig);
  CHECK(first_fault(client_frame(0x82, Bytes(101, 1)), 100) == kCloseMessageTooBig);
  CHECK(first_fault(client_frame(0x82, Bytes(100, 1)), 100) == 0);  // at the limit is fine
}

TEST_CASE("frame reader: an oversized frame is refused from its header, before its payload arrives",
          "[websocket][reader][hostile]") {
  // The header of a 1 GiB frame, and nothing else.
  Bytes header{0x82, 0x80 | 127, 0, 0, 0, 0x40, 0, 0, 0, 0, 1, 2, 3, 4};
  FrameReader reader(1 << 20);
  const ReadEvent event = reader.next(header);
  CHECK(event.kind == Kind::kFault);
  CHECK(event.close_code == kCloseMessageTooBig);
}
