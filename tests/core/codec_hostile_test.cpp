// Hostile input: sizes, truncation, huge container headers, nesting, garbage. Every case must
// fail cleanly with a Status (never throw, crash or allocate per the claimed size).
#include <catch2/catch.hpp>

#include "blindsync/core/codec.h"
#include "blindsync/core/wire_format.h"
#include "msgpack_edit.h"
#include "sample_frames.h"

using namespace blindsync;

namespace {

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

Bytes hex(std::string_view text) {
  auto b = from_hex(text);
  REQUIRE(b.has_value());
  return *b;
}

// [1, type, 0, <body written by f>]
Bytes frame_with_body(std::uint8_t type, const std::function<void(test::Packer&)>& body) {
  return test::build([&](test::Packer& pk) {
    pk.pack_array(4);
    pk.pack_uint8(1);
    pk.pack_uint8(type);
    pk.pack_uint8(0);
    body(pk);
  });
}

Status error_of(const Bytes& bytes, const DecodeLimits& limits = {}) {
  auto r = decode_frame(bytes, limits);
  return r.has_value() ? Status() : r.error();
}

}  // namespace

TEST_CASE("decoder rejects a frame over the size limit before parsing it", "[codec][hostile]") {
  // 0xc1 is never valid MessagePack: the size check must come first to give this message.
  const Bytes big(2'000'000, 0xc1);
  const Status st = error_of(big);
  CHECK(st.code() == Code::kInvalidMessage);
  CHECK(st.message() == "frame of 2000000 bytes exceeds limit 1064960");

  auto peek = peek_frame_header(big);
  REQUIRE_FALSE(peek.has_value());
  CHECK(peek.error().message() == "frame of 2000000 bytes exceeds limit 1064960");

  DecodeLimits small;
  small.max_frame_bytes = 10;
  const Bytes push = encode_frame(Frame{1, Push{}});
  REQUIRE(push.size() > 10);
  CHECK(error_of(push, small).message() == "frame of " + std::to_string(push.size()) + " bytes exceeds limit 10");
}

TEST_CASE("decoder rejects an empty frame", "[codec][hostile]") {
  CHECK(error_of({}).message() == "empty frame");
  CHECK_FALSE(peek_frame_header({}).has_value());
}

TEST_CASE("decoder rejects a bin over the payload limit", "[codec][hostile]") {
  Push p;
  p.payload = Bytes(kDefaultMaxBlobBytes + 1, 1);
  const Bytes bytes = encode_frame(Frame{1, p});
  const Status st = error_of(bytes);
  CHECK(st.code() == Code::kInvalidMessage);
  CHECK(st.message() == "malformed frame: a bin is longer than 1048576 bytes");

  DecodeLimits tight;
  tight.max_payload_bytes = 64;  // ids (<= 64) still fit
  Push small;
  small.payload = Bytes(65, 2);
  CHECK(contains(error_of(encode_frame(Frame{1, small}), tight).message(), "a bin is longer than 64 bytes"));
  small.payload = Bytes(64, 2);
  CHECK(decode_frame(encode_frame(Frame{1, small}), tight).has_value());
}

TEST_CASE("decoder rejects a str over the string limit", "[codec][hostile]") {
  const Status st = error_of(encode_frame(Frame{1, Bye{0, std::string(kMaxStringBytes + 1, 'a')}}));
  CHECK(st.code() == Code::kInvalidMessage);
  CHECK(st.message() == "malformed frame: a str is longer than 4096 bytes");
  CHECK(decode_frame(encode_frame(Frame{1, Bye{0, std::string(kMaxStringBytes, 'a')}})).has_value());
}

TEST_CASE("decoder rejects an array over the item limit", "[codec][hostile]") {
  Devices d;
  d.devices.resize(kMaxArrayItems + 1);
  DecodeLimits big_frames;
  big_frames.max_frame_bytes = 64 * 1024 * 1024;
  const Status st = error_of(encode_frame(Frame{1, d}), big_frames);
  CHECK(st.message() == "malformed frame: an array has more than 10000 items");

  DecodeLimits three;
  three.max_array_items = 3;
  Challenge c;
  c.versions = {1, 2, 3, 4};
  CHECK(error_of(encode_frame(Frame{1, c}), three).message() == "CHALLENGE: field 'versions' has 4 items, limit 3");
  Devices four;
  four.devices.resize(4);
  CHECK(error_of(encode_frame(Frame{1, four}), three).message() == "DEVICES: field 'devices' has 4 items, limit 3");
  PullResponse five;
  five.blobs.resize(5);
  DecodeLimits eight = three;
  eight.max_array_items = 8;
  CHECK(decode_frame(encode_frame(Frame{1, five}), eight).has_value());
  CHECK(contains(error_of(encode_frame(Frame{1, five}), three).message(), "more than 4 items"));
  c.versions = {1, 2, 3};
  CHECK(decode_frame(encode_frame(Frame{1, c}), three).has_value());
}

