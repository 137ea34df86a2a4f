// The sync loop: hands local edits to blindsync, then applies what other devices sent.
//
//   1. push every pending local edit (SyncDevice::flush_pending);
//   2. repeatedly poll_events(): each received blob is decoded (decode_note_op), checked (its HLC
//      must name the device that sent it) and merged into the NoteStore (last writer wins); a
//      malformed or foreign payload is counted, reported on the log and skipped, never fatal;
//   3. commit_received() once the batch is in the notes database, so blindsync never forgets a
//      blob the app has not stored (a crash in between re-delivers it; merging is idempotent);
//   4. stop after run_for, or (until-idle) once every relay of the group is connected and has
//      reported EventCaughtUp since it last disconnected, the outbox is empty and nothing arrived
//      or was acked for `quiet` — or at `timeout` (idle = false).
// A storage failure while merging stops the loop without committing.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>

#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"
#include "note_store.h"
#include "sync_device.h"

namespace notes {

struct SyncOptions {
  std::optional<std::chrono::milliseconds> run_for;  // set: run this long; unset: until idle
  std::chrono::milliseconds timeout{60'000};         // until-idle gives up after this
  std::chrono::milliseconds quiet{1'000};            // until-idle: how long nothing must happen
};

struct SyncReport {
  std::uint64_t sent = 0;      // local edits handed to blindsync
  std::uint64_t acked = 0;     // pushes the relay confirmed during this run
  std::uint64_t applied = 0;   // remote edits that won and were stored
  std::uint64_t ignored = 0;   // remote edits older than the stored version
  std::uint64_t rejected = 0;  // payloads that were not valid note ops
  std::uint64_t outbox = 0;    // blobs still waiting to be sent at the end
  bool idle = false;           // connected, every relay caught up, outbox empty, quiet
};

blindsync::Result<SyncReport> run_sync(SyncDevice& device, NoteStore& store, const blindsync::GroupId& group,
                                       const SyncOptions& options, std::ostream& log);

}  // namespace notes
