#include "ops_relay_process.h"

#include <signal.h>
#include <stdlib.h>

#include <fstream>
#include <regex>

#include <catch2/catch.hpp>

namespace blindsync::test {

std::unique_ptr<OpsRelay> OpsRelay::start(const std::vector<std::string>& args, const std::vector<EnvChange>& env) {
  auto relay = std::make_unique<OpsRelay>();
  relay->process = Process::start(BLINDSYNC_RELAY_BINARY, args, env);
  static const std::regex kListening(
      R"(listening on ((wss?)://127\.0\.0\.1:(\d+)/v1/sync) relay_id=([0-9a-f]{64})(?: metrics=http://127\.0\.0\.1:(\d+)/metrics)?$)");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto line = relay->process->read_stdout_line(left);
    if (!line) break;
    std::smatch match;
    if (std::regex_search(*line, match, kListening)) {
      relay->url = match[1];
      relay->tls = match[2] == "wss";
      relay->port = static_cast<std::uint16_t>(std::stoul(match[3]));
      relay->relay_id_hex = match[4];
      if (match[5].matched) relay->metrics_port = static_cast<std::uint16_t>(std::stoul(match[5]));
      return relay;
    }
  }
  relay->process->kill();
  relay->process->wait(std::chrono::seconds(5));
  FAIL("relay did not report its listening line\nstdout:\n" << relay->process->stdout_text() << "\nstderr:\n"
                                                             << relay->process->stderr_text());
  return nullptr;
}

int OpsRelay::stop(int signal_number, std::chrono::milliseconds timeout) {
  process->send_signal(signal_number);
  if (auto code = process->wait(timeout)) return *code;
  process->kill();
  process->wait(std::chrono::seconds(5));
  return -1;
}

RunResult run_relay(const std::vector<std::string>& args, const std::vector<EnvChange>& env) {
  return run_process(BLINDSYNC_RELAY_BINARY, args, "", std::chrono::seconds(60), env);
}

OpsTempDir::OpsTempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "blindsync-ops-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

OpsTempDir::~OpsTempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_text_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

}  // namespace blindsync::test
