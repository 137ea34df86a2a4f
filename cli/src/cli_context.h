// What every `blindsync` command shares: the global options, opening the device store, choosing a
// group, and turning failures into a person-readable message plus an exit code.
//
// Exit codes: 0 success, 1 failure (kExitFailure), 2 usage error (kExitUsage).
// Thread-safety: used from the main thread only.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "blindsync/client/client.h"
#include "blindsync/core/status.h"

namespace blindsync::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct GlobalOptions {
  std::string home;              // --home, or BLINDSYNC_HOME; empty = ~/.blindsync
  unsigned timeout_seconds = 15;  // --timeout: connect and per-request bound
};

// The device home this invocation works on (--home > BLINDSYNC_HOME > $HOME/.blindsync).
std::string resolve_home(const GlobalOptions& options);

enum class StoreMode {
  kCreate,        // init: create the home if missing
  kExisting,      // the home must exist (status, group list)
  kWithIdentity,  // the home must exist and hold a device identity
};

// Opens the device store. On failure prints the error and returns nullptr.
std::unique_ptr<Client> open_store(const GlobalOptions& options, StoreMode mode);

// Resolves --group (name, hex id, or empty = the only group). On failure prints the error.
std::optional<GroupInfo> select_group(const Client& client, const std::string& selector);

// Prints "blindsync: error: <message>" to stderr and returns the exit code.
int fail(const std::string& message, int exit_code = kExitFailure);
// Same, with the Status turned into a sentence: "<what>: <reason>".
int fail(const std::string& what, const Status& status);

// "<what> (relay <url>): <reason>", naming the relay only when the reason does not already.
int fail_at_relay(const std::string& what, const std::string& relay_url, const Status& status);

// A person-readable reason for a Status (no code numbers unless they help).
std::string describe(const Status& status);

}  // namespace blindsync::cli
