#include "net/ws_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <list>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "hub/close_codes.h"
#include "http/http_handler.h"
#include "http/routes.h"
#include "limits/connection_limiter.h"
#include "metrics/metrics.h"

namespace blindsync::relay::net {
namespace {

using asio::awaitable;
using asio::use_awaitable;

// The HTTP phase of a plain connection: a stream with timeouts. An open plain WebSocket runs over
// the bare socket (moved out of it after the upgrade), which saves every idle session the
// stream's state and timers; Beast's websocket stream keeps its own timeouts.
using HttpStream = beast::basic_stream<tcp, Strand>;
using PlainStream = StrandSocket;
using TlsStream = beast::ssl_stream<HttpStream>;

// Buffer an idle WebSocket session holds while it waits for the next message.
constexpr std::size_t kIdleReadBytes = 64;
// Once a message's first bytes are in: reads of at least one TCP segment, at most 1 MiB.
constexpr std::size_t kMinReadChunk = 4096;
constexpr std::size_t kMaxReadChunk = std::size_t{1} << 20;

std::string format_endpoint(const StrandSocket& socket) {
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
         ec == asio::error::broken_pipe || ec == websocket::error::closed || ec == ssl::error::stream_truncated;
}

// Logs what escaped a coroutine or a completion handler (only allocation failures can: every
// I/O result is an error_code).
void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("connection task failed error=\"{}\"", ex.what());
  } catch (...) {
    spdlog::error("connection task failed");
  }
}

std::uint64_t seconds_since(std::chrono::steady_clock::time_point start) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start).count());
}

