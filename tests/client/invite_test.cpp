#include "blindsync/client/invite.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "blindsync/core/bytes.h"

using namespace blindsync;

namespace {

// A minimal MessagePack writer, so the tests can build payloads the encoder would never produce.
struct Mp {
  Bytes b;
  Mp& byte(std::uint8_t v) {
    b.push_back(v);
    return *this;
  }
  Mp& be(std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    return *this;
  }
  Mp& map(std::uint32_t n) { return n < 16 ? byte(static_cast<std::uint8_t>(0x80 | n)) : byte(0xde).be(n, 2); }
  Mp& arr(std::uint32_t n) { return n < 16 ? byte(static_cast<std::uint8_t>(0x90 | n)) : byte(0xdc).be(n, 2); }
  Mp& str(std::string_view s) {
    if (s.size() < 32) {
      byte(static_cast<std::uint8_t>(0xa0 | s.size()));
    } else if (s.size() < 256) {
      byte(0xd9).be(s.size(), 1);
    } else {
      byte(0xda).be(s.size(), 2);
    }
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Mp& bin(std::size_t n, std::uint8_t fill) {
    byte(0xc4).be(n, 1);
    b.insert(b.end(), n, fill);
    return *this;
  }
  Mp& uint(std::uint64_t v) { return v < 128 ? byte(static_cast<std::uint8_t>(v)) : byte(0xcf).be(v, 8); }
};

std::string link_of(const Bytes& payload) { return std::string(kInvitePrefix) + to_base64url(payload); }

Bytes payload_of(const std::string& link) {
  auto raw = from_base64url(std::string_view(link).substr(kInvitePrefix.size()));
  REQUIRE(raw.has_value());
  return *raw;
}

RelayId relay_id_filled(std::uint8_t v) {
  RelayId::Array a{};
  a.fill(v);
  return RelayId(a);
}

Invite sample_invite() {
  Invite inv;
  inv.relays.push_back({"wss://relay.example.org/v1/sync", relay_id_filled(0xA1)});
  inv.relays.push_back({"ws://127.0.0.1:7878/v1/sync", relay_id_filled(0xB2)});
  for (std::size_t i = 0; i < inv.secret.size(); ++i) inv.secret[i] = static_cast<std::uint8_t>(0xC0 + i);
  inv.group_name = "Family photos \xC3\xA9t\xC3\xA9";  // "été" in UTF-8
  inv.expires_at_ms = 1'700'000'000'000;
  return inv;
}

constexpr std::uint64_t kNow = 1'600'000'000'000;

// A well-formed v1 payload, built by hand, with hooks to vary one part at a time.
Mp hand_payload(std::uint64_t version = 1) {
  Mp m;
  m.map(3).str("v").uint(version).str("s").bin(32, 7).str("r").arr(1).map(2).str("u").str("ws://h").str("i").bin(32, 9);
  return m;
}

Code decode_code(const Bytes& payload, std::uint64_t now = kNow) {
  auto r = decode_invite(link_of(payload), now);
  return r.has_value() ? Code::kOk : r.error().code();
}

}  // namespace

TEST_CASE("an invite survives encode and decode unchanged", "[invite]") {
  const Invite inv = sample_invite();
  const std::string link = encode_invite(inv);
  CHECK(link.starts_with(kInvitePrefix));
  const std::string_view text = std::string_view(link).substr(kInvitePrefix.size());
  CHECK(std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  }));
  auto back = decode_invite(link, kNow);
  REQUIRE(back.has_value());
  CHECK(*back == inv);
}

TEST_CASE("an invite at every size bound round-trips", "[invite]") {
  Invite inv = sample_invite();
  inv.relays.clear();
  for (std::size_t i = 0; i < kMaxInviteRelays; ++i) {
    std::string url = "wss://r" + std::to_string(i) + ".example/";
    url.resize(kMaxInviteUrlBytes, 'p');
    inv.relays.push_back({url, relay_id_filled(static_cast<std::uint8_t>(i))});
  }
  inv.group_name.assign(kMaxInviteNameBytes, 'n');
  inv.expires_at_ms = std::numeric_limits<std::uint64_t>::max();
  auto back = decode_invite(encode_invite(inv), kNow);
  REQUIRE(back.has_value());
  CHECK(*back == inv);
}

