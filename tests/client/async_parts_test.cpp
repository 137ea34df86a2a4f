// The AsyncClient's private building blocks, one at a time: the backoff formula, the bounded event
// queue, the delivery ledger and the worker loop.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "backoff.h"
#include "delivery_ledger.h"
#include "event_queue.h"
#include "worker_loop.h"

using namespace blindsync;
using namespace blindsync::client_detail;
using std::chrono::milliseconds;

namespace {

template <typename Id>
Id id_with(std::uint8_t first) {
  typename Id::Array bytes{};
  bytes[0] = first;
  return Id(bytes);
}

EventBlobReceived blob_event(std::uint8_t n) {
  EventBlobReceived event;
  event.blob.cursor = n;
  event.blob.blob_id = id_with<BlobId>(n);
  return event;
}

}  // namespace

// ---------------------------------------------------------------- backoff

TEST_CASE("backoff doubles from base per attempt and stops at the cap", "[backoff]") {
  const BackoffPolicy policy{milliseconds(1000), milliseconds(30'000), milliseconds(5000)};
  CHECK(backoff_base_delay(policy, 1) == milliseconds(1000));
  CHECK(backoff_base_delay(policy, 2) == milliseconds(2000));
  CHECK(backoff_base_delay(policy, 3) == milliseconds(4000));
  CHECK(backoff_base_delay(policy, 5) == milliseconds(16'000));
  CHECK(backoff_base_delay(policy, 6) == milliseconds(30'000));  // 32 s capped
  CHECK(backoff_base_delay(policy, 7) == milliseconds(30'000));
  CHECK(backoff_base_delay(policy, 0) == milliseconds(1000));  // treated as the first attempt
  // No overflow however long a relay stays away.
  CHECK(backoff_base_delay(policy, 64) == milliseconds(30'000));
  CHECK(backoff_base_delay(policy, UINT32_MAX) == milliseconds(30'000));
}

TEST_CASE("backoff adds the injected jitter, bounded by policy.jitter", "[backoff]") {
  const BackoffPolicy policy{milliseconds(100), milliseconds(1000), milliseconds(50)};
  std::vector<std::uint64_t> asked;
  const JitterSource none = [&](std::uint64_t upper) {
    asked.push_back(upper);
    return std::uint64_t{0};
  };
  const JitterSource most = [](std::uint64_t upper) { return upper; };
  const JitterSource too_much = [](std::uint64_t upper) { return upper * 10; };
  CHECK(backoff_delay(policy, 1, none) == milliseconds(100));
  CHECK(asked == std::vector<std::uint64_t>{50});
  CHECK(backoff_delay(policy, 1, most) == milliseconds(150));
  CHECK(backoff_delay(policy, 3, most) == milliseconds(450));
  CHECK(backoff_delay(policy, 10, most) == milliseconds(1050));
  CHECK(backoff_delay(policy, 10, too_much) == milliseconds(1050));  // a bad source cannot exceed jitter
  CHECK(backoff_delay(policy, 2, JitterSource{}) == milliseconds(200));
  // A seeded generator gives reproducible delays within [base, base + jitter].
  std::uint64_t state = 42;
  const JitterSource lcg = [&](std::uint64_t upper) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % (upper + 1);
  };
  for (std::uint32_t attempt = 1; attempt < 12; ++attempt) {
    const auto delay = backoff_delay(policy, attempt, lcg);
    CHECK(delay >= backoff_base_delay(policy, attempt));
    CHECK(delay <= backoff_base_delay(policy, attempt) + milliseconds(50));
  }
}

TEST_CASE("backoff treats negative or zero settings as zero", "[backoff]") {
  const BackoffPolicy zero{milliseconds(0), milliseconds(0), milliseconds(0)};
  CHECK(backoff_delay(zero, 5, [](std::uint64_t) { return std::uint64_t{7}; }) == milliseconds(0));
  const BackoffPolicy negative{milliseconds(-5), milliseconds(100), milliseconds(-1)};
  CHECK(backoff_delay(negative, 3, [](std::uint64_t upper) { return upper; }) == milliseconds(0));
  const BackoffPolicy cap_below_base{milliseconds(500), milliseconds(200), milliseconds(0)};
  CHECK(backoff_base_delay(cap_below_base, 1) == milliseconds(200));
}

// ---------------------------------------------------------------- event queue

TEST_CASE("event queue hands out events in order with increasing sequence numbers", "[events]") {
  EventQueue queue(10, {});
  CHECK(queue.push(EventConnected{}) == 1);
  CHECK(queue.push(blob_event(1)) == 2);
  CHECK(queue.last_seq() == 2);
  auto first = queue.take(1);
  REQUIRE(first.events.size() == 1);
  CHECK(std::holds_alternative<EventConnected>(first.events[0]));
  CHECK(first.last_seq == 1);
  auto rest = queue.take(SIZE_MAX);
  REQUIRE(rest.events.size() == 1);
  CHECK(rest.last_seq == 2);
  auto none = queue.take(SIZE_MAX);
  CHECK(none.events.empty());
  CHECK(none.last_seq == 2);  // still the last one handed out
}

TEST_CASE("event queue refuses blob events past its bound and reports when the producer may resume",
          "[events]") {
  EventQueue queue(3, {});
  for (std::uint8_t i = 1; i <= 3; ++i) CHECK(queue.push(blob_event(i)) != 0);
  CHECK(queue.blob_room() == 0);
  CHECK(queue.push(blob_event(4)) == 0);
  CHECK(queue.size() == 3);
  queue.note_blocked();
  auto taken = queue.take(1);
  CHECK(taken.resume);
  CHECK(queue.blob_room() == 1);
  CHECK_FALSE(queue.take(1).resume);  // reported once
}

TEST_CASE("event queue keeps state events in a bounded reserve and reports what it dropped", "[events]") {
  EventQueue queue(4, {});
  for (std::uint8_t i = 1; i <= 4; ++i) REQUIRE(queue.push(blob_event(i)) != 0);
  // Reserve: max/4 + 64 = 65 state events beyond the bound.
  std::size_t accepted = 0;
  for (int i = 0; i < 100; ++i) accepted += queue.push(EventConnected{}) != 0 ? 1 : 0;
  CHECK(accepted == 65);
  CHECK(queue.size() == 69);
  auto all = queue.take(SIZE_MAX);
  CHECK(all.events.size() == 69);
  // The next event is preceded by an error naming how many were dropped.
  REQUIRE(queue.push(EventConnected{}) != 0);
  auto next = queue.take(SIZE_MAX);
  REQUIRE(next.events.size() == 2);
  const auto* error = std::get_if<EventError>(&next.events[0]);
  REQUIRE(error != nullptr);
  CHECK(error->status.message().find("35") != std::string::npos);
}

TEST_CASE("event queue merges consecutive outbox-size events", "[events]") {
  EventQueue queue(10, {});
  const auto seq = queue.push(EventOutboxChanged{3});
  CHECK(queue.push(EventOutboxChanged{2}) == seq);
  queue.push(EventConnected{});
  queue.push(EventOutboxChanged{1});
  auto taken = queue.take(SIZE_MAX);
  REQUIRE(taken.events.size() == 3);
  CHECK(std::get<EventOutboxChanged>(taken.events[0]).size == 2);
  CHECK(std::get<EventOutboxChanged>(taken.events[2]).size == 1);
}

TEST_CASE("event queue notifies when it becomes non-empty, outside its lock", "[events]") {
  int calls = 0;
  EventQueue* self = nullptr;
  EventQueue queue(10, [&] {
    ++calls;
    CHECK(self->size() >= 1);  // re-entering the queue from the hook must not deadlock
  });
  self = &queue;
  queue.push(EventConnected{});
  queue.push(EventConnected{});
  CHECK(calls == 1);
  (void)queue.take(SIZE_MAX);
  queue.push(EventConnected{});
  CHECK(calls == 2);
}

// ---------------------------------------------------------------- delivery ledger

TEST_CASE("ledger persists a relay cursor only after every event before it was confirmed", "[ledger]") {
  DeliveryLedger ledger;
  const GroupId group = id_with<GroupId>(1);
  ledger.add_link(1, group, "ws://r1");
  ledger.add_link(2, group, "ws://r2");
  // Link 1: blob at cursor 1 (event 1), a skipped cursor 2 (waits for event 1), blob at 3 (event 3).
  ledger.note_blob(group, id_with<BlobId>(1), 1, 1);
  ledger.note_cursor(1, 1, 1);
  ledger.note_cursor(1, 2, 1);
  ledger.note_blob(group, id_with<BlobId>(3), 3, 3);
  ledger.note_cursor(1, 3, 3);
  // Link 2 skipped its cursor 1 (the same blob, already pending) after event 2.
  ledger.note_cursor(2, 1, 2);
  CHECK(ledger.is_pending(group, id_with<BlobId>(1)));

  CHECK(ledger.take_committable(0).empty());
  auto first = ledger.take_committable(1);
  REQUIRE(first.size() == 1);
  REQUIRE(first[0].cursors.size() == 1);
  CHECK(first[0].cursors[0].relay_url == "ws://r1");
  CHECK(first[0].cursors[0].cursor == 2);
  REQUIRE(first[0].seen.size() == 1);
  CHECK(first[0].seen[0].blob_id == id_with<BlobId>(1));
  CHECK(ledger.is_pending(group, id_with<BlobId>(1)));  // until the commit is written
  ledger.forget(first[0]);
  CHECK_FALSE(ledger.is_pending(group, id_with<BlobId>(1)));

  auto second = ledger.take_committable(3);
  REQUIRE(second.size() == 1);
  REQUIRE(second[0].links.size() == 2);
  CHECK(second[0].links[0] == std::make_pair(DeliveryLedger::LinkId{1}, Cursor{3}));
  CHECK(second[0].links[1] == std::make_pair(DeliveryLedger::LinkId{2}, Cursor{1}));
}

TEST_CASE("ledger forgets a reset relay's cursors but keeps its blobs pending", "[ledger]") {
  DeliveryLedger ledger;
  const GroupId group = id_with<GroupId>(1);
  ledger.add_link(1, group, "ws://r1");
  ledger.note_blob(group, id_with<BlobId>(9), 9, 1);
  ledger.note_cursor(1, 9, 1);
  ledger.reset_link(1);
  auto commit = ledger.take_committable(1);
  REQUIRE(commit.size() == 1);
  CHECK(commit[0].cursors.empty());
  CHECK(commit[0].seen.size() == 1);
}

// ---------------------------------------------------------------- worker loop

TEST_CASE("worker loop runs posted tasks in order, timers when due, and drains the mailbox on stop",
          "[worker]") {
  WorkerLoop loop;
  loop.start();
  std::vector<int> order;              // touched on the worker only
  std::atomic<bool> on_worker{false};  // Catch2 assertions stay on the test thread
  std::promise<void> timers_done;
  loop.post([&] {
    on_worker = loop.on_worker_thread();
    const auto cancelled = loop.run_after(milliseconds(5), [&] { order.push_back(-1); });
    loop.run_after(milliseconds(20), [&] {
      order.push_back(3);
      timers_done.set_value();
    });
    loop.run_after(milliseconds(1), [&] { order.push_back(2); });
    loop.cancel(cancelled);
    order.push_back(1);
  });
  CHECK_FALSE(loop.on_worker_thread());
  REQUIRE(timers_done.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  std::atomic<int> after_stop{0};
  loop.stop([&] {
    order.push_back(4);
    loop.post([&] { ++after_stop; });  // posted by the final task: still runs
  });
  CHECK(on_worker);
  CHECK(order == std::vector<int>{1, 2, 3, 4});
  CHECK(after_stop == 1);
}
