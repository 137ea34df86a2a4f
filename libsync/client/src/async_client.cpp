// AsyncClient: the public embedding API over a worker thread (WorkerLoop) that owns the device's
// LocalStore connection, its groups and one RelayLink per (group, relay).
//
//   app threads   push / groups / status / create_* post a task to the worker (and wait for it,
//                 or get a future); poll_events takes from the EventQueue and runs blob handlers
//   worker        everything that touches the store, the links and the DeliveryLedger
//   connections   two I/O threads per live relay connection (RelayConnection), posting to the worker
//   jobs          a short-lived thread per create_group, for its blocking handshakes
//
// A call made on the worker thread itself (from the notify hook) runs inline instead of waiting
// for the worker, so it cannot deadlock. No internal lock is held while user code runs: the
// notify hook is called by EventQueue outside its lock, blob handlers by poll_events() after it
// released every lock. Every public method catches exceptions: nothing escapes to the app.

#include "blindsync/client/async_client.h"

#include <exception>
#include <list>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "blindsync/client/invite.h"
#include "delivery_ledger.h"
#include "device_home.h"
#include "event_queue.h"
#include "local_store.h"
#include "outbox_entry.h"
#include "relay_link.h"
#include "worker_loop.h"

namespace blindsync {

using client_detail::DeliveryLedger;
using client_detail::DeviceHome;
using client_detail::EventQueue;
using client_detail::LinkEnv;
using client_detail::LocalStore;
using client_detail::RelayLink;
using client_detail::WorkerLoop;

std::string_view connection_state_name(ConnectionState state) noexcept {
  switch (state) {
    case ConnectionState::kDisconnected:
      return "disconnected";
    case ConnectionState::kConnecting:
      return "connecting";
    case ConnectionState::kConnected:
      return "connected";
    case ConnectionState::kBackingOff:
      return "backing_off";
  }
  return "unknown";
}

namespace {

// Same retention as the synchronous Client (see client.cpp).
constexpr std::int64_t kSeenRetentionMs = 60ll * 24 * 3600 * 1000;
constexpr std::chrono::hours kInviteValidity{24 * 7};

Status internal_error(const char* where, const std::exception& e) {
  return Status(Code::kInternal, std::string(where) + ": " + e.what());
}

template <typename T>
std::future<T> ready_future(T value) {
  std::promise<T> promise;
  promise.set_value(std::move(value));
  return promise.get_future();
}

}  // namespace

class AsyncClient::Impl {
 public:
  Impl(std::unique_ptr<LocalStore> store, AsyncClientOptions options)
      : options_(std::move(options)),
        store_(std::move(store)),
        home_(*store_),
        events_(options_.max_queued_events, options_.notify),
        rng_(std::random_device{}()),
        jitter_([this](std::uint64_t upper) {
          return std::uniform_int_distribution<std::uint64_t>(0, upper)(rng_);
        }),
        env_{*store_,
             events_,
             loop_,
             ledger_,
             home_,
             options_,
             jitter_,
             [this] { report_outbox(); },
             [this] { (void)commit_confirmed(); }} {}

  ~Impl() {
    loop_.stop([this] { shutdown(); });
  }

  Status open() {
    if (Status loaded = home_.load_identity(); !loaded) return loaded;
    auto groups = store_->list_groups();
    if (!groups) return groups.error();
    for (const auto& group : *groups) {
      if (Status added = add_group(group.group_id); !added) return added;
    }
    auto outbox = store_->outbox_count();
    if (!outbox) return outbox.error();
    reported_outbox_ = *outbox;
    loop_.start();
    const std::uint64_t initial = *outbox;
    loop_.post([this, initial] {
      // The app learns at once that older pushes are still waiting to be sent.
      if (initial > 0) events_.push(EventOutboxChanged{initial});
      start_links();
    });
    return Status::ok();
  }

