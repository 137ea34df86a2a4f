// Private: typed, strict access to one MessagePack map of a decoded frame body.
//
// A FieldReader checks on construction that the object is a map whose keys are all strings and
// pairwise distinct, then hands out fields by name with exact type checks. The first failure is
// kept (later calls become no-ops), so a decoder reads every field and asks ok() once; errors
// read "PUSH: missing field 'blob_id'" or "PULL_RESPONSE: blobs[3]: field 'cursor' must be ...".
//
// Borrows the msgpack object (and through it the frame bytes); lives only during one decode.
// Thread-safety: none.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include <msgpack/object_fwd.hpp>

#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/status.h"

namespace blindsync::detail {

// Where a map sits in a frame: "PUSH", "CHALLENGE: limits", "DEVICES: devices[2]".
struct FieldPath {
  static constexpr std::size_t kNoIndex = static_cast<std::size_t>(-1);
  std::string_view message;
  std::string_view field = {};
  std::size_t index = kNoIndex;
  std::string to_string() const;
};

// "str", "positive integer", ... for error messages.
std::string_view msgpack_type_name(const msgpack::object& obj) noexcept;

class FieldReader {
 public:
  FieldReader(const msgpack::object& map, FieldPath path);

  bool ok() const noexcept { return error_.empty(); }
  Status status() const { return ok() ? Status() : Status(Code::kInvalidMessage, error_); }

  // The value of key, or nullptr if absent (or the reader already failed).
  const msgpack::object* find(std::string_view key) const noexcept;
  // Like find(), but an absent key fails the reader with "missing field 'key'".
  const msgpack::object* require(std::string_view key);

  template <typename T>
  void uint(std::string_view key, T& out) {
    std::uint64_t v = 0;
    if (read_uint(key, v, std::numeric_limits<T>::max())) out = static_cast<T>(v);
  }
  void boolean(std::string_view key, bool& out);
  void str(std::string_view key, std::string& out);
  void optional_str(std::string_view key, std::string& out);  // absent -> empty
  void bin(std::string_view key, Bytes& out);
  void optional_bin(std::string_view key, std::optional<Bytes>& out);  // absent -> nullopt
  template <std::size_t N, typename Tag>
  void id(std::string_view key, FixedId<N, Tag>& out) {
    const msgpack::object* v = bin_of_size(key, N);
    if (v != nullptr) std::copy_n(bin_data(*v), N, out.mutable_bytes().begin());
  }
  // An array field of at most max_items; nullptr (and failed) if absent, not an array or longer.
  const msgpack::object* array(std::string_view key, std::size_t max_items);
  // A nested map field; nullptr (and failed) if absent or not a map.
  const msgpack::object* map(std::string_view key);

  // Records a failure of a nested reader (first failure wins).
  void absorb(const FieldReader& nested);
  // Records a failure about key.
  void fail_field(std::string_view key, std::string_view what);

 private:
  void fail(std::string message);
  bool read_uint(std::string_view key, std::uint64_t& out, std::uint64_t max);
  const msgpack::object* bin_of_size(std::string_view key, std::size_t size);
  static const std::uint8_t* bin_data(const msgpack::object& obj) noexcept;

  const msgpack::object* map_ = nullptr;
  FieldPath path_;
  std::string error_;
};

}  // namespace blindsync::detail
