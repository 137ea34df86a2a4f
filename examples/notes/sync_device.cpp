#include "sync_device.h"

#include <utility>

#include "blindsync/transport_ws/ws_transport.h"

namespace notes {

using blindsync::Code;
using blindsync::Result;
using blindsync::Status;

Result<std::unique_ptr<SyncDevice>> SyncDevice::open(const std::string& sync_home) {
  std::unique_ptr<SyncDevice> device(new SyncDevice());
  blindsync::AsyncClientOptions options;
  options.transport = [](const std::string& url, const blindsync::TransportOptions& transport_options) {
    return blindsync::connect_websocket(url, transport_options);
  };
  options.request_timeout = std::chrono::seconds(10);
  // An interactive command: retry a lost relay within seconds, not the library's 30 s cap.
  options.backoff = blindsync::BackoffPolicy{std::chrono::milliseconds(250), std::chrono::seconds(4),
                                             std::chrono::milliseconds(250)};
  options.notify = [waker = device->waker_] {  // worker thread: only wake ours
    {
      std::lock_guard lock(waker->mutex);
      waker->woken = true;
    }
    waker->cv.notify_one();
  };
  auto client = blindsync::AsyncClient::open(sync_home, std::move(options));
  if (!client) return client.error();
  device->client_ = std::move(*client);
  return device;
}

SyncDevice::~SyncDevice() = default;

Result<std::string> SyncDevice::device_hex() const {
  auto identity = client_->identity();
  if (!identity) return Status(Code::kNotFound, "this notes home has no device identity (run init first)");
  return identity->device_id.to_hex();
}

Result<blindsync::GroupInfo> SyncDevice::group() const {
  auto groups = client_->groups();
  if (groups.empty()) {
    return Status(Code::kNotFound, "this device is in no group yet (run create-group or join)");
  }
  if (groups.size() > 1) {
    return Status(Code::kInvalidArgument, "the device home belongs to " + std::to_string(groups.size()) +
                                              " groups; blindsync-notes uses exactly one");
  }
  return groups.front();
}

Result<std::size_t> SyncDevice::flush_pending(NoteStore& store, const blindsync::GroupId& group) {
  std::size_t pushed = 0;
  for (;;) {
    auto batch = store.pending(64);
    if (!batch) return batch.error();
    if (batch->empty()) return pushed;
    for (const auto& op : *batch) {
      auto blob = client_->push(group, blindsync::as_bytes(op.payload));
      if (!blob) return blob.error();
      // Durable in the outbox now. A crash before the next line pushes it again: harmless, the
      // receivers ignore an op whose HLC they already have.
      if (Status dropped = store.drop_pending(op.seq); !dropped) return dropped;
      ++pushed;
    }
  }
}

void SyncDevice::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(waker_->mutex);
  waker_->cv.wait_for(lock, timeout, [this] { return waker_->woken; });
  waker_->woken = false;
}

}  // namespace notes
