// blindsync-notes end to end: real blindsync-notes processes (one per command, two device homes)
// against a real blindsync-relay process on loopback, including a relay outage with edits on both
// sides and a third group member pushing payloads that are not note ops.
// Every wait is bounded (process timeouts, a fixed number of sync rounds); nothing asserts on timing.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "blindsync/client/client.h"
#include "blindsync/transport_ws/ws_transport.h"
#include "notes_fixture.h"
#include "relay_process.h"
#include "temp_dir.h"

using blindsync::test::EnvChange;
using blindsync::test::RelayProcess;
using blindsync::test::TempDir;
using nlohmann::json;
using notes_test::find_note;
using notes_test::NotesApp;
using notes_test::sync_until_converged;

namespace {

// A (created the group at the relay) and B (joined with A's invite).
struct PairedNotes {
  TempDir dir{"notes-it"};
  std::unique_ptr<RelayProcess> relay;
  NotesApp a{dir.sub("a")};
  NotesApp b{dir.sub("b")};
  std::string invite;

  PairedNotes() {
    relay = RelayProcess::start(dir.sub("relay"));
    a.init("laptop");
    b.init("phone");
    invite = a.create_group(relay->url());
    b.join(invite);
  }
};

bool has_live(const json& list, const std::string& id) {
  const json note = find_note(list, id);
  return !note.is_null() && note.at("deleted") == false;
}

bool has_tombstone(const json& list, const std::string& id) {
  const json note = find_note(list, id);
  return !note.is_null() && note.at("deleted") == true;
}

std::string body_of(const json& list, const std::string& id) {
  const json note = find_note(list, id);
  return note.is_null() ? std::string("<absent>") : note.at("body").get<std::string>();
}

// The note's HLC as a comparable tuple (wall_ms, counter, origin device).
std::tuple<std::uint64_t, std::uint32_t, std::string> hlc_of(const json& list, const std::string& id) {
  const json note = find_note(list, id);
  REQUIRE_FALSE(note.is_null());
  return {note.at("wall_ms").get<std::uint64_t>(), note.at("counter").get<std::uint32_t>(),
          note.at("origin").get<std::string>()};
}

std::uint64_t waiting(const NotesApp& app) {
  const json status = app.status();
  return status.at("outbox").get<std::uint64_t>() + status.at("pending").get<std::uint64_t>();
}

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("notes: notes put on A reach B through a real relay", "[notes][process]") {
  PairedNotes p;
  p.a.ok({"put", "groceries", "milk\neggs", "--title", "Shopping"});
  p.a.put("todo", "unicode \xe2\x9c\x93 and \"quotes\"");
  p.a.put("scratch", "short-lived");
  p.a.ok({"delete", "scratch"});

  // Local first: A lists its notes at once, before any sync.
  const json before = p.a.live_notes();
  REQUIRE(before.size() == 2);
  CHECK(body_of(before, "groceries") == "milk\neggs");
  CHECK(p.b.live_notes().empty());

  const json list = sync_until_converged(p.a, p.b, [](const json& l) {
    return has_live(l, "groceries") && has_live(l, "todo") && has_tombstone(l, "scratch");
  });
  const json groceries = find_note(list, "groceries");
  CHECK(groceries.at("title") == "Shopping");
  CHECK(groceries.at("body") == "milk\neggs");
  CHECK(groceries.at("origin") == p.a.device());
  CHECK(body_of(list, "todo") == "unicode \xe2\x9c\x93 and \"quotes\"");
  CHECK(p.b.live_notes().size() == 2);
  CHECK(waiting(p.a) == 0);
  CHECK(waiting(p.b) == 0);

  // The plain listing prints one note per line.
  const std::string text = p.b.ok({"list"});
  CHECK(text.find("groceries\tShopping\tmilk\\neggs\n") != std::string::npos);
  CHECK(text.find("scratch") == std::string::npos);

  // The notes database is private to the user.
  CHECK(mode_of(p.a.home() + "/notes.db") == 0600);
  CHECK(mode_of(p.b.home() + "/notes.db") == 0600);
  CHECK(mode_of(p.a.home()) == 0700);
}

TEST_CASE("notes: concurrent edits of one note converge on the version with the higher HLC",
          "[notes][process]") {
  PairedNotes p;
  p.a.put("shared", "base");
  sync_until_converged(p.a, p.b, [](const json& l) { return body_of(l, "shared") == "base"; });

  SECTION("wall clocks as they are: both devices keep the same winner") {
    p.a.put("shared", "edit from A");
    p.b.put("shared", "edit from B");
    // Each device stamped its edit; the greater stamp must win on both, whatever order the
    // edits reach the relay and the devices in.
    const auto hlc_a = hlc_of(p.a.list(), "shared");
    const auto hlc_b = hlc_of(p.b.list(), "shared");
    REQUIRE(hlc_a != hlc_b);
    const std::string winner = hlc_a > hlc_b ? "edit from A" : "edit from B";
    const json list = sync_until_converged(p.a, p.b, [&](const json& l) {
      return body_of(l, "shared") == "edit from A" || body_of(l, "shared") == "edit from B";
    });
    CHECK(body_of(list, "shared") == winner);
    CHECK(hlc_of(list, "shared") == std::max(hlc_a, hlc_b));
  }

  SECTION("a clock running ahead wins over a later edit that had not seen it, but not over one that had") {
    const std::uint64_t future = now_ms() + 10 * 60 * 1000;  // A's clock is 10 minutes fast
    p.a.put("shared", "A from the future", {EnvChange{"BLINDSYNC_NOTES_NOW_MS", std::to_string(future)}});
    p.b.put("shared", "B later in real time");  // B has not seen A's edit: its stamp is smaller
    // sync_until_converged runs A, B, A: B's edit is the last to reach A, and still loses.
    json list = sync_until_converged(
        p.a, p.b, [](const json& l) { return body_of(l, "shared") == "A from the future"; });
    CHECK(std::get<0>(hlc_of(list, "shared")) == future);
    CHECK(std::get<2>(hlc_of(list, "shared")) == p.a.device());

    // B has now seen A's stamp, so its next edit is stamped after it (HLC receive rule), although
    // B's own wall clock is still 10 minutes behind.
    p.b.put("shared", "B after seeing A");
    list = sync_until_converged(p.a, p.b,
                                [](const json& l) { return body_of(l, "shared") == "B after seeing A"; });
    CHECK(std::get<0>(hlc_of(list, "shared")) >= future);
    CHECK(std::get<2>(hlc_of(list, "shared")) == p.b.device());
  }
}

TEST_CASE("notes: edits made on both devices while the relay is down are kept, queued and converge",
          "[notes][process]") {
  PairedNotes p;
  p.a.put("n1", "one");
  p.a.put("keep", "stays");
  sync_until_converged(p.a, p.b, [](const json& l) { return has_live(l, "n1") && has_live(l, "keep"); });

  const std::uint16_t port = p.relay->port();
  REQUIRE(p.relay->stop() == 0);
  p.relay.reset();

  p.a.put("a-only", "written on A offline");
  p.b.put("b-only", "written on B offline");
  p.a.put("both", "A's offline version");
  p.b.put("both", "B's offline version");
  p.b.ok({"delete", "n1"});

  // Applied locally at once ...
  const json a_offline = p.a.live_notes();
  const json b_offline = p.b.live_notes();
  CHECK(body_of(a_offline, "a-only") == "written on A offline");
  CHECK(body_of(a_offline, "both") == "A's offline version");
  CHECK(body_of(b_offline, "b-only") == "written on B offline");
  CHECK(body_of(b_offline, "both") == "B's offline version");
  CHECK_FALSE(has_live(b_offline, "n1"));
  // ... and queued for the relay.
  CHECK(waiting(p.a) == 2);
  CHECK(waiting(p.b) == 3);
  // A sync without a relay does not pretend to have caught up (exit 3) and loses nothing.
  const auto stalled = p.a.run({"sync", "--until-idle", "--timeout", "2"});
  INFO(stalled.out << stalled.err);
  CHECK(stalled.exit_code == 3);
  CHECK(waiting(p.a) == 2);

  const auto hlc_a = hlc_of(p.a.list(), "both");
  const auto hlc_b = hlc_of(p.b.list(), "both");
  const std::string winner = hlc_a > hlc_b ? "A's offline version" : "B's offline version";

  // The relay comes back on the same port (the group's relay URL) and the same data directory.
  p.relay = RelayProcess::start(p.dir.sub("relay"), port);
  const json list = sync_until_converged(p.a, p.b, [](const json& l) {
    return has_live(l, "a-only") && has_live(l, "b-only") && has_tombstone(l, "n1") &&
           (body_of(l, "both") == "A's offline version" || body_of(l, "both") == "B's offline version");
  });
  CHECK(body_of(list, "both") == winner);
  CHECK(body_of(list, "keep") == "stays");
  CHECK(body_of(list, "a-only") == "written on A offline");
  CHECK(body_of(list, "b-only") == "written on B offline");
  CHECK(p.a.live_notes() == p.b.live_notes());
  CHECK(p.a.live_notes().size() == 4);  // keep, a-only, b-only, both
  CHECK(waiting(p.a) == 0);
  CHECK(waiting(p.b) == 0);
}

TEST_CASE("notes: payloads that are not valid note ops are rejected without crashing", "[notes][process]") {
  PairedNotes p;
  p.a.put("real", "from A");

  // A third member of the group, running some other program, pushes what it likes.
  blindsync::ClientOptions options;
  options.transport = [](const std::string& url, const blindsync::TransportOptions& o) {
    return blindsync::connect_websocket(url, o);
  };
  auto other = blindsync::Client::open(p.dir.sub("other"), std::move(options));
  REQUIRE(other.has_value());
  auto identity = (*other)->create_identity("other-app");
  REQUIRE(identity.has_value());
  auto group = (*other)->join_group(p.invite);
  REQUIRE(group.has_value());
  const std::string other_dev = identity->device_id.to_hex();

  auto op = [](const std::string& id, const std::string& device) {
    return json{{"app", "blindsync-notes"},
                {"v", 1},
                {"op", "put"},
                {"id", id},
                {"title", ""},
                {"body", "secret body text"},
                {"hlc", json::array({1, 0, device})}};
  };
  json future_version = op("future", other_dev);
  future_version["v"] = 99;
  json wrong_type = op("typed", other_dev);
  wrong_type["body"] = 42;
  const std::vector<std::string> bad{
      "not json at all",
      std::string("\xff\x00\xfe\x01", 4),
      R"({"app":"some-other-app","v":1})",
      future_version.dump(),
      wrong_type.dump(),
      op("spoofed", p.a.device()).dump(),  // claims to be A's edit
      op(std::string(4096, 'x'), other_dev).dump(),
      std::string(50'000, '['),
  };
  for (const auto& payload : bad) {
    auto pushed = (*other)->push(group->group_id, blindsync::as_bytes(payload));
    INFO((pushed ? std::string() : pushed.error().to_string()));
    REQUIRE(pushed.has_value());
  }
  // Pushed last: once a device has it, it has processed every bad payload before it.
  const std::string good = op("from-other", other_dev).dump();
  REQUIRE((*other)->push(group->group_id, blindsync::as_bytes(good)).has_value());

  for (const NotesApp* app : {&p.b, &p.a}) {
    std::uint64_t rejected = 0;
    std::string errors;
    for (int round = 0; round < 5 && !has_live(app->list(), "from-other"); ++round) {
      const auto result =
          app->run({"sync", "--until-idle", "--timeout", "60", "--quiet-ms", "500", "--json"});
      INFO(result.out << result.err);
      REQUIRE(result.exit_code == 0);
      rejected += json::parse(result.out).at("rejected").get<std::uint64_t>();
      errors += result.err;
    }
    const json list = app->list();
    INFO(errors);
    REQUIRE(has_live(list, "from-other"));
    CHECK(rejected == bad.size());
    CHECK_FALSE(has_live(list, "spoofed"));
    CHECK_FALSE(has_live(list, "future"));
    CHECK(errors.find("rejected blob") != std::string::npos);
    CHECK(errors.find("not supported") != std::string::npos);  // the version 99 op
    CHECK(errors.find("names device") != std::string::npos);   // the spoofed op
    // Payload contents never reach the log.
    CHECK(errors.find("not json at all") == std::string::npos);
    CHECK(errors.find("secret body text") == std::string::npos);
  }
  sync_until_converged(p.a, p.b,
                       [](const json& l) { return has_live(l, "real") && has_live(l, "from-other"); });
}

TEST_CASE("notes: commands fail clearly on bad input", "[notes][process]") {
  TempDir dir("notes-cli");
  NotesApp app(dir.sub("home"));

  auto before_init = app.run({"list"});
  CHECK(before_init.exit_code == 1);
  CHECK(before_init.err.find("init") != std::string::npos);
  CHECK(app.run({"frobnicate"}).exit_code == 2);
  CHECK(app.run({"put", "only-an-id"}).exit_code == 2);
  CHECK(app.run({"list", "--bogus"}).exit_code == 2);

  app.init("device");
  CHECK(app.run({"init", "again"}).exit_code == 1);
  // Edits work before the device is in a group: they wait in the notes database.
  app.put("early", "before any group");
  CHECK(body_of(app.live_notes(), "early") == "before any group");
  CHECK(app.status().at("pending") == 1);
  const auto no_group = app.run({"sync"});
  CHECK(no_group.exit_code == 1);
  CHECK(no_group.err.find("create-group or join") != std::string::npos);

  const auto bad_id = app.run({"put", std::string(200, 'n'), "x"});
  CHECK(bad_id.exit_code == 1);
  CHECK(bad_id.err.find("at most 128") != std::string::npos);
  const auto missing = app.run({"delete", "nothing-here"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("no note") != std::string::npos);
  CHECK(app.run({"join", "blindsync://join/garbage"}).exit_code == 1);
  CHECK(app.run({"sync", "--for", "soon"}).exit_code == 2);
}
