// An in-memory relay for client tests: FakeNetwork maps URLs to FakeRelays and hands the Client
// a TransportFactory whose connections are FakeConnections.
//
// FakeRelay speaks protocol v1 with real frames (core codec) and real signatures (auth): it
// sends CHALLENGE, verifies HELLO, signs WELCOME, stores pushes (idempotent by blob_id), answers
// PULL in pages and notifies the other connections of a group. Knobs let a test break things:
// fail connects, drop a connection on PUSH, answer pushes with ERROR, change epoch, tamper with
// stored payloads. Everything runs synchronously on the test thread: send() computes the replies
// and queues them; receive() pops one or reports kTimeout at once (no sleeping, no clock).
//
// Thread-safety: none for factory() (tests of the synchronous Client are single-threaded).
// threaded_factory() is for clients with their own threads (AsyncClient): each connection then
// takes FakeNetwork::mu for every call, receive() waits on FakeNetwork::cv for a frame, and a test
// that reads or changes relays while clients run does so through FakeNetwork::with().
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "blindsync/auth/identity.h"
#include "blindsync/auth/transcript.h"
#include "blindsync/client/transport.h"
#include "blindsync/core/codec.h"
#include "blindsync/core/messages.h"

namespace blindsync::testing {

struct StoredBlob {
  BlobId blob_id;
  Cursor cursor = 0;
  DeviceId sender_id;
  std::uint64_t timestamp = 0;
  Bytes payload;
};

class FakeConnection;

class FakeRelay {
 public:
  FakeRelay() : key_(auth::SigningKey::generate()) {}

  RelayId relay_id() const { return RelayId(key_.public_key()); }

  // ---- knobs ----
  std::uint64_t epoch = 0x1234'5678;
  std::uint32_t page_size = 1000;        // clamp for PULL limit
  std::uint32_t max_pages = 8;           // clamp for PULL pages (1: a relay that predates them)
  bool advertise_page_size = false;      // WELCOME's max_pull_limit is page_size (else the default)
  int fail_connects = 0;                 // the next N connects fail with kIoError
  int drop_on_push = 0;                  // the next N PUSH frames drop the connection unanswered
  int drop_before_ack = 0;               // the next N new blobs are stored, then the connection drops
  std::optional<Code> push_error;        // answer every PUSH with this ERROR instead of storing it
  bool notify_before_ack = false;        // send a NOTIFY (of another blob) before each PUSH_ACK
  bool corrupt_welcome = false;          // flip a bit of relay_sig
  std::optional<Code> hello_error;       // refuse every HELLO with this ERROR, then close
  bool inline_notify_payload = true;     // NOTIFY carries the payload
  bool silent = false;                   // swallow PUSH and PULL without answering (a hung relay)
  // Answers a PULL instead of the relay when it returns true (for hostile replies).
  std::function<bool(FakeConnection&, std::uint32_t request_id, const Pull&)> pull_hook;

  // ---- observations ----
  int connects = 0;
  std::vector<BlobId> pushes_received;   // every PUSH, including retries and duplicates
  std::vector<Pull> pulls_received;
  std::map<DeviceId, std::vector<Pull>> pulls_by_device;
  std::vector<Cursor> acks_received;
  std::vector<Hello> hellos_received;

  std::map<GroupId, std::vector<StoredBlob>> blobs;

  Cursor max_cursor(const GroupId& group) const {
    auto it = blobs.find(group);
    return it == blobs.end() || it->second.empty() ? 0 : it->second.back().cursor;
  }

  // Stores a blob as if pushed by some device (assigns the next cursor). Notifies nobody.
  StoredBlob& store_blob(const GroupId& group, const BlobId& blob_id, const DeviceId& sender, Bytes payload) {
    auto& list = blobs[group];
    StoredBlob blob{blob_id, max_cursor(group) + 1, sender, 1'700'000'000'000ull + list.size(), std::move(payload)};
    list.push_back(std::move(blob));
    return list.back();
  }

  // Queues a NOTIFY for every open connection of the group except `except`.
  inline void notify_group(const GroupId& group, const StoredBlob& blob, const FakeConnection* except = nullptr);

