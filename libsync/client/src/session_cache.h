// SessionCache: the synchronous Client's relay sessions, one per group, kept open between calls.
//
// Why: a call that opens its own session pays a TCP connect and the handshake (three round trips,
// two signatures and a verification) before its work; for Client::push that was most of its
// ~2.9 ms (W5 in docs/benchmarks.md). A kept session is handed out again while it is usable and
// was last used less than kIdleReuse ago. Between calls the transport keeps reading (and
// answering pings) into its bounded inbox; frames that piled up there are dropped when the session
// is handed out again, and a close among them retires it. Should the inbox fill (a busy group and
// an idle client), reading pauses and the relay closes the session at its idle timeout (60 s by
// default): kIdleReuse stays well below it. A session that dies anyway is found so by the call
// that reuses it; pushes then run once more on a new one (Client::Impl::with_session).
//
// Thread-safety: none (a Client is used from one thread).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>

#include "blindsync/core/ids.h"
#include "relay_session.h"

namespace blindsync::client_detail {

class SessionCache {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kIdleReuse{20};

  // The kept session of `group` with `relay_url`, when it is usable and was used recently;
  // nullptr otherwise (a stale one is closed and forgotten).
  RelaySession* find(const GroupId& group, const std::string& relay_url, Clock::time_point now);
  // Keeps a new session of `group` (closing the one it replaces) and returns it.
  RelaySession* keep(const GroupId& group, std::string relay_url, std::unique_ptr<RelaySession> session,
                     Clock::time_point now);
  // After a call: notes the use, or forgets the session if the call left it unusable.
  void done(const GroupId& group, Clock::time_point now);
  // Closes and forgets the group's session.
  void drop(const GroupId& group);

 private:
  struct Kept {
    std::string relay_url;
    std::unique_ptr<RelaySession> session;
    Clock::time_point last_used;
  };
  // Same relay, used recently, and still open once the frames that piled up are read away.
  static bool fit_for_reuse(Kept& kept, const std::string& relay_url, Clock::time_point now);

  std::unordered_map<GroupId, Kept, FixedIdHash> kept_;
};

}  // namespace blindsync::client_detail
