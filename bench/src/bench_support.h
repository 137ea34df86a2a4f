// Shared pieces of the protocol workloads (W1-W4): key material made up front, time-ordered blob
// ids that carry a sequence number, sealed payloads, source-address spreading, and PhaseRunner, which
// runs an io_context on N threads for one phase with a watchdog that cancels stuck connections.
//
// Thread-safety: PhaseRunner::run from one thread at a time; Keys and payloads are read-only once
// made; BlobIds is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asio.h"
#include "bench_config.h"
#include "blindsync/auth/identity.h"
#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/crypto/group_keys.h"
#include "proto_conn.h"

namespace blindsync::bench {

using Clock = std::chrono::steady_clock;

// A group made the real way: GroupKeys::derive(generate_group_secret()).
crypto::GroupKeys make_group();

// Blob ids: 6 bytes of Unix milliseconds (time-ordered like UUIDv7), a version nibble and a
// run-random tag, then a 64-bit sequence number, so a reader can map a NOTIFY back to its send time.
class BlobIds {
 public:
  BlobIds();
  BlobId make(std::uint64_t sequence) const;
  // The sequence number, or nullopt if the id was not made by this generator.
  std::optional<std::uint64_t> sequence_of(const BlobId& id) const;

 private:
  std::uint8_t tag_[2];
};

// One payload sealed with crypto::seal_payload so that it is exactly `wire_bytes` long (the
// plaintext is wire_bytes - 40). Made once up front and reused: the relay never opens payloads.
Bytes make_sealed_payload(const crypto::GroupKeys& group, const DeviceId& sender, std::size_t wire_bytes);

// Source address of connection number `index`: 127.0.(x).(y) with conns_per_ip connections each,
// when the relay is on IPv4 loopback and spreading is on; nullopt otherwise.
std::optional<asio::ip::address> source_address(const WsTarget& target, std::size_t index,
                                                std::size_t conns_per_ip);

DeviceId device_id_of(const auth::SigningKey& key);

// Runs ioc on `threads` threads until it has no work left (one phase of a workload). If that takes
// longer than `limit`, calls on_overrun (which should cancel connections) and, 5 s later, stops the
// io_context. Returns false when the limit was hit.
bool run_phase(asio::io_context& ioc, unsigned threads, std::chrono::milliseconds limit,
               const std::function<void()>& on_overrun);

// Spawns fn(i) for i in [0, n) with at most `concurrency` in flight, each on its strand
// strands[i]; `done` counts finished calls. Returns immediately; run the io_context to progress.
void spawn_bounded(asio::io_context& ioc, std::size_t n, std::size_t concurrency,
                   std::function<Executor(std::size_t)> strand_of,
                   std::function<awaitable<void>(std::size_t)> fn);

// Cancels every connection (posts to each one's strand).
void cancel_all(const std::vector<std::shared_ptr<ProtoConn>>& conns);

// What connection i authenticates as.
struct OpenPlan {
  const auth::SigningKey* device_key = nullptr;
  const auth::SigningKey* group_key = nullptr;
  std::string device_name = "bench";
  Cursor last_cursor = 0;
};

struct OpenOutcome {
  std::vector<Status> statuses;  // one per connection
  std::size_t opened = 0;
  std::string first_error;       // empty when all opened
  double seconds = 0;
};

// Makes conns[i] (each on its own strand) and runs the handshake of every one, at most
// config.connect_concurrency at a time, within `limit`.
OpenOutcome open_all(asio::io_context& ioc, const BenchConfig& config, const WsTarget& target, std::size_t n,
                     const std::function<OpenPlan(std::size_t)>& plan,
                     std::vector<std::shared_ptr<ProtoConn>>& conns, std::chrono::milliseconds limit);

// WebSocket close handshake on every open connection, bounded (cancels what remains).
void close_all(asio::io_context& ioc, unsigned threads, const std::vector<std::shared_ptr<ProtoConn>>& conns);

}  // namespace blindsync::bench
