// OpsRelay: a real blindsync-relay process for the operations tests, started with any flags and
// environment, and the ports it reports on its one stdout line
//   listening on ws[s]://HOST:PORT/v1/sync relay_id=<hex>[ metrics=http://HOST:PORT/metrics]
// Uses tests/support/process.h (fork/exec with pipes, bounded waits, killed on destruction).
// Thread-safety: one test thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "process.h"

namespace blindsync::test {

struct OpsRelay {
  std::unique_ptr<Process> process;
  std::string url;
  std::uint16_t port = 0;
  std::uint16_t metrics_port = 0;  // 0 without metrics_listen
  std::string relay_id_hex;
  bool tls = false;

  // Starts the relay with args (add "--listen 127.0.0.1:0 --data DIR" yourself) and waits for the
  // listening line. REQUIREs it (the failure message carries the relay's stderr).
  static std::unique_ptr<OpsRelay> start(const std::vector<std::string>& args, const std::vector<EnvChange>& env = {});

  // SIGTERM (or another signal) and wait: the exit code, or -1 if it had to be killed.
  int stop(int signal_number, std::chrono::milliseconds timeout = std::chrono::seconds(30));
};

// Runs the relay to completion (for --print-config and refused configurations).
RunResult run_relay(const std::vector<std::string>& args, const std::vector<EnvChange>& env = {});

// A fresh temporary directory, removed with its contents on destruction.
class OpsTempDir {
 public:
  OpsTempDir();
  ~OpsTempDir();
  OpsTempDir(const OpsTempDir&) = delete;
  OpsTempDir& operator=(const OpsTempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str(const std::string& child = "") const { return child.empty() ? path_.string() : (path_ / child).string(); }

 private:
  std::filesystem::path path_;
};

// Writes text to path (truncating).
void write_text_file(const std::filesystem::path& path, const std::string& text);

}  // namespace blindsync::test
