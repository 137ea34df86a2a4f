// The server's side of the WebSocket opening handshake (RFC 6455 4.2), with no I/O: the checks
// on the upgrade request beyond Beast's websocket::is_upgrade, and the Sec-WebSocket-Accept value.
// net/ws_session.cpp reads the request and writes the 101 (or the refusal) with Beast's HTTP code.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace blindsync::relay::ws {

// The only protocol version (RFC 6455 4.4); a request for another one is answered 426 with it.
inline constexpr std::string_view kWebSocketVersion = "13";

// The Sec-WebSocket-Accept value for a request's Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
// nullopt when the key is not the base64 form of 16 bytes (RFC 6455 4.1: 24 characters).
std::optional<std::string> accept_key(std::string_view client_key);

}  // namespace blindsync::relay::ws
