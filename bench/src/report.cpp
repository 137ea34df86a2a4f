#include "report.h"

#include <fstream>
#include <sstream>

namespace blindsync::bench {

nlohmann::json workload_header(const BenchConfig& config, const char* id, const char* name) {
  nlohmann::json out;
  out["workload"] = id;
  out["name"] = name;
  out["ok"] = false;
  out["durability"] = config.durability;
  out["duration_s"] = config.duration_s;
  out["threads"] = config.threads;
  // The machine's 1-minute load average when the workload started: figures taken on a busy
  // machine say so themselves.
  std::ifstream loadavg("/proc/loadavg");
  double load = 0;
  if (loadavg >> load) {
    out["loadavg_1m"] = load;
  } else {
    out["loadavg_1m"] = nullptr;
  }
  return out;
}

std::size_t workload_header_field_count() { return workload_header(BenchConfig{}, "", "").size(); }

nlohmann::json workload_failure(const BenchConfig& config, const char* id, const char* name, const std::string& message) {
  nlohmann::json out = workload_header(config, id, name);
  out["ok"] = false;
  out["error"] = message;
  return out;
}

nlohmann::json part_failure(const std::string& message) { return {{"ok", false}, {"error", message}}; }

namespace {

std::string fmt(const nlohmann::json& value) {
  if (value.is_null()) return "n/a";
  if (value.is_number_float()) {
    std::ostringstream s;
    s.setf(std::ios::fixed);
    s.precision(value.get<double>() >= 100 ? 0 : 2);
    s << value.get<double>();
    return s.str();
  }
  return value.dump();
}

std::string get(const nlohmann::json& j, const char* key) { return j.contains(key) ? fmt(j[key]) : "n/a"; }

std::string latency(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) return "n/a";
  const auto& l = j[key];
  return "p50 " + get(l, "p50_ms") + " ms, p99 " + get(l, "p99_ms") + " ms, max " + get(l, "max_ms") + " ms";
}

// Relay and bench CPU side by side, and the relay's busiest thread by name (the relay names them:
// relay-io-N, store-writer, store-applier, wal-checkpoint), so a line says which side, and which
// part of the relay, was the bottleneck.
std::string cpu_figures(const nlohmann::json& j) {
  std::string text;
  if (j.contains("relay") && j["relay"].is_object()) {
    const nlohmann::json& relay = j["relay"];
    text += "; relay cpu " + get(relay, "cpu_s") + " s (" + get(relay, "cpu_util") + " cores), peak rss " +
            get(relay, "peak_rss_kib") + " KiB";
    if (relay.contains("threads") && relay["threads"].is_array() && !relay["threads"].empty()) {
      const nlohmann::json& busiest = relay["threads"].front();  // busiest first
      const std::string thread = busiest.value("thread", "?");
      text += ", busiest thread " + thread.substr(0, thread.rfind('/')) + " " + get(busiest, "cpu_s") + " s";
    }
  }
  if (j.contains("client") && j["client"].is_object()) {
    text += "; bench cpu " + get(j["client"], "cpu_s") + " s (" + get(j["client"], "cpu_util") + " cores)";
  }
  return text;
}

}  // namespace

std::string human_summary(const nlohmann::json& line) {
  const std::string id = line.value("workload", "?");
  std::string head = id + " " + line.value("name", "") + " [" + line.value("durability", "unknown") + "]" +
                     (line.value("ok", false) ? "" : " NOT OK") + ": ";
  std::string load = line.contains("loadavg_1m") ? " (load " + fmt(line["loadavg_1m"]) : "";
  if (line.contains("machine") && line["machine"].is_object()) {
    load += (load.empty() ? " (" : ", ") + std::string("steal ") + get(line["machine"], "steal_pct") + "%";
  }
  if (!load.empty()) load += ")";
  std::string body;
  // A failure line carries only the header fields and the error.
  const bool has_figures = line.size() > workload_header_field_count() + 1;
  if (!has_figures) {
    body = "no figures";
  } else if (id == "w1") {
    body = get(line, "acked_per_s") + " acked pushes/s over " + get(line, "connected") + " connections; ack " +
           latency(line, "latency_ms");
    if (line.value("errors", 0) > 0) body += "; " + get(line, "errors") + " ERROR answers";
  } else if (id == "w2") {
    body = "notify " + latency(line, "latency_ms") + "; lost " + get(line, "lost") + " of " +
           get(line, "notifies_expected") + "; sent " + get(line, "sent");
  } else if (id == "w3") {
    body = "pulled " + get(line, "pulled") + " blobs in " + get(line, "pull_s") + " s (" + get(line, "mb_per_s") +
           " MB/s); preload " + get(line, "preload_per_s") + " pushes/s";
  } else if (id == "w4") {
    body = get(line, "opened") + " idle sessions; relay " + get(line, "per_session_kib") + " KiB per session";
  } else if (id == "w5") {
    body = get(line, "push_per_s") + " client pushes/s, " + latency(line, "latency_ms");
    if (line.contains("async") && line["async"].is_object()) {
      const auto& async = line["async"];
      body += "; async client " + get(async, "acked_per_s") + " acked/s, push() " + latency(async, "push_call_ms");
    }
    if (line.contains("pull") && line["pull"].is_object()) {
      body += "; a new device pulled " + get(line["pull"], "blobs") + " in " + get(line["pull"], "seconds") + " s (" +
              get(line["pull"], "blobs_per_s") + " blobs/s)";
    }
    if (line.contains("crypto")) {
      for (const auto& row : line["crypto"]) {
        body += "; " + get(row, "bytes") + " B seal +" + get(row, "seal_overhead_pct") + "% open +" +
                get(row, "open_overhead_pct") + "% vs raw";
      }
    }
  }
  if (has_figures && line.contains("relay_metrics") && line["relay_metrics"].is_object() &&
      line["relay_metrics"].value("commits", 0.0) > 0) {
    body += "; relay commit mean " + get(line["relay_metrics"], "commit_mean_ms") + " ms";
  }
  std::string text = head + body + cpu_figures(line) + load;
  if (line.contains("error")) text += "\n    error: " + line["error"].get<std::string>();
  return text;
}

}  // namespace blindsync::bench
