// Lets the relay's background threads (the store's applier and the WAL checkpointer) give way to
// the threads on the ack path (the I/O threads and the store writer).
//
// Why: both background threads run for milliseconds at a time (one apply of ~2,048 blobs, one
// checkpoint pass). On a small machine the ack path's threads then wake up and wait for a core
// behind them: under W1 the I/O threads and the writer spent as long runnable-but-waiting as they
// ran (`perf sched`), while a quarter of the machine sat idle between those bursts. Nothing acked
// waits for an apply or a checkpoint, so they can run later, in longer batches (which also costs
// them less per blob). Measured in docs/benchmarks-log.md ("2026-11-22 12:40 UTC").
//
// Safe because the background work cannot fall behind without bound: once the push journal is
// past halfway to journal_max_bytes the store's writer applies in the applier's place (and
// everything at journal_max_bytes), and the WAL is restarted by the writer once it passes
// restart_frames, whatever the scheduler did.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

namespace blindsync::relay {

// The niceness of background threads: a nice-10 thread gets about a tenth of a core's share
// against a nice-0 one that wants the core, and all of an idle core.
inline constexpr int kBackgroundNice = 10;

// Lowers the calling thread's priority (Linux: nice is per thread). Lowering needs no privilege;
// where it is refused anyway (a seccomp profile) the thread runs at normal priority, which is
// only slower, so a refusal is ignored.
inline void lower_this_thread_priority() {
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kBackgroundNice);
}

}  // namespace blindsync::relay
