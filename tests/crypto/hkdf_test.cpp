#include "blindsync/crypto/hkdf.h"

#include <catch2/catch.hpp>

#include <string_view>

using namespace blindsync;
using namespace blindsync::crypto;

namespace {

Bytes hex(std::string_view text) {
  auto r = from_hex(text);
  REQUIRE(r.has_value());
  return *r;
}

struct Vector {
  const char* name;
  const char* ikm;
  const char* salt;
  const char* info;
  std::size_t length;
  const char* prk;
  const char* okm;
};

// RFC 5869 Appendix A, the three SHA-256 cases, byte for byte.
const Vector kVectors[] = {
    {"A.1 basic", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
     "f0f1f2f3f4f5f6f7f8f9", 42, "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
    {"A.2 long inputs",
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"
     "303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f",
     "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f"
     "909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
     "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
     "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
     82, "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09"
     "da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"},
    {"A.3 zero-length salt and info", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "", 42,
     "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
};

}  // namespace

TEST_CASE("HKDF-SHA256 reproduces the RFC 5869 test vectors", "[hkdf][kat]") {
  for (const Vector& v : kVectors) {
    SECTION(v.name) {
      const Bytes ikm = hex(v.ikm);
      const Bytes salt = hex(v.salt);
      const Bytes info = hex(v.info);

      const Prk prk = hkdf_extract(salt, ikm);
      CHECK(to_hex(prk) == v.prk);

      auto okm = hkdf_expand(prk, info, v.length);
      REQUIRE(okm.has_value());
      CHECK(okm->size() == v.length);
      CHECK(to_hex(*okm) == v.okm);

      auto one_shot = hkdf(salt, ikm, info, v.length);
      REQUIRE(one_shot.has_value());
      CHECK(to_hex(*one_shot) == v.okm);
    }
  }
}

TEST_CASE("HKDF extract treats an empty salt as 32 zero bytes", "[hkdf]") {
  const Bytes ikm(22, 0x0b);
  const Bytes zeros(32, 0);
  CHECK(hkdf_extract(ByteView{}, ikm) == hkdf_extract(zeros, ikm));
  const Bytes one_zero(1, 0);
  // HMAC pads short keys with zeros, so a 1-byte zero salt gives the same PRK as well; a non-zero
  // salt must not.
  CHECK(hkdf_extract(one_zero, ikm) == hkdf_extract(zeros, ikm));
  const Bytes nonzero(32, 1);
  CHECK(hkdf_extract(nonzero, ikm) != hkdf_extract(zeros, ikm));
}

TEST_CASE("HKDF expand refuses more than 255 blocks and allows exactly 255", "[hkdf]") {
  const Prk prk = hkdf_extract(ByteView{}, Bytes(32, 7));
  auto max = hkdf_expand(prk, ByteView{}, 255 * 32);
  REQUIRE(max.has_value());
  CHECK(max->size() == 255 * 32);

  auto over = hkdf_expand(prk, ByteView{}, 255 * 32 + 1);
  REQUIRE_FALSE(over.has_value());
  CHECK(over.error().code() == Code::kInvalidArgument);

  auto over2 = hkdf(ByteView{}, Bytes(32, 7), ByteView{}, static_cast<std::size_t>(-1));
  REQUIRE_FALSE(over2.has_value());
  CHECK(over2.error().code() == Code::kInvalidArgument);
}

TEST_CASE("HKDF expand output is a prefix-consistent stream and info-sensitive", "[hkdf]") {
  const Prk prk = hkdf_extract(ByteView{}, Bytes(32, 9));
  auto zero = hkdf_expand(prk, ByteView{}, 0);
  REQUIRE(zero.has_value());
  CHECK(zero->empty());

  auto short_okm = hkdf_expand(prk, as_bytes("a"), 10);
  auto long_okm = hkdf_expand(prk, as_bytes("a"), 100);
  auto other_info = hkdf_expand(prk, as_bytes("b"), 100);
  REQUIRE(short_okm.has_value());
  REQUIRE(long_okm.has_value());
  REQUIRE(other_info.has_value());
  CHECK(Bytes(long_okm->begin(), long_okm->begin() + 10) == *short_okm);
  CHECK(*long_okm != *other_info);
}
