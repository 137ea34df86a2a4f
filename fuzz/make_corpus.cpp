// make_corpus: writes the seed corpora of the fuzz targets (scripts/fuzz runs it before fuzzing).
//
//   make_corpus <dir>   ->  <dir>/decode_frame_fuzz/  one real frame of EVERY message type
//                                                      (several shapes of most), encode_frame'd
//                           <dir>/invite_fuzz/         real invite links (encode_invite) and their
//                                                      raw MessagePack payloads
//                           <dir>/http_fuzz/           HTTP requests a relay really receives
//                           <dir>/ws_frame_fuzz/       masked WebSocket frames a client sends
//                                                      (RFC 6455), bare close payloads, and
//                                                      headers the relay must refuse
//
// Output is deterministic (no clock, no randomness): regenerating does not churn the committed
// files. Each target directory is emptied first, so renamed seeds do not pile up.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blindsync/client/invite.h"
#include "blindsync/core/bytes.h"
#include "blindsync/core/codec.h"
#include "blindsync/core/messages.h"
#include "blindsync/core/wire_format.h"
#include "websocket/ws_frame.h"

namespace {

using namespace blindsync;
namespace fs = std::filesystem;

// Deterministic bytes that look like ciphertext (xorshift64).
Bytes noise(std::size_t size, std::uint64_t seed) {
  Bytes out(size);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::uint8_t>(x >> 24);
  }
  return out;
}

template <typename Id>
Id id(std::uint64_t seed) {
  const Bytes b = noise(Id::kSize, seed);
  typename Id::Array a{};
  std::copy(b.begin(), b.end(), a.begin());
  return Id(a);
}

// UUIDv7-like blob id: 48-bit millisecond timestamp, then random bits.
BlobId blob_id(std::uint64_t ms, std::uint64_t seed) {
  BlobId::Array a{};
  for (int i = 0; i < 6; ++i) a[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  const Bytes rest = noise(10, seed);
  std::copy(rest.begin(), rest.end(), a.begin() + 6);
  a[6] = static_cast<std::uint8_t>(0x70 | (a[6] & 0x0f));
  a[8] = static_cast<std::uint8_t>(0x80 | (a[8] & 0x3f));
  return BlobId(a);
}

constexpr std::uint64_t kNowMs = 1'732'200'000'000ull;  // Nov 2024: fixed, not the clock

class Writer {
 public:
  explicit Writer(fs::path dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    for (const auto& entry : fs::directory_iterator(dir_)) {
      if (entry.is_regular_file()) fs::remove(entry.path());
    }
  }
  void write(const std::string& name, std::string_view bytes) {
    std::ofstream out(dir_ / name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "make_corpus: cannot write %s\n", (dir_ / name).c_str());
      std::exit(1);
    }
    ++count_;
    total_ += bytes.size();
  }
  void write(const std::string& name, const Bytes& bytes) { write(name, as_chars(bytes)); }
  void report() const {
    std::printf("make_corpus: %zu files, %zu bytes in %s\n", count_, total_, dir_.c_str());
  }

 private:
  fs::path dir_;
  std::size_t count_ = 0;
  std::size_t total_ = 0;
};

