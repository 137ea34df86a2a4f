// RelayConnection: the I/O of one connection attempt to one relay, on two threads it owns, so that
// a slow relay never blocks the AsyncClient's worker thread.
//
//   writer thread  connects (TransportFactory) and runs the handshake, reports opened(), starts
//                  the reader, then sends the frames queued by send() in order
//   reader thread  receives frames and reports each with frame()
//
// The handlers run on these threads: they must only hand the news to the worker (post a task).
// They are called in order: opened() at most once, then frame() for each frame, then closed()
// exactly once, last, after both threads have finished their I/O (with the failure that ended the
// connection, or kConnectionClosed "closed by the client" after close()).
//
// close() interrupts a handshake in progress by closing the transport; a connect that is still
// resolving or dialling cannot be interrupted, so the destructor may wait up to the session's
// timeout for it.
// Thread-safety: send() and close() from any thread; the destructor joins the threads.
// REQUIRES: the keys SessionParams points to outlive the connection.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "relay_session.h"

namespace blindsync::client_detail {

class RelayConnection {
 public:
  struct Handlers {
    std::function<void(const Welcome& welcome, const RelayId& relay_id)> opened;
    std::function<void(Frame frame)> frame;
    std::function<void(Status reason)> closed;
  };

  RelayConnection(TransportFactory factory, SessionParams params, Handlers handlers);
  ~RelayConnection();
  RelayConnection(const RelayConnection&) = delete;
  RelayConnection& operator=(const RelayConnection&) = delete;

  void start();
  // Queues a frame for the writer; false once the connection is closing.
  bool send(std::uint32_t request_id, Message message);
  // Says BYE when the session is active and ends the connection. Idempotent.
  void close();

 private:
  struct Outgoing {
    std::uint32_t request_id = 0;
    Message message;
  };

  void run_writer();
  void run_reader();
  // Records the first failure and wakes the writer, which ends the connection.
  void fail(Status reason);

  TransportFactory factory_;
  SessionParams params_;
  Handlers handlers_;

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::deque<Outgoing> outgoing_;
  bool closing_ = false;             // close() or a failure: no more sends
  bool closed_locally_ = false;      // close() was called
  bool opened_ = false;              // the handshake completed
  Status failure_;                   // the first failure
  RelaySession* session_ = nullptr;  // owned by the writer thread while it runs

  std::thread writer_;
  std::thread reader_;  // started and joined by the writer thread
};

}  // namespace blindsync::client_detail
