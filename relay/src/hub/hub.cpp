#include "hub/hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <deque>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "blindsync/auth/transcript.h"
#include "blindsync/core/messages.h"
#include "hub/close_codes.h"
#include "hub/device_name.h"

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
constexpr std::size_t kPulledBlobOverhead = 160;

// Keeps the first blobs whose encoded frame fits max_frame_bytes (at least one: a blob within the
// blob limit always fits, the frame limit has room for its overhead). Returns true if any was cut.
bool trim_to_frame(std::vector<PulledBlob>& blobs, std::size_t max_frame_bytes) {
  std::size_t total = kPullResponseOverhead;
  for (std::size_t i = 0; i < blobs.size(); ++i) {
    total += blobs[i].payload.size() + kPulledBlobOverhead;
    if (total > max_frame_bytes && i > 0) {
      blobs.resize(i);
      return true;
    }
  }
  return false;
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

  // Sends the WELCOME, then what was held; later frames pass straight through.
  void open(Bytes welcome) {
    std::lock_guard lock(mutex_);
    inner_->send(std::move(welcome));
    for (auto& frame : held_) inner_->send(std::move(frame));
    held_.clear();
    open_ = true;
  }

 private:
  const std::shared_ptr<Connection> inner_;
  std::mutex mutex_;
  bool open_ = false;
  std::deque<Bytes> held_;
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

  bool registered = false;
  std::uint64_t session_id = 0;
  GroupId group_id;
  DeviceId device_id;
  std::shared_ptr<WelcomeGate> gate;
};

Hub::Hub(HubOptions options, std::unique_ptr<Store> store, auth::SigningKey relay_key)
    : options_(std::move(options)),
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
      registry_(options_.max_sessions_per_group),
      store_(std::move(store)),
      epoch_(store_->epoch()) {
  assert(options_.limits.max_pull_limit >= 1);
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
          // Accepted; per-device watermarks (and ACK-based retention) come later.
        } else if constexpr (std::is_same_v<T, ListDevices>) {
          handle_list_devices(peer, rid);
        } else if constexpr (std::is_same_v<T, Bye>) {
          spdlog::debug("session {} from {} said bye ({})", peer.session_id, peer.address, message.code);
          peer.machine.begin_close();
          unregister(peer);
          peer.connection->close(kCloseNormal, "bye");
        } else if constexpr (std::is_same_v<T, Error>) {
          spdlog::debug("{} reported error {}", peer.address, message.code);
        } else if constexpr (std::is_same_v<T, Delete> || std::is_same_v<T, RevokeDevice> ||
                             std::is_same_v<T, RegisterPush> || std::is_same_v<T, UnregisterPush>) {
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
  const Status verified = auth::verify_hello(hello, relay_id_, peer.relay_nonce);
  if (!verified) {
    spdlog::info("handshake from {} refused: {}", peer.address, verified.message());
    fail(peer, Code::kUnauthorized, verified.message(), rid);
    return;
  }

  // Registered before max_cursor is read so that no blob committed after the read misses this
  // session; the gate keeps such NOTIFYs behind the WELCOME.
  const std::uint64_t session_id = next_session_id_.fetch_add(1);
  auto gate = std::make_shared<WelcomeGate>(peer.connection);
  const Status added = registry_.add(hello.group_id, RegisteredSession{
                                                         .session_id = session_id,
                                                         .device_id = hello.device_id,
                                                         .device_name = sanitize_device_name(hello.device_name),
                                                         .connected_at_ms = wall_clock_ms(),
                                                         .connection = gate,
                                                     });
  if (!added) {
    fail(peer, added.code() == Code::kGroupFull ? Code::kGroupFull : Code::kInternal, added.message(), rid);
    return;
  }
  peer.registered = true;
  peer.session_id = session_id;
  peer.group_id = hello.group_id;
  peer.device_id = hello.device_id;
  peer.gate = gate;

  Result<Cursor> max_cursor = Status(Code::kRelayShuttingDown, "relay shutting down");
  {
    std::shared_lock lock(store_gate_);
    if (!store_closed_) max_cursor = store_->max_cursor(hello.group_id);
  }
  if (!max_cursor) {
    const Code code = max_cursor.error().code() == Code::kRelayShuttingDown ? Code::kRelayShuttingDown : Code::kInternal;
    spdlog::error("handshake from {}: reading max cursor failed: {}", peer.address, max_cursor.error().to_string());
    fail(peer, code, code == Code::kInternal ? "storage failure" : "relay shutting down", rid);
    return;
  }

  const auth::HandshakeInputs inputs{relay_id_, peer.relay_nonce, hello.client_nonce, hello.device_id, hello.group_id};
  Welcome welcome{
      .session_id = session_id,
      .epoch = epoch_,
      .max_cursor = *max_cursor,
      .pending_count = *max_cursor - std::min(hello.last_cursor, *max_cursor),
      .limits = options_.limits,
      .relay_sig = auth::sign_welcome(inputs, relay_key_),
  };
  const Status sent = peer.machine.on_send(MessageType::kWelcome);
  if (!sent) {  // cannot happen after an accepted HELLO; refuse rather than run a confused session
    fail(peer, Code::kInternal, "session state error", rid);
    return;
  }
  gate->open(encode(rid, std::move(welcome)));
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
  std::optional<Bytes> inline_payload;
  if (push.payload.size() <= limits.inline_notify_bytes) inline_payload = push.payload;

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
               inline_payload = std::move(inline_payload)](Result<PushResult> result) mutable {
    on_push_committed(pusher, session_id, group, sender, blob_id, rid, size, std::move(inline_payload),
                      std::move(result));
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
                            std::optional<Bytes> inline_payload, Result<PushResult> result) {
  if (!result) {
    const Code code = store_error_code(result.error());
    spdlog::error("push from session {} failed in the store: {}", session_id, result.error().to_string());
    pusher->send(encode(rid, Error{static_cast<std::uint16_t>(code),
                                   code == Code::kInternal ? "storage failure" : result.error().message(), rid}));
    return;
  }
  const PushResult& r = *result;
  pusher->send(encode(rid, PushAck{blob_id, r.cursor, r.timestamp_ms, r.duplicate}));
  if (r.duplicate) return;  // the group was notified when the blob was first stored

  const auto peers = registry_.peers_of(group, session_id);
  if (peers.empty()) return;
  const Bytes notify = encode(0, Notify{
                                     .blob_id = blob_id,
                                     .cursor = r.cursor,
                                     .sender_id = sender,
                                     .timestamp = r.timestamp_ms,
                                     .size = size,
                                     .payload = std::move(inline_payload),
                                 });
  for (const auto& connection : peers) connection->send(notify);
}

