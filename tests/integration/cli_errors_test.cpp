// CLI error paths: each ends with a clear "blindsync: error: ..." on stderr and exit 1 (usage
// errors exit 2) — never a crash, never a hang (every run is bounded), never a secret printed.
#include <filesystem>

#include <catch2/catch.hpp>

#include "blindsync/auth/identity.h"
#include "blindsync/client/invite.h"
#include "blindsync/core/bytes.h"
#include "cli_fixture.h"
#include "relay_process.h"

using namespace blindsync;
using namespace blindsync::test;

namespace {

void require_clean_failure(const RunResult& result, int exit_code, const std::string& message_part) {
  INFO(describe(result));
  REQUIRE_FALSE(result.timed_out);
  REQUIRE(result.exit_code == exit_code);
  REQUIRE(result.err.rfind("blindsync: error: ", 0) == 0);
  REQUIRE(result.err.find(message_part) != std::string::npos);
}

std::string make_invite_link(std::uint64_t expires_at_ms) {
  Invite invite;
  invite.relays.push_back({"ws://127.0.0.1:9/v1/sync", auth::random_id<RelayId>()});
  auth::random_fill(invite.secret);
  invite.group_name = "made-up";
  invite.expires_at_ms = expires_at_ms;
  return encode_invite(invite);
}

// The module matrix drawn by `--qr` (true = light), decoded back from the half-block characters.
std::vector<std::vector<bool>> qr_modules(const std::string& out) {
  std::vector<std::vector<bool>> rows;
  for (const auto& line : split_lines(out)) {
    if (line.empty() || line.rfind("blindsync://", 0) == 0) continue;
    std::vector<bool> top, bottom;
    for (std::size_t i = 0; i < line.size();) {
      if (line[i] == ' ') {
        top.push_back(false), bottom.push_back(false), i += 1;
      } else if (line.compare(i, 3, "\u2588") == 0) {
        top.push_back(true), bottom.push_back(true), i += 3;
      } else if (line.compare(i, 3, "\u2580") == 0) {
        top.push_back(true), bottom.push_back(false), i += 3;
      } else if (line.compare(i, 3, "\u2584") == 0) {
        top.push_back(false), bottom.push_back(true), i += 3;
      } else {
        FAIL("unexpected character in the QR drawing: " << line);
      }
    }
    rows.push_back(top);
    rows.push_back(bottom);
  }
  return rows;
}

// A QR finder pattern (7x7: dark ring, light ring, dark 3x3 centre) with its top-left at (x, y).
bool is_finder_pattern(const std::vector<std::vector<bool>>& m, std::size_t x, std::size_t y) {
  for (std::size_t dy = 0; dy < 7; ++dy) {
    for (std::size_t dx = 0; dx < 7; ++dx) {
      const bool ring = dx == 0 || dy == 0 || dx == 6 || dy == 6;
      const bool centre = dx >= 2 && dx <= 4 && dy >= 2 && dy <= 4;
      const bool dark = ring || centre;
      if (m.at(y + dy).at(x + dx) == dark) return false;  // m holds "light"
    }
  }
  return true;
}

}  // namespace

TEST_CASE("init refuses a home that already has an identity", "[integration][cli][errors]") {
  TempDir dir;
  const auto device = init_device(dir, "alice");
  const auto again = run_cli(device.home, {"init", "--name", "other"});
  require_clean_failure(again, 1, "this home already has a device identity (" + device.device_id + ")");
  REQUIRE(again.out.empty());
}

TEST_CASE("commands before init or without a group explain what to do", "[integration][cli][errors]") {
  TempDir dir;
  require_clean_failure(run_cli(dir.sub("nowhere"), {"push", "x"}), 1, "blindsync init");
  require_clean_failure(run_cli(dir.sub("nowhere"), {"pull"}), 1, "blindsync init");
  REQUIRE_FALSE(std::filesystem::exists(dir.sub("nowhere")));  // nothing created by a failed command

  const auto device = init_device(dir, "alice");
  require_clean_failure(run_cli(device.home, {"push", "hello"}), 1, "no group");
  require_clean_failure(run_cli(device.home, {"pull"}), 1, "no group");
  require_clean_failure(run_cli(device.home, {"watch", "--for", "1"}), 1, "no group");
}

