// W2 fan-out latency: one group, one writer and R connected readers. The writer pushes at a fixed
// rate (open loop, paced by a timer); each reader times the NOTIFY of every blob from the moment the
// writer handed the PUSH to the socket, and records the cursors it saw so that any message a reader
// missed is counted.

#include <algorithm>
#include <atomic>
#include <variant>

#include "bench_support.h"
#include "blindsync/core/codec.h"
#include "proc_stats.h"
#include "relay_metrics.h"
#include "stats.h"
#include "workloads.h"

namespace blindsync::bench {

namespace {

constexpr std::uint64_t kMaxMessages = 10'000'000;
// After the last push, how long readers and acks may take before the run is cut.
constexpr auto kDrainGrace = std::chrono::seconds(10);

std::int64_t now_ns() { return Clock::now().time_since_epoch().count(); }

struct Reader {
  explicit Reader(std::size_t capacity) : latency(capacity) {}
  auth::SigningKey device = auth::SigningKey::generate();
  LatencyRecorder latency;
  std::vector<Cursor> seen;
  std::uint64_t without_payload = 0;
  std::uint64_t foreign = 0;  // NOTIFYs of blobs this run did not push
  Status failure;
};

struct Shared {
  Shared(std::uint64_t messages, std::size_t capacity) : send_ns(messages), ack_cursor(messages, 0), ack_latency(capacity) {}
  std::vector<std::atomic<std::int64_t>> send_ns;  // written by the writer, read by readers
  std::vector<Cursor> ack_cursor;                  // writer strand only
  LatencyRecorder ack_latency;                     // writer strand only
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> answered{0};  // PUSH_ACK or ERROR
  std::atomic<std::uint64_t> errors{0};
  std::atomic<bool> sender_done{false};
  std::atomic<std::size_t> readers_done{0};
  std::atomic<bool> stopping{false};
  Status writer_failure;
};

awaitable<void> reader_loop(ProtoConn& conn, Reader& reader, Shared& shared, const BlobIds& ids,
                            std::uint64_t messages) {
  std::uint64_t received = 0;
  // Each iteration consumes one frame; a reader gets at most one NOTIFY per message plus a few others.
  for (std::uint64_t frames = 0; received < messages && frames < 2 * messages + 1000; ++frames) {
    auto frame = co_await conn.receive();
    const std::int64_t at = now_ns();
    if (!frame) {
      if (!shared.stopping) reader.failure = frame.status();
      break;
    }
    if (const auto* notify = std::get_if<Notify>(&frame->message)) {
      const auto sequence = ids.sequence_of(notify->blob_id);
      if (!sequence || *sequence >= messages) {
        ++reader.foreign;
        continue;
      }
      ++received;
      reader.seen.push_back(notify->cursor);
      if (!notify->payload) ++reader.without_payload;
      const std::int64_t sent = shared.send_ns[*sequence].load(std::memory_order_acquire);
      if (sent != 0) reader.latency.add(std::chrono::nanoseconds(at - sent));
    } else if (const auto* bye = std::get_if<Bye>(&frame->message)) {
      reader.failure = Status(Code::kConnectionClosed, "relay said BYE " + std::to_string(bye->code) + ": " + bye->reason);
      break;
    } else if (const auto* error = std::get_if<Error>(&frame->message)) {
      reader.failure = status_from_error(*error);
    }
  }
  ++shared.readers_done;
}

awaitable<void> writer_send_loop(ProtoConn& conn, Shared& shared, const BlobIds& ids, const Bytes& payload,
                                 std::uint64_t messages, double rate, Clock::time_point start,
                                 Clock::time_point hard_stop) {
  asio::steady_timer timer(conn.executor());
  const auto period = std::chrono::duration<double>(1.0 / rate);
  for (std::uint64_t i = 0; i < messages && !shared.stopping; ++i) {
    const auto due = start + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(i));
    if (due > hard_stop) break;
    if (Clock::now() < due) {
      timer.expires_at(due);
      error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    const Bytes encoded = encode_frame(Frame{conn.next_request_id(), Push{ids.make(i), payload, 0}});
    shared.send_ns[i].store(now_ns(), std::memory_order_release);
    if (Status s = co_await conn.send_encoded(encoded); !s) {
      shared.writer_failure = s;
      break;
    }
    ++shared.sent;
  }
  shared.sender_done = true;
}

awaitable<void> writer_ack_loop(ProtoConn& conn, Shared& shared, const BlobIds& ids, std::uint64_t messages) {
  while (shared.answered < messages) {
    auto frame = co_await conn.receive();
    const std::int64_t at = now_ns();
    if (!frame) {
      if (!shared.stopping && shared.writer_failure.is_ok()) shared.writer_failure = frame.status();
      co_return;
    }
    if (const auto* ack = std::get_if<PushAck>(&frame->message)) {
      const auto sequence = ids.sequence_of(ack->blob_id);
      if (!sequence || *sequence >= messages) continue;
      shared.ack_cursor[*sequence] = ack->cursor;
      shared.ack_latency.add(std::chrono::nanoseconds(at - shared.send_ns[*sequence].load()));
      ++shared.answered;
    } else if (std::get_if<Error>(&frame->message) != nullptr) {
      ++shared.errors;
      ++shared.answered;
    } else if (const auto* bye = std::get_if<Bye>(&frame->message)) {
      shared.writer_failure = Status(Code::kConnectionClosed, "relay said BYE to the writer: " + bye->reason);
      co_return;
    }
  }
}

// Waits until everything sent is answered and every reader saw every message (or the grace runs
// out), then cancels whatever is still waiting.
awaitable<void> coordinator(Shared& shared, std::uint64_t messages, std::size_t readers, const std::vector<std::shared_ptr<ProtoConn>>& conns,
                            Executor executor) {
  asio::steady_timer timer(executor);
  std::optional<Clock::time_point> drain_deadline;
  bool clean = false;
  for (;;) {
    const bool sender_done = shared.sender_done;
    if (sender_done && !drain_deadline) drain_deadline = Clock::now() + kDrainGrace;
    if (sender_done && shared.answered >= shared.sent && shared.readers_done >= readers) {
      clean = true;
      break;
    }
    if (drain_deadline && Clock::now() > *drain_deadline) break;
    timer.expires_after(std::chrono::milliseconds(5));
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  shared.stopping = true;
  // A clean finish leaves only the ack loop waiting, and only if the sender stopped early.
  if (!clean || shared.answered < messages) cancel_all(conns);
}

}  // namespace

nlohmann::json run_w2_fanout_latency(const BenchConfig& config) {
  constexpr const char* kId = "w2";
  constexpr const char* kName = "fanout_latency";
  auto target = resolve_ws_url(config.relay_url);
  if (!target) return workload_failure(config, kId, kName, target.error().to_string());
  if (config.w2_rate <= 0) return workload_failure(config, kId, kName, "--w2-rate must be positive");
  const std::size_t readers_n = config.w2_readers;
  const std::uint64_t messages =
      std::clamp<std::uint64_t>(static_cast<std::uint64_t>(config.w2_rate * config.duration_s), 1, kMaxMessages);

  const crypto::GroupKeys group = make_group();
  const auth::SigningKey writer_key = auth::SigningKey::generate();
  const Bytes payload = make_sealed_payload(group, device_id_of(writer_key), config.payload_bytes);
  const BlobIds ids;
  const std::size_t capacity = config.max_latency_samples / (readers_n + 1);
  std::vector<std::unique_ptr<Reader>> readers;
  for (std::size_t i = 0; i < readers_n; ++i) readers.push_back(std::make_unique<Reader>(capacity));
  Shared shared(messages, capacity);

  asio::io_context ioc;
  std::vector<std::shared_ptr<ProtoConn>> conns;  // [0, R) readers, R the writer
  const OpenOutcome opened = open_all(
      ioc, config, *target, readers_n + 1,
      [&](std::size_t i) {
        if (i == readers_n) return OpenPlan{&writer_key, &group.auth_key(), "bench-w2-writer", 0};
        return OpenPlan{&readers[i]->device, &group.auth_key(), "bench-w2-reader-" + std::to_string(i), 0};
      },
      conns, std::chrono::seconds(60));
  if (!opened.statuses[readers_n]) {
    close_all(ioc, config.threads, conns);
    return workload_failure(config, kId, kName, "writer did not connect: " + opened.statuses[readers_n].to_string());
  }

  ResourceMeter meter(config.relay_pid);
  const auto metrics_before = scrape_metrics(*target);
  meter.start();
  std::size_t live_readers = 0;
  for (std::size_t i = 0; i < readers_n; ++i) {
    if (!opened.statuses[i]) continue;
    ++live_readers;
    asio::co_spawn(conns[i]->executor(), reader_loop(*conns[i], *readers[i], shared, ids, messages), asio::detached);
  }
  ProtoConn& writer = *conns[readers_n];
  // Small head start so that every reader has a read posted before the first push.
  const auto start = Clock::now() + std::chrono::milliseconds(50);
  const auto hard_stop = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config.duration_s)) +
                         std::chrono::seconds(5);
  asio::co_spawn(writer.executor(), writer_ack_loop(writer, shared, ids, messages), asio::detached);
  asio::co_spawn(writer.executor(),
                 writer_send_loop(writer, shared, ids, payload, messages, config.w2_rate, start, hard_stop),
                 asio::detached);
  asio::co_spawn(writer.executor(), coordinator(shared, messages, live_readers, conns, writer.executor()), asio::detached);
  const auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(hard_stop - Clock::now()) + kDrainGrace +
                     std::chrono::seconds(10);
  const bool in_time = run_phase(ioc, config.threads, limit, [&] {
    shared.stopping = true;
    cancel_all(conns);
  });
  const auto end = Clock::now();
  meter.stop();
  const auto metrics_after = scrape_metrics(*target);
  close_all(ioc, config.threads, conns);

