#include "config/config_file.h"

#include <toml++/toml.h>

#include <fstream>
#include <iterator>

namespace blindsync::relay {
namespace {

Status invalid(std::string message) { return Status(Code::kInvalidArgument, std::move(message)); }

std::string type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "an unknown value";
}

std::string_view expected(ValueKind kind) {
  switch (kind) {
    case ValueKind::kInteger: return "an integer";
    case ValueKind::kBool: return "true or false";
    case ValueKind::kString: return "a string";
    case ValueKind::kStringList: return "an array of strings";
  }
  return "?";
}

}  // namespace

Result<std::vector<std::pair<std::string, ConfigValue>>> parse_config_text(std::string_view text) {
  if (text.size() > kMaxConfigFileBytes) {
    return invalid("larger than " + std::to_string(kMaxConfigFileBytes) + " bytes");
  }
  toml::table table;
  try {
    table = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return invalid("line " + std::to_string(e.source().begin.line) + ", column " +
                   std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
  } catch (const std::exception& e) {
    return invalid(std::string("cannot parse: ") + e.what());
  }

  std::vector<std::pair<std::string, ConfigValue>> values;
  for (const auto& [toml_key, node] : table) {
    const std::string name(toml_key.str());
    const ConfigKey* key = find_config_key(name);
    if (key == nullptr) {
      return invalid("'" + name + "': unknown key (line " + std::to_string(toml_key.source().begin.line) + ")");
    }
    ConfigValue value;
    value.origin = ValueOrigin::kFile;
    bool ok = false;
    switch (key->kind) {
      case ValueKind::kInteger:
        if (const auto* v = node.as_integer()) {
          value.value = v->get();
          ok = true;
        }
        break;
      case ValueKind::kBool:
        if (const auto* v = node.as_boolean()) {
          value.value = v->get();
          ok = true;
        }
        break;
      case ValueKind::kString:
        if (const auto* v = node.as_string()) {
          value.value = v->get();
          ok = true;
        }
        break;
      case ValueKind::kStringList:
        if (const auto* array = node.as_array()) {
          std::vector<std::string> items;
          ok = true;
          for (const auto& item : *array) {
            const auto* s = item.as_string();
            if (s == nullptr) {
              ok = false;
              break;
            }
            items.push_back(s->get());
          }
          value.value = std::move(items);
        }
        break;
    }
    if (!ok) {
      return invalid("'" + name + "': must be " + std::string(expected(key->kind)) + ", got " + type_name(node.type()));
    }
    values.emplace_back(name, std::move(value));
  }
  return values;
}

Result<std::vector<std::pair<std::string, ConfigValue>>> read_config_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status(Code::kIoError, "not a readable file");
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Status(Code::kIoError, "cannot read: " + ec.message());
  if (size > kMaxConfigFileBytes) return invalid("larger than " + std::to_string(kMaxConfigFileBytes) + " bytes");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kIoError, "cannot open for reading");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status(Code::kIoError, "read error");
  return parse_config_text(text);
}

}  // namespace blindsync::relay
