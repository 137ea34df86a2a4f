// AsyncClient against real blindsync-relay processes on loopback, with real crashes: a probe
// process (async_probe) killed with SIGKILL right after push() returned, relays stopped, killed,
// restarted on the same port and data directory, and a relay database replaced.
// Every wait is bounded; nothing asserts on timing.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "async_test_support.h"
#include "blindsync/client/async_client.h"
#include "blindsync/client/client.h"
#include "blindsync/transport_ws/ws_transport.h"
#include "process.h"
#include "relay_process.h"

using namespace blindsync;
using blindsync::testing::AsyncTempDir;
using blindsync::test::Process;
using blindsync::testing::EventLog;
using blindsync::testing::get_within;
using blindsync::test::RelayProcess;
using blindsync::testing::text_of;

namespace {

const std::string kRelayBinary = BLINDSYNC_RELAY_BINARY;
const std::string kProbeBinary = BLINDSYNC_ASYNC_PROBE;
constexpr auto kWait = std::chrono::seconds(60);

TransportFactory ws_factory() {
  return
      [](const std::string& url, const TransportOptions& options) { return connect_websocket(url, options); };
}

AsyncClientOptions ws_options(EventLog& log,
                              std::chrono::seconds retry_limit = AsyncClientOptions{}.outbox_retry_limit) {
  AsyncClientOptions options;
  options.outbox_retry_limit = retry_limit;
  options.transport = ws_factory();
  options.request_timeout = std::chrono::milliseconds(5000);
  options.backoff = BackoffPolicy{std::chrono::milliseconds(20), std::chrono::milliseconds(200),
                                  std::chrono::milliseconds(20)};
  options.notify = log.notify_hook();
  return options;
}

std::unique_ptr<AsyncClient> open_ws(
    const std::string& home, EventLog& log,
    std::chrono::seconds retry_limit = AsyncClientOptions{}.outbox_retry_limit) {
  auto client = AsyncClient::open(home, ws_options(log, retry_limit));
  INFO((client ? std::string() : client.error().to_string()));
  REQUIRE(client.has_value());
  return std::move(*client);
}

bool all_connected(AsyncClient& client, const GroupId& group) {
  for (const auto& g : client.status()) {
    if (g.group.group_id != group) continue;
    if (g.relays.empty()) return false;
    for (const auto& relay : g.relays) {
      if (relay.state != ConnectionState::kConnected) return false;
    }
    return true;
  }
  return false;
}

// Two devices: A created the group at the relays, B joined it.
struct Devices {
  AsyncTempDir tmp;
  EventLog a_log;
  EventLog b_log;
  std::unique_ptr<AsyncClient> a;
  std::unique_ptr<AsyncClient> b;
  GroupId group;
  std::string invite;
  std::chrono::seconds a_retry_limit = AsyncClientOptions{}.outbox_retry_limit;  // device A's option

  std::string home_a() const { return tmp.sub("a"); }
  std::string data(const std::string& name) const { return tmp.sub(name); }

  void make_group(const std::vector<std::string>& urls) {
    a = open_ws(home_a(), a_log, a_retry_limit);
    REQUIRE(get_within(a->create_identity("device-a")).has_value());
    auto created = get_within(a->create_group(urls, "process-test"));
    INFO((created ? std::string() : created.error().to_string()));
    REQUIRE(created.has_value());
    group = created->group.group_id;
    invite = created->invite_link;
    b = open_ws(tmp.sub("b"), b_log);
    REQUIRE(get_within(b->create_identity("device-b")).has_value());
    REQUIRE(get_within(b->join_group(invite)).has_value());
  }

  void reopen_a() {
    a.reset();
    a_log.clear();
    a = open_ws(home_a(), a_log, a_retry_limit);
  }
  void reopen_b() {
    b.reset();
    b_log.clear();
    b = open_ws(tmp.sub("b"), b_log);
  }

