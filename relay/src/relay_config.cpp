#include "relay_config.h"

#include <CLI/CLI.hpp>

#include <charconv>

#include "config/config_file.h"
#include "config/config_keys.h"
#include "config/config_render.h"
#include "http/health.h"

extern char** environ;  // POSIX

namespace blindsync::relay {

std::string_view access_mode_name(AccessMode mode) noexcept {
  switch (mode) {
    case AccessMode::kOpen: return "open";
    case AccessMode::kToken: return "token";
    case AccessMode::kAllowlist: return "allowlist";
  }
  return "open";
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return Status(Code::kInvalidArgument, "listen address must be HOST:PORT, got '" + std::string(text) + "'");
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return Status(Code::kInvalidArgument, "write an IPv6 listen address in brackets, e.g. [::1]:7600");
  }
  if (host.empty()) return Status(Code::kInvalidArgument, "listen address has an empty host");
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return Status(Code::kInvalidArgument, "listen port must be a number from 0 to 65535, got '" +
                                              std::string(port_text) + "'");
  }
  return ListenAddress{std::string(host), static_cast<std::uint16_t>(port)};
}

std::string format_listen_address(const ListenAddress& address) {
  const bool v6 = address.host.find(':') != std::string::npos;
  return (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

bool is_loopback_host(std::string_view host) noexcept {
  if (host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1") return true;
  return host.substr(0, 4) == "127.";
}

std::optional<std::string> exposure_warning(const RelayConfig& config) {
  if (is_loopback_host(config.listen.host) || config.access != AccessMode::kOpen || config.tls_enabled()) {
    return std::nullopt;
  }
  return "listening on " + format_listen_address(config.listen) +
         " (reachable from other machines) with access = \"open\" and no TLS: anyone who can reach this port "
         "can store data here up to the quotas, and traffic metadata (group ids, sizes, timing) crosses the "
         "network unencrypted. Set tls_cert/tls_key, or access = \"token\" or \"allowlist\", or listen on "
         "127.0.0.1 behind a TLS-terminating proxy.";
}

Environment current_environment() {
  Environment environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const auto equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    environment.emplace_back(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  return environment;
}

ParsedArgs parse_relay_args(int argc, const char* const* argv) {
  return parse_relay_args(argc, argv, current_environment());
}

namespace {

ParsedArgs refuse(std::string message) {
  ParsedArgs parsed;
  parsed.exit_code = 2;
  parsed.output_is_error = true;
  parsed.output = "blindsync-relay: " + message + "\n";
  return parsed;
}

const std::string* find_variable(const Environment& environment, std::string_view name) {
  const std::string* found = nullptr;
  for (const auto& [key, value] : environment) {
    if (key == name) found = &value;  // the last one wins, as with getenv on most libcs
  }
  return found;
}

}  // namespace

ParsedArgs parse_relay_args(int argc, const char* const* argv, const Environment& environment) {
  const auto& keys = config_keys();
  const RelayConfig defaults;

  CLI::App app{"blindsync-relay: routes and buffers end-to-end encrypted blobs it cannot read.\n"
               "Settings come from flags > BLINDSYNC_RELAY_<KEY> environment variables > the --config file > "
               "defaults."};
  app.set_version_flag("--version", std::string(relay_version()));
  std::string config_path;
  bool print_config = false;
  app.add_option("--config", config_path, "TOML config file (default: $BLINDSYNC_RELAY_CONFIG; none if unset)");
  app.add_flag("--print-config", print_config, "print the effective configuration as TOML (tokens redacted), exit");
  std::string backup_to;
  app.add_option("--backup-to", backup_to,
                 "copy the store (database and segment files) into this new or empty directory, consistently "
                 "even while a relay runs on the data directory, then exit");
  std::vector<std::string> flag_text(keys.size());
  std::vector<CLI::Option*> flag_options(keys.size(), nullptr);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].secret) continue;  // never on the command line: visible in the process list
    flag_options[i] = app.add_option(flag_name(keys[i].name), flag_text[i], std::string(keys[i].help))
                          ->default_str(keys[i].render(defaults))
                          ->type_name("");
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    ParsedArgs parsed;
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {  // --help, --version
      parsed.exit_code = 0;
      parsed.output = dynamic_cast<const CLI::CallForVersion*>(&e) != nullptr ? std::string(e.what()) + "\n"
                                                                              : app.help();
      return parsed;
    }
    ParsedArgs refused = refuse(std::string(e.what()));
    refused.output += "Run with --help for more information.\n";
    return refused;
  }

  RelayConfig config;
  std::filesystem::path file;
  if (!config_path.empty()) {
    file = config_path;
  } else if (const std::string* from_env = find_variable(environment, kConfigPathVariable);
             from_env != nullptr && !from_env->empty()) {
    file = *from_env;
  }

  // Lowest precedence first: each source overwrites what the one before it set.
  if (!file.empty()) {
    auto values = read_config_file(file);
    if (!values) return refuse("config file " + file.string() + ": " + values.error().message());
    for (const auto& [name, value] : *values) {
      if (Status st = find_config_key(name)->apply(config, value); !st) {
        return refuse("config file " + file.string() + ": " + name + ": " + st.message());
      }
    }
  }
  for (const auto& [name, text] : environment) {
    if (name.rfind(kEnvironmentPrefix, 0) != 0 || name == kConfigPathVariable) continue;
    const ConfigKey* key = nullptr;
    for (const auto& candidate : keys) {
      if (environment_name(candidate.name) == name) key = &candidate;
    }
    if (key == nullptr) return refuse("environment variable " + name + ": not a relay setting");
    if (Status st = key->apply(config, ConfigValue{ValueOrigin::kEnvironment, text}); !st) {
      return refuse("environment variable " + name + " (" + std::string(key->name) + "): " + st.message());
    }
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (flag_options[i] == nullptr || flag_options[i]->count() == 0) continue;
    if (Status st = keys[i].apply(config, ConfigValue{ValueOrigin::kFlag, flag_text[i]}); !st) {
      return refuse(flag_name(keys[i].name) + " (" + std::string(keys[i].name) + "): " + st.message());
    }
  }
  if (Status st = validate_config(config); !st) return refuse("invalid configuration: " + st.message());

  ParsedArgs parsed;
  parsed.config_file = file;
  parsed.warnings = config_warnings(config);
  if (print_config) {
    parsed.exit_code = 0;
    parsed.output = render_config_toml(config, file);
    return parsed;
  }
  parsed.config = std::move(config);
  parsed.backup_to = backup_to;
  return parsed;
}

}  // namespace blindsync::relay
