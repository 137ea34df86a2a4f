// Client: the public API over LocalStore (durable state), RelaySession (one authenticated
// connection) and GroupSync (push / pull / watch over that connection).
//
// Every public method catches exceptions (allocation failures, a throwing std::function) and
// turns them into a Status: nothing escapes to the application.

#include "blindsync/client/client.h"

#include <algorithm>
#include <cctype>
#include <exception>
#include <span>
#include <utility>

#include "blindsync/auth/identity.h"
#include "blindsync/client/invite.h"
#include "blindsync/crypto/group_keys.h"
#include "blindsync/crypto/payload.h"
#include "group_sync.h"
#include "local_store.h"
#include "relay_session.h"

namespace blindsync {

using client_detail::CursorRecord;
using client_detail::GroupRecord;
using client_detail::LocalStore;
using client_detail::RelaySession;
using client_detail::Secret32;
using client_detail::now_unix_ms;

namespace {

// seen_blobs rows older than this are forgotten: relays never keep a blob longer than their max
// TTL (30 days by default), so a re-pull cannot bring such an old blob back.
constexpr std::int64_t kSeenRetentionMs = 60ll * 24 * 3600 * 1000;

Status internal_error(const char* where, const std::exception& e) {
  return Status(Code::kInternal, std::string(where) + ": " + e.what());
}

// 48-bit big-endian millisecond timestamp, then 80 random bits: ids sort by creation time (like
// UUIDv7) and never collide in practice.
BlobId new_blob_id() {
  BlobId::Array bytes{};
  const auto ms = static_cast<std::uint64_t>(now_unix_ms());
  for (int i = 0; i < 6; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  auth::random_fill(std::span<std::uint8_t>(bytes).subspan(6));
  return BlobId(bytes);
}

std::string default_group_name(const GroupId& id) { return "group-" + id.to_hex().substr(0, 8); }

std::uint64_t expiry_from_now(std::chrono::seconds valid_for) {
  if (valid_for.count() <= 0) return 0;  // never expires
  return static_cast<std::uint64_t>(now_unix_ms()) +
         static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(valid_for).count());
}

struct LoadedGroup {
  GroupRecord record;
  crypto::GroupKeys keys;
};

}  // namespace

class Client::Impl {
 public:
  Impl(std::unique_ptr<LocalStore> store, ClientOptions options)
      : store_(std::move(store)), options_(std::move(options)) {}

  Status load_identity() {
    auto stored = store_->load_identity();
    if (!stored) return stored.error();
    if (*stored) {
      device_key_.emplace(auth::SigningKey::from_seed((*stored)->seed.bytes()));
      device_name_ = (*stored)->name;
    }
    return Status::ok();
  }

  Result<DeviceIdentity> create_identity(const std::string& name) {
    if (device_key_) return Status(Code::kAlreadyExists, "this home already has a device identity");
    if (name.empty()) return Status(Code::kInvalidArgument, "device name must not be empty");
    if (name.size() > kMaxDeviceNameBytes) {
      return Status(Code::kInvalidArgument,
                    "device name is over " + std::to_string(kMaxDeviceNameBytes) + " bytes");
    }
    auto key = auth::SigningKey::generate();
    const Secret32 seed(key.seed());
    if (Status saved = store_->save_identity(seed, name); !saved) return saved;
    device_key_.emplace(std::move(key));
    device_name_ = name;
    return *identity();
  }

  std::optional<DeviceIdentity> identity() const {
    if (!device_key_) return std::nullopt;
    return DeviceIdentity{DeviceId(device_key_->public_key()), device_name_};
  }

