// blindsync-relay: routes, orders and buffers a group's end-to-end encrypted blobs without being
// able to read them. It links blindsync::core and blindsync::auth only (tests/relay checks the
// binary carries no payload crypto).
//
// Configuration: relay_config.h (flags > BLINDSYNC_RELAY_* environment > --config TOML > defaults).
// stdout carries exactly one line, once the ports are bound:
//   listening on ws://HOST:PORT/v1/sync relay_id=<64 hex chars>[ metrics=http://HOST:PORT/metrics]
// (wss:// with TLS; the metrics field only with metrics_listen).
// Logs go to stderr, one line per event: "ts=<UTC ISO 8601> level=<level> <message> key=value ...".
// They never contain payloads, secrets or whole access tokens.
// Exit codes: 0 after a clean SIGINT/SIGTERM drain (and for --help, --version, --print-config and
// a finished --backup-to), 1 if the relay cannot start (data directory, key, database, address)
// or the backup failed, 2 for an invalid configuration (naming the key).
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <utility>

#include "hub/hub.h"
#include "limits/relay_limits.h"
#include "net/server.h"
#include "relay_config.h"
#include "relay_keys.h"
#include "store/store.h"
#include "store/store_backup.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;

constexpr auto kDrainGrace = std::chrono::milliseconds(3000);

AdmissionMode admission_mode_of(AccessMode access) {
  switch (access) {
    case AccessMode::kOpen: return AdmissionMode::kOpen;
    case AccessMode::kToken: return AdmissionMode::kToken;
    case AccessMode::kAllowlist: return AdmissionMode::kAllowlist;
  }
  return AdmissionMode::kOpen;
}

// Every limit key of the configuration, onto the hub (which hands the storage limits to the store).
HubOptions hub_options_from(const RelayConfig& config) {
  HubOptions options;
  // Announced to clients in CHALLENGE/WELCOME.
  options.limits.max_blob_bytes = config.max_blob_bytes;
  options.limits.max_frame_bytes = static_cast<std::uint32_t>(config.max_blob_bytes + kFrameOverheadBytes);
  options.limits.max_pull_limit = config.max_pull_limit;
  options.max_pull_pages = config.max_pull_pages;
  options.limits.hello_timeout_ms = config.hello_timeout_ms;
  options.limits.max_ttl_seconds = config.max_ttl_seconds;
  options.default_ttl_seconds = config.default_ttl_seconds;

  RelayLimits& relay = options.relay;
  relay.max_sessions = config.max_sessions;
  relay.max_sessions_per_group = config.max_sessions_per_group;
  relay.max_connections_per_ip = config.max_connections_per_ip;
  relay.max_devices_per_group = config.max_devices_per_group;
  relay.device_messages_per_minute = config.device_messages_per_minute;
  relay.global_messages_per_second = config.global_messages_per_second;
  relay.rate_limit_strikes = config.rate_limit_strikes;
  relay.limiter_max_devices = static_cast<std::size_t>(config.limiter_max_devices);
  relay.group_quota_bytes = config.group_quota_bytes;
  relay.max_groups = config.max_groups;
  relay.storage_cap_bytes = config.storage_cap_bytes;
  relay.access = admission_mode_of(config.access);
  relay.access_tokens = config.access_tokens;
  relay.allowlist = config.allowlist;
  relay.cleanup_interval_ms = config.cleanup_interval_ms;
  relay.drop_acked = config.drop_acked;
  return options;
}

ServerOptions server_options_from(const RelayConfig& config) {
  ServerOptions options;
  options.listen = config.listen;
  options.metrics_listen = config.metrics_listen;
  options.tls_cert_file = config.tls_cert.string();
  options.tls_key_file = config.tls_key.string();
  options.threads = config.threads;
  options.websocket_idle_timeout = std::chrono::milliseconds(config.idle_timeout_ms);
  return options;
}

