// blindsync::AsyncClient: the embedding API for apps. It owns a worker thread that keeps every
// group connected to its relays, drains the durable outbox, pulls what was missed, receives live
// NOTIFYs, and reconnects with backoff — the app only pushes bytes and polls events.
//
// Threading model (libtorrent's set_alert_notify / pop_alerts):
//   - Every public method is thread-safe; work is posted to the worker thread.
//   - Results, incoming blobs and state changes go into a bounded event queue. The notify hook
//     (AsyncClientOptions::notify) is called on the worker thread when the queue goes from empty
//     to non-empty: it must only wake the app (signal a condition variable, post to a UI loop).
//   - The app drains the queue with poll_events() on its own thread; per-group handlers set with
//     set_blob_handler() run inside poll_events(), on the app's thread. No user code ever runs
//     under an internal lock or on the worker thread (except the notify hook).
//
// Durability:
//   - push() returns once the sealed blob is in the outbox on disk (SQLite, synchronous=FULL):
//     a crash after push() returned loses nothing; the blob is sent (same blob_id) when a relay is
//     reachable, and the relay stores it exactly once. Completion arrives as EventBlobPushed.
//     The device records that ack without an fsync: after a power cut (not a crash of the app)
//     the blob may be sent again, and EventBlobPushed comes again with duplicate = true.
//   - Incoming blobs reach the app in cursor order, gap-free, each blob_id once. A blob handed out
//     by poll_events() is committed (cursor persisted) when the app calls poll_events() again or
//     commit_received(): a crash while handling a blob re-delivers it (at-least-once).
//
// Several relays per group: pushes go to every relay (EventBlobPushed on the first durable ack;
// the others are retried in the background); each relay has its own cursor; blobs that arrive via
// two relays are delivered once (dedupe by blob_id). Blobs this device pushed are not delivered
// back to it (it had EventBlobPushed for them). A relay that stays unreachable does not keep an
// entry in the outbox forever: once another relay has stored the blob, the delivery to it is
// retried for AsyncClientOptions::outbox_retry_limit and then given up (EventDeliveryAbandoned).
// A blob that no relay has stored is never given up.
//
// Caught up: each time a (group, relay) link finishes pulling with nothing more to fetch (after
// connecting, after a reconnect, after any re-pull), it queues EventCaughtUp. Every blob that
// relay held up to that moment was queued before it, so an app that wants "I have everything"
// waits for EventCaughtUp from the relays it cares about (for example all of the group's) and
// handles the events before it. Later blobs arrive live, and a later EventCaughtUp follows the
// next pull. RelayStatus::relay_max_cursor is the relay's newest cursor as last seen.
//
// Connections: each (group, relay) reconnects on its own. A failed attempt or an ended session gives
// EventDisconnected (with the reason), then EventReconnecting (attempt, delay); an open session
// gives EventConnected. A relay that revoked this device is not retried.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "blindsync/client/client.h"
#include "blindsync/client/transport.h"
#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"

