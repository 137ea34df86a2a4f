// blindsync-relay: routes, orders and buffers a group's end-to-end encrypted blobs without being
// able to read them. It links blindsync::core and blindsync::auth only (tests/relay checks the
// binary carries no payload crypto).
//
// stdout carries exactly one line, once the port is bound:
//   listening on ws://HOST:PORT/v1/sync relay_id=<64 hex chars>
// Logs go to stderr. Exit codes: 0 after a clean SIGINT/SIGTERM drain, 1 if the relay cannot
// start (data directory, key, database, address), 2 for bad flags.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <utility>

#include "hub/hub.h"
#include "net/server.h"
#include "relay_config.h"
#include "relay_keys.h"
#include "store/store.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;

int run(const RelayConfig& config) {
  if (Status dir = ensure_private_dir(config.data_dir); !dir) {
    spdlog::critical("data directory: {}", dir.message());
    return 1;
  }
  auto key = load_or_create_relay_key(config.data_dir / kRelayKeyFileName);
  if (!key) {
    spdlog::critical("relay key: {}", key.error().message());
    return 1;
  }
  StoreOptions store_options;
  store_options.path = (config.data_dir / kRelayDatabaseFileName).string();
  store_options.durability = config.durability;
  auto store = open_sqlite_store(store_options);
  if (!store) {
    spdlog::critical("database {}: {}", store_options.path, store.error().to_string());
    return 1;
  }

  Hub hub(HubOptions{}, std::move(*store), std::move(*key));
  ServerOptions server_options;
  server_options.listen = config.listen;
  server_options.threads = config.threads;
  auto server = Server::start(hub, server_options);
  if (!server) {
    spdlog::critical("{}", server.error().message());
    hub.shutdown();
    return 1;
  }

  // The one stdout line, flushed: scripts and tests wait for it to learn the port.
  std::cout << "listening on " << (*server)->sync_url() << " relay_id=" << hub.relay_id().to_hex() << std::endl;
  spdlog::info("relay {} listening on {} (data {}, durability {})", hub.relay_id().to_hex(), (*server)->sync_url(),
               config.data_dir.string(), config.durability == Durability::kFull ? "full" : "normal");

  (*server)->wait_for_stop();
  spdlog::info("shutting down: draining sessions and closing the database");
  (*server)->stop_accepting();
  hub.shutdown();
  (*server)->stop(std::chrono::milliseconds(3000));
  server->reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ParsedArgs parsed = parse_relay_args(argc, argv);
  if (!parsed.config) {
    (parsed.output_is_error ? std::cerr : std::cout) << parsed.output << std::flush;
    return parsed.exit_code;
  }
  auto logger = spdlog::stderr_color_mt("blindsync-relay");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(parsed.config->log_level));
  std::signal(SIGPIPE, SIG_IGN);  // a peer that vanished mid-write must not kill the relay
  try {
    return run(*parsed.config);
  } catch (const std::exception& e) {  // only allocation failures can get here
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
}
