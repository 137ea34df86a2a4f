// bench_output_check FILE WORKLOAD...: checks blindsync-bench's stdout (one JSON object per line)
// for the smoke test. Every line must be a JSON object; each named workload must appear exactly
// once, report ok, and carry its fields with the right types; W2 must have lost nothing.
// No timing assertion: figures only have to be present, non-negative and ordered (p50 <= p99 <= max).
// Exit 0 when everything holds, 1 otherwise (each problem is printed).

#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;

class Checker {
 public:
  void fail(const std::string& where, const std::string& what) {
    std::cerr << where << ": " << what << "\n";
    ++failures_;
  }
  int failures() const { return failures_; }

  const json* field(const json& j, const std::string& where, const char* key) {
    if (!j.is_object() || !j.contains(key)) {
      fail(where, std::string("missing field '") + key + "'");
      return nullptr;
    }
    return &j[key];
  }
  void number(const json& j, const std::string& where, const char* key) {
    if (const json* v = field(j, where, key); v && (!v->is_number() || v->get<double>() < 0)) {
      fail(where, std::string("'") + key + "' is not a non-negative number: " + v->dump());
    }
  }
  void positive(const json& j, const std::string& where, const char* key) {
    if (const json* v = field(j, where, key); v && (!v->is_number() || v->get<double>() <= 0)) {
      fail(where, std::string("'") + key + "' is not positive: " + v->dump());
    }
  }
  void equal_fields(const json& j, const std::string& where, const char* a, const char* b) {
    const json* va = field(j, where, a);
    const json* vb = field(j, where, b);
    if (va && vb && *va != *vb) fail(where, std::string("'") + a + "' " + va->dump() + " != '" + b + "' " + vb->dump());
  }
  void latency(const json& j, const std::string& where, const char* key) {
    const json* l = field(j, where, key);
    if (!l) return;
    const std::string at = where + "." + key;
    for (const char* k : {"count", "p50_ms", "p99_ms", "max_ms", "mean_ms"}) number(*l, at, k);
    auto is_num = [&](const char* k) { return l->is_object() && l->contains(k) && (*l)[k].is_number(); };
    if (is_num("p50_ms") && is_num("p99_ms") && is_num("max_ms") && is_num("count")) {
      const double p50 = (*l)["p50_ms"].get<double>(), p99 = (*l)["p99_ms"].get<double>(), max = (*l)["max_ms"].get<double>();
      if (!(p50 <= p99 && p99 <= max)) fail(at, "percentiles out of order: " + l->dump());
      if ((*l)["count"].get<double>() <= 0) fail(at, "no latency samples");
    }
  }
  void resources(const json& j, const std::string& where) {
    const json* relay = field(j, where, "relay");
    if (relay && !relay->is_object()) {
      fail(where, "'relay' must be an object when the bench started the relay (it knows the pid)");
    } else if (relay) {
      number(*relay, where + ".relay", "cpu_s");
      positive(*relay, where + ".relay", "peak_rss_kib");
    }
    if (const json* client = field(j, where, "client")) number(*client, where + ".client", "cpu_s");
    // Optional (null when /proc/stat is unreadable); when present, two shares of 100.
    if (j.contains("machine") && !j["machine"].is_null()) {
      const json& machine = j["machine"];
      for (const char* key : {"busy_pct", "steal_pct"}) {
        if (!machine.is_object() || !machine.contains(key) || !machine[key].is_number() ||
            machine[key].get<double>() < 0 || machine[key].get<double>() > 100) {
          fail(where + ".machine", std::string(key) + " must be a percentage");
        }
      }
    }
  }

 private:
  int failures_ = 0;
};

