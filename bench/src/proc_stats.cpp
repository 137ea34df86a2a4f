#include "proc_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "stats.h"

namespace blindsync::bench {

namespace {

double ticks_per_second() {
  static const double ticks = [] {
    const long t = ::sysconf(_SC_CLK_TCK);
    return t > 0 ? static_cast<double>(t) : 100.0;
  }();
  return ticks;
}

// Parses utime + stime (fields 14 and 15) of a /proc stat file; the comm field (2) may contain
// spaces and parentheses, so fields are counted from the last ')'.
std::optional<std::pair<std::string, double>> read_stat(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  const auto open = line.find('(');
  const auto close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  std::string name = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // After ')': field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
  for (int i = 0; i <= 12 && rest >> field; ++i) {
    if (i == 11) utime = std::stoull(field);
    if (i == 12) stime = std::stoull(field);
  }
  return std::make_pair(std::move(name), static_cast<double>(utime + stime) / ticks_per_second());
}

std::optional<std::uint64_t> read_status_kib(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (in && std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::istringstream value(line.substr(key.size() + 1));
      std::uint64_t kib = 0;
      if (value >> kib) return kib;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<ProcessSample> sample_process(pid_t pid) {
  const std::filesystem::path dir = "/proc/" + std::to_string(pid);
  auto whole = read_stat(dir / "stat");
  if (!whole) return std::nullopt;
  ProcessSample sample;
  sample.at = std::chrono::steady_clock::now();
  sample.cpu_seconds = whole->second;
  sample.rss_kib = read_status_kib(pid, "VmRSS").value_or(0);
  sample.hwm_kib = read_status_kib(pid, "VmHWM").value_or(0);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "task", ec)) {
    auto stat = read_stat(entry.path() / "stat");
    if (!stat) continue;
    ThreadCpu thread;
    thread.tid = std::atoi(entry.path().filename().c_str());
    thread.name = stat->first;
    thread.cpu_seconds = stat->second;
    sample.threads.push_back(std::move(thread));
  }
  return sample;
}

std::optional<std::uint64_t> process_rss_kib(pid_t pid) { return read_status_kib(pid, "VmRSS"); }

SelfSample sample_self() {
  SelfSample sample;
  sample.at = std::chrono::steady_clock::now();
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) == 0) {
    auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
    sample.cpu_seconds = secs(usage.ru_utime) + secs(usage.ru_stime);
    sample.max_rss_kib = static_cast<std::uint64_t>(usage.ru_maxrss);
  }
  return sample;
}

std::optional<MachineSample> sample_machine() {
  std::ifstream in("/proc/stat");
  std::string label;
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is already
  // counted in user and nice, so it is not added again).
  std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || label != "cpu") {
    return std::nullopt;
  }
  return MachineSample{user + nice + system + idle + iowait + irq + softirq + steal, idle + iowait, steal};
}

ResourceMeter::ResourceMeter(std::optional<pid_t> relay_pid) : relay_pid_(relay_pid) {}

void ResourceMeter::start() {
  if (relay_pid_) relay_before_ = sample_process(*relay_pid_);
  self_before_ = sample_self();
  machine_before_ = sample_machine();
}

void ResourceMeter::stop() {
  if (relay_pid_) relay_after_ = sample_process(*relay_pid_);
  self_after_ = sample_self();
  machine_after_ = sample_machine();
}

void ResourceMeter::report(nlohmann::json& out) const {
  out["relay"] = relay_json();
  out["client"] = client_json();
  out["machine"] = machine_json();
}

nlohmann::json ResourceMeter::relay_json() const {
  if (!relay_before_ || !relay_after_) return nullptr;
  const double wall = seconds_between(relay_before_->at, relay_after_->at);
  const double cpu = relay_after_->cpu_seconds - relay_before_->cpu_seconds;
  nlohmann::json out;
  out["cpu_s"] = round_to(cpu, 3);
  out["cpu_util"] = round_to(wall > 0 ? cpu / wall : 0.0, 3);  // 1.0 = one core busy
  out["rss_kib"] = relay_after_->rss_kib;
  out["peak_rss_kib"] = relay_after_->hwm_kib;
  // Per-thread CPU over the workload, busiest first; threads that used < 10 ms are left out.
  std::map<int, double> before;
  for (const auto& t : relay_before_->threads) before[t.tid] = t.cpu_seconds;
  std::vector<std::pair<double, std::string>> threads;
  for (const auto& t : relay_after_->threads) {
    const auto it = before.find(t.tid);
    const double used = t.cpu_seconds - (it == before.end() ? 0.0 : it->second);
    if (used >= 0.01) threads.emplace_back(used, t.name + "/" + std::to_string(t.tid));
  }
  std::sort(threads.begin(), threads.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  nlohmann::json per_thread = nlohmann::json::array();
  for (const auto& [used, name] : threads) per_thread.push_back({{"thread", name}, {"cpu_s", round_to(used, 3)}});
  out["threads"] = per_thread;
  return out;
}

nlohmann::json ResourceMeter::client_json() const {
  const double wall = seconds_between(self_before_.at, self_after_.at);
  const double cpu = self_after_.cpu_seconds - self_before_.cpu_seconds;
  nlohmann::json out;
  out["cpu_s"] = round_to(cpu, 3);
  out["cpu_util"] = round_to(wall > 0 ? cpu / wall : 0.0, 3);
  out["max_rss_kib"] = self_after_.max_rss_kib;
  return out;
}

nlohmann::json ResourceMeter::machine_json() const {
  if (!machine_before_ || !machine_after_ || machine_after_->total <= machine_before_->total) return nullptr;
  const auto total = static_cast<double>(machine_after_->total - machine_before_->total);
  const auto idle = static_cast<double>(machine_after_->idle - machine_before_->idle);
  const auto steal = static_cast<double>(machine_after_->steal - machine_before_->steal);
  nlohmann::json out;
  // Shares of all CPUs' time over the workload: busy is what ran (either process, or anything
  // else on the machine); steal is what the hypervisor took.
  out["busy_pct"] = round_to(100.0 * (total - idle - steal) / total, 1);
  out["steal_pct"] = round_to(100.0 * steal / total, 1);
  return out;
}

std::uint64_t raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return static_cast<std::uint64_t>(limit.rlim_cur);
}

}  // namespace blindsync::bench
