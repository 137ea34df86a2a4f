// Operations, through a real blindsync-relay process on loopback: /metrics and /health counts after
// a known sequence, the separate metrics port, structured logs without payloads or tokens, the
// SIGTERM drain, idle WebSocket timeouts, TLS, --print-config and refused configurations.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "blindsync/auth/identity.h"
#include "http_get.h"
#include "ops_relay_process.h"
#include "ops_tls.h"
#include "ops_ws_client.h"
#include "thread_priority.h"

namespace {

using namespace blindsync;
using namespace blindsync::test;

// Every blob of the client's group, pulled page by page from cursor 0 (at most 100 pages).
std::vector<PulledBlob> pull_everything(ProtocolClient& reader) {
  std::vector<PulledBlob> blobs;
  Cursor after = 0;
  for (int page_no = 0; page_no < 100; ++page_no) {
    auto page = reader.pull(after);
    REQUIRE(page.has_value());
    for (auto& blob : page->blobs) {
      after = blob.cursor;
      blobs.push_back(std::move(blob));
    }
    if (!page->has_more) break;
  }
  return blobs;
}

constexpr int kBoundedRounds = 200;  // x 50 ms: how long "eventually" may take before a test fails

std::map<std::string, std::string> parse_metrics(const std::string& text) {
  std::map<std::string, std::string> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    if (space != std::string::npos) samples[line.substr(0, space)] = line.substr(space + 1);
  }
  return samples;
}

std::map<std::string, std::string> scrape(std::uint16_t port) {
  const auto response = http_get("127.0.0.1", port, "/metrics");
  REQUIRE(response.has_value());
  REQUIRE(response->status == 200);
  return parse_metrics(response->body);
}

std::uint64_t value(const std::map<std::string, std::string>& samples, const std::string& name) {
  const auto it = samples.find(name);
  INFO("metric " << name);
  REQUIRE(it != samples.end());
  return std::stoull(it->second);
}

nlohmann::json health(std::uint16_t port) {
  const auto response = http_get("127.0.0.1", port, "/health");
  REQUIRE(response.has_value());
  REQUIRE(response->status == 200);
  return nlohmann::json::parse(response->body);
}

std::string random_marker(const std::string& prefix) {
  std::random_device device;
  std::ostringstream out;
  out << prefix << std::hex << device() << device() << device();
  return out.str();
}

Bytes bytes_of(const std::string& text) { return Bytes(text.begin(), text.end()); }