TEST_CASE("decoder rejects a map over the entry limit", "[codec][hostile]") {
  const Bytes bytes = frame_with_body(0x22, [](test::Packer& pk) {
    pk.pack_map(static_cast<std::uint32_t>(wire::kMaxMapEntries + 1));
    for (std::size_t i = 0; i <= wire::kMaxMapEntries; ++i) {
      test::pack_str(pk, i == 0 ? std::string("acked_cursor") : "k" + std::to_string(i));
      pk.pack_uint8(1);
    }
  });
  CHECK(error_of(bytes).message() == "malformed frame: a map has more than 32 entries");
}

TEST_CASE("decoder rejects trailing bytes", "[codec][hostile]") {
  for (const Frame& frame : test::sample_frames()) {
    Bytes bytes = encode_frame(frame);
    bytes.push_back(0x00);
    const Status st = error_of(bytes);
    INFO(message_type_name(frame.type()));
    CHECK(st.code() == Code::kInvalidMessage);
    CHECK(st.message() == "frame has 1 trailing byte");
  }
  Bytes two = encode_frame(Frame{1, Ack{3}});
  const Bytes copy = two;
  two.insert(two.end(), copy.begin(), copy.end());  // two frames back to back
  CHECK(error_of(two).message() == "frame has " + std::to_string(copy.size()) + " trailing bytes");
}

TEST_CASE("decoder rejects unknown message types", "[codec][hostile]") {
  for (unsigned type : {0x00u, 0x05u, 0x12u, 0x30u, 0x7fu, 0xfeu}) {
    const Bytes bytes = frame_with_body(static_cast<std::uint8_t>(type), [](test::Packer& pk) { pk.pack_map(0); });
    const Status st = error_of(bytes);
    CHECK(st.code() == Code::kInvalidMessage);
    CHECK(st.message() == "unknown message type " + std::to_string(type));
  }
  const Bytes wide = test::build([](test::Packer& pk) {
    pk.pack_array(4);
    pk.pack_uint8(1);
    pk.pack_uint16(0x110);  // 0x10 with a high byte must not alias PUSH
    pk.pack_uint8(0);
    pk.pack_map(0);
  });
  CHECK(error_of(wide).message() == "unknown message type 272");
}

TEST_CASE("decoder rejects other protocol versions with UNSUPPORTED_VERSION", "[codec][hostile]") {
  for (std::uint64_t version : {std::uint64_t{0}, std::uint64_t{2}, std::uint64_t{255}, std::uint64_t{1} << 40}) {
    const Bytes bytes = test::build([version](test::Packer& pk) {
      pk.pack_array(4);
      pk.pack_uint64(version);
      pk.pack_uint8(0x10);
      pk.pack_uint8(0);
      pk.pack_map(0);
    });
    const Status st = error_of(bytes);
    CHECK(st.code() == Code::kUnsupportedVersion);
    CHECK(st.message() == "protocol version " + std::to_string(version) + " is not supported (supported: 1)");
  }
  // A future version may change the frame shape: the version is judged first.
  const Bytes v2_other_shape = test::build([](test::Packer& pk) {
    pk.pack_array(2);
    pk.pack_uint8(2);
    test::pack_str(pk, "hi");
  });
  CHECK(error_of(v2_other_shape).code() == Code::kUnsupportedVersion);
}

TEST_CASE("decoder rejects a frame array of the wrong shape", "[codec][hostile]") {
  CHECK(error_of(hex("90")).message() == "frame array is empty");
  CHECK(error_of(hex("93011000")).message() == "frame array must have 4 elements, got 3");
  CHECK(error_of(hex("9501220080c0")).message() == "frame array must have 4 elements, got 5");
  CHECK(error_of(hex("94a1311000" "80")).message() == "frame version must be an unsigned integer, got str");
  CHECK(error_of(hex("94ff100080")).message() == "frame version must be an unsigned integer, got negative integer");
  CHECK(error_of(hex("9401a1310080")).message() == "frame type must be an unsigned integer, got str");
  CHECK(error_of(hex("940110ff80")).code() == Code::kInvalidMessage);
  CHECK(error_of(hex("940110cf000000010000000080")).message() ==
        "frame request_id must be an unsigned 32-bit integer");
  CHECK(error_of(hex("94011000c0")).message() == "PUSH: body must be a map, got nil");
}

