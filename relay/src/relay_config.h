// RelayConfig: how one blindsync-relay process runs, parsed from its command line (CLI11).
//
//   --listen HOST:PORT       default 127.0.0.1:7600; port 0 picks a free port; IPv6 as [::1]:7600
//   --data DIR               default ./blindsync-data (created 0700): relay.db and relay.key live here
//   --durability full|normal default full (an acked blob survives power loss) | normal (process crash)
//   --log-level LEVEL        trace|debug|info|warn|error|critical|off, default info; logs go to stderr
//   --threads N              I/O threads, 1-64, default 2
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "blindsync/core/status.h"
#include "store/store.h"

namespace blindsync::relay {

struct ListenAddress {
  std::string host;  // IP literal or name, without IPv6 brackets
  std::uint16_t port = 0;
  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

struct RelayConfig {
  ListenAddress listen{"127.0.0.1", 7600};
  std::filesystem::path data_dir = "./blindsync-data";
  Durability durability = Durability::kFull;
  std::string log_level = "info";
  unsigned threads = 2;
};

// Outcome of parsing argv: either a config to run with, or an exit code and the text to print
// (help/version on stdout with exit 0; a usage error on stderr with exit 2).
struct ParsedArgs {
  std::optional<RelayConfig> config;
  int exit_code = 0;
  std::string output;
  bool output_is_error = false;
};

ParsedArgs parse_relay_args(int argc, const char* const* argv);

// "HOST:PORT" or "[V6]:PORT"; kInvalidArgument with a reason otherwise.
Result<ListenAddress> parse_listen_address(std::string_view text);

}  // namespace blindsync::relay
