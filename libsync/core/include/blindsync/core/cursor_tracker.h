// CursorTracker: keeps a receiver's view of a group's gap-free cursor sequence.
//
// delivered() is the highest cursor such that every cursor <= it has been handed over. Cursors
// that arrive ahead of delivered()+1 (a gap before them) are remembered, up to max_pending of
// them; the memory used never depends on the size of a gap, only on that count. A cursor that
// cannot be remembered is reported kTooFarAhead and the caller re-pulls from delivered().
//
// Thread-safety: none.
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <vector>

#include "blindsync/core/ids.h"

namespace blindsync {

struct CursorGap {
  Cursor first = 0;  // first missing cursor
  Cursor last = 0;   // last missing cursor (inclusive)
  friend bool operator==(const CursorGap&, const CursorGap&) = default;
};

class CursorTracker {
 public:
  enum class Verdict {
    kInOrder,      // == delivered()+1: released now, with any pending cursors it makes contiguous
    kDuplicate,    // <= delivered() or already pending
    kAhead,        // > delivered()+1: remembered as pending until the gap fills
    kTooFarAhead,  // pending set is full: not remembered; re-pull after delivered()
  };
  struct Observation {
    Verdict verdict = Verdict::kDuplicate;
    std::vector<Cursor> released;  // cursors now deliverable, ascending (empty unless kInOrder)
  };

  explicit CursorTracker(Cursor delivered = 0, std::size_t max_pending = 4096);

  Observation observe(Cursor cursor);
  Verdict classify(Cursor cursor) const;

  Cursor delivered() const noexcept { return delivered_; }
  std::size_t pending_count() const noexcept { return pending_.size(); }
  std::optional<CursorGap> first_gap() const;
  void reset(Cursor delivered);

 private:
  Cursor delivered_;
  std::size_t max_pending_;
  std::set<Cursor> pending_;
};

}  // namespace blindsync
