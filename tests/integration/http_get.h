// A minimal HTTP/1.1 GET over a plain POSIX socket, for the relay's /health and /metrics.
// Every socket operation is bounded by the timeout. Loopback tests only (IPv4 dotted address).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace blindsync::test {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// nullopt if the connection fails, times out, or the reply is not HTTP.
std::optional<HttpResponse> http_get(const std::string& host, std::uint16_t port, const std::string& path,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace blindsync::test
