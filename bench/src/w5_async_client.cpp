// W5's second half: the embedding API an app uses, blindsync::AsyncClient. The app thread pushes
// as fast as push() returns (each push() is a sealed blob made durable in the local outbox), with
// at most kUnackedLimit pushes not yet acknowledged; the client's worker drains the outbox to the
// relay with its pipelined push window. Measured: push() calls per second on the app thread, the
// time each call took, and the time from push() to its EventBlobPushed (the relay's durable ack).
#include "w5_async_client.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <unordered_map>
#include <variant>

#include "blindsync/client/async_client.h"
#include "blindsync/transport_ws/ws_transport.h"
#include "report.h"
#include "stats.h"

namespace blindsync::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Enough unacknowledged pushes to keep the client's push window full, few enough that the event
// queue never holds back acknowledgements.
constexpr std::size_t kUnackedLimit = 256;
constexpr std::uint64_t kMaxAsyncPushes = 10'000'000;
// After the pushing ends, how long the outstanding acknowledgements may take.
constexpr auto kDrainLimit = std::chrono::seconds(10);
constexpr auto kSetupLimit = std::chrono::seconds(30);

// The notify hook only wakes the app thread (async_client.h).
struct Wakeup {
  std::mutex mutex;
  std::condition_variable cv;
  bool pending = false;

  void notify() {
    {
      std::lock_guard lock(mutex);
      pending = true;
    }
    cv.notify_one();
  }
  void wait_for(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex);
    cv.wait_for(lock, limit, [&] { return pending; });
    pending = false;
  }
};

template <typename T>
Result<T> wait_result(std::future<Result<T>> future) {
  if (future.wait_for(kSetupLimit) != std::future_status::ready) {
    return Status(Code::kTimeout, "the async client did not answer in time");
  }
  return future.get();
}

}  // namespace

nlohmann::json async_client_figures(const BenchConfig& config, const std::filesystem::path& home, ByteView data) {
  Wakeup wakeup;
  AsyncClientOptions options;
  options.transport = connect_websocket;
  options.notify = [&wakeup] { wakeup.notify(); };
  auto client = AsyncClient::open(home.string(), std::move(options));
  if (!client) return part_failure("AsyncClient::open: " + client.error().to_string());
  if (auto id = wait_result((*client)->create_identity("bench-w5-async")); !id) {
    return part_failure("create_identity: " + id.error().to_string());
  }
  auto created = wait_result((*client)->create_group({config.relay_url}, "bench-w5-async"));
  if (!created) return part_failure("create_group: " + created.error().to_string());
  const GroupId group_id = created->group.group_id;

  LatencyRecorder call_latency(config.max_latency_samples);
  LatencyRecorder ack_latency(config.max_latency_samples);
  std::unordered_map<BlobId, Clock::time_point, FixedIdHash> unacked;
  std::uint64_t pushed = 0, acked = 0, errors = 0;
  std::string first_error;
  Clock::time_point last_ack;

  const auto take_events = [&] {
    for (Event& event : (*client)->poll_events()) {
      if (auto* done = std::get_if<EventBlobPushed>(&event)) {
        const auto it = unacked.find(done->blob_id);
        if (it == unacked.end()) continue;
        last_ack = Clock::now();
        ack_latency.add(last_ack - it->second);
        unacked.erase(it);
        ++acked;
      } else if (auto* error = std::get_if<EventError>(&event)) {
        ++errors;
        if (first_error.empty()) first_error = error->status.to_string();
      }
    }
  };

  const auto start = Clock::now();
  last_ack = start;
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config.duration_s));
  while (Clock::now() < deadline && pushed < kMaxAsyncPushes) {
    if (unacked.size() >= kUnackedLimit) {
      wakeup.wait_for(std::chrono::milliseconds(100));
      take_events();
      continue;
    }
    const auto t = Clock::now();
    auto blob = (*client)->push(group_id, data);
    const auto returned = Clock::now();
    if (!blob) {
      ++errors;
      if (first_error.empty()) first_error = blob.error().to_string();
      if (errors > 100 && pushed == 0) break;  // nothing can be pushed: stop early
      continue;
    }
    call_latency.add(returned - t);
    unacked.emplace(*blob, t);
    ++pushed;
    take_events();
  }
  const double push_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const auto drain_deadline = Clock::now() + kDrainLimit;
  while (!unacked.empty() && Clock::now() < drain_deadline) {
    wakeup.wait_for(std::chrono::milliseconds(100));
    take_events();
  }
  const double ack_seconds = std::chrono::duration<double>(last_ack - start).count();

  nlohmann::json out;
  out["ok"] = errors == 0 && pushed > 0 && unacked.empty();
  out["pushes"] = pushed;
  out["acked"] = acked;
  out["errors"] = errors;
  out["push_calls_per_s"] = round_to(push_seconds > 0 ? static_cast<double>(pushed) / push_seconds : 0, 1);
  out["acked_per_s"] = round_to(ack_seconds > 0 ? static_cast<double>(acked) / ack_seconds : 0, 1);
  out["push_call_ms"] = call_latency.summary();
  out["ack_ms"] = ack_latency.summary();
  if (!first_error.empty()) out["error"] = first_error;
  return out;
}

}  // namespace blindsync::bench
