#include "hub/hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "blindsync/auth/transcript.h"
#include "blindsync/core/messages.h"
#include "hub/close_codes.h"
#include "hub/device_name.h"
#include "limits/relay_limits.h"

namespace blindsync::relay {
namespace {

std::uint64_t wall_clock_ms() {
  using namespace std::chrono;
  return static_cast<std::uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

Bytes encode(std::uint32_t request_id, Message message) {
  return encode_frame(Frame{request_id, std::move(message)});
}

// Bound on what a PULL_RESPONSE may hold besides payloads: the frame header, the response's own
// keys, and per blob its ids, cursor, timestamp and msgpack keys (well under this estimate).
constexpr std::size_t kPullResponseOverhead = 256;

// Keeps the first blobs whose encoded frame fits max_frame_bytes (at least one: a blob within the
// blob limit always fits, the frame limit has room for its overhead). Returns true if any was cut.
bool trim_to_frame(std::vector<PulledBlob>& blobs, std::size_t max_frame_bytes) {
  std::size_t total = kPullResponseOverhead;
  for (std::size_t i = 0; i < blobs.size(); ++i) {
    total += blobs[i].payload.size() + kPulledBlobOverheadBytes;
    if (total > max_frame_bytes && i > 0) {
      blobs.resize(i);
      return true;
    }
  }
  return false;
}

// Limits as the hub enforces them: zero counts raised to 1, and a frame limit that always has
// room for a full blob.
HubOptions normalized(HubOptions options) {
  RelayLimits& r = options.relay;
  r.max_sessions = std::max<std::uint32_t>(1, r.max_sessions);
  r.max_sessions_per_group = std::max<std::uint32_t>(1, r.max_sessions_per_group);
  r.device_messages_per_minute = std::max<std::uint32_t>(1, r.device_messages_per_minute);
  r.global_messages_per_second = std::max<std::uint32_t>(1, r.global_messages_per_second);
  r.limiter_max_devices = std::max<std::size_t>(1, r.limiter_max_devices);
  r.cleanup_interval_ms = std::max<std::uint32_t>(1, r.cleanup_interval_ms);
  Limits& l = options.limits;
  l.max_pull_limit = std::max<std::uint32_t>(1, l.max_pull_limit);
  const std::uint64_t wanted_frame = std::uint64_t{l.max_blob_bytes} + kFrameOverheadBytes;
  if (l.max_frame_bytes < wanted_frame) {
    l.max_frame_bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(wanted_frame, UINT32_MAX));
  }
  if (!options.metrics) options.metrics = std::make_shared<Metrics>();
  return options;
}

StoreLimits store_limits_of(const RelayLimits& r) {
  return StoreLimits{
      .group_quota_bytes = r.group_quota_bytes,
      .max_groups = r.max_groups,
      .storage_cap_bytes = r.storage_cap_bytes,
      .max_devices_per_group = r.max_devices_per_group,
  };
}

Code store_error_code(const Status& status) {
  const auto value = static_cast<std::uint16_t>(status.code());
  if (status.code() == Code::kStorageFull) return Code::kStorageFull;
  if (value >= 2000 && value < 3000 && is_wire_code(value)) return status.code();  // e.g. a quota
  return Code::kInternal;
}

}  // namespace

// Holds the fan-out frames that reach a session between its registration and its WELCOME.
//
// A session is registered before the relay reads max_cursor (so no blob committed after that read
// can miss it), yet its first frame must be the WELCOME: frames sent meanwhile wait here and follow
// the WELCOME. At most kMaxHeld wait (the window lasts one SQLite read); beyond it they are dropped
// and the client's cursor tracker sees the gap at the next NOTIFY and pulls.
class Hub::WelcomeGate final : public Connection {
 public:
  static constexpr std::size_t kMaxHeld = 256;

  explicit WelcomeGate(std::shared_ptr<Connection> inner) : inner_(std::move(inner)) {}

  void send(Bytes frame) override {
    std::lock_guard lock(mutex_);
    if (open_) {
      inner_->send(std::move(frame));
    } else if (held_.size() < kMaxHeld) {
      held_.push_back(std::move(frame));
    }
  }
  void close(std::uint16_t code, std::string_view reason) override { inner_->close(code, reason); }
  std::string remote_address() const override { return inner_->remote_address(); }
  bool congested() const override { return inner_->congested(); }
  void defer(std::function<void()> work) override { inner_->defer(std::move(work)); }

  // Sends the WELCOME, then what was held; later frames pass straight through.
  void open(Bytes welcome) {
    std::lock_guard lock(mutex_);
    inner_->send(std::move(welcome));
    for (auto& frame : held_) inner_->send(std::move(frame));
    held_ = {};  // release the storage: the session may now stay idle for hours
    open_ = true;
  }

 private:
  const std::shared_ptr<Connection> inner_;
  std::mutex mutex_;
  bool open_ = false;
  std::vector<Bytes> held_;
};

// Protocol state of one connection. Fields after `machine` are set by a successful HELLO.
struct Hub::Peer {
  Peer(std::shared_ptr<Connection> c, Clock::time_point now, std::chrono::milliseconds hello_timeout)
      : connection(std::move(c)), machine(Role::kRelay, now, hello_timeout) {}

