#include "note_op.h"

#include <exception>
#include <limits>
#include <nlohmann/json.hpp>

#include "blindsync/core/utf8.h"

namespace notes {

using blindsync::Code;
using blindsync::Result;
using blindsync::Status;
using json = nlohmann::json;

namespace {

Status invalid(const std::string& message) { return Status(Code::kInvalidArgument, "note op: " + message); }

// The string member `key`, or an error naming it.
Result<std::string> string_field(const json& object, const char* key, std::size_t max_bytes) {
  const auto it = object.find(key);
  if (it == object.end()) return invalid(std::string("missing \"") + key + "\"");
  if (!it->is_string()) return invalid(std::string("\"") + key + "\" must be a string");
  const auto& value = it->get_ref<const std::string&>();
  if (value.size() > max_bytes) {
    return invalid(std::string("\"") + key + "\" is " + std::to_string(value.size()) + " bytes (at most " +
                   std::to_string(max_bytes) + ")");
  }
  return value;
}

Result<Hlc> hlc_field(const json& object) {
  const auto it = object.find("hlc");
  if (it == object.end()) return invalid("missing \"hlc\"");
  const json& hlc = *it;
  if (!hlc.is_array() || hlc.size() != 3) return invalid("\"hlc\" must be [wall_ms, counter, device]");
  if (!hlc[0].is_number_unsigned() || hlc[0].get<std::uint64_t>() > kMaxWallMs) {
    return invalid("\"hlc\" wall_ms must be an integer in 0.." + std::to_string(kMaxWallMs));
  }
  if (!hlc[1].is_number_unsigned() ||
      hlc[1].get<std::uint64_t>() > std::numeric_limits<std::uint32_t>::max()) {
    return invalid("\"hlc\" counter must be an integer in 0..4294967295");
  }
  if (!hlc[2].is_string() || !is_device_hex(hlc[2].get_ref<const std::string&>())) {
    return invalid("\"hlc\" device must be 64 lower-case hex digits");
  }
  return Hlc{hlc[0].get<std::uint64_t>(), static_cast<std::uint32_t>(hlc[1].get<std::uint64_t>()),
             hlc[2].get<std::string>()};
}

Result<NoteOp> decode_object(const json& doc) {
  if (!doc.is_object()) return invalid("not a JSON object");
  const auto app = doc.find("app");
  if (app == doc.end() || !app->is_string() || app->get_ref<const std::string&>() != kNoteOpApp) {
    return invalid(std::string("not a ") + kNoteOpApp + " payload (\"app\" is missing or different)");
  }
  const auto version = doc.find("v");
  if (version == doc.end() || !version->is_number_unsigned())
    return invalid("\"v\" must be a version number");
  if (version->get<std::uint64_t>() != kNoteOpVersion) {
    return Status(Code::kUnsupportedVersion,
                  "note op: version " + std::to_string(version->get<std::uint64_t>()) +
                      " is not supported (this build reads version " + std::to_string(kNoteOpVersion) + ")");
  }
  auto kind = string_field(doc, "op", 16);
  if (!kind) return kind.error();
  NoteOp op;
  if (*kind == "put") {
    op.kind = OpKind::kPut;
  } else if (*kind == "delete") {
    op.kind = OpKind::kDelete;
  } else {
    return invalid("unknown \"op\" (expected put or delete)");
  }
  auto id = string_field(doc, "id", kMaxNoteIdBytes);
  if (!id) return id.error();
  op.note_id = std::move(*id);
  if (Status ok = check_note_id(op.note_id); !ok) return ok;
  if (op.kind == OpKind::kPut) {
    auto title = string_field(doc, "title", kMaxTitleBytes);
    if (!title) return title.error();
    auto body = string_field(doc, "body", kMaxBodyBytes);
    if (!body) return body.error();
    op.title = std::move(*title);
    op.body = std::move(*body);
  }
  auto hlc = hlc_field(doc);
  if (!hlc) return hlc.error();
  op.hlc = std::move(*hlc);
  return op;
}

}  // namespace

bool is_device_hex(const std::string& text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status check_note_id(const std::string& note_id) {
  if (note_id.empty()) return invalid("the note id is empty");
  if (note_id.size() > kMaxNoteIdBytes) {
    return invalid("the note id is " + std::to_string(note_id.size()) + " bytes (at most " +
                   std::to_string(kMaxNoteIdBytes) + ")");
  }
  for (unsigned char c : note_id) {
    if (c < 0x20 || c == 0x7F) return invalid("the note id contains a control character");
  }
  if (!blindsync::is_valid_utf8(note_id)) return invalid("the note id is not valid UTF-8");
  return Status::ok();
}

Status check_note_text(const std::string& title, const std::string& body) {
  if (title.size() > kMaxTitleBytes) {
    return invalid("the title is " + std::to_string(title.size()) + " bytes (at most " +
                   std::to_string(kMaxTitleBytes) + ")");
  }
  if (body.size() > kMaxBodyBytes) {
    return invalid("the body is " + std::to_string(body.size()) + " bytes (at most " +
                   std::to_string(kMaxBodyBytes) + ")");
  }
  if (!blindsync::is_valid_utf8(title)) return invalid("the title is not valid UTF-8");
  if (!blindsync::is_valid_utf8(body)) return invalid("the body is not valid UTF-8");
  return Status::ok();
}

Result<std::string> encode_note_op(const NoteOp& op) {
  if (Status ok = check_note_id(op.note_id); !ok) return ok;
  if (op.kind == OpKind::kPut) {
    if (Status ok = check_note_text(op.title, op.body); !ok) return ok;
  }
  if (!is_device_hex(op.hlc.device)) return invalid("the clock's device must be 64 lower-case hex digits");
  if (op.hlc.wall_ms > kMaxWallMs) return invalid("the clock's wall time is out of range");
  try {
    json doc = {{"app", kNoteOpApp},
                {"v", kNoteOpVersion},
                {"op", op.kind == OpKind::kPut ? "put" : "delete"},
                {"id", op.note_id},
                {"hlc", json::array({op.hlc.wall_ms, op.hlc.counter, op.hlc.device})}};
    if (op.kind == OpKind::kPut) {
      doc["title"] = op.title;
      doc["body"] = op.body;
    }
    std::string text = doc.dump();
    if (text.size() > kMaxNoteOpBytes) return invalid("the encoded note is too large");
    return text;
  } catch (const std::exception& e) {
    return invalid(std::string("cannot encode: ") + e.what());
  }
}

Result<NoteOp> decode_note_op(blindsync::ByteView payload) {
  if (payload.size() > kMaxNoteOpBytes) {
    return invalid("payload is " + std::to_string(payload.size()) + " bytes (at most " +
                   std::to_string(kMaxNoteOpBytes) + ")");
  }
  try {
    // No exceptions from parsing: a syntax error (or invalid UTF-8) gives a discarded value.
    const json doc = json::parse(payload.begin(), payload.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return invalid("payload is not JSON");
    return decode_object(doc);
  } catch (const std::exception& e) {
    // Parsing cannot throw with allow_exceptions=false; nesting depth or allocation failure might.
    return invalid(std::string("payload could not be read: ") + e.what());
  }
}

}  // namespace notes
