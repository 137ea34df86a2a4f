#include "raw_ws.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <utility>

namespace blindsync::bench {

namespace {

// As ws_conn.cpp: far above any frame the relay sends, so the bench is never the limit.
constexpr std::uint64_t kMaxMessageBytes = 64 * 1024 * 1024;
constexpr std::size_t kInitialReadBytes = 64 * 1024;
constexpr std::size_t kMinReadRoom = 4096;

constexpr std::uint8_t kFin = 0x80;
constexpr std::uint8_t kOpBinary = 0x2, kOpText = 0x1, kOpClose = 0x8, kOpPing = 0x9, kOpPong = 0xA;

Status errno_status(const char* what, int err) {
  if (err == EPIPE || err == ECONNRESET) return Status(Code::kConnectionClosed, std::string(what) + ": " + std::strerror(err));
  return Status(Code::kIoError, std::string(what) + ": " + std::strerror(err));
}

}  // namespace

RawWsClient::RawWsClient(int fd) : fd_(fd), in_(kInitialReadBytes) {
  const int flags = ::fcntl(fd_, F_GETFL, 0);
  if (flags >= 0) (void)::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  std::random_device device;
  prng_ = (static_cast<std::uint64_t>(device()) << 32 | device()) | 1;  // xorshift needs a nonzero state
}

RawWsClient::RawWsClient(RawWsClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      prng_(other.prng_),
      out_(std::move(other.out_)),
      out_sent_(other.out_sent_),
      in_(std::move(other.in_)),
      in_begin_(other.in_begin_),
      in_end_(other.in_end_) {}

RawWsClient::~RawWsClient() {
  if (fd_ < 0) return;
  // Close code 1000 (normal), best effort: the relay also copes with a socket that just closes.
  const std::uint8_t normal[2] = {0x03, 0xE8};
  if (!wants_write()) {
    frame_into_out(kOpClose, ByteView(normal, sizeof normal));
    (void)flush();
  }
  ::close(fd_);
}

std::uint32_t RawWsClient::next_mask() noexcept {
  prng_ ^= prng_ << 13;
  prng_ ^= prng_ >> 7;
  prng_ ^= prng_ << 17;
  return static_cast<std::uint32_t>(prng_ >> 16);
}

void RawWsClient::frame_into_out(std::uint8_t opcode, ByteView payload) {
  if (out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
  }
  const std::size_t size = payload.size();
  out_.push_back(static_cast<std::uint8_t>(kFin | opcode));
  if (size < 126) {
    out_.push_back(static_cast<std::uint8_t>(0x80 | size));
  } else if (size <= 0xFFFF) {
    out_.push_back(0x80 | 126);
    out_.push_back(static_cast<std::uint8_t>(size >> 8));
    out_.push_back(static_cast<std::uint8_t>(size));
  } else {
    out_.push_back(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8) out_.push_back(static_cast<std::uint8_t>(std::uint64_t{size} >> shift));
  }
  std::uint8_t mask[4];
  const std::uint32_t key = next_mask();
  std::memcpy(mask, &key, sizeof mask);
  out_.insert(out_.end(), mask, mask + 4);
  const std::size_t start = out_.size();
  out_.resize(start + size);
  std::uint8_t* dst = out_.data() + start;
  // Eight bytes at a time: the 4-byte key repeats, so an 8-byte word of it lines up at any multiple of 8.
  std::uint64_t wide = 0;
  std::memcpy(&wide, mask, 4);
  std::memcpy(reinterpret_cast<std::uint8_t*>(&wide) + 4, mask, 4);
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, payload.data() + i, 8);
    word ^= wide;
    std::memcpy(dst + i, &word, 8);
  }
  for (; i < size; ++i) dst[i] = payload[i] ^ mask[i % 4];
}

Status RawWsClient::send(ByteView message) {
  frame_into_out(kOpBinary, message);
  return flush();
}

Status RawWsClient::flush() {
  while (out_sent_ < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::ok();
      return errno_status("send", errno);
    }
    out_sent_ += static_cast<std::size_t>(n);
  }
  out_.clear();
  out_sent_ = 0;
  return Status::ok();
}

Status RawWsClient::read_some() {
  if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
  if (in_.size() - in_end_ < kMinReadRoom && in_begin_ > 0) {
    std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
  if (in_.size() - in_end_ < kMinReadRoom) in_.resize(in_.size() * 2);  // a frame larger than the buffer
  for (;;) {
    const ssize_t n = ::recv(fd_, in_.data() + in_end_, in_.size() - in_end_, 0);
    if (n > 0) {
      in_end_ += static_cast<std::size_t>(n);
      return Status::ok();
    }
    if (n == 0) return Status(Code::kConnectionClosed, "the relay closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::ok();
    return errno_status("recv", errno);
  }
}

Result<std::optional<ByteView>> RawWsClient::next_message() {
  for (;;) {
    const std::size_t available = in_end_ - in_begin_;
    if (available < 2) return std::optional<ByteView>();
    const std::uint8_t* p = in_.data() + in_begin_;
    const std::uint8_t opcode = p[0] & 0x0F;
    std::size_t header = 2;
    std::uint64_t size = p[1] & 0x7F;
    if (size == 126) header = 4;
    if (size == 127) header = 10;
    if (available < header) return std::optional<ByteView>();
    if (size >= 126) {
      size = 0;
      for (std::size_t i = 2; i < header; ++i) size = size << 8 | p[i];
    }
    if ((p[1] & 0x80) != 0) return Status(Code::kInvalidMessage, "the relay sent a masked frame");
    if ((p[0] & 0x70) != 0) return Status(Code::kInvalidMessage, "the relay set a reserved bit");
    if ((p[0] & kFin) == 0 || opcode == 0) return Status(Code::kInvalidMessage, "the relay sent a fragmented message");
    if (size > kMaxMessageBytes) return Status(Code::kInvalidMessage, "the relay sent a frame over 64 MiB");
    if (available - header < size) return std::optional<ByteView>();  // read_some() grows the buffer
    const ByteView payload(p + header, static_cast<std::size_t>(size));
    in_begin_ += header + static_cast<std::size_t>(size);
    switch (opcode) {
      case kOpBinary:
        return std::optional<ByteView>(payload);
      case kOpPing:
        frame_into_out(kOpPong, payload);
        if (Status s = flush(); !s) return s;
        continue;
      case kOpPong:
        continue;
      case kOpClose:
        return Status(Code::kConnectionClosed, "the relay closed the WebSocket");
      case kOpText:
        return Status(Code::kInvalidMessage, "the relay sent a text frame");
      default:
        return Status(Code::kInvalidMessage, "the relay sent opcode " + std::to_string(opcode));
    }
  }
}

}  // namespace blindsync::bench
