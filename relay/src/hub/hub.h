// Hub: the relay's protocol logic, free of Beast and Asio (DESIGN.md "Relay").
//
// The net layer reports each transport event for a Connection: on_open (send CHALLENGE),
// on_frame (one WebSocket binary message), on_close (transport gone), and calls on_tick
// periodically so that silent clients hit the HELLO timeout. The hub answers through the
// Connection: HELLO -> verify both signatures -> WELCOME and registration in the group; PUSH ->
// Store group commit -> PUSH_ACK to the pusher and NOTIFY to the group's other online sessions;
// PULL -> PULL_RESPONSE. Protocol violations and auth failures get ERROR then a WebSocket close
// code from close_codes.h; client mistakes that do not endanger the session (an oversized blob)
// get ERROR and the session continues. Storage faults are reported as INTERNAL, logged here.
//
// Protection (limits/relay_limits.h; every limit is a field of HubOptions): per-IP connection
// slots handed to the net layer at accept (admit_connection), the message rate limiter checked
// before a frame is decoded, admission (open / token / allowlist) and the session, group and
// device limits at HELLO, blob size and TTL at PUSH, quota, storage cap and group count in the
// store's writer, and a periodic cleanup (expiry, drop-acked) triggered from on_tick. Every
// refusal increments a counter in Metrics.
//
// DELETE policy: a device may always delete a blob it pushed. With force = true it may delete any
// blob of its group. The relay's unit of trust is the group — every device proved it holds the
// group key and could as well overwrite the group's data or rotate its key — so ownership guards
// against mistakes (a wrong blob id), not against a member; `force` is the deliberate override (a
// device cleaning up after a lost one). Anything else is 1004 NOT_BLOB_OWNER. A DELETE that succeeds
// is answered with DELETE_ACK once committed; DELETE of a blob that is not stored succeeds too
// (idempotent) with removed = false.
//
// Ownership: owns the Store, the relay's signing key, the SessionRegistry and the per-connection
// protocol state. Keeps a shared_ptr to each Connection from on_open until on_close/shutdown.
// Thread-safety: every method may be called from any thread. Frames of one connection must be
// reported in order (the net layer calls on_frame from the connection's strand). Store completions
// run on the store's writer thread and only call Connection::send, which posts to the strand.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string_view>
#include <unordered_map>

#include "blindsync/auth/identity.h"
#include "blindsync/core/bytes.h"
#include "blindsync/core/codec.h"
#include "blindsync/core/limits.h"
#include "blindsync/core/session.h"
#include "blindsync/core/status.h"
#include "hub/connection.h"
#include "hub/session_registry.h"
#include "limits/admission.h"
#include "limits/connection_limiter.h"
#include "limits/rate_limiter.h"
#include "limits/relay_limits.h"
#include "metrics/metrics.h"
#include "store/store.h"

namespace blindsync::relay {

struct HubOptions {
  // Announced in CHALLENGE and WELCOME, and enforced. max_frame_bytes is raised to at least
  // max_blob_bytes + kFrameOverheadBytes, so setting max_blob_bytes alone is enough.
  Limits limits;
  RelayLimits relay;                                       // everything else (limits/relay_limits.h)
  std::uint32_t default_ttl_seconds = kDefaultTtlSeconds;  // for PUSH ttl 0; capped by limits.max_ttl_seconds
  std::uint32_t max_pull_pages = 8;                        // most pages one PULL gets (Pull::pages); 0 = 1
  std::shared_ptr<Metrics> metrics;                        // null: the hub makes its own
};

struct HubCounts {
  std::size_t connections = 0;  // open transports, handshaking or active
  std::size_t sessions = 0;     // authenticated sessions
  std::size_t groups = 0;       // groups with at least one session
};

class Hub {
 public:
  using Clock = SessionMachine::Clock;

  // REQUIRES: store != nullptr; options.limits.max_pull_limit >= 1. Zero counts in options.relay
  // that validate() would refuse are raised to 1. Passes the storage limits to the store.
  Hub(HubOptions options, std::unique_ptr<Store> store, auth::SigningKey relay_key);
  // Calls shutdown() if it has not run.
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  const RelayId& relay_id() const noexcept { return relay_id_; }
  const Limits& limits() const noexcept { return options_.limits; }
  Metrics& metrics() noexcept { return *metrics_; }

  // Called by the net layer right after accept(), with the peer's IP literal: a slot to keep for
  // the connection's lifetime, or nullopt when the address already has max_connections_per_ip
  // connections (the caller closes the socket; counted as a connections_per_ip rate-limit hit).
  std::optional<ConnectionSlot> admit_connection(std::string_view ip);

