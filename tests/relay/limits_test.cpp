// Unit tests of relay/src/limits: token bucket, message rate limiter (bounded memory), per-address
// connection slots, admission policy and the validation of RelayLimits. Time is a manual clock.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "limits/admission.h"
#include "limits/connection_limiter.h"
#include "limits/rate_limiter.h"
#include "limits/relay_limits.h"
#include "limits/token_bucket.h"

namespace {

using namespace blindsync;
using namespace blindsync::relay;
using Clock = TokenBucket::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

DeviceId device_from(std::uint64_t n) {
  DeviceId::Array a{};
  for (int i = 0; i < 8; ++i) a[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
  a[31] = 0x5A;
  return DeviceId(a);
}

GroupId group_from(std::uint8_t n) {
  GroupId::Array a{};
  a[0] = n;
  return GroupId(a);
}

TEST_CASE("a token bucket allows its burst, then one event per refill period", "[limits][bucket]") {
  const auto t0 = Clock::time_point{} + seconds(1000);
  TokenBucket bucket(3, 1.0, t0);  // 3 at once, then 1 per second
  CHECK(bucket.try_take(t0));
  CHECK(bucket.try_take(t0));
  CHECK(bucket.try_take(t0));
  CHECK_FALSE(bucket.try_take(t0));
  CHECK_FALSE(bucket.try_take(t0 + milliseconds(900)));
  CHECK(bucket.try_take(t0 + milliseconds(1000)));
  CHECK_FALSE(bucket.try_take(t0 + milliseconds(1500)));
  CHECK_FALSE(bucket.full_at(t0 + seconds(3)));
  CHECK(bucket.full_at(t0 + seconds(10)));
  // Refill never exceeds the capacity however long the pause.
  for (int i = 0; i < 3; ++i) CHECK(bucket.try_take(t0 + seconds(100)));
  CHECK_FALSE(bucket.try_take(t0 + seconds(100)));
}

TEST_CASE("a token bucket ignores a clock that goes backwards", "[limits][bucket][hostile]") {
  const auto t0 = Clock::time_point{} + seconds(1000);
  TokenBucket bucket(1, 1.0, t0);
  CHECK(bucket.try_take(t0));
  CHECK_FALSE(bucket.try_take(t0 - seconds(500)));
  CHECK_FALSE(bucket.try_take(t0 + milliseconds(500)));
  CHECK(bucket.try_take(t0 + milliseconds(1000)));
}

TEST_CASE("the device limit refuses the 101st message of a minute and refills over the minute", "[limits][rate]") {
  const auto t0 = Clock::time_point{} + seconds(1000);
  MessageRateLimiter limiter(100, 1'000'000, 1000, t0);
  const DeviceId a = device_from(1);
  const DeviceId b = device_from(2);
  for (int i = 0; i < 100; ++i) REQUIRE(limiter.check_device(a, t0) == RateDecision::kAllowed);
  CHECK(limiter.check_device(a, t0) == RateDecision::kDeviceLimited);
  CHECK(limiter.check_device(b, t0) == RateDecision::kAllowed);  // another device has its own bucket
  CHECK(limiter.check_device(a, t0 + milliseconds(599)) == RateDecision::kDeviceLimited);
  CHECK(limiter.check_device(a, t0 + milliseconds(600)) == RateDecision::kAllowed);  // 100/min = one per 0.6 s
}

TEST_CASE("fresh device keys cannot bypass the global limit", "[limits][rate][hostile]") {
  const auto t0 = Clock::time_point{} + seconds(1000);
  MessageRateLimiter limiter(100, 50, 100'000, t0);
  int allowed = 0;
  int global_refusals = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) {  // 1000 brand-new devices, one message each, same instant
    const RateDecision d = limiter.check_device(device_from(i), t0);
    if (d == RateDecision::kAllowed) ++allowed;
    if (d == RateDecision::kGlobalLimited) ++global_refusals;
  }
  CHECK(allowed == 50);
  CHECK(global_refusals == 950);
  // Unauthenticated frames (HELLOs) draw from the same global bucket.
  CHECK(limiter.check_anonymous(t0) == RateDecision::kGlobalLimited);
  CHECK(limiter.check_anonymous(t0 + milliseconds(20)) == RateDecision::kAllowed);
}

TEST_CASE("the rate limiter's memory stays bounded with 100k distinct devices", "[limits][rate][hostile]") {
  const auto t0 = Clock::time_point{} + seconds(1000);
  constexpr std::size_t kBound = 1000;
  MessageRateLimiter limiter(100, 1'000'000'000, kBound, t0);
  std::size_t peak = 0;
  for (std::uint64_t i = 0; i < 100'000; ++i) {
    // All at nearly the same instant: no bucket refills, so eviction must come from the bound.
    (void)limiter.check_device(device_from(i), t0 + std::chrono::microseconds(i));
    peak = std::max(peak, limiter.tracked_devices());
  }
  CHECK(peak <= kBound);
  CHECK(limiter.tracked_devices() <= kBound);
}

TEST_CASE("idle device buckets are forgotten once they have refilled", "[limits][rate]") {
  const auto t0 = Clock::time_point{} + seconds(1000);
  MessageRateLimiter limiter(60, 1'000'000, 100'000, t0);
  for (std::uint64_t i = 0; i < 500; ++i) (void)limiter.check_device(device_from(i), t0);
  CHECK(limiter.tracked_devices() == 500);
  // A minute later every bucket is full again: each new call prunes the idle tail.
  const auto later = t0 + seconds(61);
  for (std::uint64_t i = 0; i < 300; ++i) (void)limiter.check_device(device_from(1'000'000 + i), later);
  CHECK(limiter.tracked_devices() == 300);  // two idle ones pruned per call: all 500 are gone
}

TEST_CASE("an evicted busy device gets at most a fresh budget, never more than the global one",
          "[limits][rate][hostile]") {
  const auto t0 = Clock::time_point{} + seconds(1000);
  MessageRateLimiter limiter(5, 20, 2, t0);
  const DeviceId abuser = device_from(7);
  int allowed = 0;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 6; ++i) allowed += limiter.check_device(abuser, t0) == RateDecision::kAllowed ? 1 : 0;
    // Two other devices push the abuser out of the 2-entry table.
    (void)limiter.check_device(device_from(100 + round * 2), t0);
    (void)limiter.check_device(device_from(101 + round * 2), t0);
  }
  CHECK(allowed <= 20);  // the global bucket (burst 20) still bounds it
}

TEST_CASE("connection slots: the 11th concurrent connection from one address is refused", "[limits][connections]") {
  ConnectionLimiter limiter(10);
  std::vector<ConnectionSlot> slots;
  for (int i = 0; i < 10; ++i) {
    auto slot = limiter.try_acquire("203.0.113.9");
    REQUIRE(slot.has_value());
    slots.push_back(std::move(*slot));
  }
  CHECK_FALSE(limiter.try_acquire("203.0.113.9").has_value());
  CHECK(limiter.try_acquire("203.0.113.10").has_value());  // another address is unaffected (slot freed at once)
  CHECK(limiter.connections_from("203.0.113.9") == 10);
  slots.pop_back();  // one connection ends: its slot can be reused
  auto again = limiter.try_acquire("203.0.113.9");
  CHECK(again.has_value());
  slots.clear();
  again.reset();
  CHECK(limiter.connections_from("203.0.113.9") == 0);
  CHECK(limiter.tracked_addresses() == 0);  // no entry survives its last connection
}

TEST_CASE("connection slots count IPv6 per /64 and IPv4-mapped addresses as IPv4", "[limits][connections][hostile]") {
  CHECK(ConnectionLimiter::address_key("2001:db8:1:2::1") == ConnectionLimiter::address_key("2001:db8:1:2:ffff::9"));
  CHECK(ConnectionLimiter::address_key("2001:db8:1:2::1") != ConnectionLimiter::address_key("2001:db8:1:3::1"));
  CHECK(ConnectionLimiter::address_key("::ffff:192.0.2.1") == ConnectionLimiter::address_key("192.0.2.1"));
  CHECK(ConnectionLimiter::address_key("[2001:db8::1]") == ConnectionLimiter::address_key("2001:db8::2"));
  CHECK(ConnectionLimiter::address_key("fe80::1%eth0") == ConnectionLimiter::address_key("fe80::2"));
  CHECK(ConnectionLimiter::address_key("not an address") == "raw:not an address");

  ConnectionLimiter limiter(2);
  auto a = limiter.try_acquire("2001:db8:0:1::a");
  auto b = limiter.try_acquire("2001:db8:0:1::b");
  REQUIRE(a);
  REQUIRE(b);
  CHECK_FALSE(limiter.try_acquire("2001:db8:0:1::c"));  // same /64: rotating addresses does not help
}

TEST_CASE("a connection slot may outlive its limiter and moves release exactly once", "[limits][connections]") {
  std::optional<ConnectionSlot> kept;
  {
    ConnectionLimiter limiter(1);
    auto slot = limiter.try_acquire("192.0.2.7");
    REQUIRE(slot);
    ConnectionSlot moved = std::move(*slot);
    slot.reset();  // the moved-from slot releases nothing
    CHECK(limiter.connections_from("192.0.2.7") == 1);
    kept.emplace(std::move(moved));
  }
  kept.reset();  // no crash, no use-after-free (ASan checks it)
  SUCCEED();
}

TEST_CASE("a limit of 0 connections per address means no limit", "[limits][connections]") {
  ConnectionLimiter limiter(0);
  std::vector<ConnectionSlot> slots;
  for (int i = 0; i < 100; ++i) {
    auto slot = limiter.try_acquire("192.0.2.1");
    REQUIRE(slot);
    slots.push_back(std::move(*slot));
  }
  CHECK(limiter.connections_from("192.0.2.1") == 100);
}

TEST_CASE("admission: open admits all, token needs one of the tokens, allowlist needs the group",
          "[limits][admission]") {
  RelayLimits open;
  CHECK(AdmissionPolicy(open).check("", group_from(1)).is_ok());

  RelayLimits token;
  token.access = AdmissionMode::kToken;
  token.access_tokens = {"alpha-secret", "beta-secret"};
  const AdmissionPolicy by_token(token);
  CHECK(by_token.check("beta-secret", group_from(1)).is_ok());
  CHECK(by_token.check("alpha-secret", group_from(2)).is_ok());
  CHECK(by_token.check("", group_from(1)).code() == Code::kUnauthorized);
  CHECK(by_token.check("alpha-secreT", group_from(1)).code() == Code::kUnauthorized);
  CHECK(by_token.check("alpha-secret ", group_from(1)).code() == Code::kUnauthorized);
  CHECK(by_token.check("alpha", group_from(1)).code() == Code::kUnauthorized);
  CHECK(by_token.check("wrong", group_from(1)).message().find("secret") == std::string::npos);

  RelayLimits allow;
  allow.access = AdmissionMode::kAllowlist;
  allow.allowlist = {group_from(3)};
  const AdmissionPolicy by_group(allow);
  CHECK(by_group.check("", group_from(3)).is_ok());
  CHECK(by_group.check("alpha-secret", group_from(4)).code() == Code::kUnauthorized);
}

TEST_CASE("relay limits refuse settings that cannot work", "[limits][config]") {
  CHECK(validate(RelayLimits{}).is_ok());
  RelayLimits r;
  r.max_sessions = 0;
  CHECK(validate(r).code() == Code::kInvalidArgument);
  r = {};
  r.global_messages_per_second = 0;
  CHECK(validate(r).code() == Code::kInvalidArgument);
  r = {};
  r.access = AdmissionMode::kToken;
  CHECK(validate(r).code() == Code::kInvalidArgument);
  r.access_tokens = {""};
  CHECK(validate(r).code() == Code::kInvalidArgument);
  r.access_tokens = {"t"};
  CHECK(validate(r).is_ok());
  r = {};
  r.access = AdmissionMode::kAllowlist;
  CHECK(validate(r).code() == Code::kInvalidArgument);
  CHECK(admission_mode_name(AdmissionMode::kAllowlist) == "allowlist");
}

TEST_CASE("relay limit defaults are the documented ones", "[limits][config]") {
  const RelayLimits r;
  CHECK(r.max_sessions == 3000);
  CHECK(r.max_sessions_per_group == 16);
  CHECK(r.max_connections_per_ip == 10);
  CHECK(r.device_messages_per_minute == 100);
  CHECK(r.global_messages_per_second == 2000);
  CHECK(r.group_quota_bytes == 100u * 1024 * 1024);
  CHECK(r.access == AdmissionMode::kOpen);
  CHECK_FALSE(r.drop_acked);
}

}  // namespace
