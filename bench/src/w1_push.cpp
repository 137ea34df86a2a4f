// W1 push throughput: N connections over N groups, each a closed loop of
// PUSH (payload_bytes) -> wait for its PUSH_ACK -> repeat, for duration_s.
//
// The connections are opened with Beast (ProtoConn: the upgrade and the signed handshake); the
// measured loop then drives their sockets from one epoll loop on this thread (RawWsClient, and
// raw_ws.h for why), still making and reading every message with the library's codec.

#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <optional>
#include <variant>

#include "bench_support.h"
#include "blindsync/core/codec.h"
#include "proc_stats.h"
#include "raw_ws.h"
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
  // The measured loop's state.
  ProtoConn* conn = nullptr;
  std::optional<RawWsClient> socket;
  std::uint64_t next_sequence = 0;  // of the blob id (BlobIds)
  std::uint32_t request_id = 0;     // of the PUSH awaiting its PUSH_ACK
  Clock::time_point sent{};
  int stray_frames = 0;             // since that PUSH
  bool finished = false;
};

// Bounds one connection's loop even if the clock check were somehow skipped.
constexpr std::uint64_t kMaxPushesPerConnection = 50'000'000;
// Frames that are not the awaited PUSH_ACK (none are expected) tolerated per push.
constexpr int kMaxStrayFrames = 1000;
// How long after the deadline the last PUSH_ACKs may take.
constexpr auto kDrainLimit = std::chrono::seconds(30);

class PushLoops {
 public:
  PushLoops(std::vector<W1Conn*> conns, const BlobIds& ids, std::uint64_t first_sequence_shift,
            Clock::time_point deadline, DecodeLimits limits)
      : conns_(std::move(conns)), ids_(ids), shift_(first_sequence_shift), deadline_(deadline),
        limits_(limits) {}

  // Runs every connection until the deadline and its last PUSH_ACK; false if that took past
  // kDrainLimit (those connections fail).
  bool run() {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return fail_all(Status(Code::kIoError, "epoll_create1 failed"));
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      W1Conn& c = *conns_[i];
      c.next_sequence = std::uint64_t{i} << shift_;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.socket->fd(), &ev) != 0) {
        finish(c, Status(Code::kIoError, "epoll_ctl failed"));
        continue;
      }
      send_next(c, i);
    }
    const auto give_up = deadline_ + kDrainLimit;
    std::array<epoll_event, 64> events{};
    while (running_ > 0 && Clock::now() < give_up) {
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 100);
      for (int e = 0; e < n; ++e) {
        const std::size_t i = events[static_cast<std::size_t>(e)].data.u64;
        W1Conn& c = *conns_[i];
        if (c.finished) continue;
        if ((events[static_cast<std::size_t>(e)].events & EPOLLOUT) != 0) {
          if (Status s = c.socket->flush(); !s) {
            finish(c, s);
            continue;
          }
          watch(c, i);
        }
        on_readable(c, i);
      }
    }
    ::close(epoll_);
    if (running_ == 0) return true;
    for (W1Conn* c : conns_) {
      if (!c->finished) finish(*c, Status(Code::kTimeout, "no PUSH_ACK within 30 s of the end"));
    }
    return false;
  }

 private:
  bool fail_all(const Status& status) {
    for (W1Conn* c : conns_) finish(*c, status);
    return false;
  }

  void finish(W1Conn& c, const Status& status) {
    if (c.finished) return;
    c.finished = true;
    if (!status.is_ok()) c.failure = status;
    --running_;
  }

  // Waits for writability too while a frame is only partly written.
  void watch(W1Conn& c, std::size_t i) {
    epoll_event ev{};
    ev.events = EPOLLIN | (c.socket->wants_write() ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    (void)::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.socket->fd(), &ev);
  }

  void send_next(W1Conn& c, std::size_t i) {
    const auto now = Clock::now();
    if (now >= deadline_ || c.acked + c.errors >= kMaxPushesPerConnection) return finish(c, Status::ok());
    c.request_id = c.conn->next_request_id();
    const Bytes encoded = encode_frame(Frame{c.request_id, Push{ids_.make(c.next_sequence++), c.payload, 0}});
    c.stray_frames = 0;
    c.sent = Clock::now();
    if (Status s = c.socket->send(encoded); !s) return finish(c, s);
    if (c.socket->wants_write()) watch(c, i);
  }

  void on_readable(W1Conn& c, std::size_t i) {
    if (Status s = c.socket->read_some(); !s) return finish(c, s);
    for (;;) {
      auto message = c.socket->next_message();
      if (!message) return finish(c, message.status());
      if (!message->has_value()) return;
      auto frame = decode_frame(**message, limits_);
      if (!frame) return finish(c, frame.status());
      if (const auto* ack = std::get_if<PushAck>(&frame->message); ack && frame->request_id == c.request_id) {
        c.latency.add(Clock::now() - c.sent);
        ++c.acked;
        if (ack->duplicate) ++c.duplicates;
        send_next(c, i);
      } else if (const auto* error = std::get_if<Error>(&frame->message)) {
        ++c.errors;
        if (frame->request_id == c.request_id || error->request_id == c.request_id) send_next(c, i);
      } else if (const auto* bye = std::get_if<Bye>(&frame->message)) {
        return finish(c, Status(Code::kConnectionClosed,
                                "relay said BYE " + std::to_string(bye->code) + ": " + bye->reason));
      } else if (++c.stray_frames > kMaxStrayFrames) {
        return finish(c, Status(Code::kInvalidMessage, "too many unexpected frames while awaiting PUSH_ACK"));
      }
      if (c.finished) return;
    }
  }

  std::vector<W1Conn*> conns_;
  const BlobIds& ids_;
  const std::uint64_t shift_;
  const Clock::time_point deadline_;
  const DecodeLimits limits_;
  int epoll_ = -1;
  std::size_t running_ = conns_.size();
};

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
  bool in_time = true;
  {
    std::vector<W1Conn*> running;
    for (std::size_t i = 0; i < n; ++i) {
      if (!opened.statuses[i]) continue;
      auto fd = conns[i]->release_socket();
      if (!fd) {
        states[i]->failure = fd.status();
        continue;
      }
      states[i]->conn = conns[i].get();
      states[i]->socket.emplace(*fd);
      running.push_back(states[i].get());
    }
    PushLoops loops(std::move(running), ids, 40, deadline, bench_decode_limits());
    in_time = loops.run();
  }
  const auto end = Clock::now();
  meter.stop();
  const auto metrics_after = scrape_metrics(*target);
  for (auto& state : states) state->socket.reset();  // close frames, then the sockets
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
