#include "http/health.h"

#include <nlohmann/json.hpp>

#ifndef BLINDSYNC_RELAY_VERSION
#define BLINDSYNC_RELAY_VERSION "unknown"
#endif

namespace blindsync::relay {

std::string_view relay_version() noexcept { return BLINDSYNC_RELAY_VERSION; }

bool health_ok(const HealthReport& report) noexcept {
  return report.blobs_buffered.has_value() && report.bytes_buffered.has_value();
}

std::string render_health_json(const HealthReport& report) {
  nlohmann::json json;
  json["status"] = health_ok(report) ? "ok" : "unavailable";
  json["version"] = std::string(relay_version());
  json["relay_id"] = report.relay_id_hex;
  json["uptime_seconds"] = report.uptime_seconds;
  json["connections"] = report.connections;
  json["sessions"] = report.sessions;
  json["groups"] = report.groups;
  json["blobs_buffered"] = report.blobs_buffered ? nlohmann::json(*report.blobs_buffered) : nlohmann::json(nullptr);
  json["bytes_buffered"] = report.bytes_buffered ? nlohmann::json(*report.bytes_buffered) : nlohmann::json(nullptr);
  return json.dump();
}

}  // namespace blindsync::relay