  // Queues a raw frame on every open connection (e.g. a relay-initiated ERROR).
  inline void broadcast(const Frame& frame);

  // Closes every open connection, as a relay process that died would.
  inline void drop_connections();

  // A new database: new epoch, no blobs (the relay key stays).
  void replace_database(std::uint64_t new_epoch) {
    epoch = new_epoch;
    blobs.clear();
  }

  // How many stored blobs of the group carry this blob id (1 = stored exactly once).
  std::size_t copies_of(const GroupId& group, const BlobId& blob_id) const {
    auto it = blobs.find(group);
    if (it == blobs.end()) return 0;
    return static_cast<std::size_t>(std::count_if(it->second.begin(), it->second.end(),
                                                  [&](const StoredBlob& b) { return b.blob_id == blob_id; }));
  }

  const auth::SigningKey& key() const { return key_; }
  std::vector<FakeConnection*>& connections() { return connections_; }

 private:
  auth::SigningKey key_;
  std::vector<FakeConnection*> connections_;
};

class FakeConnection final : public Transport {
 public:
  explicit FakeConnection(std::shared_ptr<FakeRelay> relay) : relay_(std::move(relay)) {
    relay_->connections().push_back(this);
    relay_nonce_ = auth::random_id<Nonce>();
    Challenge challenge;
    challenge.relay_id = relay_->relay_id();
    challenge.relay_nonce = relay_nonce_;
    challenge.versions = {1};
    queue(Frame{0, challenge});
  }
  ~FakeConnection() override {
    auto& list = relay_->connections();
    list.erase(std::remove(list.begin(), list.end(), this), list.end());
  }

  Status send(ByteView bytes) override {
    if (closed_) return Status(Code::kConnectionClosed, "fake connection closed");
    auto frame = decode_frame(bytes);
    if (!frame) {
      close();
      return Status(Code::kConnectionClosed, "fake relay got a bad frame: " + frame.error().message());
    }
    handle(*frame);  // a drop it causes shows on the next receive(), as with a real socket
    return Status::ok();
  }

  Result<Bytes> receive(std::chrono::milliseconds) override {
    if (!inbox_.empty()) {
      Bytes next = std::move(inbox_.front());
      inbox_.pop_front();
      return next;
    }
    if (closed_) return Status(Code::kConnectionClosed, "fake relay closed the connection (code 1000)");
    return Status(Code::kTimeout, "nothing queued");
  }

  void close() override {
    closed_ = true;
    inbox_.clear();
  }

  bool active() const { return active_ && !closed_; }
  const GroupId& group_id() const { return group_id_; }
  void queue(const Frame& frame) { inbox_.push_back(encode_frame(frame)); }
  void queue_raw(Bytes bytes) { inbox_.push_back(std::move(bytes)); }

 private:
  void handle(const Frame& frame) {
    if (const auto* hello = std::get_if<Hello>(&frame.message)) return on_hello(frame.request_id, *hello);
    if (!active_) {
      queue(Frame{frame.request_id, Error{1006, "not active", frame.request_id}});
      close();
      return;
    }
    if (const auto* push = std::get_if<Push>(&frame.message)) return on_push(frame.request_id, *push);
    if (const auto* pull = std::get_if<Pull>(&frame.message)) return on_pull(frame.request_id, *pull);
    if (const auto* ack = std::get_if<Ack>(&frame.message)) {
      relay_->acks_received.push_back(ack->acked_cursor);
      return;
    }
    if (std::holds_alternative<Bye>(frame.message)) {
      close();
      return;
    }
  }

