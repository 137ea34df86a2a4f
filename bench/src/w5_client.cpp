// W5 client path: the real blindsync::Client (local SQLite outbox, payload encryption, its own
// WebSocket transport) pushing payload-sized blobs for duration_s, end to end; then a new device
// pulling what was pushed (w5_client_pull.cpp); then pushes through the AsyncClient, pipelined
// (w5_async_client.cpp); then payload encryption throughput of crypto::seal_payload / open_payload against raw libsodium
// crypto_aead_xchacha20poly1305_ietf_encrypt / _decrypt on the same data sizes.
//
// No Asio here: the Client is synchronous and owns its own I/O.

#include <sodium.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>

#include "blindsync/client/client.h"
#include "blindsync/crypto/payload.h"
#include "blindsync/transport_ws/ws_transport.h"
#include "proc_stats.h"
#include "stats.h"
#include "w5_async_client.h"
#include "w5_client_pull.h"
#include "workloads.h"

namespace blindsync::bench {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMaxClientPushes = 10'000'000;
constexpr std::uint64_t kMaxCryptoIterations = 10'000'000;
constexpr int kCryptoRounds = 5;  // best of five, alternating ours and raw (robust to a busy machine)
// The payload AAD of payload.h: label || group_id || blob_id || sender_id.
constexpr std::size_t kAadBytes = sizeof("blindsync/v1/payload") - 1 + 32 + 16 + 32;

// Runs op until `budget` has elapsed (at least 3 times, at most kMaxCryptoIterations); bytes/s in MB.
template <typename Op>
double measure_mb_per_s(std::size_t bytes, std::chrono::duration<double> budget, Op&& op) {
  const auto start = Clock::now();
  std::uint64_t iterations = 0;
  while (iterations < kMaxCryptoIterations && (iterations < 3 || Clock::now() - start < budget)) {
    op();
    ++iterations;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return seconds > 0 ? static_cast<double>(bytes) * static_cast<double>(iterations) / 1e6 / seconds : 0.0;
}

double overhead_pct(double raw_mb_s, double ours_mb_s) {
  return ours_mb_s > 0 ? round_to((raw_mb_s / ours_mb_s - 1.0) * 100.0, 1) : 0.0;
}

nlohmann::json crypto_figures(std::size_t bytes, std::chrono::duration<double> budget) {
  const crypto::GroupKeys group = crypto::GroupKeys::derive(crypto::generate_group_secret());
  const crypto::PayloadContext context{group.group_id(), auth::random_id<BlobId>(), auth::random_id<DeviceId>()};
  Bytes plaintext(bytes);
  randombytes_buf(plaintext.data(), plaintext.size());
  const Bytes sealed = crypto::seal_payload(group.payload_key(), context, plaintext);

  // Raw libsodium: same key, same AAD length, a fresh random nonce per call, preallocated output.
  Bytes aad(kAadBytes);
  randombytes_buf(aad.data(), aad.size());
  Bytes raw_out(bytes + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  std::uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  randombytes_buf(nonce, sizeof nonce);
  Bytes raw_sealed(bytes + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long raw_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(raw_sealed.data(), &raw_len, plaintext.data(), plaintext.size(),
                                             aad.data(), aad.size(), nullptr, nonce, group.payload_key().data());
  Bytes raw_plain(bytes);

  double seal = 0, raw_encrypt = 0, open = 0, raw_decrypt = 0;
  bool opened_ok = true;
  for (int round = 0; round < kCryptoRounds; ++round) {
    raw_encrypt = std::max(raw_encrypt, measure_mb_per_s(bytes, budget, [&] {
      std::uint8_t n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
      randombytes_buf(n, sizeof n);
      unsigned long long len = 0;
      crypto_aead_xchacha20poly1305_ietf_encrypt(raw_out.data(), &len, plaintext.data(), plaintext.size(), aad.data(),
                                                 aad.size(), nullptr, n, group.payload_key().data());
    }));
    seal = std::max(seal, measure_mb_per_s(bytes, budget, [&] {
      const Bytes out = crypto::seal_payload(group.payload_key(), context, plaintext);
      if (out.empty()) opened_ok = false;
    }));
    raw_decrypt = std::max(raw_decrypt, measure_mb_per_s(bytes, budget, [&] {
      unsigned long long len = 0;
      if (crypto_aead_xchacha20poly1305_ietf_decrypt(raw_plain.data(), &len, nullptr, raw_sealed.data(), raw_len,
                                                     aad.data(), aad.size(), nonce, group.payload_key().data()) != 0) {
        opened_ok = false;
      }
    }));
    open = std::max(open, measure_mb_per_s(bytes, budget, [&] {
      auto out = crypto::open_payload(group.payload_key(), context, sealed);
      if (!out) opened_ok = false;
    }));
  }
  nlohmann::json row;
  row["bytes"] = bytes;
  row["seal_mb_s"] = round_to(seal, 1);
  row["raw_encrypt_mb_s"] = round_to(raw_encrypt, 1);
  row["seal_overhead_pct"] = overhead_pct(raw_encrypt, seal);
  row["open_mb_s"] = round_to(open, 1);
  row["raw_decrypt_mb_s"] = round_to(raw_decrypt, 1);
  row["open_overhead_pct"] = overhead_pct(raw_decrypt, open);
  row["verified"] = opened_ok;
  return row;
}

}  // namespace

nlohmann::json run_w5_client_path(const BenchConfig& config) {
  constexpr const char* kId = "w5";
  constexpr const char* kName = "client_path";
  if (sodium_init() < 0) return workload_failure(config, kId, kName, "sodium_init failed");
  nlohmann::json out = workload_header(config, kId, kName);

  std::string home_template = (std::filesystem::temp_directory_path() / "blindsync-bench-home-XXXXXX").string();
  if (::mkdtemp(home_template.data()) == nullptr) return workload_failure(config, kId, kName, "mkdtemp failed");
  const std::filesystem::path home = home_template;
  struct RemoveHome {
    std::filesystem::path path;
    ~RemoveHome() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } remove_home{home};

  ClientOptions options;
  options.transport = connect_websocket;
  auto client = Client::open((home / "device").string(), std::move(options));
  if (!client) return workload_failure(config, kId, kName, "Client::open: " + client.error().to_string());
  if (auto id = (*client)->create_identity("bench-w5"); !id) {
    return workload_failure(config, kId, kName, "create_identity: " + id.error().to_string());
  }
  auto created = (*client)->create_group(config.relay_url, "bench-w5");
  if (!created) return workload_failure(config, kId, kName, "create_group: " + created.error().to_string());
  const GroupId group_id = created->group.group_id;

  // The app's bytes: sized so that the sealed payload on the wire is payload_bytes.
  Bytes data(config.payload_bytes > crypto::kPayloadOverheadBytes ? config.payload_bytes - crypto::kPayloadOverheadBytes : 1);
  randombytes_buf(data.data(), data.size());

  ResourceMeter meter(config.relay_pid);
  LatencyRecorder latency(config.max_latency_samples);
  std::uint64_t pushed = 0, errors = 0;
  std::string first_error;
  meter.start();
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config.duration_s));
  for (std::uint64_t i = 0; i < kMaxClientPushes && Clock::now() < deadline; ++i) {
    const auto t = Clock::now();
    auto outcome = (*client)->push(group_id, data);
    if (outcome) {
      latency.add(Clock::now() - t);
      ++pushed;
    } else {
      ++errors;
      if (first_error.empty()) first_error = outcome.error().to_string();
      if (errors > 100 && pushed == 0) break;  // the relay is unreachable: stop early
    }
  }
  const double seconds = seconds_between(start, Clock::now());
  meter.stop();
  // The relay figures above are the synchronous Client's; the other halves run after them.
  nlohmann::json pull_rows = client_pull_figures(home / "reader", created->invite_link, pushed);
  nlohmann::json async_rows = async_client_figures(config, home / "async-device", data);

  const double budget_s = std::clamp(config.duration_s / 30.0, 0.03, 0.3);
  nlohmann::json crypto_rows = nlohmann::json::array();
  crypto_rows.push_back(crypto_figures(1024, std::chrono::duration<double>(budget_s)));
  crypto_rows.push_back(crypto_figures(1024 * 1024, std::chrono::duration<double>(budget_s)));

  bool crypto_ok = true;
  for (const auto& row : crypto_rows) crypto_ok = crypto_ok && row["verified"].get<bool>();
  out["ok"] = errors == 0 && pushed > 0 && crypto_ok && async_rows.value("ok", false) && pull_rows.value("ok", false);
  out["payload_bytes"] = config.payload_bytes;
  out["data_bytes"] = data.size();
  out["seconds"] = round_to(seconds, 3);
  out["pushes"] = pushed;
  out["push_per_s"] = round_to(seconds > 0 ? static_cast<double>(pushed) / seconds : 0, 1);
  out["errors"] = errors;
  out["latency_ms"] = latency.summary();
  out["crypto"] = crypto_rows;
  out["async"] = async_rows;
  out["pull"] = pull_rows;
  meter.report(out);
  if (!first_error.empty()) out["error"] = first_error;
  return out;
}

}  // namespace blindsync::bench
