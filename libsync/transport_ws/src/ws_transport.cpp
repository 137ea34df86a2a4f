// WebSocket client Transport over Boost.Beast: ws:// over TCP, wss:// over TLS 1.2+ (OpenSSL).
//
// URLs: ws://host[:port]/path (port 80 by default), wss://host[:port]/path (443 by default).
// wss:// checks the relay's certificate against the system CAs and the host name (SNI is sent for
// host names), unless TransportOptions::pinned_cert_sha256 is set: then exactly the leaf
// certificate with that SHA-256 (over its DER encoding) is accepted, whoever issued it, so a relay
// with a self-signed certificate can be trusted by pinning it. A pin with a ws:// URL is refused.
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

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <type_traits>

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

using PlainLayer = beast::tcp_stream;
using TlsLayer = beast::ssl_stream<beast::tcp_stream>;
using CertDigest = std::array<std::uint8_t, 32>;  // SHA-256

struct WsUrl {
  bool tls = false;  // wss://
  std::string host;  // without brackets for IPv6 literals
  std::uint16_t port = 80;
  std::string path = "/v1/sync";
  std::string host_header;  // "host[:port]" as sent in the HTTP upgrade
  std::string scheme() const { return tls ? "wss://" : "ws://"; }
};

Result<WsUrl> parse_ws_url(const std::string& url) {
  std::string_view rest(url);
  WsUrl out;
  if (rest.substr(0, 6) == "wss://") {
    out.tls = true;
    out.port = 443;
    rest.remove_prefix(6);
  } else if (rest.substr(0, 5) == "ws://") {
    rest.remove_prefix(5);
  } else {
    return Status(Code::kInvalidArgument, "relay URL must start with ws:// or wss:// (got '" + url + "')");
  }
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
  if (out.port != (out.tls ? 443 : 80)) out.host_header += ":" + std::to_string(out.port);
  return out;
}

