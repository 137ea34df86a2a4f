// The relay's own WebSocket framing (relay/src/websocket, net/ws_session.cpp) against a real relay
// process: what RFC 6455 lets a client do (fragments, interleaved pings, its own close), and
// what a hostile or broken client gets (a close code naming the fault, and nothing buffered).
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "blindsync/auth/identity.h"
#include "blindsync/core/codec.h"
#include "http_get.h"
#include "ops_relay_process.h"
#include "ops_ws_client.h"

namespace {

using namespace blindsync;
using namespace blindsync::test;

constexpr auto kWait = std::chrono::seconds(10);

ByteView view(const Bytes& bytes) { return ByteView(bytes.data(), bytes.size()); }

// The next frame that is not a ping (the relay may ping an idle client at any time).
WsEvent next_non_ping(RawWebSocket& ws) {
  for (int i = 0; i < 100; ++i) {
    WsEvent event = ws.next(kWait);
    if (event.kind != WsEvent::Kind::kPing) return event;
  }
  return {};
}

// The relay's close for a misbehaving client: a close frame with `code` (after the CHALLENGE
// the relay sends every new connection), then the end of the connection (RFC 6455 7.1.7).
void expect_closed_with(RawWebSocket& ws, std::uint16_t code) {
  WsEvent close = next_non_ping(ws);
  if (close.kind == WsEvent::Kind::kMessage) close = next_non_ping(ws);
  REQUIRE(close.kind == WsEvent::Kind::kClose);
  CHECK(close.close_code == code);
  CHECK(ws.next(kWait).kind == WsEvent::Kind::kEnd);
}

std::vector<std::string> plain_args(const OpsTempDir& dir) {
  return {"--listen", "127.0.0.1:0", "--data", dir.str("data")};
}

// A client past its handshake, as a fresh device of a fresh group.
std::unique_ptr<ProtocolClient> joined_client(const OpsRelay& relay) {
  auto client = connect_client(relay.port);
  REQUIRE(client->handshake(auth::SigningKey::generate(), auth::SigningKey::generate()).has_value());
  return client;
}

// The next message (not a ping), decoded, with this request id.
Frame next_reply(RawWebSocket& ws, std::uint32_t request_id) {
  const WsEvent answer = next_non_ping(ws);
  REQUIRE(answer.kind == WsEvent::Kind::kMessage);
  auto frame = decode_frame(view(answer.payload));
  REQUIRE(frame.has_value());
  CHECK(frame->request_id == request_id);
  return std::move(*frame);
}

}  // namespace

TEST_CASE("a message in three fragments with a ping between them is served, and the ping answered",
          "[websocket][process]") {
  OpsTempDir dir;
  auto relay = OpsRelay::start(plain_args(dir));
  auto client = joined_client(*relay);

  const Bytes pull = encode_frame(Frame{7, Pull{0, 10}});
  REQUIRE(pull.size() >= 3);
  const std::size_t third = pull.size() / 3;
  RawWebSocket& ws = client->socket();
  const Bytes first(pull.begin(), pull.begin() + static_cast<std::ptrdiff_t>(third));
  const Bytes second(pull.begin() + static_cast<std::ptrdiff_t>(third), pull.begin() + static_cast<std::ptrdiff_t>(2 * third));
  const Bytes last(pull.begin() + static_cast<std::ptrdiff_t>(2 * third), pull.end());
  const Bytes ping_payload{'h', 'i'};
  REQUIRE(ws.send_frame(0x02, view(first)));  // binary, not final
  REQUIRE(ws.send_control(0x9, view(ping_payload)));
  REQUIRE(ws.send_frame(0x00, view(second)));  // continuation, not final
  REQUIRE(ws.send_frame(0x80, view(last)));    // continuation, final

  const WsEvent pong = ws.next(kWait, /*answer_pings=*/false);
  REQUIRE(pong.kind == WsEvent::Kind::kPong);
  CHECK(pong.payload == ping_payload);
  CHECK(std::holds_alternative<PullResponse>(next_reply(ws, 7).message));
}

