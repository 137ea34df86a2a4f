// Reading relay.toml (toml++ underneath, hidden in the .cpp).
//
// The file is flat: `key = value` lines with the keys of config_keys.h. Unknown keys, tables and
// values of a type no key takes are refused with the key's name, so a typo never silently falls
// back to a default. The file is capped in size before it is parsed.
//
// Thread-safety: pure functions.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blindsync/core/status.h"
#include "config/config_keys.h"

namespace blindsync::relay {

inline constexpr std::size_t kMaxConfigFileBytes = 16 * 1024 * 1024;  // an allowlist can be long

// key -> value, in file order. kInvalidArgument ("line 3: ..." or "'key': ...") on a bad file.
Result<std::vector<std::pair<std::string, ConfigValue>>> parse_config_text(std::string_view text);
// Reads path and parses it; kIoError when it cannot be read.
Result<std::vector<std::pair<std::string, ConfigValue>>> read_config_file(const std::filesystem::path& path);

}  // namespace blindsync::relay
