// Process: a child program started with fork/execve (no shell) whose stdin, stdout and stderr are
// pipes. A reader thread drains stdout and stderr continuously (so the child never blocks on a
// full pipe) into buffers that tests read line by line, with timeouts.
//
// Every wait is bounded. The destructor kills (SIGKILL) and reaps a child that is still running,
// and the child gets SIGKILL if the test process dies (PR_SET_PDEATHSIG), so no test leaves
// processes behind.
// Thread-safety: one test thread drives a Process; the reader thread is internal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace blindsync::test {

struct EnvChange {
  std::string name;
  std::optional<std::string> value;  // nullopt = unset
};

class Process {
 public:
  // Starts path with args (argv[0] = path); the environment is this process's plus changes.
  // Throws std::runtime_error if the pipes or the fork fail; an exec failure shows as exit 127.
  static std::unique_ptr<Process> start(const std::string& path, const std::vector<std::string>& args,
                                        const std::vector<EnvChange>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const noexcept { return pid_; }

  // Writes to the child's stdin (false if the pipe is closed). close_stdin() sends EOF.
  bool write_stdin(std::string_view data);
  void close_stdin();

  // The next complete stdout line (without '\n'); nullopt on timeout, or at EOF with no full line.
  std::optional<std::string> read_stdout_line(std::chrono::milliseconds timeout);
  // Waits until stdout contains needle (anywhere in everything captured); false on timeout/EOF.
  bool wait_for_stdout(std::string_view needle, std::chrono::milliseconds timeout);
  // Reads stdout lines until one starts with prefix (returned; the lines before it are consumed);
  // nullopt on timeout or EOF.
  std::optional<std::string> wait_for_line(std::string_view prefix, std::chrono::milliseconds timeout);

  std::string stdout_text() const;
  std::string stderr_text() const;

  // Waits for the child to exit: its exit code, or 128 + signal number if a signal killed it;
  // nullopt on timeout. After a successful wait the captured output is complete.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();

  void send_signal(int signal_number);
  // SIGKILL and reap (no-op if already reaped).
  void kill();

 private:
  Process() = default;
  void reader_loop();
  bool try_reap(int options);
  void finish_reader(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  int wake_read_fd_ = -1;   // the reader also polls this, so the destructor can stop it
  int wake_write_fd_ = -1;
  std::thread reader_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string stdout_;
  std::size_t stdout_consumed_ = 0;  // read_stdout_line position
  std::string stderr_;
  bool reader_done_ = false;
};

// The resident memory of a process (VmRSS in /proc/PID/status), in KiB; 0 if it cannot be read.
std::uint64_t vm_rss_kib(pid_t pid);

struct RunResult {
  int exit_code = -1;      // -1 when timed out (the child was killed)
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs a program to completion with the given stdin, killing it after timeout.
RunResult run_process(const std::string& path, const std::vector<std::string>& args, const std::string& stdin_data,
                      std::chrono::milliseconds timeout, const std::vector<EnvChange>& env = {});

}  // namespace blindsync::test
