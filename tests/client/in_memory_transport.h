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
// Thread-safety: none (tests are single-threaded).
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
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
  int fail_connects = 0;                 // the next N connects fail with kIoError
  int drop_on_push = 0;                  // the next N PUSH frames drop the connection unanswered
  int drop_before_ack = 0;               // the next N new blobs are stored, then the connection drops
  std::optional<Code> push_error;        // answer every PUSH with this ERROR instead of storing it
  bool notify_before_ack = false;        // send a NOTIFY (of another blob) before each PUSH_ACK
  bool corrupt_welcome = false;          // flip a bit of relay_sig
  std::optional<Code> hello_error;       // refuse every HELLO with this ERROR, then close
  bool inline_notify_payload = true;     // NOTIFY carries the payload
  // Answers a PULL instead of the relay when it returns true (for hostile replies).
  std::function<bool(FakeConnection&, std::uint32_t request_id, const Pull&)> pull_hook;

  // ---- observations ----
  int connects = 0;
  std::vector<BlobId> pushes_received;   // every PUSH, including retries and duplicates
  std::vector<Pull> pulls_received;
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
    welcome.relay_sig = auth::sign_welcome(
        auth::HandshakeInputs{relay_->relay_id(), relay_nonce_, hello.client_nonce, hello.device_id, hello.group_id},
        relay_->key());
    if (relay_->corrupt_welcome) welcome.relay_sig.mutable_bytes()[0] ^= 1;
    queue(Frame{request_id, welcome});
    active_ = true;
  }

  void on_push(std::uint32_t request_id, const Push& push) {
    relay_->pushes_received.push_back(push.blob_id);
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
    if (relay_->pull_hook && relay_->pull_hook(*this, request_id, pull)) return;
    const std::uint32_t limit = std::min(pull.limit == 0 ? relay_->page_size : pull.limit, relay_->page_size);
    PullResponse response;
    response.max_cursor = relay_->max_cursor(group_id_);
    for (const auto& blob : relay_->blobs[group_id_]) {
      if (blob.cursor <= pull.after_cursor) continue;
      if (response.blobs.size() == limit) {
        response.has_more = true;
        break;
      }
      response.blobs.push_back(PulledBlob{blob.blob_id, blob.cursor, blob.sender_id, blob.timestamp, blob.payload});
    }
    queue(Frame{request_id, response});
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

inline void FakeRelay::broadcast(const Frame& frame) {
  for (auto* connection : connections_) {
    if (connection->active()) connection->queue(frame);
  }
}

// URL -> relay. factory() is what ClientOptions.transport gets.
class FakeNetwork {
 public:
  std::map<std::string, std::shared_ptr<FakeRelay>> relays;
  std::vector<std::string> dialed;

  std::shared_ptr<FakeRelay> add(const std::string& url) {
    auto relay = std::make_shared<FakeRelay>();
    relays[url] = relay;
    return relay;
  }

  TransportFactory factory() {
    return [this](const std::string& url, const TransportOptions&) -> Result<std::unique_ptr<Transport>> {
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
    };
  }
};

}  // namespace blindsync::testing