TEST_CASE("a hand-built minimal payload decodes with defaults", "[invite]") {
  auto inv = decode_invite(link_of(hand_payload().b), kNow);
  REQUIRE(inv.has_value());
  CHECK(inv->version == 1);
  CHECK(inv->group_name.empty());
  CHECK(inv->expires_at_ms == 0);
  REQUIRE(inv->relays.size() == 1);
  CHECK(inv->relays[0].url == "ws://h");
  CHECK(inv->relays[0].relay_id == relay_id_filled(9));
  CHECK(inv->secret[0] == 7);
}

TEST_CASE("an expired invite is refused and expiry 0 never expires", "[invite]") {
  Invite inv = sample_invite();
  inv.expires_at_ms = 1000;
  const std::string link = encode_invite(inv);
  CHECK(decode_invite(link, 999).has_value());
  CHECK(decode_invite(link, 1000).has_value());
  auto late = decode_invite(link, 1001);
  REQUIRE_FALSE(late.has_value());
  CHECK(late.error().code() == Code::kExpired);

  inv.expires_at_ms = 0;
  const std::string forever = encode_invite(inv);
  CHECK(decode_invite(forever, 0).has_value());
  CHECK(decode_invite(forever, std::numeric_limits<std::uint64_t>::max()).has_value());
}

TEST_CASE("a link without the exact prefix is refused", "[invite]") {
  const std::string link = encode_invite(sample_invite());
  const std::string body = link.substr(kInvitePrefix.size());
  for (const std::string& bad :
       {std::string(), std::string("blindsync://join/"), "blindsync://joi/" + body, "BLINDSYNC://join/" + body,
        "https://join/" + body, " " + link, "blindsync:/join/" + body, body}) {
    auto r = decode_invite(bad, kNow);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("a payload that is not base64url is refused", "[invite]") {
  const std::string link = encode_invite(sample_invite());
  const std::size_t mid = kInvitePrefix.size() + 10;
  for (char c : {'!', '*', ' ', '\n', '.', '\0', '\x80'}) {
    std::string bad = link;
    bad[mid] = c;
    auto r = decode_invite(bad, kNow);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == Code::kInvalidArgument);
  }
  std::string with_space = link;
  with_space.insert(mid, " ");
  CHECK_FALSE(decode_invite(with_space, kNow).has_value());
}

TEST_CASE("every truncation of a link is refused", "[invite]") {
  const std::string link = encode_invite(sample_invite());
  for (std::size_t n = 0; n < link.size(); ++n) {
    auto r = decode_invite(std::string_view(link).substr(0, n), kNow);
    INFO("kept " << n << " of " << link.size() << " characters");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("every truncation of the payload bytes is refused", "[invite]") {
  const Bytes payload = payload_of(encode_invite(sample_invite()));
  for (std::size_t n = 0; n < payload.size(); ++n) {
    INFO("kept " << n << " of " << payload.size() << " bytes");
    CHECK(decode_code(Bytes(payload.begin(), payload.begin() + static_cast<std::ptrdiff_t>(n))) ==
          Code::kInvalidArgument);
  }
}

TEST_CASE("flipped payload bytes never decode to the original invite", "[invite]") {
  const Invite inv = sample_invite();
  const Bytes payload = payload_of(encode_invite(inv));
  std::size_t refused = 0;
  for (std::size_t i = 0; i < payload.size(); ++i) {
    for (std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0x80}, std::uint8_t{0xFF}}) {
      Bytes bad = payload;
      bad[i] ^= mask;
      auto r = decode_invite(link_of(bad), kNow);
      if (r.has_value()) {
        CHECK_FALSE(*r == inv);
      } else {
        ++refused;
      }
    }
  }
  // Structural bytes (headers, keys, lengths) are most of a payload's framing: many flips must fail.
  CHECK(refused > 0);
}

TEST_CASE("flipping the first byte (the map header) is refused", "[invite]") {
  Bytes payload = payload_of(encode_invite(sample_invite()));
  for (std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0x10}, std::uint8_t{0x80}}) {
    Bytes bad = payload;
    bad[0] ^= mask;
    CHECK(decode_code(bad) == Code::kInvalidArgument);
  }
}

TEST_CASE("an unknown version is reported as unsupported", "[invite]") {
  Invite inv = sample_invite();
  inv.version = 2;
  auto r = decode_invite(encode_invite(inv), kNow);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == Code::kUnsupportedVersion);

  inv.version = 0;
  CHECK(decode_invite(encode_invite(inv), kNow).error().code() == Code::kUnsupportedVersion);
  CHECK(decode_code(hand_payload(1ull << 40).b) == Code::kUnsupportedVersion);

  // A future version may carry fields v1 does not know: still "unsupported", not "malformed".
  Mp future;
  future.map(2).str("v").uint(2).str("passphrase").str("whatever");
  CHECK(decode_code(future.b) == Code::kUnsupportedVersion);
}

