// blindsync watch [--json] [--for SECONDS]: catch up, then print blobs live as they arrive.
// SIGINT and SIGTERM end the watch cleanly (exit 0): the handler only sets a flag that the
// client polls, so the store is never left mid-write.
#include <csignal>
#include <cstdint>
#include <memory>
#include <string>

#include "commands.h"
#include "output.h"

namespace blindsync::cli {
namespace {

volatile std::sig_atomic_t g_stop_requested = 0;

extern "C" void on_stop_signal(int /*signal*/) { g_stop_requested = 1; }

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

struct WatchCommandOptions {
  std::string group;
  bool json = false;
  std::uint64_t for_seconds = 0;  // 0 = until stopped
};

int run_watch(const GlobalOptions& global, const WatchCommandOptions& options) {
  install_stop_handlers();
  auto client = open_store(global, StoreMode::kWithIdentity);
  if (!client) return kExitFailure;
  auto group = select_group(*client, options.group);
  if (!group) return kExitFailure;

  WatchOptions watch_options;
  watch_options.duration = std::chrono::seconds(options.for_seconds);
  watch_options.should_stop = [] { return g_stop_requested != 0; };
  const bool json = options.json;
  print_note("watching group '" + group->name + "' on " + group->relay_url +
             (options.for_seconds > 0 ? " for " + std::to_string(options.for_seconds) + " s" : "") +
             " (Ctrl-C to stop)");
  Status status = client->watch(group->group_id, watch_options,
                                [json](const ReceivedBlob& blob) { print_blob(blob, json); });
  if (!status && g_stop_requested == 0) return fail_at_relay("watch failed", group->relay_url, status);
  return kExitOk;
}

}  // namespace

void add_watch_command(CLI::App& app, CommandContext& context) {
  auto options = std::make_shared<WatchCommandOptions>();
  auto* sub = app.add_subcommand("watch", "Print blobs as they arrive, until stopped or --for ends");
  sub->add_option("--group,-g", options->group, "Group name or id (default: the only group)");
  sub->add_flag("--json", options->json, "Print one JSON object per blob");
  sub->add_option("--for", options->for_seconds, "Stop after this many seconds (default: run until stopped)");
  sub->callback([&context, options] {
    context.action = [&context, options] { return run_watch(context.global, *options); };
  });
}

}  // namespace blindsync::cli
