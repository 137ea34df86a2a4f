// Connection: the hub's view of one client transport (a WebSocket session in net/, a fake in tests).
//
// The hub never sees Beast or Asio: it sends whole frames and asks for a close through this
// interface (the Asio chat example's `chat_participant`). The net layer implements it, owns the
// socket, and tells the hub about incoming frames and the end of the transport (Hub::on_frame,
// Hub::on_close).
//
// Ownership: shared. The hub keeps a std::shared_ptr while the connection is open or registered.
// Thread-safety: every method may be called from any thread (store completions call send() from
// the store's writer thread). Implementations must not block and must not call back into the Hub
// synchronously; the net layer posts the work onto the connection's strand.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "blindsync/core/bytes.h"

namespace blindsync::relay {

class Connection {
 public:
  virtual ~Connection() = default;

  // Queues one encoded frame (a whole WebSocket binary message). Frames are sent in the order
  // send() was called from one thread. Dropped silently once the connection is closing. A
  // connection whose queue passes its bound closes itself (the relay must never grow without limit).
  virtual void send(Bytes frame) = 0;

  // Sends the queued frames, then a WebSocket close with this code (close_codes.h) and reason.
  // Idempotent: later calls are ignored.
  virtual void close(std::uint16_t websocket_close_code, std::string_view reason) = 0;

  // "ip:port" of the peer, for logs.
  virtual std::string remote_address() const = 0;

  // True while the send queue is more than half full (a slow reader). The hub then sends NOTIFY
  // without its inline payload, so a reader that is behind costs ~100 bytes per blob instead of
  // up to the inline limit; past the full bound the connection closes itself.
  virtual bool congested() const { return false; }

  // Runs `work` later, never inside this call: in the connection's order, after the frames
  // already sent (so a reply made in steps lets each step's frame go out while the next is
  // made). Dropped once the connection is closing.
  virtual void defer(std::function<void()> work) = 0;
};

}  // namespace blindsync::relay
