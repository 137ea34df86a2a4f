// The push journal's spare segment. See segment_spare.h.
#include "store/segment_spare.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "thread_name.h"
#include "thread_priority.h"

namespace blindsync::relay::sqlite {
namespace {

// One write (and one fdatasync) of zeros: bounds what a flush of the writer's may wait behind.
constexpr std::size_t kStepBytes = 1u << 20;
// After a failure (a full disk), how long prepare() waits before trying again: each run of pushes
// asks, and each attempt would log.
constexpr auto kRetryAfter = std::chrono::seconds(10);

}  // namespace

std::string spare_segment_path_for(const std::string& database_path) { return database_path + "-seg-spare"; }

SegmentSpare::SegmentSpare(std::string path, std::uint64_t bytes) : path_(std::move(path)), bytes_(bytes) {
  ::unlink(path_.c_str());
}

SegmentSpare::~SegmentSpare() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
  ::unlink(path_.c_str());
}

void SegmentSpare::prepare() {
  std::lock_guard lock(mutex_);
  if (state_ != State::kNone || wanted_ || stopping_) return;
  if (failed_at_ && std::chrono::steady_clock::now() - *failed_at_ < kRetryAfter) return;
  wanted_ = true;
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  changed_.notify_all();
}

bool SegmentSpare::take_as(const std::string& path, bool wait) {
  if (wait) prepare();
  std::unique_lock lock(mutex_);
  if (wait) {
    changed_.wait(lock, [&] { return stopping_ || state_ == State::kReady || (state_ == State::kNone && !wanted_); });
  }
  if (state_ != State::kReady) return false;
  state_ = State::kNone;
  // Never over an existing file: that would be a segment with records.
  if (::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    spdlog::warn("store: cannot rename the spare segment to '{}': {}", path, std::strerror(errno));
    ::unlink(path_.c_str());
    return false;
  }
  return true;
}

void SegmentSpare::run() {
  name_this_thread("store-spare");
  lower_this_thread_priority();
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || wanted_; });
    if (stopping_) return;
    wanted_ = false;
    state_ = State::kMaking;
    lock.unlock();
    const bool made = make_file();
    lock.lock();
    state_ = made ? State::kReady : State::kNone;
    if (!made) failed_at_ = std::chrono::steady_clock::now();
    changed_.notify_all();
  }
}

bool SegmentSpare::make_file() {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    spdlog::warn("store: cannot create the spare segment '{}': {}", path_, std::strerror(errno));
    return false;
  }
  const std::vector<char> zeros(kStepBytes, 0);
  const char* failed = nullptr;
  int err = 0;
  for (std::uint64_t at = 0; at < bytes_ && failed == nullptr;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kStepBytes, bytes_ - at));
    const ssize_t n = ::pwrite(fd, zeros.data(), want, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      failed = "write";
      err = n < 0 ? errno : EIO;
    } else if (::fdatasync(fd) != 0) {
      failed = "sync";
      err = errno;
    } else {
      at += static_cast<std::uint64_t>(n);
    }
  }
  ::close(fd);
  bool stopped = false;
  {
    std::lock_guard lock(mutex_);
    stopped = stopping_;
  }
  if (failed != nullptr || stopped) {
    if (failed != nullptr) {
      spdlog::warn("store: cannot {} the spare segment '{}' (segments are made empty until it can): {}", failed,
                   path_, std::strerror(err));
    }
    ::unlink(path_.c_str());
    return false;
  }
  return true;
}

}  // namespace blindsync::relay::sqlite
