// Frame encoder: Frame -> MessagePack bytes (layout in docs/wire.md, names in wire_format.h).
//
// Writes straight into one pre-reserved Bytes through msgpack's packer: each payload is copied
// exactly once, from the message into the output. Integers take msgpack-c's smallest encoding,
// so the output is canonical and stable for golden tests.
#include <cstring>
#include <msgpack/pack.hpp>
#include <string_view>

#include "blindsync/core/codec.h"
#include "blindsync/core/wire_format.h"

namespace blindsync {
namespace {

namespace key = wire::key;

// msgpack packer stream that appends to a Bytes.
class ByteSink {
 public:
  explicit ByteSink(Bytes& out) : out_(out) {}
  void write(const char* data, std::size_t size) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(data);
    out_.insert(out_.end(), p, p + size);
  }

 private:
  Bytes& out_;
};

using Packer = msgpack::packer<ByteSink>;

// Upper bound of a map's fixed part (keys, ids, integers) for the reserve below.
constexpr std::size_t kFixedBodyBytes = 512;
constexpr std::size_t kPerBlobBytes = 160;
constexpr std::size_t kPerDeviceBytes = 160;

class BodyWriter {
 public:
  explicit BodyWriter(Packer& pk) : pk_(pk) {}

  void map(std::uint32_t entries) { pk_.pack_map(entries); }
  void array(std::uint32_t items) { pk_.pack_array(items); }
  void key(std::string_view name) { str_value(name); }

  void u64(std::string_view name, std::uint64_t v) { key(name); pk_.pack_uint64(v); }
  void boolean(std::string_view name, bool v) {
    key(name);
    if (v) pk_.pack_true(); else pk_.pack_false();
  }
  void str(std::string_view name, std::string_view v) { key(name); str_value(v); }
  void bin(std::string_view name, ByteView v) { key(name); bin_value(v); }
  template <std::size_t N, typename Tag>
  void id(std::string_view name, const FixedId<N, Tag>& v) { bin(name, v.view()); }

  void str_value(std::string_view v) {
    pk_.pack_str(static_cast<std::uint32_t>(v.size()));
    pk_.pack_str_body(v.data(), static_cast<std::uint32_t>(v.size()));
  }
  void bin_value(ByteView v) {
    pk_.pack_bin(static_cast<std::uint32_t>(v.size()));
    pk_.pack_bin_body(reinterpret_cast<const char*>(v.data()), static_cast<std::uint32_t>(v.size()));
  }
  void u64_value(std::uint64_t v) { pk_.pack_uint64(v); }

  void limits(std::string_view name, const Limits& l) {
    key(name);
    map(6);
    u64(key::kMaxFrameBytes, l.max_frame_bytes);
    u64(key::kMaxBlobBytes, l.max_blob_bytes);
    u64(key::kMaxPullLimit, l.max_pull_limit);
    u64(key::kInlineNotifyBytes, l.inline_notify_bytes);
    u64(key::kHelloTimeoutMs, l.hello_timeout_ms);
    u64(key::kMaxTtlSeconds, l.max_ttl_seconds);
  }

