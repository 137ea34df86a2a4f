// HKDF-SHA256 (RFC 5869) on libsodium's HMAC-SHA256 (libsodium 1.0.18 has no HKDF of its own).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "blindsync/core/bytes.h"
#include "blindsync/core/status.h"

namespace blindsync::crypto {

using Prk = std::array<std::uint8_t, 32>;

Prk hkdf_extract(ByteView salt, ByteView ikm);
// kInvalidArgument if length > 255 * 32.
Result<Bytes> hkdf_expand(const Prk& prk, ByteView info, std::size_t length);
Result<Bytes> hkdf(ByteView salt, ByteView ikm, ByteView info, std::size_t length);

}  // namespace blindsync::crypto
