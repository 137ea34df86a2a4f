// --print-config: the effective configuration as a TOML file that the relay reads back unchanged
// (apart from access_tokens, which are redacted and would be refused if fed back).
//
// Thread-safety: pure function.
#pragma once

#include <filesystem>
#include <string>

#include "relay_config.h"

namespace blindsync::relay {

// Every key of config_keys.h, each preceded by its help line as a comment. source names the
// config file that was read (empty: none) for the header comment.
std::string render_config_toml(const RelayConfig& config, const std::filesystem::path& source = {});

}  // namespace blindsync::relay
