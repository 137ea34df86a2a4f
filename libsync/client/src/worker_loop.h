// WorkerLoop: the AsyncClient's worker thread: a mailbox of tasks plus one-shot timers, run one at
// a time on a thread the loop owns.
//
// post() may be called from any thread (connection threads, app threads, the worker itself).
// Timers (run_at/cancel) are for the worker's own use. stop() runs a final task on the worker,
// then every task still in the mailbox (so that no promise is left unanswered), then the thread
// ends; timers that have not fired are discarded.
// Tasks must not throw: the loop catches and drops an exception so the thread survives.
// Thread-safety: post(), on_worker_thread() and stop() from any thread; run_at()/cancel() from
// the worker thread only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace blindsync::client_detail {

class WorkerLoop {
 public:
  using Task = std::function<void()>;
  using Clock = std::chrono::steady_clock;
  using TimerId = std::uint64_t;  // 0 is never a valid id

  WorkerLoop() = default;
  ~WorkerLoop();  // stop({}) if still running
  WorkerLoop(const WorkerLoop&) = delete;
  WorkerLoop& operator=(const WorkerLoop&) = delete;

  void start();
  void post(Task task);
  TimerId run_at(Clock::time_point when, Task task);
  TimerId run_after(std::chrono::milliseconds delay, Task task) {
    return run_at(Clock::now() + delay, std::move(task));
  }
  void cancel(TimerId id);
  bool on_worker_thread() const;
  // Runs last_task on the worker, then the mailbox's remaining tasks, and joins the thread.
  // REQUIRES: not called from the worker thread.
  void stop(Task last_task);

 private:
  void run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> mailbox_;
  std::multimap<Clock::time_point, std::pair<TimerId, Task>> timers_;  // worker-only, but under mu_ too
  TimerId next_timer_ = 1;
  bool stopping_ = false;
  Task last_task_;
  std::thread thread_;
  std::thread::id worker_id_;
};

}  // namespace blindsync::client_detail
