// NoteStore: the app's own SQLite database (one file, created 0600) — the source of truth for
// the notes on this device. blindsync only carries edits between devices.
//
//   notes    one row per note id: title, body, its HLC (wall_ms, counter, device = the device
//            that made the winning edit), a deleted flag (tombstones keep their HLC so that an
//            older put arriving late cannot resurrect the note)
//   pending  encoded ops of local edits not yet handed to blindsync (AsyncClient::push). An edit
//            and its pending op are written in one transaction; the op is dropped once push()
//            returned. A crash in between pushes it twice, which merging ignores (same HLC).
//   meta     the device's latest HLC (so that it survives restarts; every invocation is a new
//            process)
//
// Last writer wins per note: merge() applies a received op only if its HLC is greater than the
// stored one, and always advances the clock (HLC receive rule). Every read-modify-write runs in
// a BEGIN IMMEDIATE transaction, so two processes on one home serialise (busy timeout 10 s).
// Thread-safety: one NoteStore per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blindsync/core/status.h"
#include "hlc.h"
#include "note_op.h"

struct sqlite3;

namespace notes {

struct Note {
  std::string note_id;
  std::string title;
  std::string body;
  Hlc hlc;  // hlc.device is the origin device of this version
  bool deleted = false;
};

struct PendingOp {
  std::int64_t seq = 0;
  std::string payload;  // encoded NoteOp
};

enum class MergeOutcome { kApplied, kIgnored };

class NoteStore {
 public:
  // Opens or creates the database at path (the directory must exist).
  static blindsync::Result<std::unique_ptr<NoteStore>> open(const std::string& path);
  ~NoteStore();
  NoteStore(const NoteStore&) = delete;
  NoteStore& operator=(const NoteStore&) = delete;

  // Local edits, stamped by this device's clock (device: its id in hex), stored and queued for
  // sending. put() keeps the stored title when title is nullopt. remove() is kNotFound for a note
  // that does not exist (or is deleted already).
  blindsync::Result<NoteOp> put(const std::string& device, const std::string& note_id,
                                const std::optional<std::string>& title, const std::string& body,
                                std::uint64_t now_ms);
  blindsync::Result<NoteOp> remove(const std::string& device, const std::string& note_id,
                                   std::uint64_t now_ms);

  // A remote edit (already decoded and checked).
  blindsync::Result<MergeOutcome> merge(const NoteOp& op, std::uint64_t now_ms);

  blindsync::Result<std::optional<Note>> get(const std::string& note_id);
  // Sorted by note id.
  blindsync::Result<std::vector<Note>> list(bool include_deleted);

  blindsync::Result<std::vector<PendingOp>> pending(std::size_t max);
  blindsync::Status drop_pending(std::int64_t seq);
  blindsync::Result<std::uint64_t> pending_count();

 private:
  explicit NoteStore(sqlite3* db) : db_(db) {}
  blindsync::Result<NoteOp> local_edit(const std::string& device, NoteOp op, bool keep_title,
                                       std::uint64_t now_ms);

  sqlite3* db_ = nullptr;
};

}  // namespace notes