TEST_CASE("decoder rejects a top level that is not an array", "[codec][hostile]") {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"80", "map"}, {"01", "unsigned integer"}, {"ff", "negative integer"}, {"c0", "nil"}, {"c3", "bool"},
      {"a3616263", "str"}, {"c40100", "bin"}, {"cb3ff0000000000000", "float"},
  };
  for (auto [h, name] : cases) {
    INFO(h);
    CHECK(error_of(hex(h)).message() == "frame must be a MessagePack array, got " + std::string(name));
  }
}

TEST_CASE("every prefix of a valid frame fails cleanly", "[codec][hostile]") {
  for (const Frame& frame : test::sample_frames()) {
    Bytes bytes = encode_frame(frame);
    if (bytes.size() > 2000) continue;  // the PULL_RESPONSE sample is large; a small one follows
    INFO(message_type_name(frame.type()));
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      const Status st = error_of(Bytes(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
      REQUIRE_FALSE(st.is_ok());
      CHECK(st.code() == Code::kInvalidMessage);
      (void)peek_frame_header(Bytes(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
    }
  }
  PullResponse small;
  small.blobs.push_back(PulledBlob{test::make_id<BlobId>(1), 1, test::make_id<DeviceId>(2), 3, Bytes{1, 2, 3}});
  small.blobs.push_back(PulledBlob{test::make_id<BlobId>(4), 2, test::make_id<DeviceId>(5), 6, Bytes{}});
  const Bytes bytes = encode_frame(Frame{9, small});
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const Status st = error_of(Bytes(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
    REQUIRE_FALSE(st.is_ok());
  }
  CHECK(error_of(Bytes(bytes.begin(), bytes.end() - 1)).message() == "malformed frame: truncated");
}

TEST_CASE("huge container and string headers fail fast on the limit", "[codec][hostile]") {
  // Each claims ~2^32 elements or bytes in 5 bytes; the limit must stop it, not the missing data.
  CHECK(error_of(hex("ddffffffff")).message() == "malformed frame: an array has more than 10000 items");
  CHECK(error_of(hex("dfffffffff")).message() == "malformed frame: a map has more than 32 entries");
  CHECK(error_of(hex("94011000" "dfffffffff")).message() == "malformed frame: a map has more than 32 entries");
  CHECK(error_of(hex("94011000" "81a178" "ddffffffff")).message() ==
        "malformed frame: an array has more than 10000 items");
  CHECK(error_of(hex("940110" "00" "81a178" "dc2711")).message() ==
        "malformed frame: an array has more than 10000 items");
  // str/bin headers claiming more bytes than the frame has: truncated or over the limit, never allocated.
  for (std::string_view h : {"dbffffffff", "c6ffffffff", "c9ffffffff01", "94011000" "81a178" "c6ffffffff",
                             "94011000" "81" "dbffffffff"}) {
    INFO(h);
    const Status st = error_of(hex(h));
    REQUIRE_FALSE(st.is_ok());
    CHECK(st.code() == Code::kInvalidMessage);
  }
  // With the bytes present, an over-long str is stopped by the limit.
  Bytes long_key = hex("94011000" "81" "da1001");
  long_key.resize(long_key.size() + 0x1001, 'a');
  long_key.push_back(0xc0);
  CHECK(error_of(long_key).message() == "malformed frame: a str is longer than 4096 bytes");
}

TEST_CASE("deep nesting is rejected", "[codec][hostile]") {
  // [1, 0x22, 0, {"x": [[[[...]]]]}] with 10000 levels: must fail on depth, not recurse 10000 times.
  Bytes deep = hex("94012200" "81a178");
  deep.insert(deep.end(), 10000, 0x91);
  deep.push_back(0x00);
  CHECK(error_of(deep).message() == "malformed frame: nested deeper than 6 levels");

  // Exactly at the limit (frame array, body map, 4 more arrays) an unknown key is fine.
  Bytes ok = hex("94012200" "82a178" "91919191c0" "ac61636b65645f637572736f7201");
  auto r = decode_frame(ok);
  REQUIRE(r.has_value());
  CHECK(std::get<Ack>(r->message).acked_cursor == 1);
  Bytes over = hex("94012200" "82a178" "9191919191c0" "ac61636b65645f637572736f7201");
  CHECK(error_of(over).message() == "malformed frame: nested deeper than 6 levels");

  // Deep maps too.
  Bytes maps = hex("94012200");
  for (int i = 0; i < 1000; ++i) {
    maps.push_back(0x81);
    maps.push_back(0xa1);
    maps.push_back('k');
  }
  maps.push_back(0xc0);
  CHECK(contains(error_of(maps).message(), "nested deeper"));
}

TEST_CASE("ext types are rejected anywhere", "[codec][hostile]") {
  CHECK(error_of(hex("d40100")).message() == "malformed frame: ext types are not allowed");
  // An ext hidden in an unknown key of a valid ACK.
  CHECK(error_of(hex("94012200" "82a178d40100" "ac61636b65645f637572736f7201")).message() ==
        "malformed frame: ext types are not allowed");
}

TEST_CASE("bytes that are not MessagePack are rejected", "[codec][hostile]") {
  CHECK(error_of(hex("c1")).message() == "malformed frame: not valid MessagePack");
  CHECK(error_of(hex("94012200c1")).message() == "malformed frame: not valid MessagePack");
  // Deterministic pseudo-random garbage of many lengths never crashes.
  std::uint32_t seed = 12345;
  for (int round = 0; round < 2000; ++round) {
    Bytes junk(static_cast<std::size_t>(round % 97));
    for (auto& b : junk) {
      seed = seed * 1664525u + 1013904223u;
      b = static_cast<std::uint8_t>(seed >> 24);
    }
    if (!junk.empty() && round % 3 == 0) junk[0] = 0x94;  // look like a frame
    auto r = decode_frame(junk);
    (void)peek_frame_header(junk);
    if (r.has_value()) {
      auto again = decode_frame(encode_frame(*r));
      REQUIRE(again.has_value());
      CHECK(*again == *r);
    } else {
      CHECK((r.error().code() == Code::kInvalidMessage || r.error().code() == Code::kUnsupportedVersion));
    }
  }
}

TEST_CASE("mutating single bytes of valid frames never crashes the decoder", "[codec][hostile]") {
  int rejected = 0;
  for (const Frame& frame : test::sample_frames()) {
    const Bytes bytes = encode_frame(frame);
    if (bytes.size() > 2000) continue;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      for (std::uint8_t v : {std::uint8_t{0x00}, std::uint8_t{0xff}, std::uint8_t{0xdd}, std::uint8_t{0xc1},
                             static_cast<std::uint8_t>(bytes[i] ^ 0x01)}) {
        Bytes m = bytes;
        m[i] = v;
        auto r = decode_frame(m);
        if (!r.has_value()) {
          ++rejected;
          CHECK((r.error().code() == Code::kInvalidMessage || r.error().code() == Code::kUnsupportedVersion));
        } else {
          // Whatever was accepted is a real frame: it survives a round trip unchanged.
          auto again = decode_frame(encode_frame(*r));
          REQUIRE(again.has_value());
          CHECK(*again == *r);
        }
      }
    }
  }
  CHECK(rejected > 100);
}

TEST_CASE("peek_frame_header reads the header of a frame whose body is bad", "[codec][hostile]") {
  // PUSH, request_id 0x01020304, body nested too deep and then truncated.
  Bytes bad = hex("940110ce01020304" "81a178");
  bad.insert(bad.end(), 50, 0x91);
  CHECK_FALSE(decode_frame(bad).has_value());
  auto h = peek_frame_header(bad);
  REQUIRE(h.has_value());
  CHECK(h->version == 1);
  CHECK(h->type == 0x10);
  CHECK(h->request_id == 0x01020304u);

  auto v2 = peek_frame_header(hex("94020500"));
  REQUIRE(v2.has_value());
  CHECK(v2->version == 2);
  CHECK(v2->type == 5);

  for (std::string_view h2 : {"", "80", "92", "920110", "9401", "940110", "94a1311000", "9401cd010000", "94ff1000",
                              "9401100f" /* ok */}) {
    auto r = peek_frame_header(hex(h2));
    INFO(h2);
    if (h2 == "9401100f") {
      CHECK(r.has_value());
    } else {
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().code() == Code::kInvalidMessage);
    }
  }
}
