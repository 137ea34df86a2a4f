// The five workloads of `blindsync-bench` (docs/benchmarks.md says what each one measures).
// Each returns the JSON object printed as its stdout line: "workload", "name", "ok", the figures,
// and the "relay" / "client" resource objects; on failure "ok": false and "error".
// Every loop is bounded in count and in time.
// Thread-safety: call one at a time from main.
#pragma once

#include <nlohmann/json.hpp>

#include "bench_config.h"
#include "report.h"

namespace blindsync::bench {

nlohmann::json run_w1_push_throughput(const BenchConfig& config);
nlohmann::json run_w2_fanout_latency(const BenchConfig& config);
nlohmann::json run_w3_catch_up(const BenchConfig& config);
nlohmann::json run_w4_idle_sessions(const BenchConfig& config);
nlohmann::json run_w5_client_path(const BenchConfig& config);

}  // namespace blindsync::bench
