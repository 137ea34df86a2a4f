// libFuzzer target: the protocol v1 frame decoder (codec.h), fed raw WebSocket message bytes.
//
// Beyond "no crash, no sanitizer report", every input is held to these properties:
//   1. decode_frame fails only with INVALID_MESSAGE or UNSUPPORTED_VERSION (INTERNAL for
//      out-of-memory), always with a message;
//   2. a decoded frame respects the limits it was decoded with (payloads, strings, arrays);
//   3. peek_frame_header agrees with every frame decode_frame accepts;
//   4. round trip: encode_frame(decoded) decodes to an equal frame, and re-encoding that gives the
//      same bytes (catches encoder/decoder asymmetry and non-canonical encoding);
//   5. limits are monotonic: what decodes under tight limits decodes, equal, under the defaults.
// A violated property aborts, so libFuzzer keeps the input as a crash artifact.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <variant>

#include "blindsync/core/codec.h"
#include "blindsync/core/messages.h"
#include "fuzz_check.h"

namespace {

using namespace blindsync;

// Small enough that typical frames cross them; large enough for every v1 key name (a str too).
DecodeLimits tight_limits() {
  DecodeLimits limits;
  limits.max_frame_bytes = 8 * 1024;
  limits.max_payload_bytes = 256;
  limits.max_string_bytes = 32;
  limits.max_array_items = 4;
  return limits;
}

struct LimitChecker {
  const DecodeLimits& limits;

  bool bytes(const Bytes& b) const { return b.size() <= limits.max_payload_bytes; }
  bool str(const std::string& s) const { return s.size() <= limits.max_string_bytes; }
  template <typename T>
  bool array(const std::vector<T>& v) const { return v.size() <= limits.max_array_items; }

  bool operator()(const Challenge& m) const { return array(m.versions); }
  bool operator()(const Hello& m) const { return str(m.device_name) && str(m.access_token); }
  bool operator()(const Bye& m) const { return str(m.reason); }
  bool operator()(const Push& m) const { return bytes(m.payload); }
  bool operator()(const PullResponse& m) const {
    if (!array(m.blobs)) return false;
    for (const auto& b : m.blobs) {
      if (!bytes(b.payload)) return false;
    }
    return true;
  }
  bool operator()(const Notify& m) const { return !m.payload || bytes(*m.payload); }
  bool operator()(const RevokeDevice& m) const { return str(m.reason); }
  bool operator()(const DeviceRevoked& m) const { return str(m.reason); }
  bool operator()(const Devices& m) const {
    if (!array(m.devices)) return false;
    for (const auto& d : m.devices) {
      if (!str(d.name)) return false;
    }
    return true;
  }
  bool operator()(const RegisterPush& m) const { return str(m.token) && str(m.platform); }
  bool operator()(const UnregisterPush& m) const { return str(m.token) && str(m.platform); }
  bool operator()(const Error& m) const { return str(m.message); }
  bool operator()(const auto&) const { return true; }  // fixed-size fields only
};

bool within(const Frame& frame, const DecodeLimits& limits) {
  return std::visit(LimitChecker{limits}, frame.message);
}

bool acceptable_failure(const Status& status) {
  const Code code = status.code();
  return (code == Code::kInvalidMessage || code == Code::kUnsupportedVersion || code == Code::kInternal) &&
         !status.message().empty();
}

void check_round_trip(const Frame& frame, const DecodeLimits& limits) {
  const Bytes encoded = encode_frame(frame);
  // A decoded frame re-encodes canonically, which may be a few bytes longer than a hand-made
  // input (absent optional fields, other key order): allow that, nothing else changes.
  DecodeLimits relaxed = limits;
  if (encoded.size() > relaxed.max_frame_bytes) relaxed.max_frame_bytes = encoded.size();
  auto again = decode_frame(encoded, relaxed);
  if (!again) {
    std::fprintf(stderr, "re-decode failed: %s\n", again.error().to_string().c_str());
    FUZZ_FAIL("encode_frame(decode_frame(x)) decodes");
  }
  FUZZ_CHECK(*again == frame);
  FUZZ_CHECK(encode_frame(*again) == encoded);

  auto header = peek_frame_header(encoded, relaxed);
  FUZZ_CHECK(header.has_value());
  FUZZ_CHECK(header->version == kProtocolVersion);
  FUZZ_CHECK(header->type == static_cast<std::uint8_t>(frame.type()));
  FUZZ_CHECK(header->request_id == frame.request_id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  const DecodeLimits defaults;

  // peek must never crash, whatever decode thinks of the frame.
  auto header = peek_frame_header(input, defaults);
  if (!header) FUZZ_CHECK(header.error().code() == Code::kInvalidMessage);

  auto frame = decode_frame(input, defaults);
  if (!frame) {
    if (!acceptable_failure(frame.error())) {
      std::fprintf(stderr, "unexpected error: %s\n", frame.error().to_string().c_str());
      FUZZ_FAIL("decode_frame fails with INVALID_MESSAGE or UNSUPPORTED_VERSION");
    }
  } else {
    FUZZ_CHECK(within(*frame, defaults));
    FUZZ_CHECK(header.has_value());
    FUZZ_CHECK(header->version == kProtocolVersion);
    FUZZ_CHECK(header->type == static_cast<std::uint8_t>(frame->type()));
    FUZZ_CHECK(header->request_id == frame->request_id);
    check_round_trip(*frame, defaults);
  }

  const DecodeLimits tight = tight_limits();
  auto small = decode_frame(input, tight);
  if (!small) {
    FUZZ_CHECK(acceptable_failure(small.error()));
  } else {
    FUZZ_CHECK(within(*small, tight));
    FUZZ_CHECK(frame.has_value());
    FUZZ_CHECK(*small == *frame);
  }
  return 0;
}
