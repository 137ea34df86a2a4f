// GET /metrics rendering (metrics/metrics_text.h): Prometheus text format 0.0.4, exact counts.
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "http/health.h"
#include "http/routes.h"
#include "metrics/metrics.h"
#include "metrics/metrics_text.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;

// "name{labels}" -> value, for every sample line; REQUIREs every line to be well-formed.
std::map<std::string, std::string> parse_samples(const std::string& text) {
  static const std::regex kSample(R"(^(blindsync_[a-z_]+)(\{[a-z_]+="[^"\\]*"(,[a-z_]+="[^"\\]*")*\})? (\S+)$)");
  static const std::regex kComment(R"(^# (HELP|TYPE) blindsync_[a-z_]+ .+$)");
  std::map<std::string, std::string> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    INFO(line);
    std::smatch match;
    if (std::regex_match(line, kComment)) continue;
    REQUIRE(std::regex_match(line, match, kSample));
    const std::string key = match[1].str() + match[2].str();
    REQUIRE(samples.count(key) == 0);
    samples[key] = match[4];
  }
  return samples;
}

TEST_CASE("an idle relay's metrics list every series at zero", "[metrics][ops]") {
  Metrics metrics;
  const std::string text = render_metrics_text(metrics, MetricsGauges{});
  const auto samples = parse_samples(text);
  CHECK(samples.at("blindsync_pushes_total") == "0");
  CHECK(samples.at("blindsync_sessions_active") == "0");
  CHECK(samples.at("blindsync_store_up") == "0");
  CHECK(samples.at("blindsync_rate_limited_total{kind=\"device_messages\"}") == "0");
  CHECK(samples.at("blindsync_errors_total{code=\"2000\",name=\"RATE_LIMITED\"}") == "0");
  CHECK(samples.at("blindsync_push_commit_seconds_bucket{le=\"+Inf\"}") == "0");
  CHECK(samples.count("blindsync_build_info{version=\"" + std::string(relay_version()) + "\"}") == 1);
  // One HELP and one TYPE per family.
  CHECK(text.find("# TYPE blindsync_pushes_total counter\n") != std::string::npos);
  CHECK(text.find("# TYPE blindsync_sessions_active gauge\n") != std::string::npos);
  CHECK(text.find("# TYPE blindsync_push_commit_seconds histogram\n") != std::string::npos);
}

TEST_CASE("metrics render each counter and gauge exactly", "[metrics][ops]") {
  Metrics m;
  m.sessions_total = 7;
  m.connections_total = 9;
  m.pushes = 3;
  m.push_duplicates = 1;
  m.pulls = 4;
  m.notifies = 5;
  m.bytes_in = 1234567;
  m.bytes_out = 7654321;
  m.auth_failures = 2;
  m.cleanup_runs = 6;
  m.blobs_removed = 11;
  m.count_rate_limit(RateLimitKind::kGlobal);
  m.count_rate_limit(RateLimitKind::kGlobal);
  m.count_rate_limit(RateLimitKind::kConnectionsPerIp);
  m.count_error(Code::kBlobTooLarge);
  m.count_error(Code::kTimeout);  // not a wire code: counted as "other"
  MetricsGauges g;
  g.uptime_seconds = 42;
  g.connections = 3;
  g.sessions = 2;
  g.groups = 1;
  g.store = StoreStats{5, 10, 20480, 3, 50331648};

  const auto s = parse_samples(render_metrics_text(m, g));
  CHECK(s.at("blindsync_sessions_total") == "7");
  CHECK(s.at("blindsync_connections_total") == "9");
  CHECK(s.at("blindsync_pushes_total") == "3");
  CHECK(s.at("blindsync_push_duplicates_total") == "1");
  CHECK(s.at("blindsync_pulls_total") == "4");
  CHECK(s.at("blindsync_notifies_total") == "5");
  CHECK(s.at("blindsync_bytes_received_total") == "1234567");
  CHECK(s.at("blindsync_bytes_sent_total") == "7654321");
  CHECK(s.at("blindsync_auth_failures_total") == "2");
  CHECK(s.at("blindsync_cleanup_runs_total") == "6");
  CHECK(s.at("blindsync_blobs_removed_total") == "11");
  CHECK(s.at("blindsync_rate_limited_total{kind=\"global\"}") == "2");
  CHECK(s.at("blindsync_rate_limited_total{kind=\"connections_per_ip\"}") == "1");
  CHECK(s.at("blindsync_rate_limited_total{kind=\"sessions\"}") == "0");
  CHECK(s.at("blindsync_errors_total{code=\"2001\",name=\"BLOB_TOO_LARGE\"}") == "1");
  CHECK(s.at("blindsync_errors_total{code=\"other\",name=\"OTHER\"}") == "1");
  CHECK(s.at("blindsync_uptime_seconds") == "42");
  CHECK(s.at("blindsync_connections_active") == "3");
  CHECK(s.at("blindsync_sessions_active") == "2");
  CHECK(s.at("blindsync_groups_active") == "1");
  CHECK(s.at("blindsync_store_up") == "1");
  CHECK(s.at("blindsync_groups_stored") == "5");
  CHECK(s.at("blindsync_blobs_buffered") == "10");
  CHECK(s.at("blindsync_bytes_buffered") == "20480");
  CHECK(s.at("blindsync_segment_files") == "3");
  CHECK(s.at("blindsync_segment_bytes") == "50331648");
}

