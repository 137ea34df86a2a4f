// The store's online backup. See store_backup.h. Payload bytes are never logged or inspected.
#include "store/store_backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "store/push_journal.h"
#include "store/sqlite_db.h"
#include "store/store.h"

namespace blindsync::relay {
namespace {

namespace fs = std::filesystem;
using sqlite::Database;

constexpr int kAttempts = 3;
// How long the backup waits for a moment when the database is not locked by a writer.
constexpr auto kBusyGiveUp = std::chrono::seconds(30);

Status fs_error(const std::string& what, const fs::path& path, const std::error_code& ec) {
  return Status(Code::kStorageError, what + " '" + path.string() + "': " + ec.message());
}

// fsync of a file or directory, so the copy is on disk when the command says it is done.
Status sync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0)
    return Status(Code::kStorageError, "cannot open '" + path.string() + "': " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0)
    return Status(Code::kStorageError, "cannot sync '" + path.string() + "': " + std::strerror(err));
  return Status::ok();
}

// Copies one file (0600). Returns false when the source is gone.
Result<bool> copy_private(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (!fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec)) {
    if (ec == std::errc::no_such_file_or_directory && !fs::exists(from)) return false;
    return fs_error("cannot copy to", to, ec);
  }
  fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, ec);
  if (ec) return fs_error("cannot restrict", to, ec);
  return true;
}

