#include "websocket/ws_reader.h"

namespace blindsync::relay::ws {
namespace {

ReadEvent fault(std::uint16_t code, std::string_view reason) {
  ReadEvent event;
  event.kind = ReadEvent::Kind::kFault;
  event.close_code = code;
  event.reason = reason;
  return event;
}

}  // namespace

std::optional<ReadEvent> FrameReader::refuse_data_frame(const FrameHeader& header) const {
  const bool continuation = header.opcode == Opcode::kContinuation;
  if (continuation && !in_message_) return fault(kCloseProtocolError, "continuation without a message");
  if (!continuation && in_message_) return fault(kCloseProtocolError, "message inside a fragmented one");
  if (header.opcode == Opcode::kText) return fault(kCloseUnsupportedData, "binary messages only");
  // The limit caps the whole message, checked before a byte of this frame is buffered.
  if (header.payload_size > max_message_bytes_ - message_.size()) return fault(kCloseMessageTooBig, "message too big");
  return std::nullopt;
}

ReadEvent FrameReader::next(std::span<std::uint8_t> input) {
  if (delivered_gathered_) {
    delivered_gathered_ = false;
    message_ = {};
  }
  const HeaderParse parse = parse_client_header(input);
  if (parse.outcome == HeaderParse::Outcome::kNeedMore) return ReadEvent{};
  if (parse.outcome == HeaderParse::Outcome::kProtocolError) return fault(kCloseProtocolError, parse.error);
  const FrameHeader& header = parse.header;
  if (!is_control(header.opcode)) {
    if (std::optional<ReadEvent> refusal = refuse_data_frame(header)) return *refusal;
  }
  const std::size_t available = input.size() - header.header_size;
  if (available < header.payload_size) {
    ReadEvent more;
    more.missing = static_cast<std::size_t>(header.payload_size - available);
    return more;
  }
  const auto payload = input.subspan(header.header_size, static_cast<std::size_t>(header.payload_size));
  unmask(payload, header.mask, 0);

  ReadEvent event;
  event.consumed = header.header_size + payload.size();
  event.payload = payload;
  switch (header.opcode) {
    case Opcode::kPing:
      event.kind = ReadEvent::Kind::kPing;
      return event;
    case Opcode::kPong:
      event.kind = ReadEvent::Kind::kPong;
      return event;
    case Opcode::kClose:
      event.kind = ReadEvent::Kind::kClose;
      return event;
    default:
      break;
  }
  if (header.fin && !in_message_) {  // one frame, one message: handed back in place
    event.kind = ReadEvent::Kind::kMessage;
    return event;
  }
  in_message_ = true;
  message_.insert(message_.end(), payload.begin(), payload.end());
  if (!header.fin) {
    event.kind = ReadEvent::Kind::kFragment;
    event.payload = {};
    return event;
  }
  in_message_ = false;
  delivered_gathered_ = true;
  event.kind = ReadEvent::Kind::kMessage;
  event.payload = message_;
  return event;
}

}  // namespace blindsync::relay::ws
