// Relay configuration: relay.toml + BLINDSYNC_RELAY_* environment + flags (relay_config.h,
// config/*). Driven through parse_relay_args with an explicit environment, as main() runs it.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "config/config_file.h"
#include "config/config_keys.h"
#include "config/config_render.h"
#include "ops_relay_process.h"
#include "relay_config.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;
using blindsync::test::OpsTempDir;
using blindsync::test::write_text_file;

ParsedArgs parse_with(std::vector<std::string> args, const Environment& environment = {}) {
  args.insert(args.begin(), "blindsync-relay");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_relay_args(static_cast<int>(argv.size()), argv.data(), environment);
}

const std::string kGroupA = std::string(64, 'a');
const std::string kGroupB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kToken1 = "tok1-0123456789abcdef0123456789";
const std::string kToken2 = "tok2-ZYXWVUTSRQPONMLKJIHGFEDCBA";

// A legal non-default value for every key that has a flag: as a TOML literal and as text.
struct KeySample {
  std::string key;
  std::string toml;
  std::string text;
};
std::vector<KeySample> key_samples() {
  return {
      {"listen", "\"[::1]:9000\"", "[::1]:9000"},
      {"data", "\"/srv/relay-data\"", "/srv/relay-data"},
      {"durability", "\"normal\"", "normal"},
      {"log_level", "\"debug\"", "debug"},
      {"threads", "7", "7"},
      {"metrics_listen", "\"127.0.0.1:9100\"", "127.0.0.1:9100"},
      {"max_sessions", "1234", "1234"},
      {"max_sessions_per_group", "5", "5"},
      {"max_connections_per_ip", "0", "0"},
      {"max_devices_per_group", "33", "33"},
      {"device_messages_per_minute", "61", "61"},
      {"global_messages_per_second", "777", "777"},
      {"rate_limit_strikes", "3", "3"},
      {"limiter_max_devices", "5000", "5000"},
      {"max_blob_bytes", "65536", "65536"},
      {"group_quota_bytes", "20000000", "20000000"},
      {"max_ttl_seconds", "86400", "86400"},
      {"default_ttl_seconds", "3600", "3600"},
      {"hello_timeout_ms", "2500", "2500"},
      {"idle_timeout_ms", "30000", "30000"},
      {"max_pull_limit", "50", "50"},
      {"max_pull_pages", "4", "4"},
      {"max_groups", "12", "12"},
      {"storage_cap_bytes", "21474836480", "21474836480"},
      {"access", "\"allowlist\"", "allowlist"},
      {"allowlist", "[\"" + kGroupA + "\", \"" + kGroupB + "\"]", kGroupA + "," + kGroupB},
      {"cleanup_interval_ms", "1500", "1500"},
      {"drop_acked", "true", "true"},
  };
}

std::string rendered(const RelayConfig& config, const std::string& key) {
  const ConfigKey* k = find_config_key(key);
  REQUIRE(k != nullptr);
  return k->render(config);
}

TEST_CASE("every relay setting has its documented default", "[config][ops]") {
  const ParsedArgs parsed = parse_with({});
  REQUIRE(parsed.config.has_value());
  const RelayConfig& c = *parsed.config;
  CHECK(c == RelayConfig{});
  CHECK(c.listen == ListenAddress{"127.0.0.1", 7600});
  CHECK(c.data_dir == "./blindsync-data");
  CHECK(c.durability == Durability::kFull);
  CHECK(c.log_level == "info");
  CHECK(c.threads == 2);
  CHECK_FALSE(c.metrics_listen.has_value());
  CHECK_FALSE(c.tls_enabled());
  CHECK(c.max_sessions == 3000);
  CHECK(c.max_sessions_per_group == 16);
  CHECK(c.max_connections_per_ip == 10);
  CHECK(c.device_messages_per_minute == 100);
  CHECK(c.global_messages_per_second == 2000);
  CHECK(c.max_blob_bytes == 1048576);
  CHECK(c.group_quota_bytes == 104857600);
  CHECK(c.max_ttl_seconds == 2592000);
  CHECK(c.default_ttl_seconds == 604800);
  CHECK(c.hello_timeout_ms == 10000);
  CHECK(c.idle_timeout_ms == 60000);
  CHECK(c.max_pull_limit == 1000);
  CHECK(c.max_pull_pages == 8);
  CHECK(c.max_groups == 100000);
  CHECK(c.storage_cap_bytes == 10ull * 1024 * 1024 * 1024);
  CHECK(c.access == AccessMode::kOpen);
  CHECK(c.access_tokens.empty());
  CHECK(c.allowlist.empty());
  CHECK(c.cleanup_interval_ms == 60000);
  CHECK_FALSE(c.drop_acked);
  CHECK(parsed.warnings.empty());
}

