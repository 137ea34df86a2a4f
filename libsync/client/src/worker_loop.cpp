#include "worker_loop.h"

#include <exception>
#include <utility>
#include <vector>

namespace blindsync::client_detail {

namespace {
void run_task(const WorkerLoop::Task& task) {
  try {
    if (task) task();
  } catch (...) {
    // A task that throws is a bug in the caller; the worker keeps running for the others.
  }
}
}  // namespace

WorkerLoop::~WorkerLoop() {
  if (thread_.joinable()) stop({});
}

void WorkerLoop::start() {
  std::lock_guard lock(mu_);
  thread_ = std::thread([this] { run(); });
  worker_id_ = thread_.get_id();
}

void WorkerLoop::post(Task task) {
  {
    std::lock_guard lock(mu_);
    mailbox_.push_back(std::move(task));
  }
  cv_.notify_one();
}

WorkerLoop::TimerId WorkerLoop::run_at(Clock::time_point when, Task task) {
  std::lock_guard lock(mu_);
  const TimerId id = next_timer_++;
  timers_.emplace(when, std::make_pair(id, std::move(task)));
  return id;
}

void WorkerLoop::cancel(TimerId id) {
  if (id == 0) return;
  std::lock_guard lock(mu_);
  for (auto it = timers_.begin(); it != timers_.end(); ++it) {
    if (it->second.first == id) {
      timers_.erase(it);
      return;
    }
  }
}

bool WorkerLoop::on_worker_thread() const {
  std::lock_guard lock(mu_);
  return thread_.joinable() && std::this_thread::get_id() == worker_id_;
}

void WorkerLoop::stop(Task last_task) {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    last_task_ = std::move(last_task);
  }
  cv_.notify_one();
  thread_.join();
  std::lock_guard lock(mu_);
  thread_ = std::thread();
}

void WorkerLoop::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (stopping_) break;
    if (!mailbox_.empty()) {
      Task task = std::move(mailbox_.front());
      mailbox_.pop_front();
      lock.unlock();
      run_task(task);
      lock.lock();
      continue;
    }
    if (!timers_.empty() && timers_.begin()->first <= Clock::now()) {
      Task task = std::move(timers_.begin()->second.second);
      timers_.erase(timers_.begin());
      lock.unlock();
      run_task(task);
      lock.lock();
      continue;
    }
    if (timers_.empty()) {
      cv_.wait(lock);
    } else {
      cv_.wait_until(lock, timers_.begin()->first);
    }
  }
  // Shutdown: the final task (it may post more, e.g. connections reporting their end), then the
  // mailbox until it stays empty.
  Task last = std::move(last_task_);
  lock.unlock();
  run_task(last);
  lock.lock();
  while (!mailbox_.empty()) {
    Task task = std::move(mailbox_.front());
    mailbox_.pop_front();
    lock.unlock();
    run_task(task);
    lock.lock();
  }
  timers_.clear();
}

}  // namespace blindsync::client_detail