  Result<GroupInfo> group_info(const GroupRecord& record) {
    auto cursor = store_->load_cursor(record.group_id, record.relay_url);
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

  Result<std::vector<GroupInfo>> groups() {
    auto records = store_->list_groups();
    if (!records) return records.error();
    std::vector<GroupInfo> out;
    for (const auto& record : *records) {
      auto info = group_info(record);
      if (!info) return info.error();
      out.push_back(std::move(*info));
    }
    return out;
  }

  Result<GroupInfo> find_group(const std::string& selector) {
    auto all = groups();
    if (!all) return all.error();
    if (all->empty()) return Status(Code::kNotFound, "this device is in no group yet");
    auto names_of = [](const std::vector<const GroupInfo*>& list) {
      std::string text;
      for (const auto* g : list) text += (text.empty() ? "" : ", ") + g->name + " (" + g->group_id.to_hex().substr(0, 12) + ")";
      return text;
    };
    std::vector<const GroupInfo*> matches;
    if (selector.empty()) {
      if (all->size() == 1) return all->front();
      for (const auto& g : *all) matches.push_back(&g);
      return Status(Code::kInvalidArgument, "this device is in several groups, name one: " + names_of(matches));
    }
    for (const auto& g : *all) {
      if (g.name == selector) matches.push_back(&g);
    }
    if (matches.empty()) {
      // By id: the full hex id or an unambiguous prefix of it (at least 8 hex digits).
      std::string lower = selector;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lower.size() >= 8) {
        for (const auto& g : *all) {
          if (g.group_id.to_hex().compare(0, lower.size(), lower) == 0) matches.push_back(&g);
        }
      }
    }
    if (matches.size() == 1) return *matches.front();
    if (matches.empty()) return Status(Code::kNotFound, "no group named or with id '" + selector + "'");
    return Status(Code::kInvalidArgument, "'" + selector + "' matches several groups, use the id: " + names_of(matches));
  }

  Result<LoadedGroup> load_group(const GroupId& id) {
    auto record = store_->load_group(id);
    if (!record) return record.error();
    if (!*record) return Status(Code::kNotFound, "this device is not in group " + id.to_hex());
    auto secret = store_->load_group_secret(id);
    if (!secret) return secret.error();
    auto keys = crypto::GroupKeys::derive(secret->bytes());
    if (keys.group_id() != id) {
      return Status(Code::kStorageError, "local store: the secret of group " + id.to_hex() + " does not match its id");
    }
    return LoadedGroup{std::move(**record), std::move(keys)};
  }

  Result<std::string> make_invite(const GroupRecord& record, std::chrono::seconds valid_for) {
    auto secret = store_->load_group_secret(record.group_id);
    if (!secret) return secret.error();
    Invite invite;
    invite.relays.push_back(InviteRelay{record.relay_url, record.relay_id});
    invite.secret = secret->bytes();
    invite.group_name = record.name;
    invite.expires_at_ms = expiry_from_now(valid_for);
    std::string link = encode_invite(invite);
    auth::secure_wipe(invite.secret);
    return link;
  }

  Status require_identity() const {
    if (device_key_) return Status::ok();
    return Status(Code::kNotFound, "this home has no device identity yet; create one first");
  }

  client_detail::SessionParams session_params(const std::string& relay_url, std::optional<RelayId> pinned,
                                              const crypto::GroupKeys& keys, Cursor last_cursor) const {
    client_detail::SessionParams params;
    params.relay_url = relay_url;
    params.pinned_relay = pinned;
    params.device_key = &*device_key_;
    params.group_id = keys.group_id();
    params.group_auth_key = &keys.auth_key();
    params.device_name = device_name_;
    params.last_cursor = last_cursor;
    params.timeout = options_.request_timeout;
    return params;
  }

  struct Connection {
    std::unique_ptr<RelaySession> session;
    CursorRecord cursor;  // after applying the relay's epoch
  };

  // Connects to the group's relay (pinned relay_id) and reconciles the stored cursor with WELCOME:
  // a new relay epoch, or a max_cursor below our cursor (a restored database), means the cursors
  // we hold name other blobs now, so we start again from 0 and rely on seen_blobs to deduplicate.
  Result<Connection> connect(const LoadedGroup& group) {
    if (Status s = require_identity(); !s) return s;
    auto stored = store_->load_cursor(group.record.group_id, group.record.relay_url);
    if (!stored) return stored.error();
    auto session = RelaySession::open(
        options_.transport, session_params(group.record.relay_url, group.record.relay_id, group.keys, stored->cursor));
    if (!session) return session.error();
    const Welcome& welcome = (*session)->welcome();
    CursorRecord next = *stored;
    const bool epoch_changed = stored->epoch != 0 && welcome.epoch != stored->epoch;
    if (epoch_changed || welcome.max_cursor < stored->cursor) {
      next = CursorRecord{0, welcome.epoch};
    } else {
      next.epoch = welcome.epoch;
    }
    if (next.cursor != stored->cursor || next.epoch != stored->epoch) {
      if (Status saved = store_->set_cursor_state(group.record.group_id, group.record.relay_url, next); !saved) {
        return saved;
      }
    }
    return Connection{std::move(*session), next};
  }

