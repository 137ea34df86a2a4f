#include "relay_metrics.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <utility>
#include <vector>

#include "stats.h"

namespace blindsync::bench {

namespace {

constexpr std::size_t kMaxResponseBytes = 8 * 1024 * 1024;
constexpr auto kTimeout = std::chrono::seconds(2);

std::optional<std::string> http_get(const tcp::endpoint& endpoint, const std::string& host, const std::string& path) {
  const int fd = ::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return std::nullopt;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  auto wait_for = [&](short events) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, events, 0};
    return ::poll(&pfd, 1, static_cast<int>(left.count())) == 1;
  };
  if (::connect(fd, endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0) {
    if (errno != EINPROGRESS || !wait_for(POLLOUT)) return std::nullopt;
    int error = 0;
    socklen_t len = sizeof error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) return std::nullopt;
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(POLLOUT)) return std::nullopt;
    } else {
      return std::nullopt;
    }
  }
  std::string response;
  char chunk[16 * 1024];
  while (response.size() < kMaxResponseBytes) {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      response.append(chunk, static_cast<std::size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait_for(POLLIN)) return std::nullopt;
    } else {
      return std::nullopt;
    }
  }
  if (response.rfind("HTTP/1.1 200", 0) != 0 && response.rfind("HTTP/1.0 200", 0) != 0) return std::nullopt;
  const auto body = response.find("\r\n\r\n");
  if (body == std::string::npos) return std::nullopt;
  return response.substr(body + 4);
}

double value_or_zero(const MetricsSample& m, const std::string& key) {
  const auto it = m.find(key);
  return it == m.end() ? 0.0 : it->second;
}

// Sum of every sample of a labelled family ("name{...}").
double family_sum(const MetricsSample& m, const std::string& name) {
  double sum = 0;
  for (auto it = m.lower_bound(name + "{"); it != m.end() && it->first.rfind(name + "{", 0) == 0; ++it) sum += it->second;
  return sum;
}

}  // namespace

MetricsSample parse_metrics_text(const std::string& text) {
  MetricsSample out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("blindsync_", 0) != 0) continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    char* end = nullptr;
    const std::string value_text = line.substr(space + 1);
    const double value = std::strtod(value_text.c_str(), &end);
    if (end == value_text.c_str()) continue;
    out[line.substr(0, space)] = value;
  }
  return out;
}

std::optional<MetricsSample> scrape_metrics(const WsTarget& target) {
  auto body = http_get(target.remote, target.host_header, "/metrics");
  if (!body) return std::nullopt;
  MetricsSample sample = parse_metrics_text(*body);
  if (sample.empty()) return std::nullopt;
  return sample;
}

nlohmann::json metrics_delta_json(const std::optional<MetricsSample>& before, const std::optional<MetricsSample>& after) {
  if (!before || !after) return nullptr;
  const std::string family = "blindsync_push_commit_seconds";
  nlohmann::json out;
  const double count = value_or_zero(*after, family + "_count") - value_or_zero(*before, family + "_count");
  const double sum = value_or_zero(*after, family + "_sum") - value_or_zero(*before, family + "_sum");
  out["commits"] = count;
  out["commit_mean_ms"] = count > 0 ? nlohmann::json(round_to(sum / count * 1000.0, 3)) : nlohmann::json(nullptr);
  // Cumulative buckets "..._bucket{le="0.001"}": the first bound whose delta reaches the rank.
  std::vector<std::pair<double, double>> buckets;  // (upper bound s, cumulative delta)
  for (auto it = after->lower_bound(family + "_bucket{"); it != after->end() && it->first.rfind(family + "_bucket{", 0) == 0;
       ++it) {
    const auto le = it->first.find("le=\"");
    if (le == std::string::npos) continue;
    const std::string bound = it->first.substr(le + 4, it->first.find('"', le + 4) - le - 4);
    const double upper = bound == "+Inf" ? INFINITY : std::strtod(bound.c_str(), nullptr);
    buckets.emplace_back(upper, it->second - value_or_zero(*before, it->first));
  }
  std::sort(buckets.begin(), buckets.end());
  auto quantile_ms = [&](double q) -> nlohmann::json {
    if (count <= 0) return nullptr;
    for (const auto& [upper, cumulative] : buckets) {
      if (cumulative >= q * count) return std::isinf(upper) ? nlohmann::json("+Inf") : nlohmann::json(upper * 1000.0);
    }
    return nullptr;
  };
  out["commit_p50_le_ms"] = quantile_ms(0.50);
  out["commit_p99_le_ms"] = quantile_ms(0.99);
  out["pushes"] = value_or_zero(*after, "blindsync_pushes_total") - value_or_zero(*before, "blindsync_pushes_total");
  out["rate_limited"] = family_sum(*after, "blindsync_rate_limited_total") - family_sum(*before, "blindsync_rate_limited_total");
  out["errors"] = family_sum(*after, "blindsync_errors_total") - family_sum(*before, "blindsync_errors_total");
  return out;
}

}  // namespace blindsync::bench
