// Terminal QR codes for invite links (libqrencode), drawn with UTF-8 half blocks: one text row
// holds two module rows, so the code stays roughly square in a terminal.
// Thread-safety: pure function.
#pragma once

#include <optional>
#include <string>

namespace blindsync::cli {

// The QR code of text as lines of half-block characters (light modules drawn as blocks, with a
// quiet zone). With colors, each line forces white-on-black so that the code also scans on
// light terminal themes. nullopt if the text does not fit in a QR code.
std::optional<std::string> render_qr(const std::string& text, bool colors);

}  // namespace blindsync::cli