  const std::shared_ptr<Connection> connection;
  std::mutex mutex;  // serialises frames, ticks and shutdown on this peer
  SessionMachine machine;
  Nonce relay_nonce;
  std::string address;  // for logs

  std::uint32_t strikes = 0;  // consecutive frames refused by the rate limiter
  Cursor acked = 0;           // the device's ACK watermark as this session knows it
  Cursor acked_stored = 0;    // what was last handed to the store (ACK writes are coalesced)

  bool registered = false;
  std::uint64_t session_id = 0;
  GroupId group_id;
  DeviceId device_id;
  std::shared_ptr<WelcomeGate> gate;
};

Hub::Hub(HubOptions options, std::unique_ptr<Store> store, auth::SigningKey relay_key)
    : options_(normalized(std::move(options))),
      metrics_(options_.metrics),
      decode_limits_{
          .max_frame_bytes = options_.limits.max_frame_bytes,
          // A payload over the blob limit still decodes (the frame limit bounds it), so the hub can
          // answer BLOB_TOO_LARGE and keep the session instead of rejecting the frame as malformed.
          .max_payload_bytes = options_.limits.max_frame_bytes,
          // No client->relay message has an array in its body; the frame itself is a 4-array.
          // Keeping this tiny bounds how many msgpack objects a hostile frame can make the
          // decoder allocate (each costs ~24-48 bytes), whatever its size.
          .max_array_items = 4,
      },
      relay_key_(std::move(relay_key)),
      relay_id_(relay_key_.public_key()),
      registry_(options_.relay.max_sessions_per_group, options_.relay.max_sessions),
      rate_limiter_(options_.relay.device_messages_per_minute, options_.relay.global_messages_per_second,
                    options_.relay.limiter_max_devices, Clock::now()),
      connection_limiter_(options_.relay.max_connections_per_ip),
      admission_(options_.relay),
      store_(std::move(store)),
      epoch_(store_->epoch()) {
  assert(options_.limits.max_pull_limit >= 1);
  store_->set_limits(store_limits_of(options_.relay));
}

std::optional<ConnectionSlot> Hub::admit_connection(std::string_view ip) {
  auto slot = connection_limiter_.try_acquire(ip);
  if (!slot) {
    metrics_->count_rate_limit(RateLimitKind::kConnectionsPerIp);
    // debug, not info: a flood of refused connections must not become a flood of log lines
    // (connections_per_ip in /metrics counts them).
    spdlog::debug("connection from {} refused: more than {} connections from one address", ip,
                  options_.relay.max_connections_per_ip);
  }
  return slot;
}

Hub::~Hub() { shutdown(); }

std::shared_ptr<Hub::Peer> Hub::find_peer(const Connection* connection) const {
  std::lock_guard lock(peers_mutex_);
  auto it = peers_.find(connection);
  return it == peers_.end() ? nullptr : it->second;
}

void Hub::on_open(const std::shared_ptr<Connection>& connection) {
  auto peer = std::make_shared<Peer>(connection, Clock::now(),
                                     std::chrono::milliseconds(options_.limits.hello_timeout_ms));
  peer->relay_nonce = auth::random_id<Nonce>();
  peer->address = connection->remote_address();
  bool refused = false;
  {
    // Checked under peers_mutex_: shutdown() sets the flag before it takes the peers, so a
    // connection is either refused here or reached by shutdown's BYE, never neither.
    std::lock_guard lock(peers_mutex_);
    if (shutting_down_.load()) {
      refused = true;
    } else if (!peers_.emplace(connection.get(), peer).second) {
      return;  // on_open twice: keep the first
    }
  }
  if (refused) {
    connection->send(encode(0, Bye{static_cast<std::uint16_t>(Code::kRelayShuttingDown), "relay shutting down"}));
    connection->close(websocket_close_code(Code::kRelayShuttingDown), "relay shutting down");
    return;
  }
  std::lock_guard lock(peer->mutex);
  const Status sent = peer->machine.on_send(MessageType::kChallenge);
  assert(sent.is_ok());
  (void)sent;
  connection->send(encode(0, Challenge{relay_id_, peer->relay_nonce, {kProtocolVersion}, options_.limits}));
  spdlog::debug("connection from {}: challenge sent", peer->address);
}

void Hub::on_frame(const std::shared_ptr<Connection>& connection, ByteView bytes) {
  auto peer = find_peer(connection.get());
  if (!peer) return;  // closed, or never opened
  std::lock_guard lock(peer->mutex);
  if (!peer->machine.is_open()) return;  // a failed or closing session: frames in flight are ignored
  if (!admit_frame(*peer, bytes)) return;

  auto frame = decode_frame(bytes, decode_limits_);
  if (!frame) {
    std::uint32_t request_id = 0;
    if (auto header = peek_frame_header(bytes, decode_limits_)) request_id = header->request_id;
    const auto raw = static_cast<std::uint16_t>(frame.error().code());
    const Code code = is_wire_code(raw) ? frame.error().code() : Code::kInvalidMessage;
    fail(*peer, code, frame.error().message(), request_id);
    return;
  }
  const Status allowed = peer->machine.on_receive(frame->type());
  if (!allowed) {
    fail(*peer, Code::kInvalidState, allowed.message(), frame->request_id);
    return;
  }
  handle_frame(*peer, std::move(*frame));
}

bool Hub::admit_frame(Peer& peer, ByteView bytes) {
  auto header = peek_frame_header(bytes, decode_limits_);
  if (header && header->type == static_cast<std::uint8_t>(MessageType::kBye)) {
    return true;  // a goodbye is never refused: it only ends work (and only one is ever handled)
  }
  // Checked before decoding: a flood costs the relay a header peek per frame, not a decode.
  const auto now = Clock::now();
  if (peer.registered && header && header->type == static_cast<std::uint8_t>(MessageType::kAck)) {
    // A client ACKs what it received, so its ACK rate follows the other devices' pushes, not its
    // own activity: ACKs that advance the watermark do not spend the device's budget (handle_ack
    // charges the ones that do not). They still take from the global bucket; an ACK that finds it
    // empty is dropped without an ERROR — ACK has no reply, and the next one supersedes it.
    if (rate_limiter_.check_anonymous(now) == RateDecision::kAllowed) return true;
    metrics_->count_rate_limit(RateLimitKind::kGlobal);
    return false;
  }
  const RateDecision decision =
      peer.registered ? rate_limiter_.check_device(peer.device_id, now) : rate_limiter_.check_anonymous(now);
  if (decision == RateDecision::kAllowed) {
    peer.strikes = 0;
    return true;
  }
  const bool global = decision == RateDecision::kGlobalLimited;
  metrics_->count_rate_limit(global ? RateLimitKind::kGlobal : RateLimitKind::kDeviceMessages);
  const std::uint32_t rid = header ? header->request_id : 0;
  std::string message = global ? "the relay is receiving too many messages; retry later"
                               : "more than " + std::to_string(options_.relay.device_messages_per_minute) +
                                     " messages per minute from this device";
  if (strike_out(peer) || !peer.registered) {
    // Before HELLO there is no session to keep; after it, a client that keeps sending into a
    // closed bucket is abusing it.
    fail(peer, Code::kRateLimited, std::move(message), rid);
  } else {
    reply_error(peer, Code::kRateLimited, std::move(message), rid);
  }
  return false;
}

bool Hub::strike_out(Peer& peer) const {
  const std::uint32_t limit = options_.relay.rate_limit_strikes;
  return limit != 0 && ++peer.strikes >= limit;
}

void Hub::handle_frame(Peer& peer, Frame frame) {
  const std::uint32_t rid = frame.request_id;
  std::visit(
      [&](auto& message) {
        using T = std::decay_t<decltype(message)>;
        if constexpr (std::is_same_v<T, Hello>) {
          handle_hello(peer, rid, message);
        } else if constexpr (std::is_same_v<T, Push>) {
          handle_push(peer, rid, std::move(message));
        } else if constexpr (std::is_same_v<T, Pull>) {
          handle_pull(peer, rid, message);
        } else if constexpr (std::is_same_v<T, Ack>) {
          handle_ack(peer, message);
        } else if constexpr (std::is_same_v<T, Delete>) {
          handle_delete(peer, rid, message);
        } else if constexpr (std::is_same_v<T, ListDevices>) {
          handle_list_devices(peer, rid);
        } else if constexpr (std::is_same_v<T, Bye>) {
          spdlog::debug("session {} from {} said bye ({})", peer.session_id, peer.address, message.code);
          peer.machine.begin_close();
          unregister(peer);
          peer.connection->close(kCloseNormal, "bye");
        } else if constexpr (std::is_same_v<T, Error>) {
          spdlog::debug("{} reported error {}", peer.address, message.code);
        } else if constexpr (std::is_same_v<T, RevokeDevice> || std::is_same_v<T, RegisterPush> ||
                             std::is_same_v<T, UnregisterPush>) {
          reply_error(peer, Code::kInvalidMessage,
                      std::string(message_type_name(type_of(Message(message)))) + " is not supported yet", rid);
        } else {
          // Relay-to-client messages: the session machine should already refuse them.
          fail(peer, Code::kInvalidState,
               std::string(message_type_name(type_of(Message(message)))) + " is never sent by a client", rid);
        }
      },
      frame.message);
}

void Hub::handle_hello(Peer& peer, std::uint32_t rid, const Hello& hello) {
  const RelayLimits& relay = options_.relay;
  // Cheap refusal first: a full relay does not spend two signature verifications on a HELLO.
  // (The registry re-checks atomically below.)
  if (registry_.counts().sessions >= relay.max_sessions) {
    metrics_->count_rate_limit(RateLimitKind::kSessions);
    fail(peer, Code::kRelayOverloaded, "the relay has the maximum number of sessions; retry later", rid);
    return;
  }
  const Status verified = auth::verify_hello(hello, relay_id_, peer.relay_nonce);
  if (!verified) {
    metrics_->auth_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("handshake from {} refused: {}", peer.address, verified.message());
    fail(peer, Code::kUnauthorized, verified.message(), rid);
    return;
  }
  // Admission is checked only on a verified HELLO: a refusal never rests on an unproven claim.
  if (const Status admitted = admission_.check(hello.access_token, hello.group_id); !admitted) {
    metrics_->auth_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("handshake from {} refused by access policy {}: {}", peer.address,
                 admission_mode_name(relay.access), admitted.message());
    fail(peer, Code::kUnauthorized, admitted.message(), rid);
    return;
  }

  Result<SessionStart> start = Status(Code::kRelayShuttingDown, "relay shutting down");
  {
    std::shared_lock lock(store_gate_);
    if (!store_closed_) start = store_->session_start(hello.group_id, hello.device_id);
  }
  if (!start) {
    const Code code = start.error().code() == Code::kRelayShuttingDown ? Code::kRelayShuttingDown : Code::kInternal;
    if (code == Code::kInternal) {
      spdlog::error("handshake from {}: reading the group failed: {}", peer.address, start.error().to_string());
    }
    fail(peer, code, code == Code::kInternal ? "storage failure" : "relay shutting down", rid);
    return;
  }
  if (start->device && start->device->revoked) {
    fail(peer, Code::kDeviceRevoked, "this device was revoked from the group", rid);
    return;
  }
  if (!start->group_exists && relay.max_groups != 0 && start->group_count >= relay.max_groups) {
    fail(peer, Code::kStorageFull, "the relay cannot take new groups", rid);
    return;
  }
  if (!start->device && relay.max_devices_per_group != 0 && start->device_count >= relay.max_devices_per_group) {
    fail(peer, Code::kGroupFull,
         "the group has the maximum of " + std::to_string(relay.max_devices_per_group) + " devices", rid);
    return;
  }

  // Registered before max_cursor is read so that no blob committed after the read misses this
  // session; the gate keeps such NOTIFYs behind the WELCOME.
  const std::uint64_t session_id = next_session_id_.fetch_add(1);
  auto gate = std::make_shared<WelcomeGate>(peer.connection);
  std::string name = sanitize_device_name(hello.device_name);
  const Status added = registry_.add(hello.group_id, RegisteredSession{
                                                         .session_id = session_id,
                                                         .device_id = hello.device_id,
                                                         .device_name = name,
                                                         .connected_at_ms = wall_clock_ms(),
                                                         .connection = gate,
                                                     });
  if (!added) {
    Code code = Code::kInternal;
    if (added.code() == Code::kGroupFull) {
      code = Code::kGroupFull;
      metrics_->count_rate_limit(RateLimitKind::kGroupSessions);
    } else if (added.code() == Code::kRelayOverloaded) {
      code = Code::kRelayOverloaded;
      metrics_->count_rate_limit(RateLimitKind::kSessions);
    }
    fail(peer, code, added.message(), rid);
    return;
  }
  peer.registered = true;
  peer.session_id = session_id;
  peer.group_id = hello.group_id;
  peer.device_id = hello.device_id;
  peer.gate = gate;
  peer.strikes = 0;
  peer.acked = peer.acked_stored = start->device ? start->device->acked_cursor : 0;

  Result<Cursor> max_cursor = Status(Code::kRelayShuttingDown, "relay shutting down");
  {
    std::shared_lock lock(store_gate_);
    if (!store_closed_) {
      max_cursor = store_->max_cursor(hello.group_id);
      // Remembered for LIST_DEVICES, pending counts and drop-acked retention; queued behind any
      // push of this group, so it needs no answer.
      store_->submit_device_seen(hello.group_id, hello.device_id, std::move(name), wall_clock_ms(),
                                 [address = peer.address](Status st) {
                                   if (!st) spdlog::info("device of {} not recorded: {}", address, st.message());
                                 });
    }
  }
  if (!max_cursor) {
    const Code code = max_cursor.error().code() == Code::kRelayShuttingDown ? Code::kRelayShuttingDown : Code::kInternal;
    spdlog::error("handshake from {}: reading max cursor failed: {}", peer.address, max_cursor.error().to_string());
    fail(peer, code, code == Code::kInternal ? "storage failure" : "relay shutting down", rid);
    return;
  }

  registry_.note_cursor(hello.group_id, *max_cursor);
  // What the device holds: what it says it has, or what it acknowledged earlier, whichever is
  // further (a device may ACK and then restart before its cursor was saved, or the reverse).
  const Cursor acked = start->device ? start->device->acked_cursor : 0;
  const Cursor held = std::min(std::max(hello.last_cursor, acked), *max_cursor);
  const auth::HandshakeInputs inputs{relay_id_, peer.relay_nonce, hello.client_nonce, hello.device_id, hello.group_id};
  Welcome welcome{
      .session_id = session_id,
      .epoch = epoch_,
      .max_cursor = *max_cursor,
      .pending_count = *max_cursor - held,
      .limits = options_.limits,
      .relay_sig = auth::sign_welcome(inputs, relay_key_),
  };
  const Status sent = peer.machine.on_send(MessageType::kWelcome);
  if (!sent) {  // cannot happen after an accepted HELLO; refuse rather than run a confused session
    fail(peer, Code::kInternal, "session state error", rid);
    return;
  }
  gate->open(encode(rid, std::move(welcome)));
  metrics_->sessions_total.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("session {} from {} joined group {}", session_id, peer.address, hello.group_id.to_hex().substr(0, 16));
}

void Hub::handle_push(Peer& peer, std::uint32_t rid, Push push) {
  const Limits& limits = options_.limits;
  if (push.payload.size() > limits.max_blob_bytes) {
    reply_error(peer, Code::kBlobTooLarge,
                "payload of " + std::to_string(push.payload.size()) + " bytes exceeds the limit of " +
                    std::to_string(limits.max_blob_bytes),
                rid);
    return;
  }
  std::uint64_t ttl = push.ttl_seconds == 0 ? options_.default_ttl_seconds : push.ttl_seconds;
  ttl = std::min<std::uint64_t>(ttl, limits.max_ttl_seconds);
  const std::uint64_t now_ms = wall_clock_ms();
  const auto size = static_cast<std::uint32_t>(push.payload.size());

  PushRequest request{
      .group_id = peer.group_id,
      .blob_id = push.blob_id,
      .sender_id = peer.device_id,
      .payload = std::move(push.payload),
      .timestamp_ms = now_ms,
      .expires_at_ms = now_ms + ttl * 1000,
  };
  // The completion runs on the store's writer thread: it only encodes and posts sends, and it
  // touches no Peer (its mutex may be held right now if the store completes synchronously).
  auto done = [this, pusher = peer.connection, session_id = peer.session_id, group = peer.group_id,
               sender = peer.device_id, blob_id = push.blob_id, rid, size,
               submitted = Clock::now()](Result<PushResult> result) mutable {
    // Queueing + group commit (+ fsync): what a PUSH waits for before its PUSH_ACK.
    metrics_->push_commit_latency.observe(std::chrono::duration<double>(Clock::now() - submitted).count());
    on_push_committed(pusher, session_id, group, sender, blob_id, rid, size, std::move(result));
  };
  std::shared_lock lock(store_gate_);
  if (store_closed_) {
    reply_error(peer, Code::kRelayShuttingDown, "relay shutting down", rid);
    return;
  }
  store_->submit_push(std::move(request), std::move(done));
}

void Hub::on_push_committed(const std::shared_ptr<Connection>& pusher, std::uint64_t session_id, const GroupId& group,
                            const DeviceId& sender, const BlobId& blob_id, std::uint32_t rid, std::uint32_t size,
                            Result<PushResult> result) {
  if (!result) {
    const Code code = store_error_code(result.error());
    if (code == Code::kInternal) {
      spdlog::error("push from session {} failed in the store: {}", session_id, result.error().to_string());
    } else {
      // Refusals (a quota, a full relay) are the client's answer and counted in /metrics; at
      // info level a flood of them would flood the log from the store's writer thread.
      spdlog::debug("push from session {} refused: {}", session_id, result.error().to_string());
    }
    // The detail of a storage fault stays in the log; the client only learns it was not its fault.
    send_error(*pusher, code, code == Code::kInternal ? "storage failure" : result.error().message(), rid);
    return;
  }
  const PushResult& r = *result;
  metrics_->pushes.fetch_add(1, std::memory_order_relaxed);
  if (r.duplicate) metrics_->push_duplicates.fetch_add(1, std::memory_order_relaxed);
  // Known before anyone can learn the cursor (and ACK it).
  if (!r.duplicate) registry_.note_cursor(group, r.cursor);
  // The readers are taken before the PUSH_ACK goes out: a session that joins once the pusher
  // holds its ACK learns the cursor from WELCOME and is not also sent a NOTIFY for it.
  std::vector<std::shared_ptr<Connection>> peers;
  if (!r.duplicate) peers = registry_.peers_of(group, session_id);  // a duplicate was notified when first stored
  pusher->send(encode(rid, PushAck{blob_id, r.cursor, r.timestamp_ms, r.duplicate}));
  if (peers.empty()) return;
  Notify notify{
      .blob_id = blob_id,
      .cursor = r.cursor,
      .sender_id = sender,
      .timestamp = r.timestamp_ms,
      .size = size,
      .payload = std::nullopt,  // set below when it is small enough to go inline
  };
  // Copied only now that someone is there to be sent it (the store shares what it stored).
  if (r.payload && r.payload->size() <= options_.limits.inline_notify_bytes) notify.payload = *r.payload;
  const bool has_payload = notify.payload.has_value();
  // Counted before any is sent, so whoever sees a NOTIFY also sees it counted in /metrics.
  metrics_->notifies.fetch_add(peers.size(), std::memory_order_relaxed);
  const Bytes full = encode(0, notify);
  Bytes bare;  // payload-less, made only if a slow reader needs it
  for (const auto& connection : peers) {
    // A reader that is behind gets the ~100-byte form: it pulls the payload when it catches up.
    if (has_payload && connection->congested()) {
      if (bare.empty()) {
        notify.payload.reset();
        bare = encode(0, notify);
      }
      connection->send(bare);
    } else {
      connection->send(full);
    }
  }
}

void Hub::handle_pull(Peer& peer, std::uint32_t rid, const Pull& pull) {
  const std::uint32_t max_limit = options_.limits.max_pull_limit;
  const std::uint32_t max_pages = std::max<std::uint32_t>(1, options_.max_pull_pages);
  PullRun run{
      .request_id = rid,
      .after = pull.after_cursor,
      .limit = pull.limit == 0 ? max_limit : std::min(pull.limit, max_limit),
      .page = 1,
      .pages = std::clamp<std::uint32_t>(pull.pages, 1, max_pages),
  };
  send_pull_page(peer, run);
}

// Pages back to back (Pull::pages, at most max_pull_pages), each continuing where the one before
// ended: a catch-up pays one round trip per run of pages instead of one per page. Each next page
// is made in a step of its own, after the page before was handed to the connection, so that a page
// goes out while the next is read. A run ends early at the last page there is; once the send
// queue is past half (a reader that is behind asks again when it has caught up, and the queue
// never holds more than about half its bound plus one page); and once the device's message budget
// is spent, since each page after the first costs one message, as a PULL of its own would.
void Hub::send_pull_page(Peer& peer, PullRun run) {
  const bool may_continue = run.page < run.pages && !peer.connection->congested();
  auto pulled = pull_page(peer, run.request_id, run.after, run.limit, may_continue);
  if (!pulled) return;
  peer.connection->send(std::move(pulled->frame));
  if (!pulled->continues) return;
  run.after = pulled->last_cursor;
  ++run.page;
  peer.connection->defer([this, connection = peer.connection, run] {
    auto next = find_peer(connection.get());
    if (!next) return;  // the session ended
    std::lock_guard lock(next->mutex);
    if (next->machine.is_open()) send_pull_page(*next, run);
  });
}

std::optional<Hub::PulledPage> Hub::pull_page(Peer& peer, std::uint32_t rid, Cursor after, std::uint32_t limit,
                                              bool may_continue) {
  // The store stops reading once the page would pass the frame limit, so one page never loads
  // more than about one frame of payloads.
  const std::size_t budget = options_.limits.max_frame_bytes > kPullResponseOverhead
                                 ? options_.limits.max_frame_bytes - kPullResponseOverhead
                                 : options_.limits.max_frame_bytes;
  Result<PullPage> page = Status(Code::kRelayShuttingDown, "relay shutting down");
  {
    std::shared_lock lock(store_gate_);
    if (!store_closed_) page = store_->pull(peer.group_id, after, limit, wall_clock_ms(), budget);
  }
  if (!page) {
    if (page.error().code() == Code::kRelayShuttingDown) {
      reply_error(peer, Code::kRelayShuttingDown, "relay shutting down", rid);
    } else {
      spdlog::error("pull for session {} failed in the store: {}", peer.session_id, page.error().to_string());
      reply_error(peer, Code::kInternal, "storage failure", rid);
    }
    return std::nullopt;
  }
  registry_.note_cursor(peer.group_id, page->max_cursor);
  Frame frame{rid, PullResponse{std::move(page->blobs), page->has_more, page->max_cursor}};
  auto& response = std::get<PullResponse>(frame.message);
  if (trim_to_frame(response.blobs, options_.limits.max_frame_bytes)) response.has_more = true;
  // Trimming only drops blobs and sets has_more, so whether a next page follows is known now.
  response.continues = may_continue && response.has_more && !response.blobs.empty() &&
                       rate_limiter_.check_device(peer.device_id, Clock::now()) == RateDecision::kAllowed;
  Bytes bytes = encode_frame(frame);
  // The estimate above is generous; should it ever be short, drop blobs until the frame fits.
  while (bytes.size() > options_.limits.max_frame_bytes && response.blobs.size() > 1) {
    response.blobs.pop_back();
    response.has_more = true;
    bytes = encode_frame(frame);
  }
  metrics_->pulls.fetch_add(1, std::memory_order_relaxed);
  const Cursor last_cursor = response.blobs.empty() ? after : response.blobs.back().cursor;
  return PulledPage{std::move(bytes), response.continues, last_cursor};
}

void Hub::handle_list_devices(Peer& peer, std::uint32_t rid) {
  // Bounded by the per-group device limit when there is one, and by what a frame can carry.
  constexpr std::size_t kMaxListed = 1000;
  Result<std::vector<DeviceRecord>> stored = Status(Code::kRelayShuttingDown, "relay shutting down");
  {
    std::shared_lock lock(store_gate_);
    if (!store_closed_) stored = store_->list_devices(peer.group_id, kMaxListed);
  }
  if (!stored) {
    if (stored.error().code() == Code::kRelayShuttingDown) {
      reply_error(peer, Code::kRelayShuttingDown, "relay shutting down", rid);
    } else {
      spdlog::error("list devices for session {} failed in the store: {}", peer.session_id, stored.error().to_string());
      reply_error(peer, Code::kInternal, "storage failure", rid);
    }
    return;
  }
  const std::uint64_t now_ms = wall_clock_ms();
  std::map<DeviceId, std::string> online;  // device -> name of its newest session
  for (const auto& s : registry_.sessions_of(peer.group_id)) online[s.device_id] = s.device_name;

  Devices devices;
  for (const auto& d : *stored) {
    const bool is_online = online.count(d.device_id) != 0;
    devices.devices.push_back(DeviceInfo{
        .device_id = d.device_id,
        .name = d.name,
        .last_seen = is_online ? now_ms : d.last_seen_ms,
        .acked_cursor = d.acked_cursor,
        .online = is_online,
        .revoked = d.revoked,
    });
    online.erase(d.device_id);
  }
  // Online devices whose record is still queued for the writer.
  for (const auto& [id, name] : online) {
    if (devices.devices.size() >= kMaxListed) break;
    devices.devices.push_back(DeviceInfo{
        .device_id = id, .name = name, .last_seen = now_ms, .acked_cursor = 0, .online = true, .revoked = false});
  }
  peer.connection->send(encode(rid, std::move(devices)));
}

void Hub::handle_ack(Peer& peer, const Ack& ack) {
  // Plausible progress: above what this session acknowledged, and no further than the group's
  // cursors this hub has handed out. Such ACKs are bounded by the group's push rate.
  const bool advancing = ack.acked_cursor > peer.acked && ack.acked_cursor <= registry_.known_cursor(peer.group_id);
  if (!advancing) {
    // A repeated, backwards or impossible ACK is an ordinary message: it costs a device token.
    if (rate_limiter_.check_device(peer.device_id, Clock::now()) != RateDecision::kAllowed) {
      metrics_->count_rate_limit(RateLimitKind::kDeviceMessages);
      if (strike_out(peer)) {
        fail(peer, Code::kRateLimited, "too many useless ACKs from this device", 0);
      }
    }
    return;
  }
  peer.acked = ack.acked_cursor;  // written by flush_ack: on the next tick, at close or shutdown
}

void Hub::flush_ack(Peer& peer) {
  if (!peer.registered || peer.acked <= peer.acked_stored) return;
  std::shared_lock lock(store_gate_);
  if (store_closed_) return;
  peer.acked_stored = peer.acked;
  store_->submit_ack(peer.group_id, peer.device_id, peer.acked, wall_clock_ms(),
                     [session_id = peer.session_id](Status st) {
                       if (!st) spdlog::warn("ack of session {} not stored: {}", session_id, st.to_string());
                     });
}

void Hub::handle_delete(Peer& peer, std::uint32_t rid, const Delete& request) {
  DeleteRequest store_request{
      .group_id = peer.group_id,
      .blob_id = request.blob_id,
      .requester = peer.device_id,
      .may_delete_others = request.force,  // see "DELETE policy" in hub.h
  };
  auto done = [this, connection = peer.connection, session_id = peer.session_id, rid,
               blob_id = request.blob_id](Result<DeleteResult> result) {
    if (result) {
      if (result->removed) metrics_->blobs_removed.fetch_add(1, std::memory_order_relaxed);
      connection->send(encode(rid, DeleteAck{blob_id, result->removed}));
      return;
    }
    const Code raw = result.error().code();
    const Code code = raw == Code::kNotBlobOwner ? raw : store_error_code(result.error());
    if (code == Code::kInternal) {
      spdlog::error("delete from session {} failed in the store: {}", session_id, result.error().to_string());
    }
    send_error(*connection, code, code == Code::kInternal ? "storage failure" : result.error().message(), rid);
  };
  std::shared_lock lock(store_gate_);
  if (store_closed_) {
    reply_error(peer, Code::kRelayShuttingDown, "relay shutting down", rid);
    return;
  }
  store_->submit_delete(std::move(store_request), std::move(done));
}

void Hub::reply_error(Peer& peer, Code code, std::string message, std::uint32_t rid) {
  send_error(*peer.connection, code, std::move(message), rid);
}

void Hub::send_error(Connection& connection, Code code, std::string message, std::uint32_t rid) {
  metrics_->count_error(code);
  connection.send(encode(rid, Error{static_cast<std::uint16_t>(code), std::move(message), rid}));
}

void Hub::fail(Peer& peer, Code code, std::string message, std::uint32_t rid) {
  // Every refusal that ends a session is logged at info: operators see abuse without payloads.
  spdlog::info("closing connection from {}: {} {}", peer.address, code_name(code), message);
  peer.machine.begin_close();
  unregister(peer);
  reply_error(peer, code, std::move(message), rid);
  peer.connection->close(websocket_close_code(code), code_name(code));
}

void Hub::unregister(Peer& peer) {
  if (!peer.registered) return;
  registry_.remove(peer.group_id, peer.session_id);
  peer.registered = false;
}

void Hub::on_close(const std::shared_ptr<Connection>& connection) {
  std::shared_ptr<Peer> peer;
  {
    std::lock_guard lock(peers_mutex_);
    auto it = peers_.find(connection.get());
    if (it == peers_.end()) return;
    peer = std::move(it->second);
    peers_.erase(it);
  }
  std::lock_guard lock(peer->mutex);
  peer->machine.begin_close();
  peer->machine.on_closed();
  flush_ack(*peer);
  if (peer->registered) {
    std::shared_lock gate(store_gate_);
    if (!store_closed_) {  // last_seen for LIST_DEVICES
      store_->submit_device_seen(peer->group_id, peer->device_id, std::nullopt, wall_clock_ms(), [](Status) {});
    }
  }
  unregister(*peer);
  spdlog::debug("connection from {} closed", peer->address);
}

void Hub::start_cleanup(Clock::time_point now) {
  {
    std::lock_guard lock(cleanup_mutex_);
    const auto interval = std::chrono::milliseconds(options_.relay.cleanup_interval_ms);
    if (cleanup_running_ || (last_cleanup_ && now - *last_cleanup_ < interval)) return;
    cleanup_running_ = true;
    last_cleanup_ = now;
  }
  auto done = [this](Result<CleanupReport> report) {
    if (report) {
      metrics_->cleanup_runs.fetch_add(1, std::memory_order_relaxed);
      const std::uint64_t removed = report->expired_removed + report->acked_removed;
      metrics_->blobs_removed.fetch_add(removed, std::memory_order_relaxed);
      if (removed != 0 || report->pages_released != 0 || report->devices_removed != 0) {
        spdlog::info("cleanup removed {} expired and {} acknowledged blob(s) ({} bytes), {} stale device(s), "
                     "{} empty group(s); released {} page(s)",
                     report->expired_removed, report->acked_removed, report->bytes_removed, report->devices_removed,
                     report->groups_removed, report->pages_released);
      }
    } else if (report.error().code() != Code::kRelayShuttingDown) {
      spdlog::error("cleanup failed: {}", report.error().to_string());
    }
    std::lock_guard lock(cleanup_mutex_);
    cleanup_running_ = false;
  };
  // Not under cleanup_mutex_: a closed store runs the completion right here.
  std::shared_lock lock(store_gate_);
  if (store_closed_) {
    done(Status(Code::kRelayShuttingDown, "relay shutting down"));
    return;
  }
  const std::uint64_t now_ms = wall_clock_ms();
  // Online devices count as seen now, so cleanup never forgets a device that is connected (and
  // LIST_DEVICES shows a fresh last_seen). Queued ahead of the cleanup, committed in a few batches.
  for (const auto& [group, device] : registry_.online_devices()) {
    store_->submit_device_seen(group, device, std::nullopt, now_ms, [](Status) {});
  }
  // A device away longer than the longest TTL can no longer be owed any blob: forgetting it keeps
  // the device table bounded by activity (revoked devices are always kept).
  store_->submit_cleanup(
      CleanupRequest{
          .now_ms = now_ms,
          .drop_acked = options_.relay.drop_acked,
          .device_retention_ms = std::uint64_t{options_.limits.max_ttl_seconds} * 1000,
      },
      std::move(done));
}

void Hub::on_tick(Clock::time_point now) {
  std::vector<std::shared_ptr<Peer>> peers;
  {
    std::lock_guard lock(peers_mutex_);
    peers.reserve(peers_.size());
    for (const auto& [connection, peer] : peers_) peers.push_back(peer);
  }
  for (const auto& peer : peers) {
    // A peer busy with a frame is not silent: skip it rather than wait behind its store call.
    std::unique_lock lock(peer->mutex, std::try_to_lock);
    if (!lock.owns_lock()) continue;
    flush_ack(*peer);
    if (peer->machine.is_open() && peer->machine.handshake_expired(now)) {
      fail(*peer, Code::kHelloTimeout,
           "no HELLO within " + std::to_string(options_.limits.hello_timeout_ms) + " ms", 0);
    }
  }
  start_cleanup(now);  // after the ACK flush above, so the cleanup sees those watermarks
}

void Hub::shutdown() {
  if (shutting_down_.exchange(true)) return;
  {
    // Coalesced ACKs are written before the store closes (they are queued like any write).
    std::vector<std::shared_ptr<Peer>> peers;
    {
      std::lock_guard lock(peers_mutex_);
      for (const auto& [connection, peer] : peers_) peers.push_back(peer);
    }
    for (const auto& peer : peers) {
      std::lock_guard lock(peer->mutex);
      flush_ack(*peer);
    }
  }
  {
    std::unique_lock lock(store_gate_);
    store_closed_ = true;
  }
  // Queued pushes commit now and their PUSH_ACKs are queued ahead of the BYE below.
  store_->close();

  std::unordered_map<const Connection*, std::shared_ptr<Peer>> peers;
  {
    std::lock_guard lock(peers_mutex_);
    peers.swap(peers_);
  }
  for (const auto& [connection, peer] : peers) {
    std::lock_guard lock(peer->mutex);
    unregister(*peer);
    if (!peer->machine.is_open()) continue;
    peer->machine.begin_close();
    peer->connection->send(
        encode(0, Bye{static_cast<std::uint16_t>(Code::kRelayShuttingDown), "relay shutting down"}));
    peer->connection->close(websocket_close_code(Code::kRelayShuttingDown), "relay shutting down");
  }
  registry_.clear();
}

HubCounts Hub::counts() const {
  HubCounts counts;
  {
    std::lock_guard lock(peers_mutex_);
    counts.connections = peers_.size();
  }
  const RegistryCounts registered = registry_.counts();
  counts.sessions = registered.sessions;
  counts.groups = registered.groups;
  return counts;
}

Result<StoreStats> Hub::store_stats() {
  std::shared_lock lock(store_gate_);
  if (store_closed_) return Status(Code::kRelayShuttingDown, "relay shutting down");
  return store_->stats();
}

}  // namespace blindsync::relay
