#include "blindsync/crypto/passphrase.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <numeric>

using namespace blindsync;
using namespace blindsync::crypto;

namespace {

// The floor: the cheapest parameters the library accepts, which keeps these tests fast.
Argon2Params floor_params() {
  Argon2Params p;
  p.memory_bytes = kArgon2MinMemoryBytes;
  p.passes = kArgon2MinPasses;
  std::iota(p.salt.begin(), p.salt.end(), std::uint8_t{0});
  return p;
}

}  // namespace

TEST_CASE("Argon2id matches an independently computed value", "[passphrase][kat]") {
  // Computed with the Python cryptography package: Argon2id, 1 lane, 19456 KiB, 2 iterations,
  // salt 00..0f, 32-byte output.
  auto secret = secret_from_passphrase("correct horse battery staple", floor_params());
  REQUIRE(secret.has_value());
  CHECK(to_hex(*secret) == "818259b6310026a8e0dbac5d2e6927abcfdb07b32258fac4f61b18b80f929085");
}

TEST_CASE("the same passphrase, salt and parameters give the same secret", "[passphrase]") {
  auto a = secret_from_passphrase("tulip lantern", floor_params());
  auto b = secret_from_passphrase("tulip lantern", floor_params());
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(*a == *b);
  CHECK(*a != GroupSecret{});
}

TEST_CASE("a different salt, passphrase or parameter gives a different secret", "[passphrase]") {
  auto base = secret_from_passphrase("tulip lantern", floor_params());
  REQUIRE(base.has_value());

  Argon2Params salted = floor_params();
  salted.salt[0] ^= 1;
  auto s = secret_from_passphrase("tulip lantern", salted);
  REQUIRE(s.has_value());
  CHECK(*s != *base);

  auto p = secret_from_passphrase("tulip lanterm", floor_params());
  REQUIRE(p.has_value());
  CHECK(*p != *base);

  Argon2Params more_passes = floor_params();
  more_passes.passes = 3;
  auto t = secret_from_passphrase("tulip lantern", more_passes);
  REQUIRE(t.has_value());
  CHECK(*t != *base);
}

TEST_CASE("parameters below the floor are refused", "[passphrase]") {
  Argon2Params low_memory = floor_params();
  low_memory.memory_bytes = kArgon2MinMemoryBytes - 1024;
  auto a = secret_from_passphrase("x", low_memory);
  REQUIRE_FALSE(a.has_value());
  CHECK(a.error().code() == Code::kInvalidArgument);

  Argon2Params one_pass = floor_params();
  one_pass.passes = 1;
  auto b = secret_from_passphrase("x", one_pass);
  REQUIRE_FALSE(b.has_value());
  CHECK(b.error().code() == Code::kInvalidArgument);

  Argon2Params zero = floor_params();
  zero.memory_bytes = 0;
  zero.passes = 0;
  CHECK(secret_from_passphrase("x", zero).error().code() == Code::kInvalidArgument);
}

TEST_CASE("hostile parameters above the ceiling are refused without allocating", "[passphrase]") {
  Argon2Params huge = floor_params();
  huge.memory_bytes = ~std::uint64_t{0};
  CHECK(secret_from_passphrase("x", huge).error().code() == Code::kInvalidArgument);

  Argon2Params slow = floor_params();
  slow.passes = ~std::uint64_t{0};
  CHECK(secret_from_passphrase("x", slow).error().code() == Code::kInvalidArgument);

  Argon2Params just_over = floor_params();
  just_over.memory_bytes = kArgon2MaxMemoryBytes + 1;
  CHECK(secret_from_passphrase("x", just_over).error().code() == Code::kInvalidArgument);
}

TEST_CASE("an empty passphrase is refused", "[passphrase]") {
  CHECK(secret_from_passphrase("", floor_params()).error().code() == Code::kInvalidArgument);
}

TEST_CASE("default parameters fit the machine and carry a fresh salt", "[passphrase]") {
  const Argon2Params a = default_argon2_params();
  const Argon2Params b = default_argon2_params();
  CHECK(a.salt != b.salt);
  CHECK(a.memory_bytes >= kArgon2MinMemoryBytes);
  CHECK(a.passes >= kArgon2MinPasses);

  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  const auto ram = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
  if (pages > 0 && page_size > 0 && ram < 1024ull * 1024 * 1024) {
    CHECK(a.memory_bytes == kArgon2MinMemoryBytes);
  } else {
    CHECK(a.memory_bytes == 64ull * 1024 * 1024);
  }
}
