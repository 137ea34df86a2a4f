// WalCheckpointer: keeps the relay store's WAL short without making the writer thread copy it
// (private to relay/src/store).
//
// Why: SQLite's automatic checkpoint runs inside the COMMIT that crosses wal_autocheckpoint, on
// the committing thread. For the relay that is the single writer, so every ~1000 pages one push
// batch also paid for reading the WAL, writing the pages into the database file and two fsyncs —
// measured as about a third of the writer thread's time under W1 (docs/benchmarks.md).
//
// How: attach() replaces the writer connection's auto-checkpoint with a WAL hook that only
// records the WAL's size after each commit and wakes this thread once the WAL has grown by
// passive_frames. The thread checkpoints on its own connection:
// PASSIVE: it copies what it can without ever blocking the writer or readers.
// That alone does not bound the WAL under continuous writes: the WAL only starts over when every
// frame was copied before the writer's next transaction, which a busy writer never allows. A
// RESTART checkpoint from this thread does not help either: it must wait for the writer lock, and
// the writer takes it again right after each commit (measured: the WAL grew to 12,000 frames while
// one RESTART waited). So the writer itself calls restart_if_due() between batches, after their
// completions ran: once the WAL holds restart_frames, it runs RESTART on its own connection. The
// PASSIVE checkpoints have copied nearly every frame by then, so that costs the writer little.
// The writer's synchronous setting is used here too, so a checkpoint never weakens durability.
//
// Ownership: owns its connection and thread. The writer connection must outlive attach() until
// stop() (the store stops the checkpointer before closing the writer).
// Thread-safety: attach() and stop() from the store's owner thread; the hook and restart_if_due()
// run on the writer thread.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "blindsync/core/status.h"
#include "store/sqlite_db.h"

namespace blindsync::relay::sqlite {

struct CheckpointOptions {
  int passive_frames = 4096;   // WAL growth (4 KiB pages) that wakes a PASSIVE checkpoint
  int restart_frames = 65536;  // WAL size at which the writer restarts the WAL itself
};

class WalCheckpointer {
 public:
  static Result<std::unique_ptr<WalCheckpointer>> open(const std::string& path, bool full_sync,
                                                       const CheckpointOptions& options);
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Installs the WAL hook on the writer's connection (turning its auto-checkpoint off).
  void attach(sqlite3* writer_db);
  // Writer thread, between batches: RESTART the WAL on the writer's connection if it holds
  // restart_frames or more and no PASSIVE pass is running (past twice that, it waits for one).
  void restart_if_due();
  // Writer thread, between transactions: runs a checkpoint of `mode` (SQLITE_CHECKPOINT_*) on the
  // writer's connection, after a running PASSIVE pass finished. Returns the SQLite result code.
  int checkpoint_on_writer(int mode);
  // Removes the hook from the writer connection, finishes a running checkpoint, joins the thread.
  void stop();


 private:
  WalCheckpointer(Database db, const CheckpointOptions& options);
  int checkpoint_locked(int mode);  // checkpoint_on_writer() with checkpoint_mutex_ held
  static int on_wal_commit(void* self, sqlite3* db, const char* schema, int wal_frames);
  void run();

  Database db_;
  const CheckpointOptions options_;
  sqlite3* writer_db_ = nullptr;

  std::atomic<int> wal_frames_{0};        // WAL size after the writer's last commit
  std::atomic<int> frames_at_wake_{0};    // WAL size when the last checkpoint started
  std::atomic<std::uint64_t> commits_{0};  // writer commits seen by the hook
  std::atomic<bool> wake_pending_{false};

  std::mutex checkpoint_mutex_;  // held while a checkpoint runs (one at a time, see restart_if_due)
  std::mutex mutex_;  // guards stopping_ and the wake-up
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace blindsync::relay::sqlite
