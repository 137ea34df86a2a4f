// SessionRegistry: which authenticated (Active) sessions are online, by group.
//
// The hub adds a session after a successful handshake and removes it when the session ends, so
// fan-out (NOTIFY) reaches exactly the online sessions of a group. Counts are exact: every method
// takes the one mutex (never "0 because busy"). Sessions that fail the handshake are never added.
//
// Ownership: holds a shared_ptr to each registered session's Connection until it is removed.
// Thread-safety: all methods may be called concurrently. No Connection method is called under the
// lock: callers get snapshots and send outside it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"
#include "hub/connection.h"

namespace blindsync::relay {

struct RegisteredSession {
  std::uint64_t session_id = 0;
  DeviceId device_id;
  std::string device_name;
  std::uint64_t connected_at_ms = 0;  // wall clock, ms since the Unix epoch
  std::shared_ptr<Connection> connection;
};

struct RegistryCounts {
  std::size_t sessions = 0;
  std::size_t groups = 0;  // groups with at least one online session
};

class SessionRegistry {
 public:
  // REQUIRES: max_sessions_per_group >= 1, max_sessions >= 1.
  explicit SessionRegistry(std::size_t max_sessions_per_group,
                           std::size_t max_sessions = std::numeric_limits<std::size_t>::max());

  // kRelayOverloaded when the relay already has max_sessions sessions; kGroupFull when the group
  // already has max_sessions_per_group; kAlreadyExists when session_id is already registered in
  // the group. The checks and the insertion are one step under the lock, so concurrent HELLOs can
  // never overshoot a limit. Nothing is added on failure.
  Status add(const GroupId& group, RegisteredSession session);
  // True if the session was registered (and is now removed). A group left empty is forgotten.
  bool remove(const GroupId& group, std::uint64_t session_id);

  // Connections of the group's sessions other than except_session_id (for fan-out).
  std::vector<std::shared_ptr<Connection>> peers_of(const GroupId& group, std::uint64_t except_session_id) const;
  // Copies of the group's sessions, in registration order.
  std::vector<RegisteredSession> sessions_of(const GroupId& group) const;
  // The highest cursor the hub has seen handed out in a group with online sessions (WELCOME,
  // PUSH_ACK, PULL_RESPONSE). Forgotten with the group's last session.
  void note_cursor(const GroupId& group, Cursor cursor);
  Cursor known_cursor(const GroupId& group) const;

  // (group, device) of every registered session, each pair once.
  std::vector<std::pair<GroupId, DeviceId>> online_devices() const;
  // Every registered connection (for shutdown).
  std::vector<std::shared_ptr<Connection>> all_connections() const;

  RegistryCounts counts() const;
  // Forgets every session (after shutdown has told them to close).
  void clear();

 private:
  const std::size_t max_per_group_;
  const std::size_t max_sessions_;
  mutable std::mutex mutex_;
  std::unordered_map<GroupId, std::vector<RegisteredSession>, FixedIdHash> groups_;
  std::unordered_map<GroupId, Cursor, FixedIdHash> known_cursors_;  // keys: a subset of groups_
  std::size_t session_count_ = 0;
};

}  // namespace blindsync::relay