void Hub::handle_pull(Peer& peer, std::uint32_t rid, const Pull& pull) {
  const std::uint32_t max_limit = options_.limits.max_pull_limit;
  const std::uint32_t limit = pull.limit == 0 ? max_limit : std::min(pull.limit, max_limit);
  Result<PullPage> page = Status(Code::kRelayShuttingDown, "relay shutting down");
  {
    std::shared_lock lock(store_gate_);
    if (!store_closed_) page = store_->pull(peer.group_id, pull.after_cursor, limit, wall_clock_ms());
  }
  if (!page) {
    if (page.error().code() == Code::kRelayShuttingDown) {
      reply_error(peer, Code::kRelayShuttingDown, "relay shutting down", rid);
    } else {
      spdlog::error("pull for session {} failed in the store: {}", peer.session_id, page.error().to_string());
      reply_error(peer, Code::kInternal, "storage failure", rid);
    }
    return;
  }
  Frame frame{rid, PullResponse{std::move(page->blobs), page->has_more, page->max_cursor}};
  auto& response = std::get<PullResponse>(frame.message);
  if (trim_to_frame(response.blobs, options_.limits.max_frame_bytes)) response.has_more = true;
  Bytes bytes = encode_frame(frame);
  // The estimate above is generous; should it ever be short, drop blobs until the frame fits.
  while (bytes.size() > options_.limits.max_frame_bytes && response.blobs.size() > 1) {
    response.blobs.pop_back();
    response.has_more = true;
    bytes = encode_frame(frame);
  }
  peer.connection->send(std::move(bytes));
}

void Hub::handle_list_devices(Peer& peer, std::uint32_t rid) {
  Devices devices;
  std::set<DeviceId> seen;
  const std::uint64_t now_ms = wall_clock_ms();
  for (const auto& s : registry_.sessions_of(peer.group_id)) {
    if (!seen.insert(s.device_id).second) continue;  // one entry per device, however many sessions
    devices.devices.push_back(DeviceInfo{
        .device_id = s.device_id,
        .name = s.device_name,
        .last_seen = now_ms,
        .acked_cursor = 0,
        .online = true,
        .revoked = false,
    });
  }
  peer.connection->send(encode(rid, std::move(devices)));
}

void Hub::reply_error(Peer& peer, Code code, std::string message, std::uint32_t rid) {
  peer.connection->send(encode(rid, Error{static_cast<std::uint16_t>(code), std::move(message), rid}));
}

void Hub::fail(Peer& peer, Code code, std::string message, std::uint32_t rid) {
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
  unregister(*peer);
  spdlog::debug("connection from {} closed", peer->address);
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
    if (peer->machine.is_open() && peer->machine.handshake_expired(now)) {
      fail(*peer, Code::kHelloTimeout,
           "no HELLO within " + std::to_string(options_.limits.hello_timeout_ms) + " ms", 0);
    }
  }
}

void Hub::shutdown() {
  if (shutting_down_.exchange(true)) return;
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
