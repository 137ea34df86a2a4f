// ChildProcess: a program the test starts (fork/exec, no shell) with its stdout on a pipe that the
// test reads line by line with timeouts, and its stderr appended to a file (for diagnosis).
// The child gets SIGKILL if the test process dies (PR_SET_PDEATHSIG); the destructor kills and
// reaps a child that is still running. RelayProcess wraps blindsync-relay on top of it.
// Thread-safety: one test thread drives each instance.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace blindsync::testing {

class ChildProcess {
 public:
  // Throws std::runtime_error if the pipe or the fork fails (an exec failure exits 127).
  static std::unique_ptr<ChildProcess> start(const std::string& path, const std::vector<std::string>& args,
                                             const std::string& stderr_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // The next stdout line (without '\n'); nullopt on timeout or end of output.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Reads lines until one starts with prefix (returned), or nullopt on timeout / end of output.
  std::optional<std::string> wait_for_line(const std::string& prefix, std::chrono::milliseconds timeout);
  void send_signal(int signal_number);
  // Exit code, or 128 + signal; nullopt if it did not end in time.
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  ChildProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}

  pid_t pid_;
  int stdout_fd_;
  std::string buffer_;
  bool eof_ = false;
  std::optional<int> exit_code_;
};

// blindsync-relay on loopback: `--listen 127.0.0.1:<port> --data <dir>`; start() waits for
// "listening on ws://HOST:PORT/v1/sync relay_id=<hex>".
class RelayProcess {
 public:
  // Throws std::runtime_error if the relay does not report listening in time.
  static std::unique_ptr<RelayProcess> start(const std::string& binary, const std::string& data_dir,
                                             std::uint16_t port = 0);
  const std::string& url() const noexcept { return url_; }
  std::uint16_t port() const noexcept { return port_; }
  const std::string& relay_id_hex() const noexcept { return relay_id_hex_; }
  // SIGTERM and wait (SIGKILL if it does not end in time).
  void stop();
  // SIGKILL: a crash.
  void kill();

 private:
  std::unique_ptr<ChildProcess> process_;
  std::string url_;
  std::uint16_t port_ = 0;
  std::string relay_id_hex_;
};

}  // namespace blindsync::testing
