// SyncDevice: this app's handle on blindsync — an AsyncClient over the device home
// (<notes home>/sync), the one group the notes travel in, and the hand-off of queued local edits
// to blindsync's durable outbox.
//
// The notify hook only sets a flag and signals a condition variable (as the embedding guide asks);
// wait() sleeps on it, so the sync loop reacts to events at once without busy polling.
// Thread-safety: one thread drives a SyncDevice (the AsyncClient's worker runs behind it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "blindsync/client/async_client.h"
#include "blindsync/core/status.h"
#include "note_store.h"

namespace notes {

class SyncDevice {
 public:
  static blindsync::Result<std::unique_ptr<SyncDevice>> open(const std::string& sync_home);
  ~SyncDevice();

  blindsync::AsyncClient& client() noexcept { return *client_; }
  // This device's id in hex, or kNotFound before `init`.
  blindsync::Result<std::string> device_hex() const;
  // The group the notes travel in: kNotFound before create-group/join.
  blindsync::Result<blindsync::GroupInfo> group() const;

  // push()es every pending local edit (oldest first) and drops it from the notes database once
  // push() returned: the encrypted op is then durable in blindsync's outbox. Returns how many.
  blindsync::Result<std::size_t> flush_pending(NoteStore& store, const blindsync::GroupId& group);

  // Sleeps until the client queued events (or timeout passes).
  void wait(std::chrono::milliseconds timeout);

 private:
  struct Waker {
    std::mutex mutex;
    std::condition_variable cv;
    bool woken = false;
  };
  SyncDevice() = default;

  std::shared_ptr<Waker> waker_ = std::make_shared<Waker>();  // outlives client_ (declared first)
  std::unique_ptr<blindsync::AsyncClient> client_;
};

}  // namespace notes
