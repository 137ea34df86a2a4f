// GET /health: the relay's liveness report as JSON (DESIGN.md "Operations").
//
//   {"status":"ok","version":"0.1.0","relay_id":"<64 hex>","uptime_seconds":12,
//    "connections":3,"sessions":2,"groups":1,"blobs_buffered":10,"bytes_buffered":5120}
//
// status is "ok", or "unavailable" (HTTP 503) when the store cannot answer (or is closed while the
// relay shuts down); then blobs_buffered/bytes_buffered are null. Nothing secret is ever included.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace blindsync::relay {

struct HealthReport {
  std::string relay_id_hex;
  std::uint64_t uptime_seconds = 0;
  std::uint64_t connections = 0;
  std::uint64_t sessions = 0;
  std::uint64_t groups = 0;
  std::optional<std::uint64_t> blobs_buffered;  // nullopt when the store could not answer
  std::optional<std::uint64_t> bytes_buffered;
};

// The version compiled into the relay ("0.1.0").
std::string_view relay_version() noexcept;

bool health_ok(const HealthReport& report) noexcept;
std::string render_health_json(const HealthReport& report);

}  // namespace blindsync::relay
