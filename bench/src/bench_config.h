// BenchConfig: everything a workload needs to know, filled from the command line by main.cpp.
// Thread-safety: a plain value, read-only once the workloads run.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "blindsync/core/ids.h"

namespace blindsync::bench {

struct BenchConfig {
  std::string relay_url;               // ws://HOST:PORT/v1/sync
  std::optional<RelayId> relay_id;     // pinned when known (from --spawn-relay or --relay-id)
  std::optional<pid_t> relay_pid;      // enables relay CPU / RSS figures
  std::string durability = "unknown";  // label of the relay's --durability, reported as is
  double duration_s = 10.0;            // W1, W2, W5 measuring time; W4 idle hold (capped at 10 s)
  unsigned threads = 1;                // io_context threads of the load generator
  std::size_t payload_bytes = 1024;    // ciphertext bytes per PUSH (what the relay stores)
  std::size_t w1_connections = 64;     // one group each
  std::size_t w2_readers = 15;
  double w2_rate = 1000.0;             // pushes per second by the single writer
  std::size_t preload = 100'000;       // W3 blobs
  std::uint32_t page_limit = 1000;     // W3 PULL limit
  std::size_t window = 256;            // W3 pipelined pushes in flight
  std::uint32_t pull_pages = 8;        // W3 pages asked for per PULL (Pull::pages; 1 = one round trip each)
  std::size_t sessions = 5000;         // W4 idle sessions
  std::size_t sessions_per_group = 10; // W4 (the relay caps a group at 16 sessions)
  std::size_t conns_per_ip = 8;        // spread connections over 127.x.y.z source addresses; 0 = off
  std::size_t connect_concurrency = 64;
  std::size_t max_latency_samples = 4'000'000;  // across all connections of one workload
};

}  // namespace blindsync::bench
