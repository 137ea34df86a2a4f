// The reconnect delay of the AsyncClient (DESIGN.md "Client library"):
//
//   delay(attempt) = min(base * 2^(attempt-1), cap) + uniform(0, jitter)
//
// attempt counts failures since the last successful connection (1 for the first retry); the
// caller resets it to 0 when a session is established. The jitter spreads reconnects so that a
// restarted relay is not hit by every client at the same instant.
// Thread-safety: pure functions; the jitter source is the caller's (inject a fixed one in tests).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "blindsync/client/async_client.h"

namespace blindsync::client_detail {

// Returns a uniformly distributed value in [0, upper] (inclusive).
using JitterSource = std::function<std::uint64_t(std::uint64_t upper)>;

// min(base * 2^(attempt-1), cap), without overflow for any attempt. attempt 0 is treated as 1.
// A negative base, cap or jitter counts as 0.
std::chrono::milliseconds backoff_base_delay(const BackoffPolicy& policy, std::uint32_t attempt);

// backoff_base_delay + jitter(policy.jitter). An empty jitter source adds nothing.
std::chrono::milliseconds backoff_delay(const BackoffPolicy& policy, std::uint32_t attempt,
                                        const JitterSource& jitter);

}  // namespace blindsync::client_detail
