#include "group_sync.h"

#include <algorithm>
#include <exception>
#include <unordered_map>
#include <utility>
#include <variant>

namespace blindsync::client_detail {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Pushes in flight at once: enough to hide the round trip, small enough to bound memory.
constexpr std::size_t kPushWindow = 16;
// Outbox entries loaded from the store at a time.
constexpr std::size_t kOutboxBatch = 64;
// How often watch_live() wakes up to check should_stop() and its end time.
constexpr std::chrono::milliseconds kWatchPoll{200};

std::chrono::milliseconds until(SteadyClock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return std::max(left, std::chrono::milliseconds(0));
}

Status call_handler(const BlobHandler& on_blob, const ReceivedBlob& blob) {
  if (!on_blob) return Status::ok();
  try {
    on_blob(blob);
    return Status::ok();
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string("blob handler threw: ") + e.what());
  } catch (...) {
    return Status(Code::kInternal, "blob handler threw an exception");
  }
}

std::uint32_t reply_id(const Frame& frame) {
  if (frame.request_id != 0) return frame.request_id;
  if (const auto* error = std::get_if<Error>(&frame.message)) return error->request_id;
  return 0;
}

}  // namespace

GroupSync::GroupSync(LocalStore& store, RelaySession& session, GroupContext context)
    : store_(store),
      session_(session),
      context_(std::move(context)),
      tracker_(context_.stored_cursor),
      last_acked_(context_.stored_cursor) {}

