#include "config/config_keys.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <limits>
#include <type_traits>
#include <unordered_set>

namespace blindsync::relay {
namespace {

constexpr std::uint64_t kMiB = 1024ull * 1024;
constexpr std::uint64_t kTenYearsSeconds = 10ull * 365 * 24 * 3600;
constexpr std::uint64_t kDayMs = 24ull * 3600 * 1000;
constexpr std::size_t kMaxTokens = 1000;
constexpr std::size_t kMinTokenLength = 16;
constexpr std::size_t kMaxTokenLength = 256;
constexpr std::size_t kMaxAllowlist = 1'000'000;

Status invalid(std::string message) { return Status(Code::kInvalidArgument, std::move(message)); }

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

Result<std::uint64_t> read_integer(const ConfigValue& v, std::uint64_t min, std::uint64_t max) {
  const std::string range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  std::uint64_t number = 0;
  if (const auto* i = std::get_if<std::int64_t>(&v.value)) {
    if (*i < 0) return invalid("must be " + range + ", got " + std::to_string(*i));
    number = static_cast<std::uint64_t>(*i);
  } else if (const auto* s = std::get_if<std::string>(&v.value); s != nullptr && v.origin != ValueOrigin::kFile) {
    const std::string_view text = trim(*s);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      return invalid("must be " + range + ", got '" + *s + "'");
    }
  } else {
    return invalid("must be " + range);
  }
  if (number < min || number > max) return invalid("must be " + range + ", got " + std::to_string(number));
  return number;
}

Result<bool> read_bool(const ConfigValue& v) {
  if (const auto* b = std::get_if<bool>(&v.value)) return *b;
  if (const auto* s = std::get_if<std::string>(&v.value); s != nullptr && v.origin != ValueOrigin::kFile) {
    std::string text(trim(*s));
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
    if (text == "false" || text == "0" || text == "no" || text == "off") return false;
    return invalid("must be true or false, got '" + *s + "'");
  }
  return invalid("must be true or false");
}

Result<std::string> read_string(const ConfigValue& v) {
  if (const auto* s = std::get_if<std::string>(&v.value)) return *s;
  return invalid("must be a string");
}

Result<std::vector<std::string>> read_list(const ConfigValue& v) {
  if (const auto* list = std::get_if<std::vector<std::string>>(&v.value)) return *list;
  if (const auto* s = std::get_if<std::string>(&v.value); s != nullptr && v.origin != ValueOrigin::kFile) {
    std::vector<std::string> items;  // comma-separated; blanks ignored so "" means an empty list
    std::string_view rest(*s);
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view item = trim(rest.substr(0, comma));
      if (!item.empty()) items.emplace_back(item);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    return items;
  }
  return invalid("must be an array of strings");
}

Result<std::string> read_choice(const ConfigValue& v, std::initializer_list<std::string_view> choices) {
  auto text = read_string(v);
  if (!text) return text;
  for (auto choice : choices) {
    if (*text == choice) return text;
  }
  std::string message = "must be one of ";
  bool first = true;
  for (auto choice : choices) {
    message += (first ? "" : ", ") + std::string(choice);
    first = false;
  }
  return invalid(message + "; got '" + *text + "'");
}

std::string render_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + toml_quote(items[i]);
  return out + "]";
}

bool token_char_ok(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' ||
         c == '/' || c == '=';
}

// The limit keys are all unsigned integers stored in a field of RelayConfig.
template <typename T>
ConfigKey integer_key(std::string_view name, T RelayConfig::*field, std::uint64_t min, std::uint64_t max,
                      std::string_view help) {
  static_assert(std::is_unsigned_v<T>);
  return ConfigKey{name, ValueKind::kInteger, help, false,
                   [field, min, max](RelayConfig& config, const ConfigValue& value) -> Status {
                     const std::uint64_t cap = std::min<std::uint64_t>(max, std::numeric_limits<T>::max());
                     auto number = read_integer(value, min, cap);
                     if (!number) return number.error();
                     config.*field = static_cast<T>(*number);
                     return Status::ok();
                   },
                   [field](const RelayConfig& config) { return std::to_string(config.*field); }};
}

ConfigKey path_key(std::string_view name, std::filesystem::path RelayConfig::*field, std::string_view help) {
  return ConfigKey{name, ValueKind::kString, help, false,
                   [field](RelayConfig& config, const ConfigValue& value) -> Status {
                     auto text = read_string(value);
                     if (!text) return text.error();
                     if (text->find('\0') != std::string::npos) return invalid("must not contain NUL");
                     config.*field = *text;
                     return Status::ok();
                   },
                   [field](const RelayConfig& config) { return toml_quote((config.*field).string()); }};
}

