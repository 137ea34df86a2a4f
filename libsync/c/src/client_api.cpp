// bs_client lifecycle and the notify hook: open, close, set_notify, commit.
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "blindsync/transport_ws/ws_transport.h"
#include "c_api_internal.h"

namespace blindsync::capi {
namespace {

// True while this thread runs the app's notify callback (so bs_set_notify called from inside
// the callback does not wait for itself).
thread_local bool t_in_notify = false;

std::chrono::milliseconds ms_or(std::int64_t value, std::chrono::milliseconds fallback) {
  return value > 0 ? std::chrono::milliseconds(value) : fallback;
}

}  // namespace

void NotifyState::fire() {
  bs_notify_fn fn = nullptr;
  void* user = nullptr;
  {
    std::lock_guard lock(mutex_);
    ++generation_;
    changed_.notify_all();
    fn = fn_;
    user = user_;
    if (fn == nullptr) return;
    ++active_calls_;
  }
  // App code runs outside our lock: it may call bs_set_notify.
  t_in_notify = true;
  fn(user);
  t_in_notify = false;
  std::lock_guard lock(mutex_);
  --active_calls_;
  idle_.notify_all();
}

void NotifyState::set_callback(bs_notify_fn fn, void* user) {
  std::unique_lock lock(mutex_);
  fn_ = fn;
  user_ = user;
  if (t_in_notify) return;
  // The hook runs on the worker only and returns quickly, so this wait is short.
  idle_.wait(lock, [&] { return active_calls_ == 0; });
}

std::uint64_t NotifyState::generation() {
  std::lock_guard lock(mutex_);
  return generation_;
}

bool NotifyState::wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return generation_ != seen; });
}

}  // namespace blindsync::capi

using blindsync::capi::guarded;
using blindsync::capi::set_error;
using blindsync::capi::set_ok;

extern "C" {

void bs_client_options_init(bs_client_options* options) {
  if (options == nullptr) return;
  const blindsync::AsyncClientOptions cpp;
  const blindsync::TransportOptions transport;
  options->request_timeout_ms = cpp.request_timeout.count();
  options->connect_timeout_ms = transport.connect_timeout.count();
  options->backoff_base_ms = cpp.backoff.base.count();
  options->backoff_cap_ms = cpp.backoff.cap.count();
  options->backoff_jitter_ms = cpp.backoff.jitter.count();
  options->max_queued_events = cpp.max_queued_events;
  options->notify = nullptr;
  options->notify_user = nullptr;
}

int bs_client_open(const char* home_dir, const bs_client_options* options, bs_client** out, bs_error* err) {
  if (out != nullptr) *out = nullptr;
  if (home_dir == nullptr || out == nullptr) {
    return set_error(err, BS_ERR_INVALID_ARGUMENT, "home_dir and out must not be NULL");
  }
  return guarded(err, [&]() -> int {
    bs_client_options opts;
    bs_client_options_init(&opts);
    if (options != nullptr) opts = *options;

    auto handle = std::make_unique<bs_client>();
    handle->notify = std::make_shared<blindsync::capi::NotifyState>();
    if (opts.notify != nullptr) handle->notify->set_callback(opts.notify, opts.notify_user);

    blindsync::AsyncClientOptions cpp;
    cpp.request_timeout = blindsync::capi::ms_or(opts.request_timeout_ms, cpp.request_timeout);
    cpp.backoff.base = blindsync::capi::ms_or(opts.backoff_base_ms, cpp.backoff.base);
    cpp.backoff.cap = blindsync::capi::ms_or(opts.backoff_cap_ms, cpp.backoff.cap);
    // Jitter may legitimately be 0 (tests want deterministic retries); negative means default.
    if (opts.backoff_jitter_ms >= 0) cpp.backoff.jitter = std::chrono::milliseconds(opts.backoff_jitter_ms);
    if (opts.max_queued_events > 0) cpp.max_queued_events = opts.max_queued_events;
    const auto connect_timeout =
        blindsync::capi::ms_or(opts.connect_timeout_ms, blindsync::TransportOptions{}.connect_timeout);
    cpp.transport = [connect_timeout](const std::string& url, const blindsync::TransportOptions& transport) {
      blindsync::TransportOptions adjusted = transport;
      adjusted.connect_timeout = connect_timeout;
      return blindsync::connect_websocket(url, adjusted);
    };
    // The hook holds the state by shared_ptr: it stays valid for as long as the worker runs.
    cpp.notify = [state = handle->notify] { state->fire(); };

    auto opened = blindsync::AsyncClient::open(home_dir, std::move(cpp));
    if (!opened) return set_error(err, opened.error());
    handle->client = std::move(opened).value();
    *out = handle.release();
    return set_ok(err);
  });
}

void bs_client_close(bs_client* client) {
  // Members go in reverse order: the AsyncClient (joining its worker) before the NotifyState
  // its hook points to, so the app callback is never called after this returns.
  delete client;
}

int bs_set_notify(bs_client* client, bs_notify_fn notify, void* user, bs_error* err) {
  if (client == nullptr) return set_error(err, BS_ERR_INVALID_ARGUMENT, "client must not be NULL");
  return guarded(err, [&]() -> int {
    client->notify->set_callback(notify, user);
    return set_ok(err);
  });
}

int bs_commit(bs_client* client, bs_error* err) {
  if (client == nullptr) return set_error(err, BS_ERR_INVALID_ARGUMENT, "client must not be NULL");
  return guarded(err, [&]() -> int {
    blindsync::Status committed = client->client->commit_received();
    if (!committed) return set_error(err, committed);
    return set_ok(err);
  });
}

}  // extern "C"