TEST_CASE("joining an expired or corrupt invite link fails clearly", "[integration][cli][errors]") {
  TempDir dir;
  const auto device = init_device(dir, "bob");

  require_clean_failure(run_cli(device.home, {"group", "join", make_invite_link(1000)}), 1, "expired");

  const std::string valid = make_invite_link(0);
  const std::string truncated = valid.substr(0, valid.size() / 2);
  require_clean_failure(run_cli(device.home, {"group", "join", truncated}), 1, "invite link");
  require_clean_failure(run_cli(device.home, {"group", "join", std::string(kInvitePrefix) + "%%%not-base64%%%"}), 1,
                        "invite link");
  std::string flipped = valid;
  flipped[kInvitePrefix.size() + 3] = flipped[kInvitePrefix.size() + 3] == 'A' ? 'B' : 'A';
  const auto flipped_result = run_cli(device.home, {"group", "join", flipped});
  // A flipped character may still decode to a well-formed (different) invite; it must never crash.
  INFO(describe(flipped_result));
  REQUIRE((flipped_result.exit_code == 0 || flipped_result.exit_code == 1));
  require_clean_failure(run_cli(device.home, {"group", "join", "https://example.invalid/join"}), 1, "not an invite");

  // Nothing was joined by the failures (the flipped link aside).
  const auto status = run_cli(device.home, {"status", "--json"});
  REQUIRE(status.exit_code == 0);
  const auto json = nlohmann::json::parse(status.out);
  REQUIRE(json.at("groups").size() <= 1);
}

TEST_CASE("an unreachable or silent relay gives a clear error, not a hang", "[integration][cli][errors]") {
  TempDir dir;
  const auto device = init_device(dir, "alice");

  const std::uint16_t closed_port = unused_loopback_port();
  require_clean_failure(run_cli(device.home, {"--timeout", "5", "group", "create", "--relay",
                                              "ws://127.0.0.1:" + std::to_string(closed_port) + "/v1/sync"}),
                        1, "ws://127.0.0.1:" + std::to_string(closed_port));

  SilentListener silent;
  require_clean_failure(run_cli(device.home, {"--timeout", "2", "group", "create", "--relay",
                                              "ws://127.0.0.1:" + std::to_string(silent.port()) + "/v1/sync"}),
                        1, "ws://127.0.0.1:" + std::to_string(silent.port()));

  // Neither attempt left a group behind.
  const auto list = run_cli(device.home, {"group", "list", "--json"});
  REQUIRE(list.exit_code == 0);
  REQUIRE(nlohmann::json::parse(list.out).empty());
}

TEST_CASE("a push while the relay is down stays in the outbox and is delivered once later",
          "[integration][cli][errors][restart]") {
  TempDir dir;
  const std::string data_dir = dir.sub("relay");
  auto relay = RelayProcess::start(data_dir);
  const std::uint16_t port = relay->port();
  const auto devices = make_paired_devices(dir, relay->url());
  REQUIRE(relay->stop() == 0);
  relay.reset();

  const auto offline = run_cli(devices.a.home, {"--timeout", "3", "push", "written while offline"});
  require_clean_failure(offline, 1, "ws://127.0.0.1:" + std::to_string(port));
  REQUIRE(offline.err.find("outbox") != std::string::npos);
  {
    const auto status = run_cli(devices.a.home, {"status", "--json"});
    INFO(describe(status));
    REQUIRE(status.exit_code == 0);
    REQUIRE(nlohmann::json::parse(status.out).at("outbox_size").get<std::uint64_t>() == 1);
  }

  relay = RelayProcess::start(data_dir, port);
  REQUIRE(push_text(devices.a, "written while online") == 2);
  const auto pulled = pull_json(devices.b);
  REQUIRE(pulled.size() == 2);
  REQUIRE(blob_data(pulled[0]) == "written while offline");
  REQUIRE(blob_data(pulled[1]) == "written while online");
  const auto status = run_cli(devices.a.home, {"status", "--json"});
  REQUIRE(nlohmann::json::parse(status.out).at("outbox_size").get<std::uint64_t>() == 0);
  CHECK(relay->stop() == 0);
}

TEST_CASE("usage errors exit 2 with a message", "[integration][cli][errors]") {
  TempDir dir;
  const auto device = init_device(dir, "alice");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {},
           {"frobnicate"},
           {"push"},
           {"push", "text", "--file", "/etc/hostname"},
           {"group"},
           {"group", "create"},
           {"group", "create", "--relay", "http://127.0.0.1:1/"},
           {"pull", "--after", "minus-one"},
       }) {
    const auto result = run_cli(device.home, args);
    INFO(describe(result));
    REQUIRE_FALSE(result.timed_out);
    REQUIRE(result.exit_code == 2);
    REQUIRE(result.err.find("blindsync: error: ") != std::string::npos);
  }
}

