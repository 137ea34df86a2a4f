#include "hlc.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

namespace notes {
namespace {

// Next (wall, counter) after (wall, counter) at the same wall time; a full counter moves the wall
// time on by one millisecond instead of wrapping (4 billion edits in one ms: only in theory).
void bump(std::uint64_t& wall, std::uint32_t& counter) {
  if (counter == std::numeric_limits<std::uint32_t>::max()) {
    ++wall;
    counter = 0;
  } else {
    ++counter;
  }
}

}  // namespace

std::string Hlc::to_string() const {
  return std::to_string(wall_ms) + "." + std::to_string(counter) + "." + device.substr(0, 8);
}

HlcClock::HlcClock(std::string device, std::uint64_t last_wall_ms, std::uint32_t last_counter)
    : device_(std::move(device)), wall_ms_(last_wall_ms), counter_(last_counter) {}

Hlc HlcClock::tick(std::uint64_t now_ms) {
  if (now_ms > wall_ms_) {
    wall_ms_ = now_ms;
    counter_ = 0;
  } else {
    bump(wall_ms_, counter_);  // the physical clock did not move (or went back): count
  }
  return Hlc{wall_ms_, counter_, device_};
}

void HlcClock::observe(const Hlc& remote, std::uint64_t now_ms) {
  const std::uint64_t wall = std::max({wall_ms_, remote.wall_ms, now_ms});
  std::uint32_t counter = 0;
  std::uint64_t next_wall = wall;
  if (wall == wall_ms_ && wall == remote.wall_ms) {
    counter = std::max(counter_, remote.counter);
    bump(next_wall, counter);
  } else if (wall == wall_ms_) {
    counter = counter_;
    bump(next_wall, counter);
  } else if (wall == remote.wall_ms) {
    counter = remote.counter;
    bump(next_wall, counter);
  }
  wall_ms_ = next_wall;
  counter_ = counter;
}

std::uint64_t wall_clock_ms() {
  if (const char* fixed = std::getenv("BLINDSYNC_NOTES_NOW_MS"); fixed != nullptr && *fixed != '\0') {
    std::uint64_t value = 0;
    const char* end = fixed + std::strlen(fixed);
    if (auto [ptr, ec] = std::from_chars(fixed, end, value); ec == std::errc() && ptr == end) return value;
  }
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

}  // namespace notes