  // How many times each blob id is stored at the group's primary relay, read by a third device
  // (the synchronous Client) pulling from cursor 0.
  std::map<BlobId, int> stored_at_primary() {
    ClientOptions options;
    options.transport = ws_factory();
    auto c = Client::open(tmp.sub("c"), std::move(options));
    REQUIRE(c.has_value());
    if (!(*c)->identity()) REQUIRE((*c)->create_identity("device-c").has_value());
    if ((*c)->groups().empty()) REQUIRE((*c)->join_group(invite).has_value());
    std::map<BlobId, int> copies;
    PullOptions from_start;
    from_start.after = 0;
    const Status pulled =
        (*c)->pull(group, from_start, [&](const ReceivedBlob& blob) { ++copies[blob.blob_id]; });
    INFO(pulled.to_string());
    REQUIRE(pulled.is_ok());
    return copies;
  }
};

std::unique_ptr<Process> start_probe(const std::vector<std::string>& args) { return Process::start(kProbeBinary, args); }

// The relay these tests run (BLINDSYNC_TEST_RELAY_BINARY may name one built elsewhere).
std::unique_ptr<RelayProcess> start_relay(const std::string& data_dir, std::uint16_t port = 0) {
  return RelayProcess::start_binary(kRelayBinary, data_dir, port, {"--log-level", "warn"}, std::chrono::seconds(60));
}

void run_drain_probe(const std::string& home) {
  auto probe = start_probe({"drain", home});
  const auto line = probe->wait_for_line("drained", kWait);
  INFO("probe stderr: " << probe->stderr_text());
  REQUIRE(line.has_value());
  REQUIRE(probe->wait(kWait) == std::optional<int>(0));
}

const RelayStatus* relay_status(const std::vector<GroupStatus>& all, const GroupId& group,
                                const std::string& url) {
  for (const auto& g : all) {
    if (g.group.group_id != group) continue;
    for (const auto& relay : g.relays) {
      if (relay.url == url) return &relay;
    }
  }
  return nullptr;
}

std::uint64_t outbox_of(AsyncClient& client, const GroupId& group) {
  for (const auto& g : client.status()) {
    if (g.group.group_id == group) return g.outbox;
  }
  return ~std::uint64_t{0};  // no such group: never a real outbox length, so `== 0` cannot pass
}

// Position of the first event of type T at or after `from` in the log, or events.size().
template <typename T>
std::size_t index_of(const EventLog& log, std::size_t from = 0) {
  for (std::size_t i = from; i < log.events.size(); ++i) {
    if (std::holds_alternative<T>(log.events[i])) return i;
  }
  return log.events.size();
}

std::size_t reconnects_to(const EventLog& log, const std::string& url) {
  std::size_t n = 0;
  for (const auto& e : log.all<EventReconnecting>()) n += e.relay_url == url ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("a push whose process was killed before the relay acked it reaches the relay exactly once",
          "[process][durability]") {
  Devices d;
  auto relay = start_relay(d.data("relay"));
  const std::uint16_t port = relay->port();
  d.make_group({relay->url()});
  d.a.reset();  // the probe process is device A from now on

  // The relay is down: push() returns (durable in the outbox), then the process dies.
  relay->stop();
  auto probe = start_probe({"push", d.home_a(), d.group.to_hex(), "1", "crash"});
  const auto pushed = probe->wait_for_line("pushed 0 ", kWait);
  REQUIRE(pushed.has_value());
  probe->send_signal(SIGKILL);
  REQUIRE(probe->wait(kWait).has_value());
  const auto blob_id = BlobId::parse_hex(pushed->substr(std::string("pushed 0 ").size()));
  REQUIRE(blob_id.has_value());

  relay = start_relay(d.data("relay"), port);
  run_drain_probe(d.home_a());

  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return d.b_log.count<EventBlobReceived>() >= 1; }, kWait));
  const auto received = d.b_log.all<EventBlobReceived>();
  REQUIRE(received.size() == 1);
  CHECK(received[0].blob.blob_id == *blob_id);
  CHECK(text_of(received[0].blob.data) == "crash-0");
  const auto copies = d.stored_at_primary();
  CHECK(copies.size() == 1);
  CHECK(copies.count(*blob_id) == 1);
  CHECK(copies.at(*blob_id) == 1);
}

