// Status helpers: canonical code names and the wire-code predicate.
#include "blindsync/core/status.h"

#include <string>

namespace blindsync {

std::string_view code_name(Code code) noexcept {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidMessage: return "INVALID_MESSAGE";
    case Code::kUnknownGroup: return "UNKNOWN_GROUP";
    case Code::kUnauthorized: return "UNAUTHORIZED";
    case Code::kDeviceRevoked: return "DEVICE_REVOKED";
    case Code::kNotBlobOwner: return "NOT_BLOB_OWNER";
    case Code::kUnsupportedVersion: return "UNSUPPORTED_VERSION";
    case Code::kInvalidState: return "INVALID_STATE";
    case Code::kHelloTimeout: return "HELLO_TIMEOUT";
    case Code::kRateLimited: return "RATE_LIMITED";
    case Code::kBlobTooLarge: return "BLOB_TOO_LARGE";
    case Code::kGroupQuotaExceeded: return "GROUP_QUOTA_EXCEEDED";
    case Code::kInvalidPushToken: return "INVALID_PUSH_TOKEN";
    case Code::kGroupFull: return "GROUP_FULL";
    case Code::kRelayOverloaded: return "RELAY_OVERLOADED";
    case Code::kRelayShuttingDown: return "RELAY_SHUTTING_DOWN";
    case Code::kInternal: return "INTERNAL";
    case Code::kStorageFull: return "STORAGE_FULL";
    case Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Code::kNotFound: return "NOT_FOUND";
    case Code::kAlreadyExists: return "ALREADY_EXISTS";
    case Code::kIoError: return "IO_ERROR";
    case Code::kCryptoFailure: return "CRYPTO_FAILURE";
    case Code::kTimeout: return "TIMEOUT";
    case Code::kConnectionClosed: return "CONNECTION_CLOSED";
    case Code::kExpired: return "EXPIRED";
    case Code::kStorageError: return "STORAGE_ERROR";
  }
  return "UNKNOWN";
}

bool is_wire_code(std::uint16_t code) noexcept {
  // Only the codes DESIGN.md lists; a code in the wire range that we do not know is not one.
  if (code < 1000 || code >= 4000) return false;
  return code_name(static_cast<Code>(code)) != "UNKNOWN";
}

std::string Status::to_string() const {
  std::string out(code_name(code_));
  if (is_ok()) return out;
  out += " (";
  out += std::to_string(static_cast<unsigned>(code_));
  out += ")";
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace blindsync
