// FUZZ_CHECK(cond): a property every fuzz target asserts. A violated property prints where and
// what, then aborts, so libFuzzer keeps the input as a crash artifact (and fuzz_replay fails).
// Not assert(): it must hold in every build type, NDEBUG included.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace blindsync::fuzz {

[[noreturn]] inline void fail(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: property violated: %s\n", file, line, what);
  std::abort();
}

}  // namespace blindsync::fuzz

#define FUZZ_CHECK(cond)                                               \
  do {                                                                 \
    if (!(cond)) ::blindsync::fuzz::fail(#cond, __FILE__, __LINE__);   \
  } while (0)

// For a property whose condition is not one expression (checked by hand above the call).
#define FUZZ_FAIL(what) ::blindsync::fuzz::fail(what, __FILE__, __LINE__)