TEST_CASE("the commit latency histogram is cumulative and ends in +Inf = count", "[metrics][ops]") {
  Metrics m;
  m.push_commit_latency.observe(0.00005);  // first bucket (0.0001)
  m.push_commit_latency.observe(0.0001);   // exactly on a bound: le="0.0001"
  m.push_commit_latency.observe(0.003);    // le="0.005"
  m.push_commit_latency.observe(0.7);      // le="1"
  m.push_commit_latency.observe(5.0);      // only +Inf
  const auto s = parse_samples(render_metrics_text(m, MetricsGauges{}));
  CHECK(s.at("blindsync_push_commit_seconds_bucket{le=\"0.0001\"}") == "2");
  CHECK(s.at("blindsync_push_commit_seconds_bucket{le=\"0.0025\"}") == "2");
  CHECK(s.at("blindsync_push_commit_seconds_bucket{le=\"0.005\"}") == "3");
  CHECK(s.at("blindsync_push_commit_seconds_bucket{le=\"0.25\"}") == "3");
  CHECK(s.at("blindsync_push_commit_seconds_bucket{le=\"1\"}") == "4");
  CHECK(s.at("blindsync_push_commit_seconds_bucket{le=\"+Inf\"}") == "5");
  CHECK(s.at("blindsync_push_commit_seconds_count") == "5");
}

TEST_CASE("histogram buckets never decrease and the sum is reported in seconds", "[metrics][ops]") {
  Metrics m;
  m.push_commit_latency.observe(0.7);
  m.push_commit_latency.observe(5.0);
  m.push_commit_latency.observe(0.002);
  const auto s = parse_samples(render_metrics_text(m, MetricsGauges{}));
  std::uint64_t previous = 0;
  for (double bound : kCommitLatencyBuckets) {
    char label[64];
    std::snprintf(label, sizeof label, "%g", bound);
    const auto value = std::stoull(s.at("blindsync_push_commit_seconds_bucket{le=\"" + std::string(label) + "\"}"));
    CHECK(value >= previous);
    previous = value;
  }
  CHECK(s.at("blindsync_push_commit_seconds_bucket{le=\"1\"}") == "2");
  CHECK(s.at("blindsync_push_commit_seconds_bucket{le=\"+Inf\"}") == "3");
  CHECK(s.at("blindsync_push_commit_seconds_count") == "3");
  CHECK(std::stod(s.at("blindsync_push_commit_seconds_sum")) == Approx(5.702).epsilon(1e-6));
}

TEST_CASE("GET /metrics is routed, other methods are not allowed", "[metrics][http][ops]") {
  CHECK(route_request("GET", "/metrics", false) == Route::kMetrics);
  CHECK(route_request("GET", "/metrics?x=1", false) == Route::kMetrics);
  CHECK(route_request("POST", "/metrics", false) == Route::kMethodNotAllowed);
  CHECK(route_request("GET", "/metrics/extra", false) == Route::kNotFound);
}

}  // namespace
