#include <catch2/catch.hpp>

#include <vector>

#include "blindsync/core/cursor_tracker.h"

using namespace blindsync;
using V = CursorTracker::Verdict;

TEST_CASE("cursors in order are released one by one", "[cursor]") {
  CursorTracker t;
  for (Cursor c = 1; c <= 100; ++c) {
    auto o = t.observe(c);
    CHECK(o.verdict == V::kInOrder);
    CHECK(o.released == std::vector<Cursor>{c});
    CHECK(t.delivered() == c);
  }
  CHECK(t.pending_count() == 0);
  CHECK_FALSE(t.first_gap().has_value());
}

TEST_CASE("tracker starts from a persisted cursor", "[cursor]") {
  CursorTracker t(41);
  CHECK(t.delivered() == 41);
  CHECK(t.observe(41).verdict == V::kDuplicate);
  CHECK(t.observe(42).verdict == V::kInOrder);
}

TEST_CASE("duplicates are reported and change nothing", "[cursor]") {
  CursorTracker t;
  t.observe(1);
  t.observe(2);
  auto d = t.observe(2);
  CHECK(d.verdict == V::kDuplicate);
  CHECK(d.released.empty());
  CHECK(t.observe(1).verdict == V::kDuplicate);
  CHECK(t.observe(0).verdict == V::kDuplicate);
  CHECK(t.observe(5).verdict == V::kAhead);
  CHECK(t.observe(5).verdict == V::kDuplicate);  // already pending
  CHECK(t.pending_count() == 1);
  CHECK(t.delivered() == 2);
}

TEST_CASE("a gap holds later cursors until it fills, then releases them in order", "[cursor]") {
  CursorTracker t;
  CHECK(t.observe(1).verdict == V::kInOrder);
  CHECK(t.observe(4).verdict == V::kAhead);
  CHECK(t.observe(3).verdict == V::kAhead);
  CHECK(t.observe(6).verdict == V::kAhead);
  CHECK(t.delivered() == 1);
  CHECK(t.pending_count() == 3);
  REQUIRE(t.first_gap().has_value());
  CHECK(*t.first_gap() == CursorGap{2, 2});

  auto o = t.observe(2);
  CHECK(o.verdict == V::kInOrder);
  CHECK(o.released == std::vector<Cursor>{2, 3, 4});
  CHECK(t.delivered() == 4);
  CHECK(t.pending_count() == 1);
  CHECK(*t.first_gap() == CursorGap{5, 5});

  auto o2 = t.observe(5);
  CHECK(o2.released == std::vector<Cursor>{5, 6});
  CHECK_FALSE(t.first_gap().has_value());
}

TEST_CASE("classify predicts observe without changing state", "[cursor]") {
  CursorTracker t(10, 1);
  CHECK(t.classify(10) == V::kDuplicate);
  CHECK(t.classify(11) == V::kInOrder);
  CHECK(t.classify(13) == V::kAhead);
  CHECK(t.delivered() == 10);
  CHECK(t.pending_count() == 0);
  t.observe(13);
  CHECK(t.classify(13) == V::kDuplicate);
  CHECK(t.classify(14) == V::kTooFarAhead);
  CHECK(t.classify(11) == V::kInOrder);  // in-order is never refused for space
}

TEST_CASE("pending cursors are bounded by max_pending", "[cursor]") {
  CursorTracker t(0, 8);
  for (Cursor c = 10; c < 18; ++c) CHECK(t.observe(c).verdict == V::kAhead);
  CHECK(t.pending_count() == 8);
  auto full = t.observe(100);
  CHECK(full.verdict == V::kTooFarAhead);
  CHECK(full.released.empty());
  CHECK(t.pending_count() == 8);
  CHECK(t.observe(5).verdict == V::kTooFarAhead);
  // Filling the gap still works and frees room.
  for (Cursor c = 1; c < 9; ++c) CHECK(t.observe(c).verdict == V::kInOrder);
  auto o = t.observe(9);
  CHECK(o.released.size() == 9);  // 9 and the 8 pending
  CHECK(t.delivered() == 17);
  CHECK(t.pending_count() == 0);
  CHECK(t.observe(100).verdict == V::kAhead);
}

TEST_CASE("max_pending of zero remembers nothing ahead", "[cursor]") {
  CursorTracker t(0, 0);
  CHECK(t.observe(2).verdict == V::kTooFarAhead);
  CHECK(t.observe(1).verdict == V::kInOrder);
}

TEST_CASE("a huge gap costs one pending entry", "[cursor]") {
  CursorTracker t;
  const Cursor far = 1'000'000'000'000'000ull;
  CHECK(t.observe(far).verdict == V::kAhead);
  CHECK(t.pending_count() == 1);
  REQUIRE(t.first_gap().has_value());
  CHECK(*t.first_gap() == CursorGap{1, far - 1});
  CHECK(t.observe(1).released == std::vector<Cursor>{1});
  CHECK(*t.first_gap() == CursorGap{2, far - 1});
}

TEST_CASE("cursors at the top of the range do not wrap", "[cursor]") {
  const Cursor max = ~Cursor{0};
  CursorTracker t(max - 2);
  CHECK(t.observe(max).verdict == V::kAhead);
  auto o = t.observe(max - 1);
  CHECK(o.released == std::vector<Cursor>{max - 1, max});
  CHECK(t.delivered() == max);
  CHECK(t.observe(max).verdict == V::kDuplicate);
  CHECK(t.observe(0).verdict == V::kDuplicate);
  CHECK(t.classify(1) == V::kDuplicate);
}

TEST_CASE("reset forgets pending cursors", "[cursor]") {
  CursorTracker t;
  t.observe(5);
  t.observe(7);
  t.reset(100);
  CHECK(t.delivered() == 100);
  CHECK(t.pending_count() == 0);
  CHECK_FALSE(t.first_gap().has_value());
  CHECK(t.observe(101).verdict == V::kInOrder);
  t.reset(0);
  CHECK(t.observe(1).verdict == V::kInOrder);
}
