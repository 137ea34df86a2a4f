// Transport: how a Client exchanges frames with one relay. One instance = one connection.
// transport_ws implements it over WebSocket; tests may use an in-memory one.
//
// All calls block the calling thread up to their timeout. Thread-safety: send() and receive()
// may be called from two different threads at once (one sender, one receiver); close() from any.
#pragma once

#include <chrono>
#include <memory>
#include <functional>
#include <string>

#include "blindsync/core/bytes.h"
#include "blindsync/core/status.h"

namespace blindsync {

class Transport {
 public:
  virtual ~Transport() = default;

  // Sends one binary message.
  virtual Status send(ByteView frame) = 0;
  // Waits for the next binary message. kTimeout if none arrives in time (the connection stays
  // usable); kConnectionClosed once the peer has closed.
  virtual Result<Bytes> receive(std::chrono::milliseconds timeout) = 0;
  // Closes the connection (idempotent). Unblocks a pending receive().
  virtual void close() = 0;
};

struct TransportOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::size_t max_message_bytes = 2 * 1024 * 1024;
  // wss:// only. Empty: the relay's certificate must chain to a system CA and match the host.
  // Otherwise the SHA-256 of the relay's leaf certificate (DER), 64 hex digits, colons allowed
  // ("AB:CD:..." as `openssl x509 -fingerprint -sha256` prints it): exactly that certificate is
  // accepted, whoever issued it (a self-signed relay), and any other is refused.
  std::string pinned_cert_sha256;
};

// Connects to a relay URL (ws://host:port/path). Implemented by transport_ws.
using TransportFactory =
    std::function<Result<std::unique_ptr<Transport>>(const std::string& url, const TransportOptions& options)>;

}  // namespace blindsync
