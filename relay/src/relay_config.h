// RelayConfig: how one blindsync-relay process runs, and where each setting comes from.
//
// Every setting is a key (config/config_keys.h lists them all with defaults and ranges) that can be
// given in four places; a later one wins:
//   defaults  <  the TOML file (--config PATH or BLINDSYNC_RELAY_CONFIG)  <  environment
//   variables BLINDSYNC_RELAY_<UPPERCASE KEY>  <  command-line flags --<key with dashes>.
// access_tokens is the exception: it has no flag (a token on the command line is visible to every
// local user in the process list).
//
// Anything invalid is refused before the relay starts, with a message naming the key and where it
// came from (exit code 2): unknown keys in the file, unknown BLINDSYNC_RELAY_* variables, values
// of the wrong type or out of range, and contradictions between keys (tls_cert without tls_key,
// default_ttl_seconds above max_ttl_seconds, access = "token" without tokens, ...).
// --print-config prints the effective configuration as TOML (tokens redacted) and exits 0.
//
// Thread-safety: plain values and pure functions (parse_relay_args without an Environment reads
// this process's environment).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"
#include "store/store.h"

namespace blindsync::relay {

struct ListenAddress {
  std::string host;  // IP literal or name, without IPv6 brackets
  std::uint16_t port = 0;
  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

// Who may open a session: anyone who proves group membership (open), only HELLOs carrying one
// of access_tokens (token), or only the groups in allowlist (allowlist).
enum class AccessMode { kOpen, kToken, kAllowlist };
std::string_view access_mode_name(AccessMode mode) noexcept;  // "open", "token", "allowlist"

inline constexpr std::uint64_t kGiB = 1024ull * 1024 * 1024;

struct RelayConfig {
  // Where and how the process runs.
  ListenAddress listen{"127.0.0.1", 7600};
  std::filesystem::path data_dir = "./blindsync-data";  // key "data"
  Durability durability = Durability::kFull;
  std::string log_level = "info";
  unsigned threads = 2;
  std::optional<ListenAddress> metrics_listen;  // a second port serving only /metrics and /health
  std::filesystem::path tls_cert;               // PEM chain; with tls_key: wss:// and https://
  std::filesystem::path tls_key;                // PEM private key

  // Limits (DESIGN.md "Limits").
  std::uint32_t max_sessions = 3000;
  std::uint32_t max_sessions_per_group = 16;
  std::uint32_t max_connections_per_ip = 10;       // 0 = no limit
  std::uint32_t max_devices_per_group = 256;       // distinct device keys per group; 0 = no limit
  std::uint32_t device_messages_per_minute = 100;
  std::uint32_t global_messages_per_second = 2000;
  std::uint32_t rate_limit_strikes = 20;           // refused messages in a row before close; 0 = never
  std::uint64_t limiter_max_devices = 100000;      // per-device rate limiter entries kept (LRU)
  std::uint32_t max_blob_bytes = 1048576;
  std::uint64_t group_quota_bytes = 104857600;     // 0 = no limit
  std::uint32_t max_ttl_seconds = 2592000;
  std::uint32_t default_ttl_seconds = 604800;
  std::uint32_t hello_timeout_ms = 10000;
  std::uint32_t idle_timeout_ms = 60000;  // WebSocket ping after half of it, close after all of it
  std::uint32_t max_pull_limit = 1000;
  std::uint32_t max_pull_pages = 8;
  std::uint64_t max_groups = 100000;               // 0 = no limit
  std::uint64_t storage_cap_bytes = 10 * kGiB;     // 0 = no limit

  // Admission.
  AccessMode access = AccessMode::kOpen;
  std::vector<std::string> access_tokens;  // secrets: never logged or printed in full
  std::vector<GroupId> allowlist;

  // Retention.
  std::uint32_t cleanup_interval_ms = 60000;
  bool drop_acked = false;  // drop a blob once every non-revoked device has ACKed past it

  bool tls_enabled() const noexcept { return !tls_cert.empty(); }
  friend bool operator==(const RelayConfig&, const RelayConfig&) = default;
};

// name=value pairs, like environ.
using Environment = std::vector<std::pair<std::string, std::string>>;
Environment current_environment();

// Outcome of reading the command line, the environment and the config file: either a config to
// run with, or an exit code and the text to print (help, version and --print-config on stdout with
// exit 0; an error on stderr with exit 2).
struct ParsedArgs {
  std::optional<RelayConfig> config;
  int exit_code = 0;
  std::string output;
  bool output_is_error = false;
  std::filesystem::path config_file;   // the file that was read, empty if none
  std::vector<std::string> warnings;   // legal but probably unintended settings, logged at start
  std::filesystem::path backup_to;     // --backup-to: copy the store there and exit instead of serving
};

ParsedArgs parse_relay_args(int argc, const char* const* argv);
ParsedArgs parse_relay_args(int argc, const char* const* argv, const Environment& environment);

// "HOST:PORT" or "[V6]:PORT"; kInvalidArgument with a reason otherwise.
Result<ListenAddress> parse_listen_address(std::string_view text);
// The inverse: "HOST:PORT", IPv6 hosts in brackets.
std::string format_listen_address(const ListenAddress& address);

// True for 127.0.0.0/8, ::1 and "localhost": addresses only this machine can reach.
bool is_loopback_host(std::string_view host) noexcept;

// The risk of this configuration in one sentence, or nullopt: a relay reachable from other
// machines (non-loopback listen) that admits any group (access = open) over plain ws://.
std::optional<std::string> exposure_warning(const RelayConfig& config);

}  // namespace blindsync::relay