TEST_CASE("group create --qr draws a QR code and the link stays on one line, status shows no secret",
          "[integration][cli]") {
  TempDir dir;
  auto relay = RelayProcess::start(dir.sub("relay"));
  const auto device = init_device(dir, "alice");
  const auto created = run_cli(device.home, {"group", "create", "--relay", relay->url(), "--name", "qr", "--qr"});
  INFO(describe(created));
  REQUIRE(created.exit_code == 0);
  const std::string link = extract_invite_link(created.out);
  REQUIRE(created.out.find("\u2588") != std::string::npos);  // full block
  REQUIRE(created.out.find("\u2580") != std::string::npos);  // upper half block
  REQUIRE(created.out.find("\u2584") != std::string::npos);  // lower half block
  // The drawing is a well-formed QR symbol: square (an odd row count leaves one padding row),
  // version size 21 + 4k inside a 2-module light quiet zone, finder patterns in three corners.
  const auto modules = qr_modules(created.out);
  const std::size_t size = modules.at(0).size();
  REQUIRE((modules.size() == size || modules.size() == size + 1));
  constexpr std::size_t kQuiet = 2;
  const std::size_t symbol = size - 2 * kQuiet;
  REQUIRE(symbol >= 21);
  REQUIRE((symbol - 21) % 4 == 0);
  for (std::size_t i = 0; i < size; ++i) {
    for (std::size_t q = 0; q < kQuiet; ++q) {
      REQUIRE(modules[q][i]);
      REQUIRE(modules[i][q]);
      REQUIRE(modules[size - 1 - q][i]);
      REQUIRE(modules[i][size - 1 - q]);
    }
  }
  REQUIRE(is_finder_pattern(modules, kQuiet, kQuiet));
  REQUIRE(is_finder_pattern(modules, kQuiet + symbol - 7, kQuiet));
  REQUIRE(is_finder_pattern(modules, kQuiet, kQuiet + symbol - 7));
  REQUIRE_FALSE(is_finder_pattern(modules, kQuiet + symbol - 7, kQuiet + symbol - 7));

  auto invite = decode_invite(link, 0);
  REQUIRE(invite.has_value());
  const ByteView secret(invite->secret.data(), invite->secret.size());
  for (const auto& args : std::vector<std::vector<std::string>>{{"status"}, {"status", "--json"},
                                                                {"group", "list"}, {"group", "list", "--json"}}) {
    const auto result = run_cli(device.home, args);
    INFO(describe(result));
    REQUIRE(result.exit_code == 0);
    for (const std::string& form : {to_hex(secret), to_base64url(secret), to_base64(secret)}) {
      REQUIRE(result.out.find(form) == std::string::npos);
      REQUIRE(result.err.find(form) == std::string::npos);
    }
    if (args[0] == "status") REQUIRE(result.out.find(relay->relay_id_hex()) != std::string::npos);
  }
  CHECK(relay->stop() == 0);
}

TEST_CASE("BLINDSYNC_HOME selects the device home, and --home overrides it", "[integration][cli]") {
  TempDir dir;
  const std::string env_home = dir.sub("from-env");
  const auto init = run_process(BLINDSYNC_CLI_BIN, {"init", "--name", "env"}, "", kCliTimeout,
                                {{"BLINDSYNC_HOME", env_home}});
  INFO(describe(init));
  REQUIRE(init.exit_code == 0);
  REQUIRE(std::filesystem::is_directory(env_home));
  const std::string device_id = split_lines(init.out).at(0);

  const auto status = run_cli(env_home, {"status", "--json"});
  REQUIRE(status.exit_code == 0);
  REQUIRE(nlohmann::json::parse(status.out).at("device").at("device_id") == device_id);

  // --home wins over the environment (also when given after the subcommand).
  const std::string flag_home = dir.sub("from-flag");
  const auto other = run_process(BLINDSYNC_CLI_BIN, {"init", "--home", flag_home}, "", kCliTimeout,
                                 {{"BLINDSYNC_HOME", env_home}});
  INFO(describe(other));
  REQUIRE(other.exit_code == 0);
  REQUIRE(split_lines(other.out).at(0) != device_id);
  REQUIRE(std::filesystem::is_directory(flag_home));
}
