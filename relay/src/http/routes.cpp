#include "http/routes.h"

namespace blindsync::relay {

Route route_request(std::string_view method, std::string_view target, bool websocket_upgrade) noexcept {
  const std::string_view path = target.substr(0, target.find('?'));
  const bool get = method == "GET";
  if (path == kHealthPath) return get ? Route::kHealth : Route::kMethodNotAllowed;
  if (path == kMetricsPath) return get ? Route::kMetrics : Route::kMethodNotAllowed;
  if (path == kSyncPath) {
    if (!get) return Route::kMethodNotAllowed;
    return websocket_upgrade ? Route::kSync : Route::kUpgradeRequired;
  }
  return Route::kNotFound;
}

}  // namespace blindsync::relay
