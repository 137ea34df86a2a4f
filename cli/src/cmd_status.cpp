// blindsync status [--json]: the device, its groups (relay, relay_id, cursor, epoch) and the outbox.
// Shows ids only: never a secret.
#include <memory>
#include <string>

#include "commands.h"
#include "output.h"

namespace blindsync::cli {
namespace {

struct StatusCommandOptions {
  bool json = false;
};

int run_status(const GlobalOptions& global, const StatusCommandOptions& options) {
  auto client = open_store(global, StoreMode::kExisting);
  if (!client) return kExitFailure;
  const ClientStatus status = client->status();
  const std::string home = resolve_home(global);

  if (options.json) {
    nlohmann::json out;
    out["home"] = home;
    out["device"] = status.device ? nlohmann::json{{"device_id", status.device->device_id.to_hex()},
                                                   {"name", status.device->name}}
                                  : nlohmann::json(nullptr);
    out["groups"] = nlohmann::json::array();
    for (const auto& group : status.groups) {
      out["groups"].push_back({{"group_id", group.group_id.to_hex()},
                               {"name", group.name},
                               {"relay_url", group.relay_url},
                               {"relay_id", group.relay_id.to_hex()},
                               {"cursor", group.cursor},
                               {"epoch", group.epoch}});
    }
    out["outbox_size"] = status.outbox_size;
    print_json(out);
    return kExitOk;
  }

  print_line("home:    " + home);
  if (status.device) {
    print_line("device:  " + status.device->device_id.to_hex() + " (" + status.device->name + ")");
  } else {
    print_line("device:  none (run 'blindsync init')");
  }
  print_line("outbox:  " + std::to_string(status.outbox_size) + " blob(s) waiting");
  print_line("groups:  " + std::to_string(status.groups.size()));
  for (const auto& group : status.groups) {
    print_line("  group " + group.name + " id=" + group.group_id.to_hex());
    print_line("    relay    " + group.relay_url + " relay_id=" + group.relay_id.to_hex());
    print_line("    cursor   " + std::to_string(group.cursor) +
               (group.epoch == 0 ? std::string(" (never connected)") : " epoch=" + std::to_string(group.epoch)));
  }
  return kExitOk;
}

}  // namespace

void add_status_command(CLI::App& app, CommandContext& context) {
  auto options = std::make_shared<StatusCommandOptions>();
  auto* sub = app.add_subcommand("status", "Show the device, its groups, relays, cursors and outbox");
  sub->add_flag("--json", options->json, "Print one JSON object");
  sub->callback([&context, options] {
    context.action = [&context, options] { return run_status(context.global, *options); };
  });
}

}  // namespace blindsync::cli
