#include "qr.h"

#include <memory>
#include <vector>

#include <qrencode.h>

namespace blindsync::cli {
namespace {

constexpr int kQuietZone = 2;
constexpr const char* kUpperHalf = "\u2580";
constexpr const char* kLowerHalf = "\u2584";
constexpr const char* kFullBlock = "\u2588";

struct QrDeleter {
  void operator()(QRcode* code) const noexcept { QRcode_free(code); }
};

}  // namespace

std::optional<std::string> render_qr(const std::string& text, bool colors) {
  std::unique_ptr<QRcode, QrDeleter> code(
      QRcode_encodeString(text.c_str(), 0, QR_ECLEVEL_L, QR_MODE_8, /*casesensitive=*/1));
  if (!code) return std::nullopt;

  const int width = code->width;
  const int size = width + 2 * kQuietZone;
  // light[y][x]: true outside the symbol (quiet zone) and for light modules.
  auto light = [&](int x, int y) {
    const int mx = x - kQuietZone;
    const int my = y - kQuietZone;
    if (mx < 0 || my < 0 || mx >= width || my >= width) return true;
    return (code->data[my * width + mx] & 1) == 0;
  };

  std::string out;
  for (int y = 0; y < size; y += 2) {
    if (colors) out += "\x1b[97;40m";
    for (int x = 0; x < size; ++x) {
      const bool top = light(x, y);
      const bool bottom = y + 1 < size ? light(x, y + 1) : false;
      if (top && bottom) {
        out += kFullBlock;
      } else if (top) {
        out += kUpperHalf;
      } else if (bottom) {
        out += kLowerHalf;
      } else {
        out += ' ';
      }
    }
    if (colors) out += "\x1b[0m";
    out += '\n';
  }
  return out;
}

}  // namespace blindsync::cli