  // Runs fn on the worker and waits for its result (inline when already on the worker).
  template <typename F>
  auto call(F&& fn) -> decltype(fn()) {
    using R = decltype(fn());
    if (loop_.on_worker_thread()) return fn();
    std::packaged_task<R()> task(std::forward<F>(fn));
    auto result = task.get_future();
    loop_.post([&task] { task(); });
    return result.get();
  }

  // Runs fn on the worker; its result arrives through the future.
  template <typename T, typename F>
  std::future<T> async(F fn, const char* what) {
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    loop_.post([promise, fn = std::move(fn), what]() mutable {
      try {
        fn(promise);
      } catch (const std::exception& e) {
        promise->set_value(internal_error(what, e));
      }
    });
    return future;
  }

  // ---------------------------------------------------------------- worker side

  Status add_group(const GroupId& id) {
    auto loaded = home_.load_group(id);
    if (!loaded) return loaded.error();
    auto& state = groups_[id];
    state.keys = std::make_unique<crypto::GroupKeys>(std::move(loaded->keys));
    state.relays = std::move(loaded->relays);
    if (home_.identity()) return make_links(state);
    return Status::ok();
  }

  struct GroupState {
    std::unique_ptr<crypto::GroupKeys> keys;  // a stable address: links and sessions point to it
    std::vector<client_detail::GroupRelay> relays;
    std::vector<std::unique_ptr<RelayLink>> links;
  };

  // Links need the device identity (their sessions are signed with it).
  Status make_links(GroupState& state) {
    if (!state.links.empty()) return Status::ok();
    for (const auto& relay : state.relays) {
      auto stored = store_->load_cursor(state.keys->group_id(), relay.url);
      if (!stored) return stored.error();
      const DeliveryLedger::LinkId id = next_link_id_++;
      state.links.push_back(std::make_unique<RelayLink>(env_, id, *state.keys, relay, *stored));
      links_by_id_[id] = state.links.back().get();
    }
    return Status::ok();
  }

  void start_links() {
    if (shutting_down_) return;
    for (auto& [id, state] : groups_) {
      for (auto& link : state.links) link->start();
    }
  }

  void shutdown() {
    shutting_down_ = true;
    for (auto& [id, state] : groups_) {
      for (auto& link : state.links) link->stop();
    }
    // create_group jobs end within their handshake timeout; their results are stored by the
    // tasks they post, which the loop still runs (without starting links).
    for (auto& job : jobs_) {
      if (job.joinable()) job.join();
    }
  }

  void report_outbox() {
    auto count = store_->outbox_count();
    if (!count) {
      events_.push(EventError{std::nullopt, count.error()});
      return;
    }
    if (reported_outbox_ == *count) return;
    reported_outbox_ = *count;
    events_.push(EventOutboxChanged{*count});
  }

  // Persists what the app has confirmed (poll_events again / commit_received), then ACKs relays.
  Status commit_confirmed() {
    Status result;
    for (const auto& commit : ledger_.take_committable(confirmed_seq_)) {
      Status saved = store_->commit_delivery(commit.group, commit.cursors, commit.seen);
      ledger_.forget(commit);
      if (!saved) {
        events_.push(EventError{commit.group, saved});
        if (result.is_ok()) result = saved;
        continue;
      }
      for (const auto& [link, cursor] : commit.links) {
        if (auto it = links_by_id_.find(link); it != links_by_id_.end()) it->second->committed(cursor);
      }
    }
    return result;
  }

  Status confirm(std::uint64_t seq) {
    confirmed_seq_ = std::max(confirmed_seq_, seq);
    return commit_confirmed();
  }

  void resume_links() {
    for (auto& [id, state] : groups_) {
      for (auto& link : state.links) link->resume();
    }
  }

  Result<BlobId> push(const GroupId& group, ByteView data, std::uint32_t ttl_seconds) {
    if (Status s = home_.require_identity(); !s) return s;
    auto it = groups_.find(group);
    if (it == groups_.end()) return Status(Code::kNotFound, "this device is not in group " + group.to_hex());
    auto entry = client_detail::make_outbox_entry(*it->second.keys, home_.device_id(), data, ttl_seconds);
    if (!entry) return entry.error();
    // Durable (synchronous=FULL) before push() returns: a crash from here on loses nothing.
    if (Status queued = store_->outbox_add(*entry); !queued) return queued;
    report_outbox();
    for (auto& link : it->second.links) link->wake_outbox();
    return entry->blob_id;
  }