TEST_CASE("every key can be set from the config file, the environment and a flag", "[config][ops]") {
  OpsTempDir dir;
  const auto samples = key_samples();
  // Every key with a flag is covered (access_tokens has none and is tested on its own).
  std::size_t flagged = 0;
  for (const auto& key : config_keys()) flagged += key.secret ? 0 : 1;
  CHECK(samples.size() + 2 == flagged);  // + tls_cert and tls_key, which need real files

  std::string file_text;
  Environment environment;
  std::vector<std::string> flags;
  for (const auto& sample : samples) {
    file_text += sample.key + " = " + sample.toml + "\n";
    environment.emplace_back(environment_name(sample.key), sample.text);
    flags.push_back(flag_name(sample.key));
    flags.push_back(sample.text);
  }
  write_text_file(dir.path() / "relay.toml", file_text);

  const ParsedArgs from_file = parse_with({"--config", dir.str("relay.toml")});
  const ParsedArgs from_env = parse_with({}, environment);
  const ParsedArgs from_flags = parse_with(flags);
  INFO(from_file.output << from_env.output << from_flags.output);
  REQUIRE(from_file.config.has_value());
  REQUIRE(from_env.config.has_value());
  REQUIRE(from_flags.config.has_value());
  CHECK(*from_file.config == *from_env.config);
  CHECK(*from_file.config == *from_flags.config);
  CHECK_FALSE(*from_file.config == RelayConfig{});
  for (const auto& sample : samples) {
    INFO(sample.key);
    const std::string expected = sample.toml;
    CHECK(rendered(*from_file.config, sample.key) == expected);
  }
  CHECK(from_file.config->listen == ListenAddress{"::1", 9000});
  CHECK(from_file.config->allowlist.size() == 2);
  CHECK(from_file.config->allowlist[1].to_hex() == kGroupB);
  CHECK(from_file.config_file == dir.path() / "relay.toml");
}

TEST_CASE("flags override the environment, which overrides the file, which overrides defaults", "[config][ops]") {
  OpsTempDir dir;
  write_text_file(dir.path() / "relay.toml", "max_sessions = 100\nlisten = \"127.0.0.1:1001\"\nthreads = 3\n");
  const std::string file = dir.str("relay.toml");
  const Environment env{{"BLINDSYNC_RELAY_MAX_SESSIONS", "200"}, {"BLINDSYNC_RELAY_LISTEN", "127.0.0.1:1002"}};

  const ParsedArgs all = parse_with({"--config", file, "--max-sessions", "300"}, env);
  REQUIRE(all.config.has_value());
  CHECK(all.config->max_sessions == 300);                              // flag
  CHECK(all.config->listen == ListenAddress{"127.0.0.1", 1002});      // environment
  CHECK(all.config->threads == 3);                                    // file
  CHECK(all.config->max_sessions_per_group == 16);                    // default

  const ParsedArgs no_flag = parse_with({"--config", file}, env);
  REQUIRE(no_flag.config.has_value());
  CHECK(no_flag.config->max_sessions == 200);
  const ParsedArgs file_only = parse_with({"--config", file});
  REQUIRE(file_only.config.has_value());
  CHECK(file_only.config->max_sessions == 100);
  CHECK(file_only.config->listen == ListenAddress{"127.0.0.1", 1001});
}

