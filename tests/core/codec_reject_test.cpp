// Table-driven rejection: for every message type and every field of its body (nested ones too),
// a frame missing the field, holding a wrong type, or holding it twice is rejected with an error
// that names the message type and the field.
#include <catch2/catch.hpp>

#include "blindsync/core/codec.h"
#include "msgpack_edit.h"
#include "sample_frames.h"

using namespace blindsync;
using test::Edit;

namespace {

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

std::string path_text(const test::Path& p) {
  std::string out;
  for (const auto& step : p) out += "/" + step;
  return out;
}

bool is_optional(MessageType type, const test::Path& path) {
  return path.size() == 2 && ((type == MessageType::kNotify && path[1] == "payload") ||
                              (type == MessageType::kHello && path[1] == "access_token"));
}

// Values of the wrong msgpack type for a field of type t.
std::vector<std::function<void(test::Packer&)>> wrong_values(msgpack::type::object_type t) {
  using P = test::Packer;
  auto nil = [](P& pk) { pk.pack_nil(); };
  auto str = [](P& pk) { test::pack_str(pk, "1"); };
  auto uint = [](P& pk) { pk.pack_uint32(1); };
  auto neg = [](P& pk) { pk.pack_int32(-1); };
  auto flt = [](P& pk) { pk.pack_double(1.5); };
  auto bin = [](P& pk) { test::pack_bin(pk, Bytes{1}); };
  auto boolean = [](P& pk) { pk.pack_true(); };
  auto arr = [](P& pk) { pk.pack_array(0); };
  auto map = [](P& pk) { pk.pack_map(0); };
  switch (t) {
    case msgpack::type::POSITIVE_INTEGER: return {nil, str, neg, flt, bin, boolean, arr, map};
    case msgpack::type::BOOLEAN: return {nil, str, uint, bin, arr};
    case msgpack::type::STR: return {nil, uint, bin, boolean, arr};
    case msgpack::type::BIN: return {nil, str, uint, boolean, arr};
    case msgpack::type::ARRAY: return {nil, uint, str, map};
    case msgpack::type::MAP: return {nil, uint, str, arr};
    default: return {};
  }
}

Status decode_error(const Bytes& bytes) {
  auto r = decode_frame(bytes);
  return r.has_value() ? Status() : r.error();
}

}  // namespace

TEST_CASE("decoder names the missing field", "[codec][reject]") {
  Push p;
  p.payload = Bytes{1, 2};
  const Bytes bytes = encode_frame(Frame{1, p});
  auto r = decode_frame(test::apply_edit(bytes, Edit{{"#3", "blob_id"}, Edit::Kind::kRemove, {}}));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == Code::kInvalidMessage);
  CHECK(r.error().message() == "PUSH: missing field 'blob_id'");
}

TEST_CASE("every required field of every message type is required", "[codec][reject]") {
  int checked = 0;
  for (const Frame& frame : test::sample_frames()) {
    const std::string type_name(message_type_name(frame.type()));
    const Bytes bytes = encode_frame(frame);
    for (const auto& site : test::body_fields(bytes)) {
      INFO(type_name << " " << path_text(site.path));
      const Status st = decode_error(test::apply_edit(bytes, Edit{site.path, Edit::Kind::kRemove, {}}));
      if (is_optional(frame.type(), site.path)) {
        CHECK(st.is_ok());
        continue;
      }
      REQUIRE_FALSE(st.is_ok());
      CHECK(st.code() == Code::kInvalidMessage);
      CHECK(starts_with(st.message(), type_name + ": "));
      CHECK(contains(st.message(), "missing field '" + site.path.back() + "'"));
      ++checked;
    }
  }
  CHECK(checked > 60);
}

TEST_CASE("every field of every message type rejects values of the wrong type", "[codec][reject]") {
  int checked = 0;
  for (const Frame& frame : test::sample_frames()) {
    const std::string type_name(message_type_name(frame.type()));
    const Bytes bytes = encode_frame(frame);
    for (const auto& site : test::body_fields(bytes)) {
      const auto values = wrong_values(site.type);
      REQUIRE_FALSE(values.empty());
      for (std::size_t v = 0; v < values.size(); ++v) {
        INFO(type_name << " " << path_text(site.path) << " wrong value #" << v);
        const Status st = decode_error(test::apply_edit(bytes, Edit{site.path, Edit::Kind::kReplace, values[v]}));
        REQUIRE_FALSE(st.is_ok());
        CHECK(st.code() == Code::kInvalidMessage);
        CHECK(starts_with(st.message(), type_name + ": "));
        CHECK(contains(st.message(), "'" + site.path.back() + "'"));
        ++checked;
      }
    }
  }
  CHECK(checked > 300);
}

