// WebSocket client Transport over Boost.Beast.
//
// Each WsTransport owns an io_context running on its own thread; every Beast call happens on
// that thread. The blocking public calls (send, receive, close) hand work to it with asio::post
// and wait on a condition variable with a deadline, so a timeout never cancels a Beast operation
// half-way (which would leave the WebSocket stream unusable).
//
// Reading: one async_read is kept in flight while the inbox has room; receive() pops from the
// inbox. The inbox is bounded (count and bytes), so a slow consumer pauses reading (TCP back
// pressure) instead of growing memory.
// Writing: one write in flight (Beast forbids concurrent writes), queued behind it in order; the
// close handshake is queued like a write so it never overlaps one.

#include "blindsync/transport_ws/ws_transport.h"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

#include "asio.h"

namespace blindsync {
namespace {

using namespace ws_detail;  // NOLINT: aliases from our own wrapper header

constexpr std::size_t kMaxInboxMessages = 256;
constexpr std::size_t kMaxInboxBytes = 32 * 1024 * 1024;
// A write that does not complete in this time means the peer stopped reading: give up on it.
constexpr std::chrono::seconds kSendTimeout{30};
// Keep-alive: Beast pings after half of this without traffic and drops the connection after it.
constexpr std::chrono::seconds kIdleTimeout{60};
// How long the destructor waits for the close handshake before dropping the connection.
constexpr std::chrono::seconds kCloseWait{2};

struct WsUrl {
  std::string host;  // without brackets for IPv6 literals
  std::uint16_t port = 80;
  std::string path = "/v1/sync";
  std::string host_header;  // "host[:port]" as sent in the HTTP upgrade
};

Result<WsUrl> parse_ws_url(const std::string& url) {
  constexpr std::string_view kScheme = "ws://";
  std::string_view rest(url);
  if (rest.size() >= 6 && rest.substr(0, 6) == "wss://") {
    return Status(Code::kInvalidArgument, "wss:// is not supported yet; use ws:// (" + url + ")");
  }
  if (rest.substr(0, kScheme.size()) != kScheme) {
    return Status(Code::kInvalidArgument, "relay URL must start with ws:// (got '" + url + "')");
  }
  rest.remove_prefix(kScheme.size());
  WsUrl out;
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    out.path = std::string(rest.substr(slash));
  }
  if (authority.find('@') != std::string_view::npos) {
    return Status(Code::kInvalidArgument, "relay URL must not carry user info: " + url);
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return Status(Code::kInvalidArgument, "unterminated IPv6 host in " + url);
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status(Code::kInvalidArgument, "bad text after IPv6 host in " + url);
      port_text = after.substr(1);
      if (port_text.empty()) return Status(Code::kInvalidArgument, "empty port in " + url);
    }
  } else {
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      authority = authority.substr(0, colon);
      if (port_text.empty()) return Status(Code::kInvalidArgument, "empty port in " + url);
    }
    out.host = std::string(authority);
  }
  if (out.host.empty()) return Status(Code::kInvalidArgument, "relay URL has no host: " + url);
  for (char c : out.host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '/' || c == '?' || c == '#') {
      return Status(Code::kInvalidArgument, "invalid character in relay host: " + url);
    }
  }
  if (!port_text.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 || value > 65535) {
      return Status(Code::kInvalidArgument, "invalid port in relay URL: " + url);
    }
    out.port = static_cast<std::uint16_t>(value);
  }
  for (char c : out.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Status(Code::kInvalidArgument, "invalid character in relay URL path: " + url);
    }
  }
  const bool v6 = out.host.find(':') != std::string::npos;
  out.host_header = v6 ? "[" + out.host + "]" : out.host;
  if (out.port != 80) out.host_header += ":" + std::to_string(out.port);
  return out;
}

class WsTransport final : public Transport {
 public:
  WsTransport(WsUrl url, const TransportOptions& options)
      : url_(std::move(url)), options_(options), work_(asio::make_work_guard(ioc_)), resolver_(ioc_), ws_(ioc_) {}

