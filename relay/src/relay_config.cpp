#include "relay_config.h"

#include <CLI/CLI.hpp>

#include <charconv>

#include "http/health.h"

namespace blindsync::relay {

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

ParsedArgs parse_relay_args(int argc, const char* const* argv) {
  RelayConfig config;
  std::string listen = "127.0.0.1:7600";
  std::string data_dir = config.data_dir.string();
  std::string durability = "full";

  CLI::App app{"blindsync-relay: routes and buffers end-to-end encrypted blobs it cannot read"};
  app.set_version_flag("--version", std::string(relay_version()));
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  app.add_option("--data", data_dir, "directory for relay.db and relay.key (created 0700)")->capture_default_str();
  app.add_option("--durability", durability, "full: acked blobs survive power loss; normal: a process crash")
      ->check(CLI::IsMember({"full", "normal"}))
      ->capture_default_str();
  app.add_option("--log-level", config.log_level, "log level (logs go to stderr)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_option("--threads", config.threads, "I/O threads")->check(CLI::Range(1, 64))->capture_default_str();

  ParsedArgs parsed;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {  // --help, --version
      parsed.exit_code = 0;
      parsed.output = dynamic_cast<const CLI::CallForVersion*>(&e) != nullptr ? std::string(e.what()) + "\n"
                                                                              : app.help();
      return parsed;
    }
    parsed.exit_code = 2;
    parsed.output_is_error = true;
    parsed.output = std::string("blindsync-relay: ") + e.what() + "\nRun with --help for more information.\n";
    return parsed;
  }

  auto address = parse_listen_address(listen);
  if (!address) {
    parsed.exit_code = 2;
    parsed.output_is_error = true;
    parsed.output = "blindsync-relay: --listen: " + address.error().message() + "\n";
    return parsed;
  }
  if (data_dir.empty()) {
    parsed.exit_code = 2;
    parsed.output_is_error = true;
    parsed.output = "blindsync-relay: --data must not be empty\n";
    return parsed;
  }
  config.listen = *address;
  config.data_dir = data_dir;
  config.durability = durability == "normal" ? Durability::kNormal : Durability::kFull;
  parsed.config = std::move(config);
  return parsed;
}

}  // namespace blindsync::relay
