// WebSocket client transport (Boost.Beast underneath, hidden in the .cpp).
// Accepts ws:// URLs of the form ws://host:port/path.
#pragma once

#include <memory>
#include <string>

#include "blindsync/client/transport.h"

namespace blindsync {

Result<std::unique_ptr<Transport>> connect_websocket(const std::string& url, const TransportOptions& options = {});

}  // namespace blindsync
