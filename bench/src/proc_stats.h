// Resource figures of the relay process (read from /proc/<pid>) and of the bench itself
// (getrusage), sampled before and after each workload and reported side by side.
//
//   relay CPU   = utime + stime of /proc/<pid>/stat (whole process), and per thread from
//                 /proc/<pid>/task/*/stat so a report can tell I/O threads from the store writer;
//   relay peak  = VmHWM of /proc/<pid>/status (peak since the relay started), VmRSS now;
//   machine     = the "cpu" line of /proc/stat: how busy the whole machine was, and its steal
//                 time (a virtual CPU that was ready to run while the hypervisor ran another
//                 guest). On a shared VM, steal is what stalls a latency run for milliseconds at
//                 a time; the figures of a run with high steal say so themselves.
//
// Thread-safety: free functions; no shared state.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace blindsync::bench {

struct ThreadCpu {
  int tid = 0;
  std::string name;
  double cpu_seconds = 0;
};

struct ProcessSample {
  double cpu_seconds = 0;
  std::uint64_t rss_kib = 0;
  std::uint64_t hwm_kib = 0;
  std::vector<ThreadCpu> threads;
  std::chrono::steady_clock::time_point at;
};

// nullopt when the process is gone or /proc is unreadable.
std::optional<ProcessSample> sample_process(pid_t pid);
// VmRSS in KiB, or nullopt.
std::optional<std::uint64_t> process_rss_kib(pid_t pid);

struct SelfSample {
  double cpu_seconds = 0;        // user + system of this process (all its threads)
  std::uint64_t max_rss_kib = 0; // ru_maxrss
  std::chrono::steady_clock::time_point at;
};
SelfSample sample_self();

// Cumulative ticks of all CPUs since boot.
struct MachineSample {
  std::uint64_t total = 0;  // user + nice + system + idle + iowait + irq + softirq + steal
  std::uint64_t idle = 0;   // idle + iowait
  std::uint64_t steal = 0;
};
// nullopt when /proc/stat is unreadable.
std::optional<MachineSample> sample_machine();

// Snapshots taken around one workload; report() writes them into its JSON line as the "relay",
// "client" and "machine" objects (relay is null when no pid is known, machine when /proc/stat is
// unreadable).
class ResourceMeter {
 public:
  explicit ResourceMeter(std::optional<pid_t> relay_pid);
  void start();
  void stop();
  void report(nlohmann::json& out) const;
  nlohmann::json relay_json() const;
  nlohmann::json client_json() const;
  nlohmann::json machine_json() const;

 private:
  std::optional<pid_t> relay_pid_;
  std::optional<ProcessSample> relay_before_, relay_after_;
  SelfSample self_before_{}, self_after_{};
  std::optional<MachineSample> machine_before_, machine_after_;
};

// Raises RLIMIT_NOFILE to its hard limit (children inherit it); returns the new soft limit.
std::uint64_t raise_fd_limit();

}  // namespace blindsync::bench
