// SegmentFiles: reads payloads out of the push journal's segment files (push_journal.h) for the
// store's readers, and removes segments no row points into any more (private to relay/src/store).
//
// Why a registry: a pull reads many payloads, usually from one or two segments; opening a file
// per read would cost more than the read. Read descriptors are opened once per segment and
// shared. A segment removed while a reader still holds its descriptor stays readable to that
// reader (the file lives until the last descriptor closes); a reader that comes later and finds
// it gone gets NOT_FOUND and reads again from a newer SQLite snapshot, which no longer points
// there.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"

namespace blindsync::relay::sqlite {

// One payload to read: where it lies, and the blob it must belong to.
struct PayloadRead {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;  // of the payload in the file
  std::uint64_t size = 0;
  BlobId blob_id;        // checked against the record, so a wrong row never serves another blob
  Bytes* out = nullptr;  // filled with the payload
};

class SegmentFiles {
 public:
  explicit SegmentFiles(std::string database_path);
  ~SegmentFiles();
  SegmentFiles(const SegmentFiles&) = delete;
  SegmentFiles& operator=(const SegmentFiles&) = delete;

  // Reads every payload. Neighbouring records are read with one pread (a page of a group that was
  // pushed in order lies in one stretch of a segment). NOT_FOUND when a segment is gone (the row
  // was read from an older snapshot); INTERNAL when a record does not match its row.
  Status read(std::span<PayloadRead> reads);

  // fdatasync of the segment's data (durability normal: before SQLite rows point into it).
  Status sync(std::uint64_t segment);

  // Deletes the segment's file (no row points into it any more).
  Status remove(std::uint64_t segment);

 private:
  struct File;
  Result<std::shared_ptr<File>> open(std::uint64_t segment);

  std::string database_path_;
  std::mutex mutex_;
  std::map<std::uint64_t, std::shared_ptr<File>> files_;  // mutex_
};

}  // namespace blindsync::relay::sqlite