TEST_CASE("a process killed in the middle of a burst of pushes loses none and duplicates none",
          "[process][durability]") {
  Devices d;
  auto relay = start_relay(d.data("relay"));
  d.make_group({relay->url()});
  d.a.reset();
  constexpr int kCount = 30;
  auto probe = start_probe({"push", d.home_a(), d.group.to_hex(), std::to_string(kCount), "burst"});
  std::vector<BlobId> ids;
  for (int i = 0; i < kCount; ++i) {
    const auto line = probe->wait_for_line("pushed " + std::to_string(i) + " ", kWait);
    REQUIRE(line.has_value());
    auto id = BlobId::parse_hex(line->substr(line->rfind(' ') + 1));
    REQUIRE(id.has_value());
    ids.push_back(*id);
  }
  // Killed while acks are still arriving (some pushes acked, some in flight, some not sent).
  probe->send_signal(SIGKILL);
  REQUIRE(probe->wait(kWait).has_value());
  run_drain_probe(d.home_a());

  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return d.b_log.count<EventBlobReceived>() >= kCount; }, kWait));
  std::vector<std::string> expected;
  for (int i = 0; i < kCount; ++i) expected.push_back("burst-" + std::to_string(i));
  CHECK(d.b_log.received_texts() == expected);
  const auto copies = d.stored_at_primary();
  CHECK(copies.size() == static_cast<std::size_t>(kCount));
  for (const auto& id : ids) {
    REQUIRE(copies.count(id) == 1);
    CHECK(copies.at(id) == 1);
  }
}

TEST_CASE("100 blobs pushed while the relay is down all arrive once, in order, after it restarts",
          "[process][reconnect]") {
  Devices d;
  auto relay = start_relay(d.data("relay"));
  const std::uint16_t port = relay->port();
  d.make_group({relay->url()});
  REQUIRE(d.a_log.poll_until(
      *d.a, [&] { return all_connected(*d.a, d.group); }, kWait));
  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return all_connected(*d.b, d.group); }, kWait));

  relay->stop();
  constexpr int kCount = 100;
  std::vector<std::string> expected;
  for (int i = 0; i < kCount; ++i) {
    expected.push_back("offline-" + std::to_string(i));
    auto pushed = d.a->push(d.group, as_bytes(expected.back()));
    REQUIRE(pushed.has_value());
  }
  relay = start_relay(d.data("relay"), port);

  REQUIRE(d.a_log.poll_until(
      *d.a, [&] { return d.a_log.pushed_ids().size() == kCount && d.a_log.outbox() == 0; }, kWait));
  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return d.b_log.count<EventBlobReceived>() >= kCount; }, kWait));
  CHECK(d.b_log.received_texts() == expected);
  CHECK(d.b_log.count<EventReconnecting>() >= 1);
  const auto copies = d.stored_at_primary();
  CHECK(copies.size() == static_cast<std::size_t>(kCount));
}

TEST_CASE("with two relays, one killed mid-run, pushes complete and the other device gets each blob once",
          "[process][multi-relay]") {
  Devices d;
  auto relay1 = start_relay(d.data("relay1"));
  auto relay2 = start_relay(d.data("relay2"));
  const std::uint16_t port2 = relay2->port();
  d.make_group({relay1->url(), relay2->url()});
  REQUIRE(d.a_log.poll_until(
      *d.a, [&] { return all_connected(*d.a, d.group); }, kWait));
  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return all_connected(*d.b, d.group); }, kWait));

  constexpr int kCount = 30;
  std::vector<std::string> expected;
  for (int i = 0; i < kCount; ++i) {
    if (i == 10) relay2->kill();
    expected.push_back("multi-" + std::to_string(i));
    REQUIRE(d.a->push(d.group, as_bytes(expected.back())).has_value());
  }
  REQUIRE(d.a_log.poll_until(
      *d.a, [&] { return d.a_log.pushed_ids().size() == kCount; }, kWait));
  CHECK(d.a_log.count<EventBlobPushed>() == static_cast<std::size_t>(kCount));
  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return d.b_log.count<EventBlobReceived>() >= kCount; }, kWait));
  std::multiset<std::string> texts;
  for (const auto& text : d.b_log.received_texts()) texts.insert(text);
  CHECK(texts == std::multiset<std::string>(expected.begin(), expected.end()));

  // The killed relay comes back: A's outbox drains into it; B sees those blobs again there and
  // drops them (its cursor for relay 2 reaches the end, nothing is delivered twice).
  relay2 = start_relay(d.data("relay2"), port2);
  REQUIRE(d.a_log.poll_until(
      *d.a, [&] { return d.a_log.outbox() == 0; }, kWait));
  REQUIRE(d.b_log.poll_until(
      *d.b,
      [&] {
        for (const auto& g : d.b->status()) {
          if (g.group.group_id == d.group && g.relays.size() == 2) return g.relays[1].cursor >= kCount;
        }
        return false;
      },
      kWait));
  CHECK(d.b_log.count<EventBlobReceived>() == static_cast<std::size_t>(kCount));
  CHECK(d.a_log.count<EventBlobPushed>() == static_cast<std::size_t>(kCount));
}