std::vector<ConfigKey> make_keys() {
  std::vector<ConfigKey> keys;
  keys.push_back({"listen", ValueKind::kString, "HOST:PORT for ws:// (or wss://) and /health; port 0 = any free port",
                  false,
                  [](RelayConfig& config, const ConfigValue& value) -> Status {
                    auto text = read_string(value);
                    if (!text) return text.error();
                    auto address = parse_listen_address(*text);
                    if (!address) return address.error();
                    config.listen = *address;
                    return Status::ok();
                  },
                  [](const RelayConfig& config) { return toml_quote(format_listen_address(config.listen)); }});
  keys.push_back({"data", ValueKind::kString, "directory for relay.db and relay.key (created 0700)", false,
                  [](RelayConfig& config, const ConfigValue& value) -> Status {
                    auto text = read_string(value);
                    if (!text) return text.error();
                    if (text->empty()) return invalid("must not be empty");
                    if (text->find('\0') != std::string::npos) return invalid("must not contain NUL");
                    config.data_dir = *text;
                    return Status::ok();
                  },
                  [](const RelayConfig& config) { return toml_quote(config.data_dir.string()); }});
  keys.push_back({"durability", ValueKind::kString,
                  "full: an acked blob survives power loss; normal: survives a process crash", false,
                  [](RelayConfig& config, const ConfigValue& value) -> Status {
                    auto text = read_choice(value, {"full", "normal"});
                    if (!text) return text.error();
                    config.durability = *text == "normal" ? Durability::kNormal : Durability::kFull;
                    return Status::ok();
                  },
                  [](const RelayConfig& config) {
                    return toml_quote(config.durability == Durability::kNormal ? "normal" : "full");
                  }});
  keys.push_back({"log_level", ValueKind::kString, "trace|debug|info|warn|error|critical|off (logs go to stderr)",
                  false,
                  [](RelayConfig& config, const ConfigValue& value) -> Status {
                    auto text = read_choice(value, {"trace", "debug", "info", "warn", "error", "critical", "off"});
                    if (!text) return text.error();
                    config.log_level = *text;
                    return Status::ok();
                  },
                  [](const RelayConfig& config) { return toml_quote(config.log_level); }});
  keys.push_back(integer_key("threads", &RelayConfig::threads, 1, 64, "I/O threads"));
  keys.push_back({"metrics_listen", ValueKind::kString,
                  "HOST:PORT of a second port serving only /metrics and /health (\"\" = /metrics on listen)", false,
                  [](RelayConfig& config, const ConfigValue& value) -> Status {
                    auto text = read_string(value);
                    if (!text) return text.error();
                    if (trim(*text).empty()) {
                      config.metrics_listen.reset();
                      return Status::ok();
                    }
                    auto address = parse_listen_address(*text);
                    if (!address) return address.error();
                    config.metrics_listen = *address;
                    return Status::ok();
                  },
                  [](const RelayConfig& config) {
                    return toml_quote(config.metrics_listen ? format_listen_address(*config.metrics_listen) : "");
                  }});
  keys.push_back(path_key("tls_cert", &RelayConfig::tls_cert,
                          "PEM certificate chain: serve wss:// and https:// (needs tls_key; \"\" = plain)"));
  keys.push_back(path_key("tls_key", &RelayConfig::tls_key, "PEM private key for tls_cert"));

  keys.push_back(integer_key("max_sessions", &RelayConfig::max_sessions, 1, 1'000'000,
                             "concurrent sessions; beyond it HELLO gets RELAY_OVERLOADED"));
  keys.push_back(integer_key("max_sessions_per_group", &RelayConfig::max_sessions_per_group, 1, 100'000,
                             "concurrent sessions of one group; beyond it GROUP_FULL"));
  keys.push_back(integer_key("max_connections_per_ip", &RelayConfig::max_connections_per_ip, 0, 1'000'000,
                             "concurrent connections from one IP address (IPv6: per /64); 0 = no limit"));
  keys.push_back(integer_key("max_devices_per_group", &RelayConfig::max_devices_per_group, 0, 1'000'000,
                             "distinct devices remembered per group; a new one beyond it gets GROUP_FULL; 0 = no limit"));
  keys.push_back(integer_key("device_messages_per_minute", &RelayConfig::device_messages_per_minute, 1, 10'000'000,
                             "messages per device per minute; beyond it RATE_LIMITED"));
  keys.push_back(integer_key("global_messages_per_second", &RelayConfig::global_messages_per_second, 1,
                             100'000'000, "messages per second over the whole relay"));
  keys.push_back(integer_key("rate_limit_strikes", &RelayConfig::rate_limit_strikes, 0, 1'000'000,
                             "rate-limited messages in a row before the session is closed; 0 = never close"));
  keys.push_back(integer_key("limiter_max_devices", &RelayConfig::limiter_max_devices, 1, 100'000'000,
                             "per-device rate limiter entries kept (least recently used evicted)"));
  keys.push_back(integer_key("max_blob_bytes", &RelayConfig::max_blob_bytes, 1, 16 * kMiB,
                             "largest payload of one blob; larger pushes get BLOB_TOO_LARGE"));
  keys.push_back(integer_key("group_quota_bytes", &RelayConfig::group_quota_bytes, 0, 1ull << 50,
                             "payload bytes buffered per group; beyond it GROUP_QUOTA_EXCEEDED; 0 = no limit"));
  keys.push_back(integer_key("max_ttl_seconds", &RelayConfig::max_ttl_seconds, 1, kTenYearsSeconds,
                             "longest time a blob is kept (a push's ttl is capped to it)"));
  keys.push_back(integer_key("default_ttl_seconds", &RelayConfig::default_ttl_seconds, 1, kTenYearsSeconds,
                             "ttl of a push that asks for none (at most max_ttl_seconds)"));
  keys.push_back(integer_key("hello_timeout_ms", &RelayConfig::hello_timeout_ms, 100, 600'000,
                             "a connection must complete HELLO within this time"));
  keys.push_back(integer_key("idle_timeout_ms", &RelayConfig::idle_timeout_ms, 200, kDayMs,
                             "WebSocket ping after half of this without traffic, close after all of it"));
  keys.push_back(integer_key("max_pull_limit", &RelayConfig::max_pull_limit, 1, 10'000,
                             "most blobs in one PULL_RESPONSE (larger requests are clamped)"));
  keys.push_back(integer_key("max_pull_pages", &RelayConfig::max_pull_pages, 1, 64,
                             "most PULL_RESPONSEs sent back to back for one PULL (its `pages`)"));
  keys.push_back(integer_key("max_groups", &RelayConfig::max_groups, 0, 1ull << 40,
                             "groups the relay stores; a new group beyond it gets STORAGE_FULL; 0 = no limit"));
  keys.push_back(integer_key("storage_cap_bytes", &RelayConfig::storage_cap_bytes, 0, 1ull << 60,
                             "payload bytes over all groups; beyond it STORAGE_FULL; 0 = no limit"));

  keys.push_back({"access", ValueKind::kString,
                  "open: any group; token: HELLO must carry one of access_tokens; allowlist: listed groups only",
                  false,
                  [](RelayConfig& config, const ConfigValue& value) -> Status {
                    auto text = read_choice(value, {"open", "token", "allowlist"});
                    if (!text) return text.error();
                    config.access = *text == "token"       ? AccessMode::kToken
                                    : *text == "allowlist" ? AccessMode::kAllowlist
                                                           : AccessMode::kOpen;
                    return Status::ok();
                  },
                  [](const RelayConfig& config) { return toml_quote(access_mode_name(config.access)); }});
  keys.push_back({"access_tokens", ValueKind::kStringList,
                  "tokens accepted with access = \"token\" (file or environment only; printed redacted)", true,
                  [](RelayConfig& config, const ConfigValue& value) -> Status {
                    auto list = read_list(value);
                    if (!list) return list.error();
                    if (list->size() > kMaxTokens) return invalid("at most " + std::to_string(kMaxTokens) + " tokens");
                    for (std::size_t i = 0; i < list->size(); ++i) {
                      const std::string& token = (*list)[i];
                      const std::string which = "token #" + std::to_string(i + 1);
                      if (token.size() < kMinTokenLength || token.size() > kMaxTokenLength) {
                        return invalid(which + " must be " + std::to_string(kMinTokenLength) + " to " +
                                       std::to_string(kMaxTokenLength) + " characters long");
                      }
                      if (!std::all_of(token.begin(), token.end(), token_char_ok)) {
                        return invalid(which + " may only use letters, digits and - _ . ~ + / =");
                      }
                    }
                    config.access_tokens = std::move(*list);
                    return Status::ok();
                  },
                  [](const RelayConfig& config) {
                    std::vector<std::string> redacted;
                    for (const auto& token : config.access_tokens) redacted.push_back(redact_token(token));
                    return render_list(redacted);
                  }});
  keys.push_back({"allowlist", ValueKind::kStringList, "group ids (64 hex characters) admitted with access = \"allowlist\"",
                  false,
                  [](RelayConfig& config, const ConfigValue& value) -> Status {
                    auto list = read_list(value);
                    if (!list) return list.error();
                    if (list->size() > kMaxAllowlist) {
                      return invalid("at most " + std::to_string(kMaxAllowlist) + " group ids");
                    }
                    std::vector<GroupId> groups;
                    groups.reserve(list->size());
                    for (std::size_t i = 0; i < list->size(); ++i) {
                      auto id = GroupId::parse_hex((*list)[i]);
                      if (!id) return invalid("entry #" + std::to_string(i + 1) + ": " + id.error().message());
                      groups.push_back(*id);
                    }
                    config.allowlist = std::move(groups);
                    return Status::ok();
                  },
                  [](const RelayConfig& config) {
                    std::vector<std::string> hex;
                    for (const auto& id : config.allowlist) hex.push_back(id.to_hex());
                    return render_list(hex);
                  }});
  keys.push_back(integer_key("cleanup_interval_ms", &RelayConfig::cleanup_interval_ms, 100, kDayMs,
                             "how often expired (and, with drop_acked, fully acked) blobs are removed"));
  keys.push_back({"drop_acked", ValueKind::kBool,
                  "remove a blob once every non-revoked device of its group has ACKed past it", false,
                  [](RelayConfig& config, const ConfigValue& value) -> Status {
                    auto flag = read_bool(value);
                    if (!flag) return flag.error();
                    config.drop_acked = *flag;
                    return Status::ok();
                  },
                  [](const RelayConfig& config) { return std::string(config.drop_acked ? "true" : "false"); }});
  return keys;
}

