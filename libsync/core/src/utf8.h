// Private: strict UTF-8 validation for str fields (MessagePack str is UTF-8 by definition).
#pragma once

#include <string_view>

namespace blindsync::detail {

// True when text is well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace blindsync::detail
