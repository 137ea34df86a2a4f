// blindsync group create | join | list | invite: making, joining and sharing groups.
// The invite link carries the group secret: it is printed on stdout on a line of its own (the only
// line starting with blindsync://) and nowhere else; nothing else here ever prints a secret.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include "blindsync/client/invite.h"
#include "commands.h"
#include "output.h"
#include "qr.h"

namespace blindsync::cli {
namespace {

constexpr std::uint64_t kDefaultInviteValiditySeconds = 7 * 24 * 3600;

struct CreateOptions {
  std::string relay_url;
  std::string name = "default";
  bool qr = false;
  std::uint64_t valid_for_seconds = kDefaultInviteValiditySeconds;
};

struct JoinOptions {
  std::string link;
};

struct ListOptions {
  bool json = false;
};

struct InviteOptions {
  std::string group;
  bool qr = false;
  std::uint64_t valid_for_seconds = kDefaultInviteValiditySeconds;
};

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

bool is_websocket_url(const std::string& url) {
  return url.rfind("ws://", 0) == 0 || url.rfind("wss://", 0) == 0;
}

// "ws://host:port" means the relay's sync endpoint: the relay prints ws://host:port/v1/sync, and a
// person often copies only the address.
std::string with_default_path(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  if (url.find('/', scheme_end + 3) != std::string::npos) return url;
  return url + "/v1/sync";
}

void print_invite(const std::string& link, bool qr) {
  if (qr) {
    if (auto code = render_qr(link, isatty(STDOUT_FILENO) == 1)) {
      std::cout << *code << std::flush;
    } else {
      print_note("note: the invite link is too long for a QR code; share the link instead");
    }
  }
  print_line(link);
}

int run_create(const GlobalOptions& global, const CreateOptions& options) {
  if (!is_websocket_url(options.relay_url)) {
    return fail("--relay must be a ws:// or wss:// URL, e.g. ws://127.0.0.1:7390/v1/sync", kExitUsage);
  }
  auto client = open_store(global, StoreMode::kWithIdentity);
  if (!client) return kExitFailure;
  const std::string relay_url = with_default_path(options.relay_url);
  auto created = client->create_group(relay_url, options.name,
                                      std::chrono::seconds(options.valid_for_seconds));
  if (!created) return fail_at_relay("cannot create the group", relay_url, created.error());
  const GroupInfo& group = created->group;
  print_note("created group '" + group.name + "' id=" + group.group_id.to_hex());
  print_note("relay " + group.relay_url + " relay_id=" + group.relay_id.to_hex());
  print_note("invite link (anyone holding it can join this group; share it privately):");
  print_invite(created->invite_link, options.qr);
  return kExitOk;
}

int run_join(const GlobalOptions& global, const JoinOptions& options) {
  const std::string link = trim(options.link);
  if (link.rfind(kInvitePrefix, 0) != 0) {
    return fail("this is not an invite link (it should start with " + std::string(kInvitePrefix) + ")");
  }
  auto client = open_store(global, StoreMode::kWithIdentity);
  if (!client) return kExitFailure;
  auto joined = client->join_group(link);
  if (!joined) {
    const Status& error = joined.error();
    switch (error.code()) {
      case Code::kExpired:
        return fail("this invite link has expired; ask a member of the group for a new one");
      case Code::kInvalidArgument:
        return fail("this invite link is damaged or incomplete (" + error.message() + ")");
      case Code::kUnsupportedVersion:
        return fail("this invite link was made by a newer blindsync (" + error.message() + ")");
      case Code::kAlreadyExists:
        return fail("this device is already a member of that group");
      default:
        return fail("cannot join the group", error);
    }
  }
  print_line("joined group '" + joined->name + "' id=" + joined->group_id.to_hex() + " relay=" +
             joined->relay_url);
  return kExitOk;
}

int run_list(const GlobalOptions& global, const ListOptions& options) {
  auto client = open_store(global, StoreMode::kExisting);
  if (!client) return kExitFailure;
  const auto groups = client->groups();
  if (options.json) {
    auto list = nlohmann::json::array();
    for (const auto& group : groups) {
      list.push_back({{"group_id", group.group_id.to_hex()},
                      {"name", group.name},
                      {"relay_url", group.relay_url},
                      {"relay_id", group.relay_id.to_hex()},
                      {"cursor", group.cursor}});
    }
    print_json(list);
    return kExitOk;
  }
  if (groups.empty()) print_note("no groups yet");
  for (const auto& group : groups) {
    print_line(group.group_id.to_hex() + "\t" + group.name + "\t" + group.relay_url + "\tcursor=" +
               std::to_string(group.cursor));
  }
  return kExitOk;
}

int run_invite(const GlobalOptions& global, const InviteOptions& options) {
  auto client = open_store(global, StoreMode::kWithIdentity);
  if (!client) return kExitFailure;
  auto group = select_group(*client, options.group);
  if (!group) return kExitFailure;
  auto link = client->invite_link(group->group_id, std::chrono::seconds(options.valid_for_seconds));
  if (!link) return fail("cannot make an invite link", link.error());
  print_note("invite link for group '" + group->name + "' (anyone holding it can join; share it privately):");
  print_invite(*link, options.qr);
  return kExitOk;
}

}  // namespace

void add_group_commands(CLI::App& app, CommandContext& context) {
  auto* group = app.add_subcommand("group", "Create, join, list and share groups");
  group->require_subcommand(1);

  auto create = std::make_shared<CreateOptions>();
  auto* create_cmd = group->add_subcommand("create", "Create a group on a relay and print its invite link");
  create_cmd->add_option("--relay", create->relay_url, "Relay URL, e.g. ws://127.0.0.1:7390/v1/sync")->required();
  create_cmd->add_option("--name", create->name, "Group name on this device")->capture_default_str();
  create_cmd->add_flag("--qr", create->qr, "Also draw the invite as a QR code in the terminal");
  create_cmd->add_option("--valid-for", create->valid_for_seconds, "Seconds the invite link stays valid")
      ->capture_default_str();
  create_cmd->callback([&context, create] {
    context.action = [&context, create] { return run_create(context.global, *create); };
  });

  auto join = std::make_shared<JoinOptions>();
  auto* join_cmd = group->add_subcommand("join", "Join a group from an invite link");
  join_cmd->add_option("link", join->link, "The blindsync://join/... link")->required();
  join_cmd->callback([&context, join] {
    context.action = [&context, join] { return run_join(context.global, *join); };
  });

  auto list = std::make_shared<ListOptions>();
  auto* list_cmd = group->add_subcommand("list", "List the groups of this device");
  list_cmd->add_flag("--json", list->json, "Print a JSON array");
  list_cmd->callback([&context, list] {
    context.action = [&context, list] { return run_list(context.global, *list); };
  });

  auto invite = std::make_shared<InviteOptions>();
  auto* invite_cmd = group->add_subcommand("invite", "Print a fresh invite link for a group");
  invite_cmd->add_option("--group", invite->group, "Group name or id (default: the only group)");
  invite_cmd->add_flag("--qr", invite->qr, "Also draw the invite as a QR code in the terminal");
  invite_cmd->add_option("--valid-for", invite->valid_for_seconds, "Seconds the invite link stays valid")
      ->capture_default_str();
  invite_cmd->callback([&context, invite] {
    context.action = [&context, invite] { return run_invite(context.global, *invite); };
  });
}

}  // namespace blindsync::cli
