#include "test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <sstream>
#include <stdexcept>

namespace blindsync::test {
namespace {

std::vector<std::string> cli_args(const std::string& home, const std::vector<std::string>& args) {
  std::vector<std::string> full{"--home", home};
  full.insert(full.end(), args.begin(), args.end());
  return full;
}

// The CLI must not pick up a home from the environment of whoever runs the tests.
const std::vector<EnvChange> kCliEnv{{"BLINDSYNC_HOME", std::nullopt}};

int bound_loopback_socket(std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("bind to 127.0.0.1:0 failed");
  }
  port = ntohs(address.sin_port);
  return fd;
}

}  // namespace

RunResult run_cli(const std::string& home, const std::vector<std::string>& args, const std::string& stdin_data,
                  std::chrono::milliseconds timeout) {
  return run_process(BLINDSYNC_CLI_BIN, cli_args(home, args), stdin_data, timeout, kCliEnv);
}

std::unique_ptr<Process> start_cli(const std::string& home, const std::vector<std::string>& args) {
  return Process::start(BLINDSYNC_CLI_BIN, cli_args(home, args), kCliEnv);
}

std::string describe(const RunResult& result) {
  std::ostringstream out;
  out << "exit=" << result.exit_code << (result.timed_out ? " (timed out)" : "") << "\n--- stdout ---\n"
      << result.out << "\n--- stderr ---\n"
      << result.err;
  return out.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    if (end == std::string::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

std::vector<nlohmann::json> parse_json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  for (const auto& line : split_lines(text)) {
    if (line.empty()) continue;
    out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

std::optional<std::string> decode_base64(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int padding = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=') {
        // Padding only at the very end, in the last one or two positions.
        if (i + 4 != text.size() || k < 2) return std::nullopt;
        v[k] = 0;
        ++padding;
      } else {
        if (padding > 0) return std::nullopt;
        v[k] = value(c);
        if (v[k] < 0) return std::nullopt;
      }
    }
    const unsigned triple = (unsigned(v[0]) << 18) | (unsigned(v[1]) << 12) | (unsigned(v[2]) << 6) | unsigned(v[3]);
    out += static_cast<char>((triple >> 16) & 0xFF);
    if (padding < 2) out += static_cast<char>((triple >> 8) & 0xFF);
    if (padding < 1) out += static_cast<char>(triple & 0xFF);
  }
  return out;
}

std::string random_marker(const std::string& prefix) {
  std::random_device device;
  std::uniform_int_distribution<int> digit(0, 15);
  std::string marker = prefix + "-";
  for (int i = 0; i < 16; ++i) marker += "0123456789abcdef"[digit(device)];
  return marker;
}

std::uint16_t unused_loopback_port() {
  std::uint16_t port = 0;
  ::close(bound_loopback_socket(port));
  return port;
}

SilentListener::SilentListener() {
  fd_ = bound_loopback_socket(port_);
  if (::listen(fd_, 16) != 0) {
    ::close(fd_);
    throw std::runtime_error("listen failed");
  }
}

SilentListener::~SilentListener() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace blindsync::test
