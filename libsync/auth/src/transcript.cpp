// Handshake transcript hashing, HELLO and WELCOME signatures (transcript.h).
#include "blindsync/auth/transcript.h"

#include <sodium.h>

#include <string_view>

#include "sodium_init.h"

namespace blindsync::auth {
namespace {

constexpr std::string_view kHandshakeLabel = "blindsync/v1/handshake";
// Distinct label for the relay's WELCOME signature: see the header comment.
constexpr std::string_view kRelayLabel = "blindsync/v1/handshake/relay";

static_assert(crypto_generichash_BYTES == std::tuple_size_v<TranscriptHash>);

// Feeds one field as u32 big-endian length then its bytes, so field boundaries are unambiguous.
void absorb(crypto_generichash_state& state, ByteView field) {
  const auto n = static_cast<std::uint32_t>(field.size());
  const std::uint8_t len[4] = {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                               static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  crypto_generichash_update(&state, len, sizeof len);
  if (!field.empty()) crypto_generichash_update(&state, field.data(), field.size());
}

TranscriptHash transcript_with_label(std::string_view label, const HandshakeInputs& in) {
  detail::ensure_sodium();
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, crypto_generichash_BYTES);
  absorb(state, as_bytes(label));
  absorb(state, in.relay_id.view());
  absorb(state, in.relay_nonce.view());
  absorb(state, in.client_nonce.view());
  absorb(state, in.device_id.view());
  absorb(state, in.group_id.view());
  TranscriptHash out{};
  crypto_generichash_final(&state, out.data(), out.size());
  return out;
}

HandshakeInputs hello_inputs(const Hello& hello, const RelayId& relay_id, const Nonce& relay_nonce) {
  return HandshakeInputs{relay_id, relay_nonce, hello.client_nonce, hello.device_id, hello.group_id};
}

}  // namespace

TranscriptHash handshake_transcript(const HandshakeInputs& in) { return transcript_with_label(kHandshakeLabel, in); }

void sign_hello(Hello& hello, const RelayId& relay_id, const Nonce& relay_nonce, const SigningKey& device_key,
                const SigningKey& group_key) {
  hello.device_id = DeviceId(device_key.public_key());
  hello.group_id = GroupId(group_key.public_key());
  const TranscriptHash h = handshake_transcript(hello_inputs(hello, relay_id, relay_nonce));
  hello.device_sig = device_key.sign(h);
  hello.group_sig = group_key.sign(h);
}

Status verify_hello(const Hello& hello, const RelayId& relay_id, const Nonce& relay_nonce) {
  const TranscriptHash h = handshake_transcript(hello_inputs(hello, relay_id, relay_nonce));
  if (!verify_signature(hello.device_id.bytes(), h, hello.device_sig)) {
    return Status(Code::kUnauthorized, "HELLO device signature does not verify for device_id");
  }
  if (!verify_signature(hello.group_id.bytes(), h, hello.group_sig)) {
    return Status(Code::kUnauthorized, "HELLO group signature does not verify for group_id");
  }
  return Status::ok();
}

Signature sign_welcome(const HandshakeInputs& in, const SigningKey& relay_key) {
  return relay_key.sign(transcript_with_label(kRelayLabel, in));
}

Status verify_welcome(const Welcome& welcome, const HandshakeInputs& in) {
  if (!verify_signature(in.relay_id.bytes(), transcript_with_label(kRelayLabel, in), welcome.relay_sig)) {
    return Status(Code::kUnauthorized, "WELCOME relay signature does not verify for relay_id");
  }
  return Status::ok();
}

}  // namespace blindsync::auth
