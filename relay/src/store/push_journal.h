// PushJournal: the append-only file on the relay's durable push path (private to relay/src/store).
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
// Reading stops at the first record that is short or fails its checksum: only an append that
// never completed (so was never acknowledged) can leave one, and it is always the last.
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
};

class PushJournal {
 public:
  // Opens or creates (0600) the journal of the database with this epoch, and locks it (flock,
  // exclusive) for as long as it is open: a second relay on the same database is refused. A file
  // that holds records of another epoch is refused (they belong to a database that is not this
  // one); an empty one is taken over.
  static Result<PushJournal> open(const std::string& path, std::uint64_t epoch, bool sync);

  PushJournal(PushJournal&& other) noexcept;
  PushJournal& operator=(PushJournal&& other) noexcept;
  PushJournal(const PushJournal&) = delete;
  PushJournal& operator=(const PushJournal&) = delete;
  ~PushJournal();

  // Every intact record, in the order written.
  Result<std::vector<JournalRecord>> read_all() const;

  // Writes the records with one write call, then fdatasync when `sync`. STORAGE_FULL when the
  // disk is full, INTERNAL for other faults; either way the file is as it was before.
  Status append(std::span<const JournalRecord> records);

  // Drops every record (after they all reached SQLite).
  Status clear();

  // Closes and deletes the file (a clean shutdown with nothing left to replay).
  void remove();

  std::uint64_t size_bytes() const noexcept { return size_; }
  bool has_records() const noexcept;
  const std::string& path() const noexcept { return path_; }

 private:
  PushJournal() = default;
  Status write_header();

  std::string path_;
  int fd_ = -1;
  std::uint64_t epoch_ = 0;
  bool sync_ = true;
  std::uint64_t size_ = 0;
  bool broken_ = false;  // a failed append could not be cut back: refuse appends until clear()
  std::vector<std::uint8_t> buffer_;  // reused between appends
};

// The journal's two files next to a database file: the writer appends to one while the other
// keeps older records until SQLite has them all (see sqlite_writer.h).
std::string journal_path_for(const std::string& database_path);
std::string second_journal_path_for(const std::string& database_path);

}  // namespace blindsync::relay::sqlite
