#include "relay_link.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "cursor_epoch.h"
#include "incoming_blob.h"

namespace blindsync::client_detail {

namespace {

std::uint32_t reply_id(const Frame& frame) {
  if (frame.request_id != 0) return frame.request_id;
  if (const auto* error = std::get_if<Error>(&frame.message)) return error->request_id;
  return 0;
}

}  // namespace

RelayLink::RelayLink(LinkEnv& env, DeliveryLedger::LinkId id, const crypto::GroupKeys& keys, GroupRelay relay,
                     CursorRecord stored)
    : env_(env),
      id_(id),
      keys_(keys),
      relay_(std::move(relay)),
      self_(env.home.device_id()),
      epoch_(stored.epoch),
      committed_(stored.cursor),
      delivered_(stored.cursor) {
  env_.ledger.add_link(id_, keys_.group_id(), relay_.url);
}

RelayLink::~RelayLink() { stop(); }

// ---------------------------------------------------------------- connection lifecycle

void RelayLink::start() {
  if (stopped_ || revoked_ || state_ != ConnectionState::kDisconnected) return;
  connect();
}

void RelayLink::stop() {
  stopped_ = true;
  ++generation_;  // whatever the old connection still reports is stale now
  for (auto* timer : {&reconnect_timer_, &request_timer_, &outbox_timer_}) {
    env_.loop.cancel(*timer);
    *timer = 0;
  }
  if (connection_) {
    connection_->close();
    connection_.reset();  // joins its threads; they only post to the loop
  }
  state_ = ConnectionState::kDisconnected;
}

void RelayLink::connect() {
  if (stopped_ || connection_) return;
  state_ = ConnectionState::kConnecting;
  const std::uint64_t generation = ++generation_;
  WorkerLoop& loop = env_.loop;
  RelayConnection::Handlers handlers;
  handlers.opened = [this, &loop, generation](const Welcome& welcome, const RelayId&) {
    loop.post([this, generation, welcome] { on_opened(generation, welcome); });
  };
  handlers.frame = [this, &loop, generation](Frame frame) {
    loop.post(
        [this, generation, frame = std::move(frame)]() mutable { on_frame(generation, std::move(frame)); });
  };
  handlers.closed = [this, &loop, generation](Status reason) {
    loop.post([this, generation, reason = std::move(reason)]() mutable {
      on_closed(generation, std::move(reason));
    });
  };
  SessionParams params =
      env_.home.session_params(relay_.url, relay_.relay_id, keys_, delivered_, env_.options.request_timeout);
  connection_ =
      std::make_unique<RelayConnection>(env_.options.transport, std::move(params), std::move(handlers));
  connection_->start();
}

void RelayLink::on_opened(std::uint64_t generation, const Welcome& welcome) {
  if (generation != generation_ || stopped_) return;
  state_ = ConnectionState::kConnected;
  attempt_ = 0;
  limits_ = welcome.limits;
  const GroupId& group = keys_.group_id();

  auto stored = env_.store.load_cursor(group, relay_.url);
  const CursorRecord known = stored ? *stored : CursorRecord{committed_, epoch_};
  if (!stored) env_.events.push(EventError{group, stored.error()});
  committed_ = known.cursor;
  const Cursor ours = std::max(delivered_, committed_);
  if (relay_was_reset(known.epoch, ours, welcome)) {
    // Our cursors name other blobs (or none) at this relay now: start again from 0; blobs already
    // delivered are recognised by id (seen_blobs, or still pending in the ledger).
    delivered_ = 0;
    committed_ = 0;
    env_.ledger.reset_link(id_);
    if (Status saved = env_.store.set_cursor_state(group, relay_.url, CursorRecord{0, welcome.epoch});
        !saved) {
      env_.events.push(EventError{group, saved});
    }
  } else if (known.epoch != welcome.epoch) {
    if (Status saved =
            env_.store.set_cursor_state(group, relay_.url, CursorRecord{known.cursor, welcome.epoch});
        !saved) {
      env_.events.push(EventError{group, saved});
    }
  }
  epoch_ = welcome.epoch;
  relay_max_ = welcome.max_cursor;  // fresh: a replaced database may be behind what we saw before
  env_.events.push(EventConnected{group, relay_.url});

  // Catch up and drain the outbox at once: both are pipelined on the one session.
  outbox_scan_seq_ = 0;
  start_pull();
  pump_outbox();
}

void RelayLink::fail_session(Status reason) {
  if (!failure_) failure_ = std::move(reason);
  if (connection_) connection_->close();
}

void RelayLink::on_closed(std::uint64_t generation, Status reason) {
  if (generation != generation_) return;
  connection_.reset();
  for (auto* timer : {&request_timer_, &outbox_timer_}) {
    env_.loop.cancel(*timer);
    *timer = 0;
  }
  pull_request_.reset();
  pull_run_blocked_ = false;
  pushes_in_flight_.clear();
  blobs_in_flight_.clear();
  outbox_paused_ = false;
  const Status why = failure_ ? *failure_ : reason;
  failure_.reset();
  if (stopped_) {
    state_ = ConnectionState::kDisconnected;
    return;
  }
  const GroupId& group = keys_.group_id();
  env_.events.push(EventDisconnected{group, relay_.url, why});
  if (revoked_ || why.code() == Code::kDeviceRevoked) {
    // Retrying cannot help: the relay refuses this device from now on.
    revoked_ = true;
    state_ = ConnectionState::kDisconnected;
    env_.events.push(EventError{group, why});
    watch_stale_deliveries();
    return;
  }
  ++attempt_;
  const auto delay = backoff_delay(env_.options.backoff, attempt_, env_.jitter);
  state_ = ConnectionState::kBackingOff;
  env_.events.push(EventReconnecting{group, relay_.url, attempt_, delay});
  reconnect_timer_ = env_.loop.run_after(delay, [this] {
    reconnect_timer_ = 0;
    if (stopped_ || state_ != ConnectionState::kBackingOff) return;
    // A retry round: deliveries this relay has missed for too long are given up first.
    give_up_stale_deliveries();
    state_ = ConnectionState::kDisconnected;
    connect();
  });
}

void RelayLink::on_frame(std::uint64_t generation, Frame frame) {
  // After fail_session() the frames still in the mailbox belong to a session we are ending.
  if (generation != generation_ || stopped_ || state_ != ConnectionState::kConnected || failure_) return;
  const GroupId& group = keys_.group_id();
  if (const auto* notify = std::get_if<Notify>(&frame.message)) {
    on_notify(*notify);
    return;
  }
  if (const auto* revoked = std::get_if<DeviceRevoked>(&frame.message)) {
    if (revoked->device_id == self_) {
      revoked_ = true;
      fail_session(Status(Code::kDeviceRevoked, "this device was revoked from the group" +
                                                    (revoked->reason.empty() ? "" : ": " + revoked->reason)));
    }
    return;
  }
  const std::uint32_t answer_to = reply_id(frame);
  if (answer_to == 0) {
    if (const auto* error = std::get_if<Error>(&frame.message)) {
      // A relay-initiated ERROR: the relay usually closes the session after it.
      const Status status = relay_error_status(*error);
      if (status.code() == Code::kDeviceRevoked) revoked_ = true;
      env_.events.push(EventError{group, status});
    }
    return;
  }
  if (pull_request_ && answer_to == *pull_request_) {
    note_progress();
    const auto* page = std::get_if<PullResponse>(&frame.message);
    if (page == nullptr || !page->continues) pull_request_.reset();  // else more pages of this PULL follow
    if (page != nullptr) {
      on_page(*page);
    } else if (const auto* error = std::get_if<Error>(&frame.message)) {
      fail_session(relay_error_status(*error));  // a reconnect retries the pull
    } else {
      fail_session(Status(Code::kInvalidMessage,
                          "relay answered PULL with " + std::string(message_type_name(frame.type()))));
    }
  } else if (pushes_in_flight_.count(answer_to) != 0) {
    note_progress();
    on_push_reply(answer_to, frame);
  }
  if (!awaiting_replies()) {
    env_.loop.cancel(request_timer_);
    request_timer_ = 0;
  }
}

// ---------------------------------------------------------------- requests

std::uint32_t RelayLink::next_request_id() {
  last_request_id_ = last_request_id_ == UINT32_MAX ? 1 : last_request_id_ + 1;  // 0 is the relay's
  return last_request_id_;
}

bool RelayLink::send(std::uint32_t request_id, Message message) {
  if (!connection_ || state_ != ConnectionState::kConnected) return false;
  const bool is_request = !std::holds_alternative<Ack>(message);
  if (is_request && !awaiting_replies()) note_progress();  // the clock starts with the first request
  if (!connection_->send(request_id, std::move(message))) return false;
  if (is_request) arm_request_timer();
  return true;
}

void RelayLink::note_progress() { last_progress_ = WorkerLoop::Clock::now(); }

void RelayLink::arm_request_timer() {
  if (request_timer_ != 0) return;
  request_timer_ = env_.loop.run_at(last_progress_ + env_.options.request_timeout, [this] {
    request_timer_ = 0;
    check_request_timeout();
  });
}

void RelayLink::check_request_timeout() {
  if (!awaiting_replies() || state_ != ConnectionState::kConnected) return;
  if (WorkerLoop::Clock::now() - last_progress_ >= env_.options.request_timeout) {
    fail_session(Status(Code::kTimeout, "relay " + relay_.url + " did not answer within " +
                                            std::to_string(env_.options.request_timeout.count()) + " ms"));
    return;
  }
  arm_request_timer();
}

// ---------------------------------------------------------------- receiving

void RelayLink::resume() {
  if (pull_wanted_) start_pull();
}

void RelayLink::start_pull() {
  if (state_ != ConnectionState::kConnected || pull_request_) return;
  const std::size_t room = env_.events.blob_room();
  if (room == 0) {
    // Stop fetching until the app polls (EventQueue::take reports it, then resume()).
    pull_wanted_ = true;
    env_.events.note_blocked();
    return;
  }
  std::uint32_t limit = kDefaultMaxPullLimit;
  if (limits_.max_pull_limit != 0) limit = std::min(limit, limits_.max_pull_limit);
  limit = static_cast<std::uint32_t>(std::min<std::size_t>(limit, room));
  // As many pages as the event queue has room for (at most kCatchUpPullPages): one round trip
  // per run of pages, and never more blobs on the way than the app has room for.
  const auto pages = static_cast<std::uint32_t>(std::clamp<std::size_t>(room / limit, 1, kCatchUpPullPages));
  const std::uint32_t request_id = next_request_id();
  if (!send(request_id, Pull{delivered_, limit, pages})) return;
  pull_request_ = request_id;
  pull_wanted_ = false;
}

void RelayLink::on_page(const PullResponse& page) {
  if (pull_run_blocked_) {
    // An earlier page of this run did not fit the event queue: delivering this one would skip
    // its blobs. The rest of the run is dropped and fetched again from the delivered cursor.
    if (!page.continues) {
      pull_run_blocked_ = false;
      start_pull();  // waits for room if there is none yet
    }
    return;
  }
  const Cursor before = delivered_;
  see_relay_cursor(page.max_cursor);
  if (!page.blobs.empty()) see_relay_cursor(page.blobs.back().cursor);
  // Which of the page's blobs were delivered before, in one read of the store.
  std::vector<BlobId> ids;
  ids.reserve(page.blobs.size());
  for (const auto& blob : page.blobs) {
    if (blob.cursor > delivered_) ids.push_back(blob.blob_id);
  }
  auto seen_before = env_.store.seen_among(keys_.group_id(), ids);
  if (!seen_before) env_.events.push(EventError{keys_.group_id(), seen_before.error()});  // looked up one by one
  bool blocked = false;
  for (const auto& blob : page.blobs) {
    if (blob.cursor <= delivered_) continue;  // delivered already (e.g. by a NOTIFY meanwhile)
    // A page skips cursors whose blobs expired or were deleted: nothing to wait for there.
    if (!accept(incoming_from(blob), seen_before ? &*seen_before : nullptr)) {
      blocked = true;
      break;
    }
  }
  env_.blobs_handled();
  if (blocked) {
    pull_wanted_ = true;  // the rest is fetched again once the app made room
    pull_run_blocked_ = page.continues;
    return;
  }
  if (page.has_more && delivered_ <= before) {
    // Without progress "has_more" would make us ask for the same page forever.
    fail_session(Status(Code::kInvalidMessage, "relay said has_more but its page did not move past cursor " +
                                                   std::to_string(before)));
    return;
  }
  if (page.has_more || pull_wanted_) {
    start_pull();
    return;
  }
  // Nothing more to fetch: every blob the relay held when it answered is queued (or skipped).
  see_relay_cursor(delivered_);
  env_.events.push(EventCaughtUp{keys_.group_id(), relay_.url, delivered_});
}

void RelayLink::on_notify(const Notify& notify) {
  see_relay_cursor(notify.cursor);
  if (notify.cursor <= delivered_) return;
  if (notify.cursor == delivered_ + 1 && notify.payload.has_value()) {
    if (accept(incoming_from(notify))) {
      env_.blobs_handled();
    } else {
      pull_wanted_ = true;
    }
    return;
  }
  // A gap (NOTIFYs we missed) or a payload too large to inline: fetch from our cursor.
  pull_wanted_ = true;
  start_pull();
}

bool RelayLink::accept(const IncomingBlob& blob, const LocalStore::SeenSet* seen_before) {
  const GroupId& group = keys_.group_id();
  // Our own blobs come back in pulls: the app has them already (EventBlobPushed).
  bool skip = *blob.sender_id == self_ || env_.ledger.is_pending(group, *blob.blob_id);
  if (!skip && seen_before != nullptr) {
    skip = seen_before->count(*blob.blob_id) != 0;
  } else if (!skip) {
    auto seen = env_.store.is_seen(group, *blob.blob_id);
    if (!seen) {
      env_.events.push(EventError{group, seen.error()});  // deliver rather than lose it
    } else {
      skip = *seen;
    }
  }
  std::uint64_t required_seq = 0;
  if (!skip) {
    if (env_.events.blob_room() == 0) {
      env_.events.note_blocked();
      return false;
    }
    auto received = open_incoming(keys_.payload_key(), group, blob);
    if (!received) {
      // Skipped, not retried: the same bytes would fail again.
      env_.events.push(EventError{group, received.error()});
      required_seq = env_.events.last_seq();
    } else {
      required_seq = env_.events.push(EventBlobReceived{group, std::move(*received)});
      env_.ledger.note_blob(group, *blob.blob_id, blob.cursor, required_seq);
    }
  } else {
    required_seq = env_.events.last_seq();
  }
  delivered_ = blob.cursor;
  env_.ledger.note_cursor(id_, blob.cursor, required_seq);
  return true;
}

void RelayLink::committed(Cursor cursor) {
  committed_ = std::max(committed_, cursor);
  // Tell the relay what is now safely stored here (it may drop blobs every device has).
  if (state_ == ConnectionState::kConnected) (void)send(next_request_id(), Ack{cursor});
}

// ---------------------------------------------------------------- pushing

void RelayLink::wake_outbox() { pump_outbox(); }

void RelayLink::pump_outbox() {
  if (state_ != ConnectionState::kConnected || outbox_paused_) return;
  const GroupId& group = keys_.group_id();
  while (pushes_in_flight_.size() < kPushWindow) {
    auto batch = env_.store.outbox_list_for_relay(group, relay_.url, kPushWindow - pushes_in_flight_.size(),
                                                  outbox_scan_seq_);
    if (!batch) {
      env_.events.push(EventError{group, batch.error()});
      return;
    }
    if (batch->empty()) return;
    for (auto& entry : *batch) {
      outbox_scan_seq_ = entry.seq;
      if (blobs_in_flight_.count(entry.blob_id) != 0) continue;
      const std::uint32_t request_id = next_request_id();
      // Same blob_id on every retry: the relay answers a repeat with the original cursor.
      if (!send(request_id, Push{entry.blob_id, std::move(entry.payload), entry.ttl_seconds})) return;
      pushes_in_flight_.emplace(request_id, entry.blob_id);
      blobs_in_flight_.insert(entry.blob_id);
    }
  }
}

void RelayLink::on_push_reply(std::uint32_t request_id, const Frame& frame) {
  const auto it = pushes_in_flight_.find(request_id);
  const BlobId blob = it->second;
  pushes_in_flight_.erase(it);
  blobs_in_flight_.erase(blob);
  const GroupId& group = keys_.group_id();
  if (const auto* ack = std::get_if<PushAck>(&frame.message)) {
    if (ack->blob_id != blob) {
      fail_session(Status(Code::kInvalidMessage, "relay acknowledged blob " + ack->blob_id.to_hex() +
                                                     " in reply to a push of " + blob.to_hex()));
      return;
    }
    push_error_attempt_ = 0;
    see_relay_cursor(ack->cursor);
    auto recorded = env_.store.outbox_ack(group, blob, relay_.url);
    if (!recorded) {
      env_.events.push(EventError{group, recorded.error()});
    } else {
      if (recorded->first) {
        env_.events.push(EventBlobPushed{group, blob, ack->cursor, ack->duplicate, relay_.url});
      }
      if (recorded->removed) env_.outbox_changed();
    }
  } else if (const auto* error = std::get_if<Error>(&frame.message)) {
    const Status status = relay_error_status(*error);
    if (status.code() == Code::kBlobTooLarge) {
      // It can never succeed: drop it instead of retrying forever.
      if (Status removed = env_.store.outbox_remove(group, blob); !removed)
        env_.events.push(EventError{group, removed});
      env_.events.push(EventError{
          group, Status(status.code(), "blob " + blob.to_hex() +
                                           " was refused and dropped from the outbox: " + status.message())});
      env_.outbox_changed();
    } else {
      env_.events.push(EventError{group, status});
      pause_outbox(status);
    }
  } else {
    fail_session(Status(Code::kInvalidMessage,
                        "relay answered PUSH with " + std::string(message_type_name(frame.type()))));
    return;
  }
  pump_outbox();
}

void RelayLink::pause_outbox(const Status&) {
  if (outbox_paused_) return;
  // Rate limits and quotas pass with time: retry the outbox after a backoff delay.
  outbox_paused_ = true;
  ++push_error_attempt_;
  const auto delay = backoff_delay(env_.options.backoff, push_error_attempt_, env_.jitter);
  outbox_timer_ = env_.loop.run_after(delay, [this] {
    outbox_timer_ = 0;
    outbox_paused_ = false;
    outbox_scan_seq_ = 0;
    give_up_stale_deliveries();  // a retry round too (a relay refusing pushes for weeks)
    pump_outbox();
  });
}

void RelayLink::give_up_stale_deliveries() {
  const auto limit = env_.options.outbox_retry_limit;
  // 0 = retry forever; so is anything past a millennium (and it keeps the arithmetic in range).
  if (limit.count() <= 0 || limit > std::chrono::hours(24 * 366 * 1000)) return;
  const GroupId& group = keys_.group_id();
  const std::int64_t limit_ms = std::chrono::duration_cast<std::chrono::milliseconds>(limit).count();
  // One indexed query when nothing is stale (the usual case).
  auto given_up = env_.store.outbox_give_up(group, relay_.url, now_unix_ms() - limit_ms);
  if (!given_up) {
    env_.events.push(EventError{group, given_up.error()});
    return;
  }
  if (given_up->empty()) return;
  for (const auto& blob : *given_up) env_.events.push(EventDeliveryAbandoned{group, blob, relay_.url});
  env_.outbox_changed();
}

void RelayLink::watch_stale_deliveries() {
  give_up_stale_deliveries();
  const auto limit = env_.options.outbox_retry_limit;
  if (stopped_ || limit.count() <= 0) return;
  const std::chrono::milliseconds every =
      limit < std::chrono::hours(1) ? std::chrono::milliseconds(limit) : std::chrono::hours(1);
  env_.loop.cancel(reconnect_timer_);
  reconnect_timer_ = env_.loop.run_after(every, [this] {
    reconnect_timer_ = 0;
    if (!stopped_) watch_stale_deliveries();
  });
}

}  // namespace blindsync::client_detail
