#include "hub/device_name.h"

#include <cstdint>

namespace blindsync::relay {
namespace {

// Length of the valid UTF-8 sequence starting at text[i] and its code point, or 0 if invalid
// (Unicode 15, table 3-7 "Well-Formed UTF-8 Byte Sequences").
std::size_t decode_one(std::string_view text, std::size_t i, std::uint32_t& code_point) {
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[i + k]); };
  const std::uint8_t b0 = byte(0);
  const std::size_t left = text.size() - i;
  if (b0 < 0x80) {
    code_point = b0;
    return 1;
  }
  std::size_t length = 0;
  std::uint8_t low = 0x80;
  std::uint8_t high = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) low = 0xA0;   // no overlong forms
    if (b0 == 0xED) high = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) low = 0x90;   // no overlong forms
    if (b0 == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (left < length) return 0;
  if (byte(1) < low || byte(1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(k) < 0x80 || byte(k) > 0xBF) return 0;
  }
  std::uint32_t cp = b0 & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07);
  for (std::size_t k = 1; k < length; ++k) cp = (cp << 6) | (byte(k) & 0x3F);
  code_point = cp;
  return length;
}

bool is_control(std::uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

}  // namespace

std::string sanitize_device_name(std::string_view raw, std::size_t max_bytes) {
  std::string out;
  out.reserve(raw.size() < max_bytes ? raw.size() : max_bytes);
  std::size_t i = 0;
  while (i < raw.size()) {
    std::uint32_t cp = 0;
    const std::size_t length = decode_one(raw, i, cp);
    if (length == 0) {  // invalid byte: drop it and resynchronise on the next one
      ++i;
      continue;
    }
    if (!is_control(cp)) {
      if (out.size() + length > max_bytes) break;  // the next code point would not fit whole
      out.append(raw.substr(i, length));
    }
    i += length;
  }
  return out;
}

}  // namespace blindsync::relay
