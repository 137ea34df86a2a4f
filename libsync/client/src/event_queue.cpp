#include "event_queue.h"

#include <algorithm>
#include <utility>

namespace blindsync::client_detail {

EventQueue::EventQueue(std::size_t max_events, std::function<void()> notify)
    : max_events_(std::max<std::size_t>(max_events, 1)),
      hard_limit_(max_events_ + max_events_ / 4 + 64),
      notify_(std::move(notify)) {}

std::size_t EventQueue::blob_room() const {
  std::lock_guard lock(mu_);
  return entries_.size() >= max_events_ ? 0 : max_events_ - entries_.size();
}

void EventQueue::note_blocked() {
  std::lock_guard lock(mu_);
  blocked_ = true;
}

std::uint64_t EventQueue::push(Event event) {
  bool was_empty = false;
  std::uint64_t seq = 0;
  {
    std::lock_guard lock(mu_);
    const bool is_blob = std::holds_alternative<EventBlobReceived>(event);
    if (is_blob && entries_.size() >= max_events_) return 0;
    if (!is_blob) {
      if (auto* changed = std::get_if<EventOutboxChanged>(&event);
          changed != nullptr && !entries_.empty() &&
          std::holds_alternative<EventOutboxChanged>(entries_.back().event)) {
        std::get<EventOutboxChanged>(entries_.back().event).size = changed->size;
        return entries_.back().seq;
      }
      if (entries_.size() >= hard_limit_) {
        ++dropped_;
        return 0;
      }
    }
    was_empty = entries_.empty();
    if (dropped_ > 0 && entries_.size() + 1 < hard_limit_) {
      entries_.push_back(Entry{
          EventError{std::nullopt, Status(Code::kInternal, "event queue full: " + std::to_string(dropped_) +
                                                               " state event(s) were dropped "
                                                               "because poll_events() was not "
                                                               "called")},
          next_seq_++});
      dropped_ = 0;
    }
    seq = next_seq_++;
    entries_.push_back(Entry{std::move(event), seq});
  }
  if (was_empty && notify_) notify_();
  return seq;
}

std::uint64_t EventQueue::last_seq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

EventQueue::Taken EventQueue::take(std::size_t max) {
  Taken taken;
  std::lock_guard lock(mu_);
  const std::size_t count = std::min(max, entries_.size());
  taken.events.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    taken_seq_ = entries_.front().seq;
    taken.events.push_back(std::move(entries_.front().event));
    entries_.pop_front();
  }
  taken.last_seq = taken_seq_;
  if (blocked_ && entries_.size() < max_events_) {
    blocked_ = false;
    taken.resume = true;
  }
  return taken;
}

std::size_t EventQueue::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace blindsync::client_detail
