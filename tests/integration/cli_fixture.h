// Common CLI set-ups for the integration tests, asserting (Catch2 REQUIRE) each step as it goes:
// device homes with identities, a group created by A and joined by B, pushes and pulls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "temp_dir.h"
#include "test_support.h"

namespace blindsync::test {

struct CliDevice {
  std::string home;
  std::string device_id;  // hex
};

struct PairedDevices {
  CliDevice a;
  CliDevice b;
  std::string invite_link;
};

// `blindsync init --name NAME` in dir/<name>; returns the device.
CliDevice init_device(const TempDir& dir, const std::string& name);
// The only line of output starting with blindsync:// (REQUIREs exactly one).
std::string extract_invite_link(const std::string& out);
// A and B initialised, A creates a group on relay_url, B joins it.
PairedDevices make_paired_devices(const TempDir& dir, const std::string& relay_url);

// `blindsync push TEXT` (extra args appended); REQUIREs success and returns the cursor.
std::uint64_t push_text(const CliDevice& device, const std::string& text, const std::vector<std::string>& extra = {});
// `blindsync pull --json` (extra args appended); REQUIREs success and returns the blob objects.
std::vector<nlohmann::json> pull_json(const CliDevice& device, const std::vector<std::string>& extra = {});
// The decoded data of a pulled blob object.
std::string blob_data(const nlohmann::json& blob);

}  // namespace blindsync::test
