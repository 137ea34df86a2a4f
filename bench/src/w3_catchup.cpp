// W3 catch-up: preload P blobs into one group with pipelined pushes (a window of W in flight), then
// a fresh device of the same group pulls from cursor 0, one page of `page_limit` after another
// (up to `pull_pages` of them back to back per PULL, as the client library asks),
// until has_more is false. Reports the pull's seconds and MB/s, and checks it got every blob once.

#include <algorithm>
#include <variant>

#include "bench_support.h"
#include "blindsync/core/codec.h"
#include "proc_stats.h"
#include "stats.h"
#include "workloads.h"

namespace blindsync::bench {

namespace {

struct Preload {
  std::uint64_t sent = 0;
  std::uint64_t acked = 0;
  std::uint64_t errors = 0;
  Cursor max_cursor = 0;
  std::string first_error;
  Status failure;
};

struct PullRun {
  std::uint64_t blobs = 0;
  std::uint64_t payload_bytes = 0;
  std::uint64_t pages = 0;
  std::uint64_t requests = 0;  // PULLs sent (each may get several pages: Pull::pages)
  std::uint64_t gaps = 0;  // cursors not exactly previous + 1
  Cursor last_cursor = 0;
  Cursor max_cursor = 0;
  bool finished = false;  // saw has_more = false
  Status failure;
};

// One coroutine: keeps up to `window` PUSHes in flight and reads one answer per loop turn.
awaitable<void> preload_loop(ProtoConn& conn, Preload& state, const BlobIds& ids, const Bytes& payload,
                             std::uint64_t count, std::size_t window, Clock::time_point deadline) {
  const std::size_t in_flight_max = std::max<std::size_t>(window, 1);
  while (state.acked + state.errors < count) {
    if (Clock::now() > deadline) {
      state.failure = Status(Code::kTimeout, "preload did not finish in time");
      co_return;
    }
    while (state.sent < count && state.sent - state.acked - state.errors < in_flight_max) {
      const Bytes encoded = encode_frame(Frame{conn.next_request_id(), Push{ids.make(state.sent), payload, 0}});
      if (Status s = co_await conn.send_encoded(encoded); !s) {
        state.failure = s;
        co_return;
      }
      ++state.sent;
    }
    auto frame = co_await conn.receive();
    if (!frame) {
      state.failure = frame.status();
      co_return;
    }
    if (const auto* ack = std::get_if<PushAck>(&frame->message)) {
      ++state.acked;
      state.max_cursor = std::max(state.max_cursor, ack->cursor);
    } else if (const auto* error = std::get_if<Error>(&frame->message)) {
      ++state.errors;
      if (state.first_error.empty()) state.first_error = status_from_error(*error).to_string();
    } else if (const auto* bye = std::get_if<Bye>(&frame->message)) {
      state.failure = Status(Code::kConnectionClosed, "relay said BYE: " + bye->reason);
      co_return;
    }
  }
}

awaitable<void> pull_loop(ProtoConn& conn, PullRun& run, std::uint32_t page_limit, std::uint32_t pages_per_pull,
                          std::uint64_t max_pages, Clock::time_point deadline) {
  Cursor after = 0;
  bool continues = false;  // the last page said another follows for the same PULL
  std::uint32_t request_id = 0;
  while (run.pages < max_pages) {
    if (Clock::now() > deadline) {
      run.failure = Status(Code::kTimeout, "pull did not finish in time");
      co_return;
    }
    if (!continues) {
      request_id = conn.next_request_id();
      const Frame pull{request_id, Pull{after, page_limit, pages_per_pull}};  // named: see proto_conn.cpp on GCC 12
      if (Status s = co_await conn.send(pull); !s) {
        run.failure = s;
        co_return;
      }
      ++run.requests;
    }
    auto frame = co_await conn.receive();
    if (!frame) {
      run.failure = frame.status();
      co_return;
    }
    if (const auto* error = std::get_if<Error>(&frame->message)) {
      run.failure = status_from_error(*error);
      co_return;
    }
    const auto* page = std::get_if<PullResponse>(&frame->message);
    if (page == nullptr || frame->request_id != request_id) {
      run.failure = Status(Code::kInvalidMessage, "expected the PULL_RESPONSE, got " +
                                                      std::string(message_type_name(frame->type())));
      co_return;
    }
    ++run.pages;
    for (const auto& blob : page->blobs) {
      if (blob.cursor != run.last_cursor + 1) ++run.gaps;
      run.last_cursor = blob.cursor;
      run.payload_bytes += blob.payload.size();
      ++run.blobs;
    }
    run.max_cursor = page->max_cursor;
    continues = page->continues;
    if (!page->has_more) {
      run.finished = true;
      co_return;
    }
    if (page->blobs.empty()) {
      run.failure = Status(Code::kInvalidMessage, "empty page with has_more=true");
      co_return;
    }
    after = page->blobs.back().cursor;
  }
  run.failure = Status(Code::kInvalidState, "page bound reached before has_more=false");
}

}  // namespace

nlohmann::json run_w3_catch_up(const BenchConfig& config) {
  constexpr const char* kId = "w3";
  constexpr const char* kName = "catch_up";
  auto target = resolve_ws_url(config.relay_url);
  if (!target) return workload_failure(config, kId, kName, target.error().to_string());
  const std::uint64_t count = std::max<std::uint64_t>(config.preload, 1);
  const std::uint32_t page_limit = std::max<std::uint32_t>(config.page_limit, 1);

  const crypto::GroupKeys group = make_group();
  const auth::SigningKey writer_key = auth::SigningKey::generate();
  const auth::SigningKey reader_key = auth::SigningKey::generate();
  const Bytes payload = make_sealed_payload(group, device_id_of(writer_key), config.payload_bytes);
  const BlobIds ids;

  asio::io_context ioc;
  nlohmann::json out = workload_header(config, kId, kName);
  out["preload"] = count;
  out["payload_bytes"] = config.payload_bytes;
  out["page_limit"] = page_limit;

  // Preload.
  std::vector<std::shared_ptr<ProtoConn>> writer_conns;
  const OpenOutcome writer_open = open_all(
      ioc, config, *target, 1, [&](std::size_t) { return OpenPlan{&writer_key, &group.auth_key(), "bench-w3-writer", 0}; },
      writer_conns, std::chrono::seconds(30));
  if (writer_open.opened != 1) return workload_failure(config, kId, kName, "writer: " + writer_open.first_error);
  Preload preload;
  // A generous bound: 100k pushes take seconds on a healthy relay; minutes mean something is wrong.
  const auto preload_limit = std::chrono::seconds(120) + std::chrono::milliseconds(count / 10);
  const auto preload_start = Clock::now();
  asio::co_spawn(writer_conns[0]->executor(),
                 preload_loop(*writer_conns[0], preload, ids, payload, count, config.window, preload_start + preload_limit),
                 asio::detached);
  run_phase(ioc, config.threads, preload_limit + std::chrono::seconds(10), [&] { cancel_all(writer_conns); });
  const double preload_seconds = seconds_between(preload_start, Clock::now());
  close_all(ioc, config.threads, writer_conns);
  out["preload_acked"] = preload.acked;
  out["preload_errors"] = preload.errors;
  out["preload_s"] = round_to(preload_seconds, 3);
  out["preload_per_s"] = round_to(preload_seconds > 0 ? static_cast<double>(preload.acked) / preload_seconds : 0, 1);
  out["window"] = config.window;
  if (!preload.failure.is_ok() || preload.acked == 0) {
    out["ok"] = false;
    out["error"] = "preload: " + (preload.failure.is_ok() ? preload.first_error : preload.failure.to_string());
    return out;
  }

  // Catch-up pull by a fresh device.
  std::vector<std::shared_ptr<ProtoConn>> reader_conns;
  const OpenOutcome reader_open = open_all(
      ioc, config, *target, 1, [&](std::size_t) { return OpenPlan{&reader_key, &group.auth_key(), "bench-w3-reader", 0}; },
      reader_conns, std::chrono::seconds(30));
  if (reader_open.opened != 1) return workload_failure(config, kId, kName, "reader: " + reader_open.first_error);
  ResourceMeter meter(config.relay_pid);
  PullRun run;
  const auto pull_limit = std::chrono::seconds(120);
  const std::uint64_t max_pages = count / page_limit + 1000;
  meter.start();
  const auto start = Clock::now();
  asio::co_spawn(reader_conns[0]->executor(),
                 pull_loop(*reader_conns[0], run, page_limit, config.pull_pages, max_pages, start + pull_limit),
                 asio::detached);
  run_phase(ioc, config.threads, pull_limit + std::chrono::seconds(10), [&] { cancel_all(reader_conns); });
  const double seconds = seconds_between(start, Clock::now());
  meter.stop();
  close_all(ioc, config.threads, reader_conns);

  out["ok"] = run.failure.is_ok() && run.finished && preload.acked == count && run.blobs == preload.acked && run.gaps == 0;
  out["pulled"] = run.blobs;
  out["pages"] = run.pages;
  out["pull_requests"] = run.requests;
  out["pages_per_pull"] = config.pull_pages;
  out["gaps"] = run.gaps;
  out["pull_s"] = round_to(seconds, 4);
  out["pulled_bytes"] = run.payload_bytes;
  out["mb_per_s"] = round_to(seconds > 0 ? static_cast<double>(run.payload_bytes) / 1e6 / seconds : 0, 2);
  out["blobs_per_s"] = round_to(seconds > 0 ? static_cast<double>(run.blobs) / seconds : 0, 1);
  meter.report(out);
  if (!run.failure.is_ok()) out["error"] = run.failure.to_string();
  return out;
}

}  // namespace blindsync::bench
