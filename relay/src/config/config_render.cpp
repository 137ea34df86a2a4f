#include "config/config_render.h"

#include "config/config_keys.h"

namespace blindsync::relay {

std::string render_config_toml(const RelayConfig& config, const std::filesystem::path& source) {
  std::string out = "# blindsync-relay effective configuration";
  out += source.empty() ? " (no config file)\n" : " (config file " + source.string() + ")\n";
  out += "# precedence: flags > BLINDSYNC_RELAY_* environment > config file > defaults\n";
  for (const ConfigKey& key : config_keys()) {
    out += "\n# " + std::string(key.help) + "\n";
    out += std::string(key.name) + " = " + key.render(config) + "\n";
  }
  return out;
}

}  // namespace blindsync::relay
