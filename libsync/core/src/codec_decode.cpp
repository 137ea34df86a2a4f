// Frame decoder: MessagePack bytes -> Frame, strict (see codec.h and docs/wire.md).
//
// Order of checks: frame size (before msgpack sees a byte), msgpack parse with explicit limits
// derived from DecodeLimits, trailing bytes, frame array shape, version, type, request_id, body.
// Strings and binaries are referenced in the input by the unpacker (never copied into its zone)
// and copied exactly once, into the decoded message.
#include <algorithm>
#include <msgpack/unpack.hpp>
#include <new>
#include <string>

#include "blindsync/core/codec.h"
#include "blindsync/core/wire_format.h"
#include "field_reader.h"
#include "message_types.h"

namespace blindsync {
namespace {

namespace key = wire::key;
using detail::FieldPath;
using detail::FieldReader;

Status invalid(std::string message) { return Status(Code::kInvalidMessage, std::move(message)); }

// Reference every str/bin in the input buffer. msgpack-c checks the size limits before it asks.
bool reference_in_place(msgpack::type::object_type, std::size_t, void*) { return true; }

// The frame array itself always needs kFrameArrayLength items, whatever max_array_items says;
// body arrays are then held to max_array_items by FieldReader::array.
msgpack::unpack_limit unpack_limits(const DecodeLimits& limits) {
  const std::size_t array_items = std::max(limits.max_array_items, wire::kFrameArrayLength);
  return msgpack::unpack_limit(array_items, wire::kMaxMapEntries, limits.max_string_bytes,
                               limits.max_payload_bytes, wire::kMaxExtBytes, wire::kMaxNestingDepth);
}

void read_limits(FieldReader& parent, std::string_view message, Limits& out) {
  const msgpack::object* obj = parent.map(key::kLimits);
  if (obj == nullptr) return;
  FieldReader r(*obj, FieldPath{message, key::kLimits});
  r.uint(key::kMaxFrameBytes, out.max_frame_bytes);
  r.uint(key::kMaxBlobBytes, out.max_blob_bytes);
  r.uint(key::kMaxPullLimit, out.max_pull_limit);
  r.uint(key::kInlineNotifyBytes, out.inline_notify_bytes);
  r.uint(key::kHelloTimeoutMs, out.hello_timeout_ms);
  r.uint(key::kMaxTtlSeconds, out.max_ttl_seconds);
  parent.absorb(r);
}

// Reads each map element of the array field `field` with read_item(reader, item).
template <typename Item, typename ReadItem>
void read_map_array(FieldReader& parent, std::string_view message, std::string_view field, std::size_t max_items,
                    std::vector<Item>& out, ReadItem read_item) {
  const msgpack::object* arr = parent.array(field, max_items);
  if (arr == nullptr) return;
  out.clear();
  out.reserve(arr->via.array.size);
  for (std::uint32_t i = 0; i < arr->via.array.size && parent.ok(); ++i) {
    FieldReader r(arr->via.array.ptr[i], FieldPath{message, field, i});
    Item item;
    read_item(r, item);
    parent.absorb(r);
    if (r.ok()) out.push_back(std::move(item));
  }
}

// One decoder per message type; each reads its fields and returns the message or the first error.
template <typename M>
Result<Message> finish(const FieldReader& r, M&& m) {
  if (!r.ok()) return r.status();
  return Message(std::forward<M>(m));
}

Result<Message> decode_body(MessageType type, const msgpack::object& body, const DecodeLimits& limits) {
  const std::string_view name = message_type_name(type);
  FieldReader r(body, FieldPath{name});
  switch (type) {
    case MessageType::kChallenge: {
      Challenge m;
      r.id(key::kRelayId, m.relay_id);
      r.id(key::kRelayNonce, m.relay_nonce);
      if (const msgpack::object* arr = r.array(key::kVersions, limits.max_array_items)) {
        m.versions.reserve(arr->via.array.size);
        for (std::uint32_t i = 0; i < arr->via.array.size; ++i) {
          const msgpack::object& v = arr->via.array.ptr[i];
          if (v.type != msgpack::type::POSITIVE_INTEGER || v.via.u64 > 0xffffffffu) {
            r.fail_field(key::kVersions, "must hold unsigned 32-bit integers");
            break;
          }
          m.versions.push_back(static_cast<std::uint32_t>(v.via.u64));
        }
      }
      read_limits(r, name, m.limits);
      return finish(r, std::move(m));
    }
    case MessageType::kHello: {
      Hello m;
      r.id(key::kDeviceId, m.device_id);
      r.id(key::kGroupId, m.group_id);
      r.str(key::kDeviceName, m.device_name);
      r.uint(key::kLastCursor, m.last_cursor);
      r.id(key::kClientNonce, m.client_nonce);
      r.optional_str(key::kAccessToken, m.access_token);
      r.id(key::kDeviceSig, m.device_sig);
      r.id(key::kGroupSig, m.group_sig);
      return finish(r, std::move(m));
    }
    case MessageType::kWelcome: {
      Welcome m;
      r.uint(key::kSessionId, m.session_id);
      r.uint(key::kEpoch, m.epoch);
      r.uint(key::kMaxCursor, m.max_cursor);
      r.uint(key::kPendingCount, m.pending_count);
      read_limits(r, name, m.limits);
      r.id(key::kRelaySig, m.relay_sig);
      return finish(r, std::move(m));
    }
    case MessageType::kBye: {
      Bye m;
      r.uint(key::kCode, m.code);
      r.str(key::kReason, m.reason);
      return finish(r, std::move(m));
    }
    case MessageType::kPush: {
      Push m;
      r.id(key::kBlobId, m.blob_id);
      r.bin(key::kPayload, m.payload);
      r.uint(key::kTtlSeconds, m.ttl_seconds);
      return finish(r, std::move(m));
    }
    case MessageType::kPushAck: {
      PushAck m;
      r.id(key::kBlobId, m.blob_id);
      r.uint(key::kCursor, m.cursor);
      r.uint(key::kTimestamp, m.timestamp);
      r.boolean(key::kDuplicate, m.duplicate);
      return finish(r, std::move(m));
    }
    case MessageType::kPull: {
      Pull m;
      r.uint(key::kAfterCursor, m.after_cursor);
      r.uint(key::kLimit, m.limit);
      if (r.find(key::kPages) != nullptr) r.uint(key::kPages, m.pages);  // optional: absent = 1
      return finish(r, std::move(m));
    }
    case MessageType::kPullResponse: {
      PullResponse m;
      const auto read_blob = [](FieldReader& b, PulledBlob& blob) {
        b.id(key::kBlobId, blob.blob_id);
        b.uint(key::kCursor, blob.cursor);
        b.id(key::kSenderId, blob.sender_id);
        b.uint(key::kTimestamp, blob.timestamp);
        b.bin(key::kPayload, blob.payload);
      };
      read_map_array(r, name, key::kBlobs, limits.max_array_items, m.blobs, read_blob);
      r.boolean(key::kHasMore, m.has_more);
      r.uint(key::kMaxCursor, m.max_cursor);
      if (r.find(key::kContinues) != nullptr) r.boolean(key::kContinues, m.continues);  // optional: absent = false
      return finish(r, std::move(m));
    }
    case MessageType::kAck: {
      Ack m;
      r.uint(key::kAckedCursor, m.acked_cursor);
      return finish(r, std::move(m));
    }
    case MessageType::kNotify: {
      Notify m;
      r.id(key::kBlobId, m.blob_id);
      r.uint(key::kCursor, m.cursor);
      r.id(key::kSenderId, m.sender_id);
      r.uint(key::kTimestamp, m.timestamp);
      r.uint(key::kSize, m.size);
      r.optional_bin(key::kPayload, m.payload);
      return finish(r, std::move(m));
    }
    case MessageType::kDelete: {
      Delete m;
      r.id(key::kBlobId, m.blob_id);
      r.boolean(key::kForce, m.force);
      return finish(r, std::move(m));
    }
    case MessageType::kDeleteAck: {
      DeleteAck m;
      r.id(key::kBlobId, m.blob_id);
      r.boolean(key::kRemoved, m.removed);
      return finish(r, std::move(m));
    }
    case MessageType::kRevokeDevice: {
      RevokeDevice m;
      r.id(key::kDeviceId, m.device_id);
      r.str(key::kReason, m.reason);
      return finish(r, std::move(m));
    }
    case MessageType::kDeviceRevoked: {
      DeviceRevoked m;
      r.id(key::kDeviceId, m.device_id);
      r.str(key::kReason, m.reason);
      r.id(key::kBy, m.by);
      r.uint(key::kTimestamp, m.timestamp);
      return finish(r, std::move(m));
    }
    case MessageType::kListDevices:
      return finish(r, ListDevices{});
    case MessageType::kDevices: {
      Devices m;
      const auto read_device = [](FieldReader& d, DeviceInfo& info) {
        d.id(key::kDeviceId, info.device_id);
        d.str(key::kName, info.name);
        d.uint(key::kLastSeen, info.last_seen);
        d.uint(key::kAckedCursor, info.acked_cursor);
        d.boolean(key::kOnline, info.online);
        d.boolean(key::kRevoked, info.revoked);
      };
      read_map_array(r, name, key::kDevices, limits.max_array_items, m.devices, read_device);
      return finish(r, std::move(m));
    }
    case MessageType::kRegisterPush: {
      RegisterPush m;
      r.str(key::kToken, m.token);
      r.str(key::kPlatform, m.platform);
      return finish(r, std::move(m));
    }
    case MessageType::kUnregisterPush: {
      UnregisterPush m;
      r.str(key::kToken, m.token);
      r.str(key::kPlatform, m.platform);
      return finish(r, std::move(m));
    }
    case MessageType::kError: {
      Error m;
      r.uint(key::kCode, m.code);
      r.str(key::kMessage, m.message);
      r.uint(key::kRequestId, m.request_id);
      return finish(r, std::move(m));
    }
  }
  return invalid("unknown message type");  // unreachable: type came from message_type_from_wire
}

Result<Frame> decode_top(const msgpack::object& top, const DecodeLimits& limits) {
  if (top.type != msgpack::type::ARRAY) {
    return invalid("frame must be a MessagePack array, got " + std::string(detail::msgpack_type_name(top)));
  }
  const std::uint32_t n = top.via.array.size;
  if (n == 0) return invalid("frame array is empty");
  const msgpack::object* items = top.via.array.ptr;

  // Version first: a later version may change everything after it.
  const msgpack::object& version = items[wire::kFrameVersionIndex];
  if (version.type != msgpack::type::POSITIVE_INTEGER) {
    return invalid("frame version must be an unsigned integer, got " +
                   std::string(detail::msgpack_type_name(version)));
  }
  if (version.via.u64 != kProtocolVersion) {
    return Status(Code::kUnsupportedVersion, "protocol version " + std::to_string(version.via.u64) +
                                                 " is not supported (supported: " +
                                                 std::to_string(kProtocolVersion) + ")");
  }
  if (n != wire::kFrameArrayLength) {
    return invalid("frame array must have " + std::to_string(wire::kFrameArrayLength) + " elements, got " +
                   std::to_string(n));
  }
  const msgpack::object& type = items[wire::kFrameTypeIndex];
  if (type.type != msgpack::type::POSITIVE_INTEGER) {
    return invalid("frame type must be an unsigned integer, got " + std::string(detail::msgpack_type_name(type)));
  }
  const auto message_type = detail::message_type_from_wire(type.via.u64);
  if (!message_type) return invalid("unknown message type " + std::to_string(type.via.u64));

  const msgpack::object& request_id = items[wire::kFrameRequestIdIndex];
  if (request_id.type != msgpack::type::POSITIVE_INTEGER || request_id.via.u64 > 0xffffffffu) {
    return invalid("frame request_id must be an unsigned 32-bit integer");
  }
  auto message = decode_body(*message_type, items[wire::kFrameBodyIndex], limits);
  if (!message) return message.error();
  Frame frame;
  frame.request_id = static_cast<std::uint32_t>(request_id.via.u64);
  frame.message = std::move(message).value();
  return frame;
}

Status malformed(std::string what) { return invalid("malformed frame: " + what); }

}  // namespace

Result<Frame> decode_frame(ByteView bytes, const DecodeLimits& limits) {
  // The size limit comes before msgpack looks at a single byte.
  if (bytes.size() > limits.max_frame_bytes) {
    return invalid("frame of " + std::to_string(bytes.size()) + " bytes exceeds limit " +
                   std::to_string(limits.max_frame_bytes));
  }
  if (bytes.empty()) return invalid("empty frame");
  try {
    std::size_t offset = 0;
    msgpack::object_handle handle =
        msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), offset, &reference_in_place,
                        nullptr, unpack_limits(limits));
    if (offset != bytes.size()) {
      const std::size_t extra = bytes.size() - offset;
      return invalid("frame has " + std::to_string(extra) + (extra == 1 ? " trailing byte" : " trailing bytes"));
    }
    return decode_top(handle.get(), limits);
  } catch (const msgpack::array_size_overflow&) {
    const std::size_t max_items = std::max(limits.max_array_items, wire::kFrameArrayLength);
    return malformed("an array has more than " + std::to_string(max_items) + " items");
  } catch (const msgpack::map_size_overflow&) {
    return malformed("a map has more than " + std::to_string(wire::kMaxMapEntries) + " entries");
  } catch (const msgpack::str_size_overflow&) {
    return malformed("a str is longer than " + std::to_string(limits.max_string_bytes) + " bytes");
  } catch (const msgpack::bin_size_overflow&) {
    return malformed("a bin is longer than " + std::to_string(limits.max_payload_bytes) + " bytes");
  } catch (const msgpack::ext_size_overflow&) {
    return malformed("ext types are not allowed");
  } catch (const msgpack::depth_size_overflow&) {
    return malformed("nested deeper than " + std::to_string(wire::kMaxNestingDepth) + " levels");
  } catch (const msgpack::insufficient_bytes&) {
    return malformed("truncated");
  } catch (const msgpack::parse_error&) {
    return malformed("not valid MessagePack");
  } catch (const std::bad_alloc&) {
    return Status(Code::kInternal, "out of memory decoding a frame");
  } catch (const std::exception& e) {
    return malformed(e.what());
  } catch (...) {
    return malformed("unexpected decoder failure");
  }
}

}  // namespace blindsync
