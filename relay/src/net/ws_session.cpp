#include "net/ws_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <functional>
#include <list>
#include <span>
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
#include "websocket/ws_frame.h"
#include "websocket/ws_reader.h"

namespace blindsync::relay::net {
namespace {

using asio::awaitable;
using asio::use_awaitable;

// The HTTP phase of a plain connection: a stream with timeouts. An open plain WebSocket runs over
// the bare socket (moved out of it after the upgrade), which saves every idle session the
// stream's state and timers; from then on the sweep (check_idle) bounds the connection.
using HttpStream = beast::basic_stream<tcp, Strand>;
using PlainStream = StrandSocket;
using TlsStream = beast::ssl_stream<HttpStream>;

// Buffer an idle TLS WebSocket session holds while it waits for the next message. (An idle plain
// session holds none: it waits for its socket to become readable; see read_next.)
constexpr std::size_t kIdleReadBytes = 64;
// Once a frame's first bytes are in: reads of at least one TCP segment.
constexpr std::size_t kMinReadChunk = 4096;
// What one read of a ready plain socket takes in: whole messages, most of the time.
constexpr std::size_t kReadyReadBytes = 64 * 1024;

// The I/O thread's buffer for reads of ready plain sockets. Its bytes are handled within the read
// handler that filled it (handlers of one thread never interleave), so sessions can share it.
std::span<std::uint8_t> ready_read_buffer() {
  thread_local std::vector<std::uint8_t> buffer(kReadyReadBytes);
  return buffer;
}

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
         ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated;
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

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Stream is PlainStream or TlsStream: what the WebSocket frames travel on. A TLS stream also
// carries HTTP; a plain connection speaks HTTP over http_ and moves its socket into wire_ after
// the upgrade. The frames are read and written here with websocket/ws_frame.h, not through
// Beast's websocket::stream, whose fixed per-stream state (a 1.5 KiB read buffer, a timer and
// its pending wait) was half of what an idle session cost (W4 in docs/benchmarks.md).
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
        wire_(std::in_place, std::move(socket), *context.tls) {}

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

  void defer(std::function<void()> work) override {
    asio::post(executor(), [self = this->shared_from_this(), work = std::move(work)]() {
      if (self->phase_ == Phase::kWebSocket && !self->close_requested_ && !self->broken_) work();
    });
  }

  // Past half of either queue bound the hub drops NOTIFY payloads for this reader (limits).
  bool congested() const override {
    const ServerOptions& options = context_.options;
    return queued_frames_.load(std::memory_order_relaxed) * 2 > options.max_queued_frames ||
           queued_bytes_.load(std::memory_order_relaxed) * 2 > options.max_queued_bytes;
  }

  // The per-address connection slot (Hub::admit_connection), given back by finish().
  void hold_slot(std::optional<ConnectionSlot> slot) { slot_ = std::move(slot); }

  // This connection's strand. Safe from any thread: set once, at construction.
  const Strand& executor() const { return strand_; }

  void abort(bool http_only) override {
    asio::post(executor(), [self = this->shared_from_this(), http_only]() {
      if (http_only && self->phase_ != Phase::kHttp) return;
      error_code ec;
      self->socket().close(ec);
    });
  }

  // Called by the sweep from the tick thread: only an open WebSocket that has been silent for
  // half the idle timeout, or that waits for a closing handshake, gets a check on its strand.
  void check_idle(std::int64_t now_ms) override {
    const std::int64_t last_read = last_read_ms_.load(std::memory_order_relaxed);
    if (last_read < 0) return;
    const std::int64_t half_idle = context_.options.websocket_idle_timeout.count() / 2;
    if (now_ms - last_read < half_idle && !close_sent_.load(std::memory_order_relaxed)) return;
    asio::post(executor(), [self = this->shared_from_this()]() { self->on_idle_check(); });
  }

 private:
  enum class Phase { kHttp, kWebSocket, kDone };

  // The connection's socket, wherever it is now. Strand only.
  StrandSocket& socket() {
    if constexpr (kTls) {
      return beast::get_lowest_layer(*wire_).socket();
    } else {
      return wire_ ? *wire_ : http_->socket();
    }
  }

