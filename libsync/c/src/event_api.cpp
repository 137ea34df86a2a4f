// Events across the C boundary: bs_poll_event / bs_wait_event convert one AsyncClient event into
// a bs_event whose strings and payload live in a heap holder freed by bs_event_free.
#include <chrono>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "c_api_internal.h"

namespace blindsync::capi {
namespace {

// What a bs_event points into. Owned through bs_event::internal_.
struct EventHolder {
  std::string relay_url;
  std::string message;
  Bytes data;
};

template <typename Id>
void put_hex(char* dst, std::size_t capacity, const Id& id) {
  copy_truncated(dst, capacity, id.to_hex());
}

void fill(bs_event& out, EventHolder& holder, Event& event) {
  std::visit(
      [&](auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, EventConnected>) {
          out.kind = BS_EVENT_CONNECTED;
          put_hex(out.group_id, sizeof(out.group_id), e.group);
          holder.relay_url = std::move(e.relay_url);
        } else if constexpr (std::is_same_v<T, EventDisconnected>) {
          out.kind = BS_EVENT_DISCONNECTED;
          put_hex(out.group_id, sizeof(out.group_id), e.group);
          holder.relay_url = std::move(e.relay_url);
          out.code = static_cast<int>(e.reason.code());
          holder.message = e.reason.message();
        } else if constexpr (std::is_same_v<T, EventReconnecting>) {
          out.kind = BS_EVENT_RECONNECTING;
          put_hex(out.group_id, sizeof(out.group_id), e.group);
          holder.relay_url = std::move(e.relay_url);
          out.attempt = e.attempt;
          out.delay_ms = static_cast<std::int64_t>(e.delay.count());
        } else if constexpr (std::is_same_v<T, EventBlobPushed>) {
          out.kind = BS_EVENT_BLOB_PUSHED;
          put_hex(out.group_id, sizeof(out.group_id), e.group);
          put_hex(out.blob_id, sizeof(out.blob_id), e.blob_id);
          out.cursor = e.cursor;
          out.duplicate = e.duplicate ? 1 : 0;
          holder.relay_url = std::move(e.relay_url);
        } else if constexpr (std::is_same_v<T, EventBlobReceived>) {
          out.kind = BS_EVENT_BLOB_RECEIVED;
          put_hex(out.group_id, sizeof(out.group_id), e.group);
          put_hex(out.blob_id, sizeof(out.blob_id), e.blob.blob_id);
          put_hex(out.sender_id, sizeof(out.sender_id), e.blob.sender_id);
          out.cursor = e.blob.cursor;
          out.timestamp_ms = e.blob.timestamp_ms;
          holder.data = std::move(e.blob.data);
        } else if constexpr (std::is_same_v<T, EventError>) {
          out.kind = BS_EVENT_ERROR;
          if (e.group) put_hex(out.group_id, sizeof(out.group_id), *e.group);
          out.code = static_cast<int>(e.status.code());
          holder.message = e.status.message();
        } else if constexpr (std::is_same_v<T, EventOutboxChanged>) {
          out.kind = BS_EVENT_OUTBOX_CHANGED;
          out.outbox_size = e.size;
        } else if constexpr (std::is_same_v<T, EventCaughtUp>) {
          out.kind = BS_EVENT_CAUGHT_UP;
          put_hex(out.group_id, sizeof(out.group_id), e.group);
          holder.relay_url = std::move(e.relay_url);
          out.cursor = e.cursor;
        } else if constexpr (std::is_same_v<T, EventDeliveryAbandoned>) {
          out.kind = BS_EVENT_DELIVERY_ABANDONED;
          put_hex(out.group_id, sizeof(out.group_id), e.group);
          put_hex(out.blob_id, sizeof(out.blob_id), e.blob_id);
          holder.relay_url = std::move(e.relay_url);
        } else {
          static_assert(!sizeof(T*), "every event kind must be converted");
        }
      },
      event);
}

// Takes at most one event. 1 / 0 / -code; *out is zeroed unless 1.
int poll_one(bs_client* client, bs_event* out) noexcept {
  std::memset(out, 0, sizeof(*out));
  bs_error err{};
  int rc = guarded(&err, [&]() -> int {
    // One at a time: poll_events commits what the previous call handed out, so taking more than
    // the app has seen would commit blobs it never handled.
    std::vector<Event> events = client->client->poll_events(1);
    if (events.empty()) return 0;
    auto holder = std::make_unique<EventHolder>();
    fill(*out, *holder, events.front());
    out->relay_url = holder->relay_url.c_str();
    out->message = holder->message.c_str();
    out->data = holder->data.empty() ? nullptr : holder->data.data();
    out->data_len = holder->data.size();
    out->internal_ = holder.release();
    return 1;
  });
  if (rc == 1 || rc == 0) return rc;
  std::memset(out, 0, sizeof(*out));
  return -rc;
}

}  // namespace
}  // namespace blindsync::capi

extern "C" {

int bs_poll_event(bs_client* client, bs_event* out) {
  if (out == nullptr) return -BS_ERR_INVALID_ARGUMENT;
  if (client == nullptr) {
    std::memset(out, 0, sizeof(*out));
    return -BS_ERR_INVALID_ARGUMENT;
  }
  return blindsync::capi::poll_one(client, out);
}

int bs_wait_event(bs_client* client, int64_t timeout_ms, bs_event* out) {
  if (out == nullptr) return -BS_ERR_INVALID_ARGUMENT;
  if (client == nullptr || timeout_ms < 0) {
    std::memset(out, 0, sizeof(*out));
    return -BS_ERR_INVALID_ARGUMENT;
  }
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  // Bounded by the deadline: each round either returns or waits for a notify.
  for (;;) {
    // Read the generation before polling: a notify that lands between an empty poll and the wait
    // changes it, so the wait returns at once instead of missing the wake-up.
    std::uint64_t seen = 0;
    try {
      seen = client->notify->generation();
    } catch (...) {
      std::memset(out, 0, sizeof(*out));
      return -BS_ERR_UNEXPECTED;
    }
    int rc = blindsync::capi::poll_one(client, out);
    if (rc != 0) return rc;
    const auto now = Clock::now();
    if (now >= deadline) return 0;
    try {
      client->notify->wait_for_change(seen,
                                      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                                          std::chrono::milliseconds(1));
    } catch (...) {
      return -BS_ERR_UNEXPECTED;
    }
  }
}

void bs_event_free(bs_event* event) {
  if (event == nullptr) return;
  delete static_cast<blindsync::capi::EventHolder*>(event->internal_);
  std::memset(event, 0, sizeof(*event));
}

}  // extern "C"