TEST_CASE("a replaced relay database makes the client re-pull from the start and drop duplicates",
          "[process][durability]") {
  Devices d;
  auto relay = start_relay(d.data("relay"));
  const std::uint16_t port = relay->port();
  const std::string relay_id = relay->relay_id_hex();
  d.make_group({relay->url()});
  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return all_connected(*d.b, d.group); }, kWait));

  // Three pushes wait in A's outbox; a copy of A's home keeps them there for later.
  relay->stop();
  for (int i = 0; i < 3; ++i) REQUIRE(d.a->push(d.group, as_bytes("d" + std::to_string(i))).has_value());
  d.a.reset();
  std::filesystem::copy(d.home_a(), d.tmp.sub("a-copy"), std::filesystem::copy_options::recursive);
  relay = start_relay(d.data("relay"), port);
  d.reopen_a();
  REQUIRE(d.a_log.poll_until(
      *d.a, [&] { return d.a_log.outbox() == 0; }, kWait));
  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return d.b_log.count<EventBlobReceived>() >= 3; }, kWait));
  REQUIRE(d.b->commit_received().is_ok());
  d.a.reset();

  // The relay's store is replaced (same key, so the same relay_id): a new epoch, cursors from 1.
  // The store is the database and the segment files holding its payloads.
  relay->stop();
  for (const auto& entry : std::filesystem::directory_iterator(d.data("relay"))) {
    if (entry.path().filename().string().rfind("relay.db", 0) == 0) std::filesystem::remove(entry.path());
  }
  relay = start_relay(d.data("relay"), port);
  CHECK(relay->relay_id_hex() == relay_id);
  // The copy of A's home still holds d0..d2: it pushes them again into the new database.
  run_drain_probe(d.tmp.sub("a-copy"));
  d.reopen_a();
  REQUIRE(d.a->push(d.group, as_bytes("d3")).has_value());

  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return d.b_log.count<EventBlobReceived>() >= 4; }, kWait));
  CHECK(d.b_log.received_texts() == std::vector<std::string>{"d0", "d1", "d2", "d3"});
  // The new database really held the old blobs again (they were duplicates for B).
  const auto copies = d.stored_at_primary();
  CHECK(copies.size() == 4);
  CHECK(d.b_log.all<EventBlobReceived>().back().blob.cursor == 4);
}

// ---------------------------------------------------------------- caught up

