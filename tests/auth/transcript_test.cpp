#include "blindsync/auth/transcript.h"

#include <catch2/catch.hpp>

#include <string>
#include <utility>

using namespace blindsync;
using namespace blindsync::auth;

namespace {

template <typename Id>
Id filled(std::uint8_t v) {
  typename Id::Array a{};
  a.fill(v);
  return Id(a);
}

HandshakeInputs sample_inputs() {
  return HandshakeInputs{filled<RelayId>(1), filled<Nonce>(2), filled<Nonce>(3), filled<DeviceId>(4),
                         filled<GroupId>(5)};
}

struct Handshake {
  SigningKey device = SigningKey::generate();
  SigningKey group = SigningKey::generate();
  RelayId relay_id = filled<RelayId>(0x11);
  Nonce relay_nonce = random_id<Nonce>();
  Hello hello;

  Handshake() {
    hello.device_name = "laptop";
    hello.client_nonce = random_id<Nonce>();
    sign_hello(hello, relay_id, relay_nonce, device, group);
  }
};

}  // namespace

TEST_CASE("handshake transcript matches the independently computed value", "[transcript][kat]") {
  // BLAKE2b-256 over u32be-length-prefixed fields, computed with Python's hashlib:
  // label "blindsync/v1/handshake", relay_id 32x01, relay_nonce 32x02, client_nonce 32x03,
  // device_id 32x04, group_id 32x05.
  const TranscriptHash h = handshake_transcript(sample_inputs());
  CHECK(to_hex(h) == "dec32c5a30838cff1d6ec241f01bb8b080487e76b3e36b145c8f78eb24e77d1a");
}

TEST_CASE("handshake transcript is deterministic and changes when any input changes", "[transcript]") {
  const HandshakeInputs base = sample_inputs();
  const TranscriptHash h = handshake_transcript(base);
  CHECK(handshake_transcript(base) == h);

  HandshakeInputs in = base;
  in.relay_id.mutable_bytes()[31] ^= 1;
  CHECK(handshake_transcript(in) != h);
  in = base;
  in.relay_nonce.mutable_bytes()[0] ^= 1;
  CHECK(handshake_transcript(in) != h);
  in = base;
  in.client_nonce.mutable_bytes()[15] ^= 0x80;
  CHECK(handshake_transcript(in) != h);
  in = base;
  in.device_id.mutable_bytes()[7] ^= 1;
  CHECK(handshake_transcript(in) != h);
  in = base;
  in.group_id.mutable_bytes()[20] ^= 1;
  CHECK(handshake_transcript(in) != h);
  // Swapping two fields' values must change the hash too (positions are bound).
  in = base;
  std::swap(in.relay_nonce, in.client_nonce);
  CHECK(handshake_transcript(in) != h);
}

TEST_CASE("a signed HELLO verifies", "[transcript]") {
  Handshake hs;
  CHECK(hs.hello.device_id == DeviceId(hs.device.public_key()));
  CHECK(hs.hello.group_id == GroupId(hs.group.public_key()));
  const Status st = verify_hello(hs.hello, hs.relay_id, hs.relay_nonce);
  CHECK(st.is_ok());
}

TEST_CASE("verify_hello rejects a bad device signature and says so", "[transcript]") {
  Handshake hs;
  hs.hello.device_sig.mutable_bytes()[10] ^= 0x04;
  const Status st = verify_hello(hs.hello, hs.relay_id, hs.relay_nonce);
  CHECK(st.code() == Code::kUnauthorized);
  CHECK(st.message().find("device") != std::string::npos);
}

TEST_CASE("verify_hello rejects a bad group signature and says so", "[transcript]") {
  Handshake hs;
  hs.hello.group_sig.mutable_bytes()[63] ^= 0x01;
  const Status st = verify_hello(hs.hello, hs.relay_id, hs.relay_nonce);
  CHECK(st.code() == Code::kUnauthorized);
  CHECK(st.message().find("group") != std::string::npos);
}

TEST_CASE("verify_hello rejects a group signature made with another group's key", "[transcript]") {
  Handshake hs;
  const SigningKey impostor = SigningKey::generate();
  const TranscriptHash h = handshake_transcript(
      HandshakeInputs{hs.relay_id, hs.relay_nonce, hs.hello.client_nonce, hs.hello.device_id, hs.hello.group_id});
  hs.hello.group_sig = impostor.sign(h);
  const Status st = verify_hello(hs.hello, hs.relay_id, hs.relay_nonce);
  CHECK(st.code() == Code::kUnauthorized);
  CHECK(st.message().find("group") != std::string::npos);
}

