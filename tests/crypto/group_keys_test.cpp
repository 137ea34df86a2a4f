#include "blindsync/crypto/group_keys.h"

#include <catch2/catch.hpp>

#include <numeric>

using namespace blindsync;
using namespace blindsync::crypto;

namespace {

GroupSecret counting_secret() {
  GroupSecret s{};
  std::iota(s.begin(), s.end(), std::uint8_t{0});
  return s;
}

}  // namespace

TEST_CASE("group keys match independently computed values", "[group_keys][kat]") {
  // Computed with Python (hmac/hashlib HKDF-SHA256 and the cryptography package's Ed25519) for the
  // secret 00 01 .. 1f, following the derivation documented in group_keys.cpp.
  const GroupKeys keys = GroupKeys::derive(counting_secret());
  CHECK(to_hex(keys.payload_key()) == "182caafb8235aea8297304d0f2c60f458e872cb237fd27170a4fa8338112cf8e");
  CHECK(keys.group_id().to_hex() == "553a91fe9ed6742720a9d2d7ad3361a1eef770bb1b4ab98f53ae8e71050cfbd1");
  CHECK(to_hex(keys.content_key(as_bytes("abc"))) ==
        "7c98e63560bbffa9322252545b1b7510503b54d4dd9ca00e776d9e99d948981b");
}

TEST_CASE("the same secret always derives the same group id and keys", "[group_keys]") {
  const GroupSecret secret = generate_group_secret();
  const GroupKeys a = GroupKeys::derive(secret);
  const GroupKeys b = GroupKeys::derive(secret);
  CHECK(a.group_id() == b.group_id());
  CHECK(a.payload_key() == b.payload_key());
  CHECK(a.auth_key().public_key() == b.auth_key().public_key());
  CHECK(a.auth_key().seed() == b.auth_key().seed());
  CHECK(a.content_key(as_bytes("x")) == b.content_key(as_bytes("x")));
}

TEST_CASE("different secrets derive different group ids and keys", "[group_keys]") {
  GroupSecret s1 = counting_secret();
  GroupSecret s2 = s1;
  s2[31] ^= 1;
  const GroupKeys a = GroupKeys::derive(s1);
  const GroupKeys b = GroupKeys::derive(s2);
  CHECK(a.group_id() != b.group_id());
  CHECK(a.payload_key() != b.payload_key());
  CHECK(a.content_key(as_bytes("x")) != b.content_key(as_bytes("x")));
}

TEST_CASE("group_id is the group auth public key and it signs for the group", "[group_keys]") {
  const GroupKeys keys = GroupKeys::derive(generate_group_secret());
  CHECK(keys.group_id().bytes() == keys.auth_key().public_key());
  const Bytes msg = {1, 2, 3};
  CHECK(auth::verify_signature(keys.group_id().bytes(), msg, keys.auth_key().sign(msg)));
}

TEST_CASE("derived keys are distinct from each other and from the secret", "[group_keys]") {
  const GroupSecret secret = counting_secret();
  const GroupKeys keys = GroupKeys::derive(secret);
  CHECK(keys.payload_key() != secret);
  CHECK(keys.auth_key().seed() != secret);
  CHECK(keys.payload_key() != keys.auth_key().seed());
  CHECK(keys.content_key(ByteView{}) != keys.payload_key());
  CHECK(keys.content_key(as_bytes("a")) != keys.content_key(as_bytes("b")));
  CHECK(keys.content_key(as_bytes("a")) != keys.content_key(ByteView{}));
}

TEST_CASE("generate_group_secret returns fresh random secrets", "[group_keys]") {
  const GroupSecret a = generate_group_secret();
  const GroupSecret b = generate_group_secret();
  CHECK(a != b);
  CHECK(a != GroupSecret{});
}

TEST_CASE("moved group keys keep working", "[group_keys]") {
  GroupKeys a = GroupKeys::derive(counting_secret());
  const GroupId id = a.group_id();
  const SymmetricKey pk = a.payload_key();
  GroupKeys b = std::move(a);
  CHECK(b.group_id() == id);
  CHECK(b.payload_key() == pk);
  const Bytes msg = {7};
  CHECK(auth::verify_signature(id.bytes(), msg, b.auth_key().sign(msg)));
}
