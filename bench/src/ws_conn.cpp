// The bench's only Beast translation unit: a coroutine WebSocket client.

#include "ws_conn.h"

#include <charconv>
#include <string_view>

#include <boost/asio/ip/address_v4.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/error.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace blindsync::bench {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

namespace {

// Far above any frame the relay may send (its limit is ~1 MiB): the bench must never be the limit.
constexpr std::size_t kReadMessageMax = 64 * 1024 * 1024;
constexpr std::chrono::seconds kCloseHandshakeTimeout{5};

bool is_closed_error(const error_code& ec) {
  return ec == websocket::error::closed || ec == asio::error::eof || ec == asio::error::operation_aborted ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe || ec == asio::error::bad_descriptor;
}

}  // namespace

Result<WsTarget> resolve_ws_url(const std::string& url) {
  constexpr std::string_view kScheme = "ws://";
  std::string_view rest(url);
  if (rest.substr(0, kScheme.size()) != kScheme) {
    return Status(Code::kInvalidArgument, "relay URL must start with ws:// (got '" + url + "')");
  }
  rest.remove_prefix(kScheme.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string path = slash == std::string_view::npos ? "/v1/sync" : std::string(rest.substr(slash));
  std::string host;
  std::string_view port_text = "80";
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return Status(Code::kInvalidArgument, "bad IPv6 host in " + url);
    host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return Status(Code::kInvalidArgument, "bad port in " + url);
      port_text = authority.substr(close + 2);
    }
  } else {
    const auto colon = authority.rfind(':');
    host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
    return Status(Code::kInvalidArgument, "relay URL needs ws://HOST:PORT/PATH (got '" + url + "')");
  }
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  error_code rec;
  auto results = resolver.resolve(host, std::string(port_text), rec);
  if (rec || results.empty()) {
    return Status(Code::kIoError, "cannot resolve " + host + ": " + rec.message());
  }
  WsTarget target;
  target.remote = results.begin()->endpoint();
  const bool v6 = target.remote.address().is_v6();
  target.host_header = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  target.path = path;
  target.loopback_v4 = target.remote.address().is_v4() && target.remote.address().is_loopback();
  return target;
}

struct WsConn::Impl {
  explicit Impl(const Executor& executor) : ws(executor) {}
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer buffer;
};

WsConn::WsConn(Executor executor) : executor_(std::move(executor)), impl_(std::make_unique<Impl>(executor_)) {}

WsConn::~WsConn() = default;

awaitable<Status> WsConn::connect(const WsTarget& target, std::optional<asio::ip::address> local,
                                  std::chrono::milliseconds timeout) {
  auto& lowest = beast::get_lowest_layer(impl_->ws);
  error_code ec;
  if (local) {
    lowest.socket().open(target.remote.protocol(), ec);
    if (!ec) lowest.socket().bind(tcp::endpoint(*local, 0), ec);
    if (ec) co_return Status(Code::kIoError, "bind " + local->to_string() + ": " + ec.message());
  }
  lowest.expires_after(timeout);
  co_await lowest.async_connect(target.remote, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Status(Code::kIoError, "connect " + target.host_header + ": " + ec.message());
  lowest.socket().set_option(tcp::no_delay(true), ec);
  co_await impl_->ws.async_handshake(target.host_header, target.path,
                                     asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Status(Code::kIoError, "websocket upgrade: " + ec.message());
  // From here Beast's own timeouts apply (the tcp_stream timer must be off, as Beast documents).
  lowest.expires_never();
  websocket::stream_base::timeout opt = websocket::stream_base::timeout::suggested(beast::role_type::client);
  opt.handshake_timeout = kCloseHandshakeTimeout;
  impl_->ws.set_option(opt);
  impl_->ws.read_message_max(kReadMessageMax);
  impl_->ws.auto_fragment(false);
  impl_->ws.binary(true);
  co_return Status::ok();
}

awaitable<Result<ByteView>> WsConn::read() {
  impl_->buffer.clear();
  error_code ec;
  co_await impl_->ws.async_read(impl_->buffer, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (is_closed_error(ec)) co_return Status(Code::kConnectionClosed, "connection closed: " + ec.message());
    co_return Status(Code::kIoError, "read: " + ec.message());
  }
  const auto data = impl_->buffer.cdata();
  co_return ByteView(static_cast<const std::uint8_t*>(data.data()), data.size());
}

awaitable<Status> WsConn::write(ByteView message) {
  error_code ec;
  co_await impl_->ws.async_write(asio::buffer(message.data(), message.size()),
                                 asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (is_closed_error(ec)) co_return Status(Code::kConnectionClosed, "connection closed: " + ec.message());
    co_return Status(Code::kIoError, "write: " + ec.message());
  }
  co_return Status::ok();
}

awaitable<void> WsConn::close() {
  error_code ec;
  // A released socket (release_socket) is no longer Beast's to close.
  if (impl_->ws.is_open() && beast::get_lowest_layer(impl_->ws).socket().is_open()) {
    co_await impl_->ws.async_close(websocket::close_code::normal, asio::redirect_error(asio::use_awaitable, ec));
  }
  beast::get_lowest_layer(impl_->ws).socket().close(ec);
}

Result<int> WsConn::release_socket() {
  error_code ec;
  const int fd = beast::get_lowest_layer(impl_->ws).socket().release(ec);
  if (ec) return Status(Code::kIoError, "release socket: " + ec.message());
  return fd;
}

void WsConn::cancel() {
  asio::post(executor_, [impl = impl_.get()] {
    error_code ec;
    auto& socket = beast::get_lowest_layer(impl->ws).socket();
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  });
}

}  // namespace blindsync::bench
