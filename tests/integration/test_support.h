// Helpers shared by the integration tests: running the `blindsync` CLI against a device home,
// decoding its output, loopback ports, and random markers.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "process.h"

namespace blindsync::test {

inline constexpr std::chrono::seconds kCliTimeout{60};

// Runs `blindsync --home HOME args...` to completion (bounded by timeout).
RunResult run_cli(const std::string& home, const std::vector<std::string>& args, const std::string& stdin_data = "",
                  std::chrono::milliseconds timeout = kCliTimeout);
// Starts `blindsync --home HOME args...` in the background (e.g. watch).
std::unique_ptr<Process> start_cli(const std::string& home, const std::vector<std::string>& args);

// A one-line description of a CLI run for test failure messages.
std::string describe(const RunResult& result);

// The lines of text (without '\n'), skipping a trailing empty line.
std::vector<std::string> split_lines(const std::string& text);
// Parses each non-empty line as JSON; throws (failing the test) on a malformed line.
std::vector<nlohmann::json> parse_json_lines(const std::string& text);

// Standard base64 (RFC 4648 section 4) decoding; nullopt on malformed input.
std::optional<std::string> decode_base64(const std::string& text);

// "PREFIX-<16 random hex chars>"
std::string random_marker(const std::string& prefix);

// A loopback port that was free a moment ago (bound to port 0, then closed): nothing listens there.
std::uint16_t unused_loopback_port();

// A TCP listener on 127.0.0.1 that accepts connections into its backlog but never answers:
// a relay that hangs. Closed on destruction.
class SilentListener {
 public:
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  std::uint16_t port() const noexcept { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace blindsync::test
