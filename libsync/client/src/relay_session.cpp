#include "relay_session.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "blindsync/auth/transcript.h"

namespace blindsync::client_detail {

namespace {

std::string describe_bye(const Bye& bye) {
  std::string text = "relay ended the session";
  if (bye.code != 0) {
    text += ": ";
    text += is_wire_code(bye.code) ? std::string(code_name(static_cast<Code>(bye.code)))
                                   : "code " + std::to_string(bye.code);
  }
  if (!bye.reason.empty()) text += " (" + bye.reason + ")";
  return text;
}

}  // namespace

Status relay_error_status(const Error& error) {
  if (is_wire_code(error.code)) {
    const auto code = static_cast<Code>(error.code);
    return Status(code, "relay error: " + (error.message.empty() ? std::string(code_name(code)) : error.message));
  }
  return Status(Code::kInternal,
                "relay sent unknown error code " + std::to_string(error.code) + ": " + error.message);
}

RelaySession::RelaySession(std::unique_ptr<Transport> transport, std::chrono::milliseconds timeout,
                           std::size_t max_frame_bytes)
    : transport_(std::move(transport)),
      machine_(Role::kClient, SessionMachine::Clock::now(), timeout),
      timeout_(timeout) {
  decode_limits_.max_frame_bytes = max_frame_bytes;
  // The frame limit bounds every field; a payload may use all of it.
  decode_limits_.max_payload_bytes = max_frame_bytes;
}

RelaySession::~RelaySession() { close(); }

Result<std::unique_ptr<RelaySession>> RelaySession::open(const TransportFactory& factory, const SessionParams& params) {
  auto session = connect(factory, params);
  if (!session) return session.error();
  if (Status status = (*session)->handshake(params); !status) {
    (*session)->close();
    return status;
  }
  return session;
}

Result<std::unique_ptr<RelaySession>> RelaySession::connect(const TransportFactory& factory,
                                                            const SessionParams& params) {
  if (!factory) return Status(Code::kInvalidArgument, "no transport configured (ClientOptions.transport is empty)");
  if (params.device_key == nullptr || params.group_auth_key == nullptr) {
    return Status(Code::kInvalidArgument, "session needs a device key and a group key");
  }
  TransportOptions transport_options;
  transport_options.connect_timeout = params.timeout;
  auto transport = factory(params.relay_url, transport_options);
  if (!transport) {
    return Status(transport.error().code(), "cannot reach relay " + params.relay_url + ": " + transport.error().message());
  }
  if (!*transport) return Status(Code::kInternal, "transport factory returned no transport");
  return std::unique_ptr<RelaySession>(
      new RelaySession(std::move(*transport), params.timeout, transport_options.max_message_bytes));
}

void RelaySession::interrupt() { transport_->close(); }

Status RelaySession::handshake(const SessionParams& params) {
  auto first = receive(timeout_);
  if (!first) {
    if (first.error().code() == Code::kTimeout) {
      return fail(Status(Code::kTimeout, "relay " + params.relay_url + " sent no CHALLENGE within " +
                                             std::to_string(timeout_.count()) + " ms"));
    }
    return first.error();
  }
  if (const auto* error = std::get_if<Error>(&first->message)) return fail(relay_error_status(*error));
  const auto* challenge = std::get_if<Challenge>(&first->message);
  if (challenge == nullptr) {
    return fail(Status(Code::kInvalidMessage, "relay opened with " + std::string(message_type_name(first->type())) +
                                                  " instead of CHALLENGE"));
  }
  if (std::find(challenge->versions.begin(), challenge->versions.end(), kProtocolVersion) ==
      challenge->versions.end()) {
    return fail(Status(Code::kUnsupportedVersion, "relay does not speak protocol v" + std::to_string(kProtocolVersion)));
  }
  if (params.pinned_relay && *params.pinned_relay != challenge->relay_id) {
    return fail(Status(Code::kUnauthorized, "relay identity changed: " + params.relay_url + " presented relay_id " +
                                                challenge->relay_id.to_hex() + ", expected " +
                                                params.pinned_relay->to_hex()));
  }
  relay_id_ = challenge->relay_id;
  const Nonce relay_nonce = challenge->relay_nonce;

  Hello hello;
  hello.device_id = DeviceId(params.device_key->public_key());
  hello.group_id = params.group_id;
  hello.device_name = params.device_name;
  hello.last_cursor = params.last_cursor;
  hello.client_nonce = auth::random_id<Nonce>();
  auth::sign_hello(hello, relay_id_, relay_nonce, *params.device_key, *params.group_auth_key);
  const auth::HandshakeInputs transcript{relay_id_, relay_nonce, hello.client_nonce, hello.device_id, hello.group_id};
  if (auto sent = send(std::move(hello)); !sent) return sent.error();

  auto second = receive(timeout_);
  if (!second) {
    if (second.error().code() == Code::kTimeout) {
      return fail(Status(Code::kTimeout, "relay " + params.relay_url + " sent no WELCOME within " +
                                             std::to_string(timeout_.count()) + " ms"));
    }
    return second.error();
  }
  if (const auto* error = std::get_if<Error>(&second->message)) return fail(relay_error_status(*error));
  const auto* welcome = std::get_if<Welcome>(&second->message);
  if (welcome == nullptr) {
    return fail(Status(Code::kInvalidMessage, "relay answered HELLO with " +
                                                  std::string(message_type_name(second->type()))));
  }
  if (Status verified = auth::verify_welcome(*welcome, transcript); !verified) {
    return fail(Status(Code::kUnauthorized, "WELCOME signature does not verify: " + verified.message()));
  }
  welcome_ = *welcome;
  return Status::ok();
}

Result<std::uint32_t> RelaySession::send(Message message) {
  std::uint32_t request_id = 0;
  {
    std::lock_guard lock(mu_);
    request_id = next_request_id_;
    next_request_id_ = next_request_id_ == UINT32_MAX ? 1 : next_request_id_ + 1;  // 0 is the relay's
  }
  if (Status sent = send_frame(request_id, std::move(message)); !sent) return sent;
  return request_id;
}

Status RelaySession::send_as(std::uint32_t request_id, Message message) {
  return send_frame(request_id, std::move(message));
}

Status RelaySession::send_frame(std::uint32_t request_id, Message message) {
  const MessageType type = type_of(message);
  {
    std::lock_guard lock(mu_);
    if (!failure_.is_ok()) return failure_;
    if (Status allowed = machine_.on_send(type); !allowed) {
      return Status(Code::kInvalidState, "cannot send " + std::string(message_type_name(type)) + " now: " +
                                             allowed.message());
    }
  }
  const Bytes bytes = encode_frame(Frame{request_id, std::move(message)});
  if (Status sent = transport_->send(bytes); !sent) {
    return fail(Status(sent.code() == Code::kTimeout ? Code::kTimeout : Code::kConnectionClosed,
                       "sending " + std::string(message_type_name(type)) + " failed: " + sent.message()));
  }
  return Status::ok();
}

Result<Frame> RelaySession::receive(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(mu_);
    if (!failure_.is_ok()) return failure_;
  }
  auto bytes = transport_->receive(timeout);
  if (!bytes) {
    if (bytes.error().code() == Code::kTimeout) return bytes.error();
    return fail(Status(Code::kConnectionClosed, bytes.error().message()));
  }
  auto frame = decode_frame(*bytes, decode_limits_);
  if (!frame) {
    return fail(Status(frame.error().code() == Code::kUnsupportedVersion ? Code::kUnsupportedVersion
                                                                         : Code::kInvalidMessage,
                       "relay sent a malformed frame: " + frame.error().message()));
  }
  const MessageType type = frame->type();
  Status allowed;
  {
    std::lock_guard lock(mu_);
    // A frame that raced with a local close is not delivered.
    if (!failure_.is_ok()) return failure_;
    allowed = machine_.on_receive(type);
  }
  if (const auto* error = std::get_if<Error>(&frame->message); error != nullptr && !allowed) {
    // An ERROR the state machine did not expect (e.g. during the handshake) still explains itself.
    return fail(relay_error_status(*error));
  }
  if (!allowed) {
    return fail(Status(Code::kInvalidState, "relay sent " + std::string(message_type_name(type)) +
                                                " out of place: " + allowed.message()));
  }
  if (const auto* bye = std::get_if<Bye>(&frame->message)) {
    return fail(Status(Code::kConnectionClosed, describe_bye(*bye)));
  }
  return std::move(*frame);
}

Status RelaySession::fail(Status status) {
  {
    std::lock_guard lock(mu_);
    if (failure_.is_ok()) failure_ = status;
    machine_.begin_close();
  }
  transport_->close();
  std::lock_guard lock(mu_);
  machine_.on_closed();
  return status;
}

bool RelaySession::usable() const {
  std::lock_guard lock(mu_);
  return failure_.is_ok() && machine_.is_active();
}

void RelaySession::close() {
  bool say_bye = false;
  std::uint32_t bye_id = 0;
  {
    std::lock_guard lock(mu_);
    if (failure_.is_ok() && machine_.is_active() && machine_.on_send(MessageType::kBye).is_ok()) {
      say_bye = true;
      bye_id = next_request_id_;
    }
    if (failure_.is_ok()) failure_ = Status(Code::kConnectionClosed, "session closed");
    machine_.begin_close();
  }
  if (say_bye) {
    // Best effort: the relay logs a clean goodbye instead of a dropped connection.
    const Bytes bye = encode_frame(Frame{bye_id, Bye{0, "done"}});
    (void)transport_->send(bye);
  }
  transport_->close();
  std::lock_guard lock(mu_);
  machine_.on_closed();
}

}  // namespace blindsync::client_detail
