// Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014) for last-writer-wins.
//
// A timestamp is (wall_ms, counter, device): wall_ms follows the physical clock, counter orders
// events within one millisecond (or while the physical clock lags a remote one), and the device
// id (lower-case hex) breaks the last ties, so two different devices never produce equal stamps.
// Timestamps compare lexicographically in that order.
//
// HlcClock holds one device's latest timestamp:
//   - tick(now):          a local edit (send rule): strictly greater than anything seen so far;
//   - observe(remote, now): a received edit (receive rule): afterwards every tick() is greater
//     than remote, so an edit made after seeing another one always wins over it.
// The physical clock is passed in (now_ms), so the rules are pure and testable.
//
// Thread-safety: plain values; one owner.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace notes {

struct Hlc {
  std::uint64_t wall_ms = 0;
  std::uint32_t counter = 0;
  std::string device;  // 64 lower-case hex digits (the blindsync device id)

  friend std::strong_ordering operator<=>(const Hlc& a, const Hlc& b) {
    if (auto c = a.wall_ms <=> b.wall_ms; c != 0) return c;
    if (auto c = a.counter <=> b.counter; c != 0) return c;
    return a.device.compare(b.device) <=> 0;
  }
  friend bool operator==(const Hlc& a, const Hlc& b) = default;

  // "wall_ms.counter.device-prefix" for humans (never parsed back).
  std::string to_string() const;
};

class HlcClock {
 public:
  // last: the latest timestamp this device issued or observed (wall_ms, counter; device ignored).
  HlcClock(std::string device, std::uint64_t last_wall_ms, std::uint32_t last_counter);

  Hlc tick(std::uint64_t now_ms);
  void observe(const Hlc& remote, std::uint64_t now_ms);

  std::uint64_t wall_ms() const noexcept { return wall_ms_; }
  std::uint32_t counter() const noexcept { return counter_; }
  const std::string& device() const noexcept { return device_; }

 private:
  std::string device_;
  std::uint64_t wall_ms_ = 0;
  std::uint32_t counter_ = 0;
};

// Milliseconds since the Unix epoch. For tests and demos the environment variable
// BLINDSYNC_NOTES_NOW_MS, when set to a number, replaces the system clock (a device whose clock
// runs ahead or behind).
std::uint64_t wall_clock_ms();

}  // namespace notes