  // Every cursor the relay acknowledged must have reached every connected reader.
  std::vector<Cursor> acked;
  for (std::uint64_t i = 0; i < shared.sent; ++i) {
    if (shared.ack_cursor[i] != 0) acked.push_back(shared.ack_cursor[i]);
  }
  std::sort(acked.begin(), acked.end());
  LatencyRecorder latency(config.max_latency_samples);
  std::uint64_t received = 0, lost = 0, without_payload = 0, foreign = 0, reader_failures = 0;
  std::string first_failure = shared.writer_failure.is_ok() ? "" : "writer: " + shared.writer_failure.to_string();
  for (std::size_t i = 0; i < readers_n; ++i) {
    if (!opened.statuses[i]) continue;
    Reader& reader = *readers[i];
    latency.merge(reader.latency);
    received += reader.seen.size();
    without_payload += reader.without_payload;
    foreign += reader.foreign;
    std::sort(reader.seen.begin(), reader.seen.end());
    reader.seen.erase(std::unique(reader.seen.begin(), reader.seen.end()), reader.seen.end());
    std::vector<Cursor> missing;
    std::set_difference(acked.begin(), acked.end(), reader.seen.begin(), reader.seen.end(), std::back_inserter(missing));
    lost += missing.size();
    if (!reader.failure.is_ok()) {
      ++reader_failures;
      if (first_failure.empty()) first_failure = "reader: " + reader.failure.to_string();
    }
  }
  const double seconds = seconds_between(start, end);
  nlohmann::json out = workload_header(config, kId, kName);
  out["ok"] = in_time && opened.opened == readers_n + 1 && lost == 0 && acked.size() == shared.sent &&
              shared.sent == messages && reader_failures == 0 && shared.writer_failure.is_ok();
  out["readers"] = readers_n;
  out["readers_connected"] = live_readers;
  out["rate_per_s"] = config.w2_rate;
  out["payload_bytes"] = config.payload_bytes;
  out["planned"] = messages;
  out["sent"] = shared.sent.load();
  out["acked"] = acked.size();
  out["errors"] = shared.errors.load();
  out["seconds"] = round_to(seconds, 3);
  out["notifies_expected"] = static_cast<std::uint64_t>(acked.size()) * live_readers;
  out["notifies_received"] = received;
  out["lost"] = lost;
  out["without_payload"] = without_payload;
  out["foreign_notifies"] = foreign;
  out["latency_ms"] = latency.summary();
  out["ack_latency_ms"] = shared.ack_latency.summary();
  meter.report(out);
  out["relay_metrics"] = metrics_delta_json(metrics_before, metrics_after);
  if (!opened.first_error.empty()) out["open_error"] = opened.first_error;
  if (!first_failure.empty()) out["error"] = first_failure;
  return out;
}

}  // namespace blindsync::bench
