#include "device_home.h"

#include <utility>

#include "blindsync/client/invite.h"
#include "blindsync/core/limits.h"

namespace blindsync::client_detail {

namespace {

std::string default_group_name(const GroupId& id) { return "group-" + id.to_hex().substr(0, 8); }

std::uint64_t expiry_from_now(std::chrono::seconds valid_for) {
  if (valid_for.count() <= 0) return 0;  // never expires
  return static_cast<std::uint64_t>(now_unix_ms()) +
         static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(valid_for).count());
}

}  // namespace

NewGroup generate_group() {
  auto fresh = crypto::generate_group_secret();
  Secret32 secret(fresh);
  auth::secure_wipe(fresh);
  auto keys = crypto::GroupKeys::derive(secret.bytes());
  return NewGroup{std::move(secret), std::move(keys)};
}

Result<RelayContact> contact_relay(const TransportFactory& factory, const SessionParams& params) {
  auto session = RelaySession::open(factory, params);
  if (!session) return session.error();
  RelayContact contact{params.relay_url, (*session)->relay_id(), (*session)->welcome().epoch};
  (*session)->close();
  return contact;
}

Status DeviceHome::load_identity() {
  auto stored = store_.load_identity();
  if (!stored) return stored.error();
  if (*stored) {
    device_key_.emplace(auth::SigningKey::from_seed((*stored)->seed.bytes()));
    device_name_ = (*stored)->name;
  }
  return Status::ok();
}

Result<DeviceIdentity> DeviceHome::create_identity(const std::string& name) {
  if (device_key_) return Status(Code::kAlreadyExists, "this home already has a device identity");
  if (name.empty()) return Status(Code::kInvalidArgument, "device name must not be empty");
  if (name.size() > kMaxDeviceNameBytes) {
    return Status(Code::kInvalidArgument,
                  "device name is over " + std::to_string(kMaxDeviceNameBytes) + " bytes");
  }
  auto key = auth::SigningKey::generate();
  const Secret32 seed(key.seed());
  if (Status saved = store_.save_identity(seed, name); !saved) return saved;
  device_key_.emplace(std::move(key));
  device_name_ = name;
  return *identity();
}

std::optional<DeviceIdentity> DeviceHome::identity() const {
  if (!device_key_) return std::nullopt;
  return DeviceIdentity{DeviceId(device_key_->public_key()), device_name_};
}

Status DeviceHome::require_identity() const {
  if (device_key_) return Status::ok();
  return Status(Code::kNotFound, "this home has no device identity yet; create one first");
}

Result<GroupInfo> DeviceHome::group_info(const GroupRecord& record) {
  auto cursor = store_.load_cursor(record.group_id, record.relay_url);
  if (!cursor) return cursor.error();
  GroupInfo info;
  info.group_id = record.group_id;
  info.name = record.name;
  info.relay_url = record.relay_url;
  info.relay_id = record.relay_id;
  info.cursor = cursor->cursor;
  info.epoch = cursor->epoch;
  return info;
}

Result<std::vector<GroupInfo>> DeviceHome::groups() {
  auto records = store_.list_groups();
  if (!records) return records.error();
  std::vector<GroupInfo> out;
  for (const auto& record : *records) {
    auto info = group_info(record);
    if (!info) return info.error();
    out.push_back(std::move(*info));
  }
  return out;
}

Result<LoadedGroup> DeviceHome::load_group(const GroupId& id) {
  auto record = store_.load_group(id);
  if (!record) return record.error();
  if (!*record) return Status(Code::kNotFound, "this device is not in group " + id.to_hex());
  auto relays = store_.list_group_relays(id);
  if (!relays) return relays.error();
  if (relays->empty()) relays->push_back(GroupRelay{(*record)->relay_url, (*record)->relay_id});
  auto secret = store_.load_group_secret(id);
  if (!secret) return secret.error();
  auto keys = crypto::GroupKeys::derive(secret->bytes());
  if (keys.group_id() != id) {
    return Status(Code::kStorageError,
                  "local store: the secret of group " + id.to_hex() + " does not match its id");
  }
  return LoadedGroup{std::move(**record), std::move(*relays), std::move(keys)};
}