  client_detail::GroupContext context_for(const LoadedGroup& group, const Connection& connection) const {
    client_detail::GroupContext context;
    context.group_id = group.record.group_id;
    context.relay_url = group.record.relay_url;
    context.payload_key = &group.keys.payload_key();
    context.device_id = DeviceId(device_key_->public_key());
    context.stored_cursor = connection.cursor.cursor;
    return context;
  }

  Result<CreatedGroup> create_group(const std::string& relay_url, const std::string& name,
                                    std::chrono::seconds valid_for) {
    if (Status s = require_identity(); !s) return s;
    auto fresh = crypto::generate_group_secret();
    const Secret32 secret(fresh);
    auth::secure_wipe(fresh);
    auto keys = crypto::GroupKeys::derive(secret.bytes());
    // Learn the relay's identity (and prove it holds its key) before it is pinned in the invite.
    auto session = RelaySession::open(options_.transport, session_params(relay_url, std::nullopt, keys, 0));
    if (!session) return session.error();
    const RelayId relay_id = (*session)->relay_id();
    const std::uint64_t epoch = (*session)->welcome().epoch;
    (*session)->close();

    GroupRecord record;
    record.group_id = keys.group_id();
    record.name = name.empty() ? default_group_name(record.group_id) : name;
    record.relay_url = relay_url;
    record.relay_id = relay_id;
    if (Status saved = store_->insert_group(record, secret); !saved) return saved;
    if (Status saved = store_->set_cursor_state(record.group_id, relay_url, CursorRecord{0, epoch}); !saved) {
      return saved;
    }
    auto link = make_invite(record, valid_for);
    if (!link) return link.error();
    auto info = group_info(record);
    if (!info) return info.error();
    return CreatedGroup{std::move(*info), std::move(*link)};
  }

  Result<GroupInfo> join_group(const std::string& link) {
    auto invite = decode_invite(link, static_cast<std::uint64_t>(now_unix_ms()));
    if (!invite) return invite.error();
    const Secret32 secret(invite->secret);
    auth::secure_wipe(invite->secret);
    if (invite->relays.empty()) return Status(Code::kInvalidArgument, "invite names no relay");
    const InviteRelay& relay = invite->relays.front();
    if (relay.relay_id.is_zero()) return Status(Code::kInvalidArgument, "invite carries no relay id to pin");
    auto keys = crypto::GroupKeys::derive(secret.bytes());
    GroupRecord record;
    record.group_id = keys.group_id();
    record.name = invite->group_name.empty() ? default_group_name(record.group_id) : invite->group_name;
    record.relay_url = relay.url;
    record.relay_id = relay.relay_id;
    if (Status saved = store_->insert_group(record, secret); !saved) return saved;
    return group_info(record);
  }

  Result<std::string> invite_link(const GroupId& group, std::chrono::seconds valid_for) {
    auto record = store_->load_group(group);
    if (!record) return record.error();
    if (!*record) return Status(Code::kNotFound, "this device is not in group " + group.to_hex());
    return make_invite(**record, valid_for);
  }