TEST_CASE("frames that come several to a TCP write, split across writes, or a byte at a time are all served",
          "[websocket][process]") {
  OpsTempDir dir;
  auto relay = OpsRelay::start(plain_args(dir));
  auto client = joined_client(*relay);
  RawWebSocket& ws = client->socket();
  const auto pull_frame = [](std::uint32_t request_id) {
    return client_frame(0x82, view(encode_frame(Frame{request_id, Pull{0, 10}})));
  };
  const auto expect_answers = [&](std::uint32_t first, std::uint32_t last) {
    for (std::uint32_t id = first; id <= last; ++id) {
      CHECK(std::holds_alternative<PullResponse>(next_reply(ws, id).message));
    }
  };

  Bytes three;  // one write, three frames: each read must hand over every whole frame it holds
  for (std::uint32_t id = 11; id <= 13; ++id) {
    const Bytes frame = pull_frame(id);
    three.insert(three.end(), frame.begin(), frame.end());
  }
  REQUIRE(ws.send_raw(view(three)));
  expect_answers(11, 13);

  // A frame and a half, then the other half and one more: what a read leaves over is kept.
  const Bytes a = pull_frame(14), b = pull_frame(15), c = pull_frame(16);
  const auto half = static_cast<std::ptrdiff_t>(b.size() / 2);
  Bytes first(a);
  first.insert(first.end(), b.begin(), b.begin() + half);
  Bytes second(b.begin() + half, b.end());
  second.insert(second.end(), c.begin(), c.end());
  REQUIRE(ws.send_raw(view(first)));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(ws.send_raw(view(second)));
  expect_answers(14, 16);

  // A byte at a time: the header arrives in pieces, then the payload.
  const Bytes d = pull_frame(17);
  for (std::uint8_t byte : d) {
    REQUIRE(ws.send_raw(ByteView(&byte, 1)));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  expect_answers(17, 17);
}

TEST_CASE("pushes of any size cut into writes at random points are all acknowledged, in order",
          "[websocket][process]") {
  OpsTempDir dir;
  auto relay = OpsRelay::start(plain_args(dir));
  auto client = joined_client(*relay);
  RawWebSocket& ws = client->socket();
  const auto seed = static_cast<std::uint32_t>(std::random_device{}());
  INFO("seed " << seed);
  std::mt19937 random(seed);
  constexpr std::uint32_t kPushes = 50;  // under the relay's default 100 messages per minute
  Bytes stream;
  for (std::uint32_t i = 0; i < kPushes; ++i) {
    // Sizes across the frame header's three length forms (7-bit, 16-bit, 64-bit).
    const std::size_t size = std::uniform_int_distribution<std::size_t>(0, 3)(random) == 0
                                 ? std::uniform_int_distribution<std::size_t>(1, 125)(random)
                                 : std::uniform_int_distribution<std::size_t>(126, 100'000)(random);
    const Bytes frame = client_frame(0x82, view(encode_frame(Frame{200 + i, Push{numbered_blob(i), Bytes(size, 7), 0}})));
    stream.insert(stream.end(), frame.begin(), frame.end());
  }
  // Writes of 1 byte to 20 KB, with a pause now and then so that reads end in any place.
  for (std::size_t at = 0; at < stream.size();) {
    const std::size_t n = std::min(stream.size() - at, std::uniform_int_distribution<std::size_t>(1, 20'000)(random));
    REQUIRE(ws.send_raw(ByteView(stream.data() + at, n)));
    at += n;
    if (std::uniform_int_distribution<int>(0, 3)(random) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (std::uint32_t i = 0; i < kPushes; ++i) {
    const Frame frame = next_reply(ws, 200 + i);
    const auto* ack = std::get_if<PushAck>(&frame.message);
    REQUIRE(ack != nullptr);
    CHECK(ack->blob_id == numbered_blob(i));
    CHECK(ack->cursor == i + 1);
  }
}

TEST_CASE("a client's close is answered with its code and the relay ends the connection",
          "[websocket][process]") {
  OpsTempDir dir;
  auto relay = OpsRelay::start(plain_args(dir));
  auto ws = connect_raw(relay->port);
  REQUIRE(next_non_ping(*ws).kind == WsEvent::Kind::kMessage);  // the CHALLENGE
  const Bytes close{0x03, 0xE8, 'b', 'y', 'e'};                 // 1000 "bye"
  REQUIRE(ws->send_control(0x8, view(close)));
  expect_closed_with(*ws, 1000);
}

TEST_CASE("frames a client must not send close the connection with the code that names the fault",
          "[websocket][process][hostile]") {
  OpsTempDir dir;
  auto relay = OpsRelay::start(plain_args(dir));
  const Bytes payload{1, 2, 3, 4};
  const Bytes text{'h', 'e', 'l', 'l', 'o'};
  const Bytes reserved_close{0x03, 0xED};  // 1005: reserved, never on the wire
  struct Frame {
    std::uint8_t first_byte;  // FIN, RSV bits, opcode
    const Bytes& payload;
    bool masked = true;
  };
  struct Fault {
    const char* what;
    std::vector<Frame> frames;
    std::uint16_t close_code;
  };
  const std::vector<Fault> faults{
      {"an unmasked frame", {{0x82, payload, false}}, 1002},
      {"a reserved bit (RSV1, permessage-deflate's: no extension was agreed)", {{0xC2, payload}}, 1002},
      {"an unknown opcode", {{0x83, payload}}, 1002},
      {"a continuation with no message begun", {{0x80, payload}}, 1002},
      {"a new message inside a fragmented one", {{0x02, payload}, {0x82, payload}}, 1002},
      {"a fragmented ping", {{0x09, payload}}, 1002},
      {"a text message (the protocol is binary)", {{0x81, text}}, 1003},
      {"a close frame with a code no peer may send", {{0x88, reserved_close}}, 1002},
  };
  for (const Fault& fault : faults) {
    INFO(fault.what);
    auto ws = connect_raw(relay->port);
    for (const Frame& frame : fault.frames) REQUIRE(ws->send_frame(frame.first_byte, view(frame.payload), frame.masked));
    expect_closed_with(*ws, fault.close_code);
  }
}

TEST_CASE("a frame announced over the frame limit is refused with 1009 before its payload is sent",
          "[websocket][process][hostile][limits]") {
  OpsTempDir dir;
  auto relay = OpsRelay::start(plain_args(dir));  // frame limit: 1 MiB blob + 16 KiB
  auto ws = connect_raw(relay->port);
  // Only the header of a 1 GiB binary frame: the relay must answer without waiting for (or
  // making room for) the payload.
  const Bytes header{0x82, 0x80 | 127, 0, 0, 0, 0x40, 0, 0, 0, 0, 0xA1, 0xB2, 0xC3, 0xD4};
  REQUIRE(ws->send_raw(view(header)));
  expect_closed_with(*ws, 1009);
  // The relay is fine: a new client is served.
  auto client = connect_client(relay->port);
  CHECK(client->handshake(auth::SigningKey::generate(), auth::SigningKey::generate()).has_value());
}

TEST_CASE("a frame whose payload stops coming is cut at the idle timeout, and the relay serves on",
          "[websocket][process][hostile][idle]") {
  OpsTempDir dir;
  auto args = plain_args(dir);
  args.insert(args.end(), {"--idle-timeout-ms", "1000", "--hello-timeout-ms", "600000"});
  auto relay = OpsRelay::start(args);
  auto ws = connect_raw(relay->port);
  // The header of a 1,000-byte binary frame and 10 bytes of it; the rest never comes.
  Bytes partial{0x82, 0x80 | 126, 0x03, 0xE8, 0xA1, 0xB2, 0xC3, 0xD4};
  partial.insert(partial.end(), 10, 0x55);
  REQUIRE(ws->send_raw(view(partial)));
  const auto started = std::chrono::steady_clock::now();
  bool ended = false;
  for (int i = 0; i < 100 && !ended; ++i) {
    const WsEvent event = ws->next(kWait, /*answer_pings=*/false);
    ended = event.kind == WsEvent::Kind::kEnd || event.kind == WsEvent::Kind::kClose;
    if (event.kind == WsEvent::Kind::kTimeout) break;
  }
  CHECK(ended);
  // Cut by the idle bound, not at once (the frame was valid as far as it went).
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(900));
  auto client = connect_client(relay->port);
  CHECK(client->handshake(auth::SigningKey::generate(), auth::SigningKey::generate()).has_value());
}

TEST_CASE("a client that floods pings and never reads cannot grow the relay's memory",
          "[websocket][process][hostile][limits]") {
  // ASan's quarantine of freed memory would read as growth: keep it small for this child.
  const char* asan = std::getenv("ASAN_OPTIONS");
  std::string asan_options = asan != nullptr ? std::string(asan) + ":" : std::string();
  asan_options += "quarantine_size_mb=4";
  OpsTempDir dir;
  auto relay = OpsRelay::start(plain_args(dir), {{"ASAN_OPTIONS", asan_options}});
  auto ws = connect_raw(relay->port);
  const std::uint64_t before = vm_rss_kib(relay->process->pid());
  // 40 MB of pings, each asking for a 125-byte pong that the client never reads: the relay keeps
  // at most the newest pong waiting behind a full socket, never one per ping.
  const Bytes ping(125, 0x42);
  constexpr int kPings = 300'000;
  int sent = 0;
  for (; sent < kPings; ++sent) {
    if (!ws->send_control(0x9, view(ping))) break;  // the relay may cut a client that floods
  }
  const std::uint64_t after = vm_rss_kib(relay->process->pid());
  std::printf("ping flood: %d pings sent, relay VmRSS %llu KiB before, %llu KiB after\n", sent,
              static_cast<unsigned long long>(before), static_cast<unsigned long long>(after));
  CHECK(sent > 1000);
  CHECK(after < before + 32 * 1024);  // well under the 40 MB of pongs asked for
  auto client = connect_client(relay->port);
  CHECK(client->handshake(auth::SigningKey::generate(), auth::SigningKey::generate()).has_value());
}
