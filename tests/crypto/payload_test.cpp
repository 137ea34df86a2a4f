#include "blindsync/crypto/payload.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

using namespace blindsync;
using namespace blindsync::crypto;

namespace {

PayloadContext sample_context() {
  return PayloadContext{auth::random_id<GroupId>(), auth::random_id<BlobId>(), auth::random_id<DeviceId>()};
}

Bytes pattern(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 31 + 7);
  return b;
}

}  // namespace

TEST_CASE("sealed payloads open to the original plaintext", "[payload]") {
  const GroupKeys keys = GroupKeys::derive(generate_group_secret());
  const PayloadContext ctx = sample_context();
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{1024 * 1024}}) {
    SECTION("size " + std::to_string(size)) {
      const Bytes plain = pattern(size);
      const Bytes sealed = seal_payload(keys.payload_key(), ctx, plain);
      CHECK(sealed.size() == size + kPayloadOverheadBytes);
      auto opened = open_payload(keys.payload_key(), ctx, sealed);
      REQUIRE(opened.has_value());
      CHECK(*opened == plain);
    }
  }
}

TEST_CASE("sealing twice uses a fresh nonce", "[payload]") {
  const GroupKeys keys = GroupKeys::derive(generate_group_secret());
  const PayloadContext ctx = sample_context();
  const Bytes plain = pattern(32);
  const Bytes a = seal_payload(keys.payload_key(), ctx, plain);
  const Bytes b = seal_payload(keys.payload_key(), ctx, plain);
  CHECK(Bytes(a.begin(), a.begin() + 24) != Bytes(b.begin(), b.begin() + 24));
  CHECK(a != b);
  // The ciphertext does not contain the plaintext.
  CHECK(std::search(a.begin(), a.end(), plain.begin(), plain.end()) == a.end());
}

TEST_CASE("flipping any single bit of nonce, ciphertext or tag fails to open", "[payload]") {
  const GroupKeys keys = GroupKeys::derive(generate_group_secret());
  const PayloadContext ctx = sample_context();
  const Bytes sealed = seal_payload(keys.payload_key(), ctx, pattern(16));
  REQUIRE(sealed.size() == 16 + kPayloadOverheadBytes);
  std::size_t failures = 0;
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = sealed;
      bad[i] ^= static_cast<std::uint8_t>(1u << bit);
      auto r = open_payload(keys.payload_key(), ctx, bad);
      if (!r.has_value() && r.error().code() == Code::kCryptoFailure) ++failures;
    }
  }
  CHECK(failures == sealed.size() * 8);
}

TEST_CASE("a payload does not open under another group, blob, sender or key", "[payload]") {
  const GroupKeys keys = GroupKeys::derive(generate_group_secret());
  const PayloadContext ctx = sample_context();
  const Bytes sealed = seal_payload(keys.payload_key(), ctx, pattern(100));
  REQUIRE(open_payload(keys.payload_key(), ctx, sealed).has_value());

  PayloadContext other = ctx;
  other.group_id.mutable_bytes()[0] ^= 1;
  CHECK(open_payload(keys.payload_key(), other, sealed).error().code() == Code::kCryptoFailure);

  other = ctx;
  other.blob_id.mutable_bytes()[15] ^= 1;
  CHECK(open_payload(keys.payload_key(), other, sealed).error().code() == Code::kCryptoFailure);

  other = ctx;
  other.sender_id.mutable_bytes()[8] ^= 1;
  CHECK(open_payload(keys.payload_key(), other, sealed).error().code() == Code::kCryptoFailure);

  // Fields are bound to their positions: swapping group and sender ids also fails.
  other = ctx;
  other.group_id = GroupId(ctx.sender_id.bytes());
  other.sender_id = DeviceId(ctx.group_id.bytes());
  CHECK(open_payload(keys.payload_key(), other, sealed).error().code() == Code::kCryptoFailure);

  const GroupKeys other_group = GroupKeys::derive(generate_group_secret());
  CHECK(open_payload(other_group.payload_key(), ctx, sealed).error().code() == Code::kCryptoFailure);
  SymmetricKey near = keys.payload_key();
  near[31] ^= 0x80;
  CHECK(open_payload(near, ctx, sealed).error().code() == Code::kCryptoFailure);
}

TEST_CASE("truncated or extended sealed payloads fail to open", "[payload]") {
  const GroupKeys keys = GroupKeys::derive(generate_group_secret());
  const PayloadContext ctx = sample_context();
  const Bytes sealed = seal_payload(keys.payload_key(), ctx, pattern(20));
  for (std::size_t n = 0; n < sealed.size(); ++n) {
    auto r = open_payload(keys.payload_key(), ctx, ByteView(sealed.data(), n));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == Code::kCryptoFailure);
  }
  Bytes longer = sealed;
  longer.push_back(0);
  CHECK(open_payload(keys.payload_key(), ctx, longer).error().code() == Code::kCryptoFailure);
  CHECK(open_payload(keys.payload_key(), ctx, ByteView{}).error().code() == Code::kCryptoFailure);
}

TEST_CASE("an empty plaintext still authenticates its context", "[payload]") {
  const GroupKeys keys = GroupKeys::derive(generate_group_secret());
  const PayloadContext ctx = sample_context();
  const Bytes sealed = seal_payload(keys.payload_key(), ctx, ByteView{});
  REQUIRE(sealed.size() == kPayloadOverheadBytes);
  PayloadContext other = ctx;
  other.blob_id.mutable_bytes()[0] ^= 1;
  CHECK(open_payload(keys.payload_key(), other, sealed).error().code() == Code::kCryptoFailure);
  auto ok = open_payload(keys.payload_key(), ctx, sealed);
  REQUIRE(ok.has_value());
  CHECK(ok->empty());
}
