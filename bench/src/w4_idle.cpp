// W4 idle sessions: S authenticated sessions (spread over groups of at most sessions_per_group,
// since the relay caps a group's sessions) that then sit idle. The relay's VmRSS before and after
// gives its memory per idle session; its CPU over the idle hold shows what idle sessions cost.

#include <algorithm>
#include <atomic>
#include <thread>
#include <variant>

#include "bench_support.h"
#include "proc_stats.h"
#include "stats.h"
#include "workloads.h"

namespace blindsync::bench {

namespace {

// How long the sessions are held idle after all of them opened (the RSS is read at its end).
constexpr double kMaxHoldSeconds = 10.0;

// Keeps a read posted (so Beast answers the relay's pings) until the connection ends.
awaitable<void> idle_loop(ProtoConn& conn, std::atomic<std::uint64_t>& unexpected_frames,
                          std::atomic<std::uint64_t>& dropped, const std::atomic<bool>& stopping) {
  for (int frames = 0; frames < 1000; ++frames) {
    auto frame = co_await conn.receive();
    if (!frame) {
      if (!stopping) ++dropped;
      co_return;
    }
    ++unexpected_frames;
  }
}

}  // namespace

nlohmann::json run_w4_idle_sessions(const BenchConfig& config) {
  constexpr const char* kId = "w4";
  constexpr const char* kName = "idle_sessions";
  auto target = resolve_ws_url(config.relay_url);
  if (!target) return workload_failure(config, kId, kName, target.error().to_string());
  const std::size_t n = std::max<std::size_t>(config.sessions, 1);
  const std::size_t per_group = std::clamp<std::size_t>(config.sessions_per_group, 1, 16);
  const std::size_t group_count = (n + per_group - 1) / per_group;

  std::vector<crypto::GroupKeys> groups;
  groups.reserve(group_count);
  for (std::size_t g = 0; g < group_count; ++g) groups.push_back(make_group());
  std::vector<auth::SigningKey> devices;
  devices.reserve(n);
  for (std::size_t i = 0; i < n; ++i) devices.push_back(auth::SigningKey::generate());

  // Let the relay settle (e.g. freed memory from the previous workload) before the baseline.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::optional<std::uint64_t> rss_before;
  if (config.relay_pid) rss_before = process_rss_kib(*config.relay_pid);

  asio::io_context ioc;
  std::vector<std::shared_ptr<ProtoConn>> conns;
  ResourceMeter open_meter(config.relay_pid);
  open_meter.start();
  const OpenOutcome opened = open_all(
      ioc, config, *target, n,
      [&](std::size_t i) {
        return OpenPlan{&devices[i], &groups[i / per_group].auth_key(), "bench-w4-" + std::to_string(i), 0};
      },
      conns, std::chrono::seconds(120) + std::chrono::milliseconds(20 * n));
  open_meter.stop();

  // Idle hold: every open session keeps one read posted; nothing is sent.
  std::atomic<std::uint64_t> unexpected{0}, dropped{0};
  std::atomic<bool> stopping{false};
  for (std::size_t i = 0; i < n; ++i) {
    if (opened.statuses[i]) {
      asio::co_spawn(conns[i]->executor(), idle_loop(*conns[i], unexpected, dropped, stopping), asio::detached);
    }
  }
  const double hold_s = std::clamp(config.duration_s, 1.0, kMaxHoldSeconds);
  ResourceMeter hold_meter(config.relay_pid);
  std::optional<std::uint64_t> rss_after;
  std::thread io([&] {
    run_phase(ioc, config.threads, std::chrono::milliseconds(static_cast<long>(hold_s * 1000)) + std::chrono::seconds(60),
              [&] {
                stopping = true;
                cancel_all(conns);
              });
  });
  hold_meter.start();
  std::this_thread::sleep_for(std::chrono::duration<double>(hold_s));
  if (config.relay_pid) rss_after = process_rss_kib(*config.relay_pid);
  hold_meter.stop();
  const std::uint64_t still_open = opened.opened - dropped.load();
  stopping = true;
  cancel_all(conns);  // the idle loops end; close_all below has nothing left to wait for
  io.join();
  close_all(ioc, config.threads, conns);

  nlohmann::json out = workload_header(config, kId, kName);
  out["ok"] = opened.opened == n && dropped == 0;
  out["sessions"] = n;
  out["opened"] = opened.opened;
  out["groups"] = group_count;
  out["open_s"] = round_to(opened.seconds, 3);
  out["open_per_s"] = round_to(opened.seconds > 0 ? static_cast<double>(opened.opened) / opened.seconds : 0, 1);
  out["hold_s"] = hold_s;
  out["still_open"] = still_open;
  out["dropped"] = dropped.load();
  out["unexpected_frames"] = unexpected.load();
  if (rss_before && rss_after && opened.opened > 0) {
    const double growth_kib = static_cast<double>(*rss_after) - static_cast<double>(*rss_before);
    out["relay_rss_before_kib"] = *rss_before;
    out["relay_rss_after_kib"] = *rss_after;
    out["per_session_bytes"] = round_to(growth_kib * 1024.0 / static_cast<double>(opened.opened), 0);
    out["per_session_kib"] = round_to(growth_kib / static_cast<double>(opened.opened), 2);
  } else {
    out["per_session_bytes"] = nullptr;  // needs --relay-pid
    out["per_session_kib"] = nullptr;
  }
  out["relay_open"] = open_meter.relay_json();
  hold_meter.report(out);
  if (!opened.first_error.empty()) out["error"] = opened.first_error;
  return out;
}

}  // namespace blindsync::bench