  Result<DeviceIdentity> create_identity(const std::string& name) {
    auto created = home_.create_identity(name);
    if (!created) return created;
    for (auto& [id, state] : groups_) {
      if (Status made = make_links(state); !made) events_.push(EventError{id, made});
    }
    start_links();
    return created;
  }

  void create_group(std::vector<std::string> urls, std::string name,
                    std::shared_ptr<std::promise<Result<CreatedGroup>>> promise) {
    if (Status s = home_.require_identity(); !s) return promise->set_value(s);
    if (urls.empty())
      return promise->set_value(Status(Code::kInvalidArgument, "a group needs at least one relay"));
    if (urls.size() > kMaxInviteRelays) {
      return promise->set_value(
          Status(Code::kInvalidArgument,
                 "a group may have at most " + std::to_string(kMaxInviteRelays) + " relays"));
    }
    for (std::size_t i = 0; i < urls.size(); ++i) {
      if (urls[i].empty()) return promise->set_value(Status(Code::kInvalidArgument, "empty relay URL"));
      for (std::size_t j = 0; j < i; ++j) {
        if (urls[i] == urls[j]) {
          return promise->set_value(Status(Code::kInvalidArgument, "relay " + urls[i] + " is listed twice"));
        }
      }
    }
    if (shutting_down_)
      return promise->set_value(Status(Code::kConnectionClosed, "the client is shutting down"));
    auto group = std::make_shared<client_detail::NewGroup>(client_detail::generate_group());
    std::vector<client_detail::SessionParams> params;
    for (const auto& url : urls) {
      params.push_back(home_.session_params(url, std::nullopt, group->keys, 0, options_.request_timeout));
    }
    // The handshakes block: run them on a job thread, then finish on the worker.
    auto job = jobs_.emplace(jobs_.end());
    *job = std::thread([this, job, group, params = std::move(params), name = std::move(name),
                        promise = std::move(promise)]() mutable {
      std::vector<client_detail::RelayContact> contacts;
      Status failed;
      for (const auto& p : params) {
        // Learn each relay's identity (and prove it holds its key) before it is pinned.
        auto contact = client_detail::contact_relay(options_.transport, p);
        if (!contact) {
          failed = contact.error();
          break;
        }
        contacts.push_back(std::move(*contact));
      }
      loop_.post([this, job, group, contacts = std::move(contacts), failed = std::move(failed),
                  name = std::move(name), promise = std::move(promise)] {
        if (job->joinable()) job->join();
        jobs_.erase(job);
        if (!failed.is_ok()) return promise->set_value(failed);
        auto created = home_.store_created_group(*group, contacts, name, kInviteValidity);
        if (created) {
          if (Status added = add_group(created->group.group_id); !added)
            events_.push(EventError{std::nullopt, added});
          start_links();
        }
        promise->set_value(std::move(created));
      });
    });
  }

  Result<GroupInfo> join_group(const std::string& link) {
    auto joined = home_.join_group(link);
    if (!joined) return joined;
    if (Status added = add_group(joined->group_id); !added) return added;
    start_links();
    return joined;
  }

  std::vector<GroupStatus> status() {
    std::vector<GroupStatus> out;
    auto infos = home_.groups();
    if (!infos) return out;
    for (auto& info : *infos) {
      GroupStatus status;
      auto it = groups_.find(info.group_id);
      if (it != groups_.end() && !it->second.links.empty()) {
        for (const auto& link : it->second.links) {
          status.relays.push_back(RelayStatus{link->relay().url, link->state(), link->committed_cursor(),
                                              link->relay_max_cursor()});
        }
      } else if (it != groups_.end()) {
        for (const auto& relay : it->second.relays) {
          auto cursor = store_->load_cursor(info.group_id, relay.url);
          status.relays.push_back(
              RelayStatus{relay.url, ConnectionState::kDisconnected, cursor ? cursor->cursor : 0});
        }
      }
      auto outbox = store_->outbox_count(info.group_id);
      status.outbox = outbox ? *outbox : 0;
      status.group = std::move(info);
      out.push_back(std::move(status));
    }
    return out;
  }

