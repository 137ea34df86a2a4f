// The WebSocket close codes the relay uses, derived from protocol error codes in ONE place.
//
// When the relay ends a session because of a protocol violation or an auth failure it first sends
// ERROR{code, message, request_id}, then closes the WebSocket with a code in the private range
// 4000-4999 (RFC 6455 section 7.4.2) that mirrors the error, so a client that misses the ERROR frame
// still learns why:
//
//   error 1000-1999  ->  close 4000 + (code - 1000)   e.g. 1002 UNAUTHORIZED    -> 4002
//                                                          1006 INVALID_STATE   -> 4006
//                                                          1007 HELLO_TIMEOUT   -> 4007
//   error 2000-2999  ->  close 4100 + (code - 2000)   e.g. 2004 GROUP_FULL      -> 4104
//   error 3000-3999  ->  close 4200 + (code - 3000)   e.g. 3001 SHUTTING_DOWN   -> 4201
//
// Errors only span 0-99 within each thousand on the wire, so the three ranges never overlap.
// Code::kOk maps to 1000 (normal closure). A local code (9000+) never travels on the wire; should
// one reach here it is reported as INTERNAL (4202). docs/wire.md repeats this table.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include "blindsync/core/status.h"
#include "blindsync/core/wire_format.h"

namespace blindsync::relay {

inline constexpr std::uint16_t kCloseNormal = wire::kCloseNormal;  // RFC 6455: normal closure (BYE)

// The mapping itself lives in core (wire::close_code_for) so client and relay share it; the relay
// only adds that a local code which should never reach the wire is reported as INTERNAL.
constexpr std::uint16_t websocket_close_code(Code code) noexcept {
  const auto value = static_cast<std::uint16_t>(code);
  const bool local = value >= static_cast<std::uint16_t>(Code::kInvalidArgument);
  return wire::close_code_for(local ? static_cast<std::uint16_t>(Code::kInternal) : value);
}

static_assert(websocket_close_code(Code::kInvalidMessage) == 4000);
static_assert(websocket_close_code(Code::kUnauthorized) == 4002);
static_assert(websocket_close_code(Code::kInvalidState) == 4006);
static_assert(websocket_close_code(Code::kHelloTimeout) == 4007);
static_assert(websocket_close_code(Code::kGroupFull) == 4104);
static_assert(websocket_close_code(Code::kRelayShuttingDown) == 4201);
static_assert(websocket_close_code(Code::kStorageError) == 4202);

}  // namespace blindsync::relay