// "AB:CD:..." or "abcd..." (64 hex digits) -> 32 bytes.
Result<CertDigest> parse_pin(std::string_view text) {
  std::string hex;
  for (char c : text) {
    if (c == ':' || std::isspace(static_cast<unsigned char>(c))) continue;
    hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  auto bytes = from_hex(hex);
  if (!bytes || bytes->size() != 32) {
    return Status(Code::kInvalidArgument,
                  "pinned_cert_sha256 must be a SHA-256 fingerprint: 64 hex digits, colons allowed");
  }
  CertDigest digest{};
  std::copy(bytes->begin(), bytes->end(), digest.begin());
  return digest;
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// NextLayer is PlainLayer (ws://) or TlsLayer (wss://).
template <typename NextLayer>
class WsTransport final : public Transport {
  static constexpr bool kTls = std::is_same_v<NextLayer, TlsLayer>;

 public:
  WsTransport(WsUrl url, const TransportOptions& options, std::optional<CertDigest> pin)
    requires(!kTls)
      : url_(std::move(url)),
        options_(options),
        pin_(pin),
        work_(asio::make_work_guard(ioc_)),
        resolver_(ioc_),
        tls_context_(ssl::context::tls_client),
        ws_(ioc_) {}

  WsTransport(WsUrl url, const TransportOptions& options, std::optional<CertDigest> pin)
    requires(kTls)
      : url_(std::move(url)),
        options_(options),
        pin_(pin),
        work_(asio::make_work_guard(ioc_)),
        resolver_(ioc_),
        tls_context_(make_tls_context()),
        ws_(ioc_, tls_context_) {}

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
      if constexpr (kTls) {
        start_tls_handshake();
      } else {
        start_handshake();
      }
    });
  }

  // TLS 1.2+, certificates checked as the URL and options ask (system CAs + host name, or the pin).
  ssl::context make_tls_context() {
    ssl::context context(ssl::context::tls_client);
    error_code ec;
    context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                            ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                        ec);
    context.set_verify_mode(ssl::verify_peer, ec);
    if (pin_) {
      // Exactly the pinned leaf certificate: the chain above it is not consulted (a self-signed
      // relay has none), the host name neither (the pin names the certificate itself).
      context.set_verify_callback(
          [this](bool, ssl::verify_context& verify) {
            X509_STORE_CTX* store = verify.native_handle();
            if (X509_STORE_CTX_get_error_depth(store) > 0) return true;
            X509* cert = X509_STORE_CTX_get_current_cert(store);
            CertDigest digest{};
            unsigned int length = 0;
            if (cert == nullptr || X509_digest(cert, EVP_sha256(), digest.data(), &length) != 1 ||
                length != digest.size() || digest != *pin_) {
              pin_mismatch_ = true;
              return false;
            }
            return true;
          },
          ec);
    } else {
      context.set_default_verify_paths(ec);  // a failure shows up as a failed verification
      context.set_verify_callback(ssl::host_name_verification(url_.host), ec);
    }
    return context;
  }

  void start_tls_handshake() {
    if constexpr (kTls) {
      if (aborted_) return finish_connect(Status(Code::kConnectionClosed, "connection aborted"));
      auto& tls = ws_.next_layer();
      // SNI: name-based virtual hosting in front of the relay needs it; never for IP literals (RFC 6066).
      if (!is_ip_literal(url_.host)) SSL_set_tlsext_host_name(tls.native_handle(), url_.host.c_str());
      beast::get_lowest_layer(ws_).expires_after(options_.connect_timeout);
      tls.async_handshake(ssl::stream_base::client, [this](const error_code& ec) {
        if (ec) {
          std::string why = pin_mismatch_ ? "the relay's certificate does not match the pinned SHA-256 fingerprint"
                                          : ec.message();
          finish_connect(Status(ec == beast::error::timeout ? Code::kTimeout : Code::kIoError,
                                "TLS handshake with " + url_.host_header + " failed: " + why));
          return;
        }
        start_handshake();
      });
    }
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
                              "WebSocket upgrade at " + url_.scheme() + url_.host_header + url_.path +
                                  " failed: " + ec.message()));
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
  const std::optional<CertDigest> pin_;

  // Declared first so that it is destroyed last (after everything bound to it).
  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  tcp::resolver resolver_;
  ssl::context tls_context_;  // before ws_, which refers to it (unused for ws://)
  websocket::stream<NextLayer> ws_;
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
  bool pin_mismatch_ = false;  // set by the verify callback during the TLS handshake

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


template <typename NextLayer>
Result<std::unique_ptr<Transport>> connect_as(WsUrl url, const TransportOptions& options,
                                              std::optional<CertDigest> pin) {
  auto transport = std::make_unique<WsTransport<NextLayer>>(std::move(url), options, pin);
  if (Status status = transport->connect(); !status) return status;
  return std::unique_ptr<Transport>(std::move(transport));
}

}  // namespace

Result<std::unique_ptr<Transport>> connect_websocket(const std::string& url, const TransportOptions& options) {
  try {
    auto parsed = parse_ws_url(url);
    if (!parsed) return parsed.error();
    if (options.max_message_bytes == 0) return Status(Code::kInvalidArgument, "max_message_bytes must be > 0");
    std::optional<CertDigest> pin;
    if (!options.pinned_cert_sha256.empty()) {
      if (!parsed->tls) {
        return Status(Code::kInvalidArgument, "pinned_cert_sha256 needs a wss:// URL (got '" + url + "')");
      }
      auto digest = parse_pin(options.pinned_cert_sha256);
      if (!digest) return digest.error();
      pin = *digest;
    }
    if (parsed->tls) return connect_as<TlsLayer>(std::move(*parsed), options, pin);
    return connect_as<PlainLayer>(std::move(*parsed), options, pin);
  } catch (const std::exception& e) {
    return Status(Code::kIoError, std::string("cannot open WebSocket transport: ") + e.what());
  }
}

}  // namespace blindsync
