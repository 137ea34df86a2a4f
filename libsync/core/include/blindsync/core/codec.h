// MessagePack codec for protocol v1 frames.
//
// Decoding is strict and never throws: wrong types, missing fields, over-long strings/binaries,
// arrays longer than allowed, trailing bytes and unknown message types all yield a Status
// (kInvalidMessage; kUnsupportedVersion for a version other than 1). The frame size limit is
// checked before anything is parsed, and msgpack's own unpack limits are always set explicitly.
// Unknown map keys are ignored so that v1 can grow optional fields.
//
// Thread-safety: free functions, no shared state.
#pragma once

#include <cstddef>

#include "blindsync/core/bytes.h"
#include "blindsync/core/limits.h"
#include "blindsync/core/messages.h"
#include "blindsync/core/status.h"

namespace blindsync {

struct DecodeLimits {
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;
  std::size_t max_payload_bytes = kDefaultMaxBlobBytes;  // any single bin field
  std::size_t max_string_bytes = kMaxStringBytes;        // any single str field
  std::size_t max_array_items = kMaxArrayItems;          // any single array
};

Bytes encode_frame(const Frame& frame);
Result<Frame> decode_frame(ByteView bytes, const DecodeLimits& limits = {});

// Cheap peek at [version, type, request_id] without decoding the body (for error replies to
// frames whose body is bad). Returns kInvalidMessage if even the header is unreadable.
struct FrameHeader {
  std::uint32_t version = 0;
  std::uint8_t type = 0;
  std::uint32_t request_id = 0;
};
Result<FrameHeader> peek_frame_header(ByteView bytes, const DecodeLimits& limits = {});

}  // namespace blindsync
