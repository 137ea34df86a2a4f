// WsConn: one client WebSocket connection of the load generator, driven by C++20 coroutines.
//
// Beast lives only in ws_conn.cpp (the one Beast translation unit of the bench); this header shows
// Asio's awaitable and executor types but no Beast type. Messages are binary; TCP_NODELAY is set so
// that latency figures measure the relay, not Nagle's algorithm.
//
// Ownership: a WsConn owns its socket. Thread-safety: every method except cancel() must run on the
// executor (a strand) passed to the constructor; at most one read() and one write() may be
// outstanding at a time (Beast's rule). cancel() may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "asio.h"
#include "blindsync/core/bytes.h"
#include "blindsync/core/status.h"

namespace blindsync::bench {

// Where a ws:// relay URL points: a resolved endpoint plus what the HTTP upgrade needs.
struct WsTarget {
  tcp::endpoint remote;
  std::string host_header;  // "127.0.0.1:7600"
  std::string path;         // "/v1/sync"
  bool loopback_v4 = false; // true when local addresses 127.x.y.z may be bound to spread connections
};

// Parses and resolves "ws://HOST:PORT/PATH" (blocking DNS lookup; call once up front).
Result<WsTarget> resolve_ws_url(const std::string& url);

class WsConn {
 public:
  explicit WsConn(Executor executor);
  ~WsConn();
  WsConn(const WsConn&) = delete;
  WsConn& operator=(const WsConn&) = delete;

  const Executor& executor() const noexcept { return executor_; }

  // TCP connect (from `local` when given) and WebSocket upgrade, bounded by `timeout`.
  awaitable<Status> connect(const WsTarget& target, std::optional<asio::ip::address> local,
                            std::chrono::milliseconds timeout);
  // The next binary message. The view stays valid until the next read(). kConnectionClosed once
  // the peer closed or cancel() ran; kIoError for other failures.
  awaitable<Result<ByteView>> read();
  awaitable<Status> write(ByteView message);
  // WebSocket close handshake (bounded by Beast's handshake timeout), then the socket is closed.
  awaitable<void> close();
  // Closes the socket at once: pending operations finish with an error. Any thread.
  void cancel();
  // Hands the socket over (RawWsClient takes it), with nothing outstanding on it. Only between
  // messages, when the peer has sent nothing since the last one read: Beast may hold bytes it read
  // ahead, which would be lost. Afterwards this connection is closed to Beast.
  Result<int> release_socket();

 private:
  struct Impl;
  Executor executor_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace blindsync::bench
