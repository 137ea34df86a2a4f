// Private to the C API shim: the bs_client definition, error filling, and the exception guard
// that keeps C++ exceptions from crossing the C boundary.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string_view>

#include "blindsync/c/blindsync.h"
#include "blindsync/client/async_client.h"
#include "blindsync/core/status.h"

namespace blindsync::capi {

// The notify hook the AsyncClient calls on its worker thread. It wakes bs_wait_event and calls
// the app's callback, which bs_set_notify may replace at any time. Shared with the hook lambda
// so that it outlives the AsyncClient's worker.
// Thread-safety: all members guarded by mutex_; the app callback runs outside the lock.
class NotifyState {
 public:
  // Called by the worker (AsyncClientOptions::notify).
  void fire();
  // Replaces the app callback; waits until no call of the previous one is running unless the
  // caller is itself inside the callback.
  void set_callback(bs_notify_fn fn, void* user);
  // The current generation: it changes each time fire() runs.
  std::uint64_t generation();
  // Waits until generation() != seen or the timeout passes. Returns true if it changed.
  bool wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout);

 private:
  std::mutex mutex_;
  std::condition_variable changed_;  // generation_ moved (bs_wait_event)
  std::condition_variable idle_;     // active_calls_ dropped (bs_set_notify)
  std::uint64_t generation_ = 0;
  bs_notify_fn fn_ = nullptr;
  void* user_ = nullptr;
  int active_calls_ = 0;
};

}  // namespace blindsync::capi

// The opaque handle of the C API. The AsyncClient is destroyed (worker joined) before the
// NotifyState its hook points to.
struct bs_client {
  std::shared_ptr<blindsync::capi::NotifyState> notify;
  std::unique_ptr<blindsync::AsyncClient> client;
};

namespace blindsync::capi {

// Copies text into dst (capacity bytes, NUL-terminated), cutting at a UTF-8 character boundary.
void copy_truncated(char* dst, std::size_t capacity, std::string_view text) noexcept;

// Fills *err (if not null) and returns code.
int set_error(bs_error* err, int code, std::string_view message) noexcept;
int set_error(bs_error* err, const Status& status) noexcept;
// Fills *err with BS_OK and an empty message; returns BS_OK.
int set_ok(bs_error* err) noexcept;

// Runs body (returning int) and turns any escaping exception into an error code.
template <typename Body>
int guarded(bs_error* err, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return set_error(err, BS_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return set_error(err, BS_ERR_UNEXPECTED, e.what());
  } catch (...) {
    return set_error(err, BS_ERR_UNEXPECTED, "unexpected failure");
  }
}

// Duplicates text with malloc (freed by bs_string_free); nullptr when out of memory.
char* dup_string(std::string_view text) noexcept;

// Waits for a one-shot result for up to timeout_ms (<= 0: no limit).
template <typename T>
bool wait_future(std::future<T>& future, std::int64_t timeout_ms) {
  if (timeout_ms <= 0) {
    future.wait();
    return true;
  }
  return future.wait_for(std::chrono::milliseconds(timeout_ms)) == std::future_status::ready;
}

}  // namespace blindsync::capi