TEST_CASE("BLINDSYNC_RELAY_CONFIG names the config file and --config wins over it", "[config][ops]") {
  OpsTempDir dir;
  write_text_file(dir.path() / "a.toml", "max_sessions = 111\n");
  write_text_file(dir.path() / "b.toml", "max_sessions = 222\n");
  const Environment env{{"BLINDSYNC_RELAY_CONFIG", dir.str("a.toml")}};
  const ParsedArgs from_env = parse_with({}, env);
  REQUIRE(from_env.config.has_value());
  CHECK(from_env.config->max_sessions == 111);
  const ParsedArgs from_flag = parse_with({"--config", dir.str("b.toml")}, env);
  REQUIRE(from_flag.config.has_value());
  CHECK(from_flag.config->max_sessions == 222);
  CHECK(from_flag.config_file == dir.path() / "b.toml");
}

TEST_CASE("lists come comma-separated from the environment and as arrays from the file", "[config][ops]") {
  const ParsedArgs parsed =
      parse_with({}, {{"BLINDSYNC_RELAY_ACCESS", "token"},
                      {"BLINDSYNC_RELAY_ACCESS_TOKENS", " " + kToken1 + " , " + kToken2 + ","}});
  INFO(parsed.output);
  REQUIRE(parsed.config.has_value());
  CHECK(parsed.config->access == AccessMode::kToken);
  CHECK(parsed.config->access_tokens == std::vector<std::string>{kToken1, kToken2});

  OpsTempDir dir;
  write_text_file(dir.path() / "relay.toml",
                  "access = \"token\"\naccess_tokens = [\"" + kToken1 + "\", \"" + kToken2 + "\"]\n");
  const ParsedArgs from_file = parse_with({"--config", dir.str("relay.toml")});
  REQUIRE(from_file.config.has_value());
  CHECK(from_file.config->access_tokens == std::vector<std::string>{kToken1, kToken2});
}

TEST_CASE("access tokens cannot be given on the command line", "[config][ops][hostile]") {
  const ParsedArgs parsed = parse_with({"--access", "token", "--access-tokens", kToken1});
  CHECK_FALSE(parsed.config.has_value());
  CHECK(parsed.exit_code == 2);
  CHECK(parsed.output_is_error);
}

struct BadCase {
  std::string name;
  std::string file;  // relay.toml contents, empty = no file
  Environment env;
  std::vector<std::string> flags;
  std::vector<std::string> expected;  // substrings of the message
};

TEST_CASE("invalid settings are refused with exit code 2 and a message naming the key", "[config][ops][hostile]") {
  OpsTempDir dir;
  const std::vector<BadCase> cases = {
      {"out of range in file", "max_sessions = 0\n", {}, {}, {"config file", "max_sessions", "from 1 to"}},
      {"string for integer", "max_sessions = \"10\"\n", {}, {}, {"max_sessions", "must be an integer"}},
      {"negative", "threads = -1\n", {}, {}, {"threads"}},
      {"float", "threads = 1.5\n", {}, {}, {"threads", "floating-point"}},
      {"unknown key", "max_sesions = 10\n", {}, {}, {"max_sesions", "unknown key"}},
      {"table", "[limits]\nmax_sessions = 10\n", {}, {}, {"limits", "unknown key"}},
      {"syntax", "listen = = 3\n", {}, {}, {"config file", "line 1"}},
      {"bad bool", "drop_acked = \"yes\"\n", {}, {}, {"drop_acked", "true or false"}},
      {"bad choice", "durability = \"sometimes\"\n", {}, {}, {"durability", "full, normal"}},
      {"bad list item", "allowlist = [\"zz\"]\n", {}, {}, {"allowlist", "entry #1"}},
      {"list of ints", "allowlist = [1, 2]\n", {}, {}, {"allowlist", "array of strings"}},
      {"env not a number", "", {{"BLINDSYNC_RELAY_MAX_SESSIONS", "abc"}}, {},
       {"BLINDSYNC_RELAY_MAX_SESSIONS", "max_sessions"}},
      {"env unknown", "", {{"BLINDSYNC_RELAY_MAX_SESION", "1"}}, {}, {"BLINDSYNC_RELAY_MAX_SESION", "not a relay setting"}},
      {"env bad listen", "", {{"BLINDSYNC_RELAY_LISTEN", "nowhere"}}, {}, {"BLINDSYNC_RELAY_LISTEN", "listen"}},
      {"flag too small", "", {}, {"--idle-timeout-ms", "5"}, {"--idle-timeout-ms", "idle_timeout_ms"}},
      {"flag blob too large", "", {}, {"--max-blob-bytes", "999999999"}, {"max_blob_bytes"}},
      {"token mode without tokens", "", {}, {"--access", "token"}, {"access_tokens"}},
      {"allowlist mode without groups", "", {}, {"--access", "allowlist"}, {"allowlist"}},
      {"cert without key", "", {}, {"--tls-cert", dir.str("missing.pem")}, {"tls_key"}},
      {"missing cert file", "", {}, {"--tls-cert", dir.str("missing.pem"), "--tls-key", dir.str("missing.key")},
       {"tls_cert", "cannot read"}},
      {"default ttl above max", "", {}, {"--max-ttl-seconds", "60", "--default-ttl-seconds", "120"},
       {"default_ttl_seconds"}},
      {"group sessions above sessions", "", {}, {"--max-sessions", "2", "--max-sessions-per-group", "3"},
       {"max_sessions_per_group"}},
      {"metrics on the main port", "", {}, {"--listen", "127.0.0.1:7777", "--metrics-listen", "127.0.0.1:7777"},
       {"metrics_listen"}},
      {"missing config file", "", {{"BLINDSYNC_RELAY_CONFIG", dir.str("nope.toml")}}, {}, {"config file", "nope.toml"}},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    std::vector<std::string> flags = c.flags;
    if (!c.file.empty()) {
      write_text_file(dir.path() / "relay.toml", c.file);
      flags.insert(flags.begin(), {"--config", dir.str("relay.toml")});
    }
    const ParsedArgs parsed = parse_with(flags, c.env);
    INFO(parsed.output);
    CHECK_FALSE(parsed.config.has_value());
    CHECK(parsed.exit_code == 2);
    CHECK(parsed.output_is_error);
    for (const auto& needle : c.expected) CHECK(parsed.output.find(needle) != std::string::npos);
  }
}