TEST_CASE("EventCaughtUp follows the initial pull, a pull of blobs pushed while offline, and a relay restart",
          "[process][caught-up]") {
  Devices d;
  auto relay = start_relay(d.data("relay"));
  const std::uint16_t port = relay->port();
  const std::string url = relay->url();
  d.make_group({url});

  // 1. The initial pull of an empty group.
  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return d.b_log.count<EventCaughtUp>() >= 1; }, kWait));
  const auto initial = d.b_log.all<EventCaughtUp>().front();
  CHECK(initial.group == d.group);
  CHECK(initial.relay_url == url);
  CHECK(initial.cursor == 0);
  CHECK(d.b_log.count<EventBlobReceived>() == 0);

  // 2. B is closed while A pushes; B opens again and pulls them: EventCaughtUp comes after all.
  d.b.reset();
  constexpr int kCount = 5;
  for (int i = 0; i < kCount; ++i)
    REQUIRE(d.a->push(d.group, as_bytes("away-" + std::to_string(i))).has_value());
  REQUIRE(d.a_log.poll_until(
      *d.a, [&] { return d.a_log.pushed_ids().size() == kCount && d.a_log.outbox() == 0; }, kWait));
  d.reopen_b();
  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return d.b_log.count<EventCaughtUp>() >= 1; }, kWait));
  const std::size_t caught_up_at = index_of<EventCaughtUp>(d.b_log);
  std::size_t blobs_before = 0;
  for (std::size_t i = 0; i < caught_up_at; ++i)
    blobs_before += std::holds_alternative<EventBlobReceived>(d.b_log.events[i]) ? 1 : 0;
  CHECK(blobs_before == static_cast<std::size_t>(kCount));
  const auto after_offline = std::get<EventCaughtUp>(d.b_log.events[caught_up_at]);
  CHECK(after_offline.relay_url == url);
  CHECK(after_offline.cursor == static_cast<Cursor>(kCount));
  CHECK(d.b_log.received_texts() ==
        std::vector<std::string>{"away-0", "away-1", "away-2", "away-3", "away-4"});
  // The status shows the relay's newest cursor next to ours, which moves once B committed.
  REQUIRE(d.b->commit_received().is_ok());
  {
    const auto status = d.b->status();
    const auto* relay_state = relay_status(status, d.group, url);
    REQUIRE(relay_state != nullptr);
    CHECK(relay_state->relay_max_cursor == static_cast<Cursor>(kCount));
    CHECK(relay_state->cursor == static_cast<Cursor>(kCount));
  }

  // 3. The relay restarts (A pushes two more while it is down): B reconnects, pulls again and
  // says so again. The two new blobs arrive by that pull or live, in either order.
  const std::size_t caught_up_before = d.b_log.count<EventCaughtUp>();
  relay->stop();
  for (int i = 0; i < 2; ++i) REQUIRE(d.a->push(d.group, as_bytes("late-" + std::to_string(i))).has_value());
  relay = start_relay(d.data("relay"), port);
  REQUIRE(d.b_log.poll_until(
      *d.b,
      [&] {
        return d.b_log.count<EventCaughtUp>() > caught_up_before &&
               d.b_log.count<EventBlobReceived>() >= static_cast<std::size_t>(kCount + 2);
      },
      kWait));
  CHECK(d.b_log.count<EventBlobReceived>() == static_cast<std::size_t>(kCount + 2));
  for (const auto& e : d.b_log.all<EventCaughtUp>()) {
    CHECK(e.relay_url == url);
    CHECK(e.cursor >= static_cast<Cursor>(kCount));
  }
  REQUIRE(d.b_log.poll_until(
      *d.b,
      [&] {
        const auto status = d.b->status();
        const auto* relay_state = relay_status(status, d.group, url);
        return relay_state != nullptr && relay_state->relay_max_cursor == static_cast<Cursor>(kCount + 2);
      },
      kWait));
}

// ---------------------------------------------------------------- outbox retry limit

