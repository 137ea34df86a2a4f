// Reads of payloads out of segment files. See segment_files.h. Payload bytes are never logged.
#include "store/segment_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "store/push_journal.h"

namespace blindsync::relay::sqlite {
namespace {

// Records closer than this are read together (the bytes between are read and dropped)...
constexpr std::uint64_t kMaxGapBytes = 64u << 10;
// ...up to this much per read.
constexpr std::uint64_t kMaxSpanBytes = 8u << 20;
// A record is never larger than the journal accepts; a row naming more is damaged.
constexpr std::uint64_t kMaxPayloadBytes = 64u << 20;
// Read descriptors kept open. Pulls mostly read the newest segments; a relay holding thousands of
// segments must not hold thousands of descriptors (they count against the same limit as sockets).
constexpr std::size_t kMaxOpenSegments = 64;

std::uint32_t get_u32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

}  // namespace

struct SegmentFiles::File {
  int fd = -1;
  std::string path;
  ~File() {
    if (fd >= 0) ::close(fd);
  }
};

SegmentFiles::SegmentFiles(std::string database_path) : database_path_(std::move(database_path)) {}
SegmentFiles::~SegmentFiles() = default;

Result<std::shared_ptr<SegmentFiles::File>> SegmentFiles::open(std::uint64_t segment) {
  std::lock_guard lock(mutex_);
  if (auto it = files_.find(segment); it != files_.end()) return it->second;
  auto file = std::make_shared<File>();
  file->path = segment_path_for(database_path_, segment);
  file->fd = ::open(file->path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file->fd < 0) {
    const int err = errno;
    if (err == ENOENT) return Status(Code::kNotFound, "segment '" + file->path + "' is gone");
    return Status(Code::kInternal, "cannot open segment '" + file->path + "': " + std::strerror(err));
  }
  if (files_.size() >= kMaxOpenSegments) files_.erase(files_.begin());  // the oldest: read least
  files_.emplace(segment, file);
  return file;
}

Status SegmentFiles::read(std::span<PayloadRead> reads) {
  std::vector<PayloadRead*> order;
  order.reserve(reads.size());
  for (PayloadRead& r : reads) {
    if (r.size > kMaxPayloadBytes || r.offset < kRecordPayloadOffset) {
      return Status(Code::kInternal,
                    "a blob row names an impossible place in segment " + std::to_string(r.segment));
    }
    order.push_back(&r);
  }
  std::sort(order.begin(), order.end(), [](const PayloadRead* a, const PayloadRead* b) {
    return a->segment != b->segment ? a->segment < b->segment : a->offset < b->offset;
  });
  std::vector<std::uint8_t> buffer;
  std::size_t first = 0;
  while (first < order.size()) {
    const std::uint64_t segment = order[first]->segment;
    const std::uint64_t start = order[first]->offset - kRecordPayloadOffset;
    std::uint64_t end = order[first]->offset + order[first]->size;
    std::size_t last = first + 1;
    for (; last < order.size() && order[last]->segment == segment; ++last) {
      const std::uint64_t next_start = order[last]->offset - kRecordPayloadOffset;
      const std::uint64_t next_end = order[last]->offset + order[last]->size;
      if (next_start > end + kMaxGapBytes || next_end - start > kMaxSpanBytes) {
        break;
      }
      end = std::max(end, next_end);
    }
    auto file = open(segment);
    if (!file) return file.error();
    buffer.resize(end - start);
    std::size_t got = 0;
    while (got < buffer.size()) {
      const ssize_t n =
          ::pread((*file)->fd, buffer.data() + got, buffer.size() - got, static_cast<off_t>(start + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        return Status(Code::kInternal,
                      "cannot read segment '" + (*file)->path + "': " + std::strerror(errno));
      if (n == 0)
        return Status(Code::kInternal, "segment '" + (*file)->path + "' is shorter than its rows say");
      got += static_cast<std::size_t>(n);
    }
    for (std::size_t i = first; i < last; ++i) {
      PayloadRead& r = *order[i];
      const std::uint8_t* record = buffer.data() + (r.offset - kRecordPayloadOffset - start);
      const std::uint64_t body_size = kRecordPayloadOffset - kRecordBodyOffset + r.size;
      const bool matches =
          get_u32(record) == body_size &&
          std::equal(r.blob_id.bytes().begin(), r.blob_id.bytes().end(), record + kRecordBlobIdOffset);
      if (!matches)
        return Status(Code::kInternal,
                      "segment '" + (*file)->path + "' does not hold the blob its row names");
      const std::uint8_t* payload = record + kRecordPayloadOffset;
      r.out->assign(payload, payload + r.size);
    }
    first = last;
  }
  return Status::ok();
}

Status SegmentFiles::sync(std::uint64_t segment) {
  auto file = open(segment);
  if (!file) return file.error();
  if (::fdatasync((*file)->fd) != 0) {
    return Status(Code::kInternal, "cannot sync segment '" + (*file)->path + "': " + std::strerror(errno));
  }
  return Status::ok();
}

Status SegmentFiles::remove(std::uint64_t segment) {
  {
    std::lock_guard lock(mutex_);
    files_.erase(segment);  // readers holding it keep reading until they let go
  }
  const std::string path = segment_path_for(database_path_, segment);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status(Code::kInternal, "cannot delete segment '" + path + "': " + std::strerror(errno));
  }
  return Status::ok();
}

}  // namespace blindsync::relay::sqlite
