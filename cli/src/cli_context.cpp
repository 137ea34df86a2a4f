#include "cli_context.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "blindsync/transport_ws/ws_transport.h"

namespace blindsync::cli {
namespace {

// Every connection this process opens is bounded by --timeout, so an unreachable or silent relay
// turns into an error instead of a hang.
TransportFactory bounded_websocket_factory(std::chrono::milliseconds bound) {
  return [bound](const std::string& url, const TransportOptions& options) {
    TransportOptions bounded = options;
    bounded.connect_timeout = std::min(options.connect_timeout, bound);
    return connect_websocket(url, bounded);
  };
}

}  // namespace

std::string resolve_home(const GlobalOptions& options) {
  if (!options.home.empty()) return options.home;
  // CLI11 already maps BLINDSYNC_HOME onto --home; this covers the default.
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return (std::filesystem::path(home) / ".blindsync").string();
  }
  return ".blindsync";
}

std::unique_ptr<Client> open_store(const GlobalOptions& options, StoreMode mode) {
  const std::string home = resolve_home(options);
  if (mode != StoreMode::kCreate) {
    std::error_code ec;
    if (!std::filesystem::is_directory(home, ec)) {
      fail("no device store at " + home + "; run 'blindsync init' first (or pass --home DIR)");
      return nullptr;
    }
  }
  const std::chrono::milliseconds bound = std::chrono::seconds(std::max(1u, options.timeout_seconds));
  ClientOptions client_options;
  client_options.transport = bounded_websocket_factory(bound);
  client_options.request_timeout = bound;
  auto client = Client::open(home, std::move(client_options));
  if (!client) {
    fail("cannot open the device store in " + home, client.error());
    return nullptr;
  }
  if (mode == StoreMode::kWithIdentity && !(*client)->identity()) {
    fail("this home (" + home + ") has no device identity; run 'blindsync init' first");
    return nullptr;
  }
  return std::move(*client);
}

std::optional<GroupInfo> select_group(const Client& client, const std::string& selector) {
  const auto groups = client.groups();
  if (groups.empty()) {
    fail("this device belongs to no group yet; run 'blindsync group create --relay URL' or "
         "'blindsync group join LINK' first");
    return std::nullopt;
  }
  auto found = client.find_group(selector);
  if (found) return std::move(*found);
  if (selector.empty() && groups.size() > 1) {
    fail("this device belongs to " + std::to_string(groups.size()) +
         " groups; choose one with --group NAME|ID (see 'blindsync group list')");
  } else if (found.error().code() == Code::kNotFound || found.error().code() == Code::kInvalidArgument) {
    fail("no group named '" + selector + "' or with that id (see 'blindsync group list')");
  } else {
    fail("cannot select the group", found.error());
  }
  return std::nullopt;
}

int fail(const std::string& message, int exit_code) {
  std::cout.flush();
  std::cerr << "blindsync: error: " << message << std::endl;
  return exit_code;
}

int fail(const std::string& what, const Status& status) { return fail(what + ": " + describe(status)); }

int fail_at_relay(const std::string& what, const std::string& relay_url, const Status& status) {
  const std::string reason = describe(status);
  if (reason.find(relay_url) != std::string::npos) return fail(what + ": " + reason);
  return fail(what + " (relay " + relay_url + "): " + reason);
}

std::string describe(const Status& status) {
  const std::string& message = status.message();
  auto with_detail = [&message](std::string text) {
    if (!message.empty()) text += " (" + message + ")";
    return text;
  };
  switch (status.code()) {
    case Code::kTimeout:
      return with_detail("timed out waiting for the relay");
    case Code::kConnectionClosed:
      return with_detail("the connection to the relay was closed");
    case Code::kUnauthorized:
      return with_detail("the relay refused this device or group");
    case Code::kDeviceRevoked:
      return with_detail("this device has been revoked from the group");
    case Code::kRateLimited:
      return with_detail("the relay is rate-limiting this device; try again later");
    case Code::kBlobTooLarge:
      return with_detail("the data is larger than the relay accepts");
    case Code::kGroupQuotaExceeded:
      return with_detail("the group's storage quota on the relay is full");
    case Code::kGroupFull:
      return with_detail("the group has too many devices connected to the relay");
    case Code::kRelayOverloaded:
    case Code::kRelayShuttingDown:
      return with_detail("the relay is unavailable right now; try again later");
    case Code::kStorageFull:
      return with_detail("the relay is out of storage");
    case Code::kCryptoFailure:
      return with_detail("data failed to verify or decrypt");
    case Code::kExpired:
      return message.empty() ? "expired" : message;
    default:
      if (!message.empty()) return message;
      return std::string(code_name(status.code()));
  }
}

}  // namespace blindsync::cli
