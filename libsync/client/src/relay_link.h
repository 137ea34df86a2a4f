// RelayLink: the AsyncClient's worker-side protocol logic for one (group, relay) pair.
//
// It keeps that relay connected (RelayConnection does the I/O on its own threads and reports
// back through tasks posted to the worker), and over each session:
//   - reconciles the stored cursor with WELCOME (a new epoch, or a max_cursor below ours, means a
//     re-pull from 0; DeliveryLedger and seen_blobs drop the blobs already delivered);
//   - pulls what was missed, then takes live NOTIFYs (inline payload in order: delivered at once;
//     a gap or no payload: PULL), in cursor order, never more than the event queue has room for;
//   - drains the outbox entries this relay has not acked, up to kPushWindow in flight, and again
//     whenever wake_outbox() says push() queued more;
//   - queues EventCaughtUp whenever a pull ends with has_more = false and nothing is left to fetch;
//   - on failure reports EventDisconnected and reconnects after
//     backoff_delay(policy, attempt) (EventReconnecting); attempt resets once a session is open;
//   - on each retry round (reconnect attempt, outbox retry after a relay error; a revoked link
//     every min(limit, 1 h)) gives up the deliveries to this relay that another relay acked more
//     than outbox_retry_limit ago (one indexed query; EventDeliveryAbandoned for each).
// A request unanswered for request_timeout ends the session (and a reconnect follows).
//
// Thread-safety: none. Every method runs on the worker thread; the link borrows everything in
// LinkEnv, which outlives it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "backoff.h"
#include "blindsync/client/async_client.h"
#include "blindsync/crypto/group_keys.h"
#include "delivery_ledger.h"
#include "device_home.h"
#include "event_queue.h"
#include "incoming_blob.h"
#include "local_store.h"
#include "relay_connection.h"
#include "worker_loop.h"

namespace blindsync::client_detail {

// Pushes in flight per relay: enough to hide the round trip, small enough to bound memory.
inline constexpr std::size_t kPushWindow = 16;

// What the links of one AsyncClient share (all used on the worker thread only).
struct LinkEnv {
  LocalStore& store;
  EventQueue& events;
  WorkerLoop& loop;
  DeliveryLedger& ledger;
  const DeviceHome& home;
  const AsyncClientOptions& options;
  const JitterSource& jitter;
  std::function<void()> outbox_changed;  // recount the outbox; EventOutboxChanged if it changed
  std::function<void()> blobs_handled;   // persist what the app already confirmed, if anything
};

class RelayLink {
 public:
  RelayLink(LinkEnv& env, DeliveryLedger::LinkId id, const crypto::GroupKeys& keys, GroupRelay relay,
            CursorRecord stored);
  ~RelayLink();
  RelayLink(const RelayLink&) = delete;
  RelayLink& operator=(const RelayLink&) = delete;

  // Connects now (no-op unless disconnected and not stopped).
  void start();
  // Closes the connection for good (shutdown). Joins the connection's threads.
  void stop();
  // push() added entries to the outbox of this group.
  void wake_outbox();
  // The event queue has room again.
  void resume();
  // cursor was persisted: remember it and tell the relay (ACK) when connected.
  void committed(Cursor cursor);

  const GroupRelay& relay() const noexcept { return relay_; }
  const GroupId& group() const noexcept { return keys_.group_id(); }
  ConnectionState state() const noexcept { return state_; }
  Cursor committed_cursor() const noexcept { return committed_; }
  // The relay's newest cursor as last seen (0 until this link first connected).
  Cursor relay_max_cursor() const noexcept { return relay_max_; }

 private:
  void connect();
  void on_opened(std::uint64_t generation, const Welcome& welcome);
  void on_frame(std::uint64_t generation, Frame frame);
  void on_closed(std::uint64_t generation, Status reason);
  // Ends the current session with reason (reported by on_closed).
  void fail_session(Status reason);

  std::uint32_t next_request_id();
  bool send(std::uint32_t request_id, Message message);
  void note_progress();
  void arm_request_timer();
  void check_request_timeout();
  bool awaiting_replies() const { return pull_request_.has_value() || !pushes_in_flight_.empty(); }

  // ---- receiving ----
  void start_pull();
  void on_page(const PullResponse& page);
  void on_notify(const Notify& notify);
  // Hands one blob to the app (or skips it); false when the event queue has no room for it.
  // seen_before: the page's blob ids seen before it (LocalStore::seen_among), or null to look
  // this one up.
  bool accept(const IncomingBlob& blob, const LocalStore::SeenSet* seen_before = nullptr);

  // ---- pushing ----
  void pump_outbox();
  void on_push_reply(std::uint32_t request_id, const Frame& frame);
  void pause_outbox(const Status& why);
  // Gives up the deliveries to this relay that waited past outbox_retry_limit (see above).
  void give_up_stale_deliveries();
  // A revoked link has no retry rounds: check now, then every min(limit, 1 h).
  void watch_stale_deliveries();
  void see_relay_cursor(Cursor cursor) { relay_max_ = std::max(relay_max_, cursor); }

  LinkEnv& env_;
  DeliveryLedger::LinkId id_;
  const crypto::GroupKeys& keys_;
  GroupRelay relay_;
  DeviceId self_;

  ConnectionState state_ = ConnectionState::kDisconnected;
  bool stopped_ = false;
  bool revoked_ = false;
  std::unique_ptr<RelayConnection> connection_;
  std::uint64_t generation_ = 0;
  std::uint32_t attempt_ = 0;
  WorkerLoop::TimerId reconnect_timer_ = 0;
  std::optional<Status> failure_;  // why fail_session() ended the current session

  // Cursor state: delivered_ includes blobs queued for the app but not committed yet.
  std::uint64_t epoch_ = 0;
  Cursor committed_ = 0;
  Cursor delivered_ = 0;
  Cursor relay_max_ = 0;
  Limits limits_;

  std::uint32_t last_request_id_ = 0;
  WorkerLoop::Clock::time_point last_progress_{};
  WorkerLoop::TimerId request_timer_ = 0;

  std::optional<std::uint32_t> pull_request_;
  bool pull_wanted_ = false;  // a NOTIFY or a full queue left something to fetch
  bool pull_run_blocked_ = false;  // a page of the PULL in flight did not fit: drop the rest of its pages

  std::map<std::uint32_t, BlobId> pushes_in_flight_;  // request_id -> blob
  std::set<BlobId> blobs_in_flight_;
  std::int64_t outbox_scan_seq_ = 0;
  bool outbox_paused_ = false;
  std::uint32_t push_error_attempt_ = 0;
  WorkerLoop::TimerId outbox_timer_ = 0;
};

}  // namespace blindsync::client_detail
