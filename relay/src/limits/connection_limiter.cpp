#include "limits/connection_limiter.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace blindsync::relay {
namespace detail {

struct AddressCounts {
  std::mutex mutex;
  std::unordered_map<std::string, std::uint32_t> counts;

  void release(const std::string& key) noexcept {
    std::lock_guard lock(mutex);
    auto it = counts.find(key);
    if (it == counts.end()) return;
    if (--it->second == 0) counts.erase(it);
  }
};

}  // namespace detail

ConnectionSlot::ConnectionSlot(std::shared_ptr<detail::AddressCounts> counts, std::string key) noexcept
    : counts_(std::move(counts)), key_(std::move(key)) {}

ConnectionSlot::ConnectionSlot(ConnectionSlot&& other) noexcept
    : counts_(std::move(other.counts_)), key_(std::move(other.key_)) {}

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& other) noexcept {
  if (this != &other) {
    release();
    counts_ = std::move(other.counts_);
    key_ = std::move(other.key_);
  }
  return *this;
}

ConnectionSlot::~ConnectionSlot() { release(); }

void ConnectionSlot::release() noexcept {
  if (!counts_) return;
  counts_->release(key_);
  counts_.reset();
}

ConnectionLimiter::ConnectionLimiter(std::uint32_t max_per_ip)
    : max_per_ip_(max_per_ip), counts_(std::make_shared<detail::AddressCounts>()) {}

std::string ConnectionLimiter::address_key(std::string_view address) {
  std::string text(address);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (const auto percent = text.find('%'); percent != std::string::npos) text.resize(percent);  // zone id
  std::array<unsigned char, 16> bytes{};
  char buffer[INET6_ADDRSTRLEN] = {};
  if (::inet_pton(AF_INET, text.c_str(), bytes.data()) == 1) {
    ::inet_ntop(AF_INET, bytes.data(), buffer, sizeof buffer);
    return std::string("v4:") + buffer;
  }
  if (::inet_pton(AF_INET6, text.c_str(), bytes.data()) == 1) {
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes.data(), kMapped, sizeof kMapped) == 0) {
      ::inet_ntop(AF_INET, bytes.data() + 12, buffer, sizeof buffer);
      return std::string("v4:") + buffer;
    }
    std::fill(bytes.begin() + 8, bytes.end(), 0);  // one client usually holds a whole /64
    ::inet_ntop(AF_INET6, bytes.data(), buffer, sizeof buffer);
    return std::string("v6:") + buffer + "/64";
  }
  return "raw:" + text;
}

std::optional<ConnectionSlot> ConnectionLimiter::try_acquire(std::string_view address) {
  std::string key = address_key(address);
  std::lock_guard lock(counts_->mutex);
  std::uint32_t& count = counts_->counts[key];
  if (max_per_ip_ != 0 && count >= max_per_ip_) {
    return std::nullopt;  // count > 0 here, so the entry existed and stays meaningful
  }
  ++count;
  return ConnectionSlot(counts_, std::move(key));
}

std::size_t ConnectionLimiter::connections_from(std::string_view address) const {
  const std::string key = address_key(address);
  std::lock_guard lock(counts_->mutex);
  auto it = counts_->counts.find(key);
  return it == counts_->counts.end() ? 0 : it->second;
}

std::size_t ConnectionLimiter::tracked_addresses() const {
  std::lock_guard lock(counts_->mutex);
  return counts_->counts.size();
}

}  // namespace blindsync::relay
