#include <catch2/catch.hpp>

#include <string>

#include "blindsync/core/bytes.h"

using namespace blindsync;

namespace {
Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes pseudo_random(std::size_t n, std::uint32_t seed) {
  Bytes b(n);
  for (auto& x : b) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<std::uint8_t>(seed >> 24);
  }
  return b;
}
}  // namespace

TEST_CASE("hex round-trips every byte value in lower case", "[bytes]") {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<std::uint8_t>(i);
  const std::string hex = to_hex(all);
  REQUIRE(hex.size() == 512);
  CHECK(hex.substr(0, 8) == "00010203");
  CHECK(hex.substr(504) == "fcfdfeff");
  auto back = from_hex(hex);
  REQUIRE(back.has_value());
  CHECK(*back == all);
  CHECK(to_hex({}) == "");
}

TEST_CASE("from_hex accepts upper case", "[bytes]") {
  auto v = from_hex("DEADbeef");
  REQUIRE(v.has_value());
  CHECK(*v == Bytes{0xde, 0xad, 0xbe, 0xef});
}

TEST_CASE("from_hex rejects odd length and characters outside the alphabet", "[bytes]") {
  auto odd = from_hex("abc");
  REQUIRE_FALSE(odd.has_value());
  CHECK(odd.error().code() == Code::kInvalidArgument);
  CHECK(odd.error().message() == "hex text has odd length 3");
  for (std::string_view bad : {"zz", "0g", " 0", "0 ", "0x", "-1", "\xff\xff"}) {
    INFO(bad);
    auto r = from_hex(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == Code::kInvalidArgument);
  }
  auto at = from_hex("00112g");
  REQUIRE_FALSE(at.has_value());
  CHECK(at.error().message() == "invalid hex character at offset 5");
}

TEST_CASE("base64url matches the RFC 4648 test vectors without padding", "[bytes]") {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"},
      {"foobar", "Zm9vYmFy"}};
  for (auto [plain, encoded] : vectors) {
    INFO(plain);
    CHECK(to_base64url(as_bytes(plain)) == encoded);
    auto back = from_base64url(encoded);
    REQUIRE(back.has_value());
    CHECK(*back == bytes_of(plain));
  }
}

TEST_CASE("base64url uses - and _ where base64 uses + and /", "[bytes]") {
  const Bytes b{0xfb, 0xff};
  CHECK(to_base64url(b) == "-_8");
  CHECK(to_base64(b) == "+/8=");
  auto back = from_base64url("-_8");
  REQUIRE(back.has_value());
  CHECK(*back == b);
}

TEST_CASE("base64 output is padded", "[bytes]") {
  CHECK(to_base64(as_bytes("f")) == "Zg==");
  CHECK(to_base64(as_bytes("fo")) == "Zm8=");
  CHECK(to_base64(as_bytes("foo")) == "Zm9v");
}

TEST_CASE("base64url accepts correct padding on input", "[bytes]") {
  auto a = from_base64url("Zg==");
  REQUIRE(a.has_value());
  CHECK(*a == bytes_of("f"));
  auto b = from_base64url("Zm8=");
  REQUIRE(b.has_value());
  CHECK(*b == bytes_of("fo"));
}

TEST_CASE("base64url round-trips pseudo-random data of every small length", "[bytes]") {
  for (std::size_t n = 0; n < 70; ++n) {
    const Bytes data = pseudo_random(n, static_cast<std::uint32_t>(n));
    const std::string text = to_base64url(data);
    CHECK(text.find('=') == std::string::npos);
    auto back = from_base64url(text);
    REQUIRE(back.has_value());
    CHECK(*back == data);
  }
}

TEST_CASE("base64url rejects bad characters, lengths, padding and trailing bits", "[bytes]") {
  for (std::string_view bad : {
           "Z",        // impossible length
           "Zm9vY",    // impossible length
           "Zg=",      // incomplete padding
           "Zg===",    // too much padding
           "Zm9v====",
           "Z===",
           "=Zg",      // padding first
           "Zg=a",     // padding in the middle
           "Zh",       // non-zero trailing bits ('f' is "Zg")
           "Zm9=",     // non-zero trailing bits
           "Zm+v",     // standard alphabet
           "Zm/v",
           "Zm9 v",    // whitespace
           "Zm9v\n",
           "Zm\x80v",
       }) {
    INFO(bad);
    auto r = from_base64url(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == Code::kInvalidArgument);
  }
}
