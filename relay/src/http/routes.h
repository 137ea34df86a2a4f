// Which HTTP requests the relay's single port answers, decided without Beast so it can be tested
// on its own (http_handler.h turns the route into a response, net/ writes it).
//
//   GET /health                      -> kHealth
//   GET /metrics                     -> kMetrics (Prometheus text; http_handler answers 404 on the
//                                       main port when a separate metrics_listen port serves it)
//   GET /v1/sync with Upgrade        -> kSync (WebSocket)
//   GET /v1/sync without Upgrade     -> kUpgradeRequired (426)
//   any other method on those paths  -> kMethodNotAllowed (405, Allow: GET)
//   any other path                   -> kNotFound (404)
//
// The query string is ignored when matching paths. Thread-safety: pure function.
#pragma once

#include <string_view>

namespace blindsync::relay {

inline constexpr std::string_view kSyncPath = "/v1/sync";
inline constexpr std::string_view kHealthPath = "/health";
inline constexpr std::string_view kMetricsPath = "/metrics";

enum class Route { kHealth, kSync, kUpgradeRequired, kMethodNotAllowed, kNotFound, kMetrics };

Route route_request(std::string_view method, std::string_view target, bool websocket_upgrade) noexcept;

}  // namespace blindsync::relay