  Result<PushOutcome> push(const GroupId& group, ByteView data, std::uint32_t ttl_seconds) {
    if (Status s = require_identity(); !s) return s;
    if (data.size() + crypto::kPayloadOverheadBytes > kDefaultMaxBlobBytes) {
      return Status(Code::kBlobTooLarge, "blob of " + std::to_string(data.size()) + " bytes is over the limit of " +
                                             std::to_string(kDefaultMaxBlobBytes - crypto::kPayloadOverheadBytes) +
                                             " bytes");
    }
    auto loaded = load_group(group);
    if (!loaded) return loaded.error();

    client_detail::OutboxEntry entry;
    entry.group_id = group;
    entry.blob_id = new_blob_id();
    entry.ttl_seconds = ttl_seconds;
    entry.created_at_ms = now_unix_ms();
    const DeviceId sender(device_key_->public_key());
    entry.payload = crypto::seal_payload(loaded->keys.payload_key(), {group, entry.blob_id, sender}, data);
    // Durable before anything goes on the wire: a crash from here on loses nothing.
    if (Status queued = store_->outbox_add(entry); !queued) return queued;
    const BlobId blob_id = entry.blob_id;

    auto queued_note = [](const Status& s) {
      return Status(s.code(), s.message() + " (the blob stays in the outbox and is sent by the next push, pull or flush)");
    };
    auto connection = connect(*loaded);
    if (!connection) return queued_note(connection.error());
    client_detail::GroupSync sync(*store_, *connection->session, context_for(*loaded, *connection));
    const auto report = sync.flush_outbox();
    for (const auto& outcome : report.outcomes) {
      if (outcome.blob_id != blob_id) continue;
      if (outcome.ack) return PushOutcome{blob_id, outcome.ack->cursor, outcome.ack->timestamp, outcome.ack->duplicate};
      if (outcome.error.code() == Code::kBlobTooLarge) return outcome.error;  // dropped from the outbox
      return queued_note(outcome.error);
    }
    if (!report.aborted.is_ok()) return queued_note(report.aborted);
    return queued_note(Status(Code::kInternal, "the relay never answered this push"));
  }

  Result<std::size_t> flush_outbox(const GroupId& group) {
    auto loaded = load_group(group);
    if (!loaded) return loaded.error();
    auto queued = store_->outbox_count(group);
    if (!queued) return queued.error();
    if (*queued == 0) return std::size_t{0};
    auto connection = connect(*loaded);
    if (!connection) return connection.error();
    client_detail::GroupSync sync(*store_, *connection->session, context_for(*loaded, *connection));
    const auto report = sync.flush_outbox();
    if (!report.aborted.is_ok()) return report.aborted;
    for (const auto& outcome : report.outcomes) {
      if (!outcome.ack) {
        return Status(outcome.error.code(), std::to_string(report.acked) + " of " + std::to_string(report.queued) +
                                                " sent; blob " + outcome.blob_id.to_hex() + ": " +
                                                outcome.error.message());
      }
    }
    return report.acked;
  }

  // Connects, drains the outbox (its per-blob failures do not fail a pull) and catches up.
  Status pull_on(client_detail::GroupSync& sync, Cursor start, bool skip_seen, const BlobHandler& on_blob) {
    const auto report = sync.flush_outbox();
    if (!report.aborted.is_ok()) return report.aborted;
    return sync.pull(start, skip_seen, on_blob);
  }

  Status crypto_summary(const client_detail::GroupSync& sync) const {
    if (sync.crypto_failures() == 0) return Status::ok();
    return Status(Code::kCryptoFailure, std::to_string(sync.crypto_failures()) +
                                            " blob(s) failed to decrypt or verify and were skipped");
  }

  Status pull(const GroupId& group, const PullOptions& options, const BlobHandler& on_blob) {
    auto loaded = load_group(group);
    if (!loaded) return loaded.error();
    auto connection = connect(*loaded);
    if (!connection) return connection.error();
    client_detail::GroupSync sync(*store_, *connection->session, context_for(*loaded, *connection));
    // An explicit start is a request to see those blobs again: do not filter them as seen.
    const Cursor start = options.after.value_or(connection->cursor.cursor);
    if (Status pulled = pull_on(sync, start, !options.after.has_value(), on_blob); !pulled) return pulled;
    return crypto_summary(sync);
  }

