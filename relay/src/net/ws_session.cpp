#include "net/ws_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hub/close_codes.h"
#include "http/health.h"
#include "http/routes.h"

namespace blindsync::relay::net {
namespace {

using asio::awaitable;
using asio::use_awaitable;

std::string_view to_std(boost::beast::string_view s) { return {s.data(), s.size()}; }

std::string format_endpoint(const tcp::socket& socket) {
  error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "?";
  const auto address = endpoint.address();
  return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
         std::to_string(endpoint.port());
}

bool is_quiet_end(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == asio::error::broken_pipe || ec == websocket::error::closed;
}

// Logs what escaped a coroutine (only allocation failures can: every I/O result is an error_code).
void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("connection task failed: {}", ex.what());
  } catch (...) {
    spdlog::error("connection task failed");
  }
}

}  // namespace

class WsSession final : public Connection, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket socket, NetContext& context)
      : context_(context),
        executor_(socket.get_executor()),
        remote_(format_endpoint(socket)),
        ws_(std::move(socket)) {}

  static awaitable<void> run(std::shared_ptr<WsSession> self) { co_await self->serve(); }

  void send(Bytes frame) override {
    asio::post(executor_, [self = shared_from_this(), frame = std::move(frame)]() mutable {
      self->enqueue(std::move(frame));
    });
  }

  void close(std::uint16_t code, std::string_view reason) override {
    asio::post(executor_, [self = shared_from_this(), code, reason = std::string(reason)]() {
      self->request_close(code, reason);
    });
  }

  std::string remote_address() const override { return remote_; }

  const asio::any_io_executor& executor() const noexcept { return executor_; }

  void abort(bool http_only) {
    asio::post(executor_, [self = shared_from_this(), http_only]() {
      if (http_only && self->phase_ != Phase::kHttp) return;
      error_code ec;
      beast::get_lowest_layer(self->ws_).socket().close(ec);
    });
  }

 private:
  enum class Phase { kHttp, kWebSocket, kDone };

  awaitable<void> serve() {
    auto self = shared_from_this();
    try {
      co_await serve_http();
    } catch (...) {
      log_exception(std::current_exception());
    }
    phase_ = Phase::kDone;
    queue_.clear();
    queued_bytes_ = 0;
    if (hub_open_) context_.hub.on_close(self);
    error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).socket().close(ec);
    std::lock_guard lock(context_.mutex);
    context_.connections.erase(this);
  }

  // HTTP/1.1 requests until an upgrade at /v1/sync, an error, a timeout or "Connection: close".
  awaitable<void> serve_http() {
    auto& stream = beast::get_lowest_layer(ws_);
    const ServerOptions& options = context_.options;
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.http_header_limit));
      parser.body_limit(options.http_body_limit);
      stream.expires_after(options.http_timeout);
      error_code ec;
      // Only the header is read: nothing the relay serves takes a body. Refusing bodies before
      // reading them also keeps requests away from Boost 1.74 Beast's chunk parser, whose
      // assert (fixed upstream, boostorg/beast#2861) a client could trip in debug builds.
      co_await http::async_read_header(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (!ec && (parser.chunked() || parser.content_length().value_or(0) > 0)) {
        co_await respond(http::status::payload_too_large, 11, "request bodies are not accepted\n", false);
        co_return;
      }
      if (ec) {
        if (ec == http::error::body_limit) {
          co_await respond(http::status::payload_too_large, 11, "request body too large\n", false);
        } else if (ec == http::error::header_limit) {
          co_await respond(http::status::request_header_fields_too_large, 11, "request header too large\n", false);
        } else if (!is_quiet_end(ec)) {
          co_await respond(http::status::bad_request, 11, "bad request\n", false);
        }
        co_return;
      }
      http::request<http::string_body> request = parser.release();
      const Route route =
          route_request(to_std(request.method_string()), to_std(request.target()), websocket::is_upgrade(request));
      const bool keep_alive = request.keep_alive() && !context_.stopping.load();
      const unsigned version = request.version();
      bool ok = true;
      switch (route) {
        case Route::kSync:
          if (context_.stopping.load()) {
            co_await respond(http::status::service_unavailable, version, "relay shutting down\n", false);
            co_return;
          }
          co_await serve_websocket(std::move(request));
          co_return;
        case Route::kHealth:
          ok = co_await respond_health(version, keep_alive);
          break;
        case Route::kUpgradeRequired:
          ok = co_await respond(http::status::upgrade_required, version, "use a WebSocket upgrade here\n",
                                keep_alive);
          break;
        case Route::kMethodNotAllowed:
          ok = co_await respond(http::status::method_not_allowed, version, "method not allowed\n", keep_alive);
          break;
        case Route::kNotFound:
          ok = co_await respond(http::status::not_found, version, "not found\n", keep_alive);
          break;
      }
      if (!ok || !keep_alive) co_return;
    }
  }

  awaitable<bool> respond_health(unsigned version, bool keep_alive) {
    const HubCounts counts = context_.hub.counts();
    HealthReport report;
    report.relay_id_hex = context_.hub.relay_id().to_hex();
    report.uptime_seconds = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - context_.started).count());
    report.connections = counts.connections;
    report.sessions = counts.sessions;
    report.groups = counts.groups;
    if (auto stats = context_.hub.store_stats()) {
      report.blobs_buffered = stats->blobs;
      report.bytes_buffered = stats->bytes;
    } else {
      spdlog::warn("health: store statistics unavailable: {}", stats.error().to_string());
    }
    const auto status = health_ok(report) ? http::status::ok : http::status::service_unavailable;
    co_return co_await respond(status, version, render_health_json(report) + "\n", keep_alive, "application/json");
  }

  // Writes one response; false if the connection is unusable afterwards.
  awaitable<bool> respond(http::status status, unsigned version, std::string body, bool keep_alive,
                          std::string_view content_type = "text/plain; charset=utf-8") {
    http::response<http::string_body> response{status, version};
    response.set(http::field::server, "blindsync-relay");
    response.set(http::field::content_type, boost::beast::string_view(content_type.data(), content_type.size()));
    response.set(http::field::cache_control, "no-store");
    if (status == http::status::method_not_allowed) response.set(http::field::allow, "GET");
    if (status == http::status::upgrade_required) {
      response.set(http::field::upgrade, "websocket");
      response.set(http::field::connection, "Upgrade");
    }
    response.keep_alive(keep_alive);
    response.body() = std::move(body);
    response.prepare_payload();
    auto& stream = beast::get_lowest_layer(ws_);
    stream.expires_after(context_.options.http_timeout);
    error_code ec;
    co_await http::async_write(stream, response, asio::redirect_error(use_awaitable, ec));
    if (!ec && !keep_alive) stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    co_return !ec;
  }

  awaitable<void> serve_websocket(http::request<http::string_body> request) {
    const ServerOptions& options = context_.options;
    // Beast's websocket stream keeps its own timers; the tcp_stream's must be off (Beast docs).
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = options.websocket_handshake_timeout;
    timeouts.idle_timeout = options.websocket_idle_timeout;
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& response) { response.set(http::field::server, "blindsync-relay"); }));
    // Beast defaults to 16 MB messages: cap at the frame limit before any frame is buffered.
    ws_.read_message_max(context_.hub.limits().max_frame_bytes);
    ws_.binary(true);

    error_code ec;
    co_await ws_.async_accept(request, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      spdlog::debug("{}: websocket handshake failed: {}", remote_, ec.message());
      co_return;
    }
    phase_ = Phase::kWebSocket;
    hub_open_ = true;
    auto self = shared_from_this();
    context_.hub.on_open(self);

    beast::flat_buffer buffer;
    for (;;) {
      co_await ws_.async_read(buffer, asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      if (!ws_.got_binary()) {
        request_close(static_cast<std::uint16_t>(websocket::close_code::unknown_data), "binary messages only");
      } else {
        const auto data = buffer.cdata();
        context_.hub.on_frame(self, ByteView(static_cast<const std::uint8_t*>(data.data()), data.size()));
      }
      buffer.consume(buffer.size());
      // Do not keep a 1 MiB buffer per idle connection after one large frame.
      if (buffer.capacity() > 64 * 1024) buffer.shrink_to_fit();
    }
    if (ec == websocket::error::message_too_big) {
      spdlog::info("{}: frame over {} bytes, connection closed", remote_, context_.hub.limits().max_frame_bytes);
    } else if (!is_quiet_end(ec)) {
      spdlog::debug("{}: websocket ended: {}", remote_, ec.message());
    }
  }

  // --- send queue: runs on the strand ---

  void enqueue(Bytes frame) {
    if (phase_ != Phase::kWebSocket || close_requested_ || broken_) return;
    const ServerOptions& options = context_.options;
    if (queue_.size() + 1 > options.max_queued_frames || queued_bytes_ + frame.size() > options.max_queued_bytes) {
      spdlog::warn("{}: send queue full ({} frames, {} bytes): closing the slow connection", remote_, queue_.size(),
                   queued_bytes_);
      queue_.clear();
      queued_bytes_ = 0;
      if (writing_) {
        // A write is stuck behind a peer that does not read: a closing handshake would wait
        // behind it too, so cut the socket (the read loop then ends the session).
        broken_ = true;
        error_code ec;
        beast::get_lowest_layer(ws_).socket().close(ec);
      } else {
        request_close(websocket_close_code(Code::kRelayOverloaded), "send queue full");
      }
      return;
    }
    queued_bytes_ += frame.size();
    queue_.push_back(std::move(frame));
    start_writer();
  }

  void request_close(std::uint16_t code, std::string_view reason) {
    if (phase_ == Phase::kHttp) {  // not a WebSocket yet: nothing to say, just drop the socket
      error_code ec;
      beast::get_lowest_layer(ws_).socket().close(ec);
      return;
    }
    if (phase_ != Phase::kWebSocket || close_requested_ || broken_) return;
    close_requested_ = true;
    // RFC 6455 limits a close reason to 123 bytes.
    close_reason_ = websocket::close_reason(static_cast<websocket::close_code>(code), boost::beast::string_view(reason.data(), std::min<std::size_t>(reason.size(), 123)));
    start_writer();
  }

  void start_writer() {
    if (writing_) return;
    writing_ = true;
    asio::co_spawn(executor_, write_loop(shared_from_this()), log_exception);
  }

  static awaitable<void> write_loop(std::shared_ptr<WsSession> self) { co_await self->drain(); }

  // The one writer: Beast allows a single outstanding write (and close) per stream.
  awaitable<void> drain() {
    error_code ec;
    while (!queue_.empty() && !broken_ && phase_ == Phase::kWebSocket) {
      Bytes frame = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= frame.size();
      co_await ws_.async_write(asio::buffer(frame), asio::redirect_error(use_awaitable, ec));
      if (ec) {
        broken_ = true;
        queue_.clear();
        queued_bytes_ = 0;
        beast::get_lowest_layer(ws_).socket().close(ec);  // ends the read loop too
      }
    }
    if (close_requested_ && !close_sent_ && !broken_ && phase_ == Phase::kWebSocket) {
      close_sent_ = true;
      // The read loop stays active and receives the peer's close reply (or times out).
      co_await ws_.async_close(close_reason_, asio::redirect_error(use_awaitable, ec));
    }
    writing_ = false;
  }

  NetContext& context_;
  const asio::any_io_executor executor_;  // this connection's strand
  const std::string remote_;
  websocket::stream<beast::tcp_stream> ws_;

  // Strand-only state.
  Phase phase_ = Phase::kHttp;
  bool hub_open_ = false;
  std::deque<Bytes> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool close_requested_ = false;
  bool close_sent_ = false;
  bool broken_ = false;
  websocket::close_reason close_reason_;
};

void start_connection(tcp::socket socket, NetContext& context) {
  auto session = std::make_shared<WsSession>(std::move(socket), context);
  {
    std::lock_guard lock(context.mutex);
    context.connections.emplace(session.get(), session);
  }
  const asio::any_io_executor executor = session->executor();
  asio::co_spawn(executor, WsSession::run(std::move(session)), log_exception);
}

void abort_connections(NetContext& context, bool http_only) {
  std::vector<std::shared_ptr<WsSession>> sessions;
  {
    std::lock_guard lock(context.mutex);
    for (const auto& [raw, weak] : context.connections) {
      if (auto session = weak.lock()) sessions.push_back(std::move(session));
    }
  }
  for (const auto& session : sessions) session->abort(http_only);
}

std::size_t live_connections(NetContext& context) {
  std::lock_guard lock(context.mutex);
  return context.connections.size();
}

}  // namespace blindsync::relay::net
