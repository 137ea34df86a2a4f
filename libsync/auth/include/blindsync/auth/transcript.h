// The handshake transcript both HELLO signatures and the WELCOME relay signature cover:
//   H(label || relay_id || relay_nonce || client_nonce || device_id || group_id)
// H = BLAKE2b-256 over length-prefixed fields (u32 big-endian length, then the bytes), label
// "blindsync/v1/handshake". DESIGN.md "Wire protocol v1".
#pragma once

#include <array>
#include <cstdint>

#include "blindsync/auth/identity.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/messages.h"

namespace blindsync::auth {

using TranscriptHash = std::array<std::uint8_t, 32>;

struct HandshakeInputs {
  RelayId relay_id;
  Nonce relay_nonce;
  Nonce client_nonce;
  DeviceId device_id;
  GroupId group_id;
};

TranscriptHash handshake_transcript(const HandshakeInputs& in);

// Client side: fills hello.device_sig and hello.group_sig.
void sign_hello(Hello& hello, const RelayId& relay_id, const Nonce& relay_nonce, const SigningKey& device_key,
                const SigningKey& group_key);

// Relay side: kUnauthorized naming which signature failed, or ok.
Status verify_hello(const Hello& hello, const RelayId& relay_id, const Nonce& relay_nonce);

Signature sign_welcome(const HandshakeInputs& in, const SigningKey& relay_key);
// Client side: kUnauthorized unless relay_sig is by in.relay_id over the transcript.
Status verify_welcome(const Welcome& welcome, const HandshakeInputs& in);

}  // namespace blindsync::auth
