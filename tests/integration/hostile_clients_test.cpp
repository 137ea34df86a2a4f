// Hostile clients against the real relay process: each attack gets the documented ERROR and/or a
// closed connection, and afterwards the relay still serves an honest client and its session count
// (GET /health "sessions") returns to what it was.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "http_get.h"
#include "raw_client.h"
#include "relay_process.h"
#include "temp_dir.h"

using namespace blindsync;
using namespace blindsync::test;

namespace {

std::optional<std::int64_t> health_sessions(const RelayProcess& relay) {
  auto response = http_get(relay.host(), relay.port(), "/health");
  if (!response || response->status != 200) return std::nullopt;
  try {
    return nlohmann::json::parse(response->body).at("sessions").get<std::int64_t>();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Polls /health (bounded: 100 x 100 ms) until sessions == expected.
bool sessions_return_to(const RelayProcess& relay, std::int64_t expected) {
  for (int i = 0; i < 100; ++i) {
    if (health_sessions(relay) == expected) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

bool has_error(const CloseOutcome& outcome, Code code) {
  for (const auto& error : outcome.errors) {
    if (error.code == static_cast<std::uint16_t>(code)) return true;
  }
  return false;
}

class HostileFixture {
 public:
  HostileFixture() {
    relay_ = RelayProcess::start(dir_.sub("relay"));
    auto health = http_get(relay_->host(), relay_->port(), "/health");
    REQUIRE(health.has_value());
    REQUIRE(health->status == 200);
    auto sessions = health_sessions(*relay_);
    REQUIRE(sessions.has_value());
    baseline_ = *sessions;
  }

  RelayProcess& relay() { return *relay_; }

  std::unique_ptr<RawClient> connect() {
    auto client = RawClient::connect(relay_->url());
    INFO(client.status().to_string());
    REQUIRE(client.has_value());
    return std::move(*client);
  }

  // After an attack: the session count recovers, and an honest client handshakes and pushes.
  void require_relay_still_serves() {
    REQUIRE(sessions_return_to(*relay_, baseline_));
    auto honest = connect();
    const auto member = GroupMember::make_random();
    auto welcome = honest->handshake(member);
    INFO(welcome.status().to_string());
    REQUIRE(welcome.has_value());
    auto ack = honest->push(auth::random_id<BlobId>(), Bytes(100, 0x42));
    INFO(ack.status().to_string());
    REQUIRE(ack.has_value());
    REQUIRE(ack->cursor == 1);  // a fresh group each time
    honest->close();
    REQUIRE(sessions_return_to(*relay_, baseline_));
    REQUIRE(relay_->process().running());
  }

  ~HostileFixture() {
    if (relay_) relay_->stop();
  }

 private:
  TempDir dir_;
  std::unique_ptr<RelayProcess> relay_;
  std::int64_t baseline_ = 0;
};

}  // namespace

TEST_CASE("relay answers garbage bytes with ERROR 1000 and closes", "[integration][hostile]") {
  HostileFixture fixture;
  auto attacker = fixture.connect();
  const Bytes garbage{0xc1, 0xff, 0x00, 0x13, 'g', 'a', 'r', 'b', 'a', 'g', 'e'};
  REQUIRE(attacker->send_bytes(garbage).is_ok());
  const auto outcome = attacker->read_until_closed();
  REQUIRE(has_error(outcome, Code::kInvalidMessage));
  REQUIRE(outcome.closed);
  fixture.require_relay_still_serves();
}

TEST_CASE("relay closes a connection that sends a frame over the size limit", "[integration][hostile]") {
  HostileFixture fixture;
  auto attacker = fixture.connect();
  const Bytes huge(2 * 1024 * 1024, 0x90);
  // The relay may cut the connection while the frame is still being sent: either way is fine.
  (void)attacker->send_bytes(huge);
  const auto outcome = attacker->read_until_closed();
  REQUIRE(outcome.closed);
  fixture.require_relay_still_serves();
}

TEST_CASE("relay rejects a HELLO with a bad group signature with ERROR 1002 and closes",
          "[integration][hostile]") {
  HostileFixture fixture;
  auto attacker = fixture.connect();
  const auto member = GroupMember::make_random();
  Hello hello = attacker->make_hello(member);
  hello.group_sig.mutable_bytes()[0] ^= 0x01;
  auto welcome = attacker->send_hello(hello);
  REQUIRE_FALSE(welcome.has_value());
  REQUIRE(welcome.error().code() == Code::kUnauthorized);
  REQUIRE(attacker->read_until_closed().closed);
  fixture.require_relay_still_serves();
}

TEST_CASE("relay rejects a HELLO with a bad device signature with ERROR 1002", "[integration][hostile]") {
  HostileFixture fixture;
  auto attacker = fixture.connect();
  const auto member = GroupMember::make_random();
  Hello hello = attacker->make_hello(member);
  hello.device_sig.mutable_bytes()[63] ^= 0x80;
  auto welcome = attacker->send_hello(hello);
  REQUIRE_FALSE(welcome.has_value());
  REQUIRE(welcome.error().code() == Code::kUnauthorized);
  REQUIRE(attacker->read_until_closed().closed);
  fixture.require_relay_still_serves();
}

TEST_CASE("relay rejects a HELLO replayed from a previous session (other relay nonce) with ERROR 1002",
          "[integration][hostile]") {
  HostileFixture fixture;
  const auto member = GroupMember::make_random();

  auto first = fixture.connect();
  const Hello recorded = first->make_hello(member);
  auto welcome = first->send_hello(recorded);
  INFO(welcome.status().to_string());
  REQUIRE(welcome.has_value());  // the recorded HELLO was valid for its own session
  first->close();

  auto replayer = fixture.connect();
  REQUIRE(replayer->challenge().relay_nonce != first->challenge().relay_nonce);
  auto replayed = replayer->send_hello(recorded);
  REQUIRE_FALSE(replayed.has_value());
  REQUIRE(replayed.error().code() == Code::kUnauthorized);
  REQUIRE(replayer->read_until_closed().closed);
  fixture.require_relay_still_serves();
}

TEST_CASE("relay answers PUSH before HELLO with ERROR 1006 and closes", "[integration][hostile]") {
  HostileFixture fixture;
  auto attacker = fixture.connect();
  REQUIRE(attacker->send(Push{auth::random_id<BlobId>(), Bytes(10, 1), 0}, 7).is_ok());
  const auto outcome = attacker->read_until_closed();
  REQUIRE(has_error(outcome, Code::kInvalidState));
  REQUIRE(outcome.closed);
  fixture.require_relay_still_serves();
}

// Found by relay/fuzz/http_fuzz: a chunked body whose last chunk arrives split over three reads
// tripped an assert in Boost 1.74 Beast's chunk parser and aborted a debug relay.
TEST_CASE("relay refuses an HTTP request body and survives a split last chunk", "[integration][hostile]") {
  HostileFixture fixture;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(fixture.relay().port());
  REQUIRE(::inet_pton(AF_INET, fixture.relay().host().c_str(), &address.sin_addr) == 1);
  REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  const std::string parts[] = {
      "POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", "\r", "\n"};
  for (const auto& part : parts) {
    (void)::send(fd, part.data(), part.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string reply(4096, '\0');
  const auto got = ::recv(fd, reply.data(), reply.size(), 0);
  ::close(fd);
  REQUIRE(got > 0);
  reply.resize(static_cast<std::size_t>(got));
  CHECK(reply.rfind("HTTP/1.1 413", 0) == 0);
  fixture.require_relay_still_serves();
}
