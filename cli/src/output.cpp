#include "output.h"

#include <cstdint>
#include <iostream>

namespace blindsync::cli {
namespace {

// Decodes one UTF-8 sequence at bytes[i]; returns its length, or 0 if it is malformed.
std::size_t utf8_sequence(ByteView bytes, std::size_t i, std::uint32_t& code_point) {
  const std::uint8_t lead = bytes[i];
  std::size_t length = 0;
  std::uint32_t min_value = 0;
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  } else if ((lead & 0xE0) == 0xC0) {
    length = 2, code_point = lead & 0x1F, min_value = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, code_point = lead & 0x0F, min_value = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, code_point = lead & 0x07, min_value = 0x10000;
  } else {
    return 0;
  }
  if (i + length > bytes.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    const std::uint8_t next = bytes[i + k];
    if ((next & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (next & 0x3F);
  }
  if (code_point < min_value) return 0;                           // overlong
  if (code_point > 0x10FFFF) return 0;                            // out of range
  if (code_point >= 0xD800 && code_point <= 0xDFFF) return 0;     // surrogate
  return length;
}

}  // namespace

bool is_printable_text(ByteView bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    std::uint32_t code_point = 0;
    const std::size_t length = utf8_sequence(bytes, i, code_point);
    if (length == 0) return false;
    if (code_point < 0x20 || code_point == 0x7F) return false;       // C0 controls, DEL
    if (code_point >= 0x80 && code_point <= 0x9F) return false;      // C1 controls
    i += length;
  }
  return true;
}

std::string blob_text_line(const ReceivedBlob& blob) {
  std::string line = std::to_string(blob.cursor);
  line += '\t';
  line += blob.sender_id.to_hex().substr(0, kSenderPrefixHexChars);
  line += '\t';
  if (is_printable_text(blob.data)) {
    line += as_chars(blob.data);
  } else {
    line += "<" + std::to_string(blob.data.size()) + " bytes binary>";
  }
  return line;
}

nlohmann::json blob_json(const ReceivedBlob& blob) {
  return nlohmann::json{
      {"cursor", blob.cursor},
      {"blob_id", blob.blob_id.to_hex()},
      {"sender", blob.sender_id.to_hex()},
      {"timestamp", blob.timestamp_ms},
      {"size", blob.data.size()},
      {"data_base64", to_base64(blob.data)},
  };
}

void print_blob(const ReceivedBlob& blob, bool json) {
  if (json) {
    print_json(blob_json(blob));
  } else {
    print_line(blob_text_line(blob));
  }
}

void print_line(const std::string& line) { std::cout << line << '\n' << std::flush; }

void print_json(const nlohmann::json& value) {
  // Replace, not throw, on invalid UTF-8 in names: output must never abort a command.
  print_line(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void print_note(const std::string& message) { std::cerr << message << std::endl; }

}  // namespace blindsync::cli
