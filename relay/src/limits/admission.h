// AdmissionPolicy: which authenticated HELLOs may open a session (RelayLimits::access).
//
//   open       every group
//   token      HELLO.access_token must equal one of the operator's tokens (compared in constant
//              time for equal lengths, so response timing does not reveal a token's prefix)
//   allowlist  HELLO.group_id must be on the operator's list
//
// The hub checks it after both HELLO signatures verified, so a refusal never depends on an
// unauthenticated claim. A refusal is ERROR 1002 UNAUTHORIZED and close 4002.
//
// Thread-safety: immutable after construction; check() may be called concurrently.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"
#include "limits/relay_limits.h"

namespace blindsync::relay {

class AdmissionPolicy {
 public:
  explicit AdmissionPolicy(const RelayLimits& limits);

  // ok, or kUnauthorized with a reason safe to send to the client.
  Status check(std::string_view access_token, const GroupId& group) const;

 private:
  AdmissionMode mode_;
  std::vector<std::string> tokens_;
  std::unordered_set<GroupId, FixedIdHash> allowlist_;
};

}  // namespace blindsync::relay
