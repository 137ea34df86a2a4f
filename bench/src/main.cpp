// blindsync-bench: a load generator for blindsync-relay that speaks protocol v1 through the
// library's own codec, handshake signatures and payload encryption (docs/benchmarks.md).
//
// It starts nothing by itself unless asked: --relay-url points it at a running relay, or
// --spawn-relay PATH starts one on a temporary directory (and stops it at the end).
// stdout: one JSON line per workload. stderr: a short human summary.
// Exit status: 0 when every workload reports ok, 1 when one does not, 2 for bad flags or when no
// relay could be reached or started.

#include <signal.h>
#include <sodium.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_config.h"
#include "proc_stats.h"
#include "relay_process.h"
#include "workloads.h"

namespace {

using namespace blindsync;
using namespace blindsync::bench;

struct Workload {
  const char* id;
  nlohmann::json (*run)(const BenchConfig&);
};

constexpr Workload kWorkloads[] = {
    {"w1", run_w1_push_throughput}, {"w2", run_w2_fanout_latency}, {"w3", run_w3_catch_up},
    {"w4", run_w4_idle_sessions},   {"w5", run_w5_client_path},
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  for (char c : text + ",") {
    if (c == ',') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else if (c != ' ') {
      item += c;
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  BenchConfig config;
  std::string workload_list = "all";
  std::string spawn_relay;
  std::string relay_id_hex;
  int relay_pid = 0;
  std::vector<std::string> relay_args;

  CLI::App app{"blindsync-bench: load generator for blindsync-relay (protocol v1)"};
  app.add_option("--relay-url", config.relay_url, "ws://HOST:PORT/v1/sync of a running relay");
  app.add_option("--relay-id", relay_id_hex, "pin the relay's id (64 hex); learned from the relay otherwise");
  app.add_option("--relay-pid", relay_pid, "relay process id: adds its CPU and memory figures (Linux /proc)");
  app.add_option("--spawn-relay", spawn_relay, "start this blindsync-relay binary on a temp dir and use it")
      ->excludes("--relay-url");
  app.add_option("--relay-arg", relay_args, "extra argument for the spawned relay (repeatable)");
  app.add_option("--durability", config.durability,
                 "the relay's --durability (full|normal): passed to a spawned relay, reported in the output");
  app.add_option("--workload", workload_list, "w1|w2|w3|w4|w5|all, or a comma list")->capture_default_str();
  app.add_option("--duration", config.duration_s, "seconds of measuring for W1, W2, W5 (W4 holds min(this, 10))")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--threads", config.threads, "io_context threads of the load generator")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  app.add_option("--payload-bytes", config.payload_bytes, "sealed payload bytes per PUSH (what the relay stores)")
      ->check(CLI::Range(std::size_t{41}, std::size_t{1024 * 1024}))
      ->capture_default_str();
  app.add_option("--connections", config.w1_connections, "W1 connections (one group each)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000}))
      ->capture_default_str();
  app.add_option("--readers", config.w2_readers, "W2 readers besides the writer")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}))
      ->capture_default_str();
  app.add_option("--rate", config.w2_rate, "W2 pushes per second")->check(CLI::Range(1.0, 1e6))->capture_default_str();
  app.add_option("--preload", config.preload, "W3 blobs preloaded into one group")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}))
      ->capture_default_str();
  app.add_option("--page-limit", config.page_limit, "W3 PULL page limit")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  app.add_option("--pull-pages", config.pull_pages, "W3 pages per PULL (the relay clamps to its max_pull_pages)")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  app.add_option("--window", config.window, "W3 pipelined pushes in flight during the preload")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}))
      ->capture_default_str();
  app.add_option("--sessions", config.sessions, "W4 idle sessions")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--sessions-per-group", config.sessions_per_group, "W4 sessions per group (the relay allows 16)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{16}))
      ->capture_default_str();
  app.add_option("--conns-per-ip", config.conns_per_ip,
                 "connections per 127.x.y.z source address when the relay is on 127.0.0.1 (0: do not bind)")
      ->capture_default_str();
  app.add_option("--connect-concurrency", config.connect_concurrency, "handshakes in flight while opening")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<const Workload*> selected;
  for (const auto& name : split_list(workload_list)) {
    bool found = false;
    for (const auto& w : kWorkloads) {
      if (name == "all" || name == w.id) {
        if (std::find(selected.begin(), selected.end(), &w) == selected.end()) selected.push_back(&w);
        found = true;
      }
    }
    if (!found) {
      std::cerr << "unknown workload '" << name << "' (w1|w2|w3|w4|w5|all)\n";
      return 2;
    }
  }
  if (config.durability != "full" && config.durability != "normal" && config.durability != "unknown") {
    std::cerr << "--durability must be full or normal\n";
    return 2;
  }
  if (config.relay_url.empty() && spawn_relay.empty()) {
    std::cerr << "nothing to measure: give --relay-url ws://HOST:PORT/v1/sync or --spawn-relay PATH\n";
    return 2;
  }
  if (!relay_id_hex.empty()) {
    auto id = RelayId::parse_hex(relay_id_hex);
    if (!id) {
      std::cerr << "--relay-id: " << id.error().message() << "\n";
      return 2;
    }
    config.relay_id = *id;
  }
  if (relay_pid > 0) config.relay_pid = relay_pid;

  ::signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0) {
    std::cerr << "libsodium failed to initialise\n";
    return 2;
  }
  // W4 holds thousands of sockets; a spawned relay inherits the raised limit too.
  const std::uint64_t fd_limit = raise_fd_limit();
  if (fd_limit < config.sessions + 256) {
    std::cerr << "warning: open-file limit " << fd_limit << " is below --sessions " << config.sessions
              << " plus headroom; W4 may fail to open every session\n";
  }

  std::unique_ptr<RelayProcess> relay;
  if (!spawn_relay.empty()) {
    std::vector<std::string> args = {"--log-level", "warn"};
    if (config.durability != "unknown") {
      args.push_back("--durability");
      args.push_back(config.durability);
    } else {
      config.durability = "full";  // the relay's default
    }
    args.insert(args.end(), relay_args.begin(), relay_args.end());
    auto spawned = RelayProcess::spawn(spawn_relay, args, std::chrono::seconds(30));
    if (!spawned) {
      std::cerr << "cannot start the relay: " << spawned.error().to_string() << "\n";
      return 2;
    }
    relay = std::move(*spawned);
    config.relay_url = relay->url();
    config.relay_id = relay->relay_id();
    config.relay_pid = relay->pid();
    std::cerr << "spawned relay pid " << relay->pid() << " at " << relay->url() << " (durability "
              << config.durability << "; rate limits and session cap lifted:";
    for (const auto& setting : kBenchRelayEnvironment) std::cerr << " " << setting.name << "=" << ::getenv(setting.name);
    std::cerr << ")\n";
  }

  bool all_ok = true;
  for (const Workload* w : selected) {
    nlohmann::json line;
    try {
      line = w->run(config);
    } catch (const std::exception& e) {  // allocation failure or a bug: report it as this workload's line
      line = workload_failure(config, w->id, "", std::string("exception: ") + e.what());
    }
    all_ok = all_ok && line.value("ok", false);
    std::cout << line.dump() << std::endl;
    std::cerr << human_summary(line) << std::endl;
  }

  if (relay) {
    if (relay->running() && ::kill(relay->pid(), 0) != 0) all_ok = false;
    const std::string outcome = relay->stop(std::chrono::seconds(10));
    std::cerr << "relay stopped: " << outcome << "\n";
    if (outcome != "exit 0") all_ok = false;
  }
  return all_ok ? 0 : 1;
}
