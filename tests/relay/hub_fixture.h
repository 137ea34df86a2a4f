// Shared helpers for tests that drive the Hub directly: a fake in-memory Connection, a device of
// a group with real Ed25519 keys (the group key is a plain auth::SigningKey: its public key is the
// group_id, all the relay ever sees), and a fixture owning a Hub over a real SQLite store in a
// fresh temporary directory (store_fixture.h: TempDir, ids, open_test_store).
// Thread-safety: FakeConnection is thread-safe (store completions send from the writer thread);
// the rest is used by one test thread.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "blindsync/auth/identity.h"
#include "blindsync/auth/transcript.h"
#include "blindsync/core/codec.h"
#include "blindsync/core/messages.h"
#include "hub/connection.h"
#include "hub/hub.h"
#include "store/store.h"
#include "store_fixture.h"

namespace blindsync::relay::test {

namespace fs = std::filesystem;

inline constexpr auto kHangGuard = std::chrono::seconds(30);  // never a timing assertion

class FakeConnection final : public Connection {
 public:
  explicit FakeConnection(std::string address = "198.51.100.7:5555") : address_(std::move(address)) {}

  void send(Bytes frame) override {
    std::lock_guard lock(mutex_);
    frames_.push_back(std::move(frame));
    changed_.notify_all();
  }
  void close(std::uint16_t code, std::string_view) override {
    std::lock_guard lock(mutex_);
    if (!close_code_) close_code_ = code;
    changed_.notify_all();
  }
  std::string remote_address() const override { return address_; }
  bool congested() const override { return congested_.load(); }
  void set_congested(bool value) { congested_.store(value); }

  // Kept until a test waits for frames, which then runs it on its own thread, as the net layer
  // runs it on the connection's strand: after the frames sent before, never inside the hub's call.
  void defer(std::function<void()> work) override {
    std::lock_guard lock(mutex_);
    deferred_.push_back(std::move(work));
    changed_.notify_all();
  }

  // Runs deferred work (the next pages of a PULL) until n frames were sent, or it waits in vain.
  bool wait_for_frames(std::size_t n) {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!changed_.wait_for(lock, kHangGuard, [&] { return frames_.size() >= n || !deferred_.empty(); })) return false;
      if (frames_.size() >= n) return true;
      std::function<void()> work = std::move(deferred_.front());
      deferred_.pop_front();
      lock.unlock();
      work();
      lock.lock();
    }
  }
  std::size_t frame_count() {
    std::lock_guard lock(mutex_);
    return frames_.size();
  }
  Frame frame(std::size_t i) {
    REQUIRE(wait_for_frames(i + 1));
    Bytes bytes;
    {
      std::lock_guard lock(mutex_);
      bytes = frames_[i];
    }
    auto decoded = decode_frame(bytes);
    REQUIRE(decoded.has_value());
    return std::move(decoded).value();
  }
  // Frame i exactly as sent (to check encoded sizes).
  Bytes raw(std::size_t i) {
    REQUIRE(wait_for_frames(i + 1));
    std::lock_guard lock(mutex_);
    return frames_[i];
  }
  Frame last_frame() {
    const std::size_t n = frame_count();
    REQUIRE(n > 0);
    return frame(n - 1);
  }
  std::optional<std::uint16_t> close_code() {
    std::lock_guard lock(mutex_);
    return close_code_;
  }

 private:
  const std::string address_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Bytes> frames_;
  std::deque<std::function<void()>> deferred_;
  std::optional<std::uint16_t> close_code_;
  std::atomic<bool> congested_{false};
};

template <typename T>
const T& as(const Frame& frame) {
  INFO("frame type " << message_type_name(frame.type()));
  REQUIRE(std::holds_alternative<T>(frame.message));
  return std::get<T>(frame.message);
}

inline Bytes encode(std::uint32_t request_id, Message message) {
  return encode_frame(Frame{request_id, std::move(message)});
}

inline std::shared_ptr<auth::SigningKey> new_group() {
  return std::make_shared<auth::SigningKey>(auth::SigningKey::generate());
}

// A device of a group, with its connection to the hub.
struct Device {
  auth::SigningKey key = auth::SigningKey::generate();
  std::shared_ptr<auth::SigningKey> group;
  std::shared_ptr<FakeConnection> conn;
  std::uint32_t next_request_id = 100;

  explicit Device(std::shared_ptr<auth::SigningKey> g, std::string address = "198.51.100.7:5555")
      : group(std::move(g)), conn(std::make_shared<FakeConnection>(std::move(address))) {}
  DeviceId device_id() const { return DeviceId(key.public_key()); }
  GroupId group_id() const { return GroupId(group->public_key()); }
  // A fresh connection for the same device (a reconnect).
  void reconnect() { conn = std::make_shared<FakeConnection>(conn->remote_address()); }
};

struct HubFixture {
  TempDir dir;
  std::unique_ptr<Hub> hub;

  explicit HubFixture(HubOptions options = {}, StoreOptions store_options = {}) {
    hub = std::make_unique<Hub>(std::move(options), open_test_store(dir, store_options), auth::SigningKey::generate());
  }

  Challenge open(Device& d) {
    hub->on_open(d.conn);
    return as<Challenge>(d.conn->frame(0));
  }

  Hello hello_for(Device& d, const Challenge& challenge, Cursor last_cursor = 0, std::string token = {}) {
    Hello hello;
    hello.device_name = "device";
    hello.last_cursor = last_cursor;
    hello.access_token = std::move(token);
    hello.client_nonce = auth::random_id<Nonce>();
    auth::sign_hello(hello, challenge.relay_id, challenge.relay_nonce, d.key, *d.group);
    return hello;
  }

  // Opens and sends a HELLO; returns the hub's answer (WELCOME or ERROR).
  Frame try_join(Device& d, Cursor last_cursor = 0, std::string token = {}) {
    const Challenge challenge = open(d);
    hub->on_frame(d.conn, encode(1, hello_for(d, challenge, last_cursor, std::move(token))));
    return d.conn->frame(1);
  }

  Welcome join(Device& d, Cursor last_cursor = 0, std::string token = {}) {
    const Frame f = try_join(d, last_cursor, std::move(token));
    const Welcome welcome = as<Welcome>(f);
    REQUIRE_FALSE(d.conn->close_code().has_value());
    return welcome;
  }

  // Sends a frame and returns the hub's reply to it (the next frame with that request id).
  Frame request(Device& d, Message message) {
    const std::uint32_t rid = d.next_request_id++;
    const std::size_t before = d.conn->frame_count();
    hub->on_frame(d.conn, encode(rid, std::move(message)));
    for (std::size_t i = before;; ++i) {
      const Frame f = d.conn->frame(i);  // REQUIREs that it arrives
      if (f.request_id == rid) return f;
    }
  }

  Frame push(Device& d, std::uint32_t n, std::size_t size = 8, std::uint32_t ttl = 0) {
    return request(d, Push{blob_n(n), Bytes(size, static_cast<std::uint8_t>(n)), ttl});
  }

  PullResponse pull(Device& d, Cursor after = 0, std::uint32_t limit = 0) {
    return as<PullResponse>(request(d, Pull{after, limit}));
  }
};

// Polls `condition` every 10 ms until it holds or the hang guard expires.
inline bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

}  // namespace blindsync::relay::test