void check_workload(Checker& c, const json& line, const std::string& id) {
  const std::string where = id;
  if (const json* ok = c.field(line, where, "ok"); ok && *ok != true) {
    c.fail(where, "ok is not true; error: " + (line.contains("error") ? line["error"].dump() : std::string("none")));
  }
  if (const json* name = c.field(line, where, "name"); name && !name->is_string()) c.fail(where, "name is not a string");
  if (const json* d = c.field(line, where, "durability"); d && *d != "full" && *d != "normal") {
    c.fail(where, "durability must be full or normal: " + d->dump());
  }
  c.resources(line, where);
  if (id == "w1") {
    c.positive(line, where, "acked");
    c.positive(line, where, "acked_per_s");
    c.equal_fields(line, where, "connected", "connections");
    c.latency(line, where, "latency_ms");
  } else if (id == "w2") {
    c.positive(line, where, "sent");
    c.equal_fields(line, where, "acked", "sent");
    c.positive(line, where, "notifies_expected");
    c.equal_fields(line, where, "notifies_received", "notifies_expected");
    if (const json* lost = c.field(line, where, "lost"); lost && *lost != 0) c.fail(where, "lost must be 0: " + lost->dump());
    c.latency(line, where, "latency_ms");
  } else if (id == "w3") {
    c.equal_fields(line, where, "pulled", "preload");
    c.number(line, where, "pull_s");
    c.number(line, where, "mb_per_s");
    c.positive(line, where, "pages");
  } else if (id == "w4") {
    c.equal_fields(line, where, "opened", "sessions");
    if (const json* v = c.field(line, where, "per_session_bytes"); v && !v->is_number()) {
      c.fail(where, "per_session_bytes must be a number when the relay pid is known");
    }
  } else if (id == "w5") {
    c.positive(line, where, "pushes");
    c.positive(line, where, "push_per_s");
    c.latency(line, where, "latency_ms");
    // A nested part that is not an object fails each of its fields (field() wants an object).
    if (const json* async = c.field(line, where, "async")) {
      const std::string at = where + ".async";
      c.positive(*async, at, "pushes");
      c.equal_fields(*async, at, "acked", "pushes");
      c.positive(*async, at, "push_calls_per_s");
      c.positive(*async, at, "acked_per_s");
      c.latency(*async, at, "push_call_ms");
      c.latency(*async, at, "ack_ms");
    }
    if (const json* pull = c.field(line, where, "pull")) {
      const std::string at = where + ".pull";
      c.positive(*pull, at, "blobs");
      c.equal_fields(*pull, at, "blobs", "expected");
      c.positive(*pull, at, "blobs_per_s");
      c.number(*pull, at, "seconds");
    }
    const json* rows = c.field(line, where, "crypto");
    if (rows && (!rows->is_array() || rows->size() != 2)) {
      c.fail(where, "crypto must list the 1 KiB and 1 MiB rows");
    } else if (rows) {
      for (const auto& row : *rows) {
        for (const char* k : {"bytes", "seal_mb_s", "raw_encrypt_mb_s", "open_mb_s", "raw_decrypt_mb_s"}) {
          c.positive(row, where + ".crypto", k);
        }
        for (const char* k : {"seal_overhead_pct", "open_overhead_pct"}) {
          if (const json* v = c.field(row, where + ".crypto", k); v && !v->is_number()) c.fail(where, "overhead not a number");
        }
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_output_check FILE WORKLOAD...\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "cannot read " << argv[1] << "\n";
    return 1;
  }
  Checker c;
  std::map<std::string, std::vector<json>> by_workload;
  std::string text;
  int number = 0;
  while (std::getline(in, text) && number < 10000) {
    ++number;
    const std::string where = "line " + std::to_string(number);
    json line = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (line.is_discarded() || !line.is_object()) {
      c.fail(where, "not a JSON object: " + text.substr(0, 200));
      continue;
    }
    if (!line.contains("workload") || !line["workload"].is_string()) {
      c.fail(where, "no string 'workload' field");
      continue;
    }
    by_workload[line["workload"].get<std::string>()].push_back(line);
  }
  if (number == 0) c.fail(argv[1], "no output lines");
  std::set<std::string> expected;
  for (int i = 2; i < argc; ++i) expected.insert(argv[i]);
  for (const auto& [id, lines] : by_workload) {
    if (!expected.count(id)) c.fail(id, "unexpected workload");
  }
  for (const auto& id : expected) {
    const auto it = by_workload.find(id);
    if (it == by_workload.end()) {
      c.fail(id, "missing");
      continue;
    }
    if (it->second.size() != 1) c.fail(id, "appears " + std::to_string(it->second.size()) + " times");
    check_workload(c, it->second.front(), id);
  }
  std::cout << expected.size() << " workloads checked, " << c.failures() << " problems\n";
  return c.failures() == 0 ? 0 : 1;
}
