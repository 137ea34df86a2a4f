#include "store/wal_checkpointer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "thread_name.h"
#include "thread_priority.h"

namespace blindsync::relay::sqlite {
namespace {

constexpr int kBusyTimeoutMs = 5000;  // RESTART waits at most this long for the writer

// WAL growth since the last checkpoint started; a WAL that started over counts from zero.
int growth(int frames, int base) noexcept { return frames >= base ? frames - base : frames; }

}  // namespace

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::open(const std::string& path, bool full_sync,
                                                               const CheckpointOptions& options) {
  auto db = Database::open(path, SQLITE_OPEN_READWRITE);
  if (!db) return db.error();
  sqlite3_busy_timeout(db->get(), kBusyTimeoutMs);
  // The checkpoint's fsyncs follow this connection's setting: never weaker than the writer's.
  if (auto st = db->exec(full_sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"); !st) return st;
  CheckpointOptions checked = options;
  checked.passive_frames = std::max(1, checked.passive_frames);
  checked.restart_frames = std::max(checked.passive_frames, checked.restart_frames);
  return std::unique_ptr<WalCheckpointer>(new WalCheckpointer(std::move(*db), checked));
}

WalCheckpointer::WalCheckpointer(Database db, const CheckpointOptions& options)
    : db_(std::move(db)), options_(options) {
  thread_ = std::thread([this] {
    name_this_thread("wal-checkpoint");
    lower_this_thread_priority();  // nothing acked waits for a PASSIVE pass (thread_priority.h)
    run();
  });
}

WalCheckpointer::~WalCheckpointer() { stop(); }

void WalCheckpointer::attach(sqlite3* writer_db) {
  writer_db_ = writer_db;
  // Replaces the writer's auto-checkpoint (sqlite3_wal_autocheckpoint is a wrapper of this hook).
  sqlite3_wal_hook(writer_db_, &WalCheckpointer::on_wal_commit, this);
}

void WalCheckpointer::stop() {
  if (writer_db_ != nullptr) {
    sqlite3_wal_hook(writer_db_, nullptr, nullptr);
    writer_db_ = nullptr;
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  db_.close();
}

// Runs on the writer thread after each commit: a few atomics, and a wake-up only when the WAL
// crossed a threshold and no checkpoint is already pending.
int WalCheckpointer::on_wal_commit(void* self_ptr, sqlite3* /*db*/, const char* /*schema*/, int wal_frames) {
  auto* self = static_cast<WalCheckpointer*>(self_ptr);
  self->wal_frames_.store(wal_frames, std::memory_order_relaxed);
  self->commits_.fetch_add(1, std::memory_order_relaxed);
  const bool due =
      growth(wal_frames, self->frames_at_wake_.load(std::memory_order_relaxed)) >= self->options_.passive_frames;
  if (due && !self->wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    std::lock_guard lock(self->mutex_);
    self->cv_.notify_one();
  }
  return SQLITE_OK;
}

void WalCheckpointer::restart_if_due() {
  const int frames = wal_frames_.load(std::memory_order_relaxed);
  if (frames < options_.restart_frames) return;
  // A PASSIVE pass that is running now copies most of what a RESTART would: let it finish and try
  // after a later batch rather than stall this one behind it (measured: 100+ ms ack spikes).
  // Only a WAL twice past the bound waits for it, so the WAL stays bounded however busy it is.
  std::unique_lock running(checkpoint_mutex_, std::defer_lock);
  if (frames < 2 * options_.restart_frames) {
    if (!running.try_lock()) return;
  } else {
    running.lock();
  }
  checkpoint_locked(SQLITE_CHECKPOINT_RESTART);
}

int WalCheckpointer::checkpoint_on_writer(int mode) {
  // SQLite refuses a second checkpoint at once (SQLITE_BUSY, no busy handler) while another
  // connection runs one: wait for a running PASSIVE pass instead. It never waits for the writer,
  // and the writer holds no SQLite lock here, so this cannot deadlock.
  std::lock_guard running(checkpoint_mutex_);
  return checkpoint_locked(mode);
}

int WalCheckpointer::checkpoint_locked(int mode) {
  if (writer_db_ == nullptr) return SQLITE_MISUSE;
  const int rc = sqlite3_wal_checkpoint_v2(writer_db_, "main", mode, nullptr, nullptr);
  if (rc == SQLITE_OK && mode != SQLITE_CHECKPOINT_PASSIVE) {
    // The writer's next transaction starts the WAL over; until then it counts as empty.
    wal_frames_.store(0, std::memory_order_relaxed);
    frames_at_wake_.store(0, std::memory_order_relaxed);
  } else if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    spdlog::warn("store: WAL checkpoint on the writer failed: {} (rc {})", sqlite3_errmsg(writer_db_), rc);
  }
  return rc;
}

void WalCheckpointer::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || wake_pending_.load(std::memory_order_acquire); });
      if (stopping_) return;
    }
    const std::uint64_t commits = commits_.load(std::memory_order_relaxed);
    const int frames = wal_frames_.load(std::memory_order_relaxed);
    frames_at_wake_.store(frames, std::memory_order_relaxed);
    int rc = SQLITE_OK;
    {
      std::lock_guard running(checkpoint_mutex_);
      rc = sqlite3_wal_checkpoint_v2(db_.get(), "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      spdlog::warn("store: WAL checkpoint failed: {} (rc {})", sqlite3_errmsg(db_.get()), rc);
    }
    // Commits made while this checkpoint ran did not wake us (wake_pending_ was set); look again,
    // but only if there were any: an idle writer leaves nothing new to copy.
    wake_pending_.store(false, std::memory_order_release);
    const int now = wal_frames_.load(std::memory_order_relaxed);
    const bool committed = commits_.load(std::memory_order_relaxed) != commits;
    if (committed && growth(now, frames) >= options_.passive_frames) {
      wake_pending_.store(true, std::memory_order_release);
    }
  }
}

}  // namespace blindsync::relay::sqlite
