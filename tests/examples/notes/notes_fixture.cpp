#include "notes_fixture.h"

#include <catch2/catch.hpp>

namespace notes_test {

namespace {

std::string describe(const std::vector<std::string>& args, const RunResult& result) {
  std::string text = "blindsync-notes";
  for (const auto& arg : args) text += " " + arg;
  text += "\nexit " + std::to_string(result.exit_code) + (result.timed_out ? " (timed out)" : "") +
          "\nstdout:\n" + result.out + "\nstderr:\n" + result.err;
  return text;
}

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

nlohmann::json parse_json(const std::string& text) {
  auto value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  INFO(text);
  REQUIRE_FALSE(value.is_discarded());
  return value;
}

}  // namespace

RunResult NotesApp::run(const std::vector<std::string>& args, const std::vector<EnvChange>& env,
                        std::chrono::seconds timeout) const {
  std::vector<std::string> full{"--home", home_};
  full.insert(full.end(), args.begin(), args.end());
  return blindsync::test::run_process(BLINDSYNC_NOTES_BIN, full, "", timeout, env);
}

std::string NotesApp::ok(const std::vector<std::string>& args, const std::vector<EnvChange>& env) const {
  const auto result = run(args, env);
  INFO(describe(args, result));
  REQUIRE(result.exit_code == 0);
  return result.out;
}

void NotesApp::init(const std::string& name) {
  device_ = trim(ok({"init", name}));
  REQUIRE(device_.size() == 64);
}

std::string NotesApp::create_group(const std::string& relay_url) const {
  const std::string invite = trim(ok({"create-group", relay_url}));
  REQUIRE(invite.rfind("blindsync://join/", 0) == 0);
  return invite;
}

void NotesApp::join(const std::string& invite) const { (void)ok({"join", invite}); }

void NotesApp::put(const std::string& id, const std::string& text, const std::vector<EnvChange>& env) const {
  (void)ok({"put", id, "--", text}, env);
}

nlohmann::json NotesApp::list() const { return parse_json(ok({"list", "--json", "--all"})); }
nlohmann::json NotesApp::live_notes() const { return parse_json(ok({"list", "--json"})); }
nlohmann::json NotesApp::status() const { return parse_json(ok({"status", "--json"})); }

nlohmann::json NotesApp::sync() const {
  // A short quiet period: the test loops until convergence anyway, so a sync that stops early
  // only costs another round.
  return parse_json(ok({"sync", "--until-idle", "--timeout", "60", "--quiet-ms", "500", "--json"}));
}

nlohmann::json find_note(const nlohmann::json& list, const std::string& id) {
  for (const auto& note : list) {
    if (note.at("id") == id) return note;
  }
  return nlohmann::json();
}

nlohmann::json sync_until_converged(const NotesApp& a, const NotesApp& b,
                                    const std::function<bool(const nlohmann::json&)>& done, int rounds) {
  nlohmann::json list_a;
  nlohmann::json list_b;
  for (int round = 0; round < rounds; ++round) {
    (void)a.sync();
    (void)b.sync();
    (void)a.sync();
    list_a = a.list();
    list_b = b.list();
    if (list_a == list_b && done(list_a)) return list_a;
  }
  INFO("A: " << list_a.dump(2));
  INFO("B: " << list_b.dump(2));
  FAIL("the two devices did not converge within " << rounds << " sync rounds");
  return {};
}

}  // namespace notes_test
