// EventQueue: the bounded FIFO between the AsyncClient's worker thread (producer) and the app's
// poll_events() (consumer).
//
// Bound: at most max_events events in total count against incoming blobs: the worker asks
// blob_room() before fetching and stops (note_blocked()) when there is none; the app's next take()
// reports that the worker should resume. State events (connected, pushed, errors, ...) are small
// and cannot be re-fetched, so they may use a reserve of max_events/4 + 64 slots beyond the bound;
// past that they are dropped and counted, and an EventError reports the count once room returns.
// Consecutive EventOutboxChanged at the tail are merged (the latest size wins).
//
// Every event gets a sequence number (1, 2, ...). take() returns the number of the last event it
// handed out, which the AsyncClient uses to know which received blobs the app has taken.
//
// The notify hook runs on the producer's thread when the queue goes from empty to non-empty,
// never under the queue's lock (it may call back into the queue).
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "blindsync/client/async_client.h"

namespace blindsync::client_detail {

class EventQueue {
 public:
  // REQUIRES: max_events > 0.
  EventQueue(std::size_t max_events, std::function<void()> notify);

  // ---- producer ----
  // How many more EventBlobReceived fit under the bound.
  std::size_t blob_room() const;
  // Remembers that the producer stopped fetching for lack of room (see take()).
  void note_blocked();
  // Appends an event; returns its sequence number, or 0 if a state event was dropped.
  // REQUIRES: for EventBlobReceived, blob_room() > 0 (checked: such an event is refused with 0).
  std::uint64_t push(Event event);
  // The sequence number of the newest event pushed so far (0 before the first).
  std::uint64_t last_seq() const;

  // ---- consumer ----
  struct Taken {
    std::vector<Event> events;
    std::uint64_t last_seq = 0;  // of the last event handed out by this or an earlier take()
    bool resume = false;         // the producer was blocked and there is room again
  };
  Taken take(std::size_t max);
  std::size_t size() const;

 private:
  struct Entry {
    Event event;
    std::uint64_t seq = 0;
  };

  std::size_t max_events_;
  std::size_t hard_limit_;
  std::function<void()> notify_;
  mutable std::mutex mu_;
  std::deque<Entry> entries_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t taken_seq_ = 0;
  std::uint64_t dropped_ = 0;
  bool blocked_ = false;
};

}  // namespace blindsync::client_detail
