// NoteOp: one edit of one note, as it travels (encrypted by blindsync) between devices.
//
// Encoding, version 1: a UTF-8 JSON object
//   {"app":"blindsync-notes","v":1,"op":"put","id":"<note id>","title":"...","body":"...",
//    "hlc":[<wall_ms>,<counter>,"<device id hex>"]}
// "op" is "put" (the whole note: last writer wins per note, so an op carries its full state) or
// "delete" (a tombstone: no title or body). Unknown fields are ignored, so a later version 1 writer
// may add some; a different "v" is refused. The relay never sees any of this: blindsync encrypts
// the payload on the device and only the group's devices can open it.
//
// decode_note_op treats its input as hostile (another group member may run a buggy or different
// app): every field is type- and size-checked, and anything wrong is a kInvalidArgument /
// kUnsupportedVersion Status with a clear message. It never throws.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "blindsync/core/bytes.h"
#include "blindsync/core/status.h"
#include "hlc.h"

namespace notes {

inline constexpr std::uint32_t kNoteOpVersion = 1;
inline constexpr const char* kNoteOpApp = "blindsync-notes";
// Bounds (bytes, UTF-8): checked on encode and decode.
inline constexpr std::size_t kMaxNoteIdBytes = 128;
inline constexpr std::size_t kMaxTitleBytes = 1024;
inline constexpr std::size_t kMaxBodyBytes = 256 * 1024;
inline constexpr std::size_t kMaxNoteOpBytes = 512 * 1024;  // below the relay's 1 MiB blob limit
// Wall clock values above this (year ~2255) are refused: a JSON number, and no sane clock.
inline constexpr std::uint64_t kMaxWallMs = 1ull << 53;

enum class OpKind { kPut, kDelete };

struct NoteOp {
  OpKind kind = OpKind::kPut;
  std::string note_id;
  std::string title;  // empty for kDelete
  std::string body;   // empty for kDelete
  Hlc hlc;
};

// kInvalidArgument if a field is out of bounds or not valid UTF-8.
blindsync::Result<std::string> encode_note_op(const NoteOp& op);
blindsync::Result<NoteOp> decode_note_op(blindsync::ByteView payload);

// The checks encode and decode share (usable before an edit is stored): a note id is 1..128
// bytes of UTF-8 without control characters.
blindsync::Status check_note_id(const std::string& note_id);
blindsync::Status check_note_text(const std::string& title, const std::string& body);
bool is_device_hex(const std::string& text);

}  // namespace notes