std::vector<std::pair<std::string, Frame>> sample_frames() {
  std::vector<std::pair<std::string, Frame>> frames;
  std::uint32_t request_id = 1;
  const auto client = [&](std::string name, Message m) {
    frames.emplace_back(std::move(name), Frame{request_id++, std::move(m)});
  };
  const auto relay = [&](std::string name, Message m) {  // relay-initiated: request_id 0
    frames.emplace_back(std::move(name), Frame{0, std::move(m)});
  };
  const auto reply = [&](std::string name, std::uint32_t to, Message m) {
    frames.emplace_back(std::move(name), Frame{to, std::move(m)});
  };

  Limits limits;  // the defaults a relay announces
  Challenge challenge{id<RelayId>(1), id<Nonce>(2), {1}, limits};
  relay("challenge", challenge);
  Limits custom;
  custom.max_frame_bytes = 4 * 1024 * 1024 + 16 * 1024;
  custom.max_blob_bytes = 4 * 1024 * 1024;
  custom.max_pull_limit = 200;
  custom.hello_timeout_ms = 5000;
  relay("challenge-multi-version", Challenge{id<RelayId>(3), id<Nonce>(4), {1, 2, 3}, custom});

  Hello hello;
  hello.device_id = id<DeviceId>(5);
  hello.group_id = id<GroupId>(6);
  hello.device_name = "Ada's laptop";
  hello.last_cursor = 0;
  hello.client_nonce = id<Nonce>(7);
  hello.device_sig = id<Signature>(8);
  hello.group_sig = id<Signature>(9);
  client("hello-first-connect", hello);
  hello.device_name = "T\xC3\xA9l\xC3\xA9phone de Zo\xC3\xAB \xF0\x9F\x93\xB1";  // UTF-8, 4-byte emoji
  hello.last_cursor = 18'446;
  hello.access_token = "inv-7f3a9c2e41d8";
  client("hello-token-utf8", hello);

  Welcome welcome{0x5eed'0001, 0x9a3f'77c1'0b2e'4d15ull, 18'452, 6, limits, id<Signature>(10)};
  reply("welcome", 2, welcome);

  relay("bye-shutdown", Bye{3001, "relay shutting down"});
  client("bye-normal", Bye{0, ""});

  client("push-small", Push{blob_id(kNowMs, 11), noise(24 + 16 + 57, 12), 0});
  client("push-4k-ttl", Push{blob_id(kNowMs + 1, 13), noise(4096, 14), 3600});
  client("push-empty-payload", Push{blob_id(kNowMs + 2, 15), {}, 7 * 24 * 3600});

  reply("push-ack", 7, PushAck{blob_id(kNowMs, 11), 18'453, kNowMs + 3, false});
  reply("push-ack-duplicate", 8, PushAck{blob_id(kNowMs, 11), 18'453, kNowMs + 3, true});

  client("pull-from-start", Pull{0, 0});
  client("pull-after", Pull{18'400, 100});
  client("pull-pages", Pull{0, 0, 16});

  reply("pull-response-empty", 10, PullResponse{{}, false, 18'453});
  PullResponse page;
  for (std::uint64_t i = 0; i < 3; ++i) {
    page.blobs.push_back(PulledBlob{blob_id(kNowMs - 1000 + i, 20 + i), 18'401 + i, id<DeviceId>(5 + i % 2),
                                    kNowMs - 900 + i, noise(64 + 100 * i, 30 + i)});
  }
  page.has_more = true;
  page.max_cursor = 18'453;
  reply("pull-response-page", 11, page);
  page.continues = true;
  reply("pull-response-continues", 11, page);

  client("ack", Ack{18'404});

  relay("notify-inline", Notify{blob_id(kNowMs + 5, 40), 18'454, id<DeviceId>(6), kNowMs + 6, 97,
                                noise(97, 41)});
  relay("notify-no-payload", Notify{blob_id(kNowMs + 7, 42), 18'455, id<DeviceId>(6), kNowMs + 8, 900'000,
                                    std::nullopt});

  client("delete", Delete{blob_id(kNowMs, 11), false});
  client("delete-force", Delete{blob_id(kNowMs + 1, 13), true});
  reply("delete-ack", 12, DeleteAck{blob_id(kNowMs, 11), true});
  reply("delete-ack-not-stored", 13, DeleteAck{blob_id(kNowMs + 1, 13), false});

  client("revoke-device", RevokeDevice{id<DeviceId>(50), "lost phone"});
  relay("device-revoked", DeviceRevoked{id<DeviceId>(50), "lost phone", id<DeviceId>(5), kNowMs + 9});

  client("list-devices", ListDevices{});
  Devices devices;
  devices.devices.push_back(DeviceInfo{id<DeviceId>(5), "Ada's laptop", kNowMs, 18'404, true, false});
  devices.devices.push_back(DeviceInfo{id<DeviceId>(6), "T\xC3\xA9l\xC3\xA9phone", kNowMs - 86'400'000, 17'000,
                                       false, false});
  devices.devices.push_back(DeviceInfo{id<DeviceId>(50), "old tablet", kNowMs - 864'000'000, 9'000, false, true});
  reply("devices", 15, devices);

  client("register-push", RegisterPush{"fcm:" + to_hex(noise(48, 60)), "android"});
  client("unregister-push", UnregisterPush{"apns:" + to_hex(noise(32, 61)), "ios"});

  reply("error-invalid-message", 17, Error{1000, "PUSH: missing field 'blob_id'", 17});
  reply("error-rate-limited", 18, Error{2000, "rate limited: 100 messages per minute", 18});
  relay("error-relay-initiated", Error{1007, "HELLO did not arrive within 10 s", 0});
  return frames;
}

void write_frames(const fs::path& root) {
  Writer out(root / "decode_frame_fuzz");
  std::vector<MessageType> seen;
  Bytes any;
  for (const auto& [name, frame] : sample_frames()) {
    const Bytes bytes = encode_frame(frame);
    auto check = decode_frame(bytes);
    if (!check || !(*check == frame)) {
      std::fprintf(stderr, "make_corpus: seed %s does not round-trip\n", name.c_str());
      std::exit(1);
    }
    out.write(name + ".msgpack", bytes);
    seen.push_back(frame.type());
    if (name == "push-small") any = bytes;
  }
  // Every message type must have a seed: a new type added to messages.h without one fails here.
  for (int t = 0; t <= 0xff; ++t) {
    const auto type = static_cast<MessageType>(t);
    if (message_type_name(type) == "UNKNOWN") continue;
    if (std::find(seen.begin(), seen.end(), type) == seen.end()) {
      std::fprintf(stderr, "make_corpus: no seed for %s\n", std::string(message_type_name(type)).c_str());
      std::exit(1);
    }
  }
  // Near misses the decoder must refuse: a future version, and one trailing byte.
  Bytes v2 = any;
  v2[1] = 2;  // [fixarray(4), version, ...]
  out.write("reject-version-2.msgpack", v2);
  Bytes trailing = any;
  trailing.push_back(0xc0);
  out.write("reject-trailing-byte.msgpack", trailing);
  out.report();
}

void write_invites(const fs::path& root) {
  Writer out(root / "invite_fuzz");
  std::vector<std::pair<std::string, Invite>> invites;

  Invite one;
  one.relays.push_back({"wss://relay.example.org/v1/sync", id<RelayId>(70)});
  const Bytes secret = noise(32, 71);
  std::copy(secret.begin(), secret.end(), one.secret.begin());
  invites.emplace_back("one-relay", one);

  Invite named = one;
  named.relays = {{"ws://127.0.0.1:7600/v1/sync", id<RelayId>(72)}};
  named.group_name = "Family photos";
  named.expires_at_ms = kNowMs + 10 * 60 * 1000;
  invites.emplace_back("named-expiring", named);

  Invite several = one;
  several.relays = {{"wss://eu.relay.example.org:443/v1/sync", id<RelayId>(73)},
                    {"wss://us.relay.example.org/v1/sync", id<RelayId>(74)},
                    {"ws://[::1]:7600/v1/sync", id<RelayId>(75)}};
  several.group_name = "\xC3\x89quipe \xF0\x9F\x9A\x80 notes";
  several.expires_at_ms = kNowMs + 7 * 24 * 3600 * 1000ull;
  invites.emplace_back("three-relays-utf8-name", several);

  Invite full = one;
  full.relays.clear();
  for (std::uint64_t i = 0; i < kMaxInviteRelays; ++i) {
    full.relays.push_back({"wss://r" + std::to_string(i) + ".example.net/v1/sync?region=" + std::to_string(i),
                           id<RelayId>(80 + i)});
  }
  full.group_name = std::string(kMaxInviteNameBytes, 'g');
  invites.emplace_back("max-relays-max-name", full);

  for (const auto& [name, invite] : invites) {
    const std::string link = encode_invite(invite);
    auto check = decode_invite(link, 0);
    if (!check || !(*check == invite)) {
      std::fprintf(stderr, "make_corpus: invite %s does not round-trip\n", name.c_str());
      std::exit(1);
    }
    out.write(name + ".link", link);
    // The same payload raw: invite_fuzz wraps non-link inputs into a link itself.
    auto raw = from_base64url(std::string_view(link).substr(kInvitePrefix.size()));
    if (!raw) std::exit(1);
    out.write(name + ".msgpack", *raw);
  }
  // Padding is accepted on input: one padded link.
  std::string padded = encode_invite(named);
  while ((padded.size() - kInvitePrefix.size()) % 4 != 0) padded += '=';
  out.write("named-expiring-padded.link", padded);
  out.report();
}

void write_http(const fs::path& root) {
  Writer out(root / "http_fuzz");
  const std::string upgrade =
      "GET /v1/sync HTTP/1.1\r\n"
      "Host: relay.example.org\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "User-Agent: blindsync/0.1.0\r\n"
      "\r\n";
  out.write("health-curl.http",
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1:7600\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n");
  out.write("health-http10.http", "GET /health HTTP/1.0\r\n\r\n");
  out.write("health-query-close.http",
            "GET /health?verbose=1 HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
  out.write("head-health.http", "HEAD /health HTTP/1.1\r\nHost: relay\r\n\r\n");
  out.write("sync-upgrade.http", upgrade);
  // A client that sends its first (masked, binary) WebSocket frame right behind the upgrade.
  std::string upgrade_and_frame = upgrade;
  upgrade_and_frame += std::string("\x82\x84\x01\x02\x03\x04", 6) + std::string("\x95\x03\x02\x01", 4);
  out.write("sync-upgrade-then-frame.http", upgrade_and_frame);
  out.write("sync-upgrade-bad-version.http",
            "GET /v1/sync HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
            "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nSec-WebSocket-Version: 8\r\n\r\n");
  out.write("sync-no-upgrade.http", "GET /v1/sync HTTP/1.1\r\nHost: relay\r\n\r\n");
  out.write("post-health-body.http",
            "POST /health HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n"
            "{\"probe\":true}");
  out.write("post-sync-chunked.http",
            "POST /v1/sync HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n");
  out.write("metrics-prometheus.http",
            "GET /metrics HTTP/1.1\r\nHost: relay:9100\r\nUser-Agent: Prometheus/2.45.0\r\n"
            "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n"
            "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n");
  out.write("metrics-query-pipelined.http",
            "GET /metrics?name[]=blindsync_pushes_total HTTP/1.1\r\nHost: relay\r\n\r\n"
            "POST /metrics HTTP/1.1\r\nHost: relay\r\nContent-Length: 0\r\n\r\n"
            "GET /metrics HTTP/1.0\r\n\r\n");
  out.write("pipelined.http",
            "GET /health HTTP/1.1\r\nHost: relay\r\n\r\n"
            "GET /nope HTTP/1.1\r\nHost: relay\r\n\r\n"
            "DELETE /health HTTP/1.1\r\nHost: relay\r\nContent-Length: 0\r\n\r\n" +
                upgrade);
  out.write("options-star.http", "OPTIONS * HTTP/1.1\r\nHost: relay\r\n\r\n");
  out.write("absolute-target.http", "GET http://relay.example.org/health HTTP/1.1\r\nHost: relay\r\n\r\n");
  out.write("body-over-limit.http", "POST /health HTTP/1.1\r\nHost: relay\r\nContent-Length: 2048\r\n\r\n" +
                                        std::string(2048, 'x'));
  out.write("header-over-limit.http",
            "GET /health HTTP/1.1\r\nHost: relay\r\nCookie: " + std::string(9000, 'c') + "\r\n\r\n");
  out.write("obs-fold-and-dup.http",
            "GET /health HTTP/1.1\r\nHost: relay\r\nHost: other\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n"
            "Content-Length: 0\r\n\r\n");
  // The Boost 1.74 chunk-parser assertion (boostorg/beast#2861): a chunked body whose last chunk
  // and final CRLF arrive in separate reads. The relay refuses bodies after the header and never
  // parses a chunk; http_fuzz replays each input a second time in reads of 1 + size % 7 bytes, so
  // the padding makes that 1 byte per read, where the assertion used to fire.
  std::string chunked = "POST /health HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\nX-Pad: ";
  const std::string tail = "\r\n\r\n0\r\n\r\n";
  while ((chunked.size() + tail.size()) % 7 != 0) chunked += 'p';
  out.write("chunked-last-chunk-split.http", chunked + tail);
  out.report();
}

// A client's WebSocket frame (RFC 6455 5.2): the relay's header encoding with the mask bit and
// the mask added, then the payload masked. `fin` false: a fragment of a longer message.
Bytes client_frame(relay::ws::Opcode opcode, const Bytes& payload, std::uint64_t seed, bool fin = true) {
  std::array<std::uint8_t, relay::ws::kMaxServerHeaderBytes> header{};
  const std::size_t header_size = relay::ws::write_server_header(opcode, payload.size(), header);
  Bytes frame(header.begin(), header.begin() + static_cast<std::ptrdiff_t>(header_size));
  if (!fin) frame[0] &= 0x7F;
  frame[1] |= 0x80;
  const Bytes mask = noise(4, seed);
  frame.insert(frame.end(), mask.begin(), mask.end());
  for (std::size_t i = 0; i < payload.size(); ++i) {
    frame.push_back(static_cast<std::uint8_t>(payload[i] ^ mask[i % 4]));
  }
  return frame;
}

void write_websocket(const fs::path& root) {
  using relay::ws::Opcode;
  using Outcome = relay::ws::HeaderParse::Outcome;
  Writer out(root / "ws_frame_fuzz");
  // Each seed is checked: a frame parses to its payload size, a near miss is refused.
  const auto frame = [&](const std::string& name, const Bytes& bytes, std::uint64_t payload_size) {
    const auto parse = relay::ws::parse_client_header(bytes);
    if (parse.outcome != Outcome::kFrame || parse.header.payload_size != payload_size) {
      std::fprintf(stderr, "make_corpus: WebSocket seed %s does not parse\n", name.c_str());
      std::exit(1);
    }
    out.write(name + ".ws", bytes);
  };
  const auto refused = [&](const std::string& name, const Bytes& bytes) {
    if (relay::ws::parse_client_header(bytes).outcome != Outcome::kProtocolError) {
      std::fprintf(stderr, "make_corpus: WebSocket seed %s is not refused\n", name.c_str());
      std::exit(1);
    }
    out.write(name + ".ws", bytes);
  };

  // RFC 6455 5.7: a single-frame masked text message "Hello".
  frame("rfc-text-hello", Bytes{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, 5);
  frame("binary-short", client_frame(Opcode::kBinary, Bytes{0x95, 0x03, 0x02, 0x01}, 90), 4);
  frame("binary-125", client_frame(Opcode::kBinary, noise(125, 91), 92), 125);
  frame("binary-126", client_frame(Opcode::kBinary, noise(126, 93), 94), 126);  // 16-bit length
  // A real protocol frame, as the relay receives a PUSH.
  for (const auto& [name, f] : sample_frames()) {
    if (name != "push-small") continue;
    const Bytes push = encode_frame(f);
    frame("binary-push-small", client_frame(Opcode::kBinary, push, 95), push.size());
  }
  // 64-bit length: the header of a 65536-byte message and the start of its payload.
  Bytes big = client_frame(Opcode::kBinary, noise(65536, 96), 97);
  big.resize(14 + 64);
  frame("binary-65536-head", big, 65536);
  // A message in two fragments, the second behind the first.
  Bytes fragments = client_frame(Opcode::kBinary, noise(10, 98), 99, false);
  const Bytes last = client_frame(Opcode::kContinuation, noise(6, 100), 101);
  fragments.insert(fragments.end(), last.begin(), last.end());
  frame("binary-fragmented", fragments, 10);
  frame("ping", client_frame(Opcode::kPing, noise(8, 102), 103), 8);
  frame("pong-empty", client_frame(Opcode::kPong, {}, 104), 0);
  frame("close-empty", client_frame(Opcode::kClose, {}, 105), 0);
  const Bytes normal = relay::ws::make_close_payload(wire::kCloseNormal, "");
  frame("close-1000", client_frame(Opcode::kClose, normal, 106), normal.size());
  const Bytes going_away =
      relay::ws::make_close_payload(1001, "au revoir \xC3\xA0 bient\xC3\xB4t \xF0\x9F\x91\x8B");
  frame("close-1001-utf8-reason", client_frame(Opcode::kClose, going_away, 107), going_away.size());
  const Bytes too_long = relay::ws::make_close_payload(4000, std::string(200, 'r'));  // cut to 125
  frame("close-4000-longest", client_frame(Opcode::kClose, too_long, 108), too_long.size());

  // Close payloads on their own (ws_frame_fuzz also parses the whole input as one).
  out.write("close-payload-1000.close", normal);
  out.write("close-payload-1001-utf8.close", going_away);
  out.write("close-payload-bad-utf8.close", Bytes{0x03, 0xE8, 0xC3, 0x28});
  out.write("close-payload-1005-reserved.close", Bytes{0x03, 0xED});

  // Near misses the relay refuses (close code 1002).
  Bytes unmasked = client_frame(Opcode::kBinary, Bytes{1, 2, 3, 4}, 110);
  unmasked[1] &= 0x7F;
  unmasked.erase(unmasked.begin() + 2, unmasked.begin() + 6);
  refused("reject-unmasked", unmasked);
  Bytes rsv1 = client_frame(Opcode::kText, noise(12, 111), 112);
  rsv1[0] |= 0x40;  // permessage-deflate's bit, never negotiated
  refused("reject-rsv1", rsv1);
  refused("reject-opcode-3", Bytes{0x83, 0x80, 1, 2, 3, 4});
  refused("reject-ping-fragmented", Bytes{0x09, 0x80, 1, 2, 3, 4});
  refused("reject-close-126", Bytes{0x88, 0xFE, 0x00, 0x7E, 1, 2, 3, 4});
  refused("reject-16-bit-length-100", Bytes{0x82, 0xFE, 0x00, 0x64, 1, 2, 3, 4});
  refused("reject-64-bit-length-65535", Bytes{0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4});
  refused("reject-64-bit-length-top-bit", Bytes{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4});
  out.report();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus <corpus-dir>\n");
    return 2;
  }
  const fs::path root(argv[1]);
  write_frames(root);
  write_invites(root);
  write_http(root);
  write_websocket(root);
  return 0;
}
