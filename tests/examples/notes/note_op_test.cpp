// The notes example's op codec: round trips, and hostile payloads refused with clear errors.
#include "note_op.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

using blindsync::as_bytes;
using blindsync::Code;
using notes::NoteOp;
using notes::OpKind;

namespace {

const std::string kDev = std::string(32, 'a') + std::string(32, '0');

NoteOp sample_put() {
  NoteOp op;
  op.kind = OpKind::kPut;
  op.note_id = "groceries";
  op.title = "Shopping \xc3\xa4";  // UTF-8
  op.body = "milk\neggs\t\"quoted\"";
  op.hlc = notes::Hlc{1'700'000'000'123, 7, kDev};
  return op;
}

nlohmann::json valid_json() { return nlohmann::json::parse(*notes::encode_note_op(sample_put())); }

blindsync::Status decode_error(const std::string& text) {
  auto decoded = notes::decode_note_op(as_bytes(text));
  REQUIRE_FALSE(decoded.has_value());
  return decoded.error();
}

}  // namespace

TEST_CASE("notes op codec: put and delete round-trip exactly", "[notes][codec]") {
  const NoteOp put = sample_put();
  auto encoded = notes::encode_note_op(put);
  REQUIRE(encoded.has_value());
  auto decoded = notes::decode_note_op(as_bytes(*encoded));
  REQUIRE(decoded.has_value());
  CHECK(decoded->kind == OpKind::kPut);
  CHECK(decoded->note_id == put.note_id);
  CHECK(decoded->title == put.title);
  CHECK(decoded->body == put.body);
  CHECK(decoded->hlc == put.hlc);

  NoteOp del;
  del.kind = OpKind::kDelete;
  del.note_id = "old";
  del.hlc = notes::Hlc{5, 0, kDev};
  auto del_encoded = notes::encode_note_op(del);
  REQUIRE(del_encoded.has_value());
  CHECK(del_encoded->find("body") == std::string::npos);
  auto del_decoded = notes::decode_note_op(as_bytes(*del_encoded));
  REQUIRE(del_decoded.has_value());
  CHECK(del_decoded->kind == OpKind::kDelete);
  CHECK(del_decoded->hlc == del.hlc);
}

TEST_CASE("notes op codec: the version-1 format is what the README documents", "[notes][codec]") {
  const auto doc = valid_json();
  CHECK(doc.at("app") == "blindsync-notes");
  CHECK(doc.at("v") == 1);
  CHECK(doc.at("op") == "put");
  CHECK(doc.at("hlc") == nlohmann::json::array({1'700'000'000'123ull, 7, kDev}));
  // Unknown fields are ignored (a later version-1 writer may add some).
  auto extended = doc;
  extended["colour"] = "blue";
  CHECK(notes::decode_note_op(as_bytes(extended.dump())).has_value());
}

TEST_CASE("notes op codec: malformed and foreign payloads are refused, never thrown", "[notes][codec]") {
  CHECK(decode_error("").code() == Code::kInvalidArgument);
  CHECK(decode_error("not json").message().find("not JSON") != std::string::npos);
  CHECK(decode_error("[1,2,3]").message().find("not a JSON object") != std::string::npos);
  CHECK(decode_error("\xff\xfe\x00garbage").code() == Code::kInvalidArgument);
  CHECK(decode_error(std::string(100'000, '[')).code() == Code::kInvalidArgument);
  CHECK(decode_error(R"({"app":"other-app","v":1})").message().find("not a blindsync-notes payload") !=
        std::string::npos);

  auto with = [](const char* key, nlohmann::json value) {
    auto doc = valid_json();
    doc[key] = std::move(value);
    return doc.dump();
  };
  auto without = [](const char* key) {
    auto doc = valid_json();
    doc.erase(key);
    return doc.dump();
  };
  CHECK(decode_error(with("v", 2)).code() == Code::kUnsupportedVersion);
  CHECK(decode_error(with("v", -1)).code() == Code::kInvalidArgument);
  CHECK(decode_error(with("v", "1")).code() == Code::kInvalidArgument);
  CHECK(decode_error(with("op", "merge")).message().find("unknown \"op\"") != std::string::npos);
  CHECK(decode_error(with("id", "")).message().find("empty") != std::string::npos);
  CHECK(decode_error(with("id", std::string(129, 'x'))).message().find("at most 128") != std::string::npos);
  CHECK(decode_error(with("id", "a\nb")).message().find("control character") != std::string::npos);
  CHECK(decode_error(with("id", 42)).message().find("\"id\" must be a string") != std::string::npos);
  CHECK(decode_error(with("body", nullptr)).code() == Code::kInvalidArgument);
  CHECK(decode_error(with("body", std::string(notes::kMaxBodyBytes + 1, 'x'))).code() ==
        Code::kInvalidArgument);
  CHECK(decode_error(without("title")).message().find("missing \"title\"") != std::string::npos);
  CHECK(decode_error(without("hlc")).message().find("missing \"hlc\"") != std::string::npos);
  CHECK(decode_error(with("hlc", "1.2.3")).code() == Code::kInvalidArgument);
  CHECK(decode_error(with("hlc", nlohmann::json::array({1, 2}))).code() == Code::kInvalidArgument);
  CHECK(decode_error(with("hlc", nlohmann::json::array({-1, 0, kDev}))).code() == Code::kInvalidArgument);
  CHECK(decode_error(with("hlc", nlohmann::json::array({1.5, 0, kDev}))).code() == Code::kInvalidArgument);
  CHECK(decode_error(with("hlc", nlohmann::json::array({(1ull << 53) + 1, 0, kDev}))).code() ==
        Code::kInvalidArgument);
  CHECK(decode_error(with("hlc", nlohmann::json::array({1, 1ull << 32, kDev}))).code() ==
        Code::kInvalidArgument);
  CHECK(decode_error(with("hlc", nlohmann::json::array({1, 0, "ABCD"}))).code() == Code::kInvalidArgument);
  CHECK(decode_error(with("hlc", nlohmann::json::array({1, 0, std::string(64, 'A')}))).code() ==
        Code::kInvalidArgument);
  // Over the payload bound: refused before parsing.
  CHECK(decode_error(std::string(notes::kMaxNoteOpBytes + 1, ' ')).message().find("at most") !=
        std::string::npos);
  // Invalid UTF-8 inside a JSON string.
  CHECK(decode_error(R"({"app":"blindsync-notes","v":1,"op":"put","id":")" + std::string("\xc3\x28") + "\"}")
            .code() == Code::kInvalidArgument);
}

TEST_CASE("notes op codec: encoding refuses what decoding would refuse", "[notes][codec]") {
  NoteOp op = sample_put();
  op.body = "bad \xc3\x28 utf-8";
  CHECK(notes::encode_note_op(op).error().code() == Code::kInvalidArgument);
  op = sample_put();
  op.note_id = std::string(200, 'n');
  CHECK_FALSE(notes::encode_note_op(op).has_value());
  op = sample_put();
  op.hlc.device = "short";
  CHECK_FALSE(notes::encode_note_op(op).has_value());
  op = sample_put();
  op.title = "\xed\xa0\x80";  // a UTF-16 surrogate encoded in UTF-8
  CHECK_FALSE(notes::encode_note_op(op).has_value());
  op = sample_put();
  op.title = "\xe0\x80\xaf";  // overlong '/'
  CHECK_FALSE(notes::encode_note_op(op).has_value());
}
