// Private: makes sure libsodium is initialised before any of its functions is used.
// sodium_init() picks the fastest implementations for this CPU and seeds the random generator.
// Thread-safety: C++ guarantees a function-local static is initialised exactly once.
#pragma once

#include <sodium.h>

#include <cstdlib>

namespace blindsync::crypto::detail {

inline void ensure_sodium() {
  static const bool initialised = [] {
    // 0 = initialised now, 1 = already initialised; -1 means the library cannot work at all.
    if (sodium_init() < 0) std::abort();
    return true;
  }();
  (void)initialised;
}

}  // namespace blindsync::crypto::detail
