#include "http_get.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace blindsync::test {
namespace {

constexpr std::size_t kMaxResponseBytes = 1024 * 1024;

class Socket {
 public:
  Socket() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

void set_timeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

std::optional<HttpResponse> http_get(const std::string& host, std::uint16_t port, const std::string& path,
                                     std::chrono::milliseconds timeout) {
  Socket socket;
  if (socket.fd() < 0) return std::nullopt;
  set_timeouts(socket.fd(), timeout);  // SO_SNDTIMEO also bounds connect() on Linux
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) return std::nullopt;
  if (::connect(socket.fd(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) return std::nullopt;

  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
                              "\r\nConnection: close\r\n\r\n";
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(socket.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    sent += static_cast<std::size_t>(n);
  }

  std::string response;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  while (response.size() < kMaxResponseBytes && std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = ::recv(socket.fd(), buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF (Connection: close), error or timeout
    response.append(buffer, static_cast<std::size_t>(n));
  }

  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return std::nullopt;
  const auto header_end = response.find("\r\n\r\n");
  if (header_end == std::string::npos) return std::nullopt;
  HttpResponse result;
  try {
    result.status = std::stoi(response.substr(9, 3));
  } catch (...) {
    return std::nullopt;
  }
  result.body = response.substr(header_end + 4);
  // Connection: close lets the server send an unchunked body; a chunked one is decoded here.
  const std::string headers = response.substr(0, header_end);
  std::string lower;
  for (char c : headers) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("transfer-encoding: chunked") != std::string::npos) {
    std::string decoded;
    std::size_t pos = 0;
    const std::string& raw = result.body;
    while (pos < raw.size()) {
      const auto line_end = raw.find("\r\n", pos);
      if (line_end == std::string::npos) return std::nullopt;
      std::size_t size = 0;
      try {
        size = std::stoul(raw.substr(pos, line_end - pos), nullptr, 16);
      } catch (...) {
        return std::nullopt;
      }
      if (size == 0) break;
      if (line_end + 2 + size > raw.size()) return std::nullopt;
      decoded += raw.substr(line_end + 2, size);
      pos = line_end + 2 + size + 2;
    }
    result.body = std::move(decoded);
  }
  return result;
}

}  // namespace blindsync::test