TEST_CASE("a HELLO replayed against another relay nonce is rejected", "[transcript]") {
  Handshake hs;
  Nonce other = hs.relay_nonce;
  other.mutable_bytes()[0] ^= 0xFF;
  CHECK(verify_hello(hs.hello, hs.relay_id, other).code() == Code::kUnauthorized);
  CHECK(verify_hello(hs.hello, hs.relay_id, random_id<Nonce>()).code() == Code::kUnauthorized);
}

TEST_CASE("a HELLO for another relay or with changed ids or nonce is rejected", "[transcript]") {
  Handshake hs;
  CHECK(verify_hello(hs.hello, filled<RelayId>(0x12), hs.relay_nonce).code() == Code::kUnauthorized);

  Hello h = hs.hello;
  h.client_nonce.mutable_bytes()[5] ^= 1;
  CHECK(verify_hello(h, hs.relay_id, hs.relay_nonce).code() == Code::kUnauthorized);

  h = hs.hello;
  h.group_id = GroupId(SigningKey::generate().public_key());
  CHECK(verify_hello(h, hs.relay_id, hs.relay_nonce).code() == Code::kUnauthorized);

  h = hs.hello;
  h.device_id = DeviceId(SigningKey::generate().public_key());
  CHECK(verify_hello(h, hs.relay_id, hs.relay_nonce).code() == Code::kUnauthorized);

  h = hs.hello;
  h.device_sig = Signature{};
  h.group_sig = Signature{};
  CHECK(verify_hello(h, hs.relay_id, hs.relay_nonce).code() == Code::kUnauthorized);
}

TEST_CASE("a WELCOME signed by the relay verifies and binds the transcript", "[transcript]") {
  const SigningKey relay = SigningKey::generate();
  HandshakeInputs in = sample_inputs();
  in.relay_id = RelayId(relay.public_key());
  Welcome w;
  w.relay_sig = sign_welcome(in, relay);
  CHECK(verify_welcome(w, in).is_ok());

  HandshakeInputs changed = in;
  changed.client_nonce.mutable_bytes()[0] ^= 1;
  CHECK(verify_welcome(w, changed).code() == Code::kUnauthorized);
  changed = in;
  changed.group_id.mutable_bytes()[0] ^= 1;
  CHECK(verify_welcome(w, changed).code() == Code::kUnauthorized);

  Welcome bad = w;
  bad.relay_sig.mutable_bytes()[1] ^= 1;
  CHECK(verify_welcome(bad, in).code() == Code::kUnauthorized);
}

TEST_CASE("a WELCOME signed by a different relay key fails the pinned relay_id", "[transcript]") {
  const SigningKey pinned = SigningKey::generate();
  const SigningKey rogue = SigningKey::generate();
  HandshakeInputs in = sample_inputs();
  in.relay_id = RelayId(pinned.public_key());
  Welcome w;
  w.relay_sig = sign_welcome(in, rogue);
  CHECK(verify_welcome(w, in).code() == Code::kUnauthorized);
}

TEST_CASE("a client HELLO signature cannot be replayed as a WELCOME relay signature", "[transcript]") {
  // One key used as both the device key and the relay key: only the distinct relay label stops
  // the device signature over the transcript from passing as the relay's.
  const SigningKey shared = SigningKey::generate();
  const SigningKey group = SigningKey::generate();
  const RelayId relay_id(shared.public_key());
  const Nonce relay_nonce = random_id<Nonce>();
  Hello hello;
  hello.client_nonce = random_id<Nonce>();
  sign_hello(hello, relay_id, relay_nonce, shared, group);
  REQUIRE(verify_hello(hello, relay_id, relay_nonce).is_ok());

  const HandshakeInputs in{relay_id, relay_nonce, hello.client_nonce, hello.device_id, hello.group_id};
  Welcome w;
  w.relay_sig = hello.device_sig;
  CHECK(verify_welcome(w, in).code() == Code::kUnauthorized);
  // And the reverse: a relay signature is not a valid device signature.
  Hello forged = hello;
  forged.device_sig = sign_welcome(in, shared);
  CHECK(verify_hello(forged, relay_id, relay_nonce).code() == Code::kUnauthorized);
}
