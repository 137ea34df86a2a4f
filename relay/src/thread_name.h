// Names the calling thread, so `top -H`, `ps -L`, perf and the bench's per-thread CPU report say
// which of the relay's threads is busy (I/O, store writer, applier, WAL checkpointer).
#pragma once

#include <pthread.h>

#include <string>

namespace blindsync::relay {

// Linux keeps 15 bytes of a thread's name; a longer one is cut, never refused.
inline void name_this_thread(const std::string& name) {
  const std::string kept = name.substr(0, 15);
  (void)::pthread_setname_np(::pthread_self(), kept.c_str());
}

}  // namespace blindsync::relay
