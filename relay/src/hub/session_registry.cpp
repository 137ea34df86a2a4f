#include "hub/session_registry.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace blindsync::relay {

SessionRegistry::SessionRegistry(std::size_t max_sessions_per_group, std::size_t max_sessions)
    : max_per_group_(max_sessions_per_group), max_sessions_(max_sessions) {
  assert(max_per_group_ >= 1);
  assert(max_sessions_ >= 1);
}

Status SessionRegistry::add(const GroupId& group, RegisteredSession session) {
  std::lock_guard lock(mutex_);
  if (session_count_ >= max_sessions_) {
    return Status(Code::kRelayOverloaded, "the relay has the maximum of " + std::to_string(max_sessions_) +
                                              " sessions");
  }
  auto it = groups_.find(group);
  if (it != groups_.end()) {
    auto& members = it->second;
    if (std::any_of(members.begin(), members.end(),
                    [&](const RegisteredSession& s) { return s.session_id == session.session_id; })) {
      return Status(Code::kAlreadyExists, "session already registered");
    }
    if (members.size() >= max_per_group_) {
      return Status(Code::kGroupFull, "group has the maximum of " + std::to_string(max_per_group_) +
                                          " online sessions");
    }
    members.push_back(std::move(session));
  } else {
    groups_[group].push_back(std::move(session));
  }
  ++session_count_;
  return Status::ok();
}

bool SessionRegistry::remove(const GroupId& group, std::uint64_t session_id) {
  std::lock_guard lock(mutex_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return false;
  auto& members = it->second;
  auto member = std::find_if(members.begin(), members.end(),
                             [&](const RegisteredSession& s) { return s.session_id == session_id; });
  if (member == members.end()) return false;
  members.erase(member);
  --session_count_;
  if (members.empty()) {
    groups_.erase(it);
    known_cursors_.erase(group);
  }
  return true;
}

std::vector<std::shared_ptr<Connection>> SessionRegistry::peers_of(const GroupId& group,
                                                                   std::uint64_t except_session_id) const {
  std::vector<std::shared_ptr<Connection>> out;
  std::lock_guard lock(mutex_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return out;
  out.reserve(it->second.size());
  for (const auto& s : it->second) {
    if (s.session_id != except_session_id) out.push_back(s.connection);
  }
  return out;
}

std::vector<RegisteredSession> SessionRegistry::sessions_of(const GroupId& group) const {
  std::lock_guard lock(mutex_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return {};
  return it->second;
}

std::vector<std::pair<GroupId, DeviceId>> SessionRegistry::online_devices() const {
  std::vector<std::pair<GroupId, DeviceId>> out;
  std::lock_guard lock(mutex_);
  out.reserve(session_count_);
  for (const auto& [group, members] : groups_) {
    for (std::size_t i = 0; i < members.size(); ++i) {
      // Named, not captured: clang 14 cannot capture a structured binding in a lambda.
      const DeviceId& device = members[i].device_id;
      const bool repeated = std::any_of(members.begin(), members.begin() + static_cast<std::ptrdiff_t>(i),
                                        [&device](const RegisteredSession& s) { return s.device_id == device; });
      if (!repeated) out.emplace_back(group, members[i].device_id);
    }
  }
  return out;
}

std::vector<std::shared_ptr<Connection>> SessionRegistry::all_connections() const {
  std::vector<std::shared_ptr<Connection>> out;
  std::lock_guard lock(mutex_);
  out.reserve(session_count_);
  for (const auto& [group, members] : groups_) {
    for (const auto& s : members) out.push_back(s.connection);
  }
  return out;
}

RegistryCounts SessionRegistry::counts() const {
  std::lock_guard lock(mutex_);
  return RegistryCounts{session_count_, groups_.size()};
}

void SessionRegistry::note_cursor(const GroupId& group, Cursor cursor) {
  std::lock_guard lock(mutex_);
  if (groups_.count(group) == 0) return;  // nobody online: nothing to remember
  Cursor& known = known_cursors_[group];
  known = std::max(known, cursor);
}

Cursor SessionRegistry::known_cursor(const GroupId& group) const {
  std::lock_guard lock(mutex_);
  auto it = known_cursors_.find(group);
  return it == known_cursors_.end() ? 0 : it->second;
}

void SessionRegistry::clear() {
  std::lock_guard lock(mutex_);
  groups_.clear();
  known_cursors_.clear();
  session_count_ = 0;
}

}  // namespace blindsync::relay
