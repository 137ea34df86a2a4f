// Error reporting of the C API: bs_error filling, code names, strings the API hands out.
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "c_api_internal.h"

namespace blindsync::capi {

void copy_truncated(char* dst, std::size_t capacity, std::string_view text) noexcept {
  if (dst == nullptr || capacity == 0) return;
  std::size_t n = text.size() < capacity - 1 ? text.size() : capacity - 1;
  if (n < text.size()) {
    // Do not leave half a UTF-8 character: back up over continuation bytes (10xxxxxx).
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  }
  std::memcpy(dst, text.data(), n);
  dst[n] = '\0';
}

int set_error(bs_error* err, int code, std::string_view message) noexcept {
  if (err != nullptr) {
    err->code = code;
    copy_truncated(err->message, sizeof(err->message), message);
  }
  return code;
}

int set_error(bs_error* err, const Status& status) noexcept {
  return set_error(err, static_cast<int>(status.code()), status.message());
}

int set_ok(bs_error* err) noexcept { return set_error(err, BS_OK, ""); }

char* dup_string(std::string_view text) noexcept {
  auto* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out == nullptr) return nullptr;
  std::memcpy(out, text.data(), text.size());
  out[text.size()] = '\0';
  return out;
}

}  // namespace blindsync::capi

extern "C" {

const char* bs_code_name(int code) {
  switch (code) {
    case BS_ERR_OUT_OF_MEMORY:
      return "OUT_OF_MEMORY";
    case BS_ERR_UNEXPECTED:
      return "UNEXPECTED";
    default:
      break;
  }
  if (code < 0 || code > 0xFFFF) return "UNKNOWN";
  // code_name returns views of string literals: NUL-terminated, static.
  return blindsync::code_name(static_cast<blindsync::Code>(code)).data();
}

const char* bs_version(void) { return BLINDSYNC_C_VERSION; }

void bs_string_free(char* text) { std::free(text); }

}  // extern "C"
