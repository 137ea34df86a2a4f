// peek_frame_header: reads [version, type, request_id] from the first bytes of a frame by hand,
// without msgpack and without looking at the body, so that a frame whose body is bad (too deep,
// truncated, wrong types) can still be answered with an ERROR that carries its request_id.
#include "blindsync/core/codec.h"

namespace blindsync {
namespace {

class HeaderReader {
 public:
  explicit HeaderReader(ByteView bytes) : bytes_(bytes) {}

  // Array header: fixarray, array 16 or array 32. Returns the element count.
  bool array_header(std::uint64_t& count) {
    std::uint8_t b = 0;
    if (!byte(b)) return false;
    if (b >= 0x90 && b <= 0x9f) {
      count = b & 0x0f;
      return true;
    }
    if (b == 0xdc) return big_endian(2, count);
    if (b == 0xdd) return big_endian(4, count);
    return false;
  }

  // Any MessagePack integer with a non-negative value (the decoder accepts the same set).
  bool uint(std::uint64_t& out) {
    std::uint8_t b = 0;
    if (!byte(b)) return false;
    if (b <= 0x7f) {
      out = b;
      return true;
    }
    switch (b) {
      case 0xcc: return big_endian(1, out);
      case 0xcd: return big_endian(2, out);
      case 0xce: return big_endian(4, out);
      case 0xcf: return big_endian(8, out);
      case 0xd0: return signed_non_negative(1, out);
      case 0xd1: return signed_non_negative(2, out);
      case 0xd2: return signed_non_negative(4, out);
      case 0xd3: return signed_non_negative(8, out);
      default: return false;
    }
  }

 private:
  bool byte(std::uint8_t& b) {
    if (pos_ >= bytes_.size()) return false;
    b = bytes_[pos_++];
    return true;
  }
  bool big_endian(std::size_t width, std::uint64_t& out) {
    if (bytes_.size() - pos_ < width) return false;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < width; ++i) v = (v << 8) | bytes_[pos_ + i];
    pos_ += width;
    out = v;
    return true;
  }
  bool signed_non_negative(std::size_t width, std::uint64_t& out) {
    std::uint64_t v = 0;
    if (!big_endian(width, v)) return false;
    if ((v >> (8 * width - 1)) & 1) return false;  // sign bit set: negative
    out = v;
    return true;
  }

  ByteView bytes_;
  std::size_t pos_ = 0;
};

}  // namespace

Result<FrameHeader> peek_frame_header(ByteView bytes, const DecodeLimits& limits) {
  if (bytes.size() > limits.max_frame_bytes) {
    return Status(Code::kInvalidMessage, "frame of " + std::to_string(bytes.size()) + " bytes exceeds limit " +
                                             std::to_string(limits.max_frame_bytes));
  }
  HeaderReader in(bytes);
  std::uint64_t count = 0;
  std::uint64_t version = 0;
  std::uint64_t type = 0;
  std::uint64_t request_id = 0;
  if (!in.array_header(count) || count < 3) {
    return Status(Code::kInvalidMessage, "frame header is not an array of at least 3 elements");
  }
  if (!in.uint(version) || version > 0xffffffffu) {
    return Status(Code::kInvalidMessage, "frame header has no readable version");
  }
  if (!in.uint(type) || type > 0xff) return Status(Code::kInvalidMessage, "frame header has no readable type");
  if (!in.uint(request_id) || request_id > 0xffffffffu) {
    return Status(Code::kInvalidMessage, "frame header has no readable request_id");
  }
  FrameHeader header;
  header.version = static_cast<std::uint32_t>(version);
  header.type = static_cast<std::uint8_t>(type);
  header.request_id = static_cast<std::uint32_t>(request_id);
  return header;
}

}  // namespace blindsync
