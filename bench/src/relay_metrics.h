// Reads the relay's own Prometheus text (GET /metrics on its port) before and after a workload, so
// that a report can split the ack latency the bench sees into the relay's commit time (its
// push_commit_seconds histogram: PUSH received -> durable commit) and everything else. Also
// sums the relay's rate_limited_total and errors_total, which must stay flat under a fair load.
//
// A plain blocking HTTP/1.1 GET over a POSIX socket (2 s timeout, 8 MiB cap): no Beast needed. A
// relay without /metrics gives nullopt and the figures are left out.
// Thread-safety: free functions on values.
#pragma once

#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "ws_conn.h"

namespace blindsync::bench {

// "name{labels}" -> value, for every blindsync_* sample.
using MetricsSample = std::map<std::string, double>;

std::optional<MetricsSample> scrape_metrics(const WsTarget& target);
MetricsSample parse_metrics_text(const std::string& text);

// {"commits", "commit_mean_ms", "commit_p50_ms", "commit_p99_ms", "rate_limited", "errors"} over the
// interval; the percentiles are bucket upper bounds (Prometheus resolution). null if either is missing.
nlohmann::json metrics_delta_json(const std::optional<MetricsSample>& before, const std::optional<MetricsSample>& after);

}  // namespace blindsync::bench