  void on_hello(std::uint32_t request_id, const Hello& hello) {
    relay_->hellos_received.push_back(hello);
    if (Status ok = auth::verify_hello(hello, relay_->relay_id(), relay_nonce_); !ok) {
      queue(Frame{request_id, Error{1002, ok.message(), request_id}});
      closed_ = true;  // the queued ERROR is still delivered, then the connection reads as closed
      return;
    }
    if (relay_->hello_error) {
      queue(Frame{request_id, Error{static_cast<std::uint16_t>(*relay_->hello_error), "device not admitted", request_id}});
      closed_ = true;
      return;
    }
    device_id_ = hello.device_id;
    group_id_ = hello.group_id;
    Welcome welcome;
    welcome.session_id = 7;
    welcome.epoch = relay_->epoch;
    welcome.max_cursor = relay_->max_cursor(group_id_);
    if (relay_->advertise_page_size) welcome.limits.max_pull_limit = relay_->page_size;
    welcome.relay_sig = auth::sign_welcome(
        auth::HandshakeInputs{relay_->relay_id(), relay_nonce_, hello.client_nonce, hello.device_id, hello.group_id},
        relay_->key());
    if (relay_->corrupt_welcome) welcome.relay_sig.mutable_bytes()[0] ^= 1;
    queue(Frame{request_id, welcome});
    active_ = true;
  }

  void on_push(std::uint32_t request_id, const Push& push) {
    relay_->pushes_received.push_back(push.blob_id);
    if (relay_->silent) return;
    if (relay_->drop_on_push > 0) {
      --relay_->drop_on_push;
      close();
      return;
    }
    if (relay_->push_error) {
      queue(Frame{request_id, Error{static_cast<std::uint16_t>(*relay_->push_error), "fake relay refuses", request_id}});
      return;
    }
    auto& list = relay_->blobs[group_id_];
    for (const auto& existing : list) {
      if (existing.blob_id == push.blob_id) {
        queue(Frame{request_id, PushAck{push.blob_id, existing.cursor, existing.timestamp, true}});
        return;
      }
    }
    const StoredBlob& stored = relay_->store_blob(group_id_, push.blob_id, device_id_, push.payload);
    if (relay_->drop_before_ack > 0) {
      --relay_->drop_before_ack;
      close();
      return;
    }
    if (relay_->notify_before_ack) {
      Notify unrelated;
      unrelated.blob_id = stored.blob_id;
      unrelated.cursor = stored.cursor;
      unrelated.sender_id = stored.sender_id;
      queue(Frame{0, unrelated});
    }
    queue(Frame{request_id, PushAck{stored.blob_id, stored.cursor, stored.timestamp, false}});
    relay_->notify_group(group_id_, stored, this);
  }

  void on_pull(std::uint32_t request_id, const Pull& pull) {
    relay_->pulls_received.push_back(pull);
    relay_->pulls_by_device[device_id_].push_back(pull);
    if (relay_->silent) return;
    if (relay_->pull_hook && relay_->pull_hook(*this, request_id, pull)) return;
    const std::uint32_t limit = std::min(pull.limit == 0 ? relay_->page_size : pull.limit, relay_->page_size);
    const std::uint32_t pages = std::clamp<std::uint32_t>(pull.pages, 1, std::max<std::uint32_t>(1, relay_->max_pages));
    Cursor after = pull.after_cursor;
    for (std::uint32_t page = 1; page <= pages; ++page) {
      PullResponse response;
      response.max_cursor = relay_->max_cursor(group_id_);
      for (const auto& blob : relay_->blobs[group_id_]) {
        if (blob.cursor <= after) continue;
        if (response.blobs.size() == limit) {
          response.has_more = true;
          break;
        }
        response.blobs.push_back(PulledBlob{blob.blob_id, blob.cursor, blob.sender_id, blob.timestamp, blob.payload});
      }
      response.continues = page < pages && response.has_more;
      queue(Frame{request_id, response});
      if (!response.continues) return;
      after = response.blobs.back().cursor;
    }
  }