bool readable_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  return in.good();
}

}  // namespace

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = make_keys();
  return keys;
}

const ConfigKey* find_config_key(std::string_view name) noexcept {
  for (const auto& key : config_keys()) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

std::string environment_name(std::string_view key) {
  std::string name(kEnvironmentPrefix);
  for (char c : key) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

std::string flag_name(std::string_view key) {
  std::string name = "--";
  for (char c : key) name += c == '_' ? '-' : c;
  return name;
}

Status validate_config(const RelayConfig& config) {
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return invalid(config.tls_cert.empty() ? "tls_cert: must be set when tls_key is set"
                                           : "tls_key: must be set when tls_cert is set");
  }
  if (!config.tls_cert.empty()) {
    if (!readable_file(config.tls_cert)) return invalid("tls_cert: cannot read '" + config.tls_cert.string() + "'");
    if (!readable_file(config.tls_key)) return invalid("tls_key: cannot read '" + config.tls_key.string() + "'");
  }
  if (config.default_ttl_seconds > config.max_ttl_seconds) {
    return invalid("default_ttl_seconds: " + std::to_string(config.default_ttl_seconds) +
                   " is above max_ttl_seconds (" + std::to_string(config.max_ttl_seconds) + ")");
  }
  if (config.access == AccessMode::kToken && config.access_tokens.empty()) {
    return invalid("access_tokens: access = \"token\" needs at least one token");
  }
  if (config.access == AccessMode::kAllowlist && config.allowlist.empty()) {
    return invalid("allowlist: access = \"allowlist\" needs at least one group id");
  }
  if (config.max_sessions_per_group > config.max_sessions) {
    return invalid("max_sessions_per_group: " + std::to_string(config.max_sessions_per_group) +
                   " is above max_sessions (" + std::to_string(config.max_sessions) + ")");
  }
  if (config.metrics_listen && config.metrics_listen->port != 0 && config.metrics_listen->port == config.listen.port) {
    return invalid("metrics_listen: must use another port than listen (" + format_listen_address(config.listen) + ")");
  }
  return Status::ok();
}

std::vector<std::string> config_warnings(const RelayConfig& config) {
  std::vector<std::string> warnings;
  if (config.access != AccessMode::kToken && !config.access_tokens.empty()) {
    warnings.push_back("access_tokens are set but access = \"" + std::string(access_mode_name(config.access)) +
                       "\": the tokens are not checked");
  }
  if (config.access != AccessMode::kAllowlist && !config.allowlist.empty()) {
    warnings.push_back("allowlist is set but access = \"" + std::string(access_mode_name(config.access)) +
                       "\": the list is not checked");
  }
  if (config.group_quota_bytes != 0 && config.group_quota_bytes < config.max_blob_bytes) {
    warnings.push_back("group_quota_bytes is below max_blob_bytes: the largest blobs can never be stored");
  }
  return warnings;
}

std::string redact_token(std::string_view token) {
  return std::string(token.substr(0, std::min<std::size_t>(4, token.size()))) + "...(redacted)";
}

std::string toml_quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", u);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace blindsync::relay
