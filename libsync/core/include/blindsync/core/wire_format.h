// Wire layout constants of protocol v1: the frame array, the body map key names and the structural
// limits the decoder enforces. One place for every name that appears on the wire, so that the
// encoder, the decoder, tests and docs/wire.md cannot drift apart (LevelDB db/log_format.h).
//
// A frame is one MessagePack array [version, type, request_id, body]; body is a map whose keys are
// the field names of the structs in messages.h. docs/wire.md documents it byte by byte.
//
// Thread-safety: constants only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace blindsync::wire {

// Frame array layout.
inline constexpr std::size_t kFrameArrayLength = 4;
inline constexpr std::size_t kFrameVersionIndex = 0;
inline constexpr std::size_t kFrameTypeIndex = 1;
inline constexpr std::size_t kFrameRequestIdIndex = 2;
inline constexpr std::size_t kFrameBodyIndex = 3;

// Structural limits applied to every decode on top of DecodeLimits (codec.h).
// Deepest legitimate nesting is 4 (frame array > body map > blobs array > blob map); 6 leaves
// room for optional fields v1 may grow without letting a hostile frame nest without bound.
inline constexpr std::size_t kMaxNestingDepth = 6;
// Largest body has 8 keys (HELLO); unknown keys are ignored but bounded.
inline constexpr std::size_t kMaxMapEntries = 32;
// Extension types never appear in v1: any ext object is rejected.
inline constexpr std::size_t kMaxExtBytes = 0;

// WebSocket close codes. A session closed for a protocol error closes with a code in the
// 4000-4299 range that mirrors the error code: 4000 + 100 * (class - 1) + (code % 1000), where
// class = code / 1000. So INVALID_STATE 1006 -> 4006, RATE_LIMITED 2000 -> 4100,
// RELAY_SHUTTING_DOWN 3001 -> 4201. A normal close (code 0) uses the WebSocket 1000; a code that
// is not a wire error code maps to 4999.
inline constexpr std::uint16_t kCloseNormal = 1000;
inline constexpr std::uint16_t kCloseUnknown = 4999;
constexpr std::uint16_t close_code_for(std::uint16_t error_code) noexcept {
  if (error_code == 0) return kCloseNormal;
  if (error_code < 1000 || error_code >= 4000 || error_code % 1000 >= 100) return kCloseUnknown;
  return static_cast<std::uint16_t>(4000 + 100 * (error_code / 1000 - 1) + error_code % 1000);
}

// Body map keys, named exactly like the struct fields in messages.h.
namespace key {
// CHALLENGE
inline constexpr std::string_view kRelayId = "relay_id";
inline constexpr std::string_view kRelayNonce = "relay_nonce";
inline constexpr std::string_view kVersions = "versions";
inline constexpr std::string_view kLimits = "limits";
// HELLO
inline constexpr std::string_view kDeviceId = "device_id";
inline constexpr std::string_view kGroupId = "group_id";
inline constexpr std::string_view kDeviceName = "device_name";
inline constexpr std::string_view kLastCursor = "last_cursor";
inline constexpr std::string_view kClientNonce = "client_nonce";
inline constexpr std::string_view kAccessToken = "access_token";  // optional: absent when empty
inline constexpr std::string_view kDeviceSig = "device_sig";
inline constexpr std::string_view kGroupSig = "group_sig";
// WELCOME
inline constexpr std::string_view kSessionId = "session_id";
inline constexpr std::string_view kEpoch = "epoch";
inline constexpr std::string_view kMaxCursor = "max_cursor";
inline constexpr std::string_view kPendingCount = "pending_count";
inline constexpr std::string_view kRelaySig = "relay_sig";
// BYE, ERROR
inline constexpr std::string_view kCode = "code";
inline constexpr std::string_view kReason = "reason";
inline constexpr std::string_view kMessage = "message";
inline constexpr std::string_view kRequestId = "request_id";
// PUSH, PUSH_ACK, NOTIFY, DELETE, DELETE_ACK, PULL_RESPONSE blobs
inline constexpr std::string_view kBlobId = "blob_id";
inline constexpr std::string_view kPayload = "payload";  // optional in NOTIFY only
inline constexpr std::string_view kTtlSeconds = "ttl_seconds";
inline constexpr std::string_view kCursor = "cursor";
inline constexpr std::string_view kTimestamp = "timestamp";
inline constexpr std::string_view kDuplicate = "duplicate";
inline constexpr std::string_view kSenderId = "sender_id";
inline constexpr std::string_view kSize = "size";
inline constexpr std::string_view kForce = "force";
inline constexpr std::string_view kRemoved = "removed";  // DELETE_ACK
// PULL, PULL_RESPONSE, ACK
inline constexpr std::string_view kAfterCursor = "after_cursor";
inline constexpr std::string_view kLimit = "limit";
inline constexpr std::string_view kBlobs = "blobs";
inline constexpr std::string_view kHasMore = "has_more";
inline constexpr std::string_view kPages = "pages";
inline constexpr std::string_view kContinues = "continues";
inline constexpr std::string_view kAckedCursor = "acked_cursor";
// REVOKE_DEVICE, DEVICE_REVOKED, DEVICES
inline constexpr std::string_view kBy = "by";
inline constexpr std::string_view kDevices = "devices";
inline constexpr std::string_view kName = "name";
inline constexpr std::string_view kLastSeen = "last_seen";
inline constexpr std::string_view kOnline = "online";
inline constexpr std::string_view kRevoked = "revoked";
// REGISTER_PUSH, UNREGISTER_PUSH
inline constexpr std::string_view kToken = "token";
inline constexpr std::string_view kPlatform = "platform";
// Limits (nested map in CHALLENGE and WELCOME)
inline constexpr std::string_view kMaxFrameBytes = "max_frame_bytes";
inline constexpr std::string_view kMaxBlobBytes = "max_blob_bytes";
inline constexpr std::string_view kMaxPullLimit = "max_pull_limit";
inline constexpr std::string_view kInlineNotifyBytes = "inline_notify_bytes";
inline constexpr std::string_view kHelloTimeoutMs = "hello_timeout_ms";
inline constexpr std::string_view kMaxTtlSeconds = "max_ttl_seconds";
}  // namespace key

}  // namespace blindsync::wire
