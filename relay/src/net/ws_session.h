// One client connection of the relay's single port: HTTP requests (GET /health), then, after an
// upgrade at /v1/sync, the WebSocket session that implements Connection for the Hub.
// Private to net/ (it exposes Asio types).
//
// Each connection runs on its own strand: its coroutines, its send queue and its close all
// execute there; Connection::send/close post onto it, so they are safe from any thread.
#pragma once

#include "net/asio.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "hub/hub.h"
#include "net/server.h"

namespace blindsync::relay::net {

class WsSession;

// Shared by the listener and every connection. Owned by Server::Impl; outlives every connection
// (the server stops its I/O threads before destroying it).
struct NetContext {
  NetContext(Hub& h, const ServerOptions& o) : hub(h), options(o) {}

  Hub& hub;
  const ServerOptions options;
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::atomic<bool> stopping{false};  // no keep-alive, no new WebSocket sessions

  std::mutex mutex;  // guards connections
  std::unordered_map<const WsSession*, std::weak_ptr<WsSession>> connections;
};

// Serves one accepted TCP connection until it closes.
// REQUIRES: the socket's executor is a strand of its own (accept with asio::make_strand).
void start_connection(tcp::socket socket, NetContext& context);

// Closes the sockets of live connections now (all of them, or only those still speaking HTTP).
void abort_connections(NetContext& context, bool http_only);

std::size_t live_connections(NetContext& context);

}  // namespace blindsync::relay::net
