// Fixed-size identifiers of the protocol, and the Cursor.
//
//   DeviceId  32 bytes  Ed25519 public key of a device
//   GroupId   32 bytes  Ed25519 public key of the group auth key pair
//   RelayId   32 bytes  Ed25519 public key of a relay
//   BlobId    16 bytes  client-made, time-ordered like UUIDv7
//   Nonce     32 bytes  handshake nonces
//   Signature 64 bytes  Ed25519 signature
//   Cursor    u64       per-group position assigned by the relay, gap-free from 1
//
// Text forms: lower-case hex (to_hex/parse_hex) and base64url (to_base64url/parse_base64url).
// Parsing checks the length exactly and returns kInvalidArgument otherwise.
#pragma once

#include <algorithm>
#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "blindsync/core/bytes.h"
#include "blindsync/core/status.h"

namespace blindsync {

using Cursor = std::uint64_t;

template <std::size_t N, typename Tag>
class FixedId {
 public:
  static constexpr std::size_t kSize = N;
  using Array = std::array<std::uint8_t, N>;

  FixedId() = default;  // all zero
  explicit FixedId(const Array& bytes) : bytes_(bytes) {}

  static Result<FixedId> from_bytes(ByteView bytes) {
    if (bytes.size() != N) {
      return Status(Code::kInvalidArgument, std::string(Tag::kName) + " must be " + std::to_string(N) +
                                                " bytes, got " + std::to_string(bytes.size()));
    }
    FixedId id;
    std::copy(bytes.begin(), bytes.end(), id.bytes_.begin());
    return id;
  }
  static Result<FixedId> parse_hex(std::string_view text) {
    auto raw = from_hex(text);
    if (!raw) return Status(Code::kInvalidArgument, std::string(Tag::kName) + ": " + raw.error().message());
    return from_bytes(*raw);
  }
  static Result<FixedId> parse_base64url(std::string_view text) {
    auto raw = from_base64url(text);
    if (!raw) return Status(Code::kInvalidArgument, std::string(Tag::kName) + ": " + raw.error().message());
    return from_bytes(*raw);
  }

  const Array& bytes() const noexcept { return bytes_; }
  Array& mutable_bytes() noexcept { return bytes_; }
  ByteView view() const noexcept { return ByteView(bytes_.data(), N); }
  const std::uint8_t* data() const noexcept { return bytes_.data(); }
  static constexpr std::size_t size() noexcept { return N; }
  bool is_zero() const noexcept {
    for (auto b : bytes_) if (b != 0) return false;
    return true;
  }

  std::string to_hex() const { return blindsync::to_hex(view()); }
  std::string to_base64url() const { return blindsync::to_base64url(view()); }

  friend auto operator<=>(const FixedId&, const FixedId&) = default;

 private:
  Array bytes_{};
};

struct DeviceIdTag { static constexpr const char* kName = "device id"; };
struct GroupIdTag { static constexpr const char* kName = "group id"; };
struct RelayIdTag { static constexpr const char* kName = "relay id"; };
struct BlobIdTag { static constexpr const char* kName = "blob id"; };
struct NonceTag { static constexpr const char* kName = "nonce"; };
struct SignatureTag { static constexpr const char* kName = "signature"; };

using DeviceId = FixedId<32, DeviceIdTag>;
using GroupId = FixedId<32, GroupIdTag>;
using RelayId = FixedId<32, RelayIdTag>;
using BlobId = FixedId<16, BlobIdTag>;
using Nonce = FixedId<32, NonceTag>;
using Signature = FixedId<64, SignatureTag>;

// Hash for unordered containers (ids are uniformly random or time-ordered: mix the first 8 bytes).
struct FixedIdHash {
  template <std::size_t N, typename Tag>
  std::size_t operator()(const FixedId<N, Tag>& id) const noexcept {
    std::size_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < N; ++i) h = (h ^ id.bytes()[i]) * 1099511628211ull;
    return h;
  }
};

}  // namespace blindsync