  Status watch(const GroupId& group, const WatchOptions& options, const BlobHandler& on_blob) {
    auto loaded = load_group(group);
    if (!loaded) return loaded.error();
    auto connection = connect(*loaded);
    if (!connection) return connection.error();
    client_detail::GroupSync sync(*store_, *connection->session, context_for(*loaded, *connection));
    if (Status pulled = pull_on(sync, connection->cursor.cursor, true, on_blob); !pulled) return pulled;
    if (Status watched = sync.watch_live(options, on_blob); !watched) return watched;
    return crypto_summary(sync);
  }

  Result<ClientStatus> status() {
    ClientStatus out;
    out.device = identity();
    auto all = groups();
    if (!all) return all.error();
    out.groups = std::move(*all);
    auto count = store_->outbox_count();
    if (!count) return count.error();
    out.outbox_size = *count;
    return out;
  }

 private:
  std::unique_ptr<LocalStore> store_;
  ClientOptions options_;
  std::optional<auth::SigningKey> device_key_;
  std::string device_name_;
};

// ---------------------------------------------------------------- public API

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::open(const std::string& home_dir, ClientOptions options) {
  try {
    auto store = LocalStore::open(home_dir);
    if (!store) return store.error();
    // Best effort: an old seen-blob list is only an optimisation for a rare re-pull.
    (void)(*store)->prune_seen(now_unix_ms() - kSeenRetentionMs);
    auto impl = std::make_unique<Impl>(std::move(*store), std::move(options));
    if (Status loaded = impl->load_identity(); !loaded) return loaded;
    return std::unique_ptr<Client>(new Client(std::move(impl)));
  } catch (const std::exception& e) {
    return internal_error("opening the client", e);
  }
}

Result<DeviceIdentity> Client::create_identity(const std::string& name) {
  try {
    return impl_->create_identity(name);
  } catch (const std::exception& e) {
    return internal_error("create_identity", e);
  }
}

std::optional<DeviceIdentity> Client::identity() const {
  try {
    return impl_->identity();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Result<CreatedGroup> Client::create_group(const std::string& relay_url, const std::string& name,
                                          std::chrono::seconds invite_valid_for) {
  try {
    return impl_->create_group(relay_url, name, invite_valid_for);
  } catch (const std::exception& e) {
    return internal_error("create_group", e);
  }
}

Result<GroupInfo> Client::join_group(const std::string& invite_link) {
  try {
    return impl_->join_group(invite_link);
  } catch (const std::exception& e) {
    return internal_error("join_group", e);
  }
}

Result<std::string> Client::invite_link(const GroupId& group, std::chrono::seconds valid_for) {
  try {
    return impl_->invite_link(group, valid_for);
  } catch (const std::exception& e) {
    return internal_error("invite_link", e);
  }
}

std::vector<GroupInfo> Client::groups() const {
  try {
    auto all = impl_->groups();
    if (!all) return {};
    return std::move(*all);
  } catch (const std::exception&) {
    return {};
  }
}

Result<GroupInfo> Client::find_group(const std::string& name_or_id) const {
  try {
    return impl_->find_group(name_or_id);
  } catch (const std::exception& e) {
    return internal_error("find_group", e);
  }
}

Result<PushOutcome> Client::push(const GroupId& group, ByteView data, std::uint32_t ttl_seconds) {
  try {
    return impl_->push(group, data, ttl_seconds);
  } catch (const std::exception& e) {
    return internal_error("push", e);
  }
}

Result<std::size_t> Client::flush_outbox(const GroupId& group) {
  try {
    return impl_->flush_outbox(group);
  } catch (const std::exception& e) {
    return internal_error("flush_outbox", e);
  }
}

Status Client::pull(const GroupId& group, const PullOptions& options, const BlobHandler& on_blob) {
  try {
    return impl_->pull(group, options, on_blob);
  } catch (const std::exception& e) {
    return internal_error("pull", e);
  }
}

Status Client::watch(const GroupId& group, const WatchOptions& options, const BlobHandler& on_blob) {
  try {
    return impl_->watch(group, options, on_blob);
  } catch (const std::exception& e) {
    return internal_error("watch", e);
  }
}

ClientStatus Client::status() const {
  try {
    auto current = impl_->status();
    if (current) return std::move(*current);
    ClientStatus partial;
    partial.device = impl_->identity();
    return partial;
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace blindsync
