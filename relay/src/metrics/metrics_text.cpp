#include "metrics/metrics_text.h"

#include <cstddef>
#include <cstdio>

#include "http/health.h"

namespace blindsync::relay {
namespace {

// %g: bucket bounds read as written ("0.0001", "0.00025", "1"), as Prometheus clients print them.
std::string format_double(double value, int precision = 6) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
  return buffer;
}

// Label values we emit are our own names and numbers, but escape anyway (version strings).
std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

class Writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP blindsync_";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE blindsync_";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(std::string_view name, std::string_view labels, const std::string& value) {
    out_ += "blindsync_";
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  void single(std::string_view name, std::string_view type, std::string_view help, std::uint64_t value) {
    family(name, type, help);
    sample(name, {}, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::uint64_t load(const std::atomic<std::uint64_t>& counter) { return counter.load(std::memory_order_relaxed); }

}  // namespace

std::string render_metrics_text(const Metrics& m, const MetricsGauges& g) {
  Writer w;
  w.family("build_info", "gauge", "Relay build; the value is always 1.");
  w.sample("build_info", "version=\"" + escape_label(relay_version()) + "\"", 1);
  w.single("uptime_seconds", "gauge", "Seconds since the relay started.", g.uptime_seconds);

  w.single("connections_active", "gauge", "Open client connections (HTTP or WebSocket).", g.connections);
  w.single("connections_total", "counter", "Connections accepted.", load(m.connections_total));
  w.single("sessions_active", "gauge", "Authenticated sessions.", g.sessions);
  w.single("sessions_total", "counter", "Sessions that completed the handshake.", load(m.sessions_total));
  w.single("groups_active", "gauge", "Groups with at least one session.", g.groups);

  w.single("pushes_total", "counter", "PUSH_ACKs sent (duplicates included).", load(m.pushes));
  w.single("push_duplicates_total", "counter", "PUSH_ACKs for a blob the relay already had.",
           load(m.push_duplicates));
  w.single("pulls_total", "counter", "PULL_RESPONSEs sent.", load(m.pulls));
  w.single("notifies_total", "counter", "NOTIFY frames queued to sessions.", load(m.notifies));
  w.single("bytes_received_total", "counter", "WebSocket message bytes received.", load(m.bytes_in));
  w.single("bytes_sent_total", "counter", "WebSocket message bytes sent.", load(m.bytes_out));
  w.single("auth_failures_total", "counter", "HELLOs refused for a bad signature or access token.",
           load(m.auth_failures));

  w.family("rate_limited_total", "counter", "Requests or connections refused by a limit, by kind.");
  for (std::size_t i = 0; i < static_cast<std::size_t>(RateLimitKind::kCount); ++i) {
    const auto kind = static_cast<RateLimitKind>(i);
    w.sample("rate_limited_total", "kind=\"" + std::string(rate_limit_kind_name(kind)) + "\"",
             load(m.rate_limit_hits[i]));
  }

  w.family("errors_total", "counter", "ERROR frames sent, by wire error code.");
  for (Code code : Metrics::kErrorCodes) {
    const bool other = code == Code::kOk;
    const std::string labels =
        other ? std::string("code=\"other\",name=\"OTHER\"")
              : "code=\"" + std::to_string(static_cast<unsigned>(code)) + "\",name=\"" + std::string(code_name(code)) +
                    "\"";
    w.sample("errors_total", labels, m.errors(code));
  }

  // Prometheus buckets are cumulative; the +Inf bucket and _count are the same total, summed
  // from the buckets so that the exposition is self-consistent even while pushes are counted.
  w.family("push_commit_seconds", "histogram", "Time from receiving a PUSH to its durable commit.");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kCommitLatencyBuckets.size(); ++i) {
    cumulative += m.push_commit_latency.bucket_count(i);
    w.sample("push_commit_seconds_bucket", "le=\"" + format_double(kCommitLatencyBuckets[i]) + "\"", cumulative);
  }
  cumulative += m.push_commit_latency.bucket_count(kCommitLatencyBuckets.size());
  w.sample("push_commit_seconds_bucket", "le=\"+Inf\"", cumulative);
  w.sample("push_commit_seconds_sum", {}, format_double(m.push_commit_latency.sum_seconds(), 12));
  w.sample("push_commit_seconds_count", {}, cumulative);

  w.single("cleanup_runs_total", "counter", "Retention cleanup passes completed.", load(m.cleanup_runs));
  w.single("blobs_removed_total", "counter", "Blobs removed by cleanup (expired or acknowledged) and DELETE.",
           load(m.blobs_removed));

  w.single("store_up", "gauge", "1 if the store answered this scrape, else 0.", g.store ? 1 : 0);
  w.single("blobs_buffered", "gauge", "Blobs stored and not yet removed.", g.store ? g.store->blobs : 0);
  w.single("bytes_buffered", "gauge", "Payload bytes stored.", g.store ? g.store->bytes : 0);
  w.single("groups_stored", "gauge", "Groups with stored state.", g.store ? g.store->groups : 0);
  w.single("segment_files", "gauge", "Push journal segment files (they hold the payloads).",
           g.store ? g.store->segment_files : 0);
  w.single("segment_bytes", "gauge", "Disk taken by the push journal segment files.",
           g.store ? g.store->segment_bytes : 0);
  return w.take();
}

}  // namespace blindsync::relay
