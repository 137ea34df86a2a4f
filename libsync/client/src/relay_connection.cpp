#include "relay_connection.h"

#include <utility>

namespace blindsync::client_detail {

namespace {
// The reader wakes up this often to notice a close() that found no transport to interrupt.
constexpr std::chrono::milliseconds kReceivePoll{500};
}  // namespace

RelayConnection::RelayConnection(TransportFactory factory, SessionParams params, Handlers handlers)
    : factory_(std::move(factory)), params_(std::move(params)), handlers_(std::move(handlers)) {}

RelayConnection::~RelayConnection() {
  close();
  if (writer_.joinable()) writer_.join();
}

void RelayConnection::start() {
  writer_ = std::thread([this] { run_writer(); });
}

bool RelayConnection::send(std::uint32_t request_id, Message message) {
  {
    std::lock_guard lock(mu_);
    if (closing_) return false;
    outgoing_.push_back(Outgoing{request_id, std::move(message)});
  }
  cv_.notify_one();
  return true;
}

void RelayConnection::close() {
  {
    std::lock_guard lock(mu_);
    if (closing_) return;
    closing_ = true;
    closed_locally_ = true;
    // A handshake in progress waits on the transport: closing it ends the wait now. An active
    // session is closed by the writer, which says BYE first.
    if (session_ != nullptr && !opened_) session_->interrupt();
  }
  cv_.notify_one();
}

void RelayConnection::fail(Status reason) {
  {
    std::lock_guard lock(mu_);
    if (failure_.is_ok()) failure_ = std::move(reason);
    closing_ = true;
  }
  cv_.notify_one();
}

void RelayConnection::run_writer() {
  auto connected = RelaySession::connect(factory_, params_);
  if (!connected) {
    if (handlers_.closed) handlers_.closed(connected.error());
    return;
  }
  std::unique_ptr<RelaySession> session = std::move(*connected);
  bool interrupted = false;
  {
    std::lock_guard lock(mu_);
    session_ = session.get();
    interrupted = closing_;
  }
  Status result;
  if (interrupted) {
    result = Status(Code::kConnectionClosed, "closed by the client");
  } else if (Status handshake = session->handshake(params_); !handshake) {
    std::lock_guard lock(mu_);
    result = closed_locally_ ? Status(Code::kConnectionClosed, "closed by the client") : handshake;
  } else {
    {
      std::lock_guard lock(mu_);
      opened_ = true;
    }
    if (handlers_.opened) handlers_.opened(session->welcome(), session->relay_id());
    reader_ = std::thread([this] { run_reader(); });
    for (;;) {
      Outgoing next;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return closing_ || !outgoing_.empty(); });
        if (closing_) break;
        next = std::move(outgoing_.front());
        outgoing_.pop_front();
      }
      if (Status sent = session->send_as(next.request_id, std::move(next.message)); !sent) {
        fail(sent);
        break;
      }
    }
    {
      std::lock_guard lock(mu_);
      result = closed_locally_ && failure_.is_ok() ? Status(Code::kConnectionClosed, "closed by the client")
                                                   : failure_;
    }
  }
  session->close();  // BYE when still active; unblocks the reader
  if (reader_.joinable()) reader_.join();
  {
    std::lock_guard lock(mu_);
    session_ = nullptr;
  }
  session.reset();
  if (handlers_.closed) handlers_.closed(result);
}

void RelayConnection::run_reader() {
  RelaySession* session = nullptr;
  {
    std::lock_guard lock(mu_);
    session = session_;
  }
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (closing_) return;
    }
    auto frame = session->receive(kReceivePoll);
    if (!frame) {
      if (frame.error().code() == Code::kTimeout) continue;
      fail(frame.error());
      return;
    }
    if (handlers_.frame) handlers_.frame(std::move(*frame));
  }
}

}  // namespace blindsync::client_detail
