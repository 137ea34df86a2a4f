// Strict UTF-8 validation: the one validator for every text the library decodes or accepts
// (msgpack str fields, invite group names) and for apps that check their own text.
#pragma once

#include <string_view>

namespace blindsync {

// True when text is well-formed UTF-8 (Unicode table 3-7): no overlong forms, no surrogates,
// nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace blindsync
