// Two device homes and a real relay, driven only through the `blindsync` CLI.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>

#include "cli_fixture.h"
#include "http_get.h"
#include "relay_process.h"

using namespace blindsync::test;

namespace {

// The pulled blob with this cursor (REQUIREs exactly one).
nlohmann::json blob_at(const std::vector<nlohmann::json>& blobs, std::uint64_t cursor) {
  std::vector<nlohmann::json> found;
  for (const auto& blob : blobs) {
    if (blob.at("cursor").get<std::uint64_t>() == cursor) found.push_back(blob);
  }
  REQUIRE(found.size() == 1);
  return found[0];
}

// Polls the relay's /health (bounded: 200 x 50 ms) until it counts `expected` sessions.
bool wait_for_sessions(const RelayProcess& relay, std::int64_t expected) {
  for (int i = 0; i < 200; ++i) {
    if (auto health = http_get(relay.host(), relay.port(), "/health"); health && health->status == 200) {
      const auto json = nlohmann::json::parse(health->body, nullptr, /*allow_exceptions=*/false);
      if (json.is_object() && json.contains("sessions") && json["sessions"] == expected) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

void check_blob_fields(const nlohmann::json& blob) {
  for (const char* key : {"cursor", "blob_id", "sender", "timestamp", "size", "data_base64"}) {
    INFO(key);
    REQUIRE(blob.contains(key));
  }
  REQUIRE(blob.at("blob_id").get<std::string>().size() == 32);
  REQUIRE(blob.at("sender").get<std::string>().size() == 64);
  REQUIRE(blob.at("timestamp").get<std::uint64_t>() > 1'600'000'000'000ull);  // ms since the epoch
}

}  // namespace

TEST_CASE("two CLI devices exchange blobs through a real relay, exact bytes, in cursor order",
          "[integration][cli]") {
  TempDir dir;
  auto relay = RelayProcess::start(dir.sub("relay"));
  const auto devices = make_paired_devices(dir, relay->url());

  const std::vector<std::string> texts{"hello from A", "unicode: \xc3\xbc\xc3\xb1\xc3\xaf \xe2\x9c\x93",
                                       "tab\tand\nnewline stay exact"};
  for (std::size_t i = 0; i < texts.size(); ++i) {
    REQUIRE(push_text(devices.a, texts[i]) == i + 1);
  }

  const auto pulled = pull_json(devices.b);
  REQUIRE(pulled.size() == 3);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    check_blob_fields(pulled[i]);
    REQUIRE(pulled[i].at("cursor").get<std::uint64_t>() == i + 1);
    REQUIRE(pulled[i].at("sender").get<std::string>() == devices.a.device_id);
    REQUIRE(blob_data(pulled[i]) == texts[i]);
  }
  // The cursor is stored: a second pull has nothing new.
  REQUIRE(pull_json(devices.b).empty());

  REQUIRE(push_text(devices.b, "reply from B") == 4);
  const auto a_pulled = pull_json(devices.a);
  const auto reply = blob_at(a_pulled, 4);
  REQUIRE(reply.at("sender").get<std::string>() == devices.b.device_id);
  REQUIRE(blob_data(reply) == "reply from B");

  // Live delivery: B watches, A pushes, B's watch prints it (catch-up first, then NOTIFY).
  auto watch = start_cli(devices.b.home, {"watch", "--json", "--for", "10"});
  // B's watch holds the relay's only session once it is connected: A's push then arrives live.
  REQUIRE(wait_for_sessions(*relay, 1));
  const std::string live = random_marker("live");
  REQUIRE(push_text(devices.a, live) == 5);
  std::optional<nlohmann::json> seen;
  for (int i = 0; i < 20 && !seen; ++i) {  // bounded: at most 20 lines of 15 s each
    auto line = watch->read_stdout_line(std::chrono::seconds(15));
    if (!line) break;
    auto blob = nlohmann::json::parse(*line);
    check_blob_fields(blob);
    if (blob.at("cursor").get<std::uint64_t>() == 5) seen = blob;
  }
  INFO("watch stderr: " << watch->stderr_text());
  REQUIRE(seen.has_value());
  REQUIRE(blob_data(*seen) == live);
  REQUIRE(seen->at("sender").get<std::string>() == devices.a.device_id);
  // --for 10 ends the watch by itself, with success.
  REQUIRE(watch->wait(std::chrono::seconds(30)) == 0);

  CHECK(relay->stop() == 0);
}

TEST_CASE("CLI pull shows text blobs as text and binary blobs as a byte count", "[integration][cli]") {
  TempDir dir;
  auto relay = RelayProcess::start(dir.sub("relay"));
  const auto devices = make_paired_devices(dir, relay->url());

  const std::string binary("\x00\x01\xff\xfe binary\n", 12);
  {
    const auto pushed = run_cli(devices.a.home, {"push", "-"}, binary);
    INFO(describe(pushed));
    REQUIRE(pushed.exit_code == 0);
    REQUIRE(pushed.out == "1\n");
  }
  const std::string file_path = dir.sub("note.txt");
  std::ofstream(file_path, std::ios::binary) << "from a file";
  {
    const auto pushed = run_cli(devices.a.home, {"push", "--file", file_path, "--json"});
    INFO(describe(pushed));
    REQUIRE(pushed.exit_code == 0);
    const auto json = nlohmann::json::parse(pushed.out);
    REQUIRE(json.at("cursor").get<std::uint64_t>() == 2);
    REQUIRE(json.at("duplicate").get<bool>() == false);
    REQUIRE(json.at("blob_id").get<std::string>().size() == 32);
  }

  const auto pulled = run_cli(devices.b.home, {"pull"});
  INFO(describe(pulled));
  REQUIRE(pulled.exit_code == 0);
  const auto lines = split_lines(pulled.out);
  REQUIRE(lines.size() == 2);
  const std::string sender_prefix = devices.a.device_id.substr(0, 12);
  REQUIRE(lines[0] == "1\t" + sender_prefix + "\t<12 bytes binary>");
  REQUIRE(lines[1] == "2\t" + sender_prefix + "\tfrom a file");

  // JSON keeps the exact bytes of the binary blob.
  const auto again = pull_json(devices.b, {"--after", "0"});
  REQUIRE(again.size() == 2);
  REQUIRE(blob_data(again[0]) == binary);
  CHECK(relay->stop() == 0);
}

TEST_CASE("a restarted relay serves every blob again and continues the cursor without a gap",
          "[integration][cli][restart]") {
  TempDir dir;
  auto relay = RelayProcess::start(dir.sub("relay"));
  const std::uint16_t port = relay->port();
  const std::string relay_id = relay->relay_id_hex();
  const auto devices = make_paired_devices(dir, relay->url());

  const std::vector<std::string> texts{"before restart 1", "before restart 2", "before restart 3"};
  for (const auto& text : texts) push_text(devices.a, text);
  REQUIRE(pull_json(devices.b).size() == 3);

  REQUIRE(relay->stop() == 0);
  relay.reset();
  // Same data directory and port (the group's stored relay URL names the port).
  relay = RelayProcess::start(dir.sub("relay"), port);
  REQUIRE(relay->relay_id_hex() == relay_id);  // the relay key survives restarts

  const auto all = pull_json(devices.b, {"--after", "0"});
  REQUIRE(all.size() == 3);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    REQUIRE(all[i].at("cursor").get<std::uint64_t>() == i + 1);
    REQUIRE(blob_data(all[i]) == texts[i]);
  }

  REQUIRE(push_text(devices.a, "after restart") == 4);
  const auto fresh = pull_json(devices.b, {"--after", "3"});
  REQUIRE(fresh.size() == 1);
  REQUIRE(fresh[0].at("cursor").get<std::uint64_t>() == 4);
  REQUIRE(blob_data(fresh[0]) == "after restart");
  CHECK(relay->stop() == 0);
}

TEST_CASE("watch stops cleanly on SIGTERM and SIGINT", "[integration][cli]") {
  TempDir dir;
  auto relay = RelayProcess::start(dir.sub("relay"));
  const auto devices = make_paired_devices(dir, relay->url());

  for (int signal_number : {SIGTERM, SIGINT}) {
    auto watch = start_cli(devices.b.home, {"watch"});
    // A blob seen live proves the watch is running before it is signalled.
    const std::string text = random_marker("signal");
    push_text(devices.a, text);
    REQUIRE(watch->wait_for_stdout(text, std::chrono::seconds(20)));
    watch->send_signal(signal_number);
    INFO("signal " << signal_number << " stderr: " << watch->stderr_text());
    REQUIRE(watch->wait(std::chrono::seconds(20)) == 0);
  }
  CHECK(relay->stop() == 0);
}
