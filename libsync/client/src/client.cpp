// Client: the public API over LocalStore (durable state), DeviceHome (identity and groups),
// RelaySession (one authenticated connection) and GroupSync (push / pull / watch over it).
// The synchronous Client talks to the primary relay of each group only.
//
// Every public method catches exceptions (allocation failures, a throwing std::function) and
// turns them into a Status: nothing escapes to the application.

#include "blindsync/client/client.h"

#include <algorithm>
#include <cctype>
#include <exception>
#include <functional>
#include <utility>

#include "cursor_epoch.h"
#include "device_home.h"
#include "group_sync.h"
#include "local_store.h"
#include "outbox_entry.h"
#include "relay_session.h"
#include "session_cache.h"

namespace blindsync {

using client_detail::CursorRecord;
using client_detail::DeviceHome;
using client_detail::LoadedGroup;
using client_detail::LocalStore;
using client_detail::RelaySession;
using client_detail::now_unix_ms;

namespace {

// seen_blobs rows older than this are forgotten: relays never keep a blob longer than their max
// TTL (30 days by default), so a re-pull cannot bring such an old blob back.
constexpr std::int64_t kSeenRetentionMs = 60ll * 24 * 3600 * 1000;

Status internal_error(const char* where, const std::exception& e) {
  return Status(Code::kInternal, std::string(where) + ": " + e.what());
}

}  // namespace

class Client::Impl {
 public:
  Impl(std::unique_ptr<LocalStore> store, ClientOptions options)
      : store_(std::move(store)), home_(*store_), options_(std::move(options)) {}

  Status load_identity() { return home_.load_identity(); }
  Result<DeviceIdentity> create_identity(const std::string& name) { return home_.create_identity(name); }
  std::optional<DeviceIdentity> identity() const { return home_.identity(); }
  Result<std::vector<GroupInfo>> groups() { return home_.groups(); }

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

  struct Connection {
    RelaySession* session = nullptr;  // kept in sessions_
    CursorRecord cursor;              // after applying the relay's epoch
    bool reused = false;              // kept from an earlier call
  };

  // Runs work(Connection&) on the group's kept session (session_cache.h), or on a new one.
  // `idempotent`: should a kept session turn out dead (the relay closed it just as the call
  // began), the work runs once more on a new session. Pushes are: a push keeps its blob_id, and
  // the relay answers a repeat with the stored cursor. Pulls are not repeated, since blobs may
  // have reached the handler already; the next call gets a new session.
  // `on_connect_error` turns a failure to connect into the call's result.
  template <typename R, typename Work>
  R with_session(const LoadedGroup& group, bool idempotent, Work&& work,
                 const std::function<R(const Status&)>& on_connect_error) {
    const GroupId& group_id = group.record.group_id;
    auto connection = connect(group, /*reuse=*/true);
    if (!connection) return on_connect_error(connection.error());
    R result = work(*connection);
    if (idempotent && connection->reused && !connection->session->usable()) {
      connection = connect(group, /*reuse=*/false);
      if (!connection) return on_connect_error(connection.error());
      result = work(*connection);
    }
    sessions_.done(group_id, client_detail::SessionCache::Clock::now());
    return result;
  }

  template <typename R, typename Work>
  R with_session(const LoadedGroup& group, bool idempotent, Work&& work) {
    return with_session<R>(group, idempotent, std::forward<Work>(work), [](const Status& s) { return R(s); });
  }

  // The group's kept session when `reuse` and it is fit for it; otherwise connects to the group's
  // primary relay (pinned relay_id) and reconciles the stored cursor with WELCOME
  // (cursor_epoch.h): after a relay reset we start again from 0 and rely on seen_blobs to
  // deduplicate.
  Result<Connection> connect(const LoadedGroup& group, bool reuse) {
    if (Status s = home_.require_identity(); !s) return s;
    auto stored = store_->load_cursor(group.record.group_id, group.record.relay_url);
    if (!stored) return stored.error();
    const auto now = client_detail::SessionCache::Clock::now();
    if (reuse) {
      // Its epoch was reconciled when it opened; the stored cursor has moved with every page since.
      if (RelaySession* kept = sessions_.find(group.record.group_id, group.record.relay_url, now)) {
        return Connection{kept, *stored, true};
      }
    }
    auto session = RelaySession::open(
        options_.transport, home_.session_params(group.record.relay_url, group.record.relay_id, group.keys,
                                                 stored->cursor, options_.request_timeout));
    if (!session) return session.error();
    const Welcome& welcome = (*session)->welcome();
    CursorRecord next = *stored;
    if (client_detail::relay_was_reset(stored->epoch, stored->cursor, welcome)) {
      next = CursorRecord{0, welcome.epoch};
    } else {
      next.epoch = welcome.epoch;
    }
    if (next.cursor != stored->cursor || next.epoch != stored->epoch) {
      if (Status saved = store_->set_cursor_state(group.record.group_id, group.record.relay_url, next); !saved) {
        return saved;
      }
    }
    RelaySession* kept = sessions_.keep(group.record.group_id, group.record.relay_url, std::move(*session), now);
    return Connection{kept, next, false};
  }

