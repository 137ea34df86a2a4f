// NotesApp: one blindsync-notes device (its own home directory) driven as real processes, one
// per command, each bounded by a timeout. REQUIRE-style helpers fail the test with the command's
// output when a command does not do what the test expects.
// Thread-safety: one test thread.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "process.h"

namespace notes_test {

using blindsync::test::EnvChange;
using blindsync::test::RunResult;

class NotesApp {
 public:
  explicit NotesApp(std::string home) : home_(std::move(home)) {}

  const std::string& home() const noexcept { return home_; }
  const std::string& device() const noexcept { return device_; }

  // Runs `blindsync-notes --home HOME args...` (bounded by timeout; a hang counts as a failure).
  RunResult run(const std::vector<std::string>& args, const std::vector<EnvChange>& env = {},
                std::chrono::seconds timeout = std::chrono::seconds(120)) const;
  // As run(), REQUIREs exit code 0 and returns stdout.
  std::string ok(const std::vector<std::string>& args, const std::vector<EnvChange>& env = {}) const;

  // init NAME (remembers the device id it prints).
  void init(const std::string& name);
  // create-group URL: the invite link.
  std::string create_group(const std::string& relay_url) const;
  void join(const std::string& invite) const;
  void put(const std::string& id, const std::string& text, const std::vector<EnvChange>& env = {}) const;
  // list --json --all: the notes, tombstones included (sorted by id).
  nlohmann::json list() const;
  // list --json: live notes only.
  nlohmann::json live_notes() const;
  nlohmann::json status() const;
  // sync --until-idle --json; REQUIREs that it caught up. The report.
  nlohmann::json sync() const;

 private:
  std::string home_;
  std::string device_;
};

// The note with this id in a list (a null json if absent).
nlohmann::json find_note(const nlohmann::json& list, const std::string& id);

// Syncs a, b, a (each until idle) until both list the same notes, tombstones and HLCs included,
// and done(list) holds; at most `rounds` times. REQUIREs convergence; returns the common list.
nlohmann::json sync_until_converged(const NotesApp& a, const NotesApp& b,
                                    const std::function<bool(const nlohmann::json&)>& done, int rounds = 5);

}  // namespace notes_test
