#include "blindsync/auth/identity.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string_view>

using namespace blindsync;
using namespace blindsync::auth;

namespace {

Bytes hex(std::string_view text) {
  auto r = from_hex(text);
  REQUIRE(r.has_value());
  return *r;
}

Seed seed_of(std::uint8_t fill) {
  Seed s{};
  s.fill(fill);
  return s;
}

}  // namespace

TEST_CASE("a signature verifies under the signer's public key", "[identity]") {
  const SigningKey key = SigningKey::generate();
  const Bytes msg = {'h', 'e', 'l', 'l', 'o'};
  const Signature sig = key.sign(msg);
  CHECK(verify_signature(key.public_key(), msg, sig));
  CHECK_FALSE(sig.is_zero());
}

TEST_CASE("signing and verifying an empty message works", "[identity]") {
  const SigningKey key = SigningKey::generate();
  const Signature sig = key.sign(ByteView{});
  CHECK(verify_signature(key.public_key(), ByteView{}, sig));
  const Bytes one = {0};
  CHECK_FALSE(verify_signature(key.public_key(), one, sig));
}

TEST_CASE("Ed25519 matches RFC 8032 test vector 1", "[identity][kat]") {
  const Bytes seed_bytes = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  Seed seed{};
  std::copy(seed_bytes.begin(), seed_bytes.end(), seed.begin());
  const SigningKey key = SigningKey::from_seed(seed);
  const Bytes pk = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  CHECK(Bytes(key.public_key().begin(), key.public_key().end()) == pk);
  const Signature sig = key.sign(ByteView{});
  CHECK(sig.to_hex() ==
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bb"
        "e24655141438e7a100b");
}

TEST_CASE("a tampered message does not verify", "[identity]") {
  const SigningKey key = SigningKey::generate();
  const Bytes msg = {1, 2, 3, 4, 5, 6, 7, 8};
  const Signature sig = key.sign(msg);
  for (std::size_t i = 0; i < msg.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = msg;
      bad[i] ^= static_cast<std::uint8_t>(1u << bit);
      CHECK_FALSE(verify_signature(key.public_key(), bad, sig));
    }
  }
  Bytes longer = msg;
  longer.push_back(0);
  CHECK_FALSE(verify_signature(key.public_key(), longer, sig));
  CHECK_FALSE(verify_signature(key.public_key(), ByteView(msg.data(), msg.size() - 1), sig));
}

TEST_CASE("a tampered signature does not verify", "[identity]") {
  const SigningKey key = SigningKey::generate();
  const Bytes msg = {9, 9, 9};
  const Signature sig = key.sign(msg);
  for (std::size_t i = 0; i < Signature::kSize; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Signature bad = sig;
      bad.mutable_bytes()[i] ^= static_cast<std::uint8_t>(1u << bit);
      CHECK_FALSE(verify_signature(key.public_key(), msg, bad));
    }
  }
  CHECK_FALSE(verify_signature(key.public_key(), msg, Signature{}));
}

TEST_CASE("a signature does not verify under another or a tampered public key", "[identity]") {
  const SigningKey key = SigningKey::generate();
  const SigningKey other = SigningKey::generate();
  const Bytes msg = {42};
  const Signature sig = key.sign(msg);
  CHECK_FALSE(verify_signature(other.public_key(), msg, sig));
  for (std::size_t i = 0; i < key.public_key().size(); ++i) {
    PublicKey bad = key.public_key();
    bad[i] ^= 0x01;
    CHECK_FALSE(verify_signature(bad, msg, sig));
  }
  CHECK_FALSE(verify_signature(PublicKey{}, msg, sig));
}

TEST_CASE("from_seed is deterministic and seed-sensitive", "[identity]") {
  const SigningKey a = SigningKey::from_seed(seed_of(7));
  const SigningKey b = SigningKey::from_seed(seed_of(7));
  const SigningKey c = SigningKey::from_seed(seed_of(8));
  CHECK(a.public_key() == b.public_key());
  CHECK(a.seed() == seed_of(7));
  CHECK(a.public_key() != c.public_key());
  const Bytes msg = {1, 2, 3};
  // Ed25519 signatures are deterministic: same key, same message, same signature.
  CHECK(a.sign(msg) == b.sign(msg));
  CHECK(verify_signature(b.public_key(), msg, a.sign(msg)));
}

TEST_CASE("generate makes distinct keys", "[identity]") {
  const SigningKey a = SigningKey::generate();
  const SigningKey b = SigningKey::generate();
  CHECK(a.public_key() != b.public_key());
  CHECK(a.seed() != b.seed());
  CHECK(a.seed() != Seed{});
}

TEST_CASE("moving a signing key keeps it working and wipes the source", "[identity]") {
  SigningKey a = SigningKey::from_seed(seed_of(3));
  const PublicKey pk = a.public_key();
  SigningKey b = std::move(a);
  CHECK(b.public_key() == pk);
  CHECK(b.seed() == seed_of(3));
  CHECK(a.seed() == Seed{});  // NOLINT(bugprone-use-after-move): the wipe is the behaviour under test
  const Bytes msg = {5};
  CHECK(verify_signature(pk, msg, b.sign(msg)));

  SigningKey c = SigningKey::from_seed(seed_of(4));
  c = std::move(b);
  CHECK(c.public_key() == pk);
  CHECK(b.seed() == Seed{});  // NOLINT(bugprone-use-after-move)
  CHECK(verify_signature(pk, msg, c.sign(msg)));
}

TEST_CASE("random_fill fills and random_id differs between calls", "[identity]") {
  std::array<std::uint8_t, 64> a{};
  std::array<std::uint8_t, 64> b{};
  random_fill(a);
  random_fill(b);
  CHECK(a != b);
  CHECK(a != std::array<std::uint8_t, 64>{});
  random_fill(std::span<std::uint8_t>{});  // empty span is fine
  const auto n1 = random_id<Nonce>();
  const auto n2 = random_id<Nonce>();
  CHECK(n1 != n2);
  CHECK_FALSE(n1.is_zero());
}

TEST_CASE("secure_wipe zeroes the bytes", "[identity]") {
  std::array<std::uint8_t, 33> buf{};
  buf.fill(0xAB);
  secure_wipe(buf);
  CHECK(buf == std::array<std::uint8_t, 33>{});
  secure_wipe(std::span<std::uint8_t>{});
}
