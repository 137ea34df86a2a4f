// FieldReader: strict typed access to a msgpack map (see field_reader.h).
#include "field_reader.h"

#include <algorithm>
#include <cstring>
#include <msgpack/object.hpp>

#include "blindsync/core/utf8.h"

namespace blindsync::detail {
namespace {

std::string_view key_of(const msgpack::object_kv& kv) noexcept {
  return {kv.key.via.str.ptr, kv.key.via.str.size};
}

std::string quoted(std::string_view key) {
  std::string out;
  out.reserve(key.size() + 2);
  out += '\'';
  out += key;
  out += '\'';
  return out;
}

}  // namespace

std::string FieldPath::to_string() const {
  std::string out(message);
  if (!field.empty()) {
    out += ": ";
    out += field;
    if (index != kNoIndex) {
      out += '[';
      out += std::to_string(index);
      out += ']';
    }
  }
  return out;
}

std::string_view msgpack_type_name(const msgpack::object& obj) noexcept {
  switch (obj.type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "bool";
    case msgpack::type::POSITIVE_INTEGER: return "unsigned integer";
    case msgpack::type::NEGATIVE_INTEGER: return "negative integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return "float";
    case msgpack::type::STR: return "str";
    case msgpack::type::BIN: return "bin";
    case msgpack::type::ARRAY: return "array";
    case msgpack::type::MAP: return "map";
    case msgpack::type::EXT: return "ext";
  }
  return "unknown";
}

FieldReader::FieldReader(const msgpack::object& map, FieldPath path) : path_(path) {
  if (map.type != msgpack::type::MAP) {
    fail(std::string(path.field.empty() ? "body must be a map, got " : "must be a map, got ") +
         std::string(msgpack_type_name(map)));
    return;
  }
  const std::uint32_t n = map.via.map.size;
  const msgpack::object_kv* kv = map.via.map.ptr;
  for (std::uint32_t i = 0; i < n; ++i) {
    if (kv[i].key.type != msgpack::type::STR) {
      fail(std::string("map keys must be str, got ") + std::string(msgpack_type_name(kv[i].key)));
      return;
    }
  }
  // Maps are bounded by wire::kMaxMapEntries, so the pairwise check stays small.
  for (std::uint32_t i = 0; i < n; ++i) {
    for (std::uint32_t j = i + 1; j < n; ++j) {
      if (key_of(kv[i]) == key_of(kv[j])) {
        fail("duplicate field " + quoted(key_of(kv[i])));
        return;
      }
    }
  }
  map_ = &map;
}

void FieldReader::fail(std::string message) {
  if (!error_.empty()) return;
  error_ = path_.to_string();
  error_ += ": ";
  error_ += message;
}

void FieldReader::fail_field(std::string_view key, std::string_view what) {
  fail("field " + quoted(key) + " " + std::string(what));
}

void FieldReader::absorb(const FieldReader& nested) {
  if (error_.empty() && !nested.error_.empty()) error_ = nested.error_;
}

const msgpack::object* FieldReader::find(std::string_view key) const noexcept {
  if (!ok() || map_ == nullptr) return nullptr;
  const msgpack::object_kv* kv = map_->via.map.ptr;
  for (std::uint32_t i = 0; i < map_->via.map.size; ++i) {
    if (key_of(kv[i]) == key) return &kv[i].val;
  }
  return nullptr;
}

const msgpack::object* FieldReader::require(std::string_view key) {
  if (!ok()) return nullptr;
  const msgpack::object* v = find(key);
  if (v == nullptr) fail("missing field " + quoted(key));
  return v;
}

bool FieldReader::read_uint(std::string_view key, std::uint64_t& out, std::uint64_t max) {
  const msgpack::object* v = require(key);
  if (v == nullptr) return false;
  if (v->type != msgpack::type::POSITIVE_INTEGER) {
    fail_field(key, "must be an unsigned integer, got " + std::string(msgpack_type_name(*v)));
    return false;
  }
  if (v->via.u64 > max) {
    fail_field(key, "value " + std::to_string(v->via.u64) + " is out of range (max " + std::to_string(max) + ")");
    return false;
  }
  out = v->via.u64;
  return true;
}

void FieldReader::boolean(std::string_view key, bool& out) {
  const msgpack::object* v = require(key);
  if (v == nullptr) return;
  if (v->type != msgpack::type::BOOLEAN) {
    fail_field(key, "must be a bool, got " + std::string(msgpack_type_name(*v)));
    return;
  }
  out = v->via.boolean;
}

void FieldReader::str(std::string_view key, std::string& out) {
  const msgpack::object* v = require(key);
  if (v == nullptr) return;
  if (v->type != msgpack::type::STR) {
    fail_field(key, "must be a str, got " + std::string(msgpack_type_name(*v)));
    return;
  }
  const std::string_view text(v->via.str.ptr, v->via.str.size);
  if (!is_valid_utf8(text)) {
    fail_field(key, "is not valid UTF-8");
    return;
  }
  out.assign(text);
}

void FieldReader::optional_str(std::string_view key, std::string& out) {
  if (find(key) == nullptr) {
    out.clear();
    return;
  }
  str(key, out);
}

const std::uint8_t* FieldReader::bin_data(const msgpack::object& obj) noexcept {
  return reinterpret_cast<const std::uint8_t*>(obj.via.bin.ptr);
}

void FieldReader::bin(std::string_view key, Bytes& out) {
  const msgpack::object* v = require(key);
  if (v == nullptr) return;
  if (v->type != msgpack::type::BIN) {
    fail_field(key, "must be a bin, got " + std::string(msgpack_type_name(*v)));
    return;
  }
  // Payloads are referenced in the frame bytes by the unpacker: this is their only copy.
  out.assign(bin_data(*v), bin_data(*v) + v->via.bin.size);
}

void FieldReader::optional_bin(std::string_view key, std::optional<Bytes>& out) {
  if (find(key) == nullptr) {
    out.reset();
    return;
  }
  Bytes value;
  bin(key, value);
  if (ok()) out = std::move(value);
}

const msgpack::object* FieldReader::bin_of_size(std::string_view key, std::size_t size) {
  const msgpack::object* v = require(key);
  if (v == nullptr) return nullptr;
  if (v->type != msgpack::type::BIN) {
    fail_field(key, "must be a bin of " + std::to_string(size) + " bytes, got " +
                        std::string(msgpack_type_name(*v)));
    return nullptr;
  }
  if (v->via.bin.size != size) {
    fail_field(key, "must be " + std::to_string(size) + " bytes, got " + std::to_string(v->via.bin.size));
    return nullptr;
  }
  return v;
}

const msgpack::object* FieldReader::array(std::string_view key, std::size_t max_items) {
  const msgpack::object* v = require(key);
  if (v == nullptr) return nullptr;
  if (v->type != msgpack::type::ARRAY) {
    fail_field(key, "must be an array, got " + std::string(msgpack_type_name(*v)));
    return nullptr;
  }
  if (v->via.array.size > max_items) {
    fail_field(key, "has " + std::to_string(v->via.array.size) + " items, limit " + std::to_string(max_items));
    return nullptr;
  }
  return v;
}

const msgpack::object* FieldReader::map(std::string_view key) {
  const msgpack::object* v = require(key);
  if (v == nullptr) return nullptr;
  if (v->type != msgpack::type::MAP) {
    fail_field(key, "must be a map, got " + std::string(msgpack_type_name(*v)));
    return nullptr;
  }
  return v;
}

}  // namespace blindsync::detail