  // ---------------------------------------------------------------- app side

  std::vector<Event> poll_events(std::size_t max) {
    EventQueue::Taken taken;
    std::uint64_t previous = 0;
    bool post_confirm = false;
    {
      std::lock_guard lock(poll_mu_);
      previous = handed_out_seq_;
      taken = events_.take(max);
      handed_out_seq_ = taken.last_seq;
      post_confirm = previous > confirm_posted_;
      if (post_confirm) confirm_posted_ = previous;
    }
    if (post_confirm || taken.resume) {
      loop_.post([this, previous, post_confirm, resume = taken.resume] {
        if (post_confirm) (void)confirm(previous);
        if (resume) resume_links();
      });
    }
    for (const auto& event : taken.events) {
      const auto* received = std::get_if<EventBlobReceived>(&event);
      if (received == nullptr) continue;
      std::shared_ptr<const BlobHandler> handler;
      {
        std::lock_guard lock(handlers_mu_);
        if (auto it = handlers_.find(received->group); it != handlers_.end()) handler = it->second;
      }
      if (!handler) continue;
      try {
        (*handler)(received->blob);  // no lock held: the handler may call back into the client
      } catch (const std::exception& e) {
        report_handler_error(received->group, e.what());
      } catch (...) {
        report_handler_error(received->group, "unknown exception");
      }
    }
    return std::move(taken.events);
  }

  Status commit_received() {
    std::uint64_t upto = 0;
    {
      std::lock_guard lock(poll_mu_);
      upto = handed_out_seq_;
      confirm_posted_ = std::max(confirm_posted_, upto);
    }
    return call([this, upto] { return confirm(upto); });
  }

  void set_blob_handler(const GroupId& group, BlobHandler handler) {
    std::lock_guard lock(handlers_mu_);
    if (!handler) {
      handlers_.erase(group);
    } else {
      handlers_[group] = std::make_shared<const BlobHandler>(std::move(handler));
    }
  }

  void report_handler_error(const GroupId& group, const std::string& what) {
    // Queued by the worker, so that the notify hook keeps running on the worker only.
    loop_.post([this, group, what] {
      events_.push(EventError{group, Status(Code::kInternal, "blob handler threw: " + what)});
    });
  }

  AsyncClientOptions options_;
  std::unique_ptr<LocalStore> store_;
  DeviceHome home_;
  EventQueue events_;
  DeliveryLedger ledger_;
  std::mt19937_64 rng_;
  client_detail::JitterSource jitter_;
  WorkerLoop loop_;
  LinkEnv env_;

  // Worker thread only.
  std::map<GroupId, GroupState> groups_;
  std::map<DeliveryLedger::LinkId, RelayLink*> links_by_id_;
  DeliveryLedger::LinkId next_link_id_ = 1;
  std::uint64_t confirmed_seq_ = 0;
  std::optional<std::uint64_t> reported_outbox_;
  bool shutting_down_ = false;
  std::list<std::thread> jobs_;

