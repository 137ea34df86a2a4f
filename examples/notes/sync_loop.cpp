#include "sync_loop.h"

#include <set>
#include <string>
#include <variant>

#include "hlc.h"
#include "note_op.h"

namespace notes {

using blindsync::Result;
using blindsync::Status;
using Clock = std::chrono::steady_clock;

namespace {

struct GroupProgress {
  bool connected = false;  // every relay of the group
  bool caught_up = false;  // every relay of the group said EventCaughtUp since it last disconnected
  std::uint64_t outbox = 0;
};

GroupProgress progress_of(blindsync::AsyncClient& client, const blindsync::GroupId& group,
                          const std::set<std::string>& caught_up) {
  GroupProgress progress;
  for (const auto& status : client.status()) {
    if (status.group.group_id != group) continue;
    progress.outbox = status.outbox;
    progress.connected = !status.relays.empty();
    progress.caught_up = !status.relays.empty();
    for (const auto& relay : status.relays) {
      if (relay.state != blindsync::ConnectionState::kConnected) progress.connected = false;
      if (caught_up.count(relay.url) == 0) progress.caught_up = false;
    }
  }
  return progress;
}

// Decodes and merges one received blob. Only a storage failure is an error.
Status apply_blob(NoteStore& store, const blindsync::ReceivedBlob& blob, SyncReport& report,
                  std::ostream& log) {
  auto op = decode_note_op(blob.data);
  const std::string sender = blob.sender_id.to_hex();
  if (op && op->hlc.device != sender) {
    op = Status(blindsync::Code::kInvalidArgument, "note op: its clock names device " +
                                                       op->hlc.device.substr(0, 8) + " but device " +
                                                       sender.substr(0, 8) + " sent it");
  }
  if (!op) {
    ++report.rejected;
    log << "sync: rejected blob " << blob.blob_id.to_hex() << " from device " << sender.substr(0, 8) << ": "
        << op.error().to_string() << "\n";
    return Status::ok();
  }
  auto merged = store.merge(*op, wall_clock_ms());
  if (!merged) return merged.error();
  ++(*merged == MergeOutcome::kApplied ? report.applied : report.ignored);
  return Status::ok();
}

}  // namespace

Result<SyncReport> run_sync(SyncDevice& device, NoteStore& store, const blindsync::GroupId& group,
                            const SyncOptions& options, std::ostream& log) {
  SyncReport report;
  auto& client = device.client();
  auto sent = device.flush_pending(store, group);
  if (!sent) return sent.error();
  report.sent = *sent;

  const auto start = Clock::now();
  const auto end = start + (options.run_for ? *options.run_for : options.timeout);
  auto last_activity = start;
  // Relays of the group whose link pulled everything it had (EventCaughtUp) and has not
  // disconnected since: blindsync says when we have everything, no guessing from silence. The
  // quiet period only lets a burst of live blobs that follows settle.
  std::set<std::string> caught_up;
  for (;;) {
    bool received = false;
    for (auto& event : client.poll_events()) {
      if (const auto* got = std::get_if<blindsync::EventBlobReceived>(&event)) {
        if (got->group != group) continue;
        if (Status applied = apply_blob(store, got->blob, report, log); !applied) return applied;
        received = true;
        last_activity = Clock::now();
      } else if (std::holds_alternative<blindsync::EventBlobPushed>(event)) {
        ++report.acked;
        last_activity = Clock::now();
      } else if (std::holds_alternative<blindsync::EventConnected>(event)) {
        last_activity = Clock::now();
      } else if (const auto* done = std::get_if<blindsync::EventCaughtUp>(&event)) {
        if (done->group == group) caught_up.insert(done->relay_url);
      } else if (const auto* lost = std::get_if<blindsync::EventDisconnected>(&event)) {
        if (lost->group == group) caught_up.erase(lost->relay_url);
        log << "sync: disconnected from " << lost->relay_url << ": " << lost->reason.to_string() << "\n";
      } else if (const auto* error = std::get_if<blindsync::EventError>(&event)) {
        log << "sync: " << error->status.to_string() << "\n";
      }
    }
    // Everything handed out is in the notes database now: let blindsync move its cursor.
    if (received) {
      if (Status committed = client.commit_received(); !committed) return committed;
    }
    const auto progress = progress_of(client, group, caught_up);
    report.outbox = progress.outbox;
    const bool settled = progress.connected && progress.caught_up && progress.outbox == 0;
    const auto now = Clock::now();
    if (!options.run_for && settled && now - last_activity >= options.quiet) {
      report.idle = true;
      return report;
    }
    if (now >= end) {
      report.idle = settled;
      return report;
    }
    device.wait(std::chrono::milliseconds(50));
  }
}

}  // namespace notes
