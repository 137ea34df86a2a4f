// RawWsClient (bench/src/raw_ws.h), the framing W1's measured loop speaks, against a peer played
// by the test over a socketpair: what it sends must be masked client frames a server accepts, and
// what a server may send (split anywhere, pings, every length form) must come back whole.
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "raw_ws.h"

namespace {

using blindsync::Bytes;
using blindsync::ByteView;
using blindsync::Code;
using blindsync::bench::RawWsClient;

struct Pair {
  Pair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0); }
  ~Pair() {
    if (fds[1] >= 0) ::close(fds[1]);
  }
  int fds[2] = {-1, -1};  // [0] goes to the client, [1] is the test's server end
};

Bytes pattern(std::size_t size, std::uint8_t seed) {
  Bytes b(size);
  for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 7);
  return b;
}

// A server frame (unmasked), as the relay writes one.
Bytes server_frame(std::uint8_t first_byte, const Bytes& payload) {
  Bytes f{first_byte};
  const std::size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<std::uint8_t>(n));
  } else if (n <= 0xFFFF) {
    f.insert(f.end(), {126, static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
  } else {
    f.push_back(127);
    for (int shift = 56; shift >= 0; shift -= 8) f.push_back(static_cast<std::uint8_t>(std::uint64_t{n} >> shift));
  }
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

void write_all(int fd, const Bytes& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    REQUIRE(n > 0);
    done += static_cast<std::size_t>(n);
  }
}

Bytes read_exactly(int fd, std::size_t size) {
  Bytes out(size);
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::read(fd, out.data() + got, size - got);
    REQUIRE(n > 0);
    got += static_cast<std::size_t>(n);
  }
  return out;
}

struct ClientFrame {
  std::uint8_t first_byte = 0;
  std::array<std::uint8_t, 4> mask{};
  Bytes payload;  // unmasked
};

// Reads one frame the client sent, checking what RFC 6455 asks of a client frame.
ClientFrame read_client_frame(int fd) {
  ClientFrame frame;
  const Bytes head = read_exactly(fd, 2);
  frame.first_byte = head[0];
  REQUIRE((head[1] & 0x80) != 0);  // masked (5.3)
  std::uint64_t size = head[1] & 0x7F;
  if (size == 126 || size == 127) {
    const Bytes ext = read_exactly(fd, size == 126 ? 2 : 8);
    size = 0;
    for (std::uint8_t b : ext) size = size << 8 | b;
  }
  const Bytes mask = read_exactly(fd, 4);
  std::copy(mask.begin(), mask.end(), frame.mask.begin());
  frame.payload = read_exactly(fd, static_cast<std::size_t>(size));
  for (std::size_t i = 0; i < frame.payload.size(); ++i) frame.payload[i] ^= frame.mask[i % 4];
  return frame;
}

// Reads until a whole message is there (the socket is a local pair: bytes written are readable).
Bytes next_message(RawWsClient& client) {
  for (int reads = 0; reads < 10000; ++reads) {
    auto message = client.next_message();
    REQUIRE(message.has_value());
    if (message->has_value()) return Bytes((*message)->begin(), (*message)->end());
    REQUIRE(client.read_some().is_ok());
  }
  FAIL("no whole message after 10000 reads");
  return {};
}

}  // namespace

TEST_CASE("raw websocket client: every send is one final binary frame, masked with a fresh key, in each length "
          "form",
          "[bench][raw_ws]") {
  Pair pair;
  RawWsClient client(pair.fds[0]);
  std::set<std::array<std::uint8_t, 4>> keys;
  for (const std::size_t size : {std::size_t{0}, std::size_t{5}, std::size_t{125}, std::size_t{126},
                                 std::size_t{1100}, std::size_t{65535}, std::size_t{70000}}) {
    INFO("payload of " << size << " bytes");
    const Bytes payload = pattern(size, static_cast<std::uint8_t>(size));
    REQUIRE(client.send(payload).is_ok());
    REQUIRE_FALSE(client.wants_write());  // a local pair's buffer (~200 KiB) takes each frame whole
    const ClientFrame frame = read_client_frame(pair.fds[1]);
    CHECK(frame.first_byte == 0x82);  // FIN, binary
    CHECK(frame.payload == payload);
    keys.insert(frame.mask);
  }
  CHECK(keys.size() >= 6);  // a key per frame (two equal random keys out of 7 is possible, not likely)
}

TEST_CASE("raw websocket client: messages split anywhere or sent together come back whole, pings are answered, "
          "a frame larger than the read buffer grows it",
          "[bench][raw_ws]") {
  Pair pair;
  RawWsClient client(pair.fds[0]);
  const Bytes small = pattern(40, 1);
  const Bytes medium = pattern(3000, 2);
  const Bytes large = pattern(200'000, 3);  // 64-bit length form, three times the 64 KiB buffer

  // A header and payload written one byte at a time.
  const Bytes split = server_frame(0x82, small);
  for (std::uint8_t b : split) {
    write_all(pair.fds[1], Bytes{b});
    auto message = client.next_message();
    REQUIRE(message.has_value());
    CHECK_FALSE(message->has_value());  // never a message before its last byte
    REQUIRE(client.read_some().is_ok());
  }
  CHECK(next_message(client) == small);

  // A ping, then two messages, in one write: the pong carries the ping's payload, masked.
  Bytes together = server_frame(0x89, Bytes{'h', 'i'});
  const Bytes m2 = server_frame(0x82, medium);
  const Bytes m3 = server_frame(0x82, small);
  together.insert(together.end(), m2.begin(), m2.end());
  together.insert(together.end(), m3.begin(), m3.end());
  write_all(pair.fds[1], together);
  CHECK(next_message(client) == medium);
  CHECK(next_message(client) == small);
  const ClientFrame pong = read_client_frame(pair.fds[1]);
  CHECK(pong.first_byte == 0x8A);
  CHECK(pong.payload == Bytes{'h', 'i'});

  // The large one from a writer thread: the socket buffer holds less than the frame.
  std::thread writer([&] { write_all(pair.fds[1], server_frame(0x82, large)); });
  const Bytes got = next_message(client);
  writer.join();
  CHECK(got == large);
}

TEST_CASE("raw websocket client: what the relay never sends is an error, a close frame or the end of the stream "
          "ends the connection",
          "[bench][raw_ws]") {
  struct Case {
    const char* what;
    Bytes bytes;
    Code code;
  };
  const Bytes masked_frame{0x82, 0x81, 1, 2, 3, 4, 5};
  const std::vector<Case> cases{
      {"masked", masked_frame, Code::kInvalidMessage},
      {"text", server_frame(0x81, Bytes{'x'}), Code::kInvalidMessage},
      {"fragmented", server_frame(0x02, Bytes{'x'}), Code::kInvalidMessage},
      {"continuation", server_frame(0x80, Bytes{'x'}), Code::kInvalidMessage},
      {"reserved bit", server_frame(0xC2, Bytes{'x'}), Code::kInvalidMessage},
      {"close", server_frame(0x88, Bytes{0x03, 0xE8}), Code::kConnectionClosed},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    Pair pair;
    RawWsClient client(pair.fds[0]);
    write_all(pair.fds[1], c.bytes);
    REQUIRE(client.read_some().is_ok());
    auto message = client.next_message();
    REQUIRE_FALSE(message.has_value());
    CHECK(message.status().code() == c.code);
  }
  Pair pair;
  RawWsClient client(pair.fds[0]);
  ::close(pair.fds[1]);
  pair.fds[1] = -1;
  const auto status = client.read_some();
  CHECK(status.code() == Code::kConnectionClosed);
}