  WsTransport(const WsTransport&) = delete;
  WsTransport& operator=(const WsTransport&) = delete;

  ~WsTransport() override {
    close();
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kCloseWait, [&] { return io_done_; });
    }
    // Handlers still queued only hold `this`; stopping first means none of them runs again, and the
    // io_context (declared first, destroyed last) destroys them after the stream is gone.
    work_.reset();
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // Blocks until the WebSocket upgrade completes or fails, at most connect_timeout.
  Status connect() {
    thread_ = std::thread([this] { run_io(); });
    asio::post(ioc_, [this] { start_resolve(); });
    const auto deadline = std::chrono::steady_clock::now() + options_.connect_timeout;
    std::unique_lock lock(mu_);
    if (!cv_.wait_until(lock, deadline, [&] { return connect_result_.has_value(); })) {
      return Status(Code::kTimeout, "connecting to " + url_.host_header + " timed out after " +
                                        std::to_string(options_.connect_timeout.count()) + " ms");
    }
    return *connect_result_;
  }

  Status send(ByteView frame) override {
    auto op = std::make_shared<WriteOp>();
    op->data.assign(frame.begin(), frame.end());
    {
      std::lock_guard lock(mu_);
      if (closed_) return Status(Code::kConnectionClosed, close_message_);
    }
    asio::post(ioc_, [this, op] { enqueue_write(op); });
    std::unique_lock lock(mu_);
    const bool finished = cv_.wait_for(lock, kSendTimeout, [&] { return op->done || closed_; });
    if (!finished) {
      lock.unlock();
      abort("sending timed out");
      return Status(Code::kTimeout, "sending a message timed out (the relay stopped reading)");
    }
    if (op->done && !op->error) return Status::ok();
    if (closed_) return Status(Code::kConnectionClosed, close_message_);
    return Status(Code::kIoError, "send failed: " + op->error.message());
  }

  Result<Bytes> receive(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !inbox_.empty() || closed_; });
    if (!inbox_.empty()) {
      Bytes message = std::move(inbox_.front());
      inbox_.pop_front();
      inbox_bytes_ -= message.size();
      lock.unlock();
      asio::post(ioc_, [this] { start_read(); });  // reading may have paused on a full inbox
      return message;
    }
    if (closed_) return Status(Code::kConnectionClosed, close_message_);
    return Status(Code::kTimeout, "no message within " + std::to_string(timeout.count()) + " ms");
  }

  void close() override {
    {
      std::lock_guard lock(mu_);
      if (close_requested_) return;
      close_requested_ = true;
      mark_closed_locked("connection closed locally");
    }
    cv_.notify_all();
    asio::post(ioc_, [this] { start_close(); });
  }

 private:
  struct WriteOp {
    Bytes data;
    bool is_close = false;
    bool done = false;  // guarded by mu_
    error_code error;   // guarded by mu_
  };

  void run_io() {
    try {
      ioc_.run();
    } catch (const std::exception& e) {
      // Handlers use error_code overloads; this is only reached on allocation failure and the like.
      fail(std::string("transport thread failed: ") + e.what());
    }
  }

  // ---- io thread only below (plus the mu_-guarded fields they touch) ----

  void start_resolve() {
    resolver_.async_resolve(url_.host, std::to_string(url_.port),
                            [this](const error_code& ec, const tcp::resolver::results_type& results) {
                              if (ec) {
                                finish_connect(Status(Code::kIoError, "cannot resolve " + url_.host + ": " + ec.message()));
                                return;
                              }
                              start_connect(results);
                            });
  }

  void start_connect(const tcp::resolver::results_type& results) {
    if (aborted_) return finish_connect(Status(Code::kConnectionClosed, "connection aborted"));
    beast::get_lowest_layer(ws_).expires_after(options_.connect_timeout);
    beast::get_lowest_layer(ws_).async_connect(results, [this](const error_code& ec, const tcp::endpoint&) {
      if (ec) {
        finish_connect(Status(ec == beast::error::timeout ? Code::kTimeout : Code::kIoError,
                              "cannot connect to " + url_.host_header + ": " + ec.message()));
        return;
      }
      start_handshake();
    });
  }

  void start_handshake() {
    if (aborted_) return finish_connect(Status(Code::kConnectionClosed, "connection aborted"));
    // The WebSocket stream runs its own timers from here on (Beast's documented pattern).
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = options_.connect_timeout;
    timeouts.idle_timeout = kIdleTimeout;
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& request) {
      request.set(boost::beast::http::field::user_agent, "blindsync-client/0.1");
    }));
    ws_.read_message_max(options_.max_message_bytes);
    ws_.auto_fragment(false);
    ws_.binary(true);
    ws_.async_handshake(url_.host_header, url_.path, [this](const error_code& ec) {
      if (ec) {
        finish_connect(Status(ec == beast::error::timeout ? Code::kTimeout : Code::kIoError,
                              "WebSocket upgrade at ws://" + url_.host_header + url_.path + " failed: " + ec.message()));
        return;
      }
      connected_ = true;
      finish_connect(Status::ok());
      start_read();
    });
  }

  void finish_connect(Status status) {
    const bool failed = !status.is_ok();
    {
      std::lock_guard lock(mu_);
      if (failed) {
        mark_closed_locked(status.message());
        io_done_ = true;
      }
      connect_result_ = std::move(status);
    }
    cv_.notify_all();
    if (failed) close_socket();
    // A close() that arrived while connecting is carried out now that the stream is settled.
    if (!failed && close_pending_) start_close();
  }

  void start_read() {
    if (reading_ || !connected_ || read_finished_) return;
    {
      std::lock_guard lock(mu_);
      if (inbox_.size() >= kMaxInboxMessages || inbox_bytes_ >= kMaxInboxBytes) return;
    }
    reading_ = true;
    ws_.async_read(read_buffer_, [this](const error_code& ec, std::size_t) { on_read(ec); });
  }

  void on_read(const error_code& ec) {
    reading_ = false;
    if (ec) {
      read_finished_ = true;
      {
        std::lock_guard lock(mu_);
        mark_closed_locked(describe_read_error(ec));
      }
      cv_.notify_all();
      if (!close_in_progress_) {
        close_socket();
        finish_io();
      }
      return;
    }
    if (!ws_.got_binary()) {
      // The protocol is binary-only; a text message means the peer is not a blindsync relay.
      read_buffer_.clear();
      fail("relay sent a text message (protocol v1 is binary only)");
      return;
    }
    const auto data = read_buffer_.cdata();
    const auto* begin = static_cast<const std::uint8_t*>(data.data());
    Bytes message(begin, begin + data.size());
    read_buffer_.clear();
    {
      std::lock_guard lock(mu_);
      inbox_bytes_ += message.size();
      inbox_.push_back(std::move(message));
    }
    cv_.notify_all();
    start_read();
  }

  std::string describe_read_error(const error_code& ec) const {
    if (ec == websocket::error::closed) {
      const auto& reason = ws_.reason();
      std::string text = "relay closed the connection (code " + std::to_string(reason.code);
      if (!reason.reason.empty()) text += ": " + std::string(reason.reason.data(), reason.reason.size());
      return text + ")";
    }
    if (ec == beast::error::timeout) return "connection timed out (relay did not answer keep-alive pings)";
    if (ec == websocket::error::message_too_big) {
      return "relay sent a message over the " + std::to_string(options_.max_message_bytes) + "-byte limit";
    }
    return "connection lost: " + ec.message();
  }

  void enqueue_write(const std::shared_ptr<WriteOp>& op) {
    if (!connected_ || write_failed_ || (close_in_progress_ && !op->is_close)) {
      complete_write(op, asio::error::not_connected);
      return;
    }
    writes_.push_back(op);
    if (!writing_) write_next();
  }

  void write_next() {
    if (writes_.empty()) {
      writing_ = false;
      return;
    }
    writing_ = true;
    auto op = writes_.front();
    if (op->is_close) {
      ws_.async_close(websocket::close_code::normal, [this, op](const error_code& ec) {
        writes_.pop_front();
        writing_ = false;
        complete_write(op, ec);
        // Beast has torn the TCP connection down after the close handshake (or its failure).
        close_socket();
        finish_io();
      });
      return;
    }
    ws_.async_write(asio::buffer(op->data), [this, op](const error_code& ec, std::size_t) {
      writes_.pop_front();
      complete_write(op, ec);
      if (ec) {
        write_failed_ = true;
        fail_pending_writes(ec);
        fail("connection lost while sending: " + ec.message());
        return;
      }
      write_next();
    });
  }

  void complete_write(const std::shared_ptr<WriteOp>& op, const error_code& ec) {
    {
      std::lock_guard lock(mu_);
      op->done = true;
      op->error = ec;
    }
    cv_.notify_all();
  }

  void fail_pending_writes(const error_code& ec) {
    while (!writes_.empty()) {
      auto op = writes_.front();
      writes_.pop_front();
      complete_write(op, ec);
    }
    writing_ = false;
  }

  void start_close() {
    if (close_in_progress_) return;
    if (!connect_result_known()) {
      // Still connecting: stop it; finish_connect() runs with an error.
      close_pending_ = true;
      aborted_ = true;
      resolver_.cancel();
      close_socket();
      return;
    }
    if (!connected_ || read_finished_ || write_failed_) {
      close_socket();
      finish_io();
      return;
    }
    close_in_progress_ = true;
    auto op = std::make_shared<WriteOp>();
    op->is_close = true;
    writes_.push_back(op);
    if (!writing_) write_next();
  }

  bool connect_result_known() {
    std::lock_guard lock(mu_);
    return connect_result_.has_value();
  }

  // Drops the connection without a close handshake (timeouts, protocol violations).
  void fail(const std::string& why) {
    {
      std::lock_guard lock(mu_);
      mark_closed_locked(why);
    }
    cv_.notify_all();
    close_socket();
    finish_io();
  }

  void abort(const std::string& why) {
    {
      std::lock_guard lock(mu_);
      mark_closed_locked(why);
    }
    cv_.notify_all();
    asio::post(ioc_, [this, why] { fail(why); });
  }

  void close_socket() {
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  void finish_io() {
    {
      std::lock_guard lock(mu_);
      io_done_ = true;
    }
    cv_.notify_all();
  }

  void mark_closed_locked(const std::string& why) {
    if (closed_) return;
    closed_ = true;
    close_message_ = why;
  }

  const WsUrl url_;
  const TransportOptions options_;

  // Declared first so that it is destroyed last (after everything bound to it).
  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  tcp::resolver resolver_;
  websocket::stream<beast::tcp_stream> ws_;
  std::thread thread_;

  // io-thread state.
  beast::flat_buffer read_buffer_;
  std::deque<std::shared_ptr<WriteOp>> writes_;
  bool connected_ = false;
  bool reading_ = false;
  bool read_finished_ = false;
  bool writing_ = false;
  bool write_failed_ = false;
  bool close_in_progress_ = false;
  bool close_pending_ = false;
  bool aborted_ = false;

  // Shared between the io thread and callers.
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Status> connect_result_;
  std::deque<Bytes> inbox_;
  std::size_t inbox_bytes_ = 0;
  bool closed_ = false;  // no further messages will arrive; close_message_ says why
  std::string close_message_;
  bool close_requested_ = false;
  bool io_done_ = false;  // the connection is fully torn down
};

}  // namespace

Result<std::unique_ptr<Transport>> connect_websocket(const std::string& url, const TransportOptions& options) {
  try {
    auto parsed = parse_ws_url(url);
    if (!parsed) return parsed.error();
    if (options.max_message_bytes == 0) return Status(Code::kInvalidArgument, "max_message_bytes must be > 0");
    auto transport = std::make_unique<WsTransport>(std::move(*parsed), options);
    if (Status status = transport->connect(); !status) return status;
    return std::unique_ptr<Transport>(std::move(transport));
  } catch (const std::exception& e) {
    return Status(Code::kIoError, std::string("cannot open WebSocket transport: ") + e.what());
  }
}

}  // namespace blindsync
