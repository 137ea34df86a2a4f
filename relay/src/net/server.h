// Server: the relay's network front. One TCP port serves HTTP (GET /health, GET /metrics) and the
// WebSocket protocol endpoint (/v1/sync), over TLS (https://, wss://) when a certificate is
// configured. An optional second port (metrics_listen, always plain HTTP) serves only /metrics and
// /health, so that metrics can stay on a private interface; /metrics then answers 404 on the main
// port. The relay's Asio and Beast I/O lives behind this header (server.cpp, ws_session.cpp); it
// feeds the Beast-free Hub and writes the answers of the socket-free http/http_handler.h.
//
// An io_context runs on `threads` threads; each connection has its own strand, so one
// connection's frames reach the hub in order while different connections run in parallel.
// Limits are explicit: TLS/HTTP header/body sizes and read timeout, WebSocket message size
// (= max frame bytes), a bounded per-connection send queue, handshake and idle timeouts (a
// WebSocket without traffic is pinged at half the idle timeout and closed at the full timeout).
//
// Ownership: the Server references the Hub (and counts into its Metrics), which must outlive it.
// Stopping: stop_accepting(), then Hub::shutdown() (BYE to sessions; stop() calls it too), then
// stop() waits for the connections to close for at most `grace` before it cuts the rest.
// Thread-safety: all methods may be called from any thread, but stop() only from one.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "blindsync/core/status.h"
#include "hub/hub.h"
#include "relay_config.h"

namespace blindsync::relay {

struct ServerOptions {
  ListenAddress listen{"127.0.0.1", 7600};
  std::optional<ListenAddress> metrics_listen;  // a second, plain-HTTP port for /metrics and /health
  // Both set: `listen` speaks TLS only (PEM files; loaded, and checked against each other, by start()).
  std::string tls_cert_file;
  std::string tls_key_file;
  unsigned threads = 2;
  // A connection whose send queue would pass either bound is closed (4200 RELAY_OVERLOADED).
  std::size_t max_queued_frames = 1024;
  std::size_t max_queued_bytes = 8 * 1024 * 1024;
  std::size_t http_header_limit = 8 * 1024;
  std::size_t http_body_limit = 1024;  // nothing we serve takes a body
  std::chrono::milliseconds http_timeout{10'000};
  std::chrono::milliseconds websocket_handshake_timeout{10'000};  // also bounds the closing handshake
  std::chrono::milliseconds websocket_idle_timeout{60'000};       // pings at half of it
  std::chrono::milliseconds tls_handshake_timeout{10'000};
  std::chrono::milliseconds tick_interval{500};                   // Hub::on_tick period
};

class Server {
 public:
  // Loads the TLS certificate, binds and listens, installs the SIGINT/SIGTERM handler and starts
  // the I/O threads. kInvalidArgument (naming tls_cert or tls_key) if the certificate or key cannot
  // be used; kIoError if an address cannot be resolved or bound.
  static Result<std::unique_ptr<Server>> start(Hub& hub, const ServerOptions& options);
  ~Server();  // stop(0 ms) if not stopped
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The address actually bound (the real port when 0 was asked for); IPv6 hosts are bracketed.
  const std::string& host() const noexcept;
  std::uint16_t port() const noexcept;
  // "ws://HOST:PORT/v1/sync", or wss:// with TLS.
  std::string sync_url() const;
  bool tls() const noexcept;
  // The metrics port actually bound, 0 without metrics_listen; "http://HOST:PORT/metrics" or "".
  std::uint16_t metrics_port() const noexcept;
  std::string metrics_url() const;

  // Blocks until SIGINT or SIGTERM arrives, or request_stop() is called.
  void wait_for_stop();
  void request_stop();

  // Closes the listening sockets: no new connections.
  void stop_accepting();
  // Shuts the hub down, waits up to grace for connections to close, closes what remains, stops
  // and joins the I/O threads. Idempotent.
  void stop(std::chrono::milliseconds grace);

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace blindsync::relay
