// The relay's configuration keys: one table that the TOML file, the environment, the command line
// and --print-config all read, so a key cannot exist in one place and be missing in another.
//
// Each key knows its value kind, its range, how to store a value into a RelayConfig (refusing
// anything out of range with a message that does not repeat secret values) and how to print its
// current value as TOML. Values from the TOML file keep their TOML type (an integer key refuses a
// string); values from environment variables and flags are text parsed by the key's kind (lists
// are comma-separated there).
//
// Thread-safety: the table is immutable after first use; the functions are pure.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "blindsync/core/status.h"
#include "relay_config.h"

namespace blindsync::relay {

enum class ValueKind { kInteger, kBool, kString, kStringList };

enum class ValueOrigin { kFile, kEnvironment, kFlag };

// One value as a source gave it.
struct ConfigValue {
  ValueOrigin origin = ValueOrigin::kFile;
  std::variant<std::string, std::int64_t, bool, std::vector<std::string>> value;
};

struct ConfigKey {
  std::string_view name;     // TOML key, e.g. "max_sessions"
  ValueKind kind;
  std::string_view help;     // one line for --help and the printed config
  bool secret = false;       // no flag; redacted when printed
  // Stores value into config, or explains (without echoing a secret) why it is refused.
  std::function<Status(RelayConfig& config, const ConfigValue& value)> apply;
  // The current value as a TOML value (secrets redacted).
  std::function<std::string(const RelayConfig& config)> render;
};

// Every key, in the order --print-config prints them.
const std::vector<ConfigKey>& config_keys();
const ConfigKey* find_config_key(std::string_view name) noexcept;

// "BLINDSYNC_RELAY_MAX_SESSIONS" for "max_sessions".
std::string environment_name(std::string_view key);
inline constexpr std::string_view kEnvironmentPrefix = "BLINDSYNC_RELAY_";
inline constexpr std::string_view kConfigPathVariable = "BLINDSYNC_RELAY_CONFIG";
// "--max-sessions" for "max_sessions".
std::string flag_name(std::string_view key);

// Checks the keys against each other (applied after every source); kInvalidArgument naming the key.
Status validate_config(const RelayConfig& config);
// Settings that are legal but probably not what the operator meant (e.g. tokens with access = open).
std::vector<std::string> config_warnings(const RelayConfig& config);

// An access token as it may appear in logs and printed configs: its first 4 characters and "...".
std::string redact_token(std::string_view token);

// A TOML string literal (basic string, escaped).
std::string toml_quote(std::string_view text);

}  // namespace blindsync::relay
