#include "net/server.h"

#include "net/asio.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "http/routes.h"
#include "net/ws_session.h"

namespace blindsync::relay {

namespace asio = net::asio;
using net::error_code;
using net::tcp;

struct Server::Impl {
  Impl(Hub& hub, const ServerOptions& options)
      : context(hub, options),
        ioc(static_cast<int>(options.threads)),
        work(ioc.get_executor()),
        acceptor(asio::make_strand(ioc)),
        signals(asio::make_strand(ioc)),
        tick_timer(asio::make_strand(ioc)) {}

  net::NetContext context;
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  asio::steady_timer tick_timer;
  std::vector<std::thread> threads;

  std::string host;
  std::uint16_t port = 0;

  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stop_requested = false;
  bool stopped = false;

  void request_stop() {
    {
      std::lock_guard lock(stop_mutex);
      stop_requested = true;
    }
    stop_cv.notify_all();
  }

  // Runs fn on executor's strand and waits for it (bounded: the I/O threads never block long).
  template <typename Executor, typename Fn>
  void run_on(const Executor& executor, Fn fn) {
    std::promise<void> done;
    auto future = done.get_future();
    asio::post(executor, [&fn, &done] {
      fn();
      done.set_value();
    });
    if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      spdlog::warn("server: I/O threads did not respond within 5 s");
      future.wait();  // fn and done live on this stack frame: the handler must finish first
    }
  }
};

namespace {

using asio::awaitable;
using asio::use_awaitable;

bool out_of_resources(const error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  const int value = ec.value();
  return value == EMFILE || value == ENFILE || value == ENOBUFS || value == ENOMEM;
}

awaitable<void> accept_loop(Server::Impl& impl) {
  asio::steady_timer backoff_timer(impl.acceptor.get_executor());
  auto backoff = std::chrono::milliseconds(0);
  for (;;) {
    error_code ec;
    tcp::socket socket =
        co_await impl.acceptor.async_accept(asio::make_strand(impl.ioc), asio::redirect_error(use_awaitable, ec));
    if (!impl.acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors (or memory): accepting again at once would spin at 100% CPU, and
      // the kernel keeps pending connections in the backlog meanwhile. Wait, doubling to 1 s.
      if (out_of_resources(ec)) {
        backoff = std::min(std::chrono::milliseconds(1000), std::max(backoff * 2, std::chrono::milliseconds(50)));
        spdlog::warn("accept: {}; retrying in {} ms", ec.message(), backoff.count());
      } else {
        backoff = std::chrono::milliseconds(10);
        spdlog::debug("accept: {}", ec.message());
      }
      backoff_timer.expires_after(backoff);
      co_await backoff_timer.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    backoff = std::chrono::milliseconds(0);
    socket.set_option(tcp::no_delay(true), ec);
    net::start_connection(std::move(socket), impl.context);
  }
}

awaitable<void> tick_loop(Server::Impl& impl) {
  for (;;) {
    impl.tick_timer.expires_after(impl.context.options.tick_interval);
    error_code ec;
    co_await impl.tick_timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    impl.context.hub.on_tick(Hub::Clock::now());
  }
}

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("server task failed: {}", ex.what());
  } catch (...) {
    spdlog::error("server task failed");
  }
}

std::string host_text(const asio::ip::address& address) {
  return address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
}

}  // namespace

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  if (impl_) stop(std::chrono::milliseconds(0));
}

Result<std::unique_ptr<Server>> Server::start(Hub& hub, const ServerOptions& options) {
  auto impl = std::make_unique<Impl>(hub, options);
  const std::string wanted = options.listen.host + ":" + std::to_string(options.listen.port);

  error_code ec;
  tcp::endpoint endpoint;
  const auto address = asio::ip::make_address(options.listen.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, options.listen.port);
  } else {
    tcp::resolver resolver(impl->ioc);
    const auto results = resolver.resolve(options.listen.host, std::to_string(options.listen.port),
                                          tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return Status(Code::kIoError, "cannot resolve " + options.listen.host + ": " +
                                        (ec ? ec.message() : std::string("no address")));
    }
    endpoint = results.begin()->endpoint();
  }

  auto& acceptor = impl->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status(Code::kIoError, "cannot listen on " + wanted + ": " + ec.message());
  const tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) return Status(Code::kIoError, "cannot read the bound address: " + ec.message());
  impl->host = host_text(bound.address());
  impl->port = bound.port();

  impl->signals.add(SIGINT, ec);
  if (!ec) impl->signals.add(SIGTERM, ec);
  if (ec) return Status(Code::kIoError, "cannot install signal handlers: " + ec.message());
  Impl* raw = impl.get();
  impl->signals.async_wait([raw](const error_code& error, int signal_number) {
    if (error) return;
    spdlog::info("received signal {}", signal_number);
    raw->request_stop();
  });

  asio::co_spawn(acceptor.get_executor(), accept_loop(*raw), log_exception);
  asio::co_spawn(impl->tick_timer.get_executor(), tick_loop(*raw), log_exception);

  const unsigned threads = options.threads == 0 ? 1 : options.threads;
  for (unsigned i = 0; i < threads; ++i) {
    impl->threads.emplace_back([raw] {
      for (;;) {
        try {
          raw->ioc.run();
          return;
        } catch (const std::exception& e) {  // a handler threw: log it and keep serving
          spdlog::error("I/O thread: {}", e.what());
        }
      }
    });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

const std::string& Server::host() const noexcept { return impl_->host; }
std::uint16_t Server::port() const noexcept { return impl_->port; }

std::string Server::sync_url() const {
  return "ws://" + impl_->host + ":" + std::to_string(impl_->port) + std::string(kSyncPath);
}

void Server::wait_for_stop() {
  std::unique_lock lock(impl_->stop_mutex);
  impl_->stop_cv.wait(lock, [this] { return impl_->stop_requested; });
}

void Server::request_stop() { impl_->request_stop(); }

void Server::stop_accepting() {
  impl_->context.stopping.store(true);
  impl_->run_on(impl_->acceptor.get_executor(), [this] {
    error_code ec;
    impl_->acceptor.close(ec);
  });
}

void Server::stop(std::chrono::milliseconds grace) {
  Impl& impl = *impl_;
  if (impl.stopped) return;
  impl.stopped = true;
  stop_accepting();
  impl.context.hub.shutdown();  // BYE to every session; they close themselves
  net::abort_connections(impl.context, /*http_only=*/true);

  // Bounded waits: grace for a clean close, then one more second after cutting the rest.
  const auto wait_until_idle = [&](std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (net::live_connections(impl.context) > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  wait_until_idle(grace);
  if (net::live_connections(impl.context) > 0) {
    spdlog::info("closing {} connection(s) that did not finish in time", net::live_connections(impl.context));
    net::abort_connections(impl.context, /*http_only=*/false);
    wait_until_idle(std::chrono::milliseconds(1000));
  }

  impl.run_on(impl.tick_timer.get_executor(), [&impl] { impl.tick_timer.cancel(); });
  impl.run_on(impl.signals.get_executor(), [&impl] {
    error_code ec;
    impl.signals.cancel(ec);
  });
  impl.work.reset();
  if (net::live_connections(impl.context) > 0) impl.ioc.stop();  // last resort: abandon what hangs
  for (auto& thread : impl.threads) {
    if (thread.joinable()) thread.join();
  }
  impl.threads.clear();
}

}  // namespace blindsync::relay
