// The handshake transcript both HELLO signatures and the WELCOME relay signature cover:
//   H(label || relay_id || relay_nonce || client_nonce || device_id || group_id)
// H = BLAKE2b-256 over length-prefixed fields (u32 big-endian length, then the bytes), label
// "blindsync/v1/handshake". DESIGN.md "Wire protocol v1".
//
// HELLO: device_sig (by device_id) and group_sig (by group_id, the group auth public key) both sign
// handshake_transcript(in), the 32-byte hash above.
// WELCOME: relay_sig (by relay_id) signs the same fields hashed the same way under the distinct label
// "blindsync/v1/handshake/relay". A client signature over the same handshake therefore can never be
// replayed as a relay signature (and vice versa), even if a relay key were also used as a device key.
// Signatures bind the relay's fresh relay_nonce, so a HELLO recorded on one connection is refused on
// any other.
//
// Thread-safety: free functions on values; safe to call concurrently.
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

// Client side: sets hello.device_id and hello.group_id to the keys' public keys, then fills
// hello.device_sig and hello.group_sig (hello.client_nonce must already be set).
void sign_hello(Hello& hello, const RelayId& relay_id, const Nonce& relay_nonce, const SigningKey& device_key,
                const SigningKey& group_key);

// Relay side: kUnauthorized naming which signature failed, or ok.
Status verify_hello(const Hello& hello, const RelayId& relay_id, const Nonce& relay_nonce);

Signature sign_welcome(const HandshakeInputs& in, const SigningKey& relay_key);
// Client side: kUnauthorized unless relay_sig is by in.relay_id over the transcript.
Status verify_welcome(const Welcome& welcome, const HandshakeInputs& in);

}  // namespace blindsync::auth
