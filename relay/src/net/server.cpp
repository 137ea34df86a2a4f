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
#include "thread_name.h"

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
        metrics_acceptor(asio::make_strand(ioc)),
        signals(asio::make_strand(ioc)),
        tick_timer(asio::make_strand(ioc)) {}

  std::unique_ptr<net::ssl::context> tls;  // before context's users: outlives every connection
  net::NetContext context;
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  tcp::acceptor acceptor;
  tcp::acceptor metrics_acceptor;  // open only with options.metrics_listen
  asio::signal_set signals;
  asio::steady_timer tick_timer;
  std::vector<std::thread> threads;

  std::string host;
  std::uint16_t port = 0;
  std::string metrics_host;
  std::uint16_t metrics_port = 0;

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
      spdlog::warn("I/O threads did not respond within 5 s");
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

awaitable<void> accept_loop(Server::Impl& impl, tcp::acceptor& acceptor, HttpPort listener) {
  asio::steady_timer backoff_timer(acceptor.get_executor());
  auto backoff = std::chrono::milliseconds(0);
  for (;;) {
    error_code ec;
    net::StrandSocket socket =
        co_await acceptor.async_accept(asio::make_strand(impl.ioc), asio::redirect_error(use_awaitable, ec));
    if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors (or memory): accepting again at once would spin at 100% CPU, and
      // the kernel keeps pending connections in the backlog meanwhile. Wait, doubling to 1 s.
      if (out_of_resources(ec)) {
        backoff = std::min(std::chrono::milliseconds(1000), std::max(backoff * 2, std::chrono::milliseconds(50)));
        spdlog::warn("accept failed error=\"{}\" retry_ms={}", ec.message(), backoff.count());
      } else {
        backoff = std::chrono::milliseconds(10);
        spdlog::debug("accept failed error=\"{}\"", ec.message());
      }
      backoff_timer.expires_after(backoff);
      co_await backoff_timer.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    backoff = std::chrono::milliseconds(0);
    socket.set_option(tcp::no_delay(true), ec);
    net::start_connection(std::move(socket), impl.context, listener);
  }
}

awaitable<void> tick_loop(Server::Impl& impl) {
  for (;;) {
    impl.tick_timer.expires_after(impl.context.options.tick_interval);
    error_code ec;
    co_await impl.tick_timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    impl.context.hub.on_tick(Hub::Clock::now());
    net::sweep_idle_connections(impl.context);
  }
}

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("server task failed error=\"{}\"", ex.what());
  } catch (...) {
    spdlog::error("server task failed");
  }
}

std::string host_text(const asio::ip::address& address) {
  return address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
}

// Resolves, binds and listens; on success host/port hold the address actually bound.
Status listen_on(asio::io_context& ioc, tcp::acceptor& acceptor, const ListenAddress& where, std::string& host,
                 std::uint16_t& port) {
  const std::string wanted = format_listen_address(where);
  error_code ec;
  tcp::endpoint endpoint;
  const auto address = asio::ip::make_address(where.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, where.port);
  } else {
    tcp::resolver resolver(ioc);
    const auto results = resolver.resolve(where.host, std::to_string(where.port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return Status(Code::kIoError,
                    "cannot resolve " + where.host + ": " + (ec ? ec.message() : std::string("no address")));
    }
    endpoint = results.begin()->endpoint();
  }
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status(Code::kIoError, "cannot listen on " + wanted + ": " + ec.message());
  const tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) return Status(Code::kIoError, "cannot read the bound address: " + ec.message());
  host = host_text(bound.address());
  port = bound.port();
  return Status::ok();
}