SessionParams DeviceHome::session_params(const std::string& relay_url, std::optional<RelayId> pinned,
                                         const crypto::GroupKeys& keys, Cursor last_cursor,
                                         std::chrono::milliseconds timeout) const {
  SessionParams params;
  params.relay_url = relay_url;
  params.pinned_relay = pinned;
  params.device_key = &*device_key_;
  params.group_id = keys.group_id();
  params.group_auth_key = &keys.auth_key();
  params.device_name = device_name_;
  params.last_cursor = last_cursor;
  params.timeout = timeout;
  return params;
}

Result<CreatedGroup> DeviceHome::store_created_group(const NewGroup& group,
                                                     const std::vector<RelayContact>& relays,
                                                     const std::string& name,
                                                     std::chrono::seconds invite_valid_for) {
  if (relays.empty()) return Status(Code::kInvalidArgument, "a group needs at least one relay");
  GroupRecord record;
  record.group_id = group.keys.group_id();
  record.name = name.empty() ? default_group_name(record.group_id) : name;
  record.relay_url = relays.front().url;
  record.relay_id = relays.front().relay_id;
  std::vector<GroupRelay> more;
  for (std::size_t i = 1; i < relays.size(); ++i)
    more.push_back(GroupRelay{relays[i].url, relays[i].relay_id});
  if (Status saved = store_.insert_group(record, group.secret, more); !saved) return saved;
  for (const auto& relay : relays) {
    if (Status saved = store_.set_cursor_state(record.group_id, relay.url, CursorRecord{0, relay.epoch});
        !saved) {
      return saved;
    }
  }
  auto link = make_invite(record, invite_valid_for);
  if (!link) return link.error();
  auto info = group_info(record);
  if (!info) return info.error();
  return CreatedGroup{std::move(*info), std::move(*link)};
}

Result<GroupInfo> DeviceHome::join_group(const std::string& link) {
  auto invite = decode_invite(link, static_cast<std::uint64_t>(now_unix_ms()));
  if (!invite) return invite.error();
  const Secret32 secret(invite->secret);
  auth::secure_wipe(invite->secret);
  if (invite->relays.empty()) return Status(Code::kInvalidArgument, "invite names no relay");
  for (const auto& relay : invite->relays) {
    if (relay.relay_id.is_zero()) {
      return Status(Code::kInvalidArgument, "invite carries no relay id to pin for " + relay.url);
    }
  }
  const InviteRelay& primary = invite->relays.front();
  auto keys = crypto::GroupKeys::derive(secret.bytes());
  GroupRecord record;
  record.group_id = keys.group_id();
  record.name = invite->group_name.empty() ? default_group_name(record.group_id) : invite->group_name;
  record.relay_url = primary.url;
  record.relay_id = primary.relay_id;
  std::vector<GroupRelay> more;
  for (std::size_t i = 1; i < invite->relays.size(); ++i) {
    more.push_back(GroupRelay{invite->relays[i].url, invite->relays[i].relay_id});
  }
  if (Status saved = store_.insert_group(record, secret, more); !saved) return saved;
  return group_info(record);
}

Result<std::string> DeviceHome::invite_link(const GroupId& group, std::chrono::seconds valid_for) {
  auto record = store_.load_group(group);
  if (!record) return record.error();
  if (!*record) return Status(Code::kNotFound, "this device is not in group " + group.to_hex());
  return make_invite(**record, valid_for);
}

Result<std::string> DeviceHome::make_invite(const GroupRecord& record, std::chrono::seconds valid_for) {
  auto secret = store_.load_group_secret(record.group_id);
  if (!secret) return secret.error();
  auto relays = store_.list_group_relays(record.group_id);
  if (!relays) return relays.error();
  Invite invite;
  for (const auto& relay : *relays) invite.relays.push_back(InviteRelay{relay.url, relay.relay_id});
  if (invite.relays.empty()) invite.relays.push_back(InviteRelay{record.relay_url, record.relay_id});
  invite.secret = secret->bytes();
  invite.group_name = record.name;
  invite.expires_at_ms = expiry_from_now(valid_for);
  std::string link = encode_invite(invite);
  auth::secure_wipe(invite.secret);
  return link;
}

}  // namespace blindsync::client_detail
