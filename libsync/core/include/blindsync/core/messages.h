// The messages of wire protocol v1 (DESIGN.md "Wire protocol v1"), as plain structs.
//
// One WebSocket message = one Frame = MessagePack array [version, type, request_id, body],
// body a MessagePack map keyed by the field names below. codec.h turns Frames into bytes and back;
// docs/wire.md documents the layout byte by byte.
//
// Timestamps are milliseconds since the Unix epoch (UTC). Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/limits.h"

namespace blindsync {

enum class MessageType : std::uint8_t {
  kHello = 0x01,
  kWelcome = 0x02,
  kChallenge = 0x03,
  kBye = 0x04,
  kPush = 0x10,
  kPushAck = 0x11,
  kPull = 0x20,
  kPullResponse = 0x21,
  kAck = 0x22,
  kNotify = 0x31,
  kDelete = 0x40,
  kDeleteAck = 0x41,
  kRevokeDevice = 0x50,
  kDeviceRevoked = 0x51,
  kListDevices = 0x52,
  kDevices = 0x53,
  kRegisterPush = 0x60,
  kUnregisterPush = 0x61,
  kError = 0xFF,
};

std::string_view message_type_name(MessageType type) noexcept;  // "PUSH_ACK"

// relay -> client, first message after the WebSocket upgrade.
struct Challenge {
  RelayId relay_id;
  Nonce relay_nonce;
  std::vector<std::uint32_t> versions;  // protocol versions the relay speaks
  Limits limits;
  friend bool operator==(const Challenge&, const Challenge&) = default;
};

// client -> relay. Both signatures cover the handshake transcript (auth/transcript.h).
struct Hello {
  DeviceId device_id;
  GroupId group_id;
  std::string device_name;  // <= 64 bytes UTF-8 (relay truncates)
  Cursor last_cursor = 0;
  Nonce client_nonce;
  std::string access_token;  // empty when the relay admits without a token
  Signature device_sig;
  Signature group_sig;
  friend bool operator==(const Hello&, const Hello&) = default;
};

// relay -> client: handshake accepted; the session is Active.
struct Welcome {
  std::uint64_t session_id = 0;
  std::uint64_t epoch = 0;  // random per relay database; changes when the database is replaced
  Cursor max_cursor = 0;
  std::uint64_t pending_count = 0;
  Limits limits;
  Signature relay_sig;  // over the same transcript, by relay_id
  friend bool operator==(const Welcome&, const Welcome&) = default;
};

// either direction: the sender is closing the session.
struct Bye {
  std::uint16_t code = 0;  // 0 for a normal goodbye, else an error Code
  std::string reason;
  friend bool operator==(const Bye&, const Bye&) = default;
};

struct Push {
  BlobId blob_id;
  Bytes payload;                 // ciphertext; the relay never reads it
  std::uint32_t ttl_seconds = 0; // 0 = relay default
  friend bool operator==(const Push&, const Push&) = default;
};

struct PushAck {
  BlobId blob_id;
  Cursor cursor = 0;
  std::uint64_t timestamp = 0;
  bool duplicate = false;
  friend bool operator==(const PushAck&, const PushAck&) = default;
};

struct Pull {
  Cursor after_cursor = 0;
  std::uint32_t limit = 0;  // 0 = relay maximum; clamped by the relay
  // How many pages the relay may send back to back for this one request, each of up to `limit`
  // blobs and continuing where the one before ended (optional on the wire: absent = 1; clamped
  // by the relay). Saves a round trip per page when catching up.
  std::uint32_t pages = 1;
  friend bool operator==(const Pull&, const Pull&) = default;
};

struct PulledBlob {
  BlobId blob_id;
  Cursor cursor = 0;
  DeviceId sender_id;
  std::uint64_t timestamp = 0;
  Bytes payload;
  friend bool operator==(const PulledBlob&, const PulledBlob&) = default;
};

struct PullResponse {
  std::vector<PulledBlob> blobs;  // ascending cursor
  bool has_more = false;
  Cursor max_cursor = 0;
  // Another PULL_RESPONSE to the same request follows (Pull::pages). Optional on the wire:
  // absent = false. When false and has_more, the client asks again with a new PULL.
  bool continues = false;
  friend bool operator==(const PullResponse&, const PullResponse&) = default;
};

struct Ack {
  Cursor acked_cursor = 0;
  friend bool operator==(const Ack&, const Ack&) = default;
};

struct Notify {
  BlobId blob_id;
  Cursor cursor = 0;
  DeviceId sender_id;
  std::uint64_t timestamp = 0;
  std::uint32_t size = 0;
  std::optional<Bytes> payload;  // present when size <= inline limit and the session is not behind
  friend bool operator==(const Notify&, const Notify&) = default;
};

struct Delete {
  BlobId blob_id;
  bool force = false;
  friend bool operator==(const Delete&, const Delete&) = default;
};

// relay -> client: the DELETE with the same request_id succeeded. A refused DELETE gets ERROR
// (1004 NOT_BLOB_OWNER) instead.
struct DeleteAck {
  BlobId blob_id;        // the DELETE's blob_id
  bool removed = false;  // false when no such blob was stored (already deleted, or expired)
  friend bool operator==(const DeleteAck&, const DeleteAck&) = default;
};

struct RevokeDevice {
  DeviceId device_id;
  std::string reason;
  friend bool operator==(const RevokeDevice&, const RevokeDevice&) = default;
};

struct DeviceRevoked {
  DeviceId device_id;
  std::string reason;
  DeviceId by;
  std::uint64_t timestamp = 0;
  friend bool operator==(const DeviceRevoked&, const DeviceRevoked&) = default;
};

struct ListDevices {
  friend bool operator==(const ListDevices&, const ListDevices&) = default;
};

struct DeviceInfo {
  DeviceId device_id;
  std::string name;
  std::uint64_t last_seen = 0;
  Cursor acked_cursor = 0;
  bool online = false;
  bool revoked = false;
  friend bool operator==(const DeviceInfo&, const DeviceInfo&) = default;
};

struct Devices {
  std::vector<DeviceInfo> devices;
  friend bool operator==(const Devices&, const Devices&) = default;
};

struct RegisterPush {
  std::string token;
  std::string platform;
  friend bool operator==(const RegisterPush&, const RegisterPush&) = default;
};

struct UnregisterPush {
  std::string token;
  std::string platform;
  friend bool operator==(const UnregisterPush&, const UnregisterPush&) = default;
};

struct Error {
  std::uint16_t code = 0;
  std::string message;
  std::uint32_t request_id = 0;  // the request this answers, 0 if none
  friend bool operator==(const Error&, const Error&) = default;
};

using Message = std::variant<Hello, Welcome, Challenge, Bye, Push, PushAck, Pull, PullResponse, Ack, Notify,
                             Delete, DeleteAck, RevokeDevice, DeviceRevoked, ListDevices, Devices, RegisterPush,
                             UnregisterPush, Error>;

MessageType type_of(const Message& message) noexcept;

struct Frame {
  std::uint32_t request_id = 0;  // client-chosen; relay-initiated messages carry 0
  Message message;
  MessageType type() const noexcept { return type_of(message); }
  friend bool operator==(const Frame&, const Frame&) = default;
};

}  // namespace blindsync