std::string hex_of(const std::string& text) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::vector<std::string> plain_args(const OpsTempDir& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--listen", "127.0.0.1:0", "--data", dir.str("data"), "--durability", "normal"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST_CASE("a known sequence of pushes and pulls shows in /metrics and /health with exact counts",
          "[ops][process][metrics]") {
  OpsTempDir dir;
  auto relay = OpsRelay::start(plain_args(dir));
  const auto group = auth::SigningKey::generate();
  const auto device_a = auth::SigningKey::generate();
  const auto device_b = auth::SigningKey::generate();
  auto a = connect_client(relay->port);
  auto b = connect_client(relay->port);
  REQUIRE(a->handshake(device_a, group).has_value());
  REQUIRE(b->handshake(device_b, group).has_value());

  for (std::uint32_t i = 1; i <= 3; ++i) {
    auto ack = a->push(numbered_blob(i), Bytes(100, static_cast<std::uint8_t>(i)));
    REQUIRE(ack.has_value());
    CHECK(ack->cursor == i);
  }
  for (int i = 0; i < 3; ++i) {
    auto notify = b->receive();
    REQUIRE(notify.has_value());
    CHECK(std::holds_alternative<Notify>(notify->message));
  }
  auto page = b->pull(0);
  REQUIRE(page.has_value());
  CHECK(page->blobs.size() == 3);

  // The relay counts a sent frame when its write completes, which may be a moment after the
  // client has it: wait (bounded) for the byte counter to catch up, then compare exactly.
  const std::uint64_t expected_in = a->bytes_sent() + b->bytes_sent();
  const std::uint64_t expected_out = a->bytes_received() + b->bytes_received();
  std::map<std::string, std::string> m;
  int scrapes = 0;
  for (int round = 0; round < kBoundedRounds; ++round) {
    m = scrape(relay->port);
    ++scrapes;
    if (value(m, "blindsync_bytes_sent_total") >= expected_out) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(value(m, "blindsync_bytes_received_total") == expected_in);
  CHECK(value(m, "blindsync_bytes_sent_total") == expected_out);
  CHECK(value(m, "blindsync_connections_total") == 2 + static_cast<std::uint64_t>(scrapes));  // + each scrape
  CHECK(value(m, "blindsync_sessions_active") == 2);
  CHECK(value(m, "blindsync_groups_active") == 1);
  CHECK(value(m, "blindsync_store_up") == 1);
  CHECK(value(m, "blindsync_blobs_buffered") == 3);
  CHECK(value(m, "blindsync_bytes_buffered") == 300);
  // Counted by the hub.
  CHECK(value(m, "blindsync_sessions_total") == 2);
  CHECK(value(m, "blindsync_pushes_total") == 3);
  CHECK(value(m, "blindsync_push_duplicates_total") == 0);
  CHECK(value(m, "blindsync_pulls_total") == 1);
  CHECK(value(m, "blindsync_notifies_total") == 3);
  CHECK(value(m, "blindsync_push_commit_seconds_count") == 3);

  const auto h = health(relay->port);
  CHECK(h.at("status") == "ok");
  CHECK(h.at("relay_id") == relay->relay_id_hex);
  CHECK_FALSE(h.at("version").get<std::string>().empty());
  CHECK(h.at("uptime_seconds").is_number_unsigned());
  CHECK(h.at("sessions") == 2);
  CHECK(h.at("groups") == 1);
  CHECK(h.at("blobs_buffered") == 3);
  CHECK(h.at("bytes_buffered") == 300);

  CHECK(relay->stop(SIGTERM) == 0);
}

TEST_CASE("metrics_listen serves /metrics and /health only, and the main port stops serving /metrics",
          "[ops][process][metrics]") {
  OpsTempDir dir;
  auto relay = OpsRelay::start(plain_args(dir, {"--metrics-listen", "127.0.0.1:0"}));
  REQUIRE(relay->metrics_port != 0);
  REQUIRE(relay->metrics_port != relay->port);

  const auto metrics = http_get("127.0.0.1", relay->metrics_port, "/metrics");
  REQUIRE(metrics.has_value());
  CHECK(metrics->status == 200);
  CHECK(metrics->body.find("# TYPE blindsync_pushes_total counter") != std::string::npos);
  const auto metrics_health = http_get("127.0.0.1", relay->metrics_port, "/health");
  REQUIRE(metrics_health.has_value());
  CHECK(metrics_health->status == 200);
  CHECK(nlohmann::json::parse(metrics_health->body).at("relay_id") == relay->relay_id_hex);
  const auto sync_on_metrics = http_get("127.0.0.1", relay->metrics_port, "/v1/sync");
  REQUIRE(sync_on_metrics.has_value());
  CHECK(sync_on_metrics->status == 404);
  std::string error;
  CHECK(RawWebSocket::connect(relay->metrics_port, &error) == nullptr);  // no WebSocket there

  const auto main_metrics = http_get("127.0.0.1", relay->port, "/metrics");
  REQUIRE(main_metrics.has_value());
  CHECK(main_metrics->status == 404);
  CHECK(health(relay->port).at("status") == "ok");
  CHECK(relay->stop(SIGTERM) == 0);
}

TEST_CASE("logs are key=value lines with a UTC timestamp and a level, without payloads or whole tokens",
          "[ops][process][logs]") {
  OpsTempDir dir;
  const std::string token = random_marker("TOKEN");
  const std::string wrong_token = random_marker("WRONGTOKEN");
  const std::string marker = random_marker("PAYLOADMARKER");
  auto relay = OpsRelay::start(plain_args(dir, {"--log-level", "trace", "--access", "token"}),
                               {{"BLINDSYNC_RELAY_ACCESS_TOKENS", token}});
  const auto group = auth::SigningKey::generate();

  auto client = connect_client(relay->port);
  REQUIRE(client->handshake(auth::SigningKey::generate(), group, token).has_value());
  REQUIRE(client->push(numbered_blob(1), bytes_of(marker)).has_value());
  REQUIRE(client->push(numbered_blob(2), bytes_of(marker + marker)).has_value());
  // Garbage carrying the marker, and a HELLO with a wrong token carrying another.
  auto hostile = connect_client(relay->port);
  hostile->socket().send_binary(ByteView(reinterpret_cast<const std::uint8_t*>(marker.data()), marker.size()));
  (void)hostile->receive();
  auto intruder = connect_client(relay->port);
  (void)intruder->handshake(auth::SigningKey::generate(), group, wrong_token);

  REQUIRE(relay->stop(SIGTERM) == 0);
  const std::string log = relay->process->stderr_text();
  INFO(log);
  CHECK_FALSE(log.empty());
  for (const std::string& secret : {marker, hex_of(marker), token, wrong_token}) {
    CHECK(log.find(secret) == std::string::npos);
  }
  static const std::regex kLine(
      R"(^ts=\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z level=(trace|debug|info|warning|error|critical) \S.*$)");
  std::istringstream lines(log);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    ++count;
    INFO(line);
    CHECK(std::regex_match(line, kLine));
  }
  CHECK(count > 0);
  CHECK(log.find("relay started relay_id=" + relay->relay_id_hex) != std::string::npos);
  CHECK(log.find("access=token") != std::string::npos);
}

