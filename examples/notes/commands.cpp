#include "commands.h"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "hlc.h"
#include "note_store.h"
#include "sync_device.h"

namespace notes {

using blindsync::Status;

namespace {

constexpr auto kCallTimeout = std::chrono::seconds(60);

int fail(const std::string& message) {
  std::cerr << "blindsync-notes: " << message << "\n";
  return kExitFailure;
}
int fail(const std::string& what, const Status& status) { return fail(what + ": " + status.to_string()); }

// The home must exist (made by init) for every other command.
bool require_home(const AppHome& home) {
  std::error_code ec;
  if (std::filesystem::exists(home.notes_db(), ec)) return true;
  fail("no notes home at " + home.dir + " (run `blindsync-notes --home " + home.dir + " init NAME` first)");
  return false;
}

std::unique_ptr<NoteStore> open_store(const AppHome& home) {
  auto store = NoteStore::open(home.notes_db());
  if (!store) {
    fail("cannot open the notes database", store.error());
    return nullptr;
  }
  return std::move(*store);
}

std::unique_ptr<SyncDevice> open_device(const AppHome& home) {
  auto device = SyncDevice::open(home.sync_home());
  if (!device) {
    fail("cannot open the blindsync device home", device.error());
    return nullptr;
  }
  return std::move(*device);
}

// A future from the AsyncClient, bounded (its own network timeouts end it well before).
template <typename T>
blindsync::Result<T> await(std::future<blindsync::Result<T>> future) {
  if (future.wait_for(kCallTimeout) != std::future_status::ready) {
    return Status(blindsync::Code::kTimeout, "no answer within 60 s");
  }
  return future.get();
}

// After a local edit, or once a group exists: hand what is queued to blindsync's outbox.
int flush_after_edit(NoteStore& store, SyncDevice& device) {
  auto group = device.group();
  if (!group) {
    std::cerr
        << "blindsync-notes: saved locally; not in a group yet, so it is sent after create-group or join\n";
    return kExitOk;
  }
  auto sent = device.flush_pending(store, group->group_id);
  if (!sent) return fail("saved locally, but not queued for sync (the next command retries)", sent.error());
  return kExitOk;
}

int finish_local_edit(NoteStore& store, SyncDevice& device, const blindsync::Result<NoteOp>& op,
                      const char* verb) {
  if (!op) return fail(std::string("cannot ") + verb + " the note", op.error());
  std::cout << verb << " " << op->note_id << " " << op->hlc.to_string() << "\n";
  return flush_after_edit(store, device);
}

nlohmann::json note_json(const Note& note) {
  return {{"id", note.note_id},       {"title", note.title},         {"body", note.body},
          {"deleted", note.deleted},  {"wall_ms", note.hlc.wall_ms}, {"counter", note.hlc.counter},
          {"origin", note.hlc.device}};
}

// Stored text is valid UTF-8 (checked on the way in); replace rather than throw if it is not.
std::string dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string one_line(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

int cmd_init(const AppHome& home, const std::string& device_name) {
  std::error_code ec;
  if (!std::filesystem::exists(home.dir, ec)) {
    std::filesystem::create_directories(home.dir, ec);
    if (ec) return fail("cannot create " + home.dir + ": " + ec.message());
    ::chmod(home.dir.c_str(), 0700);  // the notes and the device keys live here
  }
  auto store = open_store(home);
  if (!store) return kExitFailure;
  auto device = open_device(home);
  if (!device) return kExitFailure;
  if (auto existing = device->device_hex())
    return fail("this notes home is initialised already (device " + *existing + ")");
  auto created = await(device->client().create_identity(device_name));
  if (!created) return fail("cannot create the device identity", created.error());
  std::cerr << "blindsync-notes: created device '" << created->name << "' in " << home.dir << "\n";
  std::cout << created->device_id.to_hex() << "\n";
  return kExitOk;
}

int cmd_create_group(const AppHome& home, const std::string& relay_url, const std::string& group_name) {
  if (!require_home(home)) return kExitFailure;
  auto store = open_store(home);
  if (!store) return kExitFailure;
  auto device = open_device(home);
  if (!device) return kExitFailure;
  if (auto dev = device->device_hex(); !dev) return fail("cannot create a group", dev.error());
  if (device->group()) return fail("this device is in a group already; blindsync-notes uses one");
  auto created = await(device->client().create_group({relay_url}, group_name));
  if (!created) return fail("cannot create the group", created.error());
  std::cerr << "blindsync-notes: created group " << created->group.group_id.to_hex()
            << "; the invite below lets a device join: share it privately\n";
  std::cout << created->invite_link << "\n";
  return flush_after_edit(*store, *device);
}

int cmd_join(const AppHome& home, const std::string& invite_link) {
  if (!require_home(home)) return kExitFailure;
  auto store = open_store(home);
  if (!store) return kExitFailure;
  auto device = open_device(home);
  if (!device) return kExitFailure;
  if (auto dev = device->device_hex(); !dev) return fail("cannot join", dev.error());
  if (device->group()) return fail("this device is in a group already; blindsync-notes uses one");
  auto joined = await(device->client().join_group(invite_link));
  if (!joined) return fail("cannot join the group", joined.error());
  std::cerr << "blindsync-notes: joined group " << joined->group_id.to_hex() << " at " << joined->relay_url
            << "; run sync to fetch its notes\n";
  std::cout << joined->group_id.to_hex() << "\n";
  return flush_after_edit(*store, *device);
}

int cmd_put(const AppHome& home, const std::string& note_id, const std::string& body,
            const std::optional<std::string>& title) {
  if (!require_home(home)) return kExitFailure;
  auto store = open_store(home);
  if (!store) return kExitFailure;
  auto device = open_device(home);
  if (!device) return kExitFailure;
  auto dev = device->device_hex();
  if (!dev) return fail("cannot edit", dev.error());
  return finish_local_edit(*store, *device, store->put(*dev, note_id, title, body, wall_clock_ms()), "put");
}

int cmd_delete(const AppHome& home, const std::string& note_id) {
  if (!require_home(home)) return kExitFailure;
  auto store = open_store(home);
  if (!store) return kExitFailure;
  auto device = open_device(home);
  if (!device) return kExitFailure;
  auto dev = device->device_hex();
  if (!dev) return fail("cannot edit", dev.error());
  return finish_local_edit(*store, *device, store->remove(*dev, note_id, wall_clock_ms()), "delete");
}

int cmd_list(const AppHome& home, bool json, bool include_deleted) {
  if (!require_home(home)) return kExitFailure;
  auto store = open_store(home);  // the notes database alone: listing needs no network
  if (!store) return kExitFailure;
  auto notes = store->list(include_deleted);
  if (!notes) return fail("cannot list the notes", notes.error());
  if (json) {
    auto out = nlohmann::json::array();
    for (const auto& note : *notes) out.push_back(note_json(note));
    std::cout << dump(out) << "\n";
    return kExitOk;
  }
  for (const auto& note : *notes) {
    std::cout << note.note_id << "\t" << one_line(note.title) << "\t"
              << (note.deleted ? std::string("(deleted)") : one_line(note.body)) << "\n";
  }
  return kExitOk;
}

int cmd_status(const AppHome& home, bool json) {
  if (!require_home(home)) return kExitFailure;
  auto store = open_store(home);
  if (!store) return kExitFailure;
  auto device = open_device(home);
  if (!device) return kExitFailure;
  auto pending = store->pending_count();
  if (!pending) return fail("cannot read the notes database", pending.error());
  auto live = store->list(false);
  auto all = store->list(true);
  if (!live || !all) return fail("cannot read the notes database", (live ? all : live).error());
  auto dev = device->device_hex();
  auto group = device->group();
  std::uint64_t outbox = 0;
  for (const auto& status : device->client().status()) outbox += status.outbox;

  nlohmann::json out = {{"device", dev ? nlohmann::json(*dev) : nlohmann::json()},
                        {"group", group ? nlohmann::json(group->group_id.to_hex()) : nlohmann::json()},
                        {"relay", group ? nlohmann::json(group->relay_url) : nlohmann::json()},
                        {"outbox", outbox},
                        {"pending", *pending},
                        {"notes", live->size()},
                        {"deleted", all->size() - live->size()}};
  if (json) {
    std::cout << dump(out) << "\n";
    return kExitOk;
  }
  std::cout << "device:  " << (dev ? *dev : "(none: run init)") << "\n"
            << "group:   " << (group ? group->group_id.to_hex() + " at " + group->relay_url : "(none)")
            << "\n"
            << "notes:   " << live->size() << " (" << all->size() - live->size() << " deleted)\n"
            << "waiting: " << *pending + outbox << " edits not yet acknowledged by the relay\n";
  return kExitOk;
}

int cmd_sync(const AppHome& home, const SyncOptions& options, bool json) {
  if (!require_home(home)) return kExitFailure;
  auto store = open_store(home);
  if (!store) return kExitFailure;
  auto device = open_device(home);
  if (!device) return kExitFailure;
  if (auto dev = device->device_hex(); !dev) return fail("cannot sync", dev.error());
  auto group = device->group();
  if (!group) return fail("cannot sync", group.error());
  auto report = run_sync(*device, *store, group->group_id, options, std::cerr);
  if (!report) return fail("sync stopped", report.error());
  if (json) {
    std::cout << dump({{"sent", report->sent},
                       {"acked", report->acked},
                       {"applied", report->applied},
                       {"ignored", report->ignored},
                       {"rejected", report->rejected},
                       {"outbox", report->outbox},
                       {"idle", report->idle}})
              << "\n";
  } else {
    std::cout << "sent " << report->sent << ", acked " << report->acked << ", applied " << report->applied
              << ", ignored " << report->ignored << ", rejected " << report->rejected << ", outbox "
              << report->outbox << (report->idle ? ", idle" : ", not idle") << "\n";
  }
  if (!options.run_for && !report->idle) {
    std::cerr << "blindsync-notes: not caught up within the timeout (is the relay reachable?)\n";
    return kExitNotIdle;
  }
  return kExitOk;
}

}  // namespace notes