// The server's TLS context: TLS 1.2 or later, the certificate chain and key checked against each
// other now, so a bad file stops the start instead of failing every handshake later.
Result<std::unique_ptr<net::ssl::context>> load_tls(const ServerOptions& options) {
  auto context = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
  error_code ec;
  context->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                           net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                           net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use,
                       ec);
  if (ec) return Status(Code::kInvalidArgument, "tls: cannot configure TLS: " + ec.message());
  context->use_certificate_chain_file(options.tls_cert_file, ec);
  if (ec) {
    return Status(Code::kInvalidArgument,
                  "tls_cert: cannot load a PEM certificate chain from '" + options.tls_cert_file + "': " + ec.message());
  }
  context->use_private_key_file(options.tls_key_file, net::ssl::context::pem, ec);
  if (ec) {
    return Status(Code::kInvalidArgument,
                  "tls_key: cannot load a PEM private key from '" + options.tls_key_file + "': " + ec.message());
  }
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    return Status(Code::kInvalidArgument, "tls_key: '" + options.tls_key_file + "' does not match tls_cert '" +
                                              options.tls_cert_file + "'");
  }
  return context;
}

}  // namespace

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  if (impl_) stop(std::chrono::milliseconds(0));
}

Result<std::unique_ptr<Server>> Server::start(Hub& hub, const ServerOptions& options) {
  auto impl = std::make_unique<Impl>(hub, options);
  if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
    auto tls = load_tls(options);
    if (!tls) return tls.error();
    impl->tls = std::move(*tls);
    impl->context.tls = impl->tls.get();
  }
  if (Status st = listen_on(impl->ioc, impl->acceptor, options.listen, impl->host, impl->port); !st) return st;
  if (options.metrics_listen) {
    Status st = listen_on(impl->ioc, impl->metrics_acceptor, *options.metrics_listen, impl->metrics_host,
                          impl->metrics_port);
    if (!st) return Status(st.code(), "metrics_listen: " + st.message());
  }

  error_code ec;
  impl->signals.add(SIGINT, ec);
  if (!ec) impl->signals.add(SIGTERM, ec);
  if (ec) return Status(Code::kIoError, "cannot install signal handlers: " + ec.message());
  Impl* raw = impl.get();
  impl->signals.async_wait([raw](const error_code& error, int signal_number) {
    if (error) return;
    spdlog::info("signal received signal={}", signal_number);
    raw->request_stop();
  });

  asio::co_spawn(impl->acceptor.get_executor(), accept_loop(*raw, raw->acceptor, HttpPort::kMain), log_exception);
  if (impl->metrics_acceptor.is_open()) {
    asio::co_spawn(impl->metrics_acceptor.get_executor(),
                   accept_loop(*raw, raw->metrics_acceptor, HttpPort::kMetrics), log_exception);
  }
  asio::co_spawn(impl->tick_timer.get_executor(), tick_loop(*raw), log_exception);

  const unsigned threads = options.threads == 0 ? 1 : options.threads;
  for (unsigned i = 0; i < threads; ++i) {
    impl->threads.emplace_back([raw, i] {
      name_this_thread("relay-io-" + std::to_string(i));
      for (;;) {
        try {
          raw->ioc.run();
          return;
        } catch (const std::exception& e) {  // a handler threw: log it and keep serving
          spdlog::error("I/O thread handler failed error=\"{}\"", e.what());
        }
      }
    });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

const std::string& Server::host() const noexcept { return impl_->host; }
std::uint16_t Server::port() const noexcept { return impl_->port; }

std::string Server::sync_url() const {
  return std::string(tls() ? "wss://" : "ws://") + impl_->host + ":" + std::to_string(impl_->port) +
         std::string(kSyncPath);
}

bool Server::tls() const noexcept { return impl_->tls != nullptr; }

std::uint16_t Server::metrics_port() const noexcept { return impl_->metrics_port; }

std::string Server::metrics_url() const {
  if (impl_->metrics_port == 0) return {};
  return "http://" + impl_->metrics_host + ":" + std::to_string(impl_->metrics_port) + std::string(kMetricsPath);
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
  impl_->run_on(impl_->metrics_acceptor.get_executor(), [this] {
    error_code ec;
    impl_->metrics_acceptor.close(ec);
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
    spdlog::info("closing connections that did not finish in time count={}", net::live_connections(impl.context));
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