  // App side.
  std::mutex poll_mu_;
  std::uint64_t handed_out_seq_ = 0;  // the last event any poll_events() handed out
  std::uint64_t confirm_posted_ = 0;  // the highest seq already sent to the worker to commit
  std::mutex handlers_mu_;
  std::map<GroupId, std::shared_ptr<const BlobHandler>> handlers_;
};

// ---------------------------------------------------------------- public API

AsyncClient::AsyncClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AsyncClient::~AsyncClient() = default;

Result<std::unique_ptr<AsyncClient>> AsyncClient::open(const std::string& home_dir,
                                                       AsyncClientOptions options) {
  try {
    if (!options.transport) {
      return Status(Code::kInvalidArgument,
                    "AsyncClientOptions.transport is required (e.g. connect_websocket)");
    }
    if (options.max_queued_events == 0) {
      return Status(Code::kInvalidArgument, "AsyncClientOptions.max_queued_events must be at least 1");
    }
    if (options.request_timeout.count() <= 0) {
      return Status(Code::kInvalidArgument, "AsyncClientOptions.request_timeout must be positive");
    }
    if (options.outbox_retry_limit.count() < 0) {
      return Status(Code::kInvalidArgument, "AsyncClientOptions.outbox_retry_limit must not be negative");
    }
    auto store = LocalStore::open(home_dir);
    if (!store) return store.error();
    // Best effort: an old seen-blob list is only an optimisation for a rare re-pull.
    (void)(*store)->prune_seen(client_detail::now_unix_ms() - kSeenRetentionMs);
    auto impl = std::make_unique<Impl>(std::move(*store), std::move(options));
    if (Status opened = impl->open(); !opened) return opened;
    return std::unique_ptr<AsyncClient>(new AsyncClient(std::move(impl)));
  } catch (const std::exception& e) {
    return internal_error("opening the client", e);
  }
}

std::future<Result<DeviceIdentity>> AsyncClient::create_identity(const std::string& name) {
  try {
    return impl_->async<Result<DeviceIdentity>>(
        [this, name](const auto& promise) { promise->set_value(impl_->create_identity(name)); },
        "create_identity");
  } catch (const std::exception& e) {
    return ready_future<Result<DeviceIdentity>>(internal_error("create_identity", e));
  }
}

std::optional<DeviceIdentity> AsyncClient::identity() const {
  try {
    return impl_->call([this] { return impl_->home_.identity(); });
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::future<Result<CreatedGroup>> AsyncClient::create_group(const std::vector<std::string>& relay_urls,
                                                            const std::string& name) {
  try {
    return impl_->async<Result<CreatedGroup>>(
        [this, relay_urls, name](auto promise) { impl_->create_group(relay_urls, name, std::move(promise)); },
        "create_group");
  } catch (const std::exception& e) {
    return ready_future<Result<CreatedGroup>>(internal_error("create_group", e));
  }
}

std::future<Result<GroupInfo>> AsyncClient::join_group(const std::string& invite_link) {
  try {
    return impl_->async<Result<GroupInfo>>(
        [this, invite_link](const auto& promise) { promise->set_value(impl_->join_group(invite_link)); },
        "join_group");
  } catch (const std::exception& e) {
    return ready_future<Result<GroupInfo>>(internal_error("join_group", e));
  }
}

std::vector<GroupInfo> AsyncClient::groups() const {
  try {
    return impl_->call([this] {
      auto all = impl_->home_.groups();
      return all ? std::move(*all) : std::vector<GroupInfo>{};
    });
  } catch (const std::exception&) {
    return {};
  }
}

Result<BlobId> AsyncClient::push(const GroupId& group, ByteView data, std::uint32_t ttl_seconds) {
  try {
    return impl_->call([&] { return impl_->push(group, data, ttl_seconds); });
  } catch (const std::exception& e) {
    return internal_error("push", e);
  }
}

std::vector<Event> AsyncClient::poll_events(std::size_t max) {
  try {
    return impl_->poll_events(max);
  } catch (const std::exception&) {
    return {};
  }
}

Status AsyncClient::commit_received() {
  try {
    return impl_->commit_received();
  } catch (const std::exception& e) {
    return internal_error("commit_received", e);
  }
}

void AsyncClient::set_blob_handler(const GroupId& group, std::function<void(const ReceivedBlob&)> handler) {
  try {
    impl_->set_blob_handler(group, std::move(handler));
  } catch (const std::exception&) {
    // Allocation failure: the handler is simply not installed.
  }
}

std::vector<GroupStatus> AsyncClient::status() const {
  try {
    return impl_->call([this] { return impl_->status(); });
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace blindsync
