// LatencyRecorder: a bounded sample of latencies with exact count, mean and max, and the
// percentiles the bench reports (nearest rank on a sorted vector).
//
// Memory is bounded: past `capacity` samples it keeps a uniform reservoir sample (Vitter's
// algorithm R), so p50/p99 stay unbiased estimates while count, mean, min and max stay exact.
// Thread-safety: none; each connection owns its recorder and they are merged once the run is over.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace blindsync::bench {

class LatencyRecorder {
 public:
  explicit LatencyRecorder(std::size_t capacity = 1 << 20);

  void add(std::chrono::nanoseconds latency);
  // Adds other's samples (concatenation of reservoirs) and its exact aggregates.
  void merge(const LatencyRecorder& other);

  std::uint64_t count() const noexcept { return count_; }
  // {"count", "p50_ms", "p99_ms", "max_ms", "min_ms", "mean_ms"}; zeros when empty.
  nlohmann::json summary() const;
  // Percentile p in [0, 1] of the samples, in milliseconds (0 when empty).
  double percentile_ms(double p) const;

 private:
  std::size_t capacity_;
  std::vector<std::int64_t> samples_;  // nanoseconds
  std::uint64_t count_ = 0;
  std::int64_t max_ns_ = 0;
  std::int64_t min_ns_ = 0;
  long double sum_ns_ = 0;
  std::uint64_t rng_state_ = 0x9e3779b97f4a7c15ull;
};

double to_ms(std::chrono::nanoseconds d);
double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b);
// Rounds to `digits` decimals for readable JSON.
double round_to(double value, int digits);

}  // namespace blindsync::bench
