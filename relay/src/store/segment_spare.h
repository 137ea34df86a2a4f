// SegmentSpare: a zero-filled file kept ready to become the push journal's next segment (private
// to relay/src/store; the store's writer owns one when durability is full).
//
// Why: with durability full every run of pushes ends in an fdatasync. An append grows the file, so
// that fdatasync must also commit the file's new size and blocks (on ext4 a journal commit: more
// writes and another cache flush); over blocks that are already written and synced it writes the
// data alone. Measured on the 2-core machine of docs/benchmarks.md, 1.1 KB writes each followed by
// fdatasync: appending 1,000-1,100/s with p99 4.9-5.6 ms; over a zero-filled file 6,500-8,700/s
// with p99 0.9-2.5 ms. (PostgreSQL zero-fills its WAL segments for the same reason.)
//
// Appending into zeros is safe: a replay stops at the first record that is short or fails its
// checksum, and a zero length is short, so the zeros past the last record read as the end of the
// segment (push_journal.h). A file is never reused once it held records: a stale record of the
// same database would pass its checksum.
//
// The spare is <db>-seg-spare, a name list_segments() does not match (a backup or a cleanup never
// sees it). A background thread at low priority writes it in 1 MiB steps, each synced, so that a
// flush of the writer's never waits behind more than 1 MiB of zeros. take_as() renames it to the
// next segment's name; the caller makes the directory entry durable. No spare ready is never an
// error: the segment is then created empty and grows, as before.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace blindsync::relay::sqlite {

// The spare's name next to a database file.
std::string spare_segment_path_for(const std::string& database_path);

class SegmentSpare {
 public:
  // Removes a spare an earlier run left (a crash may have cut it short); makes nothing yet.
  SegmentSpare(std::string path, std::uint64_t bytes);
  // Stops the thread between two writes and deletes the spare.
  ~SegmentSpare();
  SegmentSpare(const SegmentSpare&) = delete;
  SegmentSpare& operator=(const SegmentSpare&) = delete;

  // Starts making a spare in the background, unless one is ready or being made.
  void prepare();
  // Renames the ready spare to `path` and returns true; false when none is ready. With `wait`, a
  // spare that is missing is made first, and the call returns once it is (false if that failed).
  bool take_as(const std::string& path, bool wait);

  std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  enum class State { kNone, kMaking, kReady };
  void run();
  // Writes the zero-filled file; false (after logging why) on any failure.
  bool make_file();

  const std::string path_;
  const std::uint64_t bytes_;
  std::mutex mutex_;
  std::condition_variable changed_;
  State state_ = State::kNone;  // mutex_
  bool wanted_ = false;         // mutex_: prepare() asked and the thread has not started on it
  bool stopping_ = false;       // mutex_
  std::optional<std::chrono::steady_clock::time_point> failed_at_;  // mutex_: the last attempt failed
  std::thread thread_;          // started by the first prepare()
};

}  // namespace blindsync::relay::sqlite
