// A consistent copy of a relay's store while the relay may run on it (private to relay/src/store;
// `blindsync-relay --backup-to DIR` calls it).
//
// Why not SQLite's backup API alone: SQLite's rows point into the push journal's segment files
// (push_journal.h), so a copy of the database is only whole with the segments it points into.
// Cleanup deletes segments no row points into any more, at any moment; so the segments that exist
// are copied first, then the database (one SQLite snapshot), then whatever newer segment that
// snapshot needs. A segment the snapshot needs can then be missing only if it was both created and
// deleted during the copy: the whole copy is then made again. Before it reports success, the copy
// is opened as a store, as a relay started on it would open it (its journal replay refuses a
// hole), so a backup that completes is one a relay starts on.
#pragma once

#include <cstdint>
#include <string>

#include "blindsync/core/status.h"

namespace blindsync::relay {

struct BackupReport {
  std::uint64_t segments = 0;  // segment files copied
  std::uint64_t bytes = 0;     // database and segments
};

// Copies the database at `database_path` and its segments into `destination_dir` (created 0700
// if missing; refused unless empty), as files of the same names, 0600.
Result<BackupReport> backup_sqlite_store(const std::string& database_path,
                                         const std::string& destination_dir);

}  // namespace blindsync::relay