  // One overload per message; each writes the body map with keys in struct order.
  void operator()(const Challenge& m) {
    map(4);
    id(key::kRelayId, m.relay_id);
    id(key::kRelayNonce, m.relay_nonce);
    key(key::kVersions);
    array(static_cast<std::uint32_t>(m.versions.size()));
    for (auto v : m.versions) u64_value(v);
    limits(key::kLimits, m.limits);
  }
  void operator()(const Hello& m) {
    const bool has_token = !m.access_token.empty();
    map(has_token ? 8 : 7);
    id(key::kDeviceId, m.device_id);
    id(key::kGroupId, m.group_id);
    str(key::kDeviceName, m.device_name);
    u64(key::kLastCursor, m.last_cursor);
    id(key::kClientNonce, m.client_nonce);
    if (has_token) str(key::kAccessToken, m.access_token);
    id(key::kDeviceSig, m.device_sig);
    id(key::kGroupSig, m.group_sig);
  }
  void operator()(const Welcome& m) {
    map(6);
    u64(key::kSessionId, m.session_id);
    u64(key::kEpoch, m.epoch);
    u64(key::kMaxCursor, m.max_cursor);
    u64(key::kPendingCount, m.pending_count);
    limits(key::kLimits, m.limits);
    id(key::kRelaySig, m.relay_sig);
  }
  void operator()(const Bye& m) {
    map(2);
    u64(key::kCode, m.code);
    str(key::kReason, m.reason);
  }
  void operator()(const Push& m) {
    map(3);
    id(key::kBlobId, m.blob_id);
    bin(key::kPayload, m.payload);
    u64(key::kTtlSeconds, m.ttl_seconds);
  }
  void operator()(const PushAck& m) {
    map(4);
    id(key::kBlobId, m.blob_id);
    u64(key::kCursor, m.cursor);
    u64(key::kTimestamp, m.timestamp);
    boolean(key::kDuplicate, m.duplicate);
  }
  void operator()(const Pull& m) {
    // `pages` is left out when it is 1: what a relay that predates it assumes.
    const bool has_pages = m.pages != 1;
    map(has_pages ? 3 : 2);
    u64(key::kAfterCursor, m.after_cursor);
    u64(key::kLimit, m.limit);
    if (has_pages) u64(key::kPages, m.pages);
  }
  void operator()(const PullResponse& m) {
    map(m.continues ? 4 : 3);
    key(key::kBlobs);
    array(static_cast<std::uint32_t>(m.blobs.size()));
    for (const auto& b : m.blobs) {
      map(5);
      id(key::kBlobId, b.blob_id);
      u64(key::kCursor, b.cursor);
      id(key::kSenderId, b.sender_id);
      u64(key::kTimestamp, b.timestamp);
      bin(key::kPayload, b.payload);
    }
    boolean(key::kHasMore, m.has_more);
    u64(key::kMaxCursor, m.max_cursor);
    if (m.continues) boolean(key::kContinues, true);
  }
  void operator()(const Ack& m) {
    map(1);
    u64(key::kAckedCursor, m.acked_cursor);
  }
  void operator()(const Notify& m) {
    map(m.payload ? 6 : 5);
    id(key::kBlobId, m.blob_id);
    u64(key::kCursor, m.cursor);
    id(key::kSenderId, m.sender_id);
    u64(key::kTimestamp, m.timestamp);
    u64(key::kSize, m.size);
    if (m.payload) bin(key::kPayload, *m.payload);
  }
  void operator()(const Delete& m) {
    map(2);
    id(key::kBlobId, m.blob_id);
    boolean(key::kForce, m.force);
  }
  void operator()(const DeleteAck& m) {
    map(2);
    id(key::kBlobId, m.blob_id);
    boolean(key::kRemoved, m.removed);
  }
  void operator()(const RevokeDevice& m) {
    map(2);
    id(key::kDeviceId, m.device_id);
    str(key::kReason, m.reason);
  }
  void operator()(const DeviceRevoked& m) {
    map(4);
    id(key::kDeviceId, m.device_id);
    str(key::kReason, m.reason);
    id(key::kBy, m.by);
    u64(key::kTimestamp, m.timestamp);
  }
  void operator()(const ListDevices&) { map(0); }
  void operator()(const Devices& m) {
    map(1);
    key(key::kDevices);
    array(static_cast<std::uint32_t>(m.devices.size()));
    for (const auto& d : m.devices) {
      map(6);
      id(key::kDeviceId, d.device_id);
      str(key::kName, d.name);
      u64(key::kLastSeen, d.last_seen);
      u64(key::kAckedCursor, d.acked_cursor);
      boolean(key::kOnline, d.online);
      boolean(key::kRevoked, d.revoked);
    }
  }
  void operator()(const RegisterPush& m) {
    map(2);
    str(key::kToken, m.token);
    str(key::kPlatform, m.platform);
  }
  void operator()(const UnregisterPush& m) {
    map(2);
    str(key::kToken, m.token);
    str(key::kPlatform, m.platform);
  }
  void operator()(const Error& m) {
    map(3);
    u64(key::kCode, m.code);
    str(key::kMessage, m.message);
    u64(key::kRequestId, m.request_id);
  }

 private:
  Packer& pk_;
};

// A close upper bound of the encoded size, so the output is allocated once.
struct SizeHint {
  std::size_t operator()(const Push& m) const { return kFixedBodyBytes + m.payload.size(); }
  std::size_t operator()(const Notify& m) const {
    return kFixedBodyBytes + (m.payload ? m.payload->size() : 0);
  }
  std::size_t operator()(const PullResponse& m) const {
    std::size_t n = kFixedBodyBytes;
    for (const auto& b : m.blobs) n += kPerBlobBytes + b.payload.size();
    return n;
  }
  std::size_t operator()(const Devices& m) const {
    std::size_t n = kFixedBodyBytes;
    for (const auto& d : m.devices) n += kPerDeviceBytes + d.name.size();
    return n;
  }
  std::size_t operator()(const Hello& m) const {
    return kFixedBodyBytes + m.device_name.size() + m.access_token.size();
  }
  std::size_t operator()(const Bye& m) const { return kFixedBodyBytes + m.reason.size(); }
  std::size_t operator()(const Error& m) const { return kFixedBodyBytes + m.message.size(); }
  std::size_t operator()(const RevokeDevice& m) const { return kFixedBodyBytes + m.reason.size(); }
  std::size_t operator()(const DeviceRevoked& m) const { return kFixedBodyBytes + m.reason.size(); }
  std::size_t operator()(const RegisterPush& m) const {
    return kFixedBodyBytes + m.token.size() + m.platform.size();
  }
  std::size_t operator()(const UnregisterPush& m) const {
    return kFixedBodyBytes + m.token.size() + m.platform.size();
  }
  std::size_t operator()(const Challenge& m) const { return kFixedBodyBytes + 5 * m.versions.size(); }
  std::size_t operator()(const auto&) const { return kFixedBodyBytes; }
};

}  // namespace

Bytes encode_frame(const Frame& frame) {
  Bytes out;
  out.reserve(std::visit(SizeHint{}, frame.message));
  ByteSink sink(out);
  Packer pk(sink);
  pk.pack_array(static_cast<std::uint32_t>(wire::kFrameArrayLength));
  pk.pack_uint32(kProtocolVersion);
  pk.pack_uint8(static_cast<std::uint8_t>(frame.type()));
  pk.pack_uint32(frame.request_id);
  BodyWriter body(pk);
  std::visit(body, frame.message);
  return out;
}

}  // namespace blindsync
