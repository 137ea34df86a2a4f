// blindsync init [--name NAME]: creates this device's identity (an Ed25519 key pair) in the home.
#include <unistd.h>

#include <array>
#include <memory>
#include <string>

#include "commands.h"
#include "output.h"

namespace blindsync::cli {
namespace {

struct InitOptions {
  std::string name;
};

std::string default_device_name() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) == 0 && host[0] != '\0') return std::string(host.data());
  return "device";
}

int run_init(const GlobalOptions& global, const InitOptions& options) {
  auto client = open_store(global, StoreMode::kCreate);
  if (!client) return kExitFailure;
  if (auto existing = client->identity()) {
    return fail("this home already has a device identity (" + existing->device_id.to_hex() + ")");
  }
  const std::string name = options.name.empty() ? default_device_name() : options.name;
  auto created = client->create_identity(name);
  if (!created) {
    if (created.error().code() == Code::kAlreadyExists) {
      // Another process initialised the same home between our check and our write.
      auto existing = client->identity();
      return fail("this home already has a device identity (" +
                  (existing ? existing->device_id.to_hex() : std::string("unknown")) + ")");
    }
    return fail("cannot create the device identity", created.error());
  }
  print_note("created device '" + created->name + "' in " + resolve_home(global));
  print_line(created->device_id.to_hex());
  return kExitOk;
}

}  // namespace

void add_init_command(CLI::App& app, CommandContext& context) {
  auto options = std::make_shared<InitOptions>();
  auto* sub = app.add_subcommand("init", "Create this device's identity (prints the device id)");
  sub->add_option("--name", options->name, "Device name shown to the group (default: the host name)");
  sub->callback([&context, options] {
    context.action = [&context, options] { return run_init(context.global, *options); };
  });
}

}  // namespace blindsync::cli