std::optional<Status> GroupSync::fatal_frame(const Frame& frame) const {
  if (const auto* error = std::get_if<Error>(&frame.message); error != nullptr && reply_id(frame) == 0) {
    return relay_error_status(*error);
  }
  if (const auto* revoked = std::get_if<DeviceRevoked>(&frame.message);
      revoked != nullptr && revoked->device_id == context_.device_id) {
    return Status(Code::kDeviceRevoked,
                  "this device was revoked from the group" + (revoked->reason.empty() ? "" : ": " + revoked->reason));
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- push

FlushReport GroupSync::flush_outbox() {
  FlushReport report;
  // In batches, so that a long outbox of large blobs is never all in memory at once.
  std::int64_t after_seq = 0;
  for (;;) {
    // Only what this relay has not stored yet: the other relays of the group get theirs from the
    // AsyncClient (a group with one relay behaves exactly as before).
    auto batch = store_.outbox_list_for_relay(context_.group_id, context_.relay_url, kOutboxBatch, after_seq);
    if (!batch) {
      report.aborted = batch.error();
      return report;
    }
    if (batch->empty()) return report;
    after_seq = batch->back().seq;
    report.queued += batch->size();
    if (!push_batch(*batch, report)) return report;
  }
}

bool GroupSync::push_batch(std::vector<OutboxEntry>& entries, FlushReport& report) {
  std::unordered_map<std::uint32_t, std::size_t> in_flight;  // request_id -> entry index
  std::size_t next = 0;
  auto deadline = SteadyClock::now() + session_.timeout();
  while (next < entries.size() || !in_flight.empty()) {
    while (next < entries.size() && in_flight.size() < kPushWindow) {
      OutboxEntry& entry = entries[next];
      // Same blob_id on every retry: the relay answers a repeat with the original cursor.
      auto request_id = session_.send(Push{entry.blob_id, std::move(entry.payload), entry.ttl_seconds});
      if (!request_id) {
        report.aborted = request_id.error();
        return false;
      }
      in_flight.emplace(*request_id, next++);
    }
    auto frame = session_.receive(until(deadline));
    if (!frame) {
      if (frame.error().code() == Code::kTimeout) {
        report.aborted = Status(Code::kTimeout, "relay did not acknowledge " + std::to_string(in_flight.size()) +
                                                    " push(es) within " +
                                                    std::to_string(session_.timeout().count()) + " ms");
      } else {
        report.aborted = frame.error();
      }
      return false;
    }
    if (auto fatal = fatal_frame(*frame)) {
      report.aborted = *fatal;
      return false;
    }
    note_notify(*frame);
    const bool is_ack = std::holds_alternative<PushAck>(frame->message);
    const bool is_error = std::holds_alternative<Error>(frame->message);
    if (!is_ack && !is_error) continue;  // NOTIFY and the like: not what we wait for
    const auto it = in_flight.find(reply_id(*frame));
    if (it == in_flight.end()) continue;  // a stale reply
    const OutboxEntry& entry = entries[it->second];
    in_flight.erase(it);
    deadline = SteadyClock::now() + session_.timeout();
    PushEntryOutcome outcome;
    outcome.blob_id = entry.blob_id;
    if (is_ack) {
      const auto& ack = std::get<PushAck>(frame->message);
      if (ack.blob_id != entry.blob_id) {
        report.aborted = Status(Code::kInvalidMessage, "relay acknowledged blob " + ack.blob_id.to_hex() +
                                                           " in reply to a push of " + entry.blob_id.to_hex());
        return false;
      }
      if (auto recorded = store_.outbox_ack(context_.group_id, entry.blob_id, context_.relay_url); !recorded) {
        report.aborted = recorded.error();
        return false;
      }
      outcome.ack = ack;
      ++report.acked;
    } else {
      outcome.error = relay_error_status(std::get<Error>(frame->message));
      // A blob over the relay's size limit can never succeed: drop it instead of retrying forever.
      if (outcome.error.code() == Code::kBlobTooLarge) {
        if (Status removed = store_.outbox_remove(context_.group_id, entry.blob_id); !removed) {
          report.aborted = removed;
          return false;
        }
      }
    }
    report.outcomes.push_back(std::move(outcome));
  }
  return true;
}

void GroupSync::note_notify(const Frame& frame) {
  if (const auto* notify = std::get_if<Notify>(&frame.message)) {
    notified_max_ = std::max(notified_max_, notify->cursor);
  }
}

// ---------------------------------------------------------------- pull

Result<std::uint32_t> GroupSync::send_pull(std::uint32_t pages) {
  std::uint32_t limit = kDefaultMaxPullLimit;
  if (session_.limits().max_pull_limit != 0) limit = std::min(limit, session_.limits().max_pull_limit);
  return session_.send(Pull{tracker_.delivered(), limit, pages});
}

Result<Frame> GroupSync::wait_for_reply(std::uint32_t request_id, std::string_view what) {
  const auto deadline = SteadyClock::now() + session_.timeout();
  for (;;) {
    const auto left = until(deadline);
    if (left.count() == 0) {
      return Status(Code::kTimeout, "relay did not answer " + std::string(what) + " within " +
                                        std::to_string(session_.timeout().count()) + " ms");
    }
    auto frame = session_.receive(left);
    if (!frame) {
      if (frame.error().code() == Code::kTimeout) continue;  // the deadline check above ends the loop
      return frame.error();
    }
    if (auto fatal = fatal_frame(*frame)) return *fatal;
    if (reply_id(*frame) == request_id) return frame;
    note_notify(*frame);
    // Anything else (NOTIFY while catching up, a stale reply) is not ours to handle here.
  }
}

Status GroupSync::deliver(const std::vector<Incoming>& blobs, bool allow_gaps, const BlobHandler& on_blob) {
  const Cursor start = tracker_.delivered();
  std::vector<SeenBlob> seen;
  // Seen before this page (one read for the whole page), and delivered from it.
  std::vector<BlobId> ids;
  if (skip_seen_) {
    ids.reserve(blobs.size());
    for (const Incoming& blob : blobs) {
      if (blob.cursor > start) ids.push_back(*blob.blob_id);
    }
  }
  const auto seen_before = store_.seen_among(context_.group_id, ids);
  if (!seen_before) return seen_before.error();
  LocalStore::SeenSet seen_now;
  Status result;
  for (const Incoming& blob : blobs) {
    const Cursor delivered = tracker_.delivered();
    if (blob.cursor <= delivered) continue;  // already handed over (or out of order)
    if (blob.cursor != delivered + 1) {
      if (!allow_gaps) break;
      // A PULL page skips cursors whose blobs expired or were deleted: nothing to wait for.
      tracker_.reset(blob.cursor - 1);
    }
    const bool already_seen =
        skip_seen_ && (seen_before->count(*blob.blob_id) != 0 || seen_now.count(*blob.blob_id) != 0);
    if (!already_seen) {
      auto received = open_incoming(*context_.payload_key, context_.group_id, blob);
      if (!received) {
        // Skipped, not retried: the same bytes would fail again. pull() reports the count.
        ++crypto_failures_;
      } else {
        if (Status handled = call_handler(on_blob, *received); !handled) {
          result = handled;
          break;
        }
        seen.push_back(SeenBlob{*blob.blob_id, blob.cursor});
        seen_now.insert(*blob.blob_id);
      }
    }
    (void)tracker_.observe(blob.cursor);
  }
  if (tracker_.delivered() > start || !seen.empty()) {
    if (Status saved = store_.advance_cursor(context_.group_id, context_.relay_url, tracker_.delivered(), seen);
        !saved) {
      return saved;
    }
    if (tracker_.delivered() > last_acked_) {
      // Tell the relay what is now safely stored here. A failure surfaces on the next receive.
      if (session_.send(Ack{tracker_.delivered()})) last_acked_ = tracker_.delivered();
    }
  }
  return result;
}

Status GroupSync::handle_page(const PullResponse& page, const BlobHandler& on_blob, bool* has_more) {
  const Cursor before = tracker_.delivered();
  std::vector<Incoming> incoming;
  incoming.reserve(page.blobs.size());
  for (const auto& blob : page.blobs) {
    incoming.push_back(incoming_from(blob));
  }
  if (Status delivered = deliver(incoming, /*allow_gaps=*/true, on_blob); !delivered) return delivered;
  *has_more = page.has_more;
  if (page.has_more && tracker_.delivered() <= before) {
    // Without progress "has_more" would make us ask for the same page forever.
    return Status(Code::kInvalidMessage, "relay said has_more but its page did not move past cursor " +
                                             std::to_string(before));
  }
  return Status::ok();
}

Status GroupSync::pull(Cursor after, bool skip_seen, const BlobHandler& on_blob) {
  skip_seen_ = skip_seen;
  tracker_.reset(after);
  // Several pages per PULL: one round trip per run of pages. A relay that predates Pull::pages
  // sends one, without `continues`, and is asked again as before.
  std::optional<std::uint32_t> request_id;  // the PULL whose pages are still coming
  for (;;) {
    if (!request_id) {
      auto sent = send_pull(kCatchUpPullPages);
      if (!sent) return sent.error();
      request_id = *sent;
    }
    auto frame = wait_for_reply(*request_id, "PULL");
    if (!frame) return frame.error();
    if (const auto* error = std::get_if<Error>(&frame->message)) return relay_error_status(*error);
    const auto* page = std::get_if<PullResponse>(&frame->message);
    if (page == nullptr) {
      return Status(Code::kInvalidMessage,
                    "relay answered PULL with " + std::string(message_type_name(frame->type())));
    }
    bool has_more = false;
    if (Status handled = handle_page(*page, on_blob, &has_more); !handled) return handled;
    if (!has_more) return Status::ok();
    if (!page->continues) request_id.reset();
  }
}

// ---------------------------------------------------------------- watch

Status GroupSync::watch_live(const WatchOptions& options, const BlobHandler& on_blob) {
  skip_seen_ = true;
  const auto started = SteadyClock::now();
  const auto end = options.duration.count() > 0 ? started + options.duration : SteadyClock::time_point::max();
  std::optional<std::uint32_t> pull_id;  // PULL in flight
  SteadyClock::time_point pull_sent{};
  bool pull_again = false;  // a NOTIFY arrived that the PULL in flight may not cover

  // One page per PULL here: live pulls are small, and the loop below takes one reply per PULL.
  auto start_pull = [&]() -> Status {
    auto request_id = send_pull(1);
    if (!request_id) return request_id.error();
    pull_id = *request_id;
    pull_sent = SteadyClock::now();
    return Status::ok();
  };

  // A NOTIFY that arrived while catching up may name a blob the last page did not include yet.
  if (notified_max_ > tracker_.delivered()) {
    if (Status started_pull = start_pull(); !started_pull) return started_pull;
  }

  for (;;) {
    if (options.should_stop && options.should_stop()) break;
    const auto now = SteadyClock::now();
    if (now >= end) break;
    if (pull_id && now - pull_sent > session_.timeout()) {
      return Status(Code::kTimeout, "relay did not answer PULL within " +
                                        std::to_string(session_.timeout().count()) + " ms");
    }
    const auto wait = end == SteadyClock::time_point::max() ? kWatchPoll : std::min(kWatchPoll, until(end));
    auto frame = session_.receive(wait);
    if (!frame) {
      if (frame.error().code() == Code::kTimeout) continue;
      return frame.error();
    }
    if (auto fatal = fatal_frame(*frame)) return *fatal;

    if (const auto* notify = std::get_if<Notify>(&frame->message)) {
      if (notify->cursor <= tracker_.delivered()) continue;
      const bool deliverable = notify->payload.has_value() &&
                               tracker_.classify(notify->cursor) == CursorTracker::Verdict::kInOrder;
      if (deliverable) {
        const std::vector<Incoming> one{incoming_from(*notify)};
        if (Status delivered = deliver(one, /*allow_gaps=*/false, on_blob); !delivered) return delivered;
      } else if (pull_id) {
        pull_again = true;
      } else if (Status started_pull = start_pull(); !started_pull) {
        // A gap (missed NOTIFYs) or a payload too large to inline: fetch from the delivered cursor.
        return started_pull;
      }
      continue;
    }
    if (pull_id && reply_id(*frame) == *pull_id) {
      pull_id.reset();
      if (const auto* error = std::get_if<Error>(&frame->message)) return relay_error_status(*error);
      const auto* page = std::get_if<PullResponse>(&frame->message);
      if (page == nullptr) {
        return Status(Code::kInvalidMessage,
                      "relay answered PULL with " + std::string(message_type_name(frame->type())));
      }
      bool has_more = false;
      if (Status handled = handle_page(*page, on_blob, &has_more); !handled) return handled;
      if (has_more || pull_again) {
        pull_again = false;
        if (Status started_pull = start_pull(); !started_pull) return started_pull;
      }
      continue;
    }
    // Other frames (stale replies, DEVICE_REVOKED of another device, ...) do not concern a watch.
  }
  return Status::ok();
}

}  // namespace blindsync::client_detail
