// The commands of blindsync-notes, one function each; main.cpp parses the arguments.
// Each returns the process exit code. Messages for people go to stderr; stdout carries the
// command's result (an invite link, a device id, the notes, a sync report).
#pragma once

#include <optional>
#include <string>

#include "sync_loop.h"

namespace notes {

enum ExitCode : int { kExitOk = 0, kExitFailure = 1, kExitUsage = 2, kExitNotIdle = 3 };

// A notes home: DIR/notes.db (the notes, 0600) and DIR/sync (the blindsync device home).
struct AppHome {
  std::string dir;
  std::string notes_db() const { return dir + "/notes.db"; }
  std::string sync_home() const { return dir + "/sync"; }
};

int cmd_init(const AppHome& home, const std::string& device_name);
int cmd_create_group(const AppHome& home, const std::string& relay_url, const std::string& group_name);
int cmd_join(const AppHome& home, const std::string& invite_link);
int cmd_put(const AppHome& home, const std::string& note_id, const std::string& body,
            const std::optional<std::string>& title);
int cmd_delete(const AppHome& home, const std::string& note_id);
int cmd_list(const AppHome& home, bool json, bool include_deleted);
int cmd_status(const AppHome& home, bool json);
int cmd_sync(const AppHome& home, const SyncOptions& options, bool json);

}  // namespace notes
