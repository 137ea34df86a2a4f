// The one header through which bench/src reaches Boost.Asio (Beast stays inside ws_conn.cpp).
//
// <utility> comes first: Boost 1.74's Asio uses std::exchange without including it, which GCC 12
// in C++20 mode does not pull in transitively. Headers are granular (no <boost/asio.hpp>
// umbrella) to keep every translation unit that includes this as cheap as it can be.
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace blindsync::bench {

namespace asio = boost::asio;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;
template <typename T>
using awaitable = boost::asio::awaitable<T>;
using Executor = boost::asio::any_io_executor;

}  // namespace blindsync::bench
