#include "relay_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

namespace blindsync::relay {
namespace {

std::string errno_text(int error) { return std::generic_category().message(error); }

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

Result<auth::SigningKey> load_key(int raw_fd, const std::string& name) {
  Fd fd(raw_fd);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status(Code::kIoError, name + ": " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return Status(Code::kIoError, name + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    return Status(Code::kIoError, name + " has mode " + octal_mode(st.st_mode) +
                                      ": group/others must have no access to the relay key (chmod 600 " +
                                      name + ")");
  }
  auth::Seed seed{};
  if (st.st_size != static_cast<off_t>(seed.size())) {
    return Status(Code::kIoError, name + " is " + std::to_string(st.st_size) + " bytes, expected " +
                                      std::to_string(seed.size()) + " (damaged key file?)");
  }
  std::size_t got = 0;
  while (got < seed.size()) {
    const ssize_t n = ::read(fd.get(), seed.data() + got, seed.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auth::secure_wipe(seed);
      return Status(Code::kIoError, name + ": short read");
    }
    got += static_cast<std::size_t>(n);
  }
  auto key = auth::SigningKey::from_seed(seed);
  auth::secure_wipe(seed);
  return key;
}

Status write_all(int fd, const std::uint8_t* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status(Code::kIoError, errno_text(errno));
    done += static_cast<std::size_t>(n);
  }
  return Status::ok();
}

}  // namespace

Status ensure_private_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  const auto status = std::filesystem::status(dir, ec);
  if (std::filesystem::exists(status)) {
    if (!std::filesystem::is_directory(status)) return Status(Code::kIoError, dir.string() + " is not a directory");
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      spdlog::warn("data directory {} has mode {}; 0700 is recommended", dir.string(), octal_mode(st.st_mode));
    }
    return Status::ok();
  }
  if (dir.has_parent_path() && !dir.parent_path().empty()) {
    std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec) return Status(Code::kIoError, "cannot create " + dir.parent_path().string() + ": " + ec.message());
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status(Code::kIoError, "cannot create " + dir.string() + ": " + errno_text(errno));
  }
  return Status::ok();
}

Result<auth::SigningKey> load_or_create_relay_key(const std::filesystem::path& path) {
  const std::string name = path.string();
  // Two attempts: a concurrent creator may win the O_EXCL race, then we load what it wrote.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int existing = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (existing >= 0) return load_key(existing, name);
    if (errno != ENOENT) return Status(Code::kIoError, "cannot open " + name + ": " + errno_text(errno));

    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.get() < 0) {
      if (errno == EEXIST) continue;
      return Status(Code::kIoError, "cannot create " + name + ": " + errno_text(errno));
    }
    auto key = auth::SigningKey::generate();
    Status written = write_all(fd.get(), key.seed().data(), key.seed().size());
    if (written && ::fsync(fd.get()) != 0) written = Status(Code::kIoError, errno_text(errno));
    if (::close(fd.release()) != 0 && written) written = Status(Code::kIoError, errno_text(errno));
    if (!written) {
      ::unlink(path.c_str());  // never leave a partial key behind to be refused at the next start
      return Status(Code::kIoError, "cannot write " + name + ": " + written.message());
    }
    spdlog::info("created relay key {}", name);
    return key;
  }
  return Status(Code::kIoError, "cannot create or open " + name);
}

}  // namespace blindsync::relay
