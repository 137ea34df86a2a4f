#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

extern char** environ;

namespace blindsync::test {
namespace {

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void make_pipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
}

std::vector<std::string> build_environment(const std::vector<EnvChange>& changes) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) env.emplace_back(*entry);
  for (const auto& change : changes) {
    const std::string prefix = change.name + "=";
    std::erase_if(env, [&prefix](const std::string& e) { return e.rfind(prefix, 0) == 0; });
    if (change.value) env.push_back(prefix + *change.value);
  }
  return env;
}

std::vector<char*> as_argv(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::unique_ptr<Process> Process::start(const std::string& path, const std::vector<std::string>& args,
                                        const std::vector<EnvChange>& env) {
  std::vector<std::string> argv_strings{path};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<std::string> env_strings = build_environment(env);
  // Everything the child needs is prepared before fork(): between fork and exec it may only make
  // async-signal-safe calls (this process has other threads).
  std::vector<char*> argv = as_argv(argv_strings);
  std::vector<char*> envp = as_argv(env_strings);

  int in[2], out[2], err[2], wake[2];
  make_pipe(in);
  make_pipe(out);
  make_pipe(err);
  make_pipe(wake);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1], wake[0], wake[1]}) ::close(fd);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // dup2 clears O_CLOEXEC on the new descriptors; every other pipe end closes at exec.
    if (::dup2(in[0], STDIN_FILENO) < 0 || ::dup2(out[1], STDOUT_FILENO) < 0 || ::dup2(err[1], STDERR_FILENO) < 0) {
      ::_exit(127);
    }
    // Restore default dispositions the test runner may have changed.
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }

  std::unique_ptr<Process> process(new Process());
  process->pid_ = pid;
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  process->stdin_fd_ = in[1];
  process->stdout_fd_ = out[0];
  process->stderr_fd_ = err[0];
  process->wake_read_fd_ = wake[0];
  process->wake_write_fd_ = wake[1];
  process->reader_ = std::thread([p = process.get()] { p->reader_loop(); });
  return process;
}

Process::~Process() {
  kill();
  finish_reader(std::chrono::milliseconds(0));
  close_fd(stdin_fd_);
  close_fd(wake_read_fd_);
  close_fd(wake_write_fd_);
}

void Process::reader_loop() {
  char buffer[8192];
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    pollfd fds[3] = {{out_open ? stdout_fd_ : -1, POLLIN, 0},
                     {err_open ? stderr_fd_ : -1, POLLIN, 0},
                     {wake_read_fd_, POLLIN, 0}};
    const int ready = ::poll(fds, 3, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents != 0) break;  // asked to stop
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard lock(mutex_);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? stdout_ : stderr_).append(buffer, static_cast<std::size_t>(n));
      }
      changed_.notify_all();
    }
  }
  std::lock_guard lock(mutex_);
  close_fd(stdout_fd_);
  close_fd(stderr_fd_);
  reader_done_ = true;
  changed_.notify_all();
}

void Process::finish_reader(std::chrono::milliseconds timeout) {
  if (!reader_.joinable()) return;
  {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [this] { return reader_done_; });
  }
  // Output still open after the grace period (e.g. a grandchild holds the pipe): stop reading.
  if (wake_write_fd_ >= 0) {
    const char byte = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_write_fd_, &byte, 1);
  }
  reader_.join();
}

bool Process::write_stdin(std::string_view data) {
  while (!data.empty() && stdin_fd_ >= 0) {
    const ssize_t n = ::write(stdin_fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return data.empty();
}

void Process::close_stdin() { close_fd(stdin_fd_); }

std::optional<std::string> Process::read_stdout_line(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  std::optional<std::string> line;
  changed_.wait_for(lock, timeout, [&] {
    const auto end = stdout_.find('\n', stdout_consumed_);
    if (end != std::string::npos) {
      line = stdout_.substr(stdout_consumed_, end - stdout_consumed_);
      stdout_consumed_ = end + 1;
      return true;
    }
    return reader_done_;
  });
  return line;
}

std::optional<std::string> Process::wait_for_line(std::string_view prefix, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::milliseconds(0)) return std::nullopt;
    auto line = read_stdout_line(std::chrono::duration_cast<std::chrono::milliseconds>(left));
    if (!line) return std::nullopt;
    if (line->rfind(prefix, 0) == 0) return line;
  }
}

bool Process::wait_for_stdout(std::string_view needle, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] {
    return stdout_.find(needle) != std::string::npos || reader_done_;
  }) && stdout_.find(needle) != std::string::npos;
}

std::string Process::stdout_text() const {
  std::lock_guard lock(mutex_);
  return stdout_;
}

std::string Process::stderr_text() const {
  std::lock_guard lock(mutex_);
  return stderr_;
}

bool Process::try_reap(int options) {
  if (exit_code_) return true;
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, options);
  if (r != pid_) return false;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!try_reap(WNOHANG)) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The child is gone: its pipes reach EOF as soon as the kernel closes them.
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, std::chrono::seconds(5), [this] { return reader_done_; });
  return exit_code_;
}

bool Process::running() { return !try_reap(WNOHANG); }

void Process::send_signal(int signal_number) {
  if (!exit_code_ && pid_ > 0) ::kill(pid_, signal_number);
}

void Process::kill() {
  if (exit_code_ || pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  try_reap(0);
}

std::uint64_t vm_rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

RunResult run_process(const std::string& path, const std::vector<std::string>& args, const std::string& stdin_data,
                      std::chrono::milliseconds timeout, const std::vector<EnvChange>& env) {
  auto process = Process::start(path, args, env);
  // A child that exits without reading stdin must not kill us with SIGPIPE.
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &previous);
  process->write_stdin(stdin_data);
  ::sigaction(SIGPIPE, &previous, nullptr);
  process->close_stdin();

  RunResult result;
  if (auto code = process->wait(timeout)) {
    result.exit_code = *code;
  } else {
    result.timed_out = true;
    process->kill();
    process->wait(std::chrono::seconds(5));
  }
  result.out = process->stdout_text();
  result.err = process->stderr_text();
  return result;
}

}  // namespace blindsync::test
