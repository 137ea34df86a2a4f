// Helpers for AsyncClient tests: temporary homes, and an EventLog that polls a client until a
// condition over everything it received holds (bounded by a deadline, woken by the notify hook).
// Thread-safety: one test thread per EventLog; notify_hook() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include "blindsync/client/async_client.h"
#include "temp_dir.h"

namespace blindsync::testing {

// A fresh home directory per test, removed at the end (tests/support).
using AsyncTempDir = blindsync::test::TempDir;

inline std::string text_of(const Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }

// The result of an AsyncClient future, or a failed test if it is not ready within the bound (a
// hang guard, not a timing assertion).
template <typename T>
T get_within(std::future<T> future, std::chrono::seconds bound = std::chrono::seconds(60)) {
  if (future.wait_for(bound) != std::future_status::ready) {
    FAIL("an AsyncClient call did not complete within " << bound.count() << " s");
  }
  return future.get();
}

class EventLog {
 public:
  std::vector<Event> events;

  std::function<void()> notify_hook() {
    return [this] {
      {
        std::lock_guard lock(mu_);
        ++signals_;
      }
      cv_.notify_all();
    };
  }
  // Forgets every event taken so far (e.g. before reopening the client).
  void clear() {
    events.clear();
    batches.clear();
  }

  std::uint64_t signals() {
    std::lock_guard lock(mu_);
    return signals_;
  }

  // Polls until pred() holds or the timeout passes; returns pred()'s last value.
  bool poll_until(AsyncClient& client, const std::function<bool()>& pred,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const std::uint64_t seen = signals();
      take(client);
      if (pred()) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      // Woken by the notify hook; the short cap covers events queued before we last looked.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return signals_ != seen; });
    }
  }

  // One poll_events() call; returns how many events it took.
  std::size_t take(AsyncClient& client, std::size_t max = SIZE_MAX) {
    auto batch = client.poll_events(max);
    const std::size_t n = batch.size();
    batches.push_back(batch);
    for (auto& event : batch) events.push_back(std::move(event));
    return n;
  }
  std::vector<std::vector<Event>> batches;

  template <typename T>
  std::vector<T> all() const {
    std::vector<T> out;
    for (const auto& event : events) {
      if (const auto* e = std::get_if<T>(&event)) out.push_back(*e);
    }
    return out;
  }
  template <typename T>
  std::size_t count() const {
    return all<T>().size();
  }

  std::vector<std::string> received_texts() const {
    std::vector<std::string> out;
    for (const auto& e : all<EventBlobReceived>()) out.push_back(text_of(e.blob.data));
    return out;
  }
  std::set<BlobId> pushed_ids() const {
    std::set<BlobId> out;
    for (const auto& e : all<EventBlobPushed>()) out.insert(e.blob_id);
    return out;
  }
  // The size of the last EventOutboxChanged seen, or -1.
  std::int64_t outbox() const {
    std::int64_t size = -1;
    for (const auto& e : all<EventOutboxChanged>()) size = static_cast<std::int64_t>(e.size);
    return size;
  }
  std::vector<Status> errors() const {
    std::vector<Status> out;
    for (const auto& e : all<EventError>()) out.push_back(e.status);
    return out;
  }
  bool has_error(Code code) const {
    for (const auto& s : errors()) {
      if (s.code() == code) return true;
    }
    return false;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t signals_ = 0;
};

}  // namespace blindsync::testing
