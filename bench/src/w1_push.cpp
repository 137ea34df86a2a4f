// W1 push throughput: N connections over N groups, each a closed loop of
// PUSH (payload_bytes) -> wait for its PUSH_ACK -> repeat, for duration_s.

#include <variant>

#include "bench_support.h"
#include "blindsync/core/codec.h"
#include "proc_stats.h"
#include "relay_metrics.h"
#include "stats.h"
#include "workloads.h"

namespace blindsync::bench {

namespace {

struct W1Conn {
  explicit W1Conn(std::size_t latency_capacity) : latency(latency_capacity) {}
  crypto::GroupKeys group = make_group();
  auth::SigningKey device = auth::SigningKey::generate();
  Bytes payload;
  LatencyRecorder latency;
  std::uint64_t acked = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t errors = 0;
  Status failure;
};

// Bounds one connection's loop even if the clock check were somehow skipped.
constexpr std::uint64_t kMaxPushesPerConnection = 50'000'000;
// Frames that are not the awaited PUSH_ACK (none are expected) tolerated per push.
constexpr int kMaxStrayFrames = 1000;

awaitable<void> push_loop(ProtoConn& conn, W1Conn& state, const BlobIds& ids, std::uint64_t base,
                          Clock::time_point deadline) {
  for (std::uint64_t k = 0; k < kMaxPushesPerConnection && Clock::now() < deadline; ++k) {
    const std::uint32_t request_id = conn.next_request_id();
    const Bytes encoded = encode_frame(Frame{request_id, Push{ids.make(base + k), state.payload, 0}});
    const auto sent = Clock::now();
    if (Status s = co_await conn.send_encoded(encoded); !s) {
      state.failure = s;
      co_return;
    }
    for (int stray = 0;; ++stray) {
      if (stray > kMaxStrayFrames) {
        state.failure = Status(Code::kInvalidMessage, "too many unexpected frames while awaiting PUSH_ACK");
        co_return;
      }
      auto frame = co_await conn.receive();
      if (!frame) {
        state.failure = frame.status();
        co_return;
      }
      if (const auto* ack = std::get_if<PushAck>(&frame->message); ack && frame->request_id == request_id) {
        state.latency.add(Clock::now() - sent);
        ++state.acked;
        if (ack->duplicate) ++state.duplicates;
        break;
      }
      if (const auto* error = std::get_if<Error>(&frame->message)) {
        ++state.errors;
        if (frame->request_id == request_id || error->request_id == request_id) break;
        continue;
      }
      if (const auto* bye = std::get_if<Bye>(&frame->message)) {
        state.failure = Status(Code::kConnectionClosed, "relay said BYE " + std::to_string(bye->code) + ": " + bye->reason);
        co_return;
      }
    }
  }
}

}  // namespace

nlohmann::json run_w1_push_throughput(const BenchConfig& config) {
  constexpr const char* kId = "w1";
  constexpr const char* kName = "push_throughput";
  auto target = resolve_ws_url(config.relay_url);
  if (!target) return workload_failure(config, kId, kName, target.error().to_string());
  const std::size_t n = config.w1_connections;

  // Key material and payloads up front: nothing of it is on the measured path.
  std::vector<std::unique_ptr<W1Conn>> states;
  for (std::size_t i = 0; i < n; ++i) {
    auto state = std::make_unique<W1Conn>(config.max_latency_samples / std::max<std::size_t>(n, 1));
    state->payload = make_sealed_payload(state->group, device_id_of(state->device), config.payload_bytes);
    states.push_back(std::move(state));
  }
  const BlobIds ids;

  asio::io_context ioc;
  std::vector<std::shared_ptr<ProtoConn>> conns;
  const OpenOutcome opened = open_all(
      ioc, config, *target, n,
      [&](std::size_t i) {
        return OpenPlan{&states[i]->device, &states[i]->group.auth_key(), "bench-w1-" + std::to_string(i), 0};
      },
      conns, std::chrono::seconds(60));
  if (opened.opened == 0) {
    close_all(ioc, config.threads, conns);
    return workload_failure(config, kId, kName, "no connection opened: " + opened.first_error);
  }

  ResourceMeter meter(config.relay_pid);
  const auto metrics_before = scrape_metrics(*target);
  meter.start();
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config.duration_s));
  for (std::size_t i = 0; i < n; ++i) {
    if (!opened.statuses[i]) continue;
    asio::co_spawn(conns[i]->executor(), push_loop(*conns[i], *states[i], ids, std::uint64_t{i} << 40, deadline),
                   asio::detached);
  }
  const auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - start) + std::chrono::seconds(30);
  const bool in_time = run_phase(ioc, config.threads, limit, [&] { cancel_all(conns); });
  const auto end = Clock::now();
  meter.stop();
  const auto metrics_after = scrape_metrics(*target);
  close_all(ioc, config.threads, conns);

  LatencyRecorder latency(config.max_latency_samples);
  std::uint64_t acked = 0, errors = 0, duplicates = 0, failed = 0;
  std::string first_failure;
  for (const auto& state : states) {
    latency.merge(state->latency);
    acked += state->acked;
    errors += state->errors;
    duplicates += state->duplicates;
    if (!state->failure.is_ok()) {
      ++failed;
      if (first_failure.empty()) first_failure = state->failure.to_string();
    }
  }
  const double seconds = seconds_between(start, end);
  nlohmann::json out = workload_header(config, kId, kName);
  out["ok"] = in_time && opened.opened == n && failed == 0 && acked > 0;
  out["connections"] = n;
  out["connected"] = opened.opened;
  out["groups"] = n;
  out["payload_bytes"] = config.payload_bytes;
  out["seconds"] = round_to(seconds, 3);
  out["acked"] = acked;
  out["acked_per_s"] = round_to(seconds > 0 ? static_cast<double>(acked) / seconds : 0.0, 1);
  out["errors"] = errors;
  out["duplicates"] = duplicates;
  out["failed_connections"] = failed;
  out["latency_ms"] = latency.summary();
  meter.report(out);
  out["relay_metrics"] = metrics_delta_json(metrics_before, metrics_after);
  if (!opened.first_error.empty()) out["open_error"] = opened.first_error;
  if (!first_failure.empty()) out["error"] = first_failure;
  return out;
}

}  // namespace blindsync::bench
