#include "bench_support.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "blindsync/crypto/payload.h"
#include "stats.h"

namespace blindsync::bench {

crypto::GroupKeys make_group() { return crypto::GroupKeys::derive(crypto::generate_group_secret()); }

BlobIds::BlobIds() {
  auth::random_fill(std::span<std::uint8_t>(tag_, sizeof tag_));
  tag_[0] = static_cast<std::uint8_t>(0x70 | (tag_[0] & 0x0f));  // version nibble 7, as UUIDv7
}

BlobId BlobIds::make(std::uint64_t sequence) const {
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  BlobId::Array bytes{};
  for (int i = 0; i < 6; ++i) bytes[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  bytes[6] = tag_[0];
  bytes[7] = tag_[1];
  for (int i = 0; i < 8; ++i) bytes[8 + i] = static_cast<std::uint8_t>(sequence >> (8 * (7 - i)));
  return BlobId(bytes);
}

std::optional<std::uint64_t> BlobIds::sequence_of(const BlobId& id) const {
  const auto& b = id.bytes();
  if (b[6] != tag_[0] || b[7] != tag_[1]) return std::nullopt;
  std::uint64_t sequence = 0;
  for (int i = 0; i < 8; ++i) sequence = (sequence << 8) | b[8 + i];
  return sequence;
}

Bytes make_sealed_payload(const crypto::GroupKeys& group, const DeviceId& sender, std::size_t wire_bytes) {
  const std::size_t plain = wire_bytes > crypto::kPayloadOverheadBytes ? wire_bytes - crypto::kPayloadOverheadBytes : 0;
  Bytes plaintext(plain);
  auth::random_fill(plaintext);  // incompressible, like real ciphertext-bound data
  const crypto::PayloadContext context{group.group_id(), auth::random_id<BlobId>(), sender};
  return crypto::seal_payload(group.payload_key(), context, plaintext);
}

std::optional<asio::ip::address> source_address(const WsTarget& target, std::size_t index,
                                                std::size_t conns_per_ip) {
  if (!target.loopback_v4 || conns_per_ip == 0) return std::nullopt;
  // 127.0.0.1 + slot, skipping .0 and .255 host bytes; 127.0.0.0/8 is all loopback on Linux.
  const std::size_t slot = index / conns_per_ip;
  const std::size_t third = slot / 254;
  const std::size_t fourth = 1 + slot % 254;
  const std::uint32_t ip = (127u << 24) | (static_cast<std::uint32_t>(third % 256) << 8) | static_cast<std::uint32_t>(fourth);
  return asio::ip::address(asio::ip::address_v4(ip));
}

DeviceId device_id_of(const auth::SigningKey& key) { return DeviceId(key.public_key()); }

bool run_phase(asio::io_context& ioc, unsigned threads, std::chrono::milliseconds limit,
               const std::function<void()>& on_overrun) {
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  bool overran = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    if (cv.wait_for(lock, limit, [&] { return finished; })) return;
    overran = true;
    lock.unlock();
    on_overrun();
    lock.lock();
    if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return finished; })) ioc.stop();
  });
  std::vector<std::thread> extra;
  for (unsigned i = 1; i < threads; ++i) extra.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : extra) t.join();
  {
    std::lock_guard lock(mu);
    finished = true;
  }
  cv.notify_all();
  watchdog.join();
  ioc.restart();
  return !overran;
}

void spawn_bounded(asio::io_context& ioc, std::size_t n, std::size_t concurrency,
                   std::function<Executor(std::size_t)> strand_of,
                   std::function<awaitable<void>(std::size_t)> fn) {
  struct Shared {
    std::atomic<std::size_t> next{0};
    std::size_t n;
    std::function<Executor(std::size_t)> strand_of;
    std::function<awaitable<void>(std::size_t)> fn;
  };
  auto shared = std::make_shared<Shared>();
  shared->n = n;
  shared->strand_of = std::move(strand_of);
  shared->fn = std::move(fn);
  const std::size_t workers = std::min(n, std::max<std::size_t>(concurrency, 1));
  for (std::size_t w = 0; w < workers; ++w) {
    asio::co_spawn(
        asio::make_strand(ioc),
        [shared]() -> awaitable<void> {
          for (std::size_t i = shared->next++; i < shared->n; i = shared->next++) {
            // Named, not temporaries inside the co_await: GCC 12 mishandles the lifetime of
            // non-trivial temporaries in co_await expressions.
            Executor strand = shared->strand_of(i);
            awaitable<void> task = shared->fn(i);
            co_await asio::co_spawn(strand, std::move(task), asio::use_awaitable);
          }
        },
        asio::detached);
  }
}

void cancel_all(const std::vector<std::shared_ptr<ProtoConn>>& conns) {
  for (const auto& conn : conns) {
    if (conn) conn->cancel();
  }
}

}  // namespace blindsync::bench

namespace blindsync::bench {

OpenOutcome open_all(asio::io_context& ioc, const BenchConfig& config, const WsTarget& target, std::size_t n,
                     const std::function<OpenPlan(std::size_t)>& plan,
                     std::vector<std::shared_ptr<ProtoConn>>& conns, std::chrono::milliseconds limit) {
  OpenOutcome outcome;
  outcome.statuses.assign(n, Status(Code::kTimeout, "not opened"));
  conns.clear();
  conns.reserve(n);
  for (std::size_t i = 0; i < n; ++i) conns.push_back(std::make_shared<ProtoConn>(asio::make_strand(ioc)));
  const auto start = Clock::now();
  spawn_bounded(
      ioc, n, config.connect_concurrency, [&](std::size_t i) { return conns[i]->executor(); },
      [&](std::size_t i) -> awaitable<void> {
        const OpenPlan p = plan(i);
        OpenOptions options;
        options.local_address = source_address(target, i, config.conns_per_ip);
        options.pinned_relay_id = config.relay_id;
        options.device_name = p.device_name;
        options.last_cursor = p.last_cursor;
        outcome.statuses[i] = co_await conns[i]->open(target, *p.device_key, *p.group_key, options);
      });
  run_phase(ioc, config.threads, limit, [&] { cancel_all(conns); });
  outcome.seconds = seconds_between(start, Clock::now());
  for (const auto& s : outcome.statuses) {
    if (s.is_ok()) {
      ++outcome.opened;
    } else if (outcome.first_error.empty()) {
      outcome.first_error = s.to_string();
    }
  }
  return outcome;
}

void close_all(asio::io_context& ioc, unsigned threads, const std::vector<std::shared_ptr<ProtoConn>>& conns) {
  for (const auto& conn : conns) {
    asio::co_spawn(conn->executor(), [conn]() -> awaitable<void> { co_await conn->close(); }, asio::detached);
  }
  run_phase(ioc, threads, std::chrono::seconds(10), [&] { cancel_all(conns); });
}

}  // namespace blindsync::bench
