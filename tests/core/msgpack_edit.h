// Test helpers: rebuild an encoded frame with one edit at a path (remove, replace or duplicate a
// map entry), and build hostile MessagePack by hand. Uses msgpack-c directly: tests only.
#pragma once

#include <functional>
#include <msgpack/object.hpp>
#include <msgpack/pack.hpp>
#include <msgpack/sbuffer.hpp>
#include <msgpack/unpack.hpp>
#include <string>
#include <vector>

#include "blindsync/core/bytes.h"

namespace blindsync::test {

using Packer = msgpack::packer<msgpack::sbuffer>;

inline Bytes to_bytes(const msgpack::sbuffer& buf) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(buf.data());
  return Bytes(p, p + buf.size());
}

// A step into a container: a map key, or "#N" for array element N.
using Path = std::vector<std::string>;

struct Edit {
  enum class Kind { kRemove, kReplace, kDuplicate };
  Path path;  // ends at a map key
  Kind kind = Kind::kRemove;
  std::function<void(Packer&)> replacement;  // for kReplace
};

inline void pack_edited(Packer& pk, const msgpack::object& obj, const Edit& edit, std::size_t depth) {
  const bool on_path = depth < edit.path.size();
  if (obj.type == msgpack::type::ARRAY && on_path) {
    pk.pack_array(obj.via.array.size);
    for (std::uint32_t i = 0; i < obj.via.array.size; ++i) {
      if (edit.path[depth] == "#" + std::to_string(i)) {
        pack_edited(pk, obj.via.array.ptr[i], edit, depth + 1);
      } else {
        pk.pack(obj.via.array.ptr[i]);
      }
    }
    return;
  }
  if (obj.type == msgpack::type::MAP && on_path) {
    const bool last = depth + 1 == edit.path.size();
    auto matches = [&](const msgpack::object_kv& kv) {
      return kv.key.type == msgpack::type::STR &&
             std::string(kv.key.via.str.ptr, kv.key.via.str.size) == edit.path[depth];
    };
    std::uint32_t n = obj.via.map.size;
    for (std::uint32_t i = 0; i < obj.via.map.size; ++i) {
      if (last && matches(obj.via.map.ptr[i])) {
        if (edit.kind == Edit::Kind::kRemove) --n;
        if (edit.kind == Edit::Kind::kDuplicate) ++n;
      }
    }
    pk.pack_map(n);
    for (std::uint32_t i = 0; i < obj.via.map.size; ++i) {
      const auto& kv = obj.via.map.ptr[i];
      if (!matches(kv)) {
        pk.pack(kv.key);
        pk.pack(kv.val);
        continue;
      }
      if (!last) {
        pk.pack(kv.key);
        pack_edited(pk, kv.val, edit, depth + 1);
        continue;
      }
      switch (edit.kind) {
        case Edit::Kind::kRemove:
          break;
        case Edit::Kind::kReplace:
          pk.pack(kv.key);
          edit.replacement(pk);
          break;
        case Edit::Kind::kDuplicate:
          pk.pack(kv.key);
          pk.pack(kv.val);
          pk.pack(kv.key);
          pk.pack(kv.val);
          break;
      }
    }
    return;
  }
  pk.pack(obj);
}

// The frame `bytes` with `edit` applied.
inline Bytes apply_edit(const Bytes& bytes, const Edit& edit) {
  auto handle = msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  msgpack::sbuffer buf;
  Packer pk(buf);
  pack_edited(pk, handle.get(), edit, 0);
  return to_bytes(buf);
}

// A field found in an encoded frame body: its path and its msgpack type.
struct FieldSite {
  Path path;
  msgpack::type::object_type type;
};

// Every map entry of the body (recursing into nested maps and the first element of arrays of maps).
inline void collect_fields(const msgpack::object& obj, Path& prefix, std::vector<FieldSite>& out) {
  if (obj.type == msgpack::type::MAP) {
    for (std::uint32_t i = 0; i < obj.via.map.size; ++i) {
      const auto& kv = obj.via.map.ptr[i];
      prefix.emplace_back(kv.key.via.str.ptr, kv.key.via.str.size);
      out.push_back(FieldSite{prefix, kv.val.type});
      collect_fields(kv.val, prefix, out);
      prefix.pop_back();
    }
  } else if (obj.type == msgpack::type::ARRAY && obj.via.array.size > 0 &&
             obj.via.array.ptr[0].type == msgpack::type::MAP) {
    prefix.emplace_back("#0");
    collect_fields(obj.via.array.ptr[0], prefix, out);
    prefix.pop_back();
  }
}

inline std::vector<FieldSite> body_fields(const Bytes& frame_bytes) {
  auto handle = msgpack::unpack(reinterpret_cast<const char*>(frame_bytes.data()), frame_bytes.size());
  std::vector<FieldSite> out;
  Path prefix{"#3"};
  collect_fields(handle.get().via.array.ptr[3], prefix, out);
  return out;
}

// Builds arbitrary MessagePack with a lambda.
inline Bytes build(const std::function<void(Packer&)>& f) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  f(pk);
  return to_bytes(buf);
}

inline void pack_str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

inline void pack_bin(Packer& pk, const Bytes& b) {
  pk.pack_bin(static_cast<std::uint32_t>(b.size()));
  pk.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<std::uint32_t>(b.size()));
}

}  // namespace blindsync::test
