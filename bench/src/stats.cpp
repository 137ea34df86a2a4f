#include "stats.h"

#include <algorithm>
#include <cmath>

namespace blindsync::bench {

LatencyRecorder::LatencyRecorder(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {}

void LatencyRecorder::add(std::chrono::nanoseconds latency) {
  const std::int64_t ns = latency.count();
  if (count_ == 0 || ns > max_ns_) max_ns_ = ns;
  if (count_ == 0 || ns < min_ns_) min_ns_ = ns;
  ++count_;
  sum_ns_ += ns;
  if (samples_.size() < capacity_) {
    samples_.push_back(ns);
    return;
  }
  // Algorithm R: keep the new sample with probability capacity / count (xorshift64 is plenty here).
  rng_state_ ^= rng_state_ << 13;
  rng_state_ ^= rng_state_ >> 7;
  rng_state_ ^= rng_state_ << 17;
  const std::uint64_t slot = rng_state_ % count_;
  if (slot < capacity_) samples_[slot] = ns;
}

void LatencyRecorder::merge(const LatencyRecorder& other) {
  if (other.count_ == 0) return;
  if (count_ == 0 || other.max_ns_ > max_ns_) max_ns_ = other.max_ns_;
  if (count_ == 0 || other.min_ns_ < min_ns_) min_ns_ = other.min_ns_;
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
  samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
}

double LatencyRecorder::percentile_ms(double p) const {
  if (samples_.empty()) return 0.0;
  std::vector<std::int64_t> sorted(samples_);
  std::sort(sorted.begin(), sorted.end());
  const double rank = std::ceil(std::clamp(p, 0.0, 1.0) * static_cast<double>(sorted.size()));
  const std::size_t index = rank < 1 ? 0 : static_cast<std::size_t>(rank) - 1;
  return static_cast<double>(sorted[std::min(index, sorted.size() - 1)]) / 1e6;
}

nlohmann::json LatencyRecorder::summary() const {
  nlohmann::json out;
  out["count"] = count_;
  if (count_ == 0) {
    out["p50_ms"] = 0.0;
    out["p99_ms"] = 0.0;
    out["max_ms"] = 0.0;
    out["min_ms"] = 0.0;
    out["mean_ms"] = 0.0;
    return out;
  }
  std::vector<std::int64_t> sorted(samples_);
  std::sort(sorted.begin(), sorted.end());
  auto pick = [&](double p) {
    const double rank = std::ceil(p * static_cast<double>(sorted.size()));
    const std::size_t index = rank < 1 ? 0 : static_cast<std::size_t>(rank) - 1;
    return static_cast<double>(sorted[std::min(index, sorted.size() - 1)]) / 1e6;
  };
  out["p50_ms"] = round_to(pick(0.50), 4);
  out["p99_ms"] = round_to(pick(0.99), 4);
  out["max_ms"] = round_to(static_cast<double>(max_ns_) / 1e6, 4);
  out["min_ms"] = round_to(static_cast<double>(min_ns_) / 1e6, 4);
  out["mean_ms"] = round_to(static_cast<double>(sum_ns_ / count_) / 1e6, 4);
  return out;
}

double to_ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double round_to(double value, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(value * scale) / scale;
}

}  // namespace blindsync::bench
