#include "ops_ws_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <catch2/catch.hpp>

#include "blindsync/auth/transcript.h"

namespace blindsync::test {
namespace {

constexpr std::size_t kMaxMessageBytes = 64 * 1024 * 1024;
constexpr std::size_t kMaxHttpResponseBytes = 16 * 1024;

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

std::unique_ptr<RawWebSocket> RawWebSocket::connect(std::uint16_t port, std::string* error, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = "socket() failed";
    return nullptr;
  }
  std::unique_ptr<RawWebSocket> ws(new RawWebSocket(fd));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    return nullptr;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (!ws->write_all(reinterpret_cast<const std::uint8_t*>(request.data()), request.size())) {
    *error = "sending the upgrade failed";
    return nullptr;
  }
  // Read the response head byte by byte up to the blank line (bounded in size and time).
  const auto deadline = std::chrono::steady_clock::now() + kOpsTimeout;
  std::string head;
  while (head.size() < kMaxHttpResponseBytes && head.find("\r\n\r\n") == std::string::npos) {
    std::uint8_t byte = 0;
    bool timed_out = false;
    if (!ws->read_exact(&byte, 1, deadline, &timed_out)) {
      *error = timed_out ? "upgrade response timed out" : "connection closed during the upgrade";
      return nullptr;
    }
    head += static_cast<char>(byte);
  }
  if (head.rfind("HTTP/1.1 101", 0) != 0) {
    *error = "upgrade refused: " + head.substr(0, head.find("\r\n"));
    return nullptr;
  }
  return ws;
}

RawWebSocket::~RawWebSocket() { close_socket(); }

void RawWebSocket::close_socket() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawWebSocket::write_all(const std::uint8_t* data, std::size_t n) {
  std::size_t sent = 0;
  while (sent < n) {
    if (fd_ < 0) return false;
    const ssize_t k = ::send(fd_, data + sent, n - sent, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    sent += static_cast<std::size_t>(k);
  }
  return true;
}

bool RawWebSocket::read_exact(std::uint8_t* out, std::size_t n, std::chrono::steady_clock::time_point deadline,
                              bool* timed_out) {
  *timed_out = false;
  std::size_t got = 0;
  while (got < n) {
    if (fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      *timed_out = true;
      return false;
    }
    if (ready < 0) return false;
    const ssize_t k = ::recv(fd_, out + got, n - got, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    got += static_cast<std::size_t>(k);
  }
  return true;
}

bool RawWebSocket::send_control(std::uint8_t opcode, ByteView payload) {
  if (payload.size() > 125) return false;
  return send_frame(static_cast<std::uint8_t>(0x80 | opcode), payload);
}

bool RawWebSocket::send_binary(ByteView payload) { return send_frame(0x82, payload); }

bool RawWebSocket::send_frame(std::uint8_t first_byte, ByteView payload, bool masked) {
  const Bytes frame = client_frame(first_byte, payload, masked);
  return write_all(frame.data(), frame.size());
}

Bytes client_frame(std::uint8_t first_byte, ByteView payload, bool masked) {
  Bytes frame{first_byte};
  const std::uint8_t mask_bit = masked ? 0x80 : 0x00;
  const std::size_t n = payload.size();
  if (n < 126) {
    frame.push_back(static_cast<std::uint8_t>(mask_bit | n));
  } else if (n <= 0xFFFF) {
    frame.push_back(mask_bit | 126);
    frame.push_back(static_cast<std::uint8_t>(n >> 8));
    frame.push_back(static_cast<std::uint8_t>(n));
  } else {
    frame.push_back(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) frame.push_back(static_cast<std::uint8_t>(std::uint64_t{n} >> shift));
  }
  const std::uint8_t mask[4] = {0xA1, 0xB2, 0xC3, 0xD4};  // a client must mask; any key will do
  if (masked) frame.insert(frame.end(), mask, mask + 4);
  frame.reserve(frame.size() + n);
  for (std::size_t i = 0; i < n; ++i) frame.push_back(masked ? payload[i] ^ mask[i % 4] : payload[i]);
  return frame;
}

bool RawWebSocket::send_raw(ByteView bytes) { return write_all(bytes.data(), bytes.size()); }

WsEvent RawWebSocket::next(std::chrono::milliseconds timeout, bool answer_pings) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Bytes message;
  bool in_message = false;
  // Each round reads one frame; a message has at most kMaxMessageBytes, so this is bounded.
  for (;;) {
    WsEvent event;
    std::uint8_t header[2];
    bool timed_out = false;
    if (!read_exact(header, 2, deadline, &timed_out)) {
      event.kind = timed_out ? WsEvent::Kind::kTimeout : WsEvent::Kind::kEnd;
      return event;
    }
    const bool fin = (header[0] & 0x80) != 0;
    const std::uint8_t opcode = header[0] & 0x0F;
    std::uint64_t length = header[1] & 0x7F;
    if (length == 126 || length == 127) {
      std::uint8_t ext[8];
      const std::size_t k = length == 126 ? 2 : 8;
      if (!read_exact(ext, k, deadline, &timed_out)) return {WsEvent::Kind::kEnd, {}, 0};
      length = 0;
      for (std::size_t i = 0; i < k; ++i) length = (length << 8) | ext[i];
    }
    if ((header[1] & 0x80) != 0 || length > kMaxMessageBytes) return {WsEvent::Kind::kEnd, {}, 0};  // server must not mask
    Bytes payload(static_cast<std::size_t>(length));
    if (length > 0 && !read_exact(payload.data(), payload.size(), deadline, &timed_out)) {
      return {WsEvent::Kind::kEnd, {}, 0};
    }
    switch (opcode) {
      case 0x9:
        if (answer_pings) send_control(0xA, payload);
        return {WsEvent::Kind::kPing, std::move(payload), 0};
      case 0xA:
        return {WsEvent::Kind::kPong, std::move(payload), 0};
      case 0x8: {
        WsEvent close{WsEvent::Kind::kClose, std::move(payload), 0};
        if (close.payload.size() >= 2) close.close_code = static_cast<std::uint16_t>(close.payload[0] << 8 | close.payload[1]);
        return close;
      }
      case 0x0:
      case 0x1:
      case 0x2:
        if (opcode != 0x0) {
          message.clear();
          in_message = true;
        } else if (!in_message) {
          return {WsEvent::Kind::kEnd, {}, 0};  // continuation of nothing: protocol error
        }
        message.insert(message.end(), payload.begin(), payload.end());
        if (message.size() > kMaxMessageBytes) return {WsEvent::Kind::kEnd, {}, 0};
        if (fin) return {WsEvent::Kind::kMessage, std::move(message), 0};
        break;
      default:
        return {WsEvent::Kind::kEnd, {}, 0};
    }
  }
}

// ---------------------------------------------------------------------------------------------

std::unique_ptr<ProtocolClient> ProtocolClient::connect(std::uint16_t port, std::string* error) {
  std::unique_ptr<ProtocolClient> client(new ProtocolClient());
  client->ws_ = RawWebSocket::connect(port, error);
  if (!client->ws_) return nullptr;
  auto first = client->receive();
  if (!first) {
    *error = "no CHALLENGE: " + first.error().to_string();
    return nullptr;
  }
  if (!std::holds_alternative<Challenge>(first->message)) {
    *error = "first frame is not a CHALLENGE";
    return nullptr;
  }
  client->challenge_ = std::get<Challenge>(first->message);
  // From now on frames are read with the limits the relay announced, as a real client reads them.
  client->decode_limits_.max_frame_bytes = client->challenge_.limits.max_frame_bytes;
  client->decode_limits_.max_payload_bytes = client->challenge_.limits.max_blob_bytes;
  return client;
}

Status ProtocolClient::send(const Message& message, std::uint32_t request_id) {
  const Bytes bytes = encode_frame(Frame{request_id, message});
  if (!ws_->send_binary(ByteView(bytes.data(), bytes.size()))) return Status(Code::kConnectionClosed, "send failed");
  bytes_sent_ += bytes.size();
  return Status::ok();
}

Result<Frame> ProtocolClient::receive(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int round = 0; round < 10'000; ++round) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    WsEvent event = ws_->next(left.count() < 0 ? std::chrono::milliseconds(0) : left);
    switch (event.kind) {
      case WsEvent::Kind::kMessage: {
        bytes_received_ += event.payload.size();
        auto frame = decode_frame(ByteView(event.payload.data(), event.payload.size()), decode_limits_);
        if (!frame) return frame.error();
        return frame;
      }
      case WsEvent::Kind::kPing:
      case WsEvent::Kind::kPong:
        continue;
      case WsEvent::Kind::kClose:
        close_code_ = event.close_code;
        ws_->send_control(0x8, ByteView(event.payload.data(), std::min<std::size_t>(event.payload.size(), 2)));
        return Status(Code::kConnectionClosed, "closed with code " + std::to_string(event.close_code));
      case WsEvent::Kind::kEnd:
        return Status(Code::kConnectionClosed, "connection ended");
      case WsEvent::Kind::kTimeout:
        return Status(Code::kTimeout, "no frame in time");
    }
  }
  return Status(Code::kTimeout, "too many control frames");
}

Result<Frame> ProtocolClient::await_reply(std::uint32_t request_id) {
  for (int skipped = 0; skipped < 100'000; ++skipped) {
    auto frame = receive();
    if (!frame) return frame.error();
    if (frame->request_id == request_id) return frame;
  }
  return Status(Code::kTimeout, "reply never came");
}

Result<Welcome> ProtocolClient::handshake(const auth::SigningKey& device, const auth::SigningKey& group,
                                          const std::string& access_token, const std::string& device_name) {
  Hello hello;
  hello.device_name = device_name;
  hello.client_nonce = auth::random_id<Nonce>();
  hello.access_token = access_token;
  auth::sign_hello(hello, challenge_.relay_id, challenge_.relay_nonce, device, group);
  const std::uint32_t rid = next_request_id_++;
  if (Status st = send(hello, rid); !st) return st;
  auto reply = await_reply(rid);
  if (!reply) return reply.error();
  if (const auto* error = std::get_if<Error>(&reply->message)) {
    return Status(static_cast<Code>(error->code), error->message);
  }
  if (const auto* welcome = std::get_if<Welcome>(&reply->message)) return *welcome;
  return Status(Code::kInvalidMessage, "unexpected reply to HELLO");
}

std::uint32_t ProtocolClient::send_push(const BlobId& blob_id, const Bytes& payload) {
  const std::uint32_t rid = next_request_id_++;
  (void)send(Push{blob_id, payload, 0}, rid);
  return rid;
}

Result<PushAck> ProtocolClient::push(const BlobId& blob_id, const Bytes& payload, std::uint32_t ttl_seconds) {
  const std::uint32_t rid = next_request_id_++;
  if (Status st = send(Push{blob_id, payload, ttl_seconds}, rid); !st) return st;
  auto reply = await_reply(rid);
  if (!reply) return reply.error();
  if (const auto* error = std::get_if<Error>(&reply->message)) {
    return Status(static_cast<Code>(error->code), error->message);
  }
  if (const auto* ack = std::get_if<PushAck>(&reply->message)) return *ack;
  return Status(Code::kInvalidMessage, "unexpected reply to PUSH");
}

Result<PullResponse> ProtocolClient::pull(Cursor after, std::uint32_t limit) {
  const std::uint32_t rid = next_request_id_++;
  if (Status st = send(Pull{after, limit}, rid); !st) return st;
  auto reply = await_reply(rid);
  if (!reply) return reply.error();
  if (const auto* error = std::get_if<Error>(&reply->message)) {
    return Status(static_cast<Code>(error->code), error->message);
  }
  if (const auto* page = std::get_if<PullResponse>(&reply->message)) return *page;
  return Status(Code::kInvalidMessage, "unexpected reply to PULL");
}

Result<DeleteAck> ProtocolClient::delete_blob(const BlobId& blob_id, bool force) {
  const std::uint32_t rid = next_request_id_++;
  if (Status st = send(Delete{blob_id, force}, rid); !st) return st;
  auto reply = await_reply(rid);
  if (!reply) return reply.error();
  if (const auto* error = std::get_if<Error>(&reply->message)) {
    return Status(static_cast<Code>(error->code), error->message);
  }
  if (const auto* ack = std::get_if<DeleteAck>(&reply->message)) return *ack;
  return Status(Code::kInvalidMessage, "unexpected reply to DELETE");
}

Result<Devices> ProtocolClient::list_devices() {
  const std::uint32_t rid = next_request_id_++;
  if (Status st = send(ListDevices{}, rid); !st) return st;
  auto reply = await_reply(rid);
  if (!reply) return reply.error();
  if (const auto* error = std::get_if<Error>(&reply->message)) {
    return Status(static_cast<Code>(error->code), error->message);
  }
  if (const auto* devices = std::get_if<Devices>(&reply->message)) return *devices;
  return Status(Code::kInvalidMessage, "unexpected reply to LIST_DEVICES");
}

namespace {

// Client::connect(port, &error), or the test fails with the reason.
template <typename Client>
std::unique_ptr<Client> connected(std::uint16_t port) {
  std::string error;
  auto client = Client::connect(port, &error);
  INFO(error);
  REQUIRE(client != nullptr);
  return client;
}

}  // namespace

std::unique_ptr<RawWebSocket> connect_raw(std::uint16_t port) { return connected<RawWebSocket>(port); }

std::unique_ptr<ProtocolClient> connect_client(std::uint16_t port) { return connected<ProtocolClient>(port); }

BlobId numbered_blob(std::uint32_t n) {
  BlobId::Array a{};
  a[0] = 0x42;
  a[12] = static_cast<std::uint8_t>(n >> 24);
  a[13] = static_cast<std::uint8_t>(n >> 16);
  a[14] = static_cast<std::uint8_t>(n >> 8);
  a[15] = static_cast<std::uint8_t>(n);
  return BlobId(a);
}

}  // namespace blindsync::test