namespace blindsync {

struct BackoffPolicy {
  std::chrono::milliseconds base{1'000};   // first retry delay, doubled per attempt
  std::chrono::milliseconds cap{30'000};   // the doubling stops here ...
  std::chrono::milliseconds jitter{5'000}; // ... then 0..jitter of random delay is added
};

struct AsyncClientOptions {
  TransportFactory transport;  // required (e.g. connect_websocket)
  std::chrono::milliseconds request_timeout{15'000};
  BackoffPolicy backoff;
  std::size_t max_queued_events = 10'000;  // past it the worker stops fetching until the app polls
  std::function<void()> notify;            // see the threading model above; may be empty
  // How long the deliveries of an outbox entry to the group's other relays are retried once one
  // relay has durably stored it (counted from that first ack, persisted across restarts). After
  // it, each still pending delivery is given up with EventDeliveryAbandoned, and an entry with no
  // relay left pending leaves the outbox (EventOutboxChanged). Entries that no relay has stored are kept and retried
  // forever, whatever this says. Checked on each retry round of the relay (reconnect attempt,
  // outbox retry after a relay error). 0 = retry forever.
  std::chrono::seconds outbox_retry_limit{std::chrono::hours(24 * 30)};
};

enum class ConnectionState { kDisconnected, kConnecting, kConnected, kBackingOff };
// Stable lower-case names ("disconnected", "connecting", "connected", "backing_off"); the C API
// reports them as they are, so they are part of its contract too.
std::string_view connection_state_name(ConnectionState state) noexcept;

struct EventConnected {
  GroupId group;
  std::string relay_url;
};
struct EventDisconnected {
  GroupId group;
  std::string relay_url;
  Status reason;
};
struct EventReconnecting {
  GroupId group;
  std::string relay_url;
  std::uint32_t attempt = 0;
  std::chrono::milliseconds delay{0};
};
struct EventBlobPushed {
  GroupId group;
  BlobId blob_id;
  Cursor cursor = 0;
  bool duplicate = false;
  std::string relay_url;  // the relay whose ack completed the push
};
struct EventBlobReceived {
  GroupId group;
  ReceivedBlob blob;
};
struct EventError {
  std::optional<GroupId> group;
  Status status;  // code + message
};
struct EventOutboxChanged {
  std::uint64_t size = 0;  // blobs waiting in the outbox, all groups
};
// The link to relay_url finished a pull with has_more = false: every blob that relay held when it
// answered has been queued (as EventBlobReceived, or skipped: own, duplicate, undecryptable)
// before this event. cursor: the relay cursor handled so far (committed once the app has taken
// the events before this one). Sent after each connect, reconnect and re-pull, never while the
// event queue is too full to take the rest (it follows once the app has polled).
struct EventCaughtUp {
  GroupId group;
  std::string relay_url;
  Cursor cursor = 0;
};
// The outbox gave up delivering blob_id to relay_url: another relay of the group stored it more
// than AsyncClientOptions::outbox_retry_limit ago and relay_url never did. Devices that only use
// relay_url will not get this blob from it. EventOutboxChanged follows if the entry left the
// outbox (no other relay of the group is still pending).
struct EventDeliveryAbandoned {
  GroupId group;
  BlobId blob_id;
  std::string relay_url;
};

// New kinds are only ever appended.
using Event =
    std::variant<EventConnected, EventDisconnected, EventReconnecting, EventBlobPushed, EventBlobReceived,
                 EventError, EventOutboxChanged, EventCaughtUp, EventDeliveryAbandoned>;

struct RelayStatus {
  std::string url;
  ConnectionState state = ConnectionState::kDisconnected;
  Cursor cursor = 0;            // this device's committed cursor at the relay
  Cursor relay_max_cursor = 0;  // the relay's newest cursor as last seen (WELCOME, pages,
                                // NOTIFYs, push acks) by this client since it opened; 0 before
};

struct GroupStatus {
  GroupInfo group;
  std::vector<RelayStatus> relays;
  std::uint64_t outbox = 0;
};

class AsyncClient {
 public:
  // Opens or creates the device home (as Client::open) and starts the worker thread.
  static Result<std::unique_ptr<AsyncClient>> open(const std::string& home_dir, AsyncClientOptions options);
  // Stops the worker (closing sessions with BYE); the outbox keeps whatever was not acked.
  ~AsyncClient();
  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;

  std::future<Result<DeviceIdentity>> create_identity(const std::string& name);
  std::optional<DeviceIdentity> identity() const;
  // relay_urls: one or more; the first is the primary.
  std::future<Result<CreatedGroup>> create_group(const std::vector<std::string>& relay_urls, const std::string& name);
  std::future<Result<GroupInfo>> join_group(const std::string& invite_link);
  std::vector<GroupInfo> groups() const;

  // Seals data and appends it to the durable outbox; returns its blob_id. The worker sends it.
  Result<BlobId> push(const GroupId& group, ByteView data, std::uint32_t ttl_seconds = 0);

  // Takes up to max events (oldest first). Commits the blobs handed out by the previous call.
  std::vector<Event> poll_events(std::size_t max = SIZE_MAX);
  // Commits the blobs handed out so far without taking more events.
  Status commit_received();
  // Optional: called from poll_events() for each EventBlobReceived of that group (the event is
  // still returned). Pass an empty function to remove.
  void set_blob_handler(const GroupId& group, std::function<void(const ReceivedBlob&)> handler);

  std::vector<GroupStatus> status() const;

 private:
  class Impl;
  explicit AsyncClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace blindsync
