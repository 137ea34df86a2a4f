// RelayProcess: a blindsync-relay child started by `blindsync-bench --spawn-relay PATH` on a fresh
// temporary data directory, listening on 127.0.0.1 port 0.
//
// spawn() waits (bounded) for the relay's one stdout line
//   listening on ws://HOST:PORT/v1/sync relay_id=<64 hex>
// and learns the URL, relay_id and pid from it. stop() sends SIGTERM, waits for the drain (bounded),
// SIGKILLs if it must, and removes the data directory. The destructor stops a running relay.
//
// The relay's admission limits are policies, not capacity: a relay on its defaults would answer
// most of a load test with RATE_LIMITED. The child is therefore started with the variables of
// kBenchRelayEnvironment (only those not already set in the environment), which lift the rate
// limits and the session cap; per-IP limits stay as they are (the bench spreads its connections).
// Thread-safety: none; owned by main.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"

namespace blindsync::bench {

// BLINDSYNC_RELAY_* settings a spawned relay gets unless the environment already sets them.
struct EnvSetting {
  const char* name;
  const char* value;
};
inline constexpr EnvSetting kBenchRelayEnvironment[] = {
    {"BLINDSYNC_RELAY_MAX_SESSIONS", "100000"},
    {"BLINDSYNC_RELAY_DEVICE_MESSAGES_PER_MINUTE", "10000000"},
    {"BLINDSYNC_RELAY_GLOBAL_MESSAGES_PER_SECOND", "100000000"},
};

// Parses a relay's "listening on ws://... relay_id=<hex>" line.
struct ListeningLine {
  std::string url;
  RelayId relay_id;
};
Result<ListeningLine> parse_listening_line(const std::string& line);

class RelayProcess {
 public:
  // extra_args go after --listen/--data (e.g. {"--durability", "normal"}).
  static Result<std::unique_ptr<RelayProcess>> spawn(const std::string& relay_path,
                                                     const std::vector<std::string>& extra_args,
                                                     std::chrono::milliseconds start_timeout);
  ~RelayProcess();
  RelayProcess(const RelayProcess&) = delete;
  RelayProcess& operator=(const RelayProcess&) = delete;

  pid_t pid() const noexcept { return pid_; }
  const std::string& url() const noexcept { return url_; }
  const RelayId& relay_id() const noexcept { return relay_id_; }
  bool running() const noexcept { return pid_ > 0; }

  // SIGTERM, wait up to grace, SIGKILL; removes the data directory. Returns the exit status text.
  std::string stop(std::chrono::milliseconds grace);

 private:
  RelayProcess() = default;
  pid_t pid_ = -1;
  std::string url_;
  RelayId relay_id_;
  std::filesystem::path data_dir_;
};

}  // namespace blindsync::bench
