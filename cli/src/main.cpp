// blindsync: the command-line client. See `blindsync --help`.
// Exit codes: 0 success, 1 failure, 2 usage error. Errors go to stderr as
// "blindsync: error: <message>"; results go to stdout.
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "commands.h"

#ifndef BLINDSYNC_VERSION
#define BLINDSYNC_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  using namespace blindsync::cli;

  CLI::App app{"blindsync: zero-knowledge sync between the devices of a group", "blindsync"};
  app.set_version_flag("--version", "blindsync " BLINDSYNC_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand

  CommandContext context;
  app.add_option("--home", context.global.home, "Device store directory (default: ~/.blindsync)")
      ->envname("BLINDSYNC_HOME");
  app.add_option("--timeout", context.global.timeout_seconds,
                 "Seconds to wait for a relay before giving up")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3600u));

  add_init_command(app, context);
  add_group_commands(app, context);
  add_push_pull_commands(app, context);
  add_watch_command(app, context);
  add_status_command(app, context);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    fail(e.what(), kExitUsage);
    std::cerr << "Run 'blindsync --help' for usage." << std::endl;
    return kExitUsage;
  }

  if (!context.action) return fail("no command given", kExitUsage);
  try {
    return context.action();
  } catch (const std::exception& e) {
    // The library never throws; this guards the CLI's own JSON and filesystem calls.
    return fail(std::string("internal error: ") + e.what());
  }
}