TEST_CASE(
    "after the retry limit the delivery to a relay that stays down is abandoned once the other relay has the "
    "blob",
    "[process][outbox-limit]") {
  Devices d;
  d.a_retry_limit = std::chrono::seconds(1);
  auto relay1 = start_relay(d.data("relay1"));
  auto relay2 = start_relay(d.data("relay2"));
  const std::string url1 = relay1->url();
  const std::string url2 = relay2->url();
  d.make_group({url1, url2});
  REQUIRE(d.a_log.poll_until(
      *d.a, [&] { return all_connected(*d.a, d.group); }, kWait));
  relay2->kill();  // gone for good

  auto pushed = d.a->push(d.group, as_bytes("kept-by-one"));
  REQUIRE(pushed.has_value());
  REQUIRE(d.a_log.poll_until(
      *d.a, [&] { return d.a_log.count<EventDeliveryAbandoned>() >= 1 && d.a_log.outbox() == 0; }, kWait));
  const auto pushed_events = d.a_log.all<EventBlobPushed>();
  REQUIRE(pushed_events.size() == 1);
  CHECK(pushed_events[0].blob_id == *pushed);
  CHECK(pushed_events[0].relay_url == url1);
  const auto abandoned = d.a_log.all<EventDeliveryAbandoned>();
  REQUIRE(abandoned.size() == 1);
  CHECK(abandoned[0].group == d.group);
  CHECK(abandoned[0].blob_id == *pushed);
  CHECK(abandoned[0].relay_url == url2);
  CHECK(index_of<EventBlobPushed>(d.a_log) < index_of<EventDeliveryAbandoned>(d.a_log));
  CHECK(outbox_of(*d.a, d.group) == 0);
  // The live relay delivered it to the other device.
  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return d.b_log.count<EventBlobReceived>() >= 1; }, kWait));
  CHECK(d.b_log.received_texts() == std::vector<std::string>{"kept-by-one"});

  // The outbox stays empty after a restart: nothing comes back to retry.
  d.reopen_a();
  REQUIRE(d.a_log.poll_until(
      *d.a, [&] { return reconnects_to(d.a_log, url2) >= 3; }, kWait));
  CHECK(outbox_of(*d.a, d.group) == 0);
  CHECK(d.a_log.count<EventDeliveryAbandoned>() == 0);
}

TEST_CASE("a blob that no relay has stored is never abandoned, however long its relays stay down",
          "[process][outbox-limit]") {
  Devices d;
  d.a_retry_limit = std::chrono::seconds(1);
  auto relay1 = start_relay(d.data("relay1"));
  auto relay2 = start_relay(d.data("relay2"));
  const std::uint16_t port1 = relay1->port();
  const std::string url1 = relay1->url();
  const std::string url2 = relay2->url();
  d.make_group({url1, url2});
  REQUIRE(d.a_log.poll_until(
      *d.a, [&] { return all_connected(*d.a, d.group); }, kWait));
  relay1->stop();
  relay2->kill();

  auto pushed = d.a->push(d.group, as_bytes("kept-by-none"));
  REQUIRE(pushed.has_value());
  // Well past the limit, and then several more retry rounds of each relay.
  const auto past_limit = std::chrono::steady_clock::now() + 3 * d.a_retry_limit;
  std::size_t rounds1 = 0;
  std::size_t rounds2 = 0;
  bool limit_passed = false;
  REQUIRE(d.a_log.poll_until(
      *d.a,
      [&] {
        if (!limit_passed) {
          if (std::chrono::steady_clock::now() < past_limit) return false;
          limit_passed = true;
          rounds1 = reconnects_to(d.a_log, url1);
          rounds2 = reconnects_to(d.a_log, url2);
        }
        return reconnects_to(d.a_log, url1) >= rounds1 + 3 && reconnects_to(d.a_log, url2) >= rounds2 + 3;
      },
      kWait));
  CHECK(d.a_log.count<EventDeliveryAbandoned>() == 0);
  CHECK(d.a_log.count<EventBlobPushed>() == 0);
  CHECK(outbox_of(*d.a, d.group) == 1);

  // Relay 1 comes back: the blob is delivered there, and only then is relay 2 given up for it.
  relay1 = start_relay(d.data("relay1"), port1);
  REQUIRE(d.a_log.poll_until(
      *d.a, [&] { return d.a_log.count<EventDeliveryAbandoned>() >= 1 && d.a_log.outbox() == 0; }, kWait));
  REQUIRE(d.a_log.count<EventBlobPushed>() == 1);
  CHECK(d.a_log.all<EventBlobPushed>()[0].relay_url == url1);
  const auto abandoned = d.a_log.all<EventDeliveryAbandoned>();
  REQUIRE(abandoned.size() == 1);
  CHECK(abandoned[0].blob_id == *pushed);
  CHECK(abandoned[0].relay_url == url2);
  REQUIRE(d.b_log.poll_until(
      *d.b, [&] { return d.b_log.count<EventBlobReceived>() >= 1; }, kWait));
  CHECK(d.b_log.received_texts() == std::vector<std::string>{"kept-by-none"});
}