// Name and niceness of each of a process's threads, from /proc/PID/task/TID/stat: the name is
// field 2 (what `top -H`, `ps -L`, perf and blindsync-bench show), the niceness field 19, counted
// after the ')' that closes the name, as a name may hold spaces or parentheses.
struct ThreadInfo {
  std::string name;
  int nice = 0;
};

std::vector<ThreadInfo> process_threads(pid_t pid) {
  std::vector<ThreadInfo> threads;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream stat(task.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto open = line.find('(');
    const auto close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string field;
    for (int number = 3; number <= 19 && rest >> field; ++number) {
      if (number == 19) threads.push_back({line.substr(open + 1, close - open - 1), std::stoi(field)});
    }
  }
  return threads;
}

std::multiset<std::string> thread_names(pid_t pid) {
  std::multiset<std::string> names;
  for (const ThreadInfo& thread : process_threads(pid)) names.insert(thread.name);
  return names;
}

std::map<std::string, int> thread_nice_values(pid_t pid) {
  std::map<std::string, int> nice;
  for (const ThreadInfo& thread : process_threads(pid)) nice[thread.name] = thread.nice;
  return nice;
}

TEST_CASE("the relay names its threads: one per I/O thread, the store writer, applier and WAL checkpointer",
          "[ops][process]") {
  OpsTempDir dir;
  auto relay = OpsRelay::start(plain_args(dir, {"--threads", "3"}));
  const std::vector<std::string> expected{"relay-io-0",   "relay-io-1",    "relay-io-2",
                                          "store-writer", "store-applier", "wal-checkpoint"};
  // Each thread names itself once it runs, which may be just after the listening line.
  std::multiset<std::string> names;
  for (int round = 0; round < kBoundedRounds; ++round) {
    names = thread_names(relay->process->pid());
    if (std::all_of(expected.begin(), expected.end(), [&](const auto& name) { return names.count(name) > 0; })) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string all;
  for (const auto& name : names) all += name + " ";
  INFO("threads: " << all);
  for (const std::string& name : expected) CHECK(names.count(name) == 1);
  CHECK(names.count("relay-io-3") == 0);
  REQUIRE(relay->stop(SIGTERM) == 0);
}

TEST_CASE("the applier and the WAL checkpointer run at a lower priority than the ack path's threads",
          "[ops][process]") {
  OpsTempDir dir;
  auto relay = OpsRelay::start(plain_args(dir));
  const pid_t pid = relay->process->pid();
  // A background thread lowers its priority right after naming itself; wait, bounded, for both.
  std::map<std::string, int> nice;
  const auto background_of = [](int base) { return std::min(base + relay::kBackgroundNice, 19); };  // 19: the floor
  const auto settled = [&] {
    for (const char* name : {"store-writer", "store-applier", "wal-checkpoint"}) {
      if (nice.count(name) == 0) return false;
    }
    const int background = background_of(nice["store-writer"]);
    return nice["store-applier"] == background && nice["wal-checkpoint"] == background;
  };
  for (int round = 0; round < kBoundedRounds; ++round) {
    nice = thread_nice_values(pid);
    if (settled()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string all;
  for (const auto& [name, value] : nice) all += name + "=" + std::to_string(value) + " ";
  INFO("nice: " << all);
  REQUIRE(nice.count("store-writer") == 1);
  const int base = nice["store-writer"];  // the relay's own niceness (the test runner's, inherited)
  CHECK(nice["relay-io-0"] == base);
  CHECK(nice["relay-io-1"] == base);
  const int background = background_of(base);  // equal to base only for a relay started at nice 19
  CHECK(nice["store-applier"] == background);
  CHECK(nice["wal-checkpoint"] == background);
  REQUIRE(relay->stop(SIGTERM) == 0);
}

TEST_CASE("SIGTERM drains: pushes acked before the signal are all there after a restart, exit 0",
          "[ops][process][shutdown]") {
  OpsTempDir dir;
  std::vector<std::string> args{"--listen", "127.0.0.1:0", "--data", dir.str("data")};  // durability full
  auto relay = OpsRelay::start(args);
  const auto group = auth::SigningKey::generate();
  const auto device = auth::SigningKey::generate();
  auto client = connect_client(relay->port);
  REQUIRE(client->handshake(device, group).has_value());

  std::set<std::string> acked;
  for (std::uint32_t i = 1; i <= 3; ++i) {
    auto ack = client->push(numbered_blob(i), Bytes(64, 1));
    REQUIRE(ack.has_value());
    acked.insert(ack->blob_id.to_hex());
  }
  // In flight when the signal arrives: each is either acked (and then must survive) or not.
  constexpr std::uint32_t kInFlight = 40;
  for (std::uint32_t i = 100; i < 100 + kInFlight; ++i) client->send_push(numbered_blob(i), Bytes(64, 2));
  relay->process->send_signal(SIGTERM);

  bool saw_bye = false;
  std::uint16_t bye_code = 0;
  for (int i = 0; i < 1000; ++i) {
    auto frame = client->receive();
    if (!frame) break;  // closed (or, failing the test below, timed out)
    if (const auto* ack = std::get_if<PushAck>(&frame->message)) acked.insert(ack->blob_id.to_hex());
    if (const auto* bye = std::get_if<Bye>(&frame->message)) {
      saw_bye = true;
      bye_code = bye->code;
    }
  }
  const auto exit_code = relay->process->wait(std::chrono::seconds(30));
  REQUIRE(exit_code.has_value());
  INFO("relay stderr: " << relay->process->stderr_text());
  CHECK(*exit_code == 0);
  CHECK(saw_bye);
  CHECK(bye_code == static_cast<std::uint16_t>(Code::kRelayShuttingDown));
  REQUIRE(client->close_code().has_value());
  CHECK(*client->close_code() == 4201);
  CHECK(acked.size() >= 3);

  auto restarted = OpsRelay::start(args);
  CHECK(restarted->relay_id_hex == relay->relay_id_hex);  // same relay.key
  auto reader = connect_client(restarted->port);
  REQUIRE(reader->handshake(auth::SigningKey::generate(), group).has_value());
  std::set<std::string> stored;
  for (const auto& blob : pull_everything(*reader)) stored.insert(blob.blob_id.to_hex());
  for (const auto& id : acked) {
    INFO("acked blob " << id);
    CHECK(stored.count(id) == 1);
  }
  CHECK(restarted->stop(SIGINT) == 0);  // SIGINT drains the same way
}

TEST_CASE("SIGKILL after acks: every acknowledged push is there after a restart, with its cursor, once",
          "[ops][process][crash]") {
  const std::string durability = GENERATE(std::string("full"), std::string("normal"));
  INFO("durability " << durability);
  OpsTempDir dir;
  std::vector<std::string> args{"--listen", "127.0.0.1:0", "--data", dir.str("data"), "--durability", durability};
  auto relay = OpsRelay::start(args, {{"BLINDSYNC_RELAY_DEVICE_MESSAGES_PER_MINUTE", "100000"}});
  const auto group = auth::SigningKey::generate();
  auto client = connect_client(relay->port);
  REQUIRE(client->handshake(auth::SigningKey::generate(), group).has_value());

  // Pipelined, so the last acks arrive while their blobs are still only in the push journal.
  constexpr std::uint32_t kPushes = 400;
  for (std::uint32_t i = 1; i <= kPushes; ++i) client->send_push(numbered_blob(i), Bytes(200, static_cast<std::uint8_t>(i)));
  std::map<std::string, Cursor> acked;
  while (acked.size() < kPushes) {
    auto frame = client->receive();
    REQUIRE(frame.has_value());
    const auto* ack = std::get_if<PushAck>(&frame->message);
    REQUIRE(ack != nullptr);
    acked[ack->blob_id.to_hex()] = ack->cursor;
  }
  relay->process->send_signal(SIGKILL);
  REQUIRE(relay->process->wait(std::chrono::seconds(30)).has_value());
  std::uintmax_t segment_bytes = 0;  // the push journal's segments, which hold every payload
  for (const auto& entry : std::filesystem::directory_iterator(dir.str("data"))) {
    if (entry.path().filename().string().rfind("relay.db-seg-", 0) == 0) segment_bytes += entry.file_size();
  }
  INFO("push journal segments left by the crash: " << segment_bytes << " bytes");

  auto restarted = OpsRelay::start(args);
  auto reader = connect_client(restarted->port);
  REQUIRE(reader->handshake(auth::SigningKey::generate(), group).has_value());
  std::map<std::string, Cursor> stored;
  const auto pulled = pull_everything(*reader);
  for (std::size_t i = 0; i < pulled.size(); ++i) {
    CHECK(pulled[i].cursor == i + 1);  // gap-free
    stored[pulled[i].blob_id.to_hex()] = pulled[i].cursor;
  }
  CHECK(pulled.size() == kPushes);  // nothing twice
  CHECK(stored == acked);    // every acked blob, at the cursor its ack named
  auto next = reader->push(numbered_blob(kPushes + 1), Bytes(8, 1));
  REQUIRE(next.has_value());
  CHECK(next->cursor == kPushes + 1);
  CHECK(restarted->stop(SIGTERM) == 0);
}

TEST_CASE("the relay binary's --backup-to copies a running relay's store, a relay started on the copy serves every blob acknowledged "
          "before it, and the original never stopped",
          "[ops][process][backup]") {
  OpsTempDir dir;
  std::vector<std::string> args{"--listen", "127.0.0.1:0", "--data", dir.str("data")};
  auto relay = OpsRelay::start(args, {{"BLINDSYNC_RELAY_DEVICE_MESSAGES_PER_MINUTE", "100000"}});
  const auto group = auth::SigningKey::generate();
  auto client = connect_client(relay->port);
  REQUIRE(client->handshake(auth::SigningKey::generate(), group).has_value());
  std::map<std::string, Cursor> acked;
  const auto push_acked = [&](std::uint32_t from, std::uint32_t count) {
    for (std::uint32_t i = from; i < from + count; ++i) {
      client->send_push(numbered_blob(i), Bytes(2000, static_cast<std::uint8_t>(i)));
    }
    for (std::uint32_t n = 0; n < count; ++n) {
      auto frame = client->receive();
      REQUIRE(frame.has_value());
      const auto* ack = std::get_if<PushAck>(&frame->message);
      REQUIRE(ack != nullptr);
      acked[ack->blob_id.to_hex()] = ack->cursor;
    }
  };
  push_acked(1, 300);
  const auto before_backup = acked;

  const RunResult backup = run_relay({"--data", dir.str("data"), "--backup-to", dir.str("backup")});
  INFO("backup stdout: " << backup.out << " stderr: " << backup.err);
  REQUIRE(backup.exit_code == 0);
  CHECK(backup.out.rfind("backup written to " + dir.str("backup") + ": relay.db and ", 0) == 0);
  push_acked(1000, 50);  // the original relay serves on; these are newer than the copy
  CHECK(relay->stop(SIGKILL) != 0);

  const RunResult again = run_relay({"--data", dir.str("data"), "--backup-to", dir.str("backup")});
  CHECK(again.exit_code == 1);  // never into a directory that holds something
  CHECK(again.err.find("is not empty") != std::string::npos);

  // Restore: the copy becomes a data directory (the relay key is backed up on its own).
  std::filesystem::copy_file(dir.str("data") + "/relay.key", dir.str("backup") + "/relay.key");
  auto restored = OpsRelay::start({"--listen", "127.0.0.1:0", "--data", dir.str("backup")});
  CHECK(restored->relay_id_hex == relay->relay_id_hex);
  auto reader = connect_client(restored->port);
  REQUIRE(reader->handshake(auth::SigningKey::generate(), group).has_value());
  std::map<std::string, Cursor> stored;
  const auto pulled = pull_everything(*reader);
  for (std::size_t i = 0; i < pulled.size(); ++i) {
    CHECK(pulled[i].cursor == i + 1);  // gap-free
    CHECK(pulled[i].payload.size() == 2000);
    stored[pulled[i].blob_id.to_hex()] = pulled[i].cursor;
  }
  for (const auto& [id, cursor] : before_backup) {
    INFO("blob acknowledged before the backup: " << id);
    REQUIRE(stored.count(id) == 1);
    CHECK(stored[id] == cursor);
  }
  CHECK(restored->stop(SIGTERM) == 0);
}

TEST_CASE("a WebSocket that stops answering pings is closed after idle_timeout_ms, one that answers stays",
          "[ops][process][idle]") {
  OpsTempDir dir;
  auto relay = OpsRelay::start(plain_args(dir, {"--idle-timeout-ms", "1000", "--hello-timeout-ms", "600000"}));
  const auto group = auth::SigningKey::generate();
  auto silent = connect_client(relay->port);
  REQUIRE(silent->handshake(auth::SigningKey::generate(), group).has_value());
  auto lively = connect_client(relay->port);
  REQUIRE(lively->handshake(auth::SigningKey::generate(), group).has_value());
  // A raw socket that upgrades and then never sends a byte (not even a HELLO).
  std::string error;
  auto mute = RawWebSocket::connect(relay->port, &error);
  REQUIRE(mute != nullptr);

  // The answering client runs on its own thread for the whole test: a client that stopped
  // reading while the test watched the others would itself look idle to the relay.
  std::atomic<bool> stop_answering{false};
  int lively_pings = 0;
  bool lively_ended = false;
  std::thread answering([&] {
    for (int i = 0; i < 100'000 && !stop_answering.load(); ++i) {
      const WsEvent event = lively->socket().next(std::chrono::milliseconds(100), /*answer_pings=*/true);
      if (event.kind == WsEvent::Kind::kPing) ++lively_pings;
      if (event.kind == WsEvent::Kind::kEnd || event.kind == WsEvent::Kind::kClose) {
        lively_ended = true;
        return;
      }
    }
  });

  // Reads without ever answering a ping: how many pings came before the relay dropped us.
  const auto watch_unanswered = [](RawWebSocket& ws) {
    std::pair<int, bool> seen{0, false};  // pings, ended
    for (int i = 0; i < 100; ++i) {
      const WsEvent event = ws.next(std::chrono::seconds(20), /*answer_pings=*/false);
      if (event.kind == WsEvent::Kind::kPing) ++seen.first;
      if (event.kind == WsEvent::Kind::kEnd || event.kind == WsEvent::Kind::kClose) {
        seen.second = true;
        break;
      }
      if (event.kind == WsEvent::Kind::kTimeout) break;
    }
    return seen;
  };
  const auto [silent_pings, silent_ended] = watch_unanswered(silent->socket());
  CHECK(silent_pings >= 1);  // pinged at half the timeout before being dropped
  CHECK(silent_ended);
  const auto [mute_pings, mute_ended] = watch_unanswered(*mute);
  CHECK(mute_pings >= 1);
  CHECK(mute_ended);

  // The hub forgot the dropped session; the answering one is still registered.
  std::uint64_t sessions = 99;
  for (int round = 0; round < kBoundedRounds && sessions != 1; ++round) {
    sessions = health(relay->port).at("sessions").get<std::uint64_t>();
    if (sessions != 1) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(sessions == 1);
  // Both dropped connections lasted at least one full idle period, in which the answering
  // client was pinged too and kept its session by answering.
  stop_answering = true;
  answering.join();
  CHECK(lively_pings >= 1);
  CHECK_FALSE(lively_ended);
  CHECK(lively->push(numbered_blob(1), Bytes(8, 1)).has_value());
  CHECK(relay->stop(SIGTERM) == 0);
}

TEST_CASE("with tls_cert and tls_key the port speaks only TLS: https /health and a wss:// URL", "[ops][process][tls]") {
  OpsTempDir dir;
  const auto cert = make_self_signed_cert(dir.path());
  auto relay = OpsRelay::start(plain_args(dir, {"--tls-cert", cert.cert.string(), "--tls-key", cert.key.string(),
                                                "--metrics-listen", "127.0.0.1:0"}));
  CHECK(relay->tls);
  CHECK(relay->url.rfind("wss://127.0.0.1:", 0) == 0);

  const auto over_tls = https_get(relay->port, "/health");
  REQUIRE(over_tls.has_value());
  CHECK(over_tls->status == 200);
  CHECK(nlohmann::json::parse(over_tls->body).at("relay_id") == relay->relay_id_hex);
  const auto upgrade_required = https_get(relay->port, "/v1/sync");
  REQUIRE(upgrade_required.has_value());
  CHECK(upgrade_required->status == 426);

  const auto plain = http_get("127.0.0.1", relay->port, "/health");
  CHECK_FALSE((plain.has_value() && plain->status == 200));
  // The metrics port stays plain HTTP.
  const auto metrics = http_get("127.0.0.1", relay->metrics_port, "/metrics");
  REQUIRE(metrics.has_value());
  CHECK(metrics->status == 200);
  CHECK(relay->stop(SIGTERM) == 0);
}

TEST_CASE("a TLS key that does not belong to the certificate stops the start with exit 2 naming tls_key",
          "[ops][process][tls][hostile]") {
  OpsTempDir dir;
  const auto one = make_self_signed_cert(dir.path(), "one");
  const auto two = make_self_signed_cert(dir.path(), "two");
  const RunResult mismatched =
      run_relay(plain_args(dir, {"--tls-cert", one.cert.string(), "--tls-key", two.key.string()}));
  CHECK(mismatched.exit_code == 2);
  CHECK(mismatched.err.find("tls_key") != std::string::npos);
  CHECK(mismatched.out.empty());  // never announced a listening port

  write_text_file(dir.path() / "garbage.pem", "not a certificate\n");
  const RunResult garbage =
      run_relay(plain_args(dir, {"--tls-cert", dir.str("garbage.pem"), "--tls-key", one.key.string()}));
  CHECK(garbage.exit_code == 2);
  CHECK(garbage.err.find("tls_cert") != std::string::npos);
}

TEST_CASE("the relay binary prints its effective config and refuses invalid settings before starting",
          "[ops][process][config]") {
  OpsTempDir dir;
  const std::string token = random_marker("PRINTTOKEN");
  write_text_file(dir.path() / "relay.toml", "max_sessions = 77\naccess = \"token\"\n");
  const RunResult printed =
      run_relay({"--print-config", "--threads", "3"},
                {{"BLINDSYNC_RELAY_CONFIG", dir.str("relay.toml")}, {"BLINDSYNC_RELAY_ACCESS_TOKENS", token}});
  INFO(printed.err);
  CHECK(printed.exit_code == 0);
  CHECK(printed.out.find("max_sessions = 77\n") != std::string::npos);
  CHECK(printed.out.find("threads = 3\n") != std::string::npos);
  CHECK(printed.out.find("access = \"token\"\n") != std::string::npos);
  CHECK(printed.out.find(token) == std::string::npos);
  CHECK(printed.out.find("(redacted)") != std::string::npos);

  const RunResult bad_env = run_relay(plain_args(dir), {{"BLINDSYNC_RELAY_MAX_SESSIONS", "0"}});
  CHECK(bad_env.exit_code == 2);
  CHECK(bad_env.err.find("max_sessions") != std::string::npos);
  CHECK(bad_env.out.empty());
  write_text_file(dir.path() / "typo.toml", "max_sesions = 5\n");
  const RunResult bad_file = run_relay(plain_args(dir, {"--config", dir.str("typo.toml")}));
  CHECK(bad_file.exit_code == 2);
  CHECK(bad_file.err.find("max_sesions") != std::string::npos);
}

}  // namespace
