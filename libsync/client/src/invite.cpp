// Invite links (invite.h): blindsync://join/<base64url(MessagePack map)>.
//
// Payload layout (protocol v1; short keys keep the QR code small):
//   { "v": uint version,
//     "s": bin(32) group secret,
//     "r": [ { "u": str relay URL (ws:// or wss://), "i": bin(32) relay_id }, ... ]   1..8 entries
//     "n": str group name (UTF-8, <= 256 bytes; optional, default ""),
//     "e": uint expiry in ms since the Unix epoch (optional, default 0 = never) }
// The decoder reads "v" first so that a future version with other fields is reported as
// kUnsupportedVersion, not as malformed. For v1 it refuses unknown and duplicate keys, wrong types,
// trailing bytes and anything over the bounds in invite.h. msgpack runs with explicit unpack_limits
// (its defaults would let a 5-byte header ask for gigabytes) and every exception stays in this file.
#include "blindsync/client/invite.h"

#include <sodium.h>

#include <msgpack.hpp>

#include <exception>
#include <string>

#include "blindsync/core/bytes.h"
#include "blindsync/core/utf8.h"

namespace blindsync {
namespace {

// A v1 payload is at most ~17 KiB (8 relays x 2 KiB URLs); its base64url text ~23 KiB.
constexpr std::size_t kMaxLinkPayloadChars = 32 * 1024;

constexpr std::string_view kKeyVersion = "v";
constexpr std::string_view kKeySecret = "s";
constexpr std::string_view kKeyRelays = "r";
constexpr std::string_view kKeyName = "n";
constexpr std::string_view kKeyExpires = "e";
constexpr std::string_view kKeyUrl = "u";
constexpr std::string_view kKeyRelayId = "i";

Status invalid(std::string message) { return Status(Code::kInvalidArgument, "invite: " + std::move(message)); }

// Wipes a buffer that held the secret when the scope ends, whichever way it ends.
struct WipeOnExit {
  Bytes& bytes;
  ~WipeOnExit() {
    if (!bytes.empty()) sodium_memzero(bytes.data(), bytes.size());
  }
};

// Strings and bins point into the caller's buffer instead of being copied into the zone, so the
// only copy of the secret is the buffer we wipe.
bool reference_everything(msgpack::type::object_type, std::size_t, void*) { return true; }

std::string_view key_of(const msgpack::object& o) { return {o.via.str.ptr, o.via.str.size}; }

Status check_url(std::string_view url) {
  if (url.size() > kMaxInviteUrlBytes) return invalid("relay URL longer than 2048 bytes");
  std::size_t scheme = 0;
  if (url.starts_with("ws://")) {
    scheme = 5;
  } else if (url.starts_with("wss://")) {
    scheme = 6;
  } else {
    return invalid("relay URL must start with ws:// or wss://");
  }
  if (url.size() == scheme) return invalid("relay URL has no host");
  for (char ch : url) {
    // Printable ASCII only: no spaces, controls or raw UTF-8 that a terminal could misrender.
    if (ch <= 0x20 || ch >= 0x7F) return invalid("relay URL contains a space, control or non-ASCII byte");
  }
  return Status::ok();
}

Result<InviteRelay> decode_relay(const msgpack::object& o) {
  if (o.type != msgpack::type::MAP) return invalid("relay entry is not a map");
  InviteRelay relay;
  bool have_url = false;
  bool have_id = false;
  for (std::uint32_t k = 0; k < o.via.map.size; ++k) {
    const msgpack::object& key = o.via.map.ptr[k].key;
    const msgpack::object& val = o.via.map.ptr[k].val;
    if (key.type != msgpack::type::STR) return invalid("relay entry key is not a string");
    const std::string_view name = key_of(key);
    if (name == kKeyUrl) {
      if (have_url) return invalid("duplicate relay URL");
      if (val.type != msgpack::type::STR) return invalid("relay URL is not a string");
      const std::string_view url(val.via.str.ptr, val.via.str.size);
      if (Status st = check_url(url); !st) return st;
      relay.url.assign(url);
      have_url = true;
    } else if (name == kKeyRelayId) {
      if (have_id) return invalid("duplicate relay_id");
      if (val.type != msgpack::type::BIN) return invalid("relay_id is not binary");
      auto id = RelayId::from_bytes(ByteView(reinterpret_cast<const std::uint8_t*>(val.via.bin.ptr), val.via.bin.size));
      if (!id) return invalid("relay_id must be 32 bytes");
      relay.relay_id = *id;
      have_id = true;
    } else {
      return invalid("unknown relay field");
    }
  }
  if (!have_url) return invalid("relay entry without URL");
  if (!have_id) return invalid("relay entry without relay_id");
  return relay;
}

Result<Invite> decode_payload(const msgpack::object& root) {
  if (root.type != msgpack::type::MAP) return invalid("payload is not a map");
  const auto& map = root.via.map;

  // The version decides how everything else is read, so look at it first.
  const msgpack::object* version = nullptr;
  for (std::uint32_t k = 0; k < map.size; ++k) {
    const msgpack::object& key = map.ptr[k].key;
    if (key.type != msgpack::type::STR) return invalid("payload key is not a string");
    if (key_of(key) == kKeyVersion) {
      if (version != nullptr) return invalid("duplicate version");
      version = &map.ptr[k].val;
    }
  }
  if (version == nullptr) return invalid("missing version");
  if (version->type != msgpack::type::POSITIVE_INTEGER) return invalid("version is not an unsigned integer");
  if (version->via.u64 != kInviteVersion) {
    return Status(Code::kUnsupportedVersion,
                  "invite: version " + std::to_string(version->via.u64) + " is not supported (this build reads 1)");
  }

  Invite invite;
  invite.version = kInviteVersion;
  bool have_secret = false, have_relays = false, have_name = false, have_expiry = false;
  for (std::uint32_t k = 0; k < map.size; ++k) {
    const std::string_view name = key_of(map.ptr[k].key);
    const msgpack::object& val = map.ptr[k].val;
    if (name == kKeyVersion) {
      continue;
    } else if (name == kKeySecret) {
      if (have_secret) return invalid("duplicate secret");
      if (val.type != msgpack::type::BIN || val.via.bin.size != invite.secret.size()) {
        return invalid("secret must be 32 bytes of binary");
      }
      std::copy_n(reinterpret_cast<const std::uint8_t*>(val.via.bin.ptr), invite.secret.size(), invite.secret.begin());
      have_secret = true;
    } else if (name == kKeyRelays) {
      if (have_relays) return invalid("duplicate relay list");
      if (val.type != msgpack::type::ARRAY) return invalid("relays is not an array");
      if (val.via.array.size == 0) return invalid("no relay");
      if (val.via.array.size > kMaxInviteRelays) return invalid("more than 8 relays");
      for (std::uint32_t i = 0; i < val.via.array.size; ++i) {
        auto relay = decode_relay(val.via.array.ptr[i]);
        if (!relay) return relay.error();
        invite.relays.push_back(std::move(*relay));
      }
      have_relays = true;
    } else if (name == kKeyName) {
      if (have_name) return invalid("duplicate group name");
      if (val.type != msgpack::type::STR) return invalid("group name is not a string");
      if (val.via.str.size > kMaxInviteNameBytes) return invalid("group name longer than 256 bytes");
      const std::string_view group_name(val.via.str.ptr, val.via.str.size);
      if (!is_valid_utf8(group_name)) return invalid("group name is not valid UTF-8");
      invite.group_name.assign(group_name);
      have_name = true;
    } else if (name == kKeyExpires) {
      if (have_expiry) return invalid("duplicate expiry");
      if (val.type != msgpack::type::POSITIVE_INTEGER) return invalid("expiry is not an unsigned integer");
      invite.expires_at_ms = val.via.u64;
      have_expiry = true;
    } else {
      return invalid("unknown field");
    }
  }
  if (!have_secret) return invalid("missing secret");
  if (!have_relays) return invalid("missing relay list");
  return invite;
}

}  // namespace

std::string encode_invite(const Invite& invite) {
  // Sized for the whole payload up front so the buffer never reallocates and leaves a stray,
  // unwiped copy of the secret behind.
  std::size_t estimate = 128 + invite.group_name.size();
  for (const auto& r : invite.relays) estimate += r.url.size() + 64;
  msgpack::sbuffer buffer(estimate);
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(5);
  pk.pack(kKeyVersion);
  pk.pack_uint32(invite.version);
  pk.pack(kKeySecret);
  pk.pack_bin(static_cast<std::uint32_t>(invite.secret.size()));
  pk.pack_bin_body(reinterpret_cast<const char*>(invite.secret.data()), static_cast<std::uint32_t>(invite.secret.size()));
  pk.pack(kKeyRelays);
  pk.pack_array(static_cast<std::uint32_t>(invite.relays.size()));
  for (const auto& r : invite.relays) {
    pk.pack_map(2);
    pk.pack(kKeyUrl);
    pk.pack(r.url);
    pk.pack(kKeyRelayId);
    pk.pack_bin(static_cast<std::uint32_t>(RelayId::kSize));
    pk.pack_bin_body(reinterpret_cast<const char*>(r.relay_id.data()), static_cast<std::uint32_t>(RelayId::kSize));
  }
  pk.pack(kKeyName);
  pk.pack(invite.group_name);
  pk.pack(kKeyExpires);
  pk.pack_uint64(invite.expires_at_ms);

  std::string text = to_base64url(ByteView(reinterpret_cast<const std::uint8_t*>(buffer.data()), buffer.size()));
  sodium_memzero(buffer.data(), buffer.size());
  std::string link;
  link.reserve(kInvitePrefix.size() + text.size());
  link.append(kInvitePrefix);
  link.append(text);
  sodium_memzero(text.data(), text.size());
  return link;
}

Result<Invite> decode_invite(std::string_view link, std::uint64_t now_ms) {
  if (!link.starts_with(kInvitePrefix)) return invalid("link must start with blindsync://join/");
  const std::string_view text = link.substr(kInvitePrefix.size());
  if (text.empty()) return invalid("empty payload");
  if (text.size() > kMaxLinkPayloadChars) return invalid("payload too long");

  auto decoded = from_base64url(text);
  if (!decoded) return invalid("payload is not valid base64url");
  Bytes raw = std::move(*decoded);
  WipeOnExit wipe{raw};
  if (raw.empty()) return invalid("empty payload");

  // Bounds generous enough for any valid v1 payload and small enough that no header can make
  // msgpack allocate much: 16 items per container, 4 KiB strings, 64-byte bins, no ext, depth 3
  // (root map -> relay array -> relay map).
  const msgpack::unpack_limit limits(/*array=*/16, /*map=*/16, /*str=*/4096, /*bin=*/64, /*ext=*/0, /*depth=*/3);
  Result<Invite> result = invalid("unreachable");
  try {
    std::size_t offset = 0;
    msgpack::object_handle handle = msgpack::unpack(reinterpret_cast<const char*>(raw.data()), raw.size(), offset,
                                                    reference_everything, nullptr, limits);
    if (offset != raw.size()) return invalid("trailing bytes after payload");
    result = decode_payload(handle.get());
  } catch (const msgpack::size_overflow&) {
    return invalid("payload exceeds a size limit");
  } catch (const std::exception&) {
    return invalid("payload is not valid MessagePack");
  }
  if (!result) return result;
  if (result->expires_at_ms != 0 && now_ms > result->expires_at_ms) {
    sodium_memzero(result->secret.data(), result->secret.size());
    return Status(Code::kExpired, "invite: expired");
  }
  return result;
}

}  // namespace blindsync
