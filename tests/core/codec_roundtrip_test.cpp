#include <catch2/catch.hpp>

#include <set>

#include "blindsync/core/codec.h"
#include "sample_frames.h"

using namespace blindsync;

TEST_CASE("samples cover every message type with distinct frames", "[codec]") {
  const auto frames = test::sample_frames();
  const auto types = test::all_message_types();
  REQUIRE(frames.size() == types.size());
  std::set<MessageType> seen;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    CHECK(frames[i].type() == types[i]);
    seen.insert(frames[i].type());
  }
  CHECK(seen.size() == types.size());
}

TEST_CASE("every message type round-trips through the codec", "[codec]") {
  for (const Frame& frame : test::sample_frames()) {
    INFO(message_type_name(frame.type()));
    const Bytes bytes = encode_frame(frame);
    auto decoded = decode_frame(bytes, DecodeLimits{});
    REQUIRE(decoded.has_value());
    CHECK(decoded->request_id == frame.request_id);
    CHECK(decoded->type() == frame.type());
    CHECK(*decoded == frame);
    // Canonical: re-encoding the decoded frame gives the same bytes.
    CHECK(encode_frame(*decoded) == bytes);
  }
}

TEST_CASE("default-valued messages round-trip too", "[codec]") {
  const Message defaults[] = {Hello{}, Welcome{}, Challenge{}, Bye{}, Push{}, PushAck{}, Pull{}, PullResponse{},
                              Ack{}, Notify{}, Delete{}, DeleteAck{}, RevokeDevice{}, DeviceRevoked{}, ListDevices{},
                              Devices{}, RegisterPush{}, UnregisterPush{}, Error{}};
  for (const Message& m : defaults) {
    const Frame frame{0, m};
    INFO(message_type_name(frame.type()));
    auto decoded = decode_frame(encode_frame(frame));
    REQUIRE(decoded.has_value());
    CHECK(*decoded == frame);
  }
}

TEST_CASE("NOTIFY without payload decodes to nullopt and with an empty payload to empty", "[codec]") {
  Notify n;
  n.blob_id = test::make_id<BlobId>(1);
  n.cursor = 9;
  n.size = 5000;
  auto none = decode_frame(encode_frame(Frame{0, n}));
  REQUIRE(none.has_value());
  CHECK_FALSE(std::get<Notify>(none->message).payload.has_value());

  n.payload = Bytes{};
  auto empty = decode_frame(encode_frame(Frame{0, n}));
  REQUIRE(empty.has_value());
  REQUIRE(std::get<Notify>(empty->message).payload.has_value());
  CHECK(std::get<Notify>(empty->message).payload->empty());
  // Absent and empty are different frames.
  n.payload.reset();
  CHECK(encode_frame(Frame{0, n}) != encode_frame(Frame{0, Notify{n.blob_id, 9, {}, 0, 5000, Bytes{}}}));
}

TEST_CASE("HELLO without access token omits the key and decodes to an empty token", "[codec]") {
  Hello h;
  h.device_name = "x";
  const Bytes without = encode_frame(Frame{1, h});
  h.access_token = "t";
  const Bytes with = encode_frame(Frame{1, h});
  CHECK(with.size() > without.size() + 12);  // "access_token" key + value
  auto decoded = decode_frame(without);
  REQUIRE(decoded.has_value());
  CHECK(std::get<Hello>(decoded->message).access_token.empty());
}

TEST_CASE("PULL pages and PULL_RESPONSE continues are optional: left out at their defaults, which a peer "
          "that predates them assumes",
          "[codec]") {
  // At the defaults the bytes are what they were before the fields existed (map of 2 and of 3).
  const Bytes one_page = encode_frame(Frame{1, Pull{5, 10}});
  CHECK(one_page == encode_frame(Frame{1, Pull{5, 10, 1}}));
  CHECK(one_page.size() + 7 == encode_frame(Frame{1, Pull{5, 10, 8}}).size());  // "pages" + 8
  auto decoded = decode_frame(one_page);
  REQUIRE(decoded.has_value());
  CHECK(std::get<Pull>(decoded->message).pages == 1);

  auto paged = decode_frame(encode_frame(Frame{1, Pull{5, 10, 16}}));
  REQUIRE(paged.has_value());
  CHECK(std::get<Pull>(paged->message) == Pull{5, 10, 16});

  PullResponse page{{}, true, 9, false};
  const Bytes last = encode_frame(Frame{2, page});
  auto last_decoded = decode_frame(last);
  REQUIRE(last_decoded.has_value());
  CHECK_FALSE(std::get<PullResponse>(last_decoded->message).continues);
  page.continues = true;
  const Bytes more = encode_frame(Frame{2, page});
  CHECK(more.size() == last.size() + 11);  // "continues" + true
  auto more_decoded = decode_frame(more);
  REQUIRE(more_decoded.has_value());
  CHECK(std::get<PullResponse>(more_decoded->message) == page);
}

TEST_CASE("a PUSH with a maximum-size payload fits the default frame limit", "[codec]") {
  Push p;
  p.blob_id = test::make_id<BlobId>(3);
  p.payload = test::make_payload(kDefaultMaxBlobBytes, 9);
  p.ttl_seconds = kDefaultMaxTtlSeconds;
  const Bytes bytes = encode_frame(Frame{0xffffffffu, p});
  CHECK(bytes.size() <= kDefaultMaxFrameBytes);
  auto decoded = decode_frame(bytes);
  REQUIRE(decoded.has_value());
  CHECK(decoded->request_id == 0xffffffffu);
  CHECK(std::get<Push>(decoded->message) == p);
}

TEST_CASE("integers at their type's maximum round-trip", "[codec]") {
  PushAck a{test::make_id<BlobId>(1), ~Cursor{0}, ~std::uint64_t{0}, false};
  auto d1 = decode_frame(encode_frame(Frame{0, a}));
  REQUIRE(d1.has_value());
  CHECK(std::get<PushAck>(d1->message) == a);
  Error e{0xffff, "m", 0xffffffffu};
  auto d2 = decode_frame(encode_frame(Frame{0, e}));
  REQUIRE(d2.has_value());
  CHECK(std::get<Error>(d2->message) == e);
}

TEST_CASE("peek_frame_header reads version, type and request id", "[codec]") {
  for (const Frame& frame : test::sample_frames()) {
    auto h = peek_frame_header(encode_frame(frame));
    REQUIRE(h.has_value());
    CHECK(h->version == kProtocolVersion);
    CHECK(h->type == static_cast<std::uint8_t>(frame.type()));
    CHECK(h->request_id == frame.request_id);
  }
}

TEST_CASE("message_type_name names every type", "[codec]") {
  CHECK(message_type_name(MessageType::kPushAck) == "PUSH_ACK");
  CHECK(message_type_name(MessageType::kPullResponse) == "PULL_RESPONSE");
  CHECK(message_type_name(MessageType::kError) == "ERROR");
  CHECK(message_type_name(MessageType::kDeleteAck) == "DELETE_ACK");
  CHECK(message_type_name(static_cast<MessageType>(0x7f)) == "UNKNOWN");
  for (auto t : test::all_message_types()) CHECK(message_type_name(t) != "UNKNOWN");
}
