// How `blindsync` writes received blobs and other results to stdout.
//
// Text mode, one line per blob:  <cursor>\t<sender hex prefix>\t<text or "<N bytes binary>">
// where the data is shown as text only if it is valid UTF-8 without control characters (so one
// blob is always one line). JSON mode, one object per line (JSON Lines):
//   {"cursor","blob_id","sender","timestamp","size","data_base64"}
// Every line is flushed at once: scripts and tests read it through a pipe.
// Thread-safety: writes to std::cout; call from one thread.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "blindsync/client/client.h"
#include "blindsync/core/bytes.h"

namespace blindsync::cli {

inline constexpr std::size_t kSenderPrefixHexChars = 12;

// True if bytes are well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF)
// and contain no C0/C1 control characters or DEL.
bool is_printable_text(ByteView bytes);

std::string blob_text_line(const ReceivedBlob& blob);
nlohmann::json blob_json(const ReceivedBlob& blob);

// Writes one received blob in the chosen mode, then flushes stdout.
void print_blob(const ReceivedBlob& blob, bool json);

// Writes one line (or one compact JSON object) to stdout and flushes.
void print_line(const std::string& line);
void print_json(const nlohmann::json& value);

// Informational message for a person: stderr, so stdout stays machine-readable.
void print_note(const std::string& message);

}  // namespace blindsync::cli
