#include "relay_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

extern char** environ;

namespace blindsync::bench {

Result<ListeningLine> parse_listening_line(const std::string& line) {
  constexpr std::string_view kPrefix = "listening on ";
  constexpr std::string_view kIdKey = " relay_id=";
  const auto start = line.find(kPrefix);
  const auto id_at = line.find(kIdKey);
  if (start == std::string::npos || id_at == std::string::npos || id_at < start + kPrefix.size()) {
    return Status(Code::kInvalidArgument, "not a relay listening line");
  }
  ListeningLine out;
  out.url = line.substr(start + kPrefix.size(), id_at - start - kPrefix.size());
  // The id is one word; more " key=value" fields may follow it (e.g. metrics=...).
  std::string hex = line.substr(id_at + kIdKey.size());
  hex = hex.substr(0, hex.find_first_of(" \r\n"));
  auto id = RelayId::parse_hex(hex);
  if (!id) return id.status();
  out.relay_id = *id;
  return out;
}

Result<std::unique_ptr<RelayProcess>> RelayProcess::spawn(const std::string& relay_path,
                                                          const std::vector<std::string>& extra_args,
                                                          std::chrono::milliseconds start_timeout) {
  std::string dir_template = (std::filesystem::temp_directory_path() / "blindsync-bench-XXXXXX").string();
  if (::mkdtemp(dir_template.data()) == nullptr) {
    return Status(Code::kIoError, std::string("mkdtemp: ") + std::strerror(errno));
  }
  std::unique_ptr<RelayProcess> relay(new RelayProcess());
  relay->data_dir_ = dir_template;

  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return Status(Code::kIoError, std::string("pipe: ") + std::strerror(errno));
  std::vector<std::string> args = {relay_path, "--listen", "127.0.0.1:0", "--data", (relay->data_dir_ / "data").string()};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  for (const auto& setting : kBenchRelayEnvironment) ::setenv(setting.name, setting.value, /*overwrite=*/0);
  // fork + exec rather than posix_spawn so that the child can ask for SIGTERM when the bench dies:
  // a bench that crashes or is killed must not leave a relay running. The bench has no other
  // threads yet, so fork is safe; the child only calls async-signal-safe functions.
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return Status(Code::kIoError, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // the bench died before prctl took effect
    ::dup2(out_pipe[1], STDOUT_FILENO);       // dup2 clears O_CLOEXEC on the new descriptor
    ::execve(relay_path.c_str(), argv.data(), environ);
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  relay->pid_ = pid;

  // Read stdout until the listening line, bounded by start_timeout.
  const auto deadline = std::chrono::steady_clock::now() + start_timeout;
  std::string buffer;
  Status failure(Code::kTimeout, "relay printed no listening line within " +
                                     std::to_string(start_timeout.count()) + " ms");
  while (std::chrono::steady_clock::now() < deadline && buffer.size() < 64 * 1024) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd pfd{out_pipe[0], POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::max<long long>(1, left.count())));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char chunk[1024];
    const ssize_t n = ::read(out_pipe[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      failure = Status(Code::kIoError, "relay " + relay_path + " exited before listening (see its stderr above)");
      break;
    }
    buffer.append(chunk, static_cast<std::size_t>(n));
    const auto newline = buffer.find('\n');
    if (newline == std::string::npos) continue;
    auto parsed = parse_listening_line(buffer.substr(0, newline));
    if (!parsed) {
      failure = Status(Code::kInvalidMessage, "unexpected relay stdout: " + buffer.substr(0, newline));
      break;
    }
    relay->url_ = parsed->url;
    relay->relay_id_ = parsed->relay_id;
    // The relay prints nothing else on stdout; a closed pipe would only matter if it did.
    ::close(out_pipe[0]);
    return relay;
  }
  ::close(out_pipe[0]);
  relay->stop(std::chrono::milliseconds(2000));
  return failure;
}

std::string RelayProcess::stop(std::chrono::milliseconds grace) {
  std::string outcome = "not running";
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    int status = 0;
    pid_t done = 0;
    while ((done = ::waitpid(pid_, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (done == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      outcome = "killed after " + std::to_string(grace.count()) + " ms";
    } else if (WIFEXITED(status)) {
      outcome = "exit " + std::to_string(WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
      outcome = "signal " + std::to_string(WTERMSIG(status));
    }
    pid_ = -1;
  }
  if (!data_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
    data_dir_.clear();
  }
  return outcome;
}

RelayProcess::~RelayProcess() { stop(std::chrono::milliseconds(5000)); }

}  // namespace blindsync::bench