TEST_CASE("a refused access token is never echoed in the error", "[config][ops][hostile]") {
  const std::string secret_ish = "SECRET with spaces and (parens) 0123456789";
  const ParsedArgs parsed =
      parse_with({}, {{"BLINDSYNC_RELAY_ACCESS", "token"}, {"BLINDSYNC_RELAY_ACCESS_TOKENS", secret_ish}});
  CHECK(parsed.exit_code == 2);
  CHECK(parsed.output.find("access_tokens") != std::string::npos);
  CHECK(parsed.output.find("SECRET") == std::string::npos);
  const ParsedArgs short_token =
      parse_with({}, {{"BLINDSYNC_RELAY_ACCESS", "token"}, {"BLINDSYNC_RELAY_ACCESS_TOKENS", "shortSECRET"}});
  CHECK(short_token.exit_code == 2);
  CHECK(short_token.output.find("shortSECRET") == std::string::npos);
}

TEST_CASE("print-config prints every key as TOML that reads back to the same configuration", "[config][ops]") {
  std::vector<std::string> flags;
  for (const auto& sample : key_samples()) {
    flags.push_back(flag_name(sample.key));
    flags.push_back(sample.text);
  }
  const ParsedArgs effective = parse_with(flags);
  REQUIRE(effective.config.has_value());

  flags.push_back("--print-config");
  const ParsedArgs printed = parse_with(flags);
  CHECK_FALSE(printed.config.has_value());
  CHECK(printed.exit_code == 0);
  CHECK_FALSE(printed.output_is_error);
  for (const auto& key : config_keys()) CHECK(printed.output.find("\n" + std::string(key.name) + " = ") != std::string::npos);

  auto values = parse_config_text(printed.output);
  INFO(printed.output);
  REQUIRE(values.has_value());
  RelayConfig reread;
  for (const auto& [name, value] : *values) REQUIRE(find_config_key(name)->apply(reread, value).is_ok());
  CHECK(reread == *effective.config);
}

