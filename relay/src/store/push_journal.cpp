// The push journal's file format and I/O. See push_journal.h. Payload bytes are never logged.
#include "store/push_journal.h"

#include <sodium.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

namespace blindsync::relay::sqlite {
namespace {

constexpr std::array<std::uint8_t, 8> kMagic = {'B', 'S', 'P', 'U', 'S', 'H', 'J', '1'};
constexpr std::size_t kHeaderBytes = 16;
constexpr std::size_t kRecordHeaderBytes = 4 + 8;
constexpr std::size_t kBodyFixedBytes = GroupId::kSize + BlobId::kSize + DeviceId::kSize + 3 * 8;
// A body never exceeds the frame limit; anything larger is a torn or foreign length field.
constexpr std::uint32_t kMaxBodyBytes = 64u << 20;
static_assert(kRecordPayloadOffset == kRecordHeaderBytes + kBodyFixedBytes);
constexpr std::string_view kSegmentInfix = "-seg-";
constexpr std::size_t kSegmentDigits = 10;

void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint32_t get_u32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
void put_bytes(std::vector<std::uint8_t>& out, ByteView bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); }

using ChecksumKey = std::array<std::uint8_t, crypto_shorthash_KEYBYTES>;

ChecksumKey checksum_key(std::uint64_t epoch) {
  ChecksumKey key{};
  for (int i = 0; i < 8; ++i) key[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(epoch >> (8 * i));
  std::copy(kMagic.begin(), kMagic.end(), key.begin() + 8);
  return key;
}

std::uint64_t checksum(const ChecksumKey& key, const std::uint8_t* body, std::size_t size) {
  std::array<std::uint8_t, crypto_shorthash_BYTES> out{};
  crypto_shorthash(out.data(), body, size, key.data());
  return get_u64(out.data());
}

Status io_error(const std::string& what, const std::string& path, int err) {
  const Code code = (err == ENOSPC || err == EDQUOT) ? Code::kStorageFull : Code::kInternal;
  return Status(code, what + " '" + path + "': " + std::strerror(err));
}

// Writes all of `data` at `offset` (the end of the records: in a zero-filled segment the file
// goes on past it).
Status write_all(int fd, const std::uint8_t* data, std::size_t size, std::uint64_t offset, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot append to push journal", path, errno);
    }
    if (n == 0) return io_error("cannot append to push journal", path, EIO);
    data += n;
    offset += static_cast<std::uint64_t>(n);
    size -= static_cast<std::size_t>(n);
  }
  return Status::ok();
}

using Header = std::array<std::uint8_t, kHeaderBytes>;

// The file's first kHeaderBytes, if it has that many and they can be read.
bool read_header(int fd, std::uint64_t file_size, Header& header) {
  return file_size >= kHeaderBytes && ::pread(fd, header.data(), header.size(), 0) == static_cast<ssize_t>(kHeaderBytes);
}

bool all_zero(const std::uint8_t* p, std::size_t size) {
  return std::all_of(p, p + size, [](std::uint8_t b) { return b == 0; });
}

}  // namespace

std::string journal_path_for(const std::string& database_path) { return database_path + "-pushlog"; }
std::string second_journal_path_for(const std::string& database_path) { return database_path + "-pushlog2"; }

std::string segment_path_for(const std::string& database_path, std::uint64_t number) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%0*llu", static_cast<int>(kSegmentDigits), static_cast<unsigned long long>(number));
  return database_path + std::string(kSegmentInfix) + digits;
}

Result<std::vector<std::uint64_t>> list_segments(const std::string& database_path) {
  namespace fs = std::filesystem;
  const fs::path db(database_path);
  const std::string prefix = db.filename().string() + std::string(kSegmentInfix);
  std::vector<std::uint64_t> numbers;
  std::error_code ec;
  const fs::path dir = db.has_parent_path() ? db.parent_path() : fs::path(".");
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() != prefix.size() + kSegmentDigits || name.compare(0, prefix.size(), prefix) != 0) continue;
    std::uint64_t number = 0;
    const char* first = name.data() + prefix.size();
    const char* last = name.data() + name.size();
    const auto [end_of_number, err] = std::from_chars(first, last, number);
    if (err == std::errc() && end_of_number == last && number > 0) numbers.push_back(number);
  }
  if (ec) return Status(Code::kStorageError, "cannot list the segments next to '" + database_path + "': " + ec.message());
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

Status sync_parent_directory(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open directory", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return io_error("cannot sync directory", dir, err);
  return Status::ok();
}