TEST_CASE("a missing or mistyped version is malformed", "[invite]") {
  Mp missing;
  missing.map(2).str("s").bin(32, 1).str("r").arr(1).map(2).str("u").str("ws://h").str("i").bin(32, 1);
  CHECK(decode_code(missing.b) == Code::kInvalidArgument);

  Mp as_string;
  as_string.map(1).str("v").str("1");
  CHECK(decode_code(as_string.b) == Code::kInvalidArgument);

  Mp negative;
  negative.map(1).str("v").byte(0xff);  // negative fixint -1
  CHECK(decode_code(negative.b) == Code::kInvalidArgument);

  Mp twice;
  twice.map(2).str("v").uint(1).str("v").uint(1);
  CHECK(decode_code(twice.b) == Code::kInvalidArgument);
}

TEST_CASE("oversized fields are refused", "[invite]") {
  SECTION("more than 8 relays") {
    Invite inv = sample_invite();
    inv.relays.assign(kMaxInviteRelays + 1, inv.relays[0]);
    CHECK(decode_invite(encode_invite(inv), kNow).error().code() == Code::kInvalidArgument);
  }
  SECTION("relay URL over 2048 bytes") {
    Invite inv = sample_invite();
    inv.relays[1].url = "wss://" + std::string(kMaxInviteUrlBytes - 5, 'a');
    CHECK(decode_invite(encode_invite(inv), kNow).error().code() == Code::kInvalidArgument);
  }
  SECTION("group name over 256 bytes") {
    Invite inv = sample_invite();
    inv.group_name.assign(kMaxInviteNameBytes + 1, 'n');
    CHECK(decode_invite(encode_invite(inv), kNow).error().code() == Code::kInvalidArgument);
  }
  SECTION("link text over the size bound") {
    const std::string huge = std::string(kInvitePrefix) + std::string(64 * 1024, 'A');
    CHECK(decode_invite(huge, kNow).error().code() == Code::kInvalidArgument);
  }
  SECTION("relay_id or secret of the wrong size") {
    for (std::size_t n : {std::size_t{0}, std::size_t{31}, std::size_t{33}, std::size_t{64}}) {
      Mp id;
      id.map(3).str("v").uint(1).str("s").bin(32, 7).str("r").arr(1).map(2).str("u").str("ws://h").str("i").bin(n, 9);
      CHECK(decode_code(id.b) == Code::kInvalidArgument);
      Mp secret;
      secret.map(3).str("v").uint(1).str("s").bin(n, 7).str("r").arr(1).map(2).str("u").str("ws://h").str("i").bin(
          32, 9);
      CHECK(decode_code(secret.b) == Code::kInvalidArgument);
    }
  }
}

TEST_CASE("an invite needs at least one relay with a ws:// or wss:// URL", "[invite]") {
  Invite inv = sample_invite();
  inv.relays.clear();
  CHECK(decode_invite(encode_invite(inv), kNow).error().code() == Code::kInvalidArgument);

  for (const char* url : {"http://relay.example/v1/sync", "https://relay.example", "ws://", "wss://", "WS://host",
                          "ws:/host", "", "ws://ho st", "ws://host\n", "ws://h\x7f", "ws://h\xC3\xA9"}) {
    Invite bad = sample_invite();
    bad.relays[0].url = url;
    INFO("url: " << url);
    CHECK(decode_invite(encode_invite(bad), kNow).error().code() == Code::kInvalidArgument);
  }
}

TEST_CASE("huge MessagePack headers are refused without allocating", "[invite]") {
  const Bytes hostile[] = {
      {0xdd, 0xff, 0xff, 0xff, 0xff},              // array32 of 4 billion items
      {0xdf, 0xff, 0xff, 0xff, 0xff},              // map32 of 4 billion pairs
      {0xdb, 0xff, 0xff, 0xff, 0xff},              // str32 of 4 GiB
      {0xc6, 0xff, 0xff, 0xff, 0xff},              // bin32 of 4 GiB
      {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},        // ext32 of 4 GiB
      {0xdc, 0xff, 0xff},                          // array16 of 65535 items
      {0xde, 0xff, 0xff},                          // map16 of 65535 pairs
  };
  for (const Bytes& h : hostile) CHECK(decode_code(h) == Code::kInvalidArgument);

  // The same headers nested where a valid payload has containers and strings.
  Mp relays;
  relays.map(3).str("v").uint(1).str("s").bin(32, 7).str("r").byte(0xdd).be(0xffffffff, 4);
  CHECK(decode_code(relays.b) == Code::kInvalidArgument);
  Mp url;
  url.map(3).str("v").uint(1).str("s").bin(32, 7).str("r").arr(1).map(2).str("u").byte(0xdb).be(0xffffffff, 4);
  CHECK(decode_code(url.b) == Code::kInvalidArgument);
  Mp name;
  name.map(2).str("v").uint(1).str("n").byte(0xda).be(0xffff, 2);
  CHECK(decode_code(name.b) == Code::kInvalidArgument);
}

