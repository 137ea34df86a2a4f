// The notes example's hybrid logical clock: send and receive rules, ordering, persistence shape.
#include "hlc.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <limits>
#include <string>

using notes::Hlc;
using notes::HlcClock;

namespace {
const std::string kDevA(64, 'a');
const std::string kDevB(64, 'b');
}  // namespace

TEST_CASE("notes HLC: timestamps order by wall time, then counter, then device", "[notes][hlc]") {
  CHECK(Hlc{10, 5, kDevB} < Hlc{11, 0, kDevA});
  CHECK(Hlc{10, 1, kDevB} < Hlc{10, 2, kDevA});
  CHECK(Hlc{10, 2, kDevA} < Hlc{10, 2, kDevB});
  CHECK(Hlc{10, 2, kDevA} == Hlc{10, 2, kDevA});
}

TEST_CASE("notes HLC: local ticks strictly increase, even when the wall clock stands still or goes back",
          "[notes][hlc]") {
  HlcClock clock(kDevA, 0, 0);
  const Hlc first = clock.tick(1000);
  CHECK(first == Hlc{1000, 0, kDevA});
  const Hlc same_ms = clock.tick(1000);
  CHECK(same_ms == Hlc{1000, 1, kDevA});
  const Hlc backwards = clock.tick(500);  // the system clock was set back
  CHECK(backwards == Hlc{1000, 2, kDevA});
  const Hlc later = clock.tick(2000);
  CHECK(later == Hlc{2000, 0, kDevA});
  CHECK(first < same_ms);
  CHECK(same_ms < backwards);
  CHECK(backwards < later);
}

TEST_CASE("notes HLC: a restored clock continues after its persisted state", "[notes][hlc]") {
  HlcClock clock(kDevA, 5000, 7);
  CHECK(clock.tick(4000) == Hlc{5000, 8, kDevA});
}

TEST_CASE("notes HLC: receiving advances the clock past the remote stamp (receive rule)", "[notes][hlc]") {
  SECTION("remote ahead of both clocks: take its wall time, counter + 1") {
    HlcClock clock(kDevA, 1000, 3);
    clock.observe(Hlc{9000, 4, kDevB}, 2000);
    CHECK(clock.wall_ms() == 9000);
    CHECK(clock.counter() == 5);
    CHECK(clock.tick(2000) > Hlc{9000, 4, kDevB});
  }
  SECTION("local clock ahead: keep it, counter + 1") {
    HlcClock clock(kDevA, 9000, 3);
    clock.observe(Hlc{1000, 40, kDevB}, 2000);
    CHECK(clock.wall_ms() == 9000);
    CHECK(clock.counter() == 4);
  }
  SECTION("same wall time: max counter + 1") {
    HlcClock clock(kDevA, 9000, 3);
    clock.observe(Hlc{9000, 40, kDevB}, 2000);
    CHECK(clock.wall_ms() == 9000);
    CHECK(clock.counter() == 41);
  }
  SECTION("physical clock ahead of both: take it, counter 0") {
    HlcClock clock(kDevA, 1000, 3);
    clock.observe(Hlc{2000, 40, kDevB}, 3000);
    CHECK(clock.wall_ms() == 3000);
    CHECK(clock.counter() == 0);
  }
  SECTION("an edit made after seeing another wins over it, whatever the physical clocks say") {
    HlcClock behind(kDevA, 0, 0);
    const Hlc remote{1'000'000, 0, kDevB};  // a device whose clock runs far ahead
    behind.observe(remote, 10);
    CHECK(behind.tick(10) > remote);
  }
}

TEST_CASE("notes HLC: a full counter moves to the next millisecond instead of wrapping", "[notes][hlc]") {
  HlcClock clock(kDevA, 1000, std::numeric_limits<std::uint32_t>::max());
  const Hlc next = clock.tick(1000);
  CHECK(next == Hlc{1001, 0, kDevA});
}

TEST_CASE("notes HLC: BLINDSYNC_NOTES_NOW_MS replaces the wall clock (tests and demos only)",
          "[notes][hlc]") {
  ::setenv("BLINDSYNC_NOTES_NOW_MS", "123456", 1);
  CHECK(notes::wall_clock_ms() == 123456);
  ::setenv("BLINDSYNC_NOTES_NOW_MS", "12x", 1);  // not a number: the system clock
  CHECK(notes::wall_clock_ms() > 1'600'000'000'000ull);
  ::unsetenv("BLINDSYNC_NOTES_NOW_MS");
  CHECK(notes::wall_clock_ms() > 1'600'000'000'000ull);
}
