// GET /metrics: the relay's Metrics counters plus gauges read at request time (sessions, groups,
// buffered blobs), in the Prometheus text exposition format 0.0.4.
//
// Every series is always present (a counter that never moved reads 0), so dashboards and alerts
// do not depend on traffic having happened. Families, all prefixed blindsync_:
//   build_info{version} 1, uptime_seconds, connections_active, connections_total, sessions_active,
//   sessions_total, groups_active, pushes_total, push_duplicates_total, pulls_total, notifies_total,
//   bytes_received_total, bytes_sent_total, auth_failures_total, rate_limited_total{kind},
//   errors_total{code,name}, push_commit_seconds (histogram), cleanup_runs_total,
//   blobs_removed_total, store_up, blobs_buffered, bytes_buffered, groups_stored, segment_files,
//   segment_bytes.
//
// Thread-safety: pure function; reads the atomics with relaxed loads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "metrics/metrics.h"
#include "store/store.h"

namespace blindsync::relay {

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Values that are not counters: read from the hub and the store when /metrics is served.
struct MetricsGauges {
  std::uint64_t uptime_seconds = 0;
  std::uint64_t connections = 0;  // open transports
  std::uint64_t sessions = 0;     // authenticated sessions
  std::uint64_t groups = 0;       // groups with a session
  std::optional<StoreStats> store;  // nullopt when the store could not answer (store_up 0)
};

std::string render_metrics_text(const Metrics& metrics, const MetricsGauges& gauges);

}  // namespace blindsync::relay
