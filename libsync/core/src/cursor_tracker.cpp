// CursorTracker: in-order release of a gap-free cursor sequence (see cursor_tracker.h).
// Memory is bounded by max_pending entries, whatever the distance between cursors.
#include "blindsync/core/cursor_tracker.h"

namespace blindsync {

CursorTracker::CursorTracker(Cursor delivered, std::size_t max_pending)
    : delivered_(delivered), max_pending_(max_pending) {}

CursorTracker::Verdict CursorTracker::classify(Cursor cursor) const {
  // cursor <= delivered_ also covers delivered_ == UINT64_MAX, where delivered_+1 would wrap.
  if (cursor <= delivered_ || pending_.contains(cursor)) return Verdict::kDuplicate;
  if (cursor == delivered_ + 1) return Verdict::kInOrder;
  if (pending_.size() >= max_pending_) return Verdict::kTooFarAhead;
  return Verdict::kAhead;
}

CursorTracker::Observation CursorTracker::observe(Cursor cursor) {
  Observation obs;
  obs.verdict = classify(cursor);
  switch (obs.verdict) {
    case Verdict::kInOrder: {
      delivered_ = cursor;
      obs.released.push_back(cursor);
      // Release the pending cursors this one makes contiguous.
      auto it = pending_.begin();
      while (it != pending_.end() && delivered_ != Cursor(-1) && *it == delivered_ + 1) {
        delivered_ = *it;
        obs.released.push_back(*it);
        it = pending_.erase(it);
      }
      break;
    }
    case Verdict::kAhead:
      pending_.insert(cursor);
      break;
    case Verdict::kDuplicate:
    case Verdict::kTooFarAhead:
      break;
  }
  return obs;
}

std::optional<CursorGap> CursorTracker::first_gap() const {
  if (pending_.empty()) return std::nullopt;
  // Every pending cursor is > delivered_+1, so the range is never empty.
  return CursorGap{delivered_ + 1, *pending_.begin() - 1};
}

void CursorTracker::reset(Cursor delivered) {
  delivered_ = delivered;
  pending_.clear();
}

}  // namespace blindsync