TEST_CASE("every field of every message type rejects a duplicate key", "[codec][reject]") {
  for (const Frame& frame : test::sample_frames()) {
    const std::string type_name(message_type_name(frame.type()));
    const Bytes bytes = encode_frame(frame);
    for (const auto& site : test::body_fields(bytes)) {
      INFO(type_name << " " << path_text(site.path));
      const Status st = decode_error(test::apply_edit(bytes, Edit{site.path, Edit::Kind::kDuplicate, {}}));
      REQUIRE_FALSE(st.is_ok());
      CHECK(st.code() == Code::kInvalidMessage);
      CHECK(starts_with(st.message(), type_name + ": "));
      CHECK(contains(st.message(), "duplicate field '" + site.path.back() + "'"));
    }
  }
}

TEST_CASE("every id field rejects a bin one byte too short or too long", "[codec][reject]") {
  int checked = 0;
  for (const Frame& frame : test::sample_frames()) {
    const std::string type_name(message_type_name(frame.type()));
    const Bytes bytes = encode_frame(frame);
    for (const auto& site : test::body_fields(bytes)) {
      if (site.type != msgpack::type::BIN || site.path.back() == "payload") continue;
      for (std::size_t len : {std::size_t{0}, std::size_t{15}, std::size_t{17}, std::size_t{31}, std::size_t{33},
                              std::size_t{63}, std::size_t{65}}) {
        auto wrong_len = [len](test::Packer& pk) { test::pack_bin(pk, Bytes(len, 7)); };
        auto edited = test::apply_edit(bytes, Edit{site.path, Edit::Kind::kReplace, wrong_len});
        auto r = decode_frame(edited);
        // A length equal to the id size would be accepted; 16, 32 and 64 are not in the list.
        INFO(type_name << " " << path_text(site.path) << " len " << len);
        REQUIRE_FALSE(r.has_value());
        CHECK(contains(r.error().message(), "'" + site.path.back() + "' must be "));
        ++checked;
      }
    }
  }
  CHECK(checked > 100);
}

TEST_CASE("type errors say what was expected and what arrived", "[codec][reject]") {
  const Bytes bytes = encode_frame(Frame{1, Pull{5, 10}});
  auto r = decode_frame(test::apply_edit(
      bytes, Edit{{"#3", "limit"}, Edit::Kind::kReplace, [](test::Packer& pk) { test::pack_str(pk, "ten"); }}));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message() == "PULL: field 'limit' must be an unsigned integer, got str");

  auto blob = decode_frame(test::apply_edit(
      encode_frame(Frame{1, Delete{}}),
      Edit{{"#3", "blob_id"}, Edit::Kind::kReplace, [](test::Packer& pk) { test::pack_bin(pk, Bytes(15)); }}));
  REQUIRE_FALSE(blob.has_value());
  CHECK(blob.error().message() == "DELETE: field 'blob_id' must be 16 bytes, got 15");

  auto removed = decode_frame(test::apply_edit(
      encode_frame(Frame{1, DeleteAck{}}),
      Edit{{"#3", "removed"}, Edit::Kind::kReplace, [](test::Packer& pk) { pk.pack_uint8(1); }}));
  REQUIRE_FALSE(removed.has_value());
  CHECK(removed.error().code() == Code::kInvalidMessage);
  CHECK(removed.error().message() == "DELETE_ACK: field 'removed' must be a bool, got unsigned integer");
}

TEST_CASE("nested errors name the element", "[codec][reject]") {
  const Frame frame = test::sample_frames()[7];  // PULL_RESPONSE with 2 blobs
  REQUIRE(frame.type() == MessageType::kPullResponse);
  const Bytes bytes = encode_frame(frame);
  auto r = decode_frame(test::apply_edit(bytes, Edit{{"#3", "blobs", "#1", "cursor"}, Edit::Kind::kRemove, {}}));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message() == "PULL_RESPONSE: blobs[1]: missing field 'cursor'");

  const Bytes challenge = encode_frame(test::sample_frames()[2]);
  auto c = decode_frame(
      test::apply_edit(challenge, Edit{{"#3", "limits", "max_pull_limit"}, Edit::Kind::kRemove, {}}));
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error().message() == "CHALLENGE: limits: missing field 'max_pull_limit'");
}

