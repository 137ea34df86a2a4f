// The synchronous Client's kept sessions. See session_cache.h.
#include "session_cache.h"

#include <utility>

namespace blindsync::client_detail {

bool SessionCache::fit_for_reuse(Kept& kept, const std::string& relay_url, Clock::time_point now) {
  if (kept.relay_url != relay_url || now - kept.last_used >= kIdleReuse) return false;
  // What arrived while it sat idle: NOTIFYs, replies nobody waits for any more. Each call catches
  // up from the stored cursor, so they are dropped; a close or BYE among them fails the session.
  for (;;) {
    auto frame = kept.session->receive(std::chrono::milliseconds(0));
    if (!frame) return frame.error().code() == Code::kTimeout && kept.session->usable();
  }
}

RelaySession* SessionCache::find(const GroupId& group, const std::string& relay_url, Clock::time_point now) {
  const auto it = kept_.find(group);
  if (it == kept_.end()) return nullptr;
  if (fit_for_reuse(it->second, relay_url, now)) return it->second.session.get();
  drop(group);
  return nullptr;
}

RelaySession* SessionCache::keep(const GroupId& group, std::string relay_url,
                                 std::unique_ptr<RelaySession> session, Clock::time_point now) {
  drop(group);
  RelaySession* kept = session.get();
  kept_.emplace(group, Kept{std::move(relay_url), std::move(session), now});
  return kept;
}

void SessionCache::done(const GroupId& group, Clock::time_point now) {
  const auto it = kept_.find(group);
  if (it == kept_.end()) return;
  if (!it->second.session->usable()) {
    drop(group);
    return;
  }
  it->second.last_used = now;
}

void SessionCache::drop(const GroupId& group) {
  const auto it = kept_.find(group);
  if (it == kept_.end()) return;
  it->second.session->close();  // BYE when still active
  kept_.erase(it);
}

}  // namespace blindsync::client_detail
