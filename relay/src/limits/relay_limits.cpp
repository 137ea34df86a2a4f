#include "limits/relay_limits.h"

namespace blindsync::relay {

std::string_view admission_mode_name(AdmissionMode mode) noexcept {
  switch (mode) {
    case AdmissionMode::kOpen: return "open";
    case AdmissionMode::kToken: return "token";
    case AdmissionMode::kAllowlist: return "allowlist";
  }
  return "unknown";
}

Status validate(const RelayLimits& limits) {
  if (limits.max_sessions == 0) return Status(Code::kInvalidArgument, "max_sessions must be at least 1");
  if (limits.max_sessions_per_group == 0) {
    return Status(Code::kInvalidArgument, "max_sessions_per_group must be at least 1");
  }
  if (limits.device_messages_per_minute == 0) {
    return Status(Code::kInvalidArgument, "device_messages_per_minute must be at least 1");
  }
  if (limits.global_messages_per_second == 0) {
    return Status(Code::kInvalidArgument, "global_messages_per_second must be at least 1");
  }
  if (limits.limiter_max_devices == 0) return Status(Code::kInvalidArgument, "limiter_max_devices must be at least 1");
  if (limits.cleanup_interval_ms == 0) return Status(Code::kInvalidArgument, "cleanup_interval_ms must be at least 1");
  if (limits.access == AdmissionMode::kToken) {
    if (limits.access_tokens.empty()) return Status(Code::kInvalidArgument, "access = token needs access_tokens");
    for (const auto& token : limits.access_tokens) {
      if (token.empty()) return Status(Code::kInvalidArgument, "access_tokens must not contain an empty token");
    }
  }
  if (limits.access == AdmissionMode::kAllowlist && limits.allowlist.empty()) {
    return Status(Code::kInvalidArgument, "access = allowlist needs an allowlist of group ids");
  }
  return Status::ok();
}

}  // namespace blindsync::relay
