// When a client must forget its cursor for a relay (DESIGN.md "Durability").
//
// Each relay database has a random epoch, sent in WELCOME. A relay whose epoch changed since we
// last saw it, or whose max_cursor is below the cursor we hold (a database restored from an older
// backup), numbers its blobs differently now: our cursor would silently skip reused numbers. The
// client then re-pulls that relay from cursor 0 and drops blob ids it already delivered.
// Thread-safety: pure function.
#pragma once

#include <cstdint>

#include "blindsync/core/ids.h"
#include "blindsync/core/messages.h"

namespace blindsync::client_detail {

// known_epoch 0 means "never connected": any epoch is accepted then.
inline bool relay_was_reset(std::uint64_t known_epoch, Cursor our_cursor, const Welcome& welcome) {
  return (known_epoch != 0 && welcome.epoch != known_epoch) || welcome.max_cursor < our_cursor;
}

}  // namespace blindsync::client_detail
