// blindsync-notes: a small local-first notes app over blindsync (see README.md).
//
//   blindsync-notes [--home DIR] COMMAND ...
//
// One process per command. The notes live in DIR/notes.db; every edit is stored there first and
// then queued, encrypted, in blindsync's outbox; `sync` exchanges edits with the group's relay.
#include <charconv>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "commands.h"

namespace {

using notes::kExitUsage;

constexpr const char* kUsage = R"(usage: blindsync-notes [--home DIR] COMMAND [ARGS]

  init NAME                          create this device (NAME is shown to the group)
  create-group RELAY_URL [--name N]  create the group at a relay; prints the invite link
  join INVITE                        join the group of an invite link
  put NOTE_ID TEXT [--title TITLE]   create or replace a note (saved at once, sent on sync)
  delete NOTE_ID                     delete a note
  list [--json] [--all]              the notes on this device (--all: with deleted ones)
  status [--json]                    device, group and what is waiting to be sent
  sync [--until-idle | --for SECONDS] [--timeout SECONDS] [--quiet-ms MS] [--json]
                                     send local edits and apply the group's; --until-idle
                                     (the default) stops once caught up, exit 3 if not within
                                     --timeout (default 60)

DIR defaults to $BLINDSYNC_NOTES_HOME, else ~/.blindsync-notes. Use -- before a TEXT that
starts with '-'.
)";

int usage(const std::string& problem) {
  std::cerr << "blindsync-notes: " << problem << "\n\n" << kUsage;
  return kExitUsage;
}

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // --name VALUE
  std::set<std::string> flags;                // --json
};

// Splits args into positionals, value options and flags; nullopt (after printing) on an unknown
// option or a missing value.
std::optional<Args> parse(const std::vector<std::string>& args, const std::set<std::string>& value_options,
                          const std::set<std::string>& flag_options) {
  Args out;
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg.rfind("-", 0) != 0) {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    const auto eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    if (value_options.count(name) != 0) {
      if (eq != std::string::npos) {
        out.values[name] = arg.substr(eq + 1);
      } else if (i + 1 < args.size()) {
        out.values[name] = args[++i];
      } else {
        usage(name + " needs a value");
        return std::nullopt;
      }
    } else if (flag_options.count(arg) != 0) {
      out.flags.insert(arg);
    } else {
      usage("unknown option " + arg);
      return std::nullopt;
    }
  }
  return out;
}

std::optional<std::uint64_t> parse_number(const std::string& text) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

std::string default_home() {
  if (const char* env = std::getenv("BLINDSYNC_NOTES_HOME"); env != nullptr && *env != '\0') return env;
  if (const char* user_home = std::getenv("HOME"); user_home != nullptr && *user_home != '\0') {
    return std::string(user_home) + "/.blindsync-notes";
  }
  return ".blindsync-notes";
}

int run_sync_command(const notes::AppHome& home, const Args& args) {
  notes::SyncOptions options;
  if (!args.positional.empty()) return usage("sync takes no arguments");
  if (args.values.count("--for") != 0 && args.flags.count("--until-idle") != 0) {
    return usage("sync: give --for or --until-idle, not both");
  }
  for (const auto& [name, text] : args.values) {
    const auto value = parse_number(text);
    if (!value || *value > 86'400'000) return usage(name + " needs a non-negative number");
    if (name == "--for") options.run_for = std::chrono::seconds(*value);
    if (name == "--timeout") options.timeout = std::chrono::seconds(*value);
    if (name == "--quiet-ms") options.quiet = std::chrono::milliseconds(*value);
  }
  return notes::cmd_sync(home, options, args.flags.count("--json") != 0);
}

int dispatch(const notes::AppHome& home, const std::string& command, const std::vector<std::string>& rest) {
  auto need = [](const Args& args, std::size_t count, const char* shape) -> bool {
    if (args.positional.size() == count) return true;
    usage(std::string("usage: ") + shape);
    return false;
  };
  if (command == "init") {
    auto args = parse(rest, {}, {});
    if (!args || !need(*args, 1, "init NAME")) return kExitUsage;
    return notes::cmd_init(home, args->positional[0]);
  }
  if (command == "create-group") {
    auto args = parse(rest, {"--name"}, {});
    if (!args || !need(*args, 1, "create-group RELAY_URL [--name NAME]")) return kExitUsage;
    const auto name = args->values.count("--name") != 0 ? args->values.at("--name") : std::string("notes");
    return notes::cmd_create_group(home, args->positional[0], name);
  }
  if (command == "join") {
    auto args = parse(rest, {}, {});
    if (!args || !need(*args, 1, "join INVITE")) return kExitUsage;
    return notes::cmd_join(home, args->positional[0]);
  }
  if (command == "put") {
    auto args = parse(rest, {"--title"}, {});
    if (!args || !need(*args, 2, "put NOTE_ID TEXT [--title TITLE]")) return kExitUsage;
    std::optional<std::string> title;
    if (args->values.count("--title") != 0) title = args->values.at("--title");
    return notes::cmd_put(home, args->positional[0], args->positional[1], title);
  }
  if (command == "delete") {
    auto args = parse(rest, {}, {});
    if (!args || !need(*args, 1, "delete NOTE_ID")) return kExitUsage;
    return notes::cmd_delete(home, args->positional[0]);
  }
  if (command == "list") {
    auto args = parse(rest, {}, {"--json", "--all"});
    if (!args || !need(*args, 0, "list [--json] [--all]")) return kExitUsage;
    return notes::cmd_list(home, args->flags.count("--json") != 0, args->flags.count("--all") != 0);
  }
  if (command == "status") {
    auto args = parse(rest, {}, {"--json"});
    if (!args || !need(*args, 0, "status [--json]")) return kExitUsage;
    return notes::cmd_status(home, args->flags.count("--json") != 0);
  }
  if (command == "sync") {
    auto args = parse(rest, {"--for", "--timeout", "--quiet-ms"}, {"--until-idle", "--json"});
    if (!args) return kExitUsage;
    return run_sync_command(home, *args);
  }
  return usage("unknown command '" + command + "'");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  notes::AppHome home{default_home()};
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    if (args[i] == "-h" || args[i] == "--help") {
      std::cout << kUsage;
      return notes::kExitOk;
    }
    if (args[i] == "--home") {
      if (i + 1 >= args.size()) return usage("--home needs a directory");
      home.dir = args[++i];
    } else if (args[i].rfind("--home=", 0) == 0) {
      home.dir = args[i].substr(7);
    } else {
      break;
    }
  }
  if (i >= args.size()) return usage("no command given");
  if (home.dir.empty()) return usage("--home needs a directory");
  try {
    return dispatch(home, args[i],
                    std::vector<std::string>(args.begin() + static_cast<long>(i) + 1, args.end()));
  } catch (const std::exception& e) {
    // Nothing in here is expected to throw; a bad_alloc must still end with a message.
    std::cerr << "blindsync-notes: unexpected error: " << e.what() << "\n";
    return notes::kExitFailure;
  }
}
