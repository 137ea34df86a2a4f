// RawClient: speaks wire protocol v1 directly (transport_ws connect_websocket + core codec + auth),
// so a test chooses every frame it sends — honest ones, replays and garbage alike.
// GroupMember: fresh keys for one device of one group (group keys derived from a group secret).
// Thread-safety: one test thread per object.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blindsync/auth/identity.h"
#include "blindsync/client/transport.h"
#include "blindsync/core/codec.h"
#include "blindsync/core/messages.h"
#include "blindsync/crypto/group_keys.h"

namespace blindsync::test {

inline constexpr std::chrono::seconds kProtocolTimeout{10};

struct GroupMember {
  auth::SigningKey device;
  crypto::GroupKeys group;

  static GroupMember make_random();                                   // new device, new group
  static GroupMember make_in(const crypto::GroupSecret& group_secret);  // new device, given group
  DeviceId device_id() const { return DeviceId(device.public_key()); }
};

struct CloseOutcome {
  bool closed = false;               // the relay closed the connection within the timeout
  std::vector<Error> errors;         // ERROR frames received before the close
  std::vector<MessageType> others;   // any other frames received before the close
};

class RawClient {
 public:
  // Connects and reads the relay's CHALLENGE.
  static Result<std::unique_ptr<RawClient>> connect(const std::string& url);

  const Challenge& challenge() const noexcept { return challenge_; }

  Status send_bytes(ByteView bytes);
  Status send(const Message& message, std::uint32_t request_id = 0);
  // The next frame, decoded (kInvalidMessage if the relay sent something undecodable).
  Result<Frame> receive(std::chrono::milliseconds timeout = kProtocolTimeout);

  // A HELLO for this session's CHALLENGE, signed with the member's device and group keys.
  Hello make_hello(const GroupMember& member, const std::string& device_name = "raw-client") const;
  // Sends hello and waits for WELCOME; an ERROR reply becomes a Status with its code.
  Result<Welcome> send_hello(const Hello& hello);
  Result<Welcome> handshake(const GroupMember& member);

  // PUSH and wait for the PUSH_ACK of that request (ERROR -> Status with its code).
  Result<PushAck> push(const BlobId& blob_id, const Bytes& payload, std::uint32_t ttl_seconds = 0);
  Result<PullResponse> pull(Cursor after, std::uint32_t limit = 0);

  // Reads (skipping nothing) until the relay closes the connection or timeout passes.
  CloseOutcome read_until_closed(std::chrono::milliseconds timeout = kProtocolTimeout);

  void close();

 private:
  RawClient() = default;
  // Waits for the reply to request_id, skipping relay-initiated frames (NOTIFY etc.).
  Result<Frame> await_reply(std::uint32_t request_id);

  std::unique_ptr<Transport> transport_;
  Challenge challenge_;
  std::uint32_t next_request_id_ = 1;
};

}  // namespace blindsync::test