  // The stream HTTP is read from and written to; its lowest layer has the HTTP timeouts.
  auto& http_stream() {
    if constexpr (kTls) {
      return *wire_;
    } else {
      return *http_;
    }
  }
  HttpStream& http_timeouts() { return beast::get_lowest_layer(http_stream()); }

  awaitable<void> serve() {
    auto self = this->shared_from_this();
    bool opened = false;  // the WebSocket loops own the session from here and call finish()
    try {
      if (co_await tls_handshake()) opened = co_await serve_http();
    } catch (...) {
      log_exception(std::current_exception());
    }
    if (!opened) finish();
  }

  // The end of the connection, whichever phase it ended in. Runs on the strand, once.
  void finish() {
    if (phase_ == Phase::kDone) return;
    phase_ = Phase::kDone;
    last_read_ms_ = -1;
    queue_.clear();
    queued_bytes_ = 0;
    queued_frames_ = 0;
    in_ = {};
    reader_ = ws::FrameReader(0);  // drops a half-gathered message
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
        // Bytes after the request (a client that sent frames before the 101) are its first
        // frames: they go to the WebSocket's buffer.
        const auto early = buffer.data();
        if (early.size() != 0) in_.commit(asio::buffer_copy(in_.prepare(early.size()), early));
        co_return co_await open_websocket(answer);
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
    site.metrics = &context_.metrics;
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

  // Writes the 101; on success the session joins the hub and the read loop starts. True when
  // the read loop runs (and will call finish()).
  awaitable<bool> open_websocket(const HttpAnswer& answer) {
    {
      HttpUpgradeResponse response = build_upgrade_response(answer);
      http_timeouts().expires_after(context_.options.websocket_handshake_timeout);
      error_code ec;
      co_await http::async_write(http_stream(), response, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        spdlog::debug("websocket handshake failed remote={} error=\"{}\"", remote_, ec.message());
        co_return false;
      }
    }
    if constexpr (kTls) {
      // From here the sweep (check_idle) bounds the connection, not the HTTP timeouts.
      http_timeouts().expires_never();
    } else {
      // The WebSocket gets the bare socket; the HTTP stream (and its timers) goes.
      StrandSocket socket = http_->release_socket();
      http_.reset();
      wire_.emplace(std::move(socket));
      // read_some on a ready socket must never block the I/O thread (a readiness can be spurious).
      error_code ec;
      wire_->non_blocking(true, ec);
      if (ec) {
        spdlog::debug("websocket not opened remote={} error=\"{}\"", remote_, ec.message());
        co_return false;
      }
    }
    phase_ = Phase::kWebSocket;
    last_read_ms_ = steady_ms();
    hub_open_ = true;
    context_.hub.on_open(this->shared_from_this());
    if (in_.size() == 0) {
      read_next();
    } else {
      on_read(error_code{});  // frames that came with the upgrade request
    }
    co_return true;
  }

  // --- read loop: completion handlers, not a coroutine, so that an idle session holds only the
  // pending operation (a small socket operation) and no buffer (plain) or kIdleReadBytes (TLS).
  // The handlers have no associated executor: they run on the stream's, which is this
  // connection's strand.

  void read_next() {
    reading_ = true;
    if constexpr (!kTls) {
      // Between frames a plain session waits for readability, then reads what came into the I/O
      // thread's buffer: a message is then one read, not a small read, the rest, and a read that
      // finds nothing (three system calls per message: W1 in docs/benchmarks-log.md, 2026-11-22
      // 21:30).
      if (frame_missing_ == 0) {
        wire_->async_wait(tcp::socket::wait_read, [self = this->shared_from_this()](error_code ec) {
          self->reading_ = false;
          self->on_readable(ec);
        });
        return;
      }
    }
    const auto buffers = in_.prepare(next_read_size());
    wire_->async_read_some(buffers, [self = this->shared_from_this()](error_code ec, std::size_t bytes) {
      self->reading_ = false;
      self->in_.commit(bytes);
      self->on_read(ec);
    });
  }

  // Between frames (TLS only; a plain session waits for readability instead): a few bytes, enough
  // for a small message whole. This read stays pending while the session idles, with its buffer:
  // never more than kIdleReadBytes then (W4 in docs/benchmarks.md). In a frame (both): what it
  // still lacks, in reads that grow with what has arrived (a read may take the next frames' bytes
  // too), so that a client announcing a large frame and sending little of it gets little memory.
  std::size_t next_read_size() const {
    if (frame_missing_ == 0) return kIdleReadBytes;
    return std::min(frame_missing_, std::max(kMinReadChunk, in_.size()));
  }

  void on_read(error_code ec) {
    try {
      if (ec) {
        log_read_end(ec);
        return end_now();
      }
      last_read_ms_.store(steady_ms(), std::memory_order_relaxed);
      if (!read_frames()) return try_finish();  // the writer ends the session
      read_next_after_frames();
    } catch (...) {  // allocation failures only; the session ends
      log_exception(std::current_exception());
      end_now();
    }
  }

  // Plain only: the socket is readable (or failed). The frames that one read brings whole are
  // handled in the I/O thread's buffer; only a frame still arriving is copied into in_.
  void on_readable(error_code ec) {
    try {
      if (!ec) {
        const std::span<std::uint8_t> buffer = ready_read_buffer();
        const std::size_t n = wire_->read_some(asio::buffer(buffer.data(), buffer.size()), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) return read_next();  // nothing after all
        if (!ec) return on_bytes(buffer.first(n));
      }
      log_read_end(ec);
      end_now();
    } catch (...) {  // allocation failures only; the session ends
      log_exception(std::current_exception());
      end_now();
    }
  }

  void on_bytes(std::span<std::uint8_t> bytes) {
    last_read_ms_.store(steady_ms(), std::memory_order_relaxed);
    bool go_on = true;
    if (in_.size() == 0) {
      std::size_t consumed = 0;
      go_on = handle_frames(bytes, consumed);
      if (go_on) keep(bytes.subspan(consumed));
    } else {
      keep(bytes);
      go_on = read_frames();
    }
    if (!go_on) return try_finish();  // the writer ends the session
    read_next_after_frames();
  }

  // Appends bytes that are not a whole frame yet to in_.
  void keep(std::span<const std::uint8_t> bytes) {
    if (bytes.empty()) return;
    in_.commit(asio::buffer_copy(in_.prepare(bytes.size()), asio::buffer(bytes.data(), bytes.size())));
  }

  void read_next_after_frames() {
    // An idle session keeps no buffer from its last message.
    constexpr std::size_t kIdleCapacity = kTls ? kIdleReadBytes : 0;
    if (in_.size() == 0 && in_.capacity() > kIdleCapacity) in_.shrink_to_fit();
    read_next();
  }

  // Handles every whole frame in in_. False when reading stops (see handle_frames).
  bool read_frames() {
    const auto data = in_.data();
    std::size_t consumed = 0;
    const bool go_on =
        handle_frames(std::span<std::uint8_t>(static_cast<std::uint8_t*>(data.data()), data.size()), consumed);
    in_.consume(consumed);
    return go_on;
  }

  // Handles every whole frame at the front of `data` (websocket/ws_reader.h, which unmasks them in
  // place); `consumed` is what they took. False when reading stops: the peer closed, or broke the
  // protocol and is being closed.
  bool handle_frames(std::span<std::uint8_t> data, std::size_t& consumed) {
    for (;;) {
      const ws::ReadEvent event = reader_.next(data.subspan(consumed));
      frame_missing_ = event.missing;
      switch (event.kind) {
        case ws::ReadEvent::Kind::kNeedMore:
          return true;
        case ws::ReadEvent::Kind::kFault:
          if (event.close_code == ws::kCloseMessageTooBig) {
            spdlog::info("frame too large, connection closed remote={} limit_bytes={}", remote_,
                         context_.hub.limits().max_frame_bytes);
          }
          return fail(event.close_code, event.reason);
        case ws::ReadEvent::Kind::kClose: {
          const bool go_on = on_peer_close(event.payload);
          consumed += event.consumed;
          return go_on;
        }
        case ws::ReadEvent::Kind::kPing:
          // Only the newest ping needs its pong (RFC 6455 5.5.3); a flood of them queues one.
          pong_.emplace(event.payload.begin(), event.payload.end());
          start_writer();
          break;
        case ws::ReadEvent::Kind::kMessage:
          // Data once our close is sent: the peer has not seen it yet; nothing more is served.
          if (!close_requested_) deliver_message(event.payload);
          break;
        case ws::ReadEvent::Kind::kPong:      // its arrival already counted as activity
        case ws::ReadEvent::Kind::kFragment:  // gathered by the reader
          break;
      }
      consumed += event.consumed;
    }
  }

  void deliver_message(std::span<const std::uint8_t> message) {
    context_.metrics.bytes_in.fetch_add(message.size(), std::memory_order_relaxed);
    context_.hub.on_frame(this->shared_from_this(), ByteView(message.data(), message.size()));
  }

  // The peer's close frame: the answer to ours (the connection ends), or its own, which gets
  // its code echoed (RFC 6455 5.5.1) once what is being written is out. Reading stops.
  bool on_peer_close(std::span<const std::uint8_t> payload) {
    stop_reading_ = true;
    if (close_sent_) {
      end_connection();
      return false;
    }
    const ws::CloseParse close = ws::parse_close_payload(payload);
    drop_queue();
    if (!close.valid) {
      queue_close(ws::kCloseProtocolError, "invalid close frame");
    } else if (close.code == ws::kCloseNoStatus) {
      queue_close_payload({});
    } else {
      queue_close(close.code, "");
    }
    return false;
  }

  // A client that broke the protocol gets a close frame with the reason; the connection ends
  // once it is written, without waiting for an answer.
  bool fail(std::uint16_t code, std::string_view reason) {
    spdlog::debug("websocket protocol error remote={} close_code={} reason=\"{}\"", remote_, code, reason);
    stop_reading_ = true;
    drop_queue();
    if (close_sent_) {  // nothing more may be written: just end
      end_connection();
      return false;
    }
    close_requested_ = false;  // this close replaces one that was only asked for
    queue_close(code, reason);
    return false;
  }

  void log_read_end(const error_code& ec) const {
    if (!is_quiet_end(ec)) spdlog::debug("websocket ended remote={} error=\"{}\"", remote_, ec.message());
  }

  // On the strand, after check_idle: a ping at half the idle timeout, the connection cut at the
  // full timeout or when the closing handshake takes longer than the handshake timeout. A peer
  // that vanished without a FIN (laptop lid closed) is noticed this way.
  void on_idle_check() {
    if (phase_ != Phase::kWebSocket) return;
    const std::int64_t now = steady_ms();
    const std::int64_t idle_timeout = context_.options.websocket_idle_timeout.count();
    const std::int64_t last_read = last_read_ms_.load(std::memory_order_relaxed);
    const std::int64_t idle = now - last_read;
    const bool pinged = pinged_for_read_ms_ == last_read;
    // Silent past the timeout, and a ping has gone unanswered for half of it. A check that comes
    // late (a stalled process, a busy loop) must not cut a peer that was never pinged: it pings.
    const bool silent_too_long = idle >= idle_timeout && pinged && now - ping_queued_ms_ >= idle_timeout / 2;
    const bool close_overdue =
        close_sent_.load(std::memory_order_relaxed) && now - close_sent_ms_ >= context_.options.websocket_handshake_timeout.count();
    if (silent_too_long || close_overdue) {
      spdlog::debug("idle websocket closed remote={} idle_timeout_ms={}", remote_, idle_timeout);
      return cut_socket();
    }
    if (idle >= idle_timeout / 2 && !pinged) {
      pinged_for_read_ms_ = last_read;
      ping_queued_ms_ = now;
      ping_due_ = true;
      start_writer();
    }
  }

  // --- send queue and writer: run on the strand ---

  void enqueue(Bytes frame) {
    if (phase_ != Phase::kWebSocket || close_requested_ || broken_) return;
    const ServerOptions& options = context_.options;
    if (queue_.size() + 1 > options.max_queued_frames || queued_bytes_ + frame.size() > options.max_queued_bytes) {
      spdlog::warn("send queue full, closing slow connection remote={} queued_frames={} queued_bytes={}", remote_,
                   queue_.size(), queued_bytes_.load());
      drop_queue();
      if (writing_) {
        // A write is stuck behind a peer that does not read: a closing handshake would wait
        // behind it too, so cut the socket (the read loop then ends the session).
        cut_socket();
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

  void drop_queue() {
    queue_.clear();
    queued_bytes_ = 0;
    queued_frames_ = 0;
  }

  // The hub's (or the relay's own) close: written after what is queued; the read loop then
  // waits for the peer's answer, bounded by the handshake timeout.
  void request_close(std::uint16_t code, std::string_view reason) {
    if (phase_ == Phase::kHttp) {  // not a WebSocket yet: nothing to say, just drop the socket
      error_code ec;
      socket().close(ec);
      return;
    }
    if (phase_ != Phase::kWebSocket || close_requested_ || broken_) return;
    queue_close(code, reason);
  }

  void queue_close(std::uint16_t code, std::string_view reason) { queue_close_payload(ws::make_close_payload(code, reason)); }

  void queue_close_payload(Bytes payload) {
    if (close_requested_ || broken_) return;
    close_requested_ = true;
    close_payload_ = std::make_unique<Bytes>(std::move(payload));
    start_writer();
  }

  void start_writer() {
    if (writing_ || broken_ || phase_ != Phase::kWebSocket) return;
    write_next();
  }

  // The one writer: one write at a time per stream. Pongs first, then a keep-alive ping, then
  // queued messages, then the close frame; nothing after the close frame (RFC 6455 5.5.1).
  void write_next() {
    if (close_sent_ || broken_ || phase_ != Phase::kWebSocket) return;
    if (pong_) {
      Bytes payload = std::move(*pong_);
      pong_.reset();
      return write_frame(ws::Opcode::kPong, std::move(payload));
    }
    if (ping_due_) {
      ping_due_ = false;
      return write_frame(ws::Opcode::kPing, Bytes{});
    }
    if (!queue_.empty()) {
      Bytes frame = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= frame.size();
      --queued_frames_;
      return write_frame(ws::Opcode::kBinary, std::move(frame));
    }
    if (close_requested_) {
      close_sent_ms_ = steady_ms();
      close_sent_.store(true, std::memory_order_relaxed);
      Bytes payload = std::move(*close_payload_);
      close_payload_.reset();
      write_frame(ws::Opcode::kClose, std::move(payload));
    }
  }

  // Header and payload go out in one gather write; the handler owns the payload meanwhile
  // (moving a vector keeps its data in place).
  void write_frame(ws::Opcode opcode, Bytes payload) {
    writing_ = true;
    const std::size_t header_size = ws::write_server_header(opcode, payload.size(), out_header_);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(out_header_.data(), header_size),
                                                    asio::buffer(payload)};
    // bytes_out counts message payloads, as bytes_in does: not frame headers or control frames.
    const std::size_t counted = opcode == ws::Opcode::kBinary ? payload.size() : 0;
    asio::async_write(*wire_, buffers,
                      [self = this->shared_from_this(), payload = std::move(payload), counted](error_code ec, std::size_t) {
                        self->on_written(ec, counted);
                      });
  }

  void on_written(error_code ec, std::size_t payload_bytes) {
    writing_ = false;
    if (ec) {
      broken_ = true;
      drop_queue();
      return end_now();
    }
    context_.metrics.bytes_out.fetch_add(payload_bytes, std::memory_order_relaxed);
    if (broken_) return end_now();  // the socket was cut (the session is ending): nothing more goes out
    // Our close frame is out and reading has stopped (the peer closed first, or broke the
    // protocol): nothing more will come or go.
    if (close_sent_ && stop_reading_) return end_connection();
    try {
      write_next();
    } catch (...) {  // allocation failures only: the connection cannot be served any more
      log_exception(std::current_exception());
      broken_ = true;
      end_now();
    }
  }

  // The closing handshake is complete: TLS says close_notify (bounded by the sweep, as the
  // handshake is), then the TCP connection ends; the server closes first (RFC 6455 7.1.1).
  void end_connection() {
    if constexpr (kTls) {
      if (!broken_ && !shutting_down_) {
        shutting_down_ = true;
        writing_ = true;
        wire_->async_shutdown([self = this->shared_from_this()](error_code) {
          self->writing_ = false;
          self->end_now();
        });
        return;
      }
    }
    end_now();
  }

  // Cuts the socket; a pending read or write then completes with an error and ends the session.
  void cut_socket() {
    broken_ = true;
    error_code ec;
    socket().close(ec);
  }

  void end_now() {
    ending_ = true;
    cut_socket();
    try_finish();
  }

  // finish() runs once the session is ending and nothing of ours is pending on the socket.
  void try_finish() {
    if (ending_ && !reading_ && !writing_) finish();
  }

  NetContext& context_;
  const HttpPort listener_;
  const std::string remote_;
  const Strand strand_;
  // Plain only: the HTTP phase's stream; empty once the WebSocket has the socket.
  std::optional<HttpStream> http_;
  // Plain: the bare socket, from the upgrade on. TLS: from the start (it carries HTTP too).
  std::optional<Stream> wire_;
  beast::flat_buffer in_;  // bytes read and not yet handled; none (plain) or kIdleReadBytes (TLS) while idle
  ws::FrameReader reader_{context_.hub.limits().max_frame_bytes};
  std::array<std::uint8_t, ws::kMaxServerHeaderBytes> out_header_{};  // the frame being written

  // Read by check_idle from the tick thread: -1 until the WebSocket opens and after it ends.
  std::atomic<std::int64_t> last_read_ms_{-1};
  // Our close frame is sent (its answer is awaited); written on the strand, read by check_idle.
  std::atomic<bool> close_sent_{false};

  // Strand-only state.
  Phase phase_ = Phase::kHttp;
  bool hub_open_ = false;
  std::size_t frame_missing_ = 0;  // payload bytes of the frame at the front of in_ not read yet
  std::int64_t pinged_for_read_ms_ = -1;  // last_read_ms_ when the last ping was queued
  std::int64_t ping_queued_ms_ = 0;
  std::int64_t close_sent_ms_ = 0;
  // A list, not a deque: an empty libstdc++ deque still holds its map and a 512-byte node, and
  // most sessions are idle with nothing queued (W4 in docs/benchmarks.md).
  std::list<Bytes> queue_;
  // Written on the strand only; atomic so that congested() may read them from any thread.
  std::atomic<std::size_t> queued_bytes_{0};
  std::atomic<std::size_t> queued_frames_{0};
  std::optional<ConnectionSlot> slot_;
  std::optional<Bytes> pong_;              // the payload of the newest ping not answered yet
  std::unique_ptr<Bytes> close_payload_;  // only once a close is asked for
  bool ping_due_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool stop_reading_ = false;
  bool close_requested_ = false;
  bool shutting_down_ = false;
  bool ending_ = false;
  bool broken_ = false;
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
  context.metrics.connections_total.fetch_add(1, std::memory_order_relaxed);
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

void sweep_idle_connections(NetContext& context) {
  std::vector<std::shared_ptr<NetConnection>> live;
  {
    std::lock_guard lock(context.mutex);
    live.reserve(context.connections.size());
    for (const auto& [raw, weak] : context.connections) {
      if (auto connection = weak.lock()) live.push_back(std::move(connection));
    }
  }
  const std::int64_t now = steady_ms();
  for (const auto& connection : live) connection->check_idle(now);
}

std::size_t live_connections(NetContext& context) {
  std::lock_guard lock(context.mutex);
  return context.connections.size();
}

}  // namespace blindsync::relay::net
