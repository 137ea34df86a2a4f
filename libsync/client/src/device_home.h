// DeviceHome: the device identity and its group memberships, over a LocalStore. Shared by the
// synchronous Client and the AsyncClient so that both create, join and describe groups the same
// way.
//
//   identity   create_identity / identity / device_key (loaded from the store by load_identity)
//   groups     groups / load_group (record, relays and derived keys) / group_info
//   membership store_created_group (after contact_relay pinned every relay) / join_group / invites
//
// Borrows the store for its lifetime. Thread-safety: none (one thread, like the store), except
// that device_key() may be read from other threads once an identity exists: it never changes
// after that.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "blindsync/auth/identity.h"
#include "blindsync/client/client.h"
#include "blindsync/crypto/group_keys.h"
#include "local_store.h"
#include "relay_session.h"

namespace blindsync::client_detail {

struct LoadedGroup {
  GroupRecord record;
  std::vector<GroupRelay> relays;  // the primary first
  crypto::GroupKeys keys;
};

// A relay as learned by a handshake at group creation.
struct RelayContact {
  std::string url;
  RelayId relay_id;
  std::uint64_t epoch = 0;
};

// A freshly generated group secret and its keys (before any relay was contacted).
struct NewGroup {
  Secret32 secret;
  crypto::GroupKeys keys;
};
NewGroup generate_group();

// Handshakes with a relay that is not pinned yet, to learn (and prove) its identity and epoch,
// then closes the session. Blocking; safe on any thread while params' keys stay alive.
Result<RelayContact> contact_relay(const TransportFactory& factory, const SessionParams& params);

class DeviceHome {
 public:
  explicit DeviceHome(LocalStore& store) : store_(store) {}

  Status load_identity();
  // kAlreadyExists if this home already has an identity; kInvalidArgument for a bad name.
  Result<DeviceIdentity> create_identity(const std::string& name);
  std::optional<DeviceIdentity> identity() const;
  // kNotFound (with advice) when there is no identity yet.
  Status require_identity() const;
  // REQUIRES: an identity exists.
  const auth::SigningKey& device_key() const { return *device_key_; }
  DeviceId device_id() const { return DeviceId(device_key_->public_key()); }
  const std::string& device_name() const { return device_name_; }

  Result<GroupInfo> group_info(const GroupRecord& record);
  Result<std::vector<GroupInfo>> groups();
  // kNotFound for a group this device is not in; kStorageError if its secret does not match.
  Result<LoadedGroup> load_group(const GroupId& id);

  // Parameters for a session of this device in the group. REQUIRES: an identity exists; the
  // keys outlive the session.
  SessionParams session_params(const std::string& relay_url, std::optional<RelayId> pinned,
                               const crypto::GroupKeys& keys, Cursor last_cursor,
                               std::chrono::milliseconds timeout) const;

  // Stores a group created here whose relays (the primary first) were contacted, with each relay's
  // epoch as its starting cursor state, and makes its invite.
  Result<CreatedGroup> store_created_group(const NewGroup& group, const std::vector<RelayContact>& relays,
                                           const std::string& name, std::chrono::seconds invite_valid_for);
  // Stores the group of an invite link with every relay it names (kExpired, kInvalidArgument,
  // kAlreadyExists).
  Result<GroupInfo> join_group(const std::string& invite_link);
  Result<std::string> invite_link(const GroupId& group, std::chrono::seconds valid_for);

 private:
  Result<std::string> make_invite(const GroupRecord& record, std::chrono::seconds valid_for);

  LocalStore& store_;
  std::optional<auth::SigningKey> device_key_;
  std::string device_name_;
};

}  // namespace blindsync::client_detail
