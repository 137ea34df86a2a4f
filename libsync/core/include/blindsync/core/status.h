// Status and Result<T>: how every blindsync API reports failure. Nothing public throws.
//
// A Status is an error code plus a human-readable message; Code::kOk means success.
// Protocol error codes (1000-3999) are the wire codes of DESIGN.md; local codes (9000+)
// never travel on the wire.
//
// Thread-safety: plain values; copy freely.
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace blindsync {

enum class Code : std::uint16_t {
  kOk = 0,
  // Wire error codes (DESIGN.md "Error codes").
  kInvalidMessage = 1000,
  kUnknownGroup = 1001,
  kUnauthorized = 1002,
  kDeviceRevoked = 1003,
  kNotBlobOwner = 1004,
  kUnsupportedVersion = 1005,
  kInvalidState = 1006,
  kHelloTimeout = 1007,
  kRateLimited = 2000,
  kBlobTooLarge = 2001,
  kGroupQuotaExceeded = 2002,
  kInvalidPushToken = 2003,
  kGroupFull = 2004,
  kRelayOverloaded = 3000,
  kRelayShuttingDown = 3001,
  kInternal = 3002,
  kStorageFull = 3003,
  // Local codes: never sent on the wire.
  kInvalidArgument = 9000,
  kNotFound = 9001,
  kAlreadyExists = 9002,
  kIoError = 9003,
  kCryptoFailure = 9004,  // authentication tag or signature did not verify
  kTimeout = 9005,
  kConnectionClosed = 9006,
  kExpired = 9007,
  kStorageError = 9008,
};

// The canonical upper-case name of a code ("INVALID_MESSAGE"), or "UNKNOWN".
std::string_view code_name(Code code) noexcept;

// True for codes that may appear in an ERROR frame.
bool is_wire_code(std::uint16_t code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }

  bool is_ok() const noexcept { return code_ == Code::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  Code code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // "INVALID_MESSAGE (1000): frame has trailing bytes"
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Result<T>: a T or an error Status. Named like std::expected.
// REQUIRES: value() only when has_value(); error() only when !has_value().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  // REQUIRES: !error.is_ok(). An OK status here is a bug at the call site (a `return status;` that
  // meant to go on): debug builds stop on it, and otherwise it becomes an INTERNAL error rather than
  // an error with no message.
  Result(Status error) : data_(std::in_place_index<1>, checked_error(std::move(error))) {}  // NOLINT
  Result(Code code, std::string message) : data_(std::in_place_index<1>, Status(code, std::move(message))) {}

  bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { return std::get<0>(data_); }
  const T& value() const& { return std::get<0>(data_); }
  T&& value() && { return std::get<0>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Status& error() const& { return std::get<1>(data_); }
  Status status() const { return has_value() ? Status() : std::get<1>(data_); }

 private:
  static Status checked_error(Status error) {
    assert(!error.is_ok() && "Result<T> made from an OK Status");
    if (error.is_ok()) return Status(Code::kInternal, "an error result was made from an OK status");
    return error;
  }

  std::variant<T, Status> data_;
};

}  // namespace blindsync