  // A transport opened: sends CHALLENGE and starts the HELLO timeout. While shutting down, sends
  // BYE{RELAY_SHUTTING_DOWN} and closes instead.
  void on_open(const std::shared_ptr<Connection>& connection);
  // One received WebSocket binary message. Ignored after the session began closing.
  void on_frame(const std::shared_ptr<Connection>& connection, ByteView frame);
  // The transport is gone: forgets the connection and unregisters its session.
  void on_close(const std::shared_ptr<Connection>& connection);
  // Ends sessions whose HELLO did not arrive in time (ERROR 1007, close 4007), writes the ACK
  // watermarks that moved since the last tick (ACK writes are coalesced per session), and starts
  // the store's cleanup every cleanup_interval_ms (the first at the first tick).
  void on_tick(Clock::time_point now);

  // Drain: refuses new work, closes the store (queued pushes commit and are acknowledged), then
  // sends BYE{3001} to every connection and closes it. Idempotent.
  void shutdown();

  HubCounts counts() const;
  // Store statistics for /health; kRelayShuttingDown once the store is closed.
  Result<StoreStats> store_stats();

 private:
  struct Peer;
  class WelcomeGate;

  std::shared_ptr<Peer> find_peer(const Connection* connection) const;
  void handle_frame(Peer& peer, Frame frame);
  void handle_hello(Peer& peer, std::uint32_t request_id, const Hello& hello);
  void handle_push(Peer& peer, std::uint32_t request_id, Push push);
  void handle_pull(Peer& peer, std::uint32_t request_id, const Pull& pull);
  // Where a PULL's run of pages is: the page to send next, of `pages`.
  struct PullRun {
    std::uint32_t request_id = 0;
    Cursor after = 0;
    std::uint32_t limit = 0;
    std::uint32_t page = 1;
    std::uint32_t pages = 1;
  };
  // Sends the run's next page, and has the connection run the page after it next (defer).
  void send_pull_page(Peer& peer, PullRun run);
  // One PULL_RESPONSE of blobs after `after`, encoded; nullopt when the store failed (the ERROR
  // is sent). It says `continues` when `may_continue`, there is more, and the device's message
  // budget pays for the next page.
  struct PulledPage {
    Bytes frame;
    bool continues = false;
    Cursor last_cursor = 0;
  };
  std::optional<PulledPage> pull_page(Peer& peer, std::uint32_t request_id, Cursor after, std::uint32_t limit,
                                      bool may_continue);
  void handle_list_devices(Peer& peer, std::uint32_t request_id);
  void handle_ack(Peer& peer, const Ack& ack);
  // Hands the session's ACK watermark to the store if it moved. REQUIRES: peer.mutex held.
  void flush_ack(Peer& peer);
  void handle_delete(Peer& peer, std::uint32_t request_id, const Delete& request);
  void on_push_committed(const std::shared_ptr<Connection>& pusher, std::uint64_t session_id, const GroupId& group,
                         const DeviceId& sender, const BlobId& blob_id, std::uint32_t request_id, std::uint32_t size,
                         Result<PushResult> result);
  // The rate limiter's verdict on one frame; false when the frame must not be handled.
  bool admit_frame(Peer& peer, ByteView bytes);
  // Counts one more rate-limited message; true once the session used up rate_limit_strikes.
  bool strike_out(Peer& peer) const;
  void start_cleanup(Clock::time_point now);

  // Sends ERROR and keeps the session.
  void reply_error(Peer& peer, Code code, std::string message, std::uint32_t request_id);
  void send_error(Connection& connection, Code code, std::string message, std::uint32_t request_id);
  // Sends ERROR, closes with the mirrored WebSocket code, leaves nothing registered.
  void fail(Peer& peer, Code code, std::string message, std::uint32_t request_id);
  void unregister(Peer& peer);

  const HubOptions options_;
  const std::shared_ptr<Metrics> metrics_;
  const DecodeLimits decode_limits_;
  const auth::SigningKey relay_key_;
  const RelayId relay_id_;
  SessionRegistry registry_;
  MessageRateLimiter rate_limiter_;
  ConnectionLimiter connection_limiter_;  // before peers_: slots may be released while peers_ dies
  const AdmissionPolicy admission_;

  std::mutex cleanup_mutex_;
  std::optional<Clock::time_point> last_cleanup_;
  bool cleanup_running_ = false;

  // Guards store_ calls against shutdown: calls hold it shared; shutdown takes it exclusively,
  // sets store_closed_, then closes the store, so no call can reach a closed store.
  std::shared_mutex store_gate_;
  bool store_closed_ = false;
  std::unique_ptr<Store> store_;
  const std::uint64_t epoch_;

  std::atomic<bool> shutting_down_{false};
  std::atomic<std::uint64_t> next_session_id_{1};

  mutable std::mutex peers_mutex_;
  std::unordered_map<const Connection*, std::shared_ptr<Peer>> peers_;
};

}  // namespace blindsync::relay
