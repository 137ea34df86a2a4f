#include "raw_client.h"

#include "blindsync/auth/transcript.h"
#include "blindsync/transport_ws/ws_transport.h"

namespace blindsync::test {

GroupMember GroupMember::make_random() {
  return GroupMember{auth::SigningKey::generate(), crypto::GroupKeys::derive(crypto::generate_group_secret())};
}

GroupMember GroupMember::make_in(const crypto::GroupSecret& group_secret) {
  return GroupMember{auth::SigningKey::generate(), crypto::GroupKeys::derive(group_secret)};
}

Result<std::unique_ptr<RawClient>> RawClient::connect(const std::string& url) {
  TransportOptions options;
  options.connect_timeout = kProtocolTimeout;
  auto transport = connect_websocket(url, options);
  if (!transport) return transport.error();
  std::unique_ptr<RawClient> client(new RawClient());
  client->transport_ = std::move(*transport);
  auto first = client->receive();
  if (!first) return first.error();
  if (const auto* challenge = std::get_if<Challenge>(&first->message)) {
    client->challenge_ = *challenge;
    return client;
  }
  return Status(Code::kInvalidMessage,
                "expected CHALLENGE first, got " + std::string(message_type_name(first->type())));
}

Status RawClient::send_bytes(ByteView bytes) { return transport_->send(bytes); }

Status RawClient::send(const Message& message, std::uint32_t request_id) {
  return send_bytes(encode_frame(Frame{request_id, message}));
}

Result<Frame> RawClient::receive(std::chrono::milliseconds timeout) {
  auto bytes = transport_->receive(timeout);
  if (!bytes) return bytes.error();
  return decode_frame(*bytes);
}

Hello RawClient::make_hello(const GroupMember& member, const std::string& device_name) const {
  Hello hello;
  hello.device_id = member.device_id();
  hello.group_id = member.group.group_id();
  hello.device_name = device_name;
  hello.last_cursor = 0;
  hello.client_nonce = auth::random_id<Nonce>();
  auth::sign_hello(hello, challenge_.relay_id, challenge_.relay_nonce, member.device, member.group.auth_key());
  return hello;
}

Result<Frame> RawClient::await_reply(std::uint32_t request_id) {
  const auto deadline = std::chrono::steady_clock::now() + kProtocolTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto frame = receive(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (!frame) return frame;
    if (const auto* error = std::get_if<Error>(&frame->message)) {
      return Status(static_cast<Code>(error->code), "relay ERROR: " + error->message);
    }
    if (frame->request_id == request_id) return frame;
  }
  return Status(Code::kTimeout, "no reply to request " + std::to_string(request_id));
}

Result<Welcome> RawClient::send_hello(const Hello& hello) {
  const std::uint32_t id = next_request_id_++;
  if (auto sent = send(hello, id); !sent) return sent;
  auto reply = await_reply(id);
  if (!reply) return reply.error();
  if (const auto* welcome = std::get_if<Welcome>(&reply->message)) return *welcome;
  return Status(Code::kInvalidMessage, "expected WELCOME, got " + std::string(message_type_name(reply->type())));
}

Result<Welcome> RawClient::handshake(const GroupMember& member) { return send_hello(make_hello(member)); }

Result<PushAck> RawClient::push(const BlobId& blob_id, const Bytes& payload, std::uint32_t ttl_seconds) {
  const std::uint32_t id = next_request_id_++;
  if (auto sent = send(Push{blob_id, payload, ttl_seconds}, id); !sent) return sent;
  auto reply = await_reply(id);
  if (!reply) return reply.error();
  if (const auto* ack = std::get_if<PushAck>(&reply->message)) return *ack;
  return Status(Code::kInvalidMessage, "expected PUSH_ACK, got " + std::string(message_type_name(reply->type())));
}

Result<PullResponse> RawClient::pull(Cursor after, std::uint32_t limit) {
  const std::uint32_t id = next_request_id_++;
  if (auto sent = send(Pull{after, limit}, id); !sent) return sent;
  auto reply = await_reply(id);
  if (!reply) return reply.error();
  if (const auto* response = std::get_if<PullResponse>(&reply->message)) return *response;
  return Status(Code::kInvalidMessage,
                "expected PULL_RESPONSE, got " + std::string(message_type_name(reply->type())));
}

CloseOutcome RawClient::read_until_closed(std::chrono::milliseconds timeout) {
  CloseOutcome outcome;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto bytes = transport_->receive(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (!bytes) {
      if (bytes.error().code() == Code::kTimeout) break;
      outcome.closed = true;  // closed, reset, or failed: the relay ended the connection
      return outcome;
    }
    auto frame = decode_frame(*bytes);
    if (!frame) continue;
    if (const auto* error = std::get_if<Error>(&frame->message)) {
      outcome.errors.push_back(*error);
    } else {
      outcome.others.push_back(frame->type());
    }
  }
  return outcome;
}

void RawClient::close() { transport_->close(); }

}  // namespace blindsync::test
