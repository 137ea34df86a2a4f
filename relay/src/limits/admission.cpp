#include "limits/admission.h"

#include <cstdint>

namespace blindsync::relay {
namespace {

// Equal-length comparison whose time does not depend on where the first difference is.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]));
  }
  return diff == 0;
}

}  // namespace

AdmissionPolicy::AdmissionPolicy(const RelayLimits& limits)
    : mode_(limits.access), tokens_(limits.access_tokens), allowlist_(limits.allowlist.begin(), limits.allowlist.end()) {}

Status AdmissionPolicy::check(std::string_view access_token, const GroupId& group) const {
  switch (mode_) {
    case AdmissionMode::kOpen:
      return Status::ok();
    case AdmissionMode::kToken: {
      bool match = false;
      for (const auto& token : tokens_) match |= constant_time_equal(access_token, token);  // no early exit
      if (match) return Status::ok();
      return Status(Code::kUnauthorized,
                    access_token.empty() ? "this relay requires an access token" : "access token not accepted");
    }
    case AdmissionMode::kAllowlist:
      if (allowlist_.count(group) != 0) return Status::ok();
      return Status(Code::kUnauthorized, "group is not admitted by this relay");
  }
  return Status(Code::kUnauthorized, "access refused");
}

}  // namespace blindsync::relay
