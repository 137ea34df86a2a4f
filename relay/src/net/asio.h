// The one header through which relay/src/net/*.cpp reach Boost.Asio and Boost.Beast.
//
// <utility> comes first: Boost 1.74's Asio uses std::exchange without including it, which GCC 12
// in C++20 mode does not pull in transitively. Headers are granular (no <boost/beast.hpp> or
// <boost/asio.hpp> umbrellas) to keep these translation units as cheap as they can be.
// Never include this from a header outside net/.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace blindsync::relay::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;

// Each connection's strand, by its concrete type: an any_io_executor holding a strand does not fit
// its small-object buffer, so every copy of it (one per socket, timer and pending operation)
// would allocate.
using Strand = asio::strand<asio::io_context::executor_type>;
// A socket accepted onto its connection's strand (acceptor.async_accept(make_strand(ioc), ...)).
using StrandSocket = tcp::socket::rebind_executor<Strand>::other;

}  // namespace blindsync::relay::net
