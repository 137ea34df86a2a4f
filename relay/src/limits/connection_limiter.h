// ConnectionLimiter: at most max_per_ip concurrent connections from one client address.
//
// The net layer asks for a slot right after accept(), before it reads a byte; a connection that
// gets none is closed at once. The slot is an RAII ticket released when the connection ends, so a
// freed slot is reused. IPv6 clients usually own a whole /64, so IPv6 addresses count per /64
// prefix (an IPv4-mapped IPv6 address counts as its IPv4 address); anything unparsable counts
// under its own text.
//
// Memory: one entry per address with at least one live connection (an entry is erased when its
// count returns to 0), so it is bounded by the number of open connections.
// Ownership: slots share the counters with the limiter, so a slot may outlive the limiter.
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace blindsync::relay {

namespace detail {
struct AddressCounts;
}

class ConnectionSlot {
 public:
  ConnectionSlot(std::shared_ptr<detail::AddressCounts> counts, std::string key) noexcept;
  ConnectionSlot(ConnectionSlot&& other) noexcept;
  ConnectionSlot& operator=(ConnectionSlot&& other) noexcept;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot();

  // Gives the slot back now (the destructor does it otherwise). Idempotent.
  void release() noexcept;

 private:
  std::shared_ptr<detail::AddressCounts> counts_;
  std::string key_;
};

class ConnectionLimiter {
 public:
  // max_per_ip 0 = no limit (slots are still counted).
  explicit ConnectionLimiter(std::uint32_t max_per_ip);

  // A slot for one more connection from `address` (an IP literal, without port or brackets), or
  // nullopt when that address already has max_per_ip connections.
  std::optional<ConnectionSlot> try_acquire(std::string_view address);

  // Connections counted now from this address (after normalisation), and addresses tracked.
  std::size_t connections_from(std::string_view address) const;
  std::size_t tracked_addresses() const;

  // The key an address counts under ("v4:1.2.3.4", "v6:2001:db8:0:1::/64", or the text itself).
  static std::string address_key(std::string_view address);

 private:
  const std::uint32_t max_per_ip_;
  std::shared_ptr<detail::AddressCounts> counts_;
};

}  // namespace blindsync::relay
