// RawWsClient: the client side of an open WebSocket connection, on a plain non-blocking socket,
// for W1's measured loop (w1_push.cpp drives many of them from one epoll loop).
//
// Why not Beast there: relay and bench share 2 cores, and W1 is CPU-bound, so every microsecond
// the bench spends per push is one the relay does not get. Under W1 normal a third of the bench's
// CPU was Beast and Asio (a coroutine resumption and handler allocation per read and per write)
// and 0.72 of its 1.72 recvmsg calls per push found nothing (Asio reads speculatively before it
// waits). Beast still makes the connection and the WebSocket upgrade (ws_conn.h), and the library's
// codec still makes and reads every frame's message; this only moves the bytes.
//
// What it speaks (RFC 6455): it sends final binary frames, masked with a fresh key each (5.3),
// answers a ping with a pong, and takes final unmasked binary frames. A fragmented or masked frame
// from the relay, a text frame or a close frame ends the connection with an error: the relay never
// sends the first three, and W1 ends connections itself.
//
// Ownership: owns the socket. Thread-safety: none (one epoll loop).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "blindsync/core/bytes.h"
#include "blindsync/core/status.h"

namespace blindsync::bench {

class RawWsClient {
 public:
  // Takes the socket (made non-blocking here) of a connection whose upgrade is done and whose last
  // message was read whole.
  explicit RawWsClient(int fd);
  // Sends a close frame if the socket takes it at once, then closes the socket.
  ~RawWsClient();
  RawWsClient(RawWsClient&& other) noexcept;
  RawWsClient& operator=(RawWsClient&&) = delete;
  RawWsClient(const RawWsClient&) = delete;
  RawWsClient& operator=(const RawWsClient&) = delete;

  int fd() const noexcept { return fd_; }

  // Frames `message` and writes what the socket takes now; the rest waits for flush().
  Status send(ByteView message);
  // Writes what is left of earlier sends (call when the socket is writable).
  Status flush();
  bool wants_write() const noexcept { return out_sent_ < out_.size(); }

  // Reads what the socket holds (nothing is not an error). kConnectionClosed at the peer's end.
  Status read_some();
  // The next whole binary message read so far; the view lives until the next read_some() or
  // next_message(). nullopt when no whole message is buffered.
  Result<std::optional<ByteView>> next_message();

 private:
  void frame_into_out(std::uint8_t opcode, ByteView payload);
  std::uint32_t next_mask() noexcept;

  int fd_ = -1;
  std::uint64_t prng_ = 0;  // xorshift64 state for mask keys
  std::vector<std::uint8_t> out_;
  std::size_t out_sent_ = 0;
  std::vector<std::uint8_t> in_;
  std::size_t in_begin_ = 0;  // first byte not yet taken
  std::size_t in_end_ = 0;    // one past the last byte read
};

}  // namespace blindsync::bench
