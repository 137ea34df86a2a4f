// libFuzzer target: the invite link parser (invite.h).
//
// Two input forms, so that the fuzzer reaches both layers of the format:
//   - text starting with "blindsync://join/": used as the link itself (prefix + base64url parsing);
//   - anything else: taken as the raw MessagePack payload and wrapped into a link with
//     to_base64url, so mutations land on the payload decoder instead of on base64 text.
// Properties checked on top of "no crash, no sanitizer report":
//   1. failures are INVALID_ARGUMENT or UNSUPPORTED_VERSION (never EXPIRED with now = 0);
//   2. a decoded invite satisfies the bounds of invite.h (1..8 ws/wss relays, URL and name sizes,
//      UTF-8 name, version 1);
//   3. round trip: decode(encode(decoded)) == decoded, and encode is stable on it;
//   4. expiry: the link is valid at now == expires_at_ms and EXPIRED one millisecond later.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>

#include "blindsync/client/invite.h"
#include "blindsync/core/bytes.h"
#include "blindsync/core/utf8.h"
#include "fuzz_check.h"

namespace {

using namespace blindsync;

bool valid_url(const std::string& url) {
  const bool ws = url.starts_with("ws://") && url.size() > 5;
  const bool wss = url.starts_with("wss://") && url.size() > 6;
  if (!(ws || wss) || url.size() > kMaxInviteUrlBytes) return false;
  for (char ch : url) {
    if (ch <= 0x20 || ch >= 0x7F) return false;
  }
  return true;
}

void check_bounds(const Invite& invite) {
  FUZZ_CHECK(invite.version == kInviteVersion);
  FUZZ_CHECK(!invite.relays.empty() && invite.relays.size() <= kMaxInviteRelays);
  for (const auto& relay : invite.relays) FUZZ_CHECK(valid_url(relay.url));
  FUZZ_CHECK(invite.group_name.size() <= kMaxInviteNameBytes);
  FUZZ_CHECK(is_valid_utf8(invite.group_name));
}

void check_invite(std::string_view link) {
  auto invite = decode_invite(link, 0);  // now = 0: nothing has expired yet
  if (!invite) {
    const Code code = invite.error().code();
    FUZZ_CHECK(code == Code::kInvalidArgument || code == Code::kUnsupportedVersion);
    FUZZ_CHECK(!invite.error().message().empty());
    return;
  }
  check_bounds(*invite);

  const std::string encoded = encode_invite(*invite);
  FUZZ_CHECK(encoded.starts_with(kInvitePrefix));
  auto again = decode_invite(encoded, 0);
  if (!again) {
    std::fprintf(stderr, "re-decode failed: %s\n", again.error().to_string().c_str());
    FUZZ_FAIL("decode_invite(encode_invite(decoded)) succeeds");
  }
  FUZZ_CHECK(*again == *invite);
  FUZZ_CHECK(encode_invite(*again) == encoded);

  const std::uint64_t expiry = invite->expires_at_ms;
  if (expiry != 0) {
    auto at_expiry = decode_invite(link, expiry);
    FUZZ_CHECK(at_expiry.has_value() && *at_expiry == *invite);
    if (expiry != std::numeric_limits<std::uint64_t>::max()) {
      auto late = decode_invite(link, expiry + 1);
      FUZZ_CHECK(!late.has_value() && late.error().code() == Code::kExpired);
    }
  } else {
    auto much_later = decode_invite(link, std::numeric_limits<std::uint64_t>::max());
    FUZZ_CHECK(much_later.has_value());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (text.starts_with(kInvitePrefix)) {
    check_invite(text);
  } else {
    std::string link(kInvitePrefix);
    link += to_base64url(ByteView(data, size));
    check_invite(link);
  }
  return 0;
}