  client_detail::GroupContext context_for(const LoadedGroup& group, const Connection& connection) const {
    client_detail::GroupContext context;
    context.group_id = group.record.group_id;
    context.relay_url = group.record.relay_url;
    context.payload_key = &group.keys.payload_key();
    context.device_id = home_.device_id();
    context.stored_cursor = connection.cursor.cursor;
    return context;
  }

  Result<CreatedGroup> create_group(const std::string& relay_url, const std::string& name,
                                    std::chrono::seconds valid_for) {
    if (Status s = home_.require_identity(); !s) return s;
    auto group = client_detail::generate_group();
    // Learn the relay's identity (and prove it holds its key) before it is pinned in the invite.
    auto contact = client_detail::contact_relay(
        options_.transport, home_.session_params(relay_url, std::nullopt, group.keys, 0, options_.request_timeout));
    if (!contact) return contact.error();
    return home_.store_created_group(group, {*contact}, name, valid_for);
  }

  Result<GroupInfo> join_group(const std::string& link) { return home_.join_group(link); }

  Result<std::string> invite_link(const GroupId& group, std::chrono::seconds valid_for) {
    return home_.invite_link(group, valid_for);
  }

  Result<PushOutcome> push(const GroupId& group, ByteView data, std::uint32_t ttl_seconds) {
    if (Status s = home_.require_identity(); !s) return s;
    auto loaded = home_.load_group(group);
    // Refuse an over-long blob before looking further (it could never be sent).
    auto entry = loaded ? client_detail::make_outbox_entry(loaded->keys, home_.device_id(), data, ttl_seconds)
                        : Result<client_detail::OutboxEntry>(loaded.error());
    if (!entry) return entry.error();
    // Durable before anything goes on the wire: a crash from here on loses nothing.
    if (Status queued = store_->outbox_add(*entry); !queued) return queued;
    const BlobId blob_id = entry->blob_id;

    auto queued_note = [](const Status& s) {
      return Status(s.code(), s.message() + " (the blob stays in the outbox and is sent by the next push, pull or flush)");
    };
    return with_session<Result<PushOutcome>>(
        *loaded, /*idempotent=*/true,
        [&](Connection& connection) -> Result<PushOutcome> {
          client_detail::GroupSync sync(*store_, *connection.session, context_for(*loaded, connection));
          const auto report = sync.flush_outbox();
          for (const auto& outcome : report.outcomes) {
            if (outcome.blob_id != blob_id) continue;
            if (outcome.ack) {
              return PushOutcome{blob_id, outcome.ack->cursor, outcome.ack->timestamp, outcome.ack->duplicate};
            }
            if (outcome.error.code() == Code::kBlobTooLarge) return outcome.error;  // dropped from the outbox
            return queued_note(outcome.error);
          }
          if (!report.aborted.is_ok()) return queued_note(report.aborted);
          return queued_note(Status(Code::kInternal, "the relay never answered this push"));
        },
        [&](const Status& s) -> Result<PushOutcome> { return queued_note(s); });
  }

  Result<std::size_t> flush_outbox(const GroupId& group) {
    auto loaded = home_.load_group(group);
    if (!loaded) return loaded.error();
    auto queued = store_->outbox_count(group);
    if (!queued) return queued.error();
    if (*queued == 0) return std::size_t{0};
    const auto send_outbox = [&](Connection& connection) -> Result<std::size_t> {
      client_detail::GroupSync sync(*store_, *connection.session, context_for(*loaded, connection));
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
    };
    return with_session<Result<std::size_t>>(*loaded, /*idempotent=*/true, send_outbox);
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
    auto loaded = home_.load_group(group);
    if (!loaded) return loaded.error();
    return with_session<Status>(*loaded, /*idempotent=*/false, [&](Connection& connection) {
      client_detail::GroupSync sync(*store_, *connection.session, context_for(*loaded, connection));
      // An explicit start is a request to see those blobs again: do not filter them as seen.
      const Cursor start = options.after.value_or(connection.cursor.cursor);
      if (Status pulled = pull_on(sync, start, !options.after.has_value(), on_blob); !pulled) return pulled;
      return crypto_summary(sync);
    });
  }

  Status watch(const GroupId& group, const WatchOptions& options, const BlobHandler& on_blob) {
    auto loaded = home_.load_group(group);
    if (!loaded) return loaded.error();
    return with_session<Status>(*loaded, /*idempotent=*/false, [&](Connection& connection) {
      client_detail::GroupSync sync(*store_, *connection.session, context_for(*loaded, connection));
      if (Status pulled = pull_on(sync, connection.cursor.cursor, true, on_blob); !pulled) return pulled;
      if (Status watched = sync.watch_live(options, on_blob); !watched) return watched;
      return crypto_summary(sync);
    });
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
  DeviceHome home_;
  ClientOptions options_;
  client_detail::SessionCache sessions_;  // declared last: its sessions close (BYE) first
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
