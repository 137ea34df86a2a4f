// Device names as the relay keeps them: what HELLO carried, made safe to store and show.
//
// A HELLO's device_name is client-chosen text. The relay keeps at most kMaxDeviceNameBytes bytes of
// it, truncated at a code point boundary (never in the middle of a UTF-8 sequence), after dropping
// byte sequences that are not valid UTF-8 (overlong forms, surrogates, > U+10FFFF, stray
// continuation bytes) and control characters (C0, DEL, C1), which have no place in a name and
// could forge lines in logs or terminals.
//
// Thread-safety: pure function.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "blindsync/core/limits.h"

namespace blindsync::relay {

std::string sanitize_device_name(std::string_view raw, std::size_t max_bytes = kMaxDeviceNameBytes);

}  // namespace blindsync::relay
