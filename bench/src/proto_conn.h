// ProtoConn: one protocol-v1 session of the load generator: a WsConn plus the library's own codec
// (encode_frame / decode_frame) and handshake signatures (auth::sign_hello / verify_welcome).
//
// open() runs the whole handshake: CHALLENGE -> HELLO (device + group Ed25519 signatures) ->
// WELCOME, whose relay signature is verified against the CHALLENGE's relay_id (and against the
// pinned relay_id when one is given). After that, send()/receive() exchange frames.
//
// Ownership: owns its WsConn; borrows nothing after open() returns. Thread-safety: as WsConn — all
// calls on the connection's strand, one receive() and one send() outstanding at most; cancel()
// from anywhere.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "asio.h"
#include "blindsync/auth/identity.h"
#include "blindsync/core/codec.h"
#include "blindsync/core/messages.h"
#include "blindsync/core/status.h"
#include "ws_conn.h"

namespace blindsync::bench {

struct OpenOptions {
  std::optional<asio::ip::address> local_address;  // bind here first (spreads over 127.x.y.z)
  std::optional<RelayId> pinned_relay_id;
  std::string device_name = "bench";
  Cursor last_cursor = 0;
  std::chrono::milliseconds timeout{10'000};
};

class ProtoConn {
 public:
  explicit ProtoConn(Executor strand);

  const Executor& executor() const noexcept { return ws_.executor(); }

  // Connects and authenticates as device_key in the group whose auth key is group_key.
  // An ERROR from the relay becomes a Status with its wire code (e.g. kGroupFull).
  awaitable<Status> open(const WsTarget& target, const auth::SigningKey& device_key,
                         const auth::SigningKey& group_key, const OpenOptions& options);

  const Welcome& welcome() const noexcept { return welcome_; }
  const RelayId& relay_id() const noexcept { return relay_id_; }

  awaitable<Status> send(const Frame& frame);
  awaitable<Status> send_encoded(ByteView encoded);
  // The next frame from the relay, decoded with the library's strict decoder.
  awaitable<Result<Frame>> receive();

  std::uint32_t next_request_id() noexcept { return ++last_request_id_; }

  // The socket, for RawWsClient (see WsConn::release_socket).
  Result<int> release_socket() { return ws_.release_socket(); }

  awaitable<void> close() { return ws_.close(); }
  void cancel() { ws_.cancel(); }

 private:
  WsConn ws_;
  DecodeLimits decode_limits_;
  Welcome welcome_;
  RelayId relay_id_;
  std::uint32_t last_request_id_ = 0;
};

// The limits the bench decodes relay frames with: whatever the relay chooses to send (a page of
// 1000 blobs), still with explicit limits.
DecodeLimits bench_decode_limits();

// "ERROR 2004 (GROUP_FULL): ..." as a Status carrying the wire code.
Status status_from_error(const Error& error);

}  // namespace blindsync::bench