PushJournal::PushJournal(PushJournal&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      epoch_(other.epoch_),
      sync_(other.sync_),
      size_(other.size_),
      file_bytes_(other.file_bytes_),
      segment_(other.segment_),
      broken_(other.broken_),
      buffer_(std::move(other.buffer_)) {}

PushJournal& PushJournal::operator=(PushJournal&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    epoch_ = other.epoch_;
    sync_ = other.sync_;
    size_ = other.size_;
    file_bytes_ = other.file_bytes_;
    segment_ = other.segment_;
    broken_ = other.broken_;
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

PushJournal::~PushJournal() {
  if (fd_ >= 0) ::close(fd_);
}

Result<PushJournal> PushJournal::open_locked(const std::string& path, std::uint64_t epoch, bool sync,
                                            std::uint64_t segment) {
  if (sodium_init() < 0) return Status(Code::kInternal, "libsodium failed to initialise");
  PushJournal journal;
  journal.path_ = path;
  journal.epoch_ = epoch;
  journal.sync_ = sync;
  journal.segment_ = segment;
  journal.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (journal.fd_ < 0) return io_error("cannot open push journal", path, errno);
  // One relay per database: a second one would hand out the same cursors and append to the same
  // journal. SQLite's own locks serialise writes but cannot see the cursors held in memory.
  if (::flock(journal.fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      return Status(Code::kStorageError, "'" + path + "' is in use by another relay process on the same database");
    }
    return io_error("cannot lock push journal", path, err);
  }
  struct stat info {};
  if (::fstat(journal.fd_, &info) != 0) return io_error("cannot stat push journal", path, errno);
  journal.size_ = static_cast<std::uint64_t>(info.st_size);
  journal.file_bytes_ = journal.size_;
  return journal;
}

Result<PushJournal> PushJournal::open_zero_filled(const std::string& path, std::uint64_t epoch, bool sync,
                                                  std::uint64_t segment) {
  auto opened = open_locked(path, epoch, sync, segment);
  if (!opened) return opened;
  PushJournal& journal = *opened;
  Header header{};
  if (!read_header(journal.fd_, journal.size_, header) || !all_zero(header.data(), header.size())) {
    return Status(Code::kInternal, "'" + path + "' is not a zero-filled spare segment");
  }
  // The header over the first zeros; records follow it over the rest. Synced before any record,
  // as clear() does.
  if (auto st = journal.write_header(); !st) return st;
  if (sync && ::fdatasync(journal.fd_) != 0) return io_error("cannot sync push journal", path, errno);
  journal.size_ = kHeaderBytes;
  return opened;
}

Result<PushJournal> PushJournal::open(const std::string& path, std::uint64_t epoch, bool sync,
                                     std::uint64_t segment) {
  auto opened = open_locked(path, epoch, sync, segment);
  if (!opened) return opened;
  PushJournal& journal = *opened;
  Header header{};
  const bool has_header =
      read_header(journal.fd_, journal.size_, header) && std::equal(kMagic.begin(), kMagic.end(), header.begin());
  if (has_header && get_u64(header.data() + 8) == epoch) {
    // Appends go after the last intact record: not after zeros (a zero-filled segment a crash left)
    // nor after a torn record, which a replay would never read past.
    auto file = journal.read_bytes(journal.file_bytes_);
    if (!file) return file.error();
    journal.size_ = journal.for_each_record(*file, [](std::size_t, const std::uint8_t*, std::uint32_t) {});
    return opened;
  }
  if (has_header && journal.size_ > kHeaderBytes) {
    return Status(Code::kStorageError,
                  "push journal '" + path + "' holds acknowledged pushes of another database (epoch " +
                      std::to_string(get_u64(header.data() + 8)) + ", this database is " + std::to_string(epoch) +
                      "); restore the database it belongs to, or move it away to discard those pushes");
  }
  if (!has_header && journal.size_ > 0) {
    // A spare segment renamed into place by a run that stopped before writing its header
    // (segment_spare.h) is zeros throughout: it holds nothing and is taken over. Anything else,
    // a damaged header included, may hold acknowledged pushes and is refused.
    auto file = journal.read_bytes(journal.file_bytes_);
    if (!file) return file.error();
    if (file->size() != journal.file_bytes_ || !all_zero(file->data(), file->size())) {
      return Status(Code::kStorageError, "'" + path + "' is not a push journal; move it away");
    }
  }
  if (auto st = journal.clear(); !st) return st;
  return opened;
}

Status PushJournal::write_header() {
  buffer_.clear();
  put_bytes(buffer_, ByteView(kMagic.data(), kMagic.size()));
  put_u64(buffer_, epoch_);
  return write_all(fd_, buffer_.data(), buffer_.size(), 0, path_);
}

Status PushJournal::clear() {
  if (::ftruncate(fd_, 0) != 0) return io_error("cannot truncate push journal", path_, errno);
  size_ = 0;
  file_bytes_ = 0;
  if (auto st = write_header(); !st) return st;
  // The header must be durable before records follow it; an old, longer file left behind by a
  // lost truncate only holds records SQLite already has (replay skips cursors it has seen).
  if (sync_ && ::fdatasync(fd_) != 0) return io_error("cannot sync push journal", path_, errno);
  size_ = kHeaderBytes;
  file_bytes_ = kHeaderBytes;
  broken_ = false;
  return Status::ok();
}

Status PushJournal::append(std::span<JournalRecord> records) {
  if (records.empty()) return Status::ok();
  if (broken_) return Status(Code::kInternal, "push journal '" + path_ + "' could not be repaired after a failed write");
  const ChecksumKey key = checksum_key(epoch_);
  buffer_.clear();
  for (JournalRecord& r : records) {
    const std::size_t body_size = kBodyFixedBytes + r.payload->size();
    r.segment = segment_;
    r.payload_offset = size_ + buffer_.size() + kRecordPayloadOffset;
    const std::size_t start = buffer_.size();
    put_u32(buffer_, static_cast<std::uint32_t>(body_size));
    put_u64(buffer_, 0);  // checksum, filled in below
    put_bytes(buffer_, r.group_id.view());
    put_bytes(buffer_, r.blob_id.view());
    put_bytes(buffer_, r.sender_id.view());
    put_u64(buffer_, r.cursor);
    put_u64(buffer_, r.timestamp_ms);
    put_u64(buffer_, r.expires_at_ms);
    put_bytes(buffer_, *r.payload);
    const std::uint64_t sum = checksum(key, buffer_.data() + start + kRecordHeaderBytes, body_size);
    for (int i = 0; i < 8; ++i) buffer_[start + 4 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(sum >> (8 * i));
  }
  Status st = write_all(fd_, buffer_.data(), buffer_.size(), size_, path_);
  if (st && sync_ && ::fdatasync(fd_) != 0) st = io_error("cannot sync push journal", path_, errno);
  if (!st) {
    // Cut off what may have been written, so the next append does not follow a torn record. If
    // even that fails, a replay still stops at the torn record, which was never acknowledged.
    // If even that fails, refuse every later append: a replay stops at the torn record, and
    // acknowledged records behind it would be lost.
    // In a zero-filled segment this gives up the zeros past the records too: later appends grow
    // the file, which is slower but the same on disk.
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      broken_ = true;
      st = io_error("cannot cut back push journal", path_, errno);
    } else {
      file_bytes_ = size_;
    }
    return st;
  }
  size_ += buffer_.size();
  file_bytes_ = std::max(file_bytes_, size_);
  if (buffer_.capacity() > (4u << 20)) std::vector<std::uint8_t>().swap(buffer_);  // do not keep a burst's buffer
  return Status::ok();
}

Result<std::vector<std::uint8_t>> PushJournal::read_bytes(std::uint64_t size) const {
  std::vector<std::uint8_t> file(size);
  std::size_t got = 0;
  while (got < file.size()) {
    const ssize_t n = ::pread(fd_, file.data() + got, file.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot read push journal", path_, errno);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  file.resize(got);
  return file;
}

template <typename OnRecord>
std::size_t PushJournal::for_each_record(const std::vector<std::uint8_t>& file, OnRecord&& on_record) const {
  const ChecksumKey key = checksum_key(epoch_);
  std::size_t at = kHeaderBytes;
  while (at + kRecordHeaderBytes <= file.size()) {
    const std::uint32_t body_size = get_u32(file.data() + at);
    if (body_size < kBodyFixedBytes || body_size > kMaxBodyBytes) break;  // zeros end here too
    if (file.size() - at - kRecordHeaderBytes < body_size) break;
    const std::uint8_t* body = file.data() + at + kRecordHeaderBytes;
    if (checksum(key, body, body_size) != get_u64(file.data() + at + 4)) break;
    on_record(at, body, body_size);
    at += kRecordHeaderBytes + body_size;
  }
  return std::max(at, kHeaderBytes);
}

Result<std::vector<JournalRecord>> PushJournal::read_all() const {
  auto file = read_bytes(size_);
  if (!file) return file.error();
  std::vector<JournalRecord> records;
  for_each_record(*file, [&](std::size_t at, const std::uint8_t* body, std::uint32_t body_size) {
    JournalRecord r;
    const std::uint8_t* p = body;
    std::copy_n(p, GroupId::kSize, r.group_id.mutable_bytes().begin());
    p += GroupId::kSize;
    std::copy_n(p, BlobId::kSize, r.blob_id.mutable_bytes().begin());
    p += BlobId::kSize;
    std::copy_n(p, DeviceId::kSize, r.sender_id.mutable_bytes().begin());
    p += DeviceId::kSize;
    r.cursor = get_u64(p);
    r.timestamp_ms = get_u64(p + 8);
    r.expires_at_ms = get_u64(p + 16);
    p += 24;
    r.payload = std::make_shared<const Bytes>(p, body + body_size);
    r.segment = segment_;
    r.payload_offset = at + kRecordPayloadOffset;
    records.push_back(std::move(r));
  });
  return records;
}

bool PushJournal::has_records() const noexcept { return size_ > kHeaderBytes; }

Status PushJournal::trim() {
  if (file_bytes_ <= size_ || broken_) return Status::ok();
  if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) return io_error("cannot trim push journal", path_, errno);
  file_bytes_ = size_;
  return Status::ok();
}

void PushJournal::remove() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(path_.c_str());
}

}  // namespace blindsync::relay::sqlite