// Stream is PlainStream or TlsStream: the layer under the WebSocket. A TLS stream also carries
// HTTP; a plain connection speaks HTTP over http_ and moves its socket into ws_ after the upgrade.
template <typename Stream>
class WsSession final : public Connection, public NetConnection, public std::enable_shared_from_this<WsSession<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  WsSession(StrandSocket socket, NetContext& context, HttpPort listener)
    requires(!kTls)
      : context_(context),
        listener_(listener),
        remote_(format_endpoint(socket)),
        strand_(socket.get_executor()),
        http_(std::in_place, std::move(socket)) {}

  WsSession(StrandSocket socket, NetContext& context, HttpPort listener)
    requires(kTls)
      : context_(context),
        listener_(listener),
        remote_(format_endpoint(socket)),
        strand_(socket.get_executor()),
        ws_(std::in_place, std::move(socket), *context.tls) {}

  // The coroutine phase of the connection: TLS handshake, HTTP, WebSocket handshake. Once the
  // WebSocket is open it returns and the callback read loop keeps the session alive, so that an
  // idle session holds no coroutine frames (W4 in docs/benchmarks.md).
  static awaitable<void> run(std::shared_ptr<WsSession> self) { co_await self->serve(); }

  void send(Bytes frame) override {
    asio::post(executor(), [self = this->shared_from_this(), frame = std::move(frame)]() mutable {
      self->enqueue(std::move(frame));
    });
  }

  void close(std::uint16_t code, std::string_view reason) override {
    asio::post(executor(), [self = this->shared_from_this(), code, reason = std::string(reason)]() {
      self->request_close(code, reason);
    });
  }

  std::string remote_address() const override { return remote_; }

  // Past half of either queue bound the hub drops NOTIFY payloads for this reader (limits).
  bool congested() const override {
    const ServerOptions& options = context_.options;
    return queued_frames_.load(std::memory_order_relaxed) * 2 > options.max_queued_frames ||
           queued_bytes_.load(std::memory_order_relaxed) * 2 > options.max_queued_bytes;
  }

  // The per-address connection slot (Hub::admit_connection), given back by finish().
  void hold_slot(std::optional<ConnectionSlot> slot) { slot_ = std::move(slot); }

  // This connection's strand. Safe from any thread: set once, at construction (the socket moves
  // from http_ to ws_ on the strand).
  const Strand& executor() const { return strand_; }

  void abort(bool http_only) override {
    asio::post(executor(), [self = this->shared_from_this(), http_only]() {
      if (http_only && self->phase_ != Phase::kHttp) return;
      error_code ec;
      self->socket().close(ec);
    });
  }

 private:
  enum class Phase { kHttp, kWebSocket, kDone };

  // The connection's socket, wherever it is now. Strand only.
  StrandSocket& socket() {
    if constexpr (kTls) {
      return beast::get_lowest_layer(*ws_).socket();
    } else {
      return ws_ ? ws_->next_layer() : http_->socket();
    }
  }

  // The stream HTTP is read from and written to; its lowest layer has the HTTP timeouts.
  auto& http_stream() {
    if constexpr (kTls) {
      return ws_->next_layer();
    } else {
      return *http_;
    }
  }
  HttpStream& http_timeouts() { return beast::get_lowest_layer(http_stream()); }

  awaitable<void> serve() {
    auto self = this->shared_from_this();
    bool reading = false;  // the read loop owns the session from here and calls finish()
    try {
      if (co_await tls_handshake()) reading = co_await serve_http();
    } catch (...) {
      log_exception(std::current_exception());
    }
    if (!reading) finish();
  }

  // The end of the connection, whichever phase it ended in. Runs on the strand, once.
  void finish() {
    if (phase_ == Phase::kDone) return;
    phase_ = Phase::kDone;
    queue_.clear();
    queued_bytes_ = 0;
    queued_frames_ = 0;
    read_buffer_ = {};
    if (hub_open_) context_.hub.on_close(this->shared_from_this());
    error_code ec;
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
    slot_.reset();
    std::lock_guard lock(context_.mutex);
    context_.connections.erase(static_cast<const NetConnection*>(this));
  }

  // TLS only: the server side of the handshake, bounded like an HTTP read.
  awaitable<bool> tls_handshake() {
    if constexpr (kTls) {
      http_timeouts().expires_after(context_.options.tls_handshake_timeout);
      error_code ec;
      co_await http_stream().async_handshake(ssl::stream_base::server, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        spdlog::debug("tls handshake failed remote={} error=\"{}\"", remote_, ec.message());
        co_return false;
      }
    }
    co_return true;
  }

  // HTTP/1.1 requests until an upgrade at /v1/sync, an error, a timeout or "Connection: close".
  // What to answer is decided by http/http_handler.h; this loop only reads and writes.
  // True when it handed the connection over to the WebSocket read loop.
  awaitable<bool> serve_http() {
    auto& stream = http_stream();
    const ServerOptions& options = context_.options;
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.http_header_limit));
      parser.body_limit(options.http_body_limit);
      http_timeouts().expires_after(options.http_timeout);
      error_code ec;
      // Only the header is read (see answer_request: bodies are refused unread).
      co_await http::async_read_header(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (is_quiet_end(ec)) co_return false;
        if (std::optional<HttpAnswer> refusal = answer_read_error(ec)) co_await respond(std::move(*refusal));
        co_return false;
      }
      HttpAnswer answer = answer_request(parser, http_site());
      if (answer.upgrade) {
        // The header bytes are not needed for the handshake: give them back before it.
        buffer.clear();
        buffer.shrink_to_fit();
        co_return co_await accept_websocket(parser.release());
      }
      const bool keep_alive = answer.keep_alive;
      const bool ok = co_await respond(std::move(answer));
      if (!ok || !keep_alive) co_return false;
    }
  }

  // This connection's listener and the relay's state now, for answer_request.
  HttpSite http_site() {
    HttpSite site;
    site.port = listener_;
    site.metrics = context_.metrics;
    site.metrics_port = context_.options.metrics_listen.has_value();
    site.stopping = context_.stopping.load();
    site.read_status = [this](Route route) { return read_status(route); };
    return site;
  }

  // The hub's and the store's figures for /health and /metrics.
  RelayStatus read_status(Route route) {
    const HubCounts counts = context_.hub.counts();
    RelayStatus status;
    status.relay_id_hex = context_.hub.relay_id().to_hex();
    status.uptime_seconds = seconds_since(context_.started);
    status.connections = counts.connections;
    status.sessions = counts.sessions;
    status.groups = counts.groups;
    if (auto stats = context_.hub.store_stats()) {
      status.store = *stats;
    } else if (route == Route::kHealth) {
      spdlog::warn("health: store statistics unavailable error=\"{}\"", stats.error().to_string());
    }
    return status;
  }

  // Writes one response; false if the connection is unusable afterwards.
  awaitable<bool> respond(HttpAnswer answer) {
    const bool keep_alive = answer.keep_alive;
    HttpResponse response = build_response(std::move(answer));
    http_timeouts().expires_after(context_.options.http_timeout);
    error_code ec;
    co_await http::async_write(http_stream(), response, asio::redirect_error(use_awaitable, ec));
    if (!ec && !keep_alive) {
      if constexpr (kTls) {
        // close_notify, so that the client can tell the end of the response from a truncation.
        co_await http_stream().async_shutdown(asio::redirect_error(use_awaitable, ec));
      } else {
        socket().shutdown(tcp::socket::shutdown_send, ec);
      }
    }
    co_return !ec;
  }

  // The WebSocket handshake; on success the session joins the hub and the read loop starts.
  // True when the read loop runs (and will call finish()).
  awaitable<bool> accept_websocket(http::request<http::string_body> request) {
    configure_websocket();
    error_code ec;
    co_await ws_->async_accept(request, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      spdlog::debug("websocket handshake failed remote={} error=\"{}\"", remote_, ec.message());
      co_return false;
    }
    phase_ = Phase::kWebSocket;
    hub_open_ = true;
    context_.hub.on_open(this->shared_from_this());
    read_next();
    co_return true;
  }

  void configure_websocket() {
    const ServerOptions& options = context_.options;
    if constexpr (kTls) {
      // Beast's websocket stream keeps its own timers; the tcp_stream's must be off (Beast docs).
      http_timeouts().expires_never();
    } else {
      // The WebSocket gets the bare socket; the HTTP stream (and its timers) goes.
      StrandSocket socket = http_->release_socket();
      http_.reset();
      ws_.emplace(std::move(socket));
    }
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = options.websocket_handshake_timeout;
    // No traffic for half of it: Beast sends a ping; nothing (not even the pong) for all of it:
    // the read fails with a timeout and the connection is closed. A peer that vanished without
    // a FIN (laptop lid closed) is noticed this way.
    timeouts.idle_timeout = options.websocket_idle_timeout;
    timeouts.keep_alive_pings = true;
    ws_->set_option(timeouts);
    ws_->set_option(websocket::stream_base::decorator(
        [](websocket::response_type& response) { response.set(http::field::server, "blindsync-relay"); }));
    // Beast defaults to 16 MB messages: cap at the frame limit before any frame is buffered.
    ws_->read_message_max(context_.hub.limits().max_frame_bytes);
    ws_->binary(true);
    // One frame per message, written with one gather write: Beast's default splits a server's
    // messages into 4 KiB frames, one write each (a 1 MB PULL page took 256 writes).
    ws_->auto_fragment(false);
  }

  // --- read loop: completion handlers, not a coroutine, so that an idle session holds only the
  // pending read operation. The handlers have no associated executor: Beast runs them on the
  // stream's, which is this connection's strand.

  // Waits for the next message with at most kIdleReadBytes of buffer: async_read would prepare
  // Beast's tcp_frame_size (1.5 KiB) up front, held by every idle session. The rest of the
  // message is read once its first bytes arrived (read_message_max still applies).
  void read_next() { read_some(kIdleReadBytes); }

  // Reads into read_buffer_ at most `limit` bytes of the current message (0: a chunk that grows
  // with the message, so a large one takes few reads). Calling Beast's buffer overload directly
  // saves the DynamicBuffer overload's operation layer (and its executor work guard) in every
  // pending read. The chunk is ours, not read_size_hint(): during a closing handshake that drains
  // frames, Beast 1.74's hint asserts (rd_remain > 0) in debug builds and is 0 in release ones,
  // which would make every read empty. Beast never returns bytes past the current message.
  void read_some(std::size_t limit) {
    const std::size_t chunk = std::clamp(read_buffer_.size(), kMinReadChunk, kMaxReadChunk);
    const auto buffers = read_buffer_.prepare(limit == 0 ? chunk : limit);
    ws_->async_read_some(buffers, [self = this->shared_from_this()](error_code ec, std::size_t bytes) {
      self->read_buffer_.commit(bytes);
      self->on_read(ec);
    });
  }

  void on_read(error_code ec) {
    try {
      if (!ec && !ws_->is_message_done()) return read_some(0);
      if (ec) {
        log_websocket_end(ec);
        return finish();
      }
      deliver_message();
      read_next();
    } catch (...) {  // allocation failures only; the session ends as the coroutine's would
      log_exception(std::current_exception());
      finish();
    }
  }

  // Hands one complete message to the hub, then drops the buffer's bytes.
  void deliver_message() {
    if (context_.metrics != nullptr) context_.metrics->bytes_in.fetch_add(read_buffer_.size(), std::memory_order_relaxed);
    if (!ws_->got_binary()) {
      request_close(static_cast<std::uint16_t>(websocket::close_code::unknown_data), "binary messages only");
    } else {
      const auto data = read_buffer_.cdata();
      context_.hub.on_frame(this->shared_from_this(), ByteView(static_cast<const std::uint8_t*>(data.data()), data.size()));
    }
    read_buffer_.consume(read_buffer_.size());
    // An idle session keeps no buffer from its last message.
    if (read_buffer_.capacity() > kIdleReadBytes) read_buffer_.shrink_to_fit();
  }

  void log_websocket_end(const error_code& ec) const {
    if (ec == websocket::error::message_too_big) {
      spdlog::info("frame too large, connection closed remote={} limit_bytes={}", remote_,
                   context_.hub.limits().max_frame_bytes);
    } else if (ec == beast::error::timeout) {
      spdlog::debug("idle websocket closed remote={} idle_timeout_ms={}", remote_,
                    context_.options.websocket_idle_timeout.count());
    } else if (!is_quiet_end(ec)) {
      spdlog::debug("websocket ended remote={} error=\"{}\"", remote_, ec.message());
    }
  }

  // --- send queue: runs on the strand ---

  void enqueue(Bytes frame) {
    if (phase_ != Phase::kWebSocket || close_requested_ || broken_) return;
    const ServerOptions& options = context_.options;
    if (queue_.size() + 1 > options.max_queued_frames || queued_bytes_ + frame.size() > options.max_queued_bytes) {
      spdlog::warn("send queue full, closing slow connection remote={} queued_frames={} queued_bytes={}", remote_,
                   queue_.size(), queued_bytes_.load());
      queue_.clear();
      queued_bytes_ = 0;
      queued_frames_ = 0;
      if (writing_) {
        // A write is stuck behind a peer that does not read: a closing handshake would wait
        // behind it too, so cut the socket (the read loop then ends the session).
        broken_ = true;
        error_code ec;
        socket().close(ec);
      } else {
        request_close(websocket_close_code(Code::kRelayOverloaded), "send queue full");
      }
      return;
    }
    queued_bytes_ += frame.size();
    ++queued_frames_;
    queue_.push_back(std::move(frame));
    start_writer();
  }

  void request_close(std::uint16_t code, std::string_view reason) {
    if (phase_ == Phase::kHttp) {  // not a WebSocket yet: nothing to say, just drop the socket
      error_code ec;
      socket().close(ec);
      return;
    }
    if (phase_ != Phase::kWebSocket || close_requested_ || broken_) return;
    close_requested_ = true;
    // RFC 6455 limits a close reason to 123 bytes.
    close_reason_ = std::make_unique<websocket::close_reason>(
        static_cast<websocket::close_code>(code),
        boost::beast::string_view(reason.data(), std::min<std::size_t>(reason.size(), 123)));
    start_writer();
  }

  void start_writer() {
    if (writing_) return;
    writing_ = true;
    write_next();
  }

  // The one writer: Beast allows a single outstanding write (and close) per stream. A chain of
  // completion handlers (like the read loop) that ends with the close frame if one was asked for.
  void write_next() {
    if (!queue_.empty() && !broken_ && phase_ == Phase::kWebSocket) {
      Bytes frame = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= frame.size();
      --queued_frames_;
      // The handler owns the frame while it is written; moving a vector keeps its data in place.
      const auto buffer = asio::buffer(frame);
      ws_->async_write(buffer, [self = this->shared_from_this(), frame = std::move(frame)](error_code ec, std::size_t) {
        self->on_written(ec, frame.size());
      });
      return;
    }
    if (close_requested_ && !close_sent_ && !broken_ && phase_ == Phase::kWebSocket) {
      close_sent_ = true;
      // The read loop stays active and receives the peer's close reply (or times out).
      ws_->async_close(*close_reason_, [self = this->shared_from_this()](error_code) { self->writing_ = false; });
      return;
    }
    writing_ = false;
  }

  void on_written(error_code ec, std::size_t bytes) {
    if (ec) {
      broken_ = true;
      queue_.clear();
      queued_bytes_ = 0;
      queued_frames_ = 0;
      socket().close(ec);  // ends the read loop too
    } else if (context_.metrics != nullptr) {
      context_.metrics->bytes_out.fetch_add(bytes, std::memory_order_relaxed);
    }
    try {
      write_next();
    } catch (...) {  // allocation failures only: the connection cannot be served any more
      log_exception(std::current_exception());
      broken_ = true;
      socket().close(ec);
    }
  }

  NetContext& context_;
  const HttpPort listener_;
  const std::string remote_;
  // deflateSupported=false: permessage-deflate is never negotiated, so the stream carries none
  // of its state.
  const Strand strand_;
  // Plain only: the HTTP phase's stream; empty once the WebSocket has the socket.
  std::optional<HttpStream> http_;
  // Plain: engaged at the upgrade. TLS: from the start (it carries the TLS and HTTP layers).
  std::optional<websocket::stream<Stream, false>> ws_;
  beast::flat_buffer read_buffer_;  // the message being read; kIdleReadBytes while idle

  // Strand-only state.
  Phase phase_ = Phase::kHttp;
  bool hub_open_ = false;
  // A list, not a deque: an empty libstdc++ deque still holds its map and a 512-byte node, and
  // most sessions are idle with nothing queued (W4 in docs/benchmarks.md).
  std::list<Bytes> queue_;
  // Written on the strand only; atomic so that congested() may read them from any thread.
  std::atomic<std::size_t> queued_bytes_{0};
  std::atomic<std::size_t> queued_frames_{0};
  std::optional<ConnectionSlot> slot_;
  bool writing_ = false;
  bool close_requested_ = false;
  bool close_sent_ = false;
  bool broken_ = false;
  // Only once a close is asked for: a close_reason holds 123 bytes of reason inline.
  std::unique_ptr<websocket::close_reason> close_reason_;
};