TEST_CASE("deeply nested MessagePack is refused", "[invite]") {
  Bytes deep(2000, 0x91);  // [[[[...]]]]
  deep.push_back(0x00);
  CHECK(decode_code(deep) == Code::kInvalidArgument);
  Mp too_deep;
  too_deep.map(3).str("v").uint(1).str("s").bin(32, 7).str("r").arr(1).arr(1).map(0);
  CHECK(decode_code(too_deep.b) == Code::kInvalidArgument);
}

TEST_CASE("wrong types, unknown or duplicate keys and trailing bytes are refused", "[invite]") {
  Mp not_map;
  not_map.uint(1);
  CHECK(decode_code(not_map.b) == Code::kInvalidArgument);

  Mp secret_as_str;
  secret_as_str.map(3).str("v").uint(1).str("s").str(std::string(32, 'x')).str("r").arr(1).map(2).str("u").str(
      "ws://h").str("i").bin(32, 9);
  CHECK(decode_code(secret_as_str.b) == Code::kInvalidArgument);

  Mp relays_as_map;
  relays_as_map.map(3).str("v").uint(1).str("s").bin(32, 7).str("r").map(0);
  CHECK(decode_code(relays_as_map.b) == Code::kInvalidArgument);

  Mp relay_as_array;
  relay_as_array.map(3).str("v").uint(1).str("s").bin(32, 7).str("r").arr(1).arr(2).str("ws://h").bin(32, 9);
  CHECK(decode_code(relay_as_array.b) == Code::kInvalidArgument);

  Mp relay_missing_id;
  relay_missing_id.map(3).str("v").uint(1).str("s").bin(32, 7).str("r").arr(1).map(1).str("u").str("ws://h");
  CHECK(decode_code(relay_missing_id.b) == Code::kInvalidArgument);

  Mp missing_secret;
  missing_secret.map(2).str("v").uint(1).str("r").arr(1).map(2).str("u").str("ws://h").str("i").bin(32, 9);
  CHECK(decode_code(missing_secret.b) == Code::kInvalidArgument);

  Mp missing_relays;
  missing_relays.map(2).str("v").uint(1).str("s").bin(32, 7);
  CHECK(decode_code(missing_relays.b) == Code::kInvalidArgument);

  Mp negative_expiry = hand_payload();
  negative_expiry.b[0] = 0x84;
  negative_expiry.str("e").byte(0xd0).byte(0x80);
  CHECK(decode_code(negative_expiry.b) == Code::kInvalidArgument);

  Mp bad_utf8 = hand_payload();
  bad_utf8.b[0] = 0x84;
  bad_utf8.str("n").str("ok\xff");
  CHECK(decode_code(bad_utf8.b) == Code::kInvalidArgument);

  Mp overlong_utf8 = hand_payload();
  overlong_utf8.b[0] = 0x84;
  overlong_utf8.str("n").str("\xC0\xAF");
  CHECK(decode_code(overlong_utf8.b) == Code::kInvalidArgument);

  Mp unknown = hand_payload();
  unknown.b[0] = 0x84;
  unknown.str("zz").uint(1);
  CHECK(decode_code(unknown.b) == Code::kInvalidArgument);

  Mp duplicate = hand_payload();
  duplicate.b[0] = 0x84;
  duplicate.str("s").bin(32, 8);
  CHECK(decode_code(duplicate.b) == Code::kInvalidArgument);

  Mp int_key = hand_payload();
  int_key.b[0] = 0x84;
  int_key.uint(5).uint(1);
  CHECK(decode_code(int_key.b) == Code::kInvalidArgument);

  Mp trailing = hand_payload();
  trailing.byte(0xc0);
  CHECK(decode_code(trailing.b) == Code::kInvalidArgument);

  // Sanity: the unmodified hand-built payload is accepted, so the refusals above are about the change.
  CHECK(decode_code(hand_payload().b) == Code::kOk);
}
