// The relay's limits attacked through real sockets against a real blindsync-relay process.
//
// Each test starts the relay with the limit under attack set small through its environment
// (BLINDSYNC_RELAY_<KEY>, the same keys as the config file), then speaks wire protocol v1 over a
// plain POSIX WebSocket client (ops_ws_client.h: no Beast, no blindsync::client, so relay_tests
// stays free of payload crypto). Group keys are plain auth::SigningKeys: the relay only ever sees
// their public key as the group_id. Every wait is bounded; no assertion depends on timing except
// where a limit *is* a time (the HELLO and idle timeouts, TTL), and those wait well past it.
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "blindsync/auth/identity.h"
#include "ops_relay_process.h"
#include "ops_ws_client.h"

namespace {

using namespace blindsync;
using namespace blindsync::test;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::uint16_t code_of(Code code) { return static_cast<std::uint16_t>(code); }

using Settings = std::vector<std::pair<std::string, std::string>>;

// A relay process with some limits overridden through the environment.
class LimitedRelay {
 public:
  explicit LimitedRelay(Settings settings,
                        std::optional<std::string> data_dir = std::nullopt, std::vector<EnvChange> extra_env = {}) {
    data_ = data_dir ? *data_dir : dir_.str("data");
    std::vector<EnvChange> env = std::move(extra_env);
    for (auto& [key, value] : settings) {
      std::string name = "BLINDSYNC_RELAY_" + key;
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
      env.push_back({name, value});
    }
    relay_ = OpsRelay::start({"--listen", "127.0.0.1:0", "--data", data_, "--durability", "normal"}, env);
  }
  ~LimitedRelay() {
    if (relay_ && relay_->process->running()) relay_->stop(SIGTERM);
  }
  LimitedRelay(const LimitedRelay&) = delete;
  LimitedRelay& operator=(const LimitedRelay&) = delete;

  std::uint16_t port() const { return relay_->port; }
  pid_t pid() const { return relay_->process->pid(); }
  bool running() { return relay_->process->running(); }
  std::string stderr_text() { return relay_->process->stderr_text(); }
  int stop() { return relay_->stop(SIGTERM); }

  std::unique_ptr<ProtocolClient> connect() {
    std::string error;
    auto client = ProtocolClient::connect(port(), &error);
    INFO("connect: " << error);
    REQUIRE(client != nullptr);
    return client;
  }

 private:
  OpsTempDir dir_;
  std::string data_;
  std::unique_ptr<OpsRelay> relay_;
};

struct Member {
  auth::SigningKey device = auth::SigningKey::generate();
  std::shared_ptr<auth::SigningKey> group;
  explicit Member(std::shared_ptr<auth::SigningKey> g) : group(std::move(g)) {}
  GroupId group_id() const { return GroupId(group->public_key()); }
};

std::shared_ptr<auth::SigningKey> new_group() { return std::make_shared<auth::SigningKey>(auth::SigningKey::generate()); }

// Reads until the relay closes the connection (bounded); the WebSocket close code, 0 if the TCP
// connection ended without one.
std::uint16_t wait_closed(ProtocolClient& client, milliseconds timeout = seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto frame = client.receive(milliseconds(500));
    if (!frame && frame.error().code() == Code::kConnectionClosed) return client.close_code().value_or(0);
  }
  FAIL("the relay did not close the connection");
  return 0;
}

// A handshake the relay must refuse with `code`, then close with its mirrored close code.
void require_refused(LimitedRelay& relay, const Member& m, Code code, std::uint16_t close_code,
                     const std::string& token = "") {
  auto client = relay.connect();
  auto welcome = client->handshake(m.device, *m.group, token);
  REQUIRE_FALSE(welcome.has_value());
  CHECK(welcome.error().code() == code);
  CHECK(wait_closed(*client) == close_code);
}

std::unique_ptr<ProtocolClient> join(LimitedRelay& relay, const Member& m, const std::string& token = "") {
  auto client = relay.connect();
  auto welcome = client->handshake(m.device, *m.group, token);
  INFO("handshake: " << (welcome ? std::string("ok") : welcome.error().to_string()));
  REQUIRE(welcome.has_value());
  return client;
}

// Retries a handshake for a while: a slot freed by a close is released when the relay has
// processed that close, which happens asynchronously.
std::unique_ptr<ProtocolClient> join_eventually(LimitedRelay& relay, const Member& m) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string error;
    auto client = ProtocolClient::connect(relay.port(), &error);
    if (client && client->handshake(m.device, *m.group).has_value()) return client;
    std::this_thread::sleep_for(milliseconds(50));
  }
  FAIL("no session within 100 attempts");
  return nullptr;
}

Bytes bytes_of(std::size_t n, std::uint8_t fill = 0x42) { return Bytes(n, fill); }

// The code points of text, or nullopt if it is not well-formed UTF-8 (Unicode table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF, no stray or missing continuation bytes).
// Written here, independently of the codec and of the relay's sanitizer, to judge what they send.
std::optional<std::vector<char32_t>> utf8_code_points(std::string_view text) {
  std::vector<char32_t> out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (b0 < 0x80) {
      length = 1, cp = b0, min = 0;
    } else if ((b0 & 0xE0) == 0xC0) {
      length = 2, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      length = 3, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      length = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
      return std::nullopt;
    }
    if (text.size() - i < length) return std::nullopt;
    for (std::size_t k = 1; k < length; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    out.push_back(cp);
    i += length;
  }
  return out;
}

