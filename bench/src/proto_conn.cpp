#include "proto_conn.h"

#include <algorithm>
#include <variant>

#include "blindsync/auth/transcript.h"

namespace blindsync::bench {

DecodeLimits bench_decode_limits() {
  DecodeLimits limits;
  limits.max_frame_bytes = 64 * 1024 * 1024;
  return limits;
}

Status status_from_error(const Error& error) {
  const auto code = static_cast<Code>(error.code);
  return Status(is_wire_code(error.code) ? code : Code::kInternal,
                "relay ERROR " + std::to_string(error.code) + ": " + error.message);
}

ProtoConn::ProtoConn(Executor strand) : ws_(std::move(strand)), decode_limits_(bench_decode_limits()) {}

awaitable<Status> ProtoConn::open(const WsTarget& target, const auth::SigningKey& device_key,
                                  const auth::SigningKey& group_key, const OpenOptions& options) {
  if (Status s = co_await ws_.connect(target, options.local_address, options.timeout); !s) co_return s;

  auto challenge_frame = co_await receive();
  if (!challenge_frame) co_return challenge_frame.status();
  const auto* challenge = std::get_if<Challenge>(&challenge_frame->message);
  if (challenge == nullptr) {
    co_return Status(Code::kInvalidMessage, std::string("expected CHALLENGE, got ") +
                                                std::string(message_type_name(challenge_frame->type())));
  }
  if (std::find(challenge->versions.begin(), challenge->versions.end(), kProtocolVersion) ==
      challenge->versions.end()) {
    co_return Status(Code::kUnsupportedVersion, "relay does not speak protocol v1");
  }
  if (options.pinned_relay_id && *options.pinned_relay_id != challenge->relay_id) {
    co_return Status(Code::kUnauthorized, "relay_id differs from the pinned one");
  }
  relay_id_ = challenge->relay_id;
  const Nonce relay_nonce = challenge->relay_nonce;

  Hello hello;
  hello.device_name = options.device_name;
  hello.last_cursor = options.last_cursor;
  hello.client_nonce = auth::random_id<Nonce>();
  auth::sign_hello(hello, relay_id_, relay_nonce, device_key, group_key);
  const auth::HandshakeInputs inputs{relay_id_, relay_nonce, hello.client_nonce, hello.device_id, hello.group_id};
  // A named frame: GCC 12 destroys non-trivial temporaries of a co_await expression wrongly.
  const Frame hello_frame{next_request_id(), std::move(hello)};
  if (Status s = co_await send(hello_frame); !s) co_return s;

  auto reply = co_await receive();
  if (!reply) co_return reply.status();
  if (const auto* error = std::get_if<Error>(&reply->message)) co_return status_from_error(*error);
  const auto* welcome = std::get_if<Welcome>(&reply->message);
  if (welcome == nullptr) {
    co_return Status(Code::kInvalidMessage,
                     std::string("expected WELCOME, got ") + std::string(message_type_name(reply->type())));
  }
  if (Status s = auth::verify_welcome(*welcome, inputs); !s) co_return s;
  welcome_ = *welcome;
  co_return Status::ok();
}

awaitable<Status> ProtoConn::send(const Frame& frame) {
  const Bytes encoded = encode_frame(frame);
  co_return co_await ws_.write(encoded);
}

awaitable<Status> ProtoConn::send_encoded(ByteView encoded) { co_return co_await ws_.write(encoded); }

awaitable<Result<Frame>> ProtoConn::receive() {
  auto message = co_await ws_.read();
  if (!message) co_return message.status();
  co_return decode_frame(*message, decode_limits_);
}

}  // namespace blindsync::bench
