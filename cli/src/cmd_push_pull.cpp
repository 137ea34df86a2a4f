// blindsync push (TEXT | --file PATH | -) and blindsync pull: one-shot sending and receiving.
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "blindsync/core/limits.h"
#include "commands.h"
#include "output.h"

namespace blindsync::cli {
namespace {

// Inputs above this are refused before being read whole: the relay refuses them anyway, and a
// mistaken --file /dev/zero must not eat memory.
constexpr std::size_t kMaxInputBytes = kDefaultMaxBlobBytes;

struct PushOptions {
  std::string text;
  bool has_text = false;
  std::string file;
  std::string group;
  std::uint32_t ttl_seconds = 0;
  bool json = false;
};

struct PullCommandOptions {
  Cursor after_value = 0;
  std::optional<Cursor> after;
  std::string group;
  bool json = false;
};

// Reads a whole stream, at most kMaxInputBytes. kInvalidArgument when larger.
Result<Bytes> read_stream(std::FILE* stream, const std::string& what) {
  Bytes data;
  std::uint8_t chunk[64 * 1024];
  while (true) {
    const std::size_t n = std::fread(chunk, 1, sizeof chunk, stream);
    data.insert(data.end(), chunk, chunk + n);
    if (data.size() > kMaxInputBytes) {
      return Status(Code::kInvalidArgument, what + " is larger than the largest blob (" +
                                                std::to_string(kMaxInputBytes) + " bytes)");
    }
    if (n < sizeof chunk) {
      if (std::ferror(stream)) return Status(Code::kIoError, "cannot read " + what + ": " + std::strerror(errno));
      return data;
    }
  }
}

Result<Bytes> read_file(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return Status(Code::kIoError, "cannot open " + path + ": " + std::strerror(errno));
  auto data = read_stream(file, path);
  std::fclose(file);
  return data;
}

void note_outbox(const Client& client, const Status& failure) {
  const auto pending = client.status().outbox_size;
  if (pending > 0 && failure.message().find("outbox") == std::string::npos) {
    print_note("note: " + std::to_string(pending) +
               " blob(s) wait in this device's outbox; the next push, pull or watch sends them");
  }
}

int run_push(const GlobalOptions& global, const PushOptions& options) {
  if (options.has_text == !options.file.empty()) {
    return fail(options.has_text ? "give either TEXT or --file, not both"
                                 : "nothing to push: give TEXT, --file PATH, or - to read stdin",
                kExitUsage);
  }
  Result<Bytes> data = Bytes{};
  if (!options.file.empty()) {
    data = read_file(options.file);
  } else if (options.text == "-") {
    data = read_stream(stdin, "standard input");
  } else {
    const auto view = as_bytes(options.text);
    data = Bytes(view.begin(), view.end());
  }
  if (!data) return fail(describe(data.error()));

  auto client = open_store(global, StoreMode::kWithIdentity);
  if (!client) return kExitFailure;
  auto group = select_group(*client, options.group);
  if (!group) return kExitFailure;

  auto pushed = client->push(group->group_id, *data, options.ttl_seconds);
  if (!pushed) {
    const int code = fail_at_relay("push failed", group->relay_url, pushed.error());
    note_outbox(*client, pushed.error());
    return code;
  }
  if (options.json) {
    print_json({{"cursor", pushed->cursor},
                {"blob_id", pushed->blob_id.to_hex()},
                {"duplicate", pushed->duplicate}});
  } else {
    print_line(std::to_string(pushed->cursor));
  }
  return kExitOk;
}

int run_pull(const GlobalOptions& global, const PullCommandOptions& options) {
  auto client = open_store(global, StoreMode::kWithIdentity);
  if (!client) return kExitFailure;
  auto group = select_group(*client, options.group);
  if (!group) return kExitFailure;

  blindsync::PullOptions pull_options;
  pull_options.after = options.after;
  const bool json = options.json;
  Status status = client->pull(group->group_id, pull_options,
                               [json](const ReceivedBlob& blob) { print_blob(blob, json); });
  if (!status) return fail_at_relay("pull failed", group->relay_url, status);
  return kExitOk;
}

}  // namespace

void add_push_pull_commands(CLI::App& app, CommandContext& context) {
  auto push = std::make_shared<PushOptions>();
  auto* push_cmd = app.add_subcommand("push", "Send data to the group (prints the assigned cursor)");
  auto* text_opt = push_cmd->add_option("text", push->text, "Text to send, or - to read standard input");
  auto* file_opt = push_cmd->add_option("--file,-f", push->file, "Send the contents of a file");
  file_opt->excludes(text_opt);
  push_cmd->add_option("--group,-g", push->group, "Group name or id (default: the only group)");
  push_cmd->add_option("--ttl", push->ttl_seconds, "Seconds the relay keeps the blob (default: relay's)");
  push_cmd->add_flag("--json", push->json, "Print {\"cursor\",\"blob_id\",\"duplicate\"}");
  push_cmd->callback([&context, push, text_opt] {
    push->has_text = text_opt->count() > 0;
    context.action = [&context, push] { return run_push(context.global, *push); };
  });

  auto pull = std::make_shared<PullCommandOptions>();
  auto* pull_cmd = app.add_subcommand("pull", "Print the blobs received since the last pull");
  auto* after_opt =
      pull_cmd->add_option("--after", pull->after_value, "Start after this cursor instead of the stored one");
  pull_cmd->add_option("--group,-g", pull->group, "Group name or id (default: the only group)");
  pull_cmd->add_flag("--json", pull->json, "Print one JSON object per blob");
  pull_cmd->callback([&context, pull, after_opt] {
    if (after_opt->count() > 0) pull->after = pull->after_value;
    context.action = [&context, pull] { return run_pull(context.global, *pull); };
  });
}

}  // namespace blindsync::cli
