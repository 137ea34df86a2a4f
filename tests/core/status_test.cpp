#include <catch2/catch.hpp>

#include "blindsync/core/status.h"
#include "blindsync/core/wire_format.h"

using namespace blindsync;

TEST_CASE("code_name gives the canonical upper-case name of every code", "[status]") {
  CHECK(code_name(Code::kOk) == "OK");
  CHECK(code_name(Code::kInvalidMessage) == "INVALID_MESSAGE");
  CHECK(code_name(Code::kUnsupportedVersion) == "UNSUPPORTED_VERSION");
  CHECK(code_name(Code::kInvalidState) == "INVALID_STATE");
  CHECK(code_name(Code::kHelloTimeout) == "HELLO_TIMEOUT");
  CHECK(code_name(Code::kGroupFull) == "GROUP_FULL");
  CHECK(code_name(Code::kRelayShuttingDown) == "RELAY_SHUTTING_DOWN");
  CHECK(code_name(Code::kStorageFull) == "STORAGE_FULL");
  CHECK(code_name(Code::kCryptoFailure) == "CRYPTO_FAILURE");
  CHECK(code_name(Code::kStorageError) == "STORAGE_ERROR");
  CHECK(code_name(static_cast<Code>(1234)) == "UNKNOWN");
}

TEST_CASE("is_wire_code accepts exactly the protocol error codes", "[status]") {
  for (std::uint16_t c : {1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 2000, 2001, 2002, 2003, 2004, 3000,
                          3001, 3002, 3003}) {
    INFO(c);
    CHECK(is_wire_code(c));
  }
  for (std::uint16_t c : {0, 1, 999, 1008, 1999, 2005, 3004, 4000, 9000, 9004, 9008, 65535}) {
    INFO(c);
    CHECK_FALSE(is_wire_code(c));
  }
}

TEST_CASE("Status::to_string shows name, number and message", "[status]") {
  CHECK(Status().to_string() == "OK");
  CHECK(Status(Code::kInvalidMessage, "frame has trailing bytes").to_string() ==
        "INVALID_MESSAGE (1000): frame has trailing bytes");
  CHECK(Status(Code::kTimeout, "").to_string() == "TIMEOUT (9005)");
  Status s(Code::kInvalidState, "x");
  CHECK_FALSE(s.is_ok());
  CHECK_FALSE(static_cast<bool>(s));
  CHECK(Status::ok().is_ok());
}

TEST_CASE("Result holds either a value or an error", "[status]") {
  Result<int> good(5);
  REQUIRE(good.has_value());
  CHECK(*good == 5);
  CHECK(good.status().is_ok());
  Result<int> bad(Code::kNotFound, "nope");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code() == Code::kNotFound);
  CHECK(bad.status().message() == "nope");
}

TEST_CASE("close codes mirror error codes in the 4000 range", "[status][wire]") {
  STATIC_REQUIRE(wire::close_code_for(0) == 1000);
  STATIC_REQUIRE(wire::close_code_for(1000) == 4000);
  STATIC_REQUIRE(wire::close_code_for(1006) == 4006);
  STATIC_REQUIRE(wire::close_code_for(2000) == 4100);
  STATIC_REQUIRE(wire::close_code_for(3001) == 4201);
  STATIC_REQUIRE(wire::close_code_for(9000) == 4999);
  STATIC_REQUIRE(wire::close_code_for(1) == 4999);
}
