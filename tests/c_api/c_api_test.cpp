// The C boundary without a relay: argument checks, error reporting, events, status JSON.
// Sync through a real relay is tested by c_api_example_against_relay and c_api_python_ctypes.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "blindsync/c/blindsync.h"
#include "blindsync/client/invite.h"
#include "c_api_internal.h"

namespace {

// A fresh directory, removed on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/blindsync-capi-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    REQUIRE(mkdtemp(buffer.data()) != nullptr);
    path_ = buffer.data();
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// An open client on a fresh home, closed on destruction.
struct OpenClient {
  ScratchDir dir;
  bs_client* client = nullptr;
  OpenClient() {
    bs_error err{};
    REQUIRE(bs_client_open(dir.sub("home").c_str(), nullptr, &client, &err) == BS_OK);
    REQUIRE(err.code == BS_OK);
    REQUIRE(client != nullptr);
  }
  ~OpenClient() { bs_client_close(client); }
};

bool all_zero(const void* p, std::size_t n) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("bs_code_name names library, C-layer and unknown codes", "[c_api]") {
  CHECK(std::string(bs_code_name(BS_OK)) == "OK");
  CHECK(std::string(bs_code_name(BS_ERR_INVALID_MESSAGE)) == "INVALID_MESSAGE");
  CHECK(std::string(bs_code_name(BS_ERR_TIMEOUT)) == "TIMEOUT");
  CHECK(std::string(bs_code_name(BS_ERR_STORAGE_ERROR)) == "STORAGE_ERROR");
  CHECK(std::string(bs_code_name(BS_ERR_OUT_OF_MEMORY)) == "OUT_OF_MEMORY");
  CHECK(std::string(bs_code_name(BS_ERR_UNEXPECTED)) == "UNEXPECTED");
  CHECK(std::string(bs_code_name(-1)) == "UNKNOWN");
  CHECK(std::string(bs_code_name(4242)) == "UNKNOWN");
  CHECK(std::string(bs_code_name(1 << 20)) == "UNKNOWN");
  CHECK(std::string(bs_version()).find('.') != std::string::npos);
}

TEST_CASE("C error codes equal the library's codes", "[c_api]") {
  using blindsync::Code;
  CHECK(BS_ERR_UNKNOWN_GROUP == static_cast<int>(Code::kUnknownGroup));
  CHECK(BS_ERR_GROUP_FULL == static_cast<int>(Code::kGroupFull));
  CHECK(BS_ERR_STORAGE_FULL == static_cast<int>(Code::kStorageFull));
  CHECK(BS_ERR_INVALID_ARGUMENT == static_cast<int>(Code::kInvalidArgument));
  CHECK(BS_ERR_EXPIRED == static_cast<int>(Code::kExpired));
  CHECK(BS_ERR_STORAGE_ERROR == static_cast<int>(Code::kStorageError));
}

TEST_CASE("error messages are truncated to the buffer at a UTF-8 character boundary", "[c_api]") {
  char small[8];
  std::memset(small, 'x', sizeof(small));
  blindsync::capi::copy_truncated(small, sizeof(small), "abcdefghij");
  CHECK(std::string(small) == "abcdefg");

  // "abcdef" then U+00E9 (2 bytes): the 7-byte budget would split it, so it is dropped whole.
  blindsync::capi::copy_truncated(small, sizeof(small), "abcdef\xC3\xA9");
  CHECK(std::string(small) == "abcdef");
  // A character that fits whole is kept.
  blindsync::capi::copy_truncated(small, sizeof(small), "abcde\xC3\xA9\xC3\xA9");
  CHECK(std::string(small) == "abcde\xC3\xA9");

  bs_error err{};
  std::string long_message(1000, 'm');
  CHECK(blindsync::capi::set_error(&err, BS_ERR_INTERNAL, long_message) == BS_ERR_INTERNAL);
  CHECK(err.code == BS_ERR_INTERNAL);
  CHECK(std::strlen(err.message) == BS_ERROR_MESSAGE_SIZE - 1);
  CHECK(blindsync::capi::set_error(nullptr, BS_ERR_INTERNAL, "ignored") == BS_ERR_INTERNAL);
}

TEST_CASE("NULL arguments are refused with INVALID_ARGUMENT and never dereferenced", "[c_api]") {
  bs_error err{};
  bs_client* client = reinterpret_cast<bs_client*>(0x1);
  CHECK(bs_client_open(nullptr, nullptr, &client, &err) == BS_ERR_INVALID_ARGUMENT);
  CHECK(client == nullptr);
  CHECK(err.code == BS_ERR_INVALID_ARGUMENT);
  CHECK(std::strlen(err.message) > 0);
  CHECK(bs_client_open("/tmp/x", nullptr, nullptr, nullptr) == BS_ERR_INVALID_ARGUMENT);

  CHECK(bs_set_notify(nullptr, nullptr, nullptr, &err) == BS_ERR_INVALID_ARGUMENT);
  CHECK(bs_identity_create(nullptr, "n", 1000, nullptr, &err) == BS_ERR_INVALID_ARGUMENT);
  bs_identity identity{};
  CHECK(bs_identity_get(nullptr, &identity) < 0);
  const char* url = "ws://127.0.0.1:1/v1/sync";
  CHECK(bs_group_create(nullptr, &url, 1, "g", 1000, nullptr, nullptr, &err) == BS_ERR_INVALID_ARGUMENT);
  CHECK(bs_group_join(nullptr, "blindsync://join/x", 1000, nullptr, &err) == BS_ERR_INVALID_ARGUMENT);
  bs_group_info* groups = nullptr;
  size_t count = 7;
  CHECK(bs_groups_list(nullptr, &groups, &count, &err) == BS_ERR_INVALID_ARGUMENT);
  CHECK(count == 0);
  char blob_id[33] = "junk";
  CHECK(bs_push(nullptr, "00", "x", 1, 0, blob_id, &err) == BS_ERR_INVALID_ARGUMENT);
  CHECK(blob_id[0] == '\0');
  bs_event event;
  std::memset(&event, 0xAB, sizeof(event));
  CHECK(bs_poll_event(nullptr, &event) == -BS_ERR_INVALID_ARGUMENT);
  CHECK(all_zero(&event, sizeof(event)));
  CHECK(bs_wait_event(nullptr, 0, &event) == -BS_ERR_INVALID_ARGUMENT);
  CHECK(bs_commit(nullptr, &err) == BS_ERR_INVALID_ARGUMENT);
  CHECK(bs_status_json(nullptr, &err) == nullptr);
  CHECK(err.code == BS_ERR_INVALID_ARGUMENT);

  // Free functions accept NULL.
  bs_client_close(nullptr);
  bs_string_free(nullptr);
  bs_group_info_free(nullptr);
  bs_group_list_free(nullptr, 3);
  bs_event_free(nullptr);
  bs_client_options_init(nullptr);
}

TEST_CASE("opening a home that is a regular file fails with a message and no handle", "[c_api]") {
  ScratchDir dir;
  const std::string file = dir.sub("not-a-dir");
  std::ofstream(file) << "x";
  bs_client* client = reinterpret_cast<bs_client*>(0x1);
  bs_error err{};
  int rc = bs_client_open(file.c_str(), nullptr, &client, &err);
  CHECK(rc != BS_OK);
  CHECK(err.code == rc);
  CHECK(std::strlen(err.message) > 0);
  CHECK(client == nullptr);
}

TEST_CASE("bs_client_options_init fills the library defaults", "[c_api]") {
  bs_client_options options;
  std::memset(&options, 0xFF, sizeof(options));
  bs_client_options_init(&options);
  CHECK(options.request_timeout_ms == 15000);
  CHECK(options.connect_timeout_ms == 10000);
  CHECK(options.backoff_base_ms == 1000);
  CHECK(options.backoff_cap_ms == 30000);
  CHECK(options.backoff_jitter_ms == 5000);
  CHECK(options.max_queued_events == 10000);
  CHECK(options.notify == nullptr);
  CHECK(options.notify_user == nullptr);
}

TEST_CASE("a fresh client has no identity, no groups and no events", "[c_api]") {
  OpenClient open;
  bs_identity identity;
  std::memset(&identity, 0x5A, sizeof(identity));
  CHECK(bs_identity_get(open.client, &identity) == 0);

  bs_group_info* groups = reinterpret_cast<bs_group_info*>(0x1);
  size_t count = 9;
  bs_error err{};
  REQUIRE(bs_groups_list(open.client, &groups, &count, &err) == BS_OK);
  CHECK(groups == nullptr);
  CHECK(count == 0);

  bs_event event;
  std::memset(&event, 0xAB, sizeof(event));
  CHECK(bs_poll_event(open.client, &event) == 0);
  CHECK(all_zero(&event, sizeof(event)));
  CHECK(bs_wait_event(open.client, 0, &event) == 0);
  CHECK(bs_wait_event(open.client, 20, &event) == 0);
  CHECK(bs_wait_event(open.client, -1, &event) == -BS_ERR_INVALID_ARGUMENT);
  bs_event_free(&event);  // a zeroed event owns nothing

  char* json = bs_status_json(open.client, &err);
  REQUIRE(json != nullptr);
  CHECK(std::string(json) == R"({"device":null,"groups":[]})");
  bs_string_free(json);
  CHECK(bs_commit(open.client, &err) == BS_OK);
}

TEST_CASE("an identity is created once and reported by get and status", "[c_api]") {
  OpenClient open;
  bs_error err{};
  bs_identity created{};
  REQUIRE(bs_identity_create(open.client, "laptop", 30000, &created, &err) == BS_OK);
  CHECK(std::strlen(created.device_id) == 64);
  CHECK(std::string(created.name) == "laptop");

  bs_identity got{};
  REQUIRE(bs_identity_get(open.client, &got) == 1);
  CHECK(std::string(got.device_id) == created.device_id);

  CHECK(bs_identity_create(open.client, "again", 30000, nullptr, &err) == BS_ERR_ALREADY_EXISTS);
  CHECK(err.code == BS_ERR_ALREADY_EXISTS);

  char* json = bs_status_json(open.client, &err);
  REQUIRE(json != nullptr);
  CHECK(std::string(json).find(std::string("\"device_id\":\"") + created.device_id + "\"") !=
        std::string::npos);
  bs_string_free(json);
}

TEST_CASE("bad identity names are refused", "[c_api]") {
  OpenClient open;
  bs_error err{};
  CHECK(bs_identity_create(open.client, "", 30000, nullptr, &err) == BS_ERR_INVALID_ARGUMENT);
  CHECK(bs_identity_create(open.client, nullptr, 30000, nullptr, &err) == BS_ERR_INVALID_ARGUMENT);
  std::string long_name(BS_NAME_MAX + 1, 'n');
  CHECK(bs_identity_create(open.client, long_name.c_str(), 30000, nullptr, &err) == BS_ERR_INVALID_ARGUMENT);
  bs_identity identity{};
  CHECK(bs_identity_get(open.client, &identity) == 0);
}

TEST_CASE("push refuses malformed group ids and groups the device is not in", "[c_api]") {
  OpenClient open;
  bs_error err{};
  REQUIRE(bs_identity_create(open.client, "pusher", 30000, nullptr, &err) == BS_OK);
  char blob_id[33];
  CHECK(bs_push(open.client, "zz", "x", 1, 0, blob_id, &err) == BS_ERR_INVALID_ARGUMENT);
  CHECK(std::string(err.message).find("group id") != std::string::npos);
  CHECK(bs_push(open.client, "", "x", 1, 0, blob_id, &err) == BS_ERR_INVALID_ARGUMENT);
  CHECK(bs_push(open.client, nullptr, "x", 1, 0, blob_id, &err) == BS_ERR_INVALID_ARGUMENT);
  const std::string unknown(64, 'a');
  CHECK(bs_push(open.client, unknown.c_str(), nullptr, 5, 0, blob_id, &err) == BS_ERR_INVALID_ARGUMENT);
  int rc = bs_push(open.client, unknown.c_str(), "x", 1, 0, blob_id, &err);
  CHECK(rc != BS_OK);
  CHECK(err.code == rc);
  CHECK(blob_id[0] == '\0');
}

TEST_CASE("join refuses garbage and expired invite links", "[c_api]") {
  OpenClient open;
  bs_error err{};
  REQUIRE(bs_identity_create(open.client, "joiner", 30000, nullptr, &err) == BS_OK);
  bs_group_info info;
  std::memset(&info, 0x7F, sizeof(info));
  CHECK(bs_group_join(open.client, "not a link", 30000, &info, &err) == BS_ERR_INVALID_ARGUMENT);
  CHECK(all_zero(&info, sizeof(info)));
  CHECK(bs_group_join(open.client, "blindsync://join/@@@@", 30000, &info, &err) == BS_ERR_INVALID_ARGUMENT);
  const std::string huge = "blindsync://join/" + std::string(1 << 20, 'A');
  CHECK(bs_group_join(open.client, huge.c_str(), 30000, &info, &err) != BS_OK);

  blindsync::Invite invite;
  invite.relays.push_back({"ws://127.0.0.1:1/v1/sync", blindsync::RelayId()});
  invite.secret.fill(7);
  invite.expires_at_ms = 1;  // 1970
  const std::string expired = blindsync::encode_invite(invite);
  CHECK(bs_group_join(open.client, expired.c_str(), 30000, &info, &err) == BS_ERR_EXPIRED);

  bs_group_info* groups = nullptr;
  size_t count = 0;
  REQUIRE(bs_groups_list(open.client, &groups, &count, &err) == BS_OK);
  CHECK(count == 0);
}

TEST_CASE("creating a group needs a relay URL and reports an unreachable relay", "[c_api]") {
  OpenClient open;
  bs_error err{};
  REQUIRE(bs_identity_create(open.client, "creator", 30000, nullptr, &err) == BS_OK);
  char* link = reinterpret_cast<char*>(0x1);
  CHECK(bs_group_create(open.client, nullptr, 0, "g", 30000, nullptr, &link, &err) ==
        BS_ERR_INVALID_ARGUMENT);
  CHECK(link == nullptr);
  const char* null_url = nullptr;
  CHECK(bs_group_create(open.client, &null_url, 1, "g", 30000, nullptr, &link, &err) ==
        BS_ERR_INVALID_ARGUMENT);

  // Port 1 on loopback: nothing listens, the connection is refused.
  const char* url = "ws://127.0.0.1:1/v1/sync";
  bs_group_info info{};
  int rc = bs_group_create(open.client, &url, 1, "g", 60000, &info, &link, &err);
  CHECK(rc != BS_OK);
  CHECK(err.code == rc);
  CHECK(std::strlen(err.message) > 0);
  CHECK(link == nullptr);
  CHECK(info.name == nullptr);
}

namespace {
std::atomic<int> g_notify_calls{0};
void count_notify(void* user) {
  g_notify_calls.fetch_add(1);
  *static_cast<std::atomic<int>*>(user) += 1;
}
}  // namespace

TEST_CASE("the notify callback can be set, replaced and removed", "[c_api]") {
  OpenClient open;
  bs_error err{};
  std::atomic<int> mine{0};
  CHECK(bs_set_notify(open.client, count_notify, &mine, &err) == BS_OK);
  CHECK(bs_set_notify(open.client, nullptr, nullptr, &err) == BS_OK);
  // After removal returns, the callback (and its user pointer) are never used again.
  const int before = mine.load();
  bs_event event;
  CHECK(bs_wait_event(open.client, 10, &event) == 0);
  CHECK(mine.load() == before);
}

TEST_CASE("with its relay unreachable a group keeps pushes in the outbox and reports reconnects", "[c_api]") {
  OpenClient open;
  bs_error err{};
  std::atomic<int> notified{0};
  REQUIRE(bs_set_notify(open.client, count_notify, &notified, &err) == BS_OK);
  REQUIRE(bs_identity_create(open.client, "offline", 30000, nullptr, &err) == BS_OK);

  // Joining stores the group from the link; the relay (port 1: refused) is contacted later.
  blindsync::Invite invite;
  blindsync::RelayId::Array relay_key;
  relay_key.fill(0x42);  // pinned id of a relay that will never answer
  invite.relays.push_back({"ws://127.0.0.1:1/v1/sync", blindsync::RelayId(relay_key)});
  invite.secret.fill(9);
  invite.group_name = "offline-group";
  const std::string link = blindsync::encode_invite(invite);
  bs_group_info joined{};
  const int joined_rc = bs_group_join(open.client, link.c_str(), 30000, &joined, &err);
  INFO(err.message);
  REQUIRE(joined_rc == BS_OK);
  REQUIRE(joined.name != nullptr);
  CHECK(std::string(joined.name) == "offline-group");
  CHECK(std::string(joined.relay_url) == "ws://127.0.0.1:1/v1/sync");
  CHECK(std::strlen(joined.group_id) == 64);

  char blob_id[33] = {};
  const unsigned char payload[] = {0, 1, 2, 0xFF};
  REQUIRE(bs_push(open.client, joined.group_id, payload, sizeof(payload), 0, blob_id, &err) == BS_OK);
  CHECK(std::strlen(blob_id) == 32);
  char second[33] = {};
  REQUIRE(bs_push(open.client, joined.group_id, nullptr, 0, 0, second, &err) == BS_OK);  // empty is allowed
  CHECK(std::string(second) != blob_id);

  // The worker keeps failing to connect and says so; every wait is bounded.
  bool saw_connection_trouble = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!saw_connection_trouble && std::chrono::steady_clock::now() < deadline) {
    bs_event event;
    int rc = bs_wait_event(open.client, 250, &event);
    REQUIRE(rc >= 0);
    if (rc == 0) continue;
    CHECK(event.relay_url != nullptr);
    CHECK(event.message != nullptr);
    if (event.kind == BS_EVENT_RECONNECTING || event.kind == BS_EVENT_DISCONNECTED) {
      CHECK(std::string(event.group_id) == joined.group_id);
      CHECK(std::string(event.relay_url) == "ws://127.0.0.1:1/v1/sync");
      saw_connection_trouble = true;
    }
    CHECK(event.kind != BS_EVENT_BLOB_PUSHED);
    bs_event_free(&event);
    CHECK(event.internal_ == nullptr);
  }
  CHECK(saw_connection_trouble);
  CHECK(notified.load() > 0);

  char* json = bs_status_json(open.client, &err);
  REQUIRE(json != nullptr);
  const std::string status(json);
  bs_string_free(json);
  CHECK(status.find(std::string("\"group_id\":\"") + joined.group_id + "\"") != std::string::npos);
  CHECK(status.find("\"outbox\":2") != std::string::npos);
  // Never connected: the relay's newest cursor is not known yet.
  CHECK(status.find("\"relay_max_cursor\":0") != std::string::npos);
  CHECK(bs_set_notify(open.client, nullptr, nullptr, &err) == BS_OK);
  bs_group_info_free(&joined);
  CHECK(joined.name == nullptr);
}