bool is_control(char32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

// What a device name the relay hands back must be: well-formed UTF-8 of at most 64 bytes with no
// control character (C0, DEL, C1).
void check_clean_name(const std::string& name) {
  INFO("name of " << name.size() << " bytes");
  CHECK(name.size() <= kMaxDeviceNameBytes);
  const auto code_points = utf8_code_points(name);
  REQUIRE(code_points.has_value());
  CHECK(std::none_of(code_points->begin(), code_points->end(), is_control));
}

const DeviceInfo* find_device(const Devices& devices, const auth::SigningKey& device) {
  const DeviceId id(device.public_key());
  for (const auto& d : devices.devices) {
    if (d.device_id == id) return &d;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("process: an oversized frame is refused before it is buffered and the relay serves on",
          "[process][limits]") {
  LimitedRelay relay(Settings{{"max_blob_bytes", "1000"}});
  auto attacker = relay.connect();
  CHECK(attacker->challenge().limits.max_blob_bytes == 1000);  // the environment reached the relay
  const std::uint32_t frame_limit = attacker->challenge().limits.max_frame_bytes;
  CHECK(frame_limit < 64 * 1024);
  const Bytes huge = bytes_of(4 * 1024 * 1024);
  (void)attacker->socket().send_binary(ByteView(huge.data(), huge.size()));
  const std::uint16_t code = wait_closed(*attacker);
  CHECK((code == 1009 || code == 0));  // RFC 6455 "message too big", or the socket cut mid-frame
  Member m(new_group());
  auto honest = join(relay, m);
  CHECK(honest->push(numbered_blob(1), bytes_of(1000)).has_value());
  const auto too_big = honest->push(numbered_blob(2), bytes_of(1001));
  REQUIRE_FALSE(too_big.has_value());
  CHECK(too_big.error().code() == Code::kBlobTooLarge);
  CHECK(honest->pull(0).has_value());  // the session goes on
}

TEST_CASE("process: a client silent past hello_timeout_ms gets 1007 and close 4007", "[process][limits]") {
  LimitedRelay relay(Settings{{"hello_timeout_ms", "300"}});
  auto silent = relay.connect();
  CHECK(silent->challenge().limits.hello_timeout_ms == 300);
  auto frame = silent->receive(seconds(10));
  REQUIRE(frame.has_value());
  REQUIRE(std::holds_alternative<Error>(frame->message));
  CHECK(std::get<Error>(frame->message).code == code_of(Code::kHelloTimeout));
  CHECK(wait_closed(*silent) == 4007);
}

TEST_CASE("process: max_sessions refuses with 3000 and close 4200, a freed slot is reused", "[process][limits]") {
  LimitedRelay relay(Settings{{"max_sessions", "2"}, {"max_sessions_per_group", "2"}});
  Member a(new_group()), b(new_group()), c(new_group());
  auto ca = join(relay, a);
  auto cb = join(relay, b);
  require_refused(relay, c, Code::kRelayOverloaded, 4200);
  ca->socket().close_socket();
  auto cc = join_eventually(relay, c);
  CHECK(cc->push(numbered_blob(1), bytes_of(10)).has_value());
}

TEST_CASE("process: max_sessions_per_group refuses with 2004 and close 4104, other groups unaffected",
          "[process][limits]") {
  LimitedRelay relay(Settings{{"max_sessions_per_group", "2"}});
  auto group = new_group();
  Member a(group), b(group), c(group), other(new_group());
  auto ca = join(relay, a);
  auto cb = join(relay, b);
  require_refused(relay, c, Code::kGroupFull, 4104);
  auto co = join(relay, other);
  cb->socket().close_socket();
  auto cc = join_eventually(relay, c);
}

TEST_CASE("process: the connection beyond max_connections_per_ip is closed at once, a freed slot is reused",
          "[process][limits]") {
  LimitedRelay relay(Settings{{"max_connections_per_ip", "3"}});
  std::vector<std::unique_ptr<ProtocolClient>> open;
  for (int i = 0; i < 3; ++i) open.push_back(relay.connect());
  std::string error;
  auto refused = ProtocolClient::connect(relay.port(), &error);
  CHECK(refused == nullptr);  // no upgrade, no CHALLENGE: the socket is closed right after accept
  open.pop_back();
  std::unique_ptr<ProtocolClient> again;
  for (int attempt = 0; attempt < 100 && !again; ++attempt) {
    again = ProtocolClient::connect(relay.port(), &error);
    if (!again) std::this_thread::sleep_for(milliseconds(50));
  }
  CHECK(again != nullptr);
  Member m(new_group());
  CHECK(again->handshake(m.device, *m.group).has_value());
}

TEST_CASE("process: messages over device_messages_per_minute get 2000 and the session is kept",
          "[process][limits]") {
  LimitedRelay relay(Settings{{"device_messages_per_minute", "5"}});
  Member a(new_group()), b(new_group());
  auto ca = join(relay, a);
  for (int i = 0; i < 5; ++i) REQUIRE(ca->pull(0).has_value());
  for (int i = 0; i < 3; ++i) {
    auto limited = ca->pull(0);
    REQUIRE_FALSE(limited.has_value());
    CHECK(limited.error().code() == Code::kRateLimited);
  }
  CHECK_FALSE(ca->close_code().has_value());
  auto cb = join(relay, b);  // another device has its own budget
  CHECK(cb->pull(0).has_value());
}

TEST_CASE("process: fresh device keys cannot bypass global_messages_per_second", "[process][limits][hostile]") {
  LimitedRelay relay(Settings{{"global_messages_per_second", "5"},
                              {"device_messages_per_minute", "1000"},
                              {"max_connections_per_ip", "100"}});
  int welcomed = 0;
  int limited = 0;
  std::vector<std::unique_ptr<ProtocolClient>> clients;
  for (int i = 0; i < 25; ++i) {  // 25 new device keys in 25 new groups, as fast as possible
    Member m(new_group());
    auto client = relay.connect();
    auto welcome = client->handshake(m.device, *m.group);
    if (welcome) {
      ++welcomed;
      clients.push_back(std::move(client));
    } else {
      CHECK(welcome.error().code() == Code::kRateLimited);
      ++limited;
    }
  }
  INFO("welcomed " << welcomed << ", rate-limited " << limited);
  CHECK(limited > 0);
  CHECK(welcomed > 0);
}

TEST_CASE("process: group_quota_bytes answers 2002 before the write, retries still get their ack",
          "[process][limits]") {
  LimitedRelay relay(Settings{{"group_quota_bytes", "3000"}});
  Member a(new_group());
  auto ca = join(relay, a);
  for (std::uint32_t i = 1; i <= 3; ++i) REQUIRE(ca->push(numbered_blob(i), bytes_of(1000)).has_value());
  auto over = ca->push(numbered_blob(4), bytes_of(1000));
  REQUIRE_FALSE(over.has_value());
  CHECK(over.error().code() == Code::kGroupQuotaExceeded);
  auto retry = ca->push(numbered_blob(2), bytes_of(1000));
  REQUIRE(retry.has_value());
  CHECK(retry->duplicate);
  CHECK(ca->pull(0)->blobs.size() == 3);
}

TEST_CASE("process: storage_cap_bytes and max_groups answer 3003", "[process][limits]") {
  LimitedRelay relay(Settings{{"storage_cap_bytes", "2500"}, {"max_groups", "2"}});
  Member a(new_group()), b(new_group()), c(new_group());
  auto ca = join(relay, a);
  auto cb = join(relay, b);
  REQUIRE(ca->push(numbered_blob(1), bytes_of(1000)).has_value());
  REQUIRE(cb->push(numbered_blob(1), bytes_of(1000)).has_value());
  auto full = cb->push(numbered_blob(2), bytes_of(1000));
  REQUIRE_FALSE(full.has_value());
  CHECK(full.error().code() == Code::kStorageFull);
  REQUIRE(cb->push(numbered_blob(3), bytes_of(500)).has_value());  // exactly at the cap
  require_refused(relay, c, Code::kStorageFull, 4203);             // a third group
  CHECK(cb->pull(0)->blobs.size() == 2);
}

TEST_CASE("process: a TTL above max_ttl_seconds is capped and the expired blob is never served",
          "[process][limits]") {
  LimitedRelay relay(Settings{{"max_ttl_seconds", "1"}, {"default_ttl_seconds", "1"}});
  Member a(new_group());
  auto ca = join(relay, a);
  REQUIRE(ca->push(numbered_blob(1), bytes_of(10), 3600).has_value());
  std::this_thread::sleep_for(milliseconds(2200));
  auto page = ca->pull(0);
  REQUIRE(page.has_value());
  CHECK(page->blobs.empty());
  CHECK(page->max_cursor == 1);
}

TEST_CASE("process: access = token refuses a HELLO without a listed token with 1002 and close 4002",
          "[process][limits][admission]") {
  LimitedRelay relay(Settings{{"access", "token"}, {"access_tokens", "first-token-0123456789,second-token-0123456789"}});
  Member a(new_group()), b(new_group()), c(new_group());
  require_refused(relay, a, Code::kUnauthorized, 4002);
  require_refused(relay, b, Code::kUnauthorized, 4002, "third-token-0123456789");
  auto cc = join(relay, c, "second-token-0123456789");
  CHECK(cc->push(numbered_blob(1), bytes_of(3)).has_value());
}

TEST_CASE("process: access = allowlist admits only listed groups", "[process][limits][admission]") {
  Member listed(new_group()), stranger(new_group());
  LimitedRelay relay(Settings{{"access", "allowlist"}, {"allowlist", listed.group_id().to_hex()}});
  auto cl = join(relay, listed);
  require_refused(relay, stranger, Code::kUnauthorized, 4002);
}

TEST_CASE("process: DELETE gets DELETE_ACK (removed, then not stored), another device without force gets 1004",
          "[process][limits][delete]") {
  LimitedRelay relay(Settings{});
  auto group = new_group();
  Member a(group), b(group);
  auto ca = join(relay, a);
  auto cb = join(relay, b);
  REQUIRE(ca->push(numbered_blob(1), bytes_of(10)).has_value());
  REQUIRE(ca->push(numbered_blob(2), bytes_of(10)).has_value());

  // Not the sender, no force: 1004, and the session goes on.
  auto refused = cb->delete_blob(numbered_blob(1), false);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code() == Code::kNotBlobOwner);
  CHECK_FALSE(cb->close_code().has_value());

  // The sender deletes its own blob: acknowledged with the blob id and removed = true ...
  auto own = ca->delete_blob(numbered_blob(1), false);
  INFO((own ? std::string() : own.error().to_string()));
  REQUIRE(own.has_value());
  CHECK(own->blob_id == numbered_blob(1));
  CHECK(own->removed);
  // ... and again: nothing is stored any more, still acknowledged, removed = false.
  auto again = ca->delete_blob(numbered_blob(1), false);
  REQUIRE(again.has_value());
  CHECK(again->blob_id == numbered_blob(1));
  CHECK_FALSE(again->removed);

  // force lets the other device delete blob 2.
  auto forced = cb->delete_blob(numbered_blob(2), true);
  REQUIRE(forced.has_value());
  CHECK(forced->blob_id == numbered_blob(2));
  CHECK(forced->removed);

  // DELETE_ACK is sent after the commit: the blobs are gone for every reader at once.
  auto page = cb->pull(0);
  REQUIRE(page.has_value());
  CHECK(page->blobs.empty());
}

TEST_CASE("process: with drop_acked, cleanup removes blobs every device acknowledged", "[process][retention]") {
  LimitedRelay relay(Settings{{"drop_acked", "true"}, {"cleanup_interval_ms", "200"}});
  auto group = new_group();
  Member a(group), b(group);
  auto ca = join(relay, a);
  auto cb = join(relay, b);
  for (std::uint32_t i = 1; i <= 3; ++i) REQUIRE(ca->push(numbered_blob(i), bytes_of(100)).has_value());
  for (auto* client : {ca.get(), cb.get()}) {
    const Bytes ack = encode_frame(Frame{0, Ack{2}});
    REQUIRE(client->socket().send_binary(ByteView(ack.data(), ack.size())));
  }
  std::vector<Cursor> left;
  for (int i = 0; i < 50; ++i) {  // at most ~10 s; the cleanup runs every 200 ms
    auto page = ca->pull(0);
    REQUIRE(page.has_value());
    left.clear();
    for (const auto& blob : page->blobs) left.push_back(blob.cursor);
    if (left.size() == 1) break;
    std::this_thread::sleep_for(milliseconds(200));
  }
  CHECK(left == std::vector<Cursor>{3});
}

namespace {

struct Silence {
  int pings = 0;       // the relay's pings, none answered
  bool ended = false;  // the relay closed or cut the connection
};

// Sends nothing and answers no ping, for at most 20 s or until the relay ends the connection.
Silence stay_silent_until_closed(ProtocolClient& client) {
  Silence silence;
  const auto deadline = std::chrono::steady_clock::now() + seconds(20);
  while (!silence.ended && std::chrono::steady_clock::now() < deadline) {
    const WsEvent event = client.socket().next(milliseconds(500), /*answer_pings=*/false);
    if (event.kind == WsEvent::Kind::kPing) ++silence.pings;
    silence.ended = event.kind == WsEvent::Kind::kEnd || event.kind == WsEvent::Kind::kClose;
  }
  return silence;
}

}  // namespace

TEST_CASE("process: a session that stops answering pings is closed after idle_timeout_ms", "[process][limits]") {
  LimitedRelay relay(Settings{{"idle_timeout_ms", "1000"}});
  Member m(new_group());
  auto client = join(relay, m);
  const auto [pings, ended] = stay_silent_until_closed(*client);
  CHECK(pings >= 1);
  CHECK(ended);
}

TEST_CASE("process: a relay stalled past idle_timeout_ms pings a silent session before it closes it",
          "[process][limits]") {
  LimitedRelay relay(Settings{{"idle_timeout_ms", "1000"}});
  Member m(new_group());
  auto client = join(relay, m);
  // No check runs while the relay is stopped: the first one after it finds the session silent for
  // longer than the timeout, without a ping sent yet.
  REQUIRE(::kill(relay.pid(), SIGSTOP) == 0);
  std::this_thread::sleep_for(milliseconds(1500));
  REQUIRE(::kill(relay.pid(), SIGCONT) == 0);
  const auto [pings, ended] = stay_silent_until_closed(*client);
  CHECK(pings >= 1);  // asked before it was cut
  CHECK(ended);       // and cut, since it never answered
}

TEST_CASE("process: a reader that never reads cannot grow the relay's memory", "[process][limits][slow]") {
  // ASan keeps freed memory in a quarantine (256 MB by default), which would read as growth: cap it
  // for this child so VmRSS reflects live memory. No effect on a build without ASan.
  const char* asan = std::getenv("ASAN_OPTIONS");
  std::string asan_options = std::string(asan != nullptr ? asan : "");
  if (!asan_options.empty()) asan_options += ":";
  asan_options += "quarantine_size_mb=4";
  LimitedRelay relay(Settings{{"device_messages_per_minute", "1000000"}, {"global_messages_per_second", "1000000"}},
                     std::nullopt, {{"ASAN_OPTIONS", asan_options}});
  auto group = new_group();
  Member pusher(group), reader(group);
  auto slow = join(relay, reader);  // handshakes, then never reads again
  auto fast = join(relay, pusher);
  const std::uint64_t before = vm_rss_kib(relay.pid());

  constexpr std::uint32_t kBlobs = 2000;
  constexpr std::size_t kSize = 16 * 1024;  // at the inline NOTIFY limit: every NOTIFY carries it
  const Bytes payload = bytes_of(kSize, 0x5C);
  std::uint64_t peak = before;
  std::uint32_t acked = 0;
  for (std::uint32_t i = 1; i <= kBlobs; i += 50) {  // pipelined in windows of 50
    std::vector<std::uint32_t> rids;
    for (std::uint32_t j = i; j < i + 50 && j <= kBlobs; ++j) rids.push_back(fast->send_push(numbered_blob(j), payload));
    for (std::size_t k = 0; k < rids.size();) {
      auto frame = fast->receive(seconds(30));
      REQUIRE(frame.has_value());
      if (std::holds_alternative<PushAck>(frame->message)) {
        ++acked;
        ++k;
      } else if (std::holds_alternative<Error>(frame->message)) {
        FAIL("push refused: " << std::get<Error>(frame->message).message);
      }
    }
    peak = std::max(peak, vm_rss_kib(relay.pid()));
  }
  CHECK(acked == kBlobs);
  const std::uint64_t after = vm_rss_kib(relay.pid());
  std::printf("slow reader: relay VmRSS %llu KiB before, %llu KiB peak, %llu KiB after %u x %zu-byte pushes "
              "(%llu MiB pushed)\n",
              static_cast<unsigned long long>(before), static_cast<unsigned long long>(peak),
              static_cast<unsigned long long>(after), kBlobs, kSize,
              static_cast<unsigned long long>(std::uint64_t{kBlobs} * kSize / (1024 * 1024)));
  CHECK(peak - before < 200 * 1024);  // < 200 MB of growth while 31 MiB of NOTIFY went to a non-reader
  // The reader fell behind past the send-queue bound and was disconnected.
  bool closed = false;
  std::size_t received = 0;
  for (int i = 0; i < 100'000; ++i) {  // drains what the kernel buffered, then meets the cut
    auto frame = slow->receive(seconds(5));
    if (frame) {
      ++received;
      continue;
    }
    closed = frame.error().code() == Code::kConnectionClosed;
    break;
  }
  INFO("the slow reader received " << received << " frames before the end");
  CHECK(closed);
  CHECK(relay.running());
}

TEST_CASE("process: a full disk answers 3003, pulls keep working, and pushes recover when space returns",
          "[process][limits][disk]") {
  OpsTempDir dir;
  const std::string mount_point = dir.str("small");
  std::filesystem::create_directories(mount_point);
  if (::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=4m,mode=0700") != 0) {
    WARN("cannot mount a 4 MiB tmpfs here (not root?): the full-disk path is covered by the store test with "
         "PRAGMA max_page_count");
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mount_point};
  const std::string data = mount_point + "/data";
  {
    // No rate limit: an optimised build pushes faster than the default per-device budget, and the
    // refusal this test waits for is the full disk's.
    LimitedRelay relay(Settings{{"device_messages_per_minute", "1000000"}}, data);
    Member m(new_group());
    auto client = join(relay, m);
    // Leave ~1.5 MiB free: the rest is a filler file the test can delete to "free the disk".
    const std::string filler = mount_point + "/filler";
    {
      std::ofstream out(filler, std::ios::binary);
      const std::string chunk(64 * 1024, 'f');
      for (int i = 0; i < 36; ++i) out << chunk;  // 2.25 MiB
    }
    std::uint32_t n = 0;
    std::optional<Code> refusal;
    while (n < 1000 && !refusal) {
      auto ack = client->push(numbered_blob(++n), bytes_of(16 * 1024));
      if (!ack) refusal = ack.error().code();
    }
    REQUIRE(refusal.has_value());
    CHECK(*refusal == Code::kStorageFull);
    const std::size_t stored = n - 1;
    INFO("stored " << stored << " blobs before the disk filled");
    CHECK(stored > 0);
    auto page = client->pull(0, 5);  // reads keep working
    REQUIRE(page.has_value());
    CHECK(page->blobs.size() == std::min<std::size_t>(5, stored));
    CHECK(relay.running());

    std::filesystem::remove(filler);
    // The relay retries moving its acknowledged pushes into SQLite every 200 ms and takes pushes
    // again once that worked: give it a bounded while.
    std::optional<PushAck> recovered;
    for (int attempt = 0; attempt < 100 && !recovered; ++attempt) {
      auto ack = client->push(numbered_blob(5000 + attempt), bytes_of(16 * 1024));
      if (ack) {
        recovered = *ack;
      } else {
        CHECK(ack.error().code() == Code::kStorageFull);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    REQUIRE(recovered.has_value());
    CHECK(recovered->cursor == stored + 1);  // the failed pushes consumed no cursor
    CHECK(relay.stop() == 0);
  }
}

TEST_CASE("process: a PULL limit above max_pull_limit is clamped", "[process][limits][pull]") {
  LimitedRelay relay(Settings{{"max_pull_limit", "5"}});
  Member m(new_group());
  auto client = relay.connect();
  CHECK(client->challenge().limits.max_pull_limit == 5);  // the environment reached the relay
  auto welcome = client->handshake(m.device, *m.group);
  REQUIRE(welcome.has_value());
  CHECK(welcome->limits.max_pull_limit == 5);
  constexpr std::uint32_t kBlobs = 12;
  for (std::uint32_t i = 1; i <= kBlobs; ++i) {
    auto ack = client->push(numbered_blob(i), bytes_of(8, static_cast<std::uint8_t>(i)));
    REQUIRE(ack.has_value());
    REQUIRE(ack->cursor == i);
  }
  const std::vector<Cursor> first_five{1, 2, 3, 4, 5};

  // Limits above the maximum, up to the largest u32 on the wire, and 0 (= "the relay maximum").
  for (const std::uint32_t limit : {1000u, 0xFFFFFFFFu, 6u, 0u}) {
    INFO("PULL after 0 with limit " << limit);
    auto page = client->pull(0, limit);
    REQUIRE(page.has_value());
    std::vector<Cursor> cursors;
    for (const auto& blob : page->blobs) cursors.push_back(blob.cursor);
    CHECK(cursors == first_five);
    CHECK(page->has_more);
    CHECK(page->max_cursor == kBlobs);
  }
  // The clamp is a ceiling, not a fixed page size: a smaller limit is honoured.
  auto small = client->pull(0, 3);
  REQUIRE(small.has_value());
  CHECK(small->blobs.size() == 3);
  CHECK(small->has_more);

  // Paging with the returned cursor and a hostile limit yields every blob once, in order, no gap.
  Cursor after = 0;
  bool more = true;
  std::vector<Cursor> seen;
  std::vector<std::size_t> page_sizes;
  for (int pages = 0; pages < 10 && more; ++pages) {
    auto page = client->pull(after, 0xFFFFFFFFu);
    REQUIRE(page.has_value());
    CHECK(page->blobs.size() <= 5);
    for (const auto& blob : page->blobs) {
      seen.push_back(blob.cursor);
      CHECK(blob.blob_id == numbered_blob(static_cast<std::uint32_t>(blob.cursor)));
      CHECK(blob.payload == bytes_of(8, static_cast<std::uint8_t>(blob.cursor)));
    }
    page_sizes.push_back(page->blobs.size());
    if (!page->blobs.empty()) after = page->blobs.back().cursor;
    more = page->has_more;
  }
  CHECK_FALSE(more);
  CHECK(page_sizes == std::vector<std::size_t>{5, 5, 2});
  std::vector<Cursor> all(kBlobs);
  for (std::uint32_t i = 0; i < kBlobs; ++i) all[i] = i + 1;
  CHECK(seen == all);
  CHECK_FALSE(client->close_code().has_value());  // clamping is not a protocol violation
}

TEST_CASE("process: a hostile device_name is stored truncated to 64 bytes on a code-point boundary, without "
          "control characters",
          "[process][limits][device_name][hostile]") {
  const std::string euro = "\xE2\x82\xAC";         // U+20AC, 3 bytes
  const std::string party = "\xF0\x9F\x8E\x89";    // U+1F389, 4 bytes
  const std::string e_acute = "\xC3\xA9";          // U+00E9, 2 bytes
  // Control characters that are well-formed UTF-8, so the codec lets them through to the relay's
  // sanitizer: C0 (NUL, BEL, TAB, LF, CR, ESC), DEL, and C1 (U+0085 NEL, U+009B CSI).
  const std::vector<std::string> controls{std::string(1, '\0'), "\a", "\t", "\n", "\r", "\x1B", "\x7F",
                                          "\xC2\x85", "\xC2\x9B"};
  // The visible characters: 62 bytes, then a 4-byte character over bytes 62..65 that straddles
  // the 64-byte limit, then ~230 more bytes (which must all go, although the ASCII 'z's at the
  // end would fit byte-wise: truncation keeps a prefix).
  std::vector<std::string> visible_chars{"x", "y"};
  for (int i = 0; i < 15; ++i) visible_chars.push_back(euro);
  visible_chars.push_back(party);
  visible_chars.push_back(e_acute);
  for (int i = 0; i < 3; ++i) visible_chars.push_back(euro);
  const std::size_t kept_count = visible_chars.size();
  visible_chars.push_back(party);
  for (int i = 0; i < 80; ++i) visible_chars.push_back(i % 2 == 0 ? euro : e_acute);
  for (int i = 0; i < 10; ++i) visible_chars.push_back("z");

  std::string visible;
  std::string kept;
  std::string raw;
  for (std::size_t i = 0; i < visible_chars.size(); ++i) {
    if (i % 3 == 0) raw += controls[(i / 3) % controls.size()];  // a control before every 3rd character
    raw += visible_chars[i];
    visible += visible_chars[i];
    if (i < kept_count) kept += visible_chars[i];
  }
  REQUIRE(kept.size() == 62);
  REQUIRE(visible.substr(0, 66) == kept + party);  // byte 64 of the cleaned name is inside `party`
  REQUIRE(raw.size() >= 300);
  REQUIRE(raw.size() < kMaxStringBytes);  // within the codec's str limit: the HELLO is well-formed
  REQUIRE(utf8_code_points(raw).has_value());

  OpsTempDir dir;
  const std::string data = dir.str("data");
  auto group = new_group();
  Member hostile(group), observer(group);
  {
    LimitedRelay relay(Settings{}, data);
    auto attacker = relay.connect();
    auto welcome = attacker->handshake(hostile.device, *hostile.group, "", raw);
    INFO("hostile HELLO: " << (welcome ? std::string("ok") : welcome.error().to_string()));
    REQUIRE(welcome.has_value());

    // Another session of the same group asks the relay what it keeps.
    auto watcher = join(relay, observer);
    auto devices = watcher->list_devices();
    INFO("LIST_DEVICES: " << (devices ? std::string("ok") : devices.error().to_string()));
    REQUIRE(devices.has_value());
    const DeviceInfo* info = find_device(*devices, hostile.device);
    REQUIRE(info != nullptr);
    CHECK(info->online);
    check_clean_name(info->name);
    CHECK(visible.rfind(info->name, 0) == 0);  // a prefix of the cleaned name: no split code point
    CHECK(info->name == kept);                 // and the longest one that fits
    const DeviceInfo* self = find_device(*devices, observer.device);
    REQUIRE(self != nullptr);
    CHECK(self->name == "ops-test");

    attacker->socket().close_socket();
    watcher->socket().close_socket();
    CHECK(relay.stop() == 0);
  }
  // What was stored on disk, served by a fresh relay process on the same data directory while the
  // hostile device is offline (so the name comes from the store, not from a live session).
  {
    LimitedRelay relay(Settings{}, data);
    auto watcher = join(relay, observer);
    auto devices = watcher->list_devices();
    REQUIRE(devices.has_value());
    const DeviceInfo* info = find_device(*devices, hostile.device);
    REQUIRE(info != nullptr);
    CHECK_FALSE(info->online);
    check_clean_name(info->name);
    CHECK(info->name == kept);
  }
}

TEST_CASE("process: a device_name that is not valid UTF-8 gets 1000 and close 4000, the relay serves on",
          "[process][limits][device_name][hostile]") {
  // docs/wire.md: every str must be well-formed UTF-8, else the frame is INVALID_MESSAGE. Such a name
  // never reaches the relay's sanitizer; the HELLO is refused and the connection closed.
  LimitedRelay relay(Settings{});
  Member m(new_group());
  const std::vector<std::pair<std::string, std::string>> names{
      {"a stray 0xFF byte", "bad\xFFname"},
      {"an overlong '/'", "a\xC0\xAF" "b"},
      {"a surrogate", "a\xED\xA0\x80" "b"},
      {"a code point above U+10FFFF", "a\xF4\x90\x80\x80" "b"},
      {"a truncated sequence at the end", std::string(63, 'a') + "\xE2\x82"},
      {"a lone continuation byte across byte 64", std::string(64, 'a') + "\x80" + std::string(10, 'b')},
  };
  for (const auto& [what, name] : names) {
    INFO("device_name with " << what);
    REQUIRE_FALSE(utf8_code_points(name).has_value());
    auto client = relay.connect();
    auto welcome = client->handshake(m.device, *m.group, "", name);
    REQUIRE_FALSE(welcome.has_value());
    CHECK(welcome.error().code() == Code::kInvalidMessage);
    CHECK(wait_closed(*client) == 4000);
  }
  CHECK(relay.running());
  auto honest = join(relay, m);  // the same device, with a clean name, is welcome
  CHECK(honest->push(numbered_blob(1), bytes_of(10)).has_value());
  auto devices = honest->list_devices();
  REQUIRE(devices.has_value());
  REQUIRE(devices->devices.size() == 1);  // no refused HELLO left a record behind
  CHECK(devices->devices[0].name == "ops-test");
}

TEST_CASE("process: an absurdly long device_name gets 1000 and close 4000 past the 4096-byte str limit, "
          "WELCOME up to it",
          "[process][limits][device_name][hostile]") {
  const std::string euro = "\xE2\x82\xAC";
  auto repeat = [](const std::string& piece, std::size_t n) {
    std::string out;
    out.reserve(piece.size() * n);
    for (std::size_t i = 0; i < n; ++i) out += piece;
    return out;
  };
  LimitedRelay relay(Settings{});
  auto group = new_group();
  Member attacker_device(group), at_limit_device(group), honest_device(new_group());

  // 64 KiB of valid UTF-8: well within the frame limit, 16 times the codec's str limit. The codec
  // refuses it before the relay looks at the name (docs/wire.md, "bytes in one str").
  {
    const std::string huge = "a" + repeat(euro, 21845);  // 65536 bytes
    REQUIRE(huge.size() == 64 * 1024);
    auto attacker = relay.connect();
    CHECK(huge.size() + 1024 < attacker->challenge().limits.max_frame_bytes);
    auto welcome = attacker->handshake(attacker_device.device, *attacker_device.group, "", huge);
    REQUIRE_FALSE(welcome.has_value());
    CHECK(welcome.error().code() == Code::kInvalidMessage);
    CHECK(wait_closed(*attacker) == 4000);
  }
  // One byte over the str limit: refused the same way.
  {
    const std::string over = "ab" + repeat(euro, 1365);  // 4097 bytes
    REQUIRE(over.size() == kMaxStringBytes + 1);
    auto attacker = relay.connect();
    auto welcome = attacker->handshake(attacker_device.device, *attacker_device.group, "", over);
    REQUIRE_FALSE(welcome.has_value());
    CHECK(welcome.error().code() == Code::kInvalidMessage);
    CHECK(wait_closed(*attacker) == 4000);
  }
  CHECK(relay.running());
  // Exactly at the str limit: WELCOME, and the name is kept truncated to exactly 64 bytes
  // ('a' + 21 three-byte characters end on byte 64).
  auto at_limit = relay.connect();
  {
    const std::string longest = "a" + repeat(euro, 1365);  // 4096 bytes
    REQUIRE(longest.size() == kMaxStringBytes);
    auto welcome = at_limit->handshake(at_limit_device.device, *at_limit_device.group, "", longest);
    INFO("HELLO with a 4096-byte name: " << (welcome ? std::string("ok") : welcome.error().to_string()));
    REQUIRE(welcome.has_value());
    auto devices = at_limit->list_devices();
    REQUIRE(devices.has_value());
    const DeviceInfo* info = find_device(*devices, at_limit_device.device);
    REQUIRE(info != nullptr);
    check_clean_name(info->name);
    CHECK(info->name == "a" + repeat(euro, 21));
    CHECK(info->name.size() == kMaxDeviceNameBytes);
    CHECK(find_device(*devices, attacker_device.device) == nullptr);  // refused HELLOs store nothing
  }
  // The relay serves other clients, and the session that sent the long name goes on.
  auto honest = join(relay, honest_device);
  CHECK(honest->push(numbered_blob(1), bytes_of(10)).has_value());
  CHECK(at_limit->pull(0).has_value());
  CHECK(relay.running());
}

// A run of pages bigger than the send queue's bound (8 MiB by default): the relay makes each next
// page after the one before is queued and ends the run once the queue is past half, so the reader
// is served in runs and never cut off as a slow reader.
TEST_CASE("process: a catch-up bigger than the send queue bound is served whole, in runs of pages",
          "[process][limits]") {
  LimitedRelay relay(Settings{{"max_pull_pages", "64"}, {"device_messages_per_minute", "100000"}});
  Member writer_device(new_group()), reader_device(writer_device.group);
  auto writer = join(relay, writer_device);
  constexpr std::uint32_t kBlobs = 40;
  constexpr std::size_t kBlobBytes = 256 * 1024;  // 10 MiB in all
  for (std::uint32_t i = 1; i <= kBlobs; ++i) {
    REQUIRE(writer->push(numbered_blob(i), bytes_of(kBlobBytes, static_cast<std::uint8_t>(i))).has_value());
  }
  auto reader = join(relay, reader_device);
  std::vector<Cursor> seen;
  Cursor after = 0;
  for (std::uint32_t run = 0; run < kBlobs && after < kBlobs; ++run) {
    const std::uint32_t rid = 1000 + run;
    const Bytes pull = encode_frame(Frame{rid, Pull{after, 1, 64}});  // pages of one blob, 64 of them
    REQUIRE(reader->socket().send_binary(ByteView(pull.data(), pull.size())));
    for (std::uint32_t page = 0; page < 64; ++page) {
      auto frame = reader->receive();
      REQUIRE(frame.has_value());
      REQUIRE(frame->request_id == rid);
      const auto& response = std::get<PullResponse>(frame->message);
      for (const auto& blob : response.blobs) {
        CHECK(blob.payload == bytes_of(kBlobBytes, static_cast<std::uint8_t>(blob.cursor)));
        seen.push_back(blob.cursor);
        after = blob.cursor;
      }
      if (!response.continues) break;
    }
  }
  std::vector<Cursor> all(kBlobs);
  std::iota(all.begin(), all.end(), Cursor{1});
  CHECK(seen == all);
  CHECK_FALSE(reader->close_code().has_value());
}

TEST_CASE("process: a blob bigger than half the default send queue bound is pulled whole", "[process][limits]") {
  LimitedRelay relay(Settings{{"max_blob_bytes", std::to_string(12 * 1024 * 1024)}});
  Member writer_device(new_group()), reader_device(writer_device.group);
  auto writer = join(relay, writer_device);
  const Bytes big = bytes_of(10 * 1024 * 1024, 0x5A);
  REQUIRE(writer->push(numbered_blob(1), big).has_value());
  auto reader = join(relay, reader_device);
  auto page = reader->pull(0);
  INFO("pull: " << (page ? std::string("ok") : page.error().to_string()));
  REQUIRE(page.has_value());
  REQUIRE(page->blobs.size() == 1);
  CHECK(page->blobs[0].payload == big);
  CHECK_FALSE(reader->close_code().has_value());
}

}  // namespace
