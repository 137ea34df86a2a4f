// blindsync::Client: one device's view of its groups, over a local SQLite store.
//
// The store (one file per device home, 0600) holds the device identity, the groups it belongs to
// (with their secrets), a cursor per (group, relay), and the outbox of pushes not yet acked.
// Payloads are encrypted and signed inside the client: callers push bytes and receive bytes.
//
// This version is synchronous: each call connects as needed, does its work and returns. The
// group's session stays open for the next call for a while (20 s), so that a run of calls pays
// for one connect and handshake, not one each; it closes with the Client.
// Thread-safety: a Client is not thread-safe; use one per thread. Two processes may open the
// same home (SQLite serialises them).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blindsync/client/transport.h"
#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"

namespace blindsync {

struct ClientOptions {
  TransportFactory transport;  // required: how to reach relays (e.g. connect_websocket)
  std::chrono::milliseconds request_timeout{15'000};
};

struct DeviceIdentity {
  DeviceId device_id;
  std::string name;
};

struct GroupInfo {
  GroupId group_id;
  std::string name;
  std::string relay_url;
  RelayId relay_id;
  Cursor cursor = 0;  // last cursor handed to the app
  std::uint64_t epoch = 0;  // relay database epoch last seen (0 = never connected)
};

struct CreatedGroup {
  GroupInfo group;
  std::string invite_link;
};

struct PushOutcome {
  BlobId blob_id;
  Cursor cursor = 0;
  std::uint64_t timestamp_ms = 0;
  bool duplicate = false;
};

struct ReceivedBlob {
  Cursor cursor = 0;
  BlobId blob_id;
  DeviceId sender_id;
  std::uint64_t timestamp_ms = 0;
  Bytes data;  // decrypted
};

struct PullOptions {
  std::optional<Cursor> after;  // default: the stored cursor
};

struct WatchOptions {
  std::chrono::milliseconds duration{0};  // 0 = until should_stop() returns true
  std::function<bool()> should_stop;      // polled a few times per second; may be empty
};

struct ClientStatus {
  std::optional<DeviceIdentity> device;
  std::vector<GroupInfo> groups;
  std::uint64_t outbox_size = 0;
};

// Called for each blob in cursor order; the cursor is persisted after it returns.
using BlobHandler = std::function<void(const ReceivedBlob&)>;

class Client {
 public:
  // Opens or creates the store in home_dir (created 0700 if missing; store file 0600).
  static Result<std::unique_ptr<Client>> open(const std::string& home_dir, ClientOptions options);
  ~Client();

  // kAlreadyExists if this home already has an identity.
  Result<DeviceIdentity> create_identity(const std::string& name);
  std::optional<DeviceIdentity> identity() const;

  // Connects to the relay to learn (and pin) its relay_id, then stores the new group.
  Result<CreatedGroup> create_group(const std::string& relay_url, const std::string& name,
                                    std::chrono::seconds invite_valid_for = std::chrono::hours(24 * 7));
  // Stores the group from an invite link (kExpired, kInvalidArgument, kAlreadyExists).
  Result<GroupInfo> join_group(const std::string& invite_link);
  // A fresh invite link for a group this device belongs to.
  Result<std::string> invite_link(const GroupId& group,
                                  std::chrono::seconds valid_for = std::chrono::hours(24 * 7));
  std::vector<GroupInfo> groups() const;
  // By name or by id (hex); with an empty selector, the only group (kInvalidArgument if several).
  Result<GroupInfo> find_group(const std::string& name_or_id) const;

  // Encrypts data, writes it to the outbox, then sends the whole outbox of the group and waits
  // for this blob's PUSH_ACK. If sending fails the blob stays in the outbox and is retried (with
  // the same blob_id) by the next push/pull/flush.
  Result<PushOutcome> push(const GroupId& group, ByteView data, std::uint32_t ttl_seconds = 0);
  // Sends everything in the group's outbox; returns how many were acked.
  Result<std::size_t> flush_outbox(const GroupId& group);

  // Pulls every page after the cursor until has_more is false; decrypts and verifies each blob,
  // hands it to on_blob in cursor order and persists the cursor after each page.
  Status pull(const GroupId& group, const PullOptions& options, const BlobHandler& on_blob);
  // Catches up like pull(), then delivers blobs live (NOTIFY) until the watch ends.
  Status watch(const GroupId& group, const WatchOptions& options, const BlobHandler& on_blob);

  ClientStatus status() const;

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace blindsync
