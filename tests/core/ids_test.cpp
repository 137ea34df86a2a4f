#include <catch2/catch.hpp>

#include <unordered_set>

#include "blindsync/core/ids.h"
#include "sample_frames.h"

using namespace blindsync;

TEST_CASE("fixed ids have the protocol sizes", "[ids]") {
  STATIC_REQUIRE(DeviceId::kSize == 32);
  STATIC_REQUIRE(GroupId::kSize == 32);
  STATIC_REQUIRE(RelayId::kSize == 32);
  STATIC_REQUIRE(BlobId::kSize == 16);
  STATIC_REQUIRE(Nonce::kSize == 32);
  STATIC_REQUIRE(Signature::kSize == 64);
}

TEST_CASE("from_bytes checks the length exactly", "[ids]") {
  const Bytes b31(31, 1), b32(32, 1), b33(33, 1);
  auto short_id = DeviceId::from_bytes(b31);
  REQUIRE_FALSE(short_id.has_value());
  CHECK(short_id.error().code() == Code::kInvalidArgument);
  CHECK(short_id.error().message() == "device id must be 32 bytes, got 31");
  CHECK_FALSE(DeviceId::from_bytes(b33).has_value());
  CHECK_FALSE(DeviceId::from_bytes({}).has_value());
  auto ok = DeviceId::from_bytes(b32);
  REQUIRE(ok.has_value());
  CHECK(ok->bytes()[0] == 1);
  CHECK_FALSE(BlobId::from_bytes(b32).has_value());
  CHECK(BlobId::from_bytes(Bytes(16, 2)).has_value());
  CHECK_FALSE(Signature::from_bytes(b32).has_value());
  CHECK(Signature::from_bytes(Bytes(64, 3)).has_value());
}

TEST_CASE("ids round-trip through hex and base64url", "[ids]") {
  const auto id = test::make_id<GroupId>(0xA0);
  const std::string hex = id.to_hex();
  CHECK(hex.size() == 64);
  CHECK(hex.substr(0, 6) == "a0a1a2");
  auto from_hex_id = GroupId::parse_hex(hex);
  REQUIRE(from_hex_id.has_value());
  CHECK(*from_hex_id == id);
  const std::string b64 = id.to_base64url();
  CHECK(b64.size() == 43);
  auto from_b64 = GroupId::parse_base64url(b64);
  REQUIRE(from_b64.has_value());
  CHECK(*from_b64 == id);
}

TEST_CASE("id parsing rejects wrong lengths and bad text", "[ids]") {
  const auto id = test::make_id<BlobId>(1);
  const std::string hex = id.to_hex();
  CHECK_FALSE(BlobId::parse_hex(hex.substr(0, 30)).has_value());
  CHECK_FALSE(BlobId::parse_hex(hex + "00").has_value());
  auto bad = BlobId::parse_hex(hex.substr(0, 31));
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code() == Code::kInvalidArgument);
  CHECK(bad.error().message().rfind("blob id: ", 0) == 0);
  CHECK_FALSE(BlobId::parse_hex(std::string(32, 'x')).has_value());
  CHECK_FALSE(BlobId::parse_base64url(id.to_base64url() + "AA").has_value());
  CHECK_FALSE(BlobId::parse_base64url("!!!!").has_value());
}

TEST_CASE("ids compare, hash and report zero", "[ids]") {
  const DeviceId zero;
  CHECK(zero.is_zero());
  const auto a = test::make_id<DeviceId>(1);
  const auto b = test::make_id<DeviceId>(2);
  CHECK_FALSE(a.is_zero());
  CHECK(a < b);
  CHECK(a != b);
  std::unordered_set<DeviceId, FixedIdHash> set{a, b, a};
  CHECK(set.size() == 2);
}
