// Golden bytes: the PUSH example of docs/wire.md, byte for byte.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "blindsync/core/codec.h"
#include "sample_frames.h"

using namespace blindsync;

namespace {
// docs/wire.md, "Golden example": PUSH, request_id 7, blob_id 00..0f, payload "hello", ttl 3600.
constexpr std::string_view kGoldenPushHex =
    "94"                                  // array of 4
    "01"                                  // version 1
    "10"                                  // type 0x10 PUSH
    "07"                                  // request_id 7
    "83"                                  // body: map of 3
    "a7" "626c6f625f6964"                 // "blob_id"
    "c4" "10" "000102030405060708090a0b0c0d0e0f"  // bin 16
    "a7" "7061796c6f6164"                 // "payload"
    "c4" "05" "68656c6c6f"                // bin 5 "hello"
    "ab" "74746c5f7365636f6e6473"         // "ttl_seconds"
    "cd" "0e10";                          // uint16 3600

Frame golden_push() {
  Push p;
  p.blob_id = test::make_id<BlobId>(0);
  p.payload = Bytes{'h', 'e', 'l', 'l', 'o'};
  p.ttl_seconds = 3600;
  return Frame{7, p};
}
}  // namespace

TEST_CASE("PUSH encodes to the golden bytes of docs/wire.md", "[codec][golden]") {
  CHECK(to_hex(encode_frame(golden_push())) == kGoldenPushHex);
}

TEST_CASE("golden PUSH bytes decode to the documented frame", "[codec][golden]") {
  auto bytes = from_hex(kGoldenPushHex);
  REQUIRE(bytes.has_value());
  auto frame = decode_frame(*bytes);
  REQUIRE(frame.has_value());
  CHECK(*frame == golden_push());
}

TEST_CASE("ERROR frame has its documented layout", "[codec][golden]") {
  // [1, 0xff, 0, {"code": 1006, "message": "x", "request_id": 7}]
  const std::string_view hex =
      "94" "01" "ccff" "00" "83"
      "a4" "636f6465" "cd03ee"
      "a7" "6d657373616765" "a178"
      "aa" "726571756573745f6964" "07";
  CHECK(to_hex(encode_frame(Frame{0, Error{1006, "x", 7}})) == hex);
}

TEST_CASE("DELETE_ACK frame has its documented layout", "[codec][golden]") {
  // docs/wire.md, "DELETE_ACK": [1, 0x41, 9, {"blob_id": 00..0f, "removed": true}]
  const std::string_view hex =
      "94" "01" "41" "09" "82"
      "a7" "626c6f625f6964" "c410" "000102030405060708090a0b0c0d0e0f"
      "a7" "72656d6f766564" "c3";
  const Frame ack{9, DeleteAck{test::make_id<BlobId>(0), true}};
  CHECK(to_hex(encode_frame(ack)) == hex);
  auto bytes = from_hex(hex);
  REQUIRE(bytes.has_value());
  auto frame = decode_frame(*bytes);
  REQUIRE(frame.has_value());
  CHECK(*frame == ack);
  // removed = false is c2; the decoder accepts the keys in any order.
  const std::string_view reordered =
      "94" "01" "41" "09" "82"
      "a7" "72656d6f766564" "c2"
      "a7" "626c6f625f6964" "c410" "000102030405060708090a0b0c0d0e0f";
  auto other = decode_frame(*from_hex(reordered));
  REQUIRE(other.has_value());
  CHECK(*other == Frame{9, DeleteAck{test::make_id<BlobId>(0), false}});
}

TEST_CASE("docs/wire.md shows the same golden bytes as this test", "[codec][golden]") {
  std::ifstream in(BLINDSYNC_WIRE_DOC);
  REQUIRE(in.good());
  std::stringstream doc;
  doc << in.rdbuf();
  const std::string text = doc.str();
  const auto at = text.find("As one hex string");
  REQUIRE(at != std::string::npos);
  const auto open = text.find("```\n", at);
  REQUIRE(open != std::string::npos);
  const auto close = text.find("\n```", open + 4);
  REQUIRE(close != std::string::npos);
  CHECK(text.substr(open + 4, close - open - 4) == kGoldenPushHex);
}

TEST_CASE("docs/wire.md shows the DELETE_ACK bytes that the codec writes", "[codec][golden]") {
  std::ifstream in(BLINDSYNC_WIRE_DOC);
  REQUIRE(in.good());
  std::stringstream doc;
  doc << in.rdbuf();
  const std::string text = doc.str();
  const auto at = text.find("DELETE_ACK with `request_id` 9");
  REQUIRE(at != std::string::npos);
  const auto open = text.find("```\n", at);
  REQUIRE(open != std::string::npos);
  const auto close = text.find("\n```", open + 4);
  REQUIRE(close != std::string::npos);
  // Each line: hex byte pairs, then a comment.
  std::istringstream block(text.substr(open + 4, close - open - 4));
  std::string line;
  std::string hex;
  while (std::getline(block, line)) {
    std::istringstream words(line);
    std::string word;
    while (words >> word && word.size() == 2 && from_hex(word).has_value()) hex += word;
  }
  CHECK(hex == to_hex(encode_frame(Frame{9, DeleteAck{test::make_id<BlobId>(0), true}})));
}