template <typename Stream>
void start(StrandSocket socket, NetContext& context, HttpPort listener, std::optional<ConnectionSlot> slot) {
  auto session = std::make_shared<WsSession<Stream>>(std::move(socket), context, listener);
  session->hold_slot(std::move(slot));
  {
    std::lock_guard lock(context.mutex);
    context.connections.emplace(static_cast<const NetConnection*>(session.get()), session);
  }
  const Strand executor = session->executor();
  asio::co_spawn(executor, WsSession<Stream>::run(std::move(session)), log_exception);
}

}  // namespace

void start_connection(StrandSocket socket, NetContext& context, HttpPort listener) {
  if (context.metrics != nullptr) context.metrics->connections_total.fetch_add(1, std::memory_order_relaxed);
  // max_connections_per_ip: refused right after accept, before a byte is read or a buffer made.
  std::optional<ConnectionSlot> slot;
  if (listener == HttpPort::kMain) {
    error_code ec;
    const auto endpoint = socket.remote_endpoint(ec);
    slot = context.hub.admit_connection(ec ? std::string("?") : endpoint.address().to_string());
    if (!slot) {
      socket.close(ec);
      return;
    }
  }
  if (listener == HttpPort::kMain && context.tls != nullptr) {
    start<TlsStream>(std::move(socket), context, listener, std::move(slot));
  } else {
    start<PlainStream>(std::move(socket), context, listener, std::move(slot));
  }
}

void abort_connections(NetContext& context, bool http_only) {
  std::vector<std::shared_ptr<NetConnection>> sessions;
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