  std::shared_ptr<FakeRelay> relay_;
  Nonce relay_nonce_;
  DeviceId device_id_;
  GroupId group_id_;
  std::deque<Bytes> inbox_;
  bool active_ = false;
  bool closed_ = false;
};

inline void FakeRelay::notify_group(const GroupId& group, const StoredBlob& blob, const FakeConnection* except) {
  for (auto* connection : connections_) {
    if (connection == except || !connection->active() || connection->group_id() != group) continue;
    Notify notify;
    notify.blob_id = blob.blob_id;
    notify.cursor = blob.cursor;
    notify.sender_id = blob.sender_id;
    notify.timestamp = blob.timestamp;
    notify.size = static_cast<std::uint32_t>(blob.payload.size());
    if (inline_notify_payload) notify.payload = blob.payload;
    connection->queue(Frame{0, notify});
  }
}

inline void FakeRelay::drop_connections() {
  for (auto* connection : connections_) connection->close();
}

inline void FakeRelay::broadcast(const Frame& frame) {
  for (auto* connection : connections_) {
    if (connection->active()) connection->queue(frame);
  }
}

// URL -> relay. factory() is what ClientOptions.transport gets; threaded_factory() what an
// AsyncClient gets.
class FakeNetwork {
 public:
  std::map<std::string, std::shared_ptr<FakeRelay>> relays;
  std::vector<std::string> dialed;

  // Threaded mode: guards every relay and connection; cv wakes receivers after any change.
  std::mutex mu;
  std::condition_variable cv;

  std::shared_ptr<FakeRelay> add(const std::string& url) {
    auto relay = std::make_shared<FakeRelay>();
    relays[url] = relay;
    return relay;
  }

  // Runs fn under the network lock, then wakes every waiting receiver (fn may have queued frames).
  template <typename F>
  auto with(F&& fn) -> decltype(fn()) {
    struct Wake {
      std::condition_variable& cv;
      ~Wake() { cv.notify_all(); }
    } wake{cv};
    std::lock_guard lock(mu);
    return fn();
  }

  TransportFactory factory() {
    return [this](const std::string& url, const TransportOptions&) -> Result<std::unique_ptr<Transport>> {
      return dial(url);
    };
  }

  inline TransportFactory threaded_factory();

  Result<std::unique_ptr<Transport>> dial(const std::string& url) {
    dialed.push_back(url);
    auto it = relays.find(url);
    if (it == relays.end()) return Status(Code::kIoError, "no fake relay at " + url);
    auto& relay = it->second;
    ++relay->connects;
    if (relay->fail_connects > 0) {
      --relay->fail_connects;
      return Status(Code::kIoError, "connection refused (fake)");
    }
    return std::unique_ptr<Transport>(std::make_unique<FakeConnection>(relay));
  }
};

// A FakeConnection used from several threads: every call holds the network's mutex; receive()
// waits on its condition variable (with the caller's timeout) instead of failing at once.
class LockedConnection final : public Transport {
 public:
  LockedConnection(FakeNetwork& network, std::unique_ptr<Transport> inner)
      : network_(network), inner_(std::move(inner)) {}
  ~LockedConnection() override {
    std::lock_guard lock(network_.mu);
    inner_.reset();
  }

  Status send(ByteView frame) override {
    Status status;
    {
      std::lock_guard lock(network_.mu);
      status = inner_->send(frame);
    }
    network_.cv.notify_all();  // the relay may have queued frames on any connection
    return status;
  }

  Result<Bytes> receive(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(network_.mu);
    for (;;) {
      auto next = inner_->receive(std::chrono::milliseconds(0));
      if (next || next.error().code() != Code::kTimeout) return next;
      if (network_.cv.wait_until(lock, deadline) == std::cv_status::timeout) {
        return inner_->receive(std::chrono::milliseconds(0));
      }
    }
  }

  void close() override {
    {
      std::lock_guard lock(network_.mu);
      inner_->close();
    }
    network_.cv.notify_all();
  }

 private:
  FakeNetwork& network_;
  std::unique_ptr<Transport> inner_;
};

inline TransportFactory FakeNetwork::threaded_factory() {
  return [this](const std::string& url, const TransportOptions&) -> Result<std::unique_ptr<Transport>> {
    std::lock_guard lock(mu);
    auto inner = dial(url);
    if (!inner) return inner.error();
    return std::unique_ptr<Transport>(std::make_unique<LockedConnection>(*this, std::move(*inner)));
  };
}

}  // namespace blindsync::testing