// One SQLite snapshot of the database, through SQLite's online backup API.
Status copy_database(const std::string& database_path, const fs::path& to) {
  {
    const int fd = ::open(to.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
      return Status(Code::kStorageError, "cannot create '" + to.string() + "': " + std::strerror(errno));
    ::close(fd);
  }
  auto source = Database::open(database_path, SQLITE_OPEN_READONLY);
  if (!source) return source.error();
  auto target = Database::open(to.string(), SQLITE_OPEN_READWRITE);
  if (!target) return target.error();
  sqlite3_backup* backup = sqlite3_backup_init(target->get(), "main", source->get(), "main");
  if (backup == nullptr) return target->error(sqlite3_errcode(target->get()), "backup: start");
  const auto give_up = std::chrono::steady_clock::now() + kBusyGiveUp;
  int rc = SQLITE_OK;
  // -1: every page in one step, so the copy is one snapshot.
  while ((rc = sqlite3_backup_step(backup, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    if (std::chrono::steady_clock::now() > give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const int finish_rc = sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) return target->error(rc, "backup: copy");
  if (finish_rc != SQLITE_OK) return target->error(finish_rc, "backup: finish");
  return Status::ok();
}

struct SnapshotNeeds {
  std::set<std::uint64_t> referenced;  // segments rows point into
  std::uint64_t replay_from = 1;       // and every segment from here on (a restore replays them)
};

Result<SnapshotNeeds> needs_of(const fs::path& copied_database) {
  // Read-write: the copy is ours, and its last connection then removes the -wal and -shm it made.
  auto db = Database::open(copied_database.string(), SQLITE_OPEN_READWRITE);
  if (!db) return db.error();
  SnapshotNeeds needs;
  auto version = db->query_int64("PRAGMA user_version");
  if (!version) return version.error();
  if (*version < 3) return needs;  // a database from before segments: nothing points into one
  auto from = db->query_int64("SELECT value FROM meta WHERE key = 'replay_from'");
  if (!from) return from.error();
  needs.replay_from = static_cast<std::uint64_t>(std::max<std::int64_t>(1, *from));
  auto stmt = db->prepare("SELECT number FROM segments WHERE live_blobs > 0");
  if (!stmt) return stmt.error();
  int rc = SQLITE_ROW;
  while ((rc = stmt->step()) == SQLITE_ROW)
    needs.referenced.insert(static_cast<std::uint64_t>(stmt->column_int64(0)));
  if (rc != SQLITE_DONE) return db->error(rc, "backup: list segments");
  return needs;
}

Status empty_directory(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    fs::remove(entry.path(), ec);
    if (ec) return fs_error("cannot remove", entry.path(), ec);
  }
  if (ec) return fs_error("cannot list", dir, ec);
  return Status::ok();
}

// Syncs every file of the copy (the store opened on it may have added a segment) and the
// directory, and counts them.
Status sync_copy(const fs::path& dir, const std::string& copy_path, BackupReport& report) {
  report = BackupReport{};
  auto segments = sqlite::list_segments(copy_path);
  if (!segments) return segments.error();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    if (auto st = sync_path(entry.path(), false); !st) return st;
    report.bytes += entry.file_size(ec);
  }
  if (ec) return fs_error("cannot list", dir, ec);
  report.segments = segments->size();
  return sync_path(dir, true);
}

// One attempt. Returns false (and why in retry_reason) when a segment the snapshot needs vanished
// during the copy.
Result<bool> try_backup(const std::string& database_path, const fs::path& dir, BackupReport& report,
                        std::string& retry_reason) {
  const std::string copy_path = (dir / fs::path(database_path).filename()).string();
  // 1. Every segment there is now.
  auto before = sqlite::list_segments(database_path);
  if (!before) return before.error();
  std::set<std::uint64_t> copied;
  // Copies that hold all the snapshot may need of their segment: those sealed at step 1 (all but
  // the newest then), and those made in step 3, after the snapshot. The step-1 copy of the segment
  // then being appended to may end before records the snapshot has not applied yet.
  std::set<std::uint64_t> current;
  for (const std::uint64_t n : *before) {
    auto done =
        copy_private(sqlite::segment_path_for(database_path, n), sqlite::segment_path_for(copy_path, n));
    if (!done) return done.error();
    if (!*done) continue;  // deleted: no later snapshot points into it
    copied.insert(n);
    if (n != before->back()) current.insert(n);
  }
  // 2. The database.
  if (auto st = copy_database(database_path, copy_path); !st) return st;
  // 3. Again, newest first, every segment that may have grown since step 1: the one being
  // appended to then, and all after it. Newest first, so the copies are one prefix of the log:
  // a segment exists only once the one before it was sealed, so every older one copied after it
  // is complete. A replay of the copy then meets no hole.
  auto needs = needs_of(copy_path);
  if (!needs) return needs.error();
  auto now = sqlite::list_segments(database_path);
  if (!now) return now.error();
  const std::uint64_t recopy_from =
      std::min(before->empty() ? needs->replay_from : before->back(), needs->replay_from);
  std::set<std::uint64_t> needed = needs->referenced;
  for (const std::uint64_t n : *now) {
    if (n >= needs->replay_from) needed.insert(n);
  }
  for (auto it = now->rbegin(); it != now->rend(); ++it) {
    const std::uint64_t n = *it;
    if (n < recopy_from && copied.count(n) != 0) continue;
    auto done =
        copy_private(sqlite::segment_path_for(database_path, n), sqlite::segment_path_for(copy_path, n));
    if (!done) return done.error();
    if (*done) {
      copied.insert(n);
      current.insert(n);
    } else if (needed.count(n) != 0) {
      retry_reason = "segment " + std::to_string(n) + " was deleted during the copy";
      return false;  // created and deleted while this copy ran: start again
    }
  }
  // A needed segment copied only at step 1, while it was appended to, and deleted since (applied,
  // compacted and removed after the snapshot) would leave its later records out of the replay.
  for (const std::uint64_t n : needed) {
    if (current.count(n) != 0) continue;
    retry_reason = "segment " + std::to_string(n) + " was deleted during the copy";
    return false;
  }
  // 4. Copied segments the snapshot does not need (no row pointed into them any more).
  for (auto it = copied.begin(); it != copied.end();) {
    if (needed.count(*it) != 0) {
      ++it;
      continue;
    }
    std::error_code ec;
    fs::remove(sqlite::segment_path_for(copy_path, *it), ec);
    it = copied.erase(it);
  }
  // 5. The copy must open as a store, as a relay started on it would: its replay checks that the
  // segments hold every record the snapshot has not applied, without a hole. A segment made and
  // deleted whole while this copy ran leaves one, which only a new attempt can fill.
  {
    StoreOptions options;
    options.path = copy_path;
    options.durability = Durability::kNormal;  // everything is synced below
    auto opened = open_sqlite_store(options);
    if (!opened) {
      retry_reason = opened.error().message();
      return false;
    }
    (*opened)->close();
  }
  if (auto st = sync_copy(dir, copy_path, report); !st) return st;
  return true;
}

}  // namespace

Result<BackupReport> backup_sqlite_store(const std::string& database_path,
                                         const std::string& destination_dir) {
  std::error_code ec;
  if (!fs::exists(database_path, ec))
    return Status(Code::kStorageError, "no database at '" + database_path + "'");
  const fs::path dir(destination_dir);
  if (!fs::exists(dir, ec)) {
    if (!fs::create_directories(dir, ec)) return fs_error("cannot create", dir, ec);
    fs::permissions(dir, fs::perms::owner_all, ec);
  }
  if (!fs::is_directory(dir, ec))
    return Status(Code::kStorageError, "'" + destination_dir + "' is not a directory");
  if (!fs::is_empty(dir, ec)) {
    return Status(Code::kStorageError,
                  "'" + destination_dir + "' is not empty; back up into a new directory");
  }
  if (fs::equivalent(dir, fs::path(database_path).parent_path(), ec)) {
    return Status(Code::kStorageError, "'" + destination_dir + "' is the data directory itself");
  }
  std::string retry_reason;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    BackupReport report;
    auto done = try_backup(database_path, dir, report, retry_reason);
    if (!done || !*done) {
      if (auto st = empty_directory(dir); !st) return st;
    }
    if (!done) return done.error();
    if (*done) return report;
  }
  return Status(Code::kStorageError, "the store kept changing under the backup (" + std::to_string(kAttempts) +
                                         " attempts; the last: " + retry_reason + "); try again");
}

}  // namespace blindsync::relay
