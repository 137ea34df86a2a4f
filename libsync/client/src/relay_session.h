// RelaySession: one authenticated protocol session with a relay over a Transport.
//
// open() connects through the TransportFactory and runs the handshake:
//   receive CHALLENGE -> check the protocol version and (when pinned) the relay_id
//   send HELLO signed by the device key and the group auth key
//   receive WELCOME -> verify relay_sig over the transcript.
// Every frame sent or received goes through a core SessionMachine (Role::kClient), so a frame out
// of place is refused before the caller sees it. Frames are decoded with explicit limits.
//
// The session owns its Transport; the destructor says BYE and closes it.
// Thread-safety: open() and the handshake run on one thread. Once open, send()/send_as() may run on
// one thread while receive() runs on another (the Transport allows one sender and one receiver),
// and close() may be called from either; the state machine and failure status are guarded by an
// internal mutex that is never held while the transport blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "blindsync/auth/identity.h"
#include "blindsync/client/transport.h"
#include "blindsync/core/codec.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/messages.h"
#include "blindsync/core/session.h"
#include "blindsync/core/status.h"

namespace blindsync::client_detail {

struct SessionParams {
  std::string relay_url;
  std::optional<RelayId> pinned_relay;  // nullopt: learn it from CHALLENGE (group creation)
  const auth::SigningKey* device_key = nullptr;
  GroupId group_id;
  const auth::SigningKey* group_auth_key = nullptr;
  std::string device_name;
  Cursor last_cursor = 0;
  std::chrono::milliseconds timeout{15'000};  // connect and every wait of the handshake
};

// The Status an ERROR frame from the relay stands for (its wire code and message).
Status relay_error_status(const Error& error);

class RelaySession {
 public:
  static Result<std::unique_ptr<RelaySession>> open(const TransportFactory& factory, const SessionParams& params);
  // Connects through the factory only (no handshake yet), so that a caller can keep a way to
  // interrupt the handshake: transport() may be closed from another thread.
  static Result<std::unique_ptr<RelaySession>> connect(const TransportFactory& factory, const SessionParams& params);
  // Runs the handshake on a session made by connect(). REQUIRES: called once.
  Status handshake(const SessionParams& params);
  // Closes the transport from any thread (e.g. to interrupt a handshake); the session then fails.
  void interrupt();
  ~RelaySession();
  RelaySession(const RelaySession&) = delete;
  RelaySession& operator=(const RelaySession&) = delete;

  const RelayId& relay_id() const noexcept { return relay_id_; }
  const Welcome& welcome() const noexcept { return welcome_; }
  const Limits& limits() const noexcept { return welcome_.limits; }
  std::chrono::milliseconds timeout() const noexcept { return timeout_; }

  // Sends a request with a fresh request_id and returns that id.
  Result<std::uint32_t> send(Message message);
  // Sends with a request_id the caller chose (callers that match replies themselves).
  // REQUIRES: request_id != 0 (0 marks relay-initiated frames).
  Status send_as(std::uint32_t request_id, Message message);
  // The next frame, waiting at most `timeout`. kTimeout leaves the session usable. A BYE, a closed
  // transport or a frame that is malformed or out of place ends the session: kConnectionClosed
  // (BYE / closed) or kInvalidMessage / kInvalidState, and every later call fails the same way.
  Result<Frame> receive(std::chrono::milliseconds timeout);
  // Says BYE (when still active) and closes the transport. Idempotent.
  void close();
  // True while the session is active and nothing has failed it.
  bool usable() const;

 private:
  RelaySession(std::unique_ptr<Transport> transport, std::chrono::milliseconds timeout,
               std::size_t max_frame_bytes);
  Status send_frame(std::uint32_t request_id, Message message);
  Status fail(Status status);

  std::unique_ptr<Transport> transport_;  // set at construction, never reset
  mutable std::mutex mu_;                 // guards machine_, next_request_id_, failure_
  SessionMachine machine_;
  std::chrono::milliseconds timeout_;
  DecodeLimits decode_limits_;
  RelayId relay_id_;
  Welcome welcome_;
  std::uint32_t next_request_id_ = 1;
  Status failure_;  // set once the session is unusable
};

}  // namespace blindsync::client_detail
