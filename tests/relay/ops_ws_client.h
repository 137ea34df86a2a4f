// Test clients for a real blindsync-relay process, without Beast and without blindsync::client
// (relay_tests must not link it):
//
// RawWebSocket: RFC 6455 client side over a blocking POSIX socket on 127.0.0.1 — upgrade, masked
// binary/control frames out, frames in (continuations reassembled). It answers pings only when
// told to, so a test can play a client that stopped answering. Every read is bounded.
//
// ProtocolClient: wire protocol v1 on top (core codec + auth signatures): handshake as a device of
// a group (with any device_name, however hostile), PUSH, PULL, DELETE, LIST_DEVICES, and the raw
// frame sizes it sent and received, so tests can predict the relay's byte counters exactly.
// Thread-safety: one test thread per object.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blindsync/auth/identity.h"
#include "blindsync/core/bytes.h"
#include "blindsync/core/codec.h"
#include "blindsync/core/messages.h"
#include "blindsync/core/status.h"

namespace blindsync::test {

inline constexpr std::chrono::milliseconds kOpsTimeout{10'000};

struct WsEvent {
  enum class Kind { kMessage, kPing, kPong, kClose, kEnd, kTimeout };
  Kind kind = Kind::kTimeout;
  Bytes payload;              // message or control payload
  std::uint16_t close_code = 0;  // kClose
};

// The bytes of one client frame with this first byte (FIN, RSV bits, opcode), masked unless told not to.
Bytes client_frame(std::uint8_t first_byte, ByteView payload, bool masked = true);

class RawWebSocket {
 public:
  // TCP connect + HTTP upgrade at path; nullptr (and *error) on failure.
  static std::unique_ptr<RawWebSocket> connect(std::uint16_t port, std::string* error,
                                               const std::string& path = "/v1/sync");
  ~RawWebSocket();
  RawWebSocket(const RawWebSocket&) = delete;
  RawWebSocket& operator=(const RawWebSocket&) = delete;

  bool send_binary(ByteView payload);
  bool send_control(std::uint8_t opcode, ByteView payload);  // 0x8 close, 0x9 ping, 0xA pong
  // One frame with this first byte (FIN, RSV bits, opcode) as given, masked unless told not to:
  // for frames a well-behaved client would never send.
  bool send_frame(std::uint8_t first_byte, ByteView payload, bool masked = true);
  bool send_raw(ByteView bytes);  // bytes as they are, e.g. a frame header without its payload

  // The next message or control frame within timeout. With answer_pings a ping is answered (and
  // still reported). kEnd when the peer closed the TCP connection.
  WsEvent next(std::chrono::milliseconds timeout, bool answer_pings = true);

  void close_socket();

 private:
  explicit RawWebSocket(int fd) : fd_(fd) {}
  bool read_exact(std::uint8_t* out, std::size_t n, std::chrono::steady_clock::time_point deadline, bool* timed_out);
  bool write_all(const std::uint8_t* data, std::size_t n);

  int fd_ = -1;
  std::vector<std::uint8_t> pending_;  // bytes read past the HTTP response
};

class ProtocolClient {
 public:
  static std::unique_ptr<ProtocolClient> connect(std::uint16_t port, std::string* error);

  const Challenge& challenge() const noexcept { return challenge_; }
  RawWebSocket& socket() noexcept { return *ws_; }

  // HELLO for this CHALLENGE as `device` of the group whose auth key is `group`; WELCOME or the
  // ERROR's code as a Status. device_name goes on the wire byte for byte (the encoder does not
  // check it), so a test can send names the relay must truncate, clean or refuse.
  Result<Welcome> handshake(const auth::SigningKey& device, const auth::SigningKey& group,
                            const std::string& access_token = "", const std::string& device_name = "ops-test");
  Result<PushAck> push(const BlobId& blob_id, const Bytes& payload, std::uint32_t ttl_seconds = 0);
  // Sends a PUSH without waiting; returns its request id.
  std::uint32_t send_push(const BlobId& blob_id, const Bytes& payload);
  Result<PullResponse> pull(Cursor after, std::uint32_t limit = 0);
  // DELETE; its DELETE_ACK, or the ERROR's code as a Status (1004 NOT_BLOB_OWNER).
  Result<DeleteAck> delete_blob(const BlobId& blob_id, bool force = false);
  // LIST_DEVICES; the DEVICES reply (the group's devices with the names the relay keeps), or the
  // ERROR's code as a Status.
  Result<Devices> list_devices();

  // The next decoded frame (NOTIFY, replies, BYE ...), or kTimeout / kConnectionClosed.
  Result<Frame> receive(std::chrono::milliseconds timeout = kOpsTimeout);

  std::uint64_t bytes_sent() const noexcept { return bytes_sent_; }          // binary payload bytes
  std::uint64_t bytes_received() const noexcept { return bytes_received_; }  // binary payload bytes
  std::optional<std::uint16_t> close_code() const noexcept { return close_code_; }

 private:
  Status send(const Message& message, std::uint32_t request_id);
  Result<Frame> await_reply(std::uint32_t request_id);

  std::unique_ptr<RawWebSocket> ws_;
  Challenge challenge_;
  DecodeLimits decode_limits_;  // the defaults until the CHALLENGE, then the relay's limits
  std::uint32_t next_request_id_ = 1;
  std::uint64_t bytes_sent_ = 0;
  std::uint64_t bytes_received_ = 0;
  std::optional<std::uint16_t> close_code_;
};

// Connected (and upgraded) to a relay on 127.0.0.1:port, or the test fails with the reason.
std::unique_ptr<RawWebSocket> connect_raw(std::uint16_t port);
std::unique_ptr<ProtocolClient> connect_client(std::uint16_t port);

// A blob id that differs in its last 4 bytes.
BlobId numbered_blob(std::uint32_t n);

}  // namespace blindsync::test
