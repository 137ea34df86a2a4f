// One client connection of the relay: HTTP requests (GET /health, GET /metrics), then, after an
// upgrade at /v1/sync, the WebSocket session that implements Connection for the Hub. The same code
// serves plain TCP and TLS (the session is a template over its stream, instantiated twice in
// ws_session.cpp), and the metrics port, which answers only /metrics and /health. What each HTTP
// request gets is decided and built by http/http_handler.h; this layer reads and writes it.
// Private to net/ (it exposes Asio types).
//
// Each connection runs on its own strand: its coroutine (TLS, HTTP and the WebSocket handshake),
// then its read and write completion handlers, its send queue and its close all execute there;
// Connection::send/close post onto it, so they are safe from any thread. An open WebSocket is
// served by completion handlers rather than a coroutine, so an idle one holds no coroutine frames,
// and its frames are read and written with websocket/ws_frame.h over the bare stream. No
// per-connection timer: the server's tick calls sweep_idle_connections, which pings a WebSocket
// silent for half the idle timeout and cuts one silent for all of it.
#pragma once

#include "net/asio.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "http/http_handler.h"
#include "hub/hub.h"
#include "net/server.h"

namespace blindsync::relay {
struct Metrics;
}

namespace blindsync::relay::net {

// What the net layer needs from a live connection, whatever its stream type.
class NetConnection {
 public:
  virtual ~NetConnection() = default;
  // Closes the socket now (all connections, or only those still speaking HTTP). Thread-safe.
  virtual void abort(bool http_only) = 0;
  // The idle and closing-handshake bounds of an open WebSocket (steady clock, ms); cheap when
  // nothing is due. Thread-safe.
  virtual void check_idle(std::int64_t now_ms) = 0;
};

// Shared by the listeners and every connection. Owned by Server::Impl; outlives every connection
// (the server stops its I/O threads before destroying it).
struct NetContext {
  NetContext(Hub& h, const ServerOptions& o) : hub(h), options(with_queue_room(o, h)), metrics(h.metrics()) {}

  // A session's send queue must hold what the hub queues for a reader that keeps up: a run of
  // pulled pages stops once the queue is past half, so it then holds up to half the bound plus one
  // page, and a page is at most one frame. With large frames the bound is raised to fit.
  static ServerOptions with_queue_room(ServerOptions options, const Hub& hub) {
    const std::size_t frame = hub.limits().max_frame_bytes;
    options.max_queued_bytes = std::max(options.max_queued_bytes, 2 * frame + (std::size_t{1} << 20));
    return options;
  }

  Hub& hub;
  const ServerOptions options;
  Metrics& metrics;                    // the hub's: connections and bytes, rendered at /metrics
  ssl::context* tls = nullptr;         // set when the main port speaks TLS
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::atomic<bool> stopping{false};  // no keep-alive, no new WebSocket sessions

  std::mutex mutex;  // guards connections
  std::unordered_map<const void*, std::weak_ptr<NetConnection>> connections;
};


// Serves one accepted TCP connection until it closes. On the main port it first takes a per-IP
// slot (Hub::admit_connection) and closes the socket at once when there is none.
// REQUIRES: the socket's executor is a strand of its own (accept with asio::make_strand).
void start_connection(StrandSocket socket, NetContext& context, HttpPort listener);

// Closes the sockets of live connections now (all of them, or only those still speaking HTTP).
void abort_connections(NetContext& context, bool http_only);

std::size_t live_connections(NetContext& context);

// check_idle on every live connection; the server calls it on each tick.
void sweep_idle_connections(NetContext& context);

}  // namespace blindsync::relay::net
