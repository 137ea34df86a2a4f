// RelayProcess: a real blindsync-relay on loopback for integration tests.
//
// start() runs `blindsync-relay --listen 127.0.0.1:<port> --data <dir>` (port 0 = any free port)
// and reads its stdout until the line
//   listening on ws://HOST:PORT/v1/sync relay_id=<hex>
// (bounded by a timeout), then exposes the URL, port and relay id. stop() sends SIGTERM and waits
// for the relay to drain and exit. The destructor kills a relay that is still running.
// Thread-safety: one test thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "process.h"

namespace blindsync::test {

class RelayProcess {
 public:
  // Throws std::runtime_error (with the relay's output) if no listening line arrives in time.
  static std::unique_ptr<RelayProcess> start(const std::string& data_dir, std::uint16_t port = 0,
                                             const std::vector<std::string>& extra_args = {},
                                             std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // The same with another relay binary (the client tests can run one built elsewhere, e.g. a
  // GCC-built relay beside a clang ThreadSanitizer build).
  static std::unique_ptr<RelayProcess> start_binary(const std::string& binary, const std::string& data_dir,
                                                    std::uint16_t port = 0,
                                                    const std::vector<std::string>& extra_args = {},
                                                    std::chrono::milliseconds timeout = std::chrono::seconds(30));

  const std::string& url() const noexcept { return url_; }        // ws://127.0.0.1:PORT/v1/sync
  const std::string& host() const noexcept { return host_; }
  std::uint16_t port() const noexcept { return port_; }
  const std::string& relay_id_hex() const noexcept { return relay_id_hex_; }
  Process& process() noexcept { return *process_; }

  // SIGTERM, then waits up to timeout: the exit code, or -1 if it had to be killed.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL, as a crash would, and reaps it.
  void kill();

 private:
  std::unique_ptr<Process> process_;
  std::string url_;
  std::string host_;
  std::uint16_t port_ = 0;
  std::string relay_id_hex_;
};

}  // namespace blindsync::test