int run(const RelayConfig& config) {
  if (Status dir = ensure_private_dir(config.data_dir); !dir) {
    spdlog::critical("cannot use data directory path={} error=\"{}\"", config.data_dir.string(), dir.message());
    return 1;
  }
  auto key = load_or_create_relay_key(config.data_dir / kRelayKeyFileName);
  if (!key) {
    spdlog::critical("cannot use relay key error=\"{}\"", key.error().message());
    return 1;
  }
  StoreOptions store_options;
  store_options.path = (config.data_dir / kRelayDatabaseFileName).string();
  store_options.durability = config.durability;
  auto store = open_sqlite_store(store_options);
  if (!store) {
    spdlog::critical("cannot open database path={} error=\"{}\"", store_options.path, store.error().to_string());
    return 1;
  }

  // The hub makes the relay's Metrics; the server counts into the hub's.
  HubOptions hub_options = hub_options_from(config);
  if (Status valid = validate(hub_options.relay); !valid) {  // config validation should have caught it
    spdlog::critical("invalid limits error=\"{}\"", valid.message());
    return 2;
  }
  Hub hub(std::move(hub_options), std::move(*store), std::move(*key));
  auto server = Server::start(hub, server_options_from(config));
  if (!server) {
    spdlog::critical("cannot start error=\"{}\"", server.error().message());
    hub.shutdown();
    return server.error().code() == Code::kInvalidArgument ? 2 : 1;
  }

  // The one stdout line, flushed: scripts and tests wait for it to learn the ports.
  std::cout << "listening on " << (*server)->sync_url() << " relay_id=" << hub.relay_id().to_hex();
  if (!(*server)->metrics_url().empty()) std::cout << " metrics=" << (*server)->metrics_url();
  std::cout << std::endl;
  spdlog::info("relay started relay_id={} url={} metrics={} data={} durability={} access={} tls={} threads={}",
               hub.relay_id().to_hex(), (*server)->sync_url(),
               (*server)->metrics_url().empty() ? "main-port" : (*server)->metrics_url(), config.data_dir.string(),
               config.durability == Durability::kFull ? "full" : "normal", access_mode_name(config.access),
               config.tls_enabled() ? "on" : "off", config.threads);

  (*server)->wait_for_stop();
  const auto drain_started = std::chrono::steady_clock::now();
  spdlog::info("shutting down: no new connections, draining sessions, closing the database");
  (*server)->stop_accepting();
  hub.shutdown();  // in-flight pushes commit and are acked, BYE 3001 to every session, store closed
  (*server)->stop(kDrainGrace);
  server->reset();
  spdlog::info("stopped drain_ms={}", std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - drain_started)
                                          .count());
  return 0;
}

// --backup-to: one line on stdout when the copy is complete and synced.
int run_backup(const RelayConfig& config, const std::filesystem::path& destination) {
  const std::string database = (config.data_dir / kRelayDatabaseFileName).string();
  auto report = backup_sqlite_store(database, destination.string());
  if (!report) {
    spdlog::critical("backup failed path={} error=\"{}\"", destination.string(), report.error().message());
    return 1;
  }
  std::cout << "backup written to " << destination.string() << ": " << kRelayDatabaseFileName << " and "
            << report->segments << " segment file(s), " << report->bytes << " bytes" << std::endl;
  return 0;
}

void setup_logging(const std::string& level) {
  // Plain stderr sink: no colour codes in files and journald; one line per event.
  auto logger = spdlog::stderr_logger_mt("blindsync-relay");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);  // a crash or kill -9 must not eat the last lines
}

// A multi-page PULL keeps several ~1 MiB page buffers alive at once. On its defaults glibc maps
// each buffer that size afresh (or trims the heap's top once they are freed), so every pulled byte
// landed in a newly faulted page: W3 with 8 pages per PULL took ~31,000 page faults against
// ~6,000 with one. Buffers up to 4 MiB come from the heap instead, and up to 32 MiB of freed heap
// top is kept for the next ones (docs/benchmarks-log.md, 2026-11-22 19:45).
void tune_allocator() {
  (void)::mallopt(M_MMAP_THRESHOLD, 4 << 20);
  (void)::mallopt(M_TRIM_THRESHOLD, 32 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  tune_allocator();
  ParsedArgs parsed = parse_relay_args(argc, argv);
  if (!parsed.config) {
    (parsed.output_is_error ? std::cerr : std::cout) << parsed.output << std::flush;
    return parsed.exit_code;
  }
  setup_logging(parsed.config->log_level);
  if (!parsed.config_file.empty()) spdlog::info("config loaded file={}", parsed.config_file.string());
  for (const auto& warning : parsed.warnings) spdlog::warn("config: {}", warning);
  if (auto warning = exposure_warning(*parsed.config)) {
    // Loud on purpose: this is a legitimate setup behind a firewall, and a mistake everywhere else.
    spdlog::warn("SECURITY WARNING: {}", *warning);
  }
  std::signal(SIGPIPE, SIG_IGN);  // a peer that vanished mid-write must not kill the relay
  try {
    if (!parsed.backup_to.empty()) return run_backup(*parsed.config, parsed.backup_to);
    return run(*parsed.config);
  } catch (const std::exception& e) {  // only allocation failures can get here
    spdlog::critical("fatal error=\"{}\"", e.what());
    return 1;
  }
}
