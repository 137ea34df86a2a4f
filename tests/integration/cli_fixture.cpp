#include "cli_fixture.h"

#include <catch2/catch.hpp>

namespace blindsync::test {

CliDevice init_device(const TempDir& dir, const std::string& name) {
  CliDevice device{dir.sub(name), ""};
  const auto result = run_cli(device.home, {"init", "--name", name});
  INFO(describe(result));
  REQUIRE(result.exit_code == 0);
  const auto lines = split_lines(result.out);
  REQUIRE(lines.size() == 1);
  REQUIRE(lines[0].size() == 64);
  REQUIRE(lines[0].find_first_not_of("0123456789abcdef") == std::string::npos);
  device.device_id = lines[0];
  return device;
}

std::string extract_invite_link(const std::string& out) {
  std::vector<std::string> links;
  for (const auto& line : split_lines(out)) {
    if (line.rfind("blindsync://", 0) == 0) links.push_back(line);
  }
  INFO(out);
  REQUIRE(links.size() == 1);
  return links[0];
}

PairedDevices make_paired_devices(const TempDir& dir, const std::string& relay_url) {
  PairedDevices devices;
  devices.a = init_device(dir, "alice");
  devices.b = init_device(dir, "bob");

  const auto created = run_cli(devices.a.home, {"group", "create", "--relay", relay_url, "--name", "team"});
  INFO(describe(created));
  REQUIRE(created.exit_code == 0);
  devices.invite_link = extract_invite_link(created.out);
  // The secret travels only inside the link: stderr must not carry it.
  REQUIRE(created.err.find(devices.invite_link) == std::string::npos);

  const auto joined = run_cli(devices.b.home, {"group", "join", devices.invite_link});
  INFO(describe(joined));
  REQUIRE(joined.exit_code == 0);
  return devices;
}

std::uint64_t push_text(const CliDevice& device, const std::string& text, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"push"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("--");
  args.push_back(text);
  const auto result = run_cli(device.home, args);
  INFO(describe(result));
  REQUIRE(result.exit_code == 0);
  const auto lines = split_lines(result.out);
  REQUIRE(lines.size() == 1);
  REQUIRE(!lines[0].empty());
  REQUIRE(lines[0].find_first_not_of("0123456789") == std::string::npos);
  return std::stoull(lines[0]);
}

std::vector<nlohmann::json> pull_json(const CliDevice& device, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"pull", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto result = run_cli(device.home, args);
  INFO(describe(result));
  REQUIRE(result.exit_code == 0);
  return parse_json_lines(result.out);
}

std::string blob_data(const nlohmann::json& blob) {
  const auto decoded = decode_base64(blob.at("data_base64").get<std::string>());
  REQUIRE(decoded.has_value());
  REQUIRE(decoded->size() == blob.at("size").get<std::size_t>());
  return *decoded;
}

}  // namespace blindsync::test
