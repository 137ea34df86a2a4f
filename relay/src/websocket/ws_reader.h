// FrameReader: turns the bytes a client sends into whole messages and control frames (RFC 6455
// 5.4, 5.5), with no I/O. net/ws_session.cpp reads from the socket into a buffer and hands it
// here; what comes back says what to do and how many bytes of the buffer that used.
//
// A message in one frame (what clients send) is handed back in place, unmasked inside the caller's
// buffer: no copy. Fragments are gathered here, bounded by max_message_bytes, which is checked on
// each frame's header before any of its payload is buffered. Control frames may come between
// fragments. Faults come back as the close code to send: 1002 (protocol, see ws_frame.h; a
// continuation without a message, a message inside a fragmented one), 1003 (a text message),
// 1009 (a message over the limit). After a fault the reader must not be used again.
//
// Thread-safety: none (one connection's strand).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "blindsync/core/bytes.h"
#include "websocket/ws_frame.h"

namespace blindsync::relay::ws {

struct ReadEvent {
  // kFragment: a fragment was gathered; drop its bytes and go on. kNeedMore: nothing consumed,
  // the front of the input is an incomplete frame.
  enum class Kind { kNeedMore, kFragment, kMessage, kPing, kPong, kClose, kFault };
  Kind kind = Kind::kNeedMore;
  // kMessage, kPing, kPong, kClose: valid until the next call or until the caller drops the
  // bytes it consumed, whichever comes first.
  std::span<const std::uint8_t> payload;
  std::size_t consumed = 0;  // bytes at the front of the input to drop once the event is handled
  std::size_t missing = 0;   // kNeedMore: payload bytes the frame at the front still lacks (0: its header)
  std::uint16_t close_code = 0;  // kFault
  std::string_view reason;       // kFault: for the close frame and the log
};

class FrameReader {
 public:
  explicit FrameReader(std::size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  // The next event from the front of `input` (a frame's payload is unmasked in place there).
  ReadEvent next(std::span<std::uint8_t> input);

  // True while a fragmented message is being gathered.
  bool in_message() const noexcept { return in_message_; }

 private:
  // The fault a data frame is refused with, from its header alone, or nullopt.
  std::optional<ReadEvent> refuse_data_frame(const FrameHeader& header) const;

  std::size_t max_message_bytes_;
  Bytes message_;  // the fragments of a message so far
  bool in_message_ = false;
  bool delivered_gathered_ = false;  // message_ was handed out by the last call: clear it first
};

}  // namespace blindsync::relay::ws
