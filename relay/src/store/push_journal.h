// PushJournal: one append-only segment file on the relay's durable push path (private to
// relay/src/store).
//
// Why it exists: a PUSH_ACK must not be sent before the blob is durable, and a SQLite B-tree
// commit per batch of ~64 pushes dirties one table leaf and one random index leaf per push (~27 KB
// written per 1 KiB blob, measured). Appending the batch to this file costs one sequential write
// (and, with durability full, one fdatasync); SQLite is then brought up to date behind the acks in
// large transactions (store/pending_blobs.h), and rebuilt from this file after a crash.
//
// File layout (all integers little-endian):
//   header  "BSPUSHJ1" (8 bytes), database epoch (u64)
//   record  body length (u32), checksum (u64), body
//   body    group_id (32) blob_id (16) sender_id (32) cursor (u64) timestamp_ms (u64)
//           expires_at_ms (u64) payload (the rest)
// The checksum is SipHash-2-4 (libsodium crypto_shorthash) of the body, keyed with the epoch:
// a torn or stale record fails it, and so does a record of another database.
//
// Segments: the journal is a numbered series of these files, <db>-seg-<number> (segment_path_for).
// The writer appends to the newest; once it holds journal_clear_bytes the next is started. A
// segment is not emptied once SQLite has its records: SQLite's rows point at their payloads in it
// (JournalRecord::segment, payload_offset), so a payload is written once, here, and never copied
// into SQLite's B-tree, WAL and checkpoint (docs/benchmarks.md). A segment is deleted once no row
// points into it (sqlite_writer.h says when, and how sparse ones are compacted).
// The two files of the earlier format (<db>-pushlog, <db>-pushlog2) are read once, replayed into
// SQLite with their payloads inline, and deleted.
//
// Reading stops at the first record that is short or fails its checksum: only an append that
// never completed (so was never acknowledged) can leave one, and it is always the last. A segment
// made from a zero-filled spare (segment_spare.h) goes on with zeros past its last record; a zero
// length is short, so they read as the end.
// A failed append cuts the file back to where it was, so a later append never follows a torn one.
//
// Thread-safety: none. The store keeps two (sqlite_writer.h): the writer thread appends to one,
// and each is touched only under the writer's lock for it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"

namespace blindsync::relay::sqlite {

// One acknowledged push as the journal (and the in-memory tail) holds it.
struct JournalRecord {
  GroupId group_id;
  BlobId blob_id;
  DeviceId sender_id;
  Cursor cursor = 0;
  std::uint64_t timestamp_ms = 0;
  std::uint64_t expires_at_ms = 0;
  std::shared_ptr<const Bytes> payload;  // shared with readers of the tail; never null
  // Where the payload lies on disk: the segment's number and the payload's offset in that file
  // (set by append() and read_all(); 0 for the earlier format's files, whose payloads SQLite
  // stores inline).
  std::uint64_t segment = 0;
  std::uint64_t payload_offset = 0;
};

// Offsets inside a record, from its first byte: the body, its blob id and the payload.
inline constexpr std::size_t kRecordBodyOffset = 4 + 8;
inline constexpr std::size_t kRecordBlobIdOffset = 4 + 8 + 32;
inline constexpr std::size_t kRecordPayloadOffset = 4 + 8 + 32 + 16 + 32 + 3 * 8;

class PushJournal {
 public:
  // Opens or creates (0600) the journal of the database with this epoch, and locks it (flock,
  // exclusive) for as long as it is open: a second relay on the same database is refused. A file
  // that holds records of another epoch is refused (they belong to a database that is not this
  // one); an empty one, or one whose header is zeros (a spare renamed into place just before a
  // crash), is taken over. Appends go after the last intact record (the file is read to find it).
  // `segment`: the file's number, stamped on the records it appends and reads (0: a file of the
  // earlier format).
  static Result<PushJournal> open(const std::string& path, std::uint64_t epoch, bool sync,
                                  std::uint64_t segment = 0);
  // Opens a zero-filled spare just renamed to `path` (segment_spare.h) as a new, empty segment:
  // the header and then the records are written over the zeros, so the file's size does not change
  // while it fills (until a run of pushes goes past its end).
  static Result<PushJournal> open_zero_filled(const std::string& path, std::uint64_t epoch, bool sync,
                                              std::uint64_t segment);

  PushJournal(PushJournal&& other) noexcept;
  PushJournal& operator=(PushJournal&& other) noexcept;
  PushJournal(const PushJournal&) = delete;
  PushJournal& operator=(const PushJournal&) = delete;
  ~PushJournal();

  // Every intact record, in the order written.
  Result<std::vector<JournalRecord>> read_all() const;

  // Writes the records with one write call, then fdatasync when `sync`, and sets each record's
  // segment and payload_offset. STORAGE_FULL when the disk is full, INTERNAL for other faults;
  // either way the file is as it was before.
  Status append(std::span<JournalRecord> records);

  // Closes and deletes the file (a clean shutdown with nothing left to replay).
  void remove();

  // Gives back the zeros past the last record (a sealed or closing zero-filled segment). Not synced:
  // if the cut is lost, the zeros read as the end of the records, as they did before.
  Status trim();

  // The end of the records (the file may go on past it with zeros).
  std::uint64_t size_bytes() const noexcept { return size_; }
  std::uint64_t segment() const noexcept { return segment_; }
  // A failed append could not be cut back: this file takes no more appends (start the next).
  bool broken() const noexcept { return broken_; }
  bool has_records() const noexcept;
  const std::string& path() const noexcept { return path_; }

 private:
  PushJournal() = default;
  // Opens (or creates, 0600) and locks the file; size_bytes() is then the file's size.
  static Result<PushJournal> open_locked(const std::string& path, std::uint64_t epoch, bool sync,
                                         std::uint64_t segment);
  Status write_header();
  // The file's first `size` bytes (fewer if it is shorter).
  Result<std::vector<std::uint8_t>> read_bytes(std::uint64_t size) const;
  // Calls on_record(offset, body, body_size) for each intact record in `file` (the file's bytes
  // from its start), in order; returns where the last one ends.
  template <typename OnRecord>
  std::size_t for_each_record(const std::vector<std::uint8_t>& file, OnRecord&& on_record) const;
  // Empties the file down to its header (open() takes over an empty or header-less file so).
  Status clear();

  std::string path_;
  int fd_ = -1;
  std::uint64_t epoch_ = 0;
  bool sync_ = true;
  std::uint64_t size_ = 0;        // the end of the records: where the next append goes
  std::uint64_t file_bytes_ = 0;  // the file's size: past size_ when it was zero-filled
  std::uint64_t segment_ = 0;
  bool broken_ = false;  // a failed append could not be cut back: refuse every later append
  std::vector<std::uint8_t> buffer_;  // reused between appends
};

// The earlier format's two files next to a database file (read once, then deleted).
std::string journal_path_for(const std::string& database_path);
std::string second_journal_path_for(const std::string& database_path);

// Segment `number` of a database file: <db>-seg-<number, 10 digits>.
std::string segment_path_for(const std::string& database_path, std::uint64_t number);
// The numbers of the database's segment files, ascending.
Result<std::vector<std::uint64_t>> list_segments(const std::string& database_path);
// fsync of the directory holding `path`, so a file just created there survives power loss.
Status sync_parent_directory(const std::string& path);

}  // namespace blindsync::relay::sqlite
