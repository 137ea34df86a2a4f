// The command groups of `blindsync`. Each add_*_commands() adds its subcommands to the app; a
// subcommand's parse callback only records what to run in context.action, so that usage errors are
// all reported before anything touches the device store or the network.
// Thread-safety: main thread only.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "cli_context.h"

namespace blindsync::cli {

struct CommandContext {
  GlobalOptions global;
  std::function<int()> action;  // set by the chosen subcommand
};

void add_init_command(CLI::App& app, CommandContext& context);
void add_group_commands(CLI::App& app, CommandContext& context);
void add_push_pull_commands(CLI::App& app, CommandContext& context);
void add_watch_command(CLI::App& app, CommandContext& context);
void add_status_command(CLI::App& app, CommandContext& context);

}  // namespace blindsync::cli