TEST_CASE("print-config redacts access tokens, and a redacted token is refused if fed back", "[config][ops]") {
  const ParsedArgs printed = parse_with(
      {"--print-config"}, {{"BLINDSYNC_RELAY_ACCESS", "token"}, {"BLINDSYNC_RELAY_ACCESS_TOKENS", kToken1}});
  REQUIRE(printed.exit_code == 0);
  CHECK(printed.output.find(kToken1) == std::string::npos);
  CHECK(printed.output.find(kToken1.substr(0, 4) + "...(redacted)") != std::string::npos);
  CHECK(redact_token(kToken1).find(kToken1.substr(4)) == std::string::npos);

  OpsTempDir dir;
  write_text_file(dir.path() / "relay.toml", printed.output);
  const ParsedArgs reread = parse_with({"--config", dir.str("relay.toml")});
  CHECK(reread.exit_code == 2);
  CHECK(reread.output.find("access_tokens") != std::string::npos);
}

TEST_CASE("the exposure warning names a non-loopback open relay without TLS, and only it", "[config][ops]") {
  RelayConfig config;
  CHECK_FALSE(exposure_warning(config).has_value());  // 127.0.0.1
  config.listen = {"0.0.0.0", 7600};
  const auto warning = exposure_warning(config);
  REQUIRE(warning.has_value());
  CHECK(warning->find("0.0.0.0:7600") != std::string::npos);
  CHECK(warning->find("open") != std::string::npos);
  CHECK(warning->find("TLS") != std::string::npos);
  config.access = AccessMode::kToken;
  CHECK_FALSE(exposure_warning(config).has_value());
  config.access = AccessMode::kOpen;
  config.tls_cert = "cert.pem";
  config.tls_key = "key.pem";
  CHECK_FALSE(exposure_warning(config).has_value());
  config = RelayConfig{};
  config.listen = {"::", 7600};
  CHECK(exposure_warning(config).has_value());
  config.listen = {"::1", 7600};
  CHECK_FALSE(exposure_warning(config).has_value());

  CHECK(is_loopback_host("127.0.0.1"));
  CHECK(is_loopback_host("127.1.2.3"));
  CHECK(is_loopback_host("localhost"));
  CHECK_FALSE(is_loopback_host("10.0.0.1"));
  CHECK_FALSE(is_loopback_host("1270.0.0.1"));
  CHECK_FALSE(is_loopback_host("example.org"));
}

TEST_CASE("settings that do nothing in the chosen access mode produce a warning", "[config][ops]") {
  const ParsedArgs parsed = parse_with({}, {{"BLINDSYNC_RELAY_ACCESS_TOKENS", kToken1}, {"BLINDSYNC_RELAY_ALLOWLIST", kGroupA}});
  REQUIRE(parsed.config.has_value());
  REQUIRE(parsed.warnings.size() == 2);
  CHECK(parsed.warnings[0].find("access_tokens") != std::string::npos);
  CHECK(parsed.warnings[0].find(kToken1) == std::string::npos);
  CHECK(parsed.warnings[1].find("allowlist") != std::string::npos);
}

TEST_CASE("hostile config files are refused without crashing", "[config][ops][hostile]") {
  CHECK_FALSE(parse_config_text(std::string(kMaxConfigFileBytes + 1, '#')).has_value());
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 131 + 7) % 256);
  CHECK_FALSE(parse_config_text(garbage).has_value());
  CHECK_FALSE(parse_config_text("allowlist = " + std::string(5000, '[') + std::string(5000, ']')).has_value());
  CHECK_FALSE(parse_config_text("listen = \"a\"\nlisten = \"b\"\n").has_value());  // duplicate key
  CHECK(parse_config_text("").has_value());
  CHECK(parse_config_text("# only a comment\n").has_value());
}

}  // namespace

namespace {

TEST_CASE("deploy/relay.toml is a valid config that mentions every key", "[config][ops]") {
  const std::filesystem::path example = std::filesystem::path(BLINDSYNC_SOURCE_DIR) / "deploy" / "relay.toml";
  const ParsedArgs parsed = parse_with({"--config", example.string()});
  INFO(parsed.output);
  REQUIRE(parsed.config.has_value());
  CHECK(parsed.warnings.empty());
  CHECK(parsed.config->data_dir == "/var/lib/blindsync");

  std::ifstream in(example);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& key : config_keys()) {
    INFO(key.name);
    const std::string name(key.name);
    CHECK((text.find("\n" + name + " = ") != std::string::npos || text.find("\n# " + name + " = ") != std::string::npos));
  }
}

}  // namespace