TEST_CASE("integers out of their field's range are rejected", "[codec][reject]") {
  auto too_big = [](std::uint64_t v) { return [v](test::Packer& pk) { pk.pack_uint64(v); }; };
  struct Case {
    Frame frame;
    std::string key;
    std::uint64_t value;
  };
  const Case cases[] = {
      {Frame{1, Push{}}, "ttl_seconds", 0x1'0000'0000ull},
      {Frame{1, Pull{}}, "limit", 0x1'0000'0000ull},
      {Frame{1, Pull{0, 0, 2}}, "pages", 0x1'0000'0000ull},
      {Frame{1, Bye{}}, "code", 0x1'0000ull},
      {Frame{1, Error{}}, "code", 0x1'0000ull},
      {Frame{1, Error{}}, "request_id", 0x1'0000'0000ull},
      {Frame{1, Notify{}}, "size", 0x1'0000'0000ull},
  };
  for (const auto& c : cases) {
    INFO(message_type_name(c.frame.type()) << " " << c.key);
    auto r = decode_frame(
        test::apply_edit(encode_frame(c.frame), Edit{{"#3", c.key}, Edit::Kind::kReplace, too_big(c.value)}));
    REQUIRE_FALSE(r.has_value());
    CHECK(contains(r.error().message(), "'" + c.key + "' value " + std::to_string(c.value) + " is out of range"));
  }
}

TEST_CASE("unknown body keys are ignored", "[codec][reject]") {
  Push p;
  p.blob_id = test::make_id<BlobId>(1);
  p.payload = Bytes{9};
  const Bytes extra = test::build([&](test::Packer& pk) {
    pk.pack_array(4);
    pk.pack_uint8(1);
    pk.pack_uint8(0x10);
    pk.pack_uint8(3);
    pk.pack_map(5);
    test::pack_str(pk, "future_field");
    pk.pack_map(1);
    test::pack_str(pk, "x");
    pk.pack_array(2);
    pk.pack_nil();
    pk.pack_double(2.5);
    test::pack_str(pk, "blob_id");
    test::pack_bin(pk, Bytes(p.blob_id.bytes().begin(), p.blob_id.bytes().end()));
    test::pack_str(pk, "payload");
    test::pack_bin(pk, p.payload);
    test::pack_str(pk, "ttl_seconds");
    pk.pack_uint8(0);
    test::pack_str(pk, "zz");
    pk.pack_nil();
  });
  auto r = decode_frame(extra);
  REQUIRE(r.has_value());
  CHECK(std::get<Push>(r->message) == p);
}

TEST_CASE("str fields must be valid UTF-8", "[codec][reject]") {
  for (std::string_view bad : {"\xff", "\xc0\xaf", "\xed\xa0\x80", "abc\xe2\x82", "\xf4\x90\x80\x80"}) {
    Hello h;
    h.device_name = std::string(bad);
    auto r = decode_frame(encode_frame(Frame{1, h}));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message() == "HELLO: field 'device_name' is not valid UTF-8");
  }
  Hello ok;
  ok.device_name = "\xf0\x9f\x98\x80 \xe2\x82\xac \xc3\xa9";  // emoji, euro, e-acute
  CHECK(decode_frame(encode_frame(Frame{1, ok})).has_value());
}

TEST_CASE("map keys must be strings", "[codec][reject]") {
  const Bytes bytes = test::build([](test::Packer& pk) {
    pk.pack_array(4);
    pk.pack_uint8(1);
    pk.pack_uint8(0x22);
    pk.pack_uint8(0);
    pk.pack_map(2);
    test::pack_str(pk, "acked_cursor");
    pk.pack_uint8(1);
    pk.pack_uint8(5);
    pk.pack_uint8(5);
  });
  auto r = decode_frame(bytes);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message() == "ACK: map keys must be str, got unsigned integer");
}

TEST_CASE("array elements of the wrong type are rejected", "[codec][reject]") {
  const Bytes devices = test::apply_edit(encode_frame(test::sample_frame(MessageType::kDevices)),
                                         Edit{{"#3", "devices"}, Edit::Kind::kReplace, [](test::Packer& pk) {
                                           pk.pack_array(1);
                                           pk.pack_uint8(1);
                                         }});
  auto r = decode_frame(devices);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message() == "DEVICES: devices[0]: must be a map, got unsigned integer");

  const Bytes versions = test::apply_edit(encode_frame(test::sample_frames()[2]),
                                          Edit{{"#3", "versions"}, Edit::Kind::kReplace, [](test::Packer& pk) {
                                            pk.pack_array(2);
                                            pk.pack_uint8(1);
                                            test::pack_str(pk, "2");
                                          }});
  auto v = decode_frame(versions);
  REQUIRE_FALSE(v.has_value());
  CHECK(v.error().message() == "CHALLENGE: field 'versions' must hold unsigned 32-bit integers");
}

TEST_CASE("a body that is not a map is rejected for every type", "[codec][reject]") {
  for (auto type : test::all_message_types()) {
    const Bytes bytes = test::build([type](test::Packer& pk) {
      pk.pack_array(4);
      pk.pack_uint8(1);
      pk.pack_uint8(static_cast<std::uint8_t>(type));
      pk.pack_uint8(0);
      pk.pack_array(0);
    });
    auto r = decode_frame(bytes);
    INFO(message_type_name(type));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message() == std::string(message_type_name(type)) + ": body must be a map, got array");
  }
}
