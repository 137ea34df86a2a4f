// transport_ws over TLS (wss://) against a real blindsync-relay serving a self-signed certificate
// made by the test with the openssl command line tool: the pinned certificate connects, a wrong
// pin or no pin (the certificate is in no system CA store) fails, and malformed pins are refused.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cctype>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "blindsync/core/codec.h"
#include "blindsync/core/messages.h"
#include "blindsync/transport_ws/ws_transport.h"
#include "process.h"

namespace {

using namespace blindsync;
using blindsync::test::Process;
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "blindsync-wss-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs a program to completion; its stdout, REQUIRE-ing exit code 0.
std::string run_ok(const std::string& program, const std::vector<std::string>& args) {
  auto child = Process::start(program, args);
  const auto code = child->wait(std::chrono::seconds(60));
  INFO(program << " failed: " << child->stderr_text());
  REQUIRE(code.has_value());
  REQUIRE(*code == 0);
  return child->stdout_text();
}

struct TlsRelay {
  TempDir dir;
  std::string fingerprint;  // "AB:CD:..." as openssl prints it
  std::unique_ptr<Process> relay;
  std::string url;          // wss://127.0.0.1:PORT/v1/sync
  std::string relay_id_hex;

  TlsRelay() {
    const fs::path cert = dir.path() / "cert.pem";
    const fs::path key = dir.path() / "key.pem";
    run_ok("/usr/bin/openssl",
           {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            key.string(), "-out", cert.string(), "-days", "2", "-subj", "/CN=localhost", "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost"});
    ::chmod(key.c_str(), 0600);
    const std::string printed = run_ok("/usr/bin/openssl", {"x509", "-noout", "-fingerprint", "-sha256", "-in", cert.string()});
    fingerprint = printed.substr(printed.find('=') + 1);
    while (!fingerprint.empty() && std::isspace(static_cast<unsigned char>(fingerprint.back()))) fingerprint.pop_back();
    REQUIRE(fingerprint.size() == 95);  // 32 bytes as XX:XX:...

    relay = Process::start(BLINDSYNC_RELAY_BINARY,
                           {"--listen", "127.0.0.1:0", "--data", (dir.path() / "data").string(), "--durability",
                            "normal", "--tls-cert", cert.string(), "--tls-key", key.string()});
    const auto line = relay->wait_for_line("listening on ", std::chrono::seconds(60));
    INFO("relay stderr: " << relay->stderr_text());
    REQUIRE(line.has_value());
    static const std::regex kListening(R"(listening on (wss://127\.0\.0\.1:\d+/v1/sync) relay_id=([0-9a-f]{64}))");
    std::smatch match;
    REQUIRE(std::regex_search(*line, match, kListening));
    url = match[1];
    relay_id_hex = match[2];
  }
  ~TlsRelay() {
    relay->send_signal(SIGTERM);
    (void)relay->wait(std::chrono::seconds(30));
  }
};

TransportOptions pinned(std::string pin) {
  TransportOptions options;
  options.connect_timeout = std::chrono::seconds(10);
  options.pinned_cert_sha256 = std::move(pin);
  return options;
}

TEST_CASE("wss:// with the pinned certificate connects and speaks the protocol", "[transport][wss]") {
  TlsRelay relay;
  auto transport = connect_websocket(relay.url, pinned(relay.fingerprint));
  INFO((transport.has_value() ? std::string() : transport.error().to_string()));
  REQUIRE(transport.has_value());
  auto first = (*transport)->receive(std::chrono::seconds(10));
  REQUIRE(first.has_value());
  auto frame = decode_frame(ByteView(first->data(), first->size()));
  REQUIRE(frame.has_value());
  REQUIRE(std::holds_alternative<Challenge>(frame->message));
  CHECK(std::get<Challenge>(frame->message).relay_id.to_hex() == relay.relay_id_hex);

  // The pin may be written without colons, in lower case.
  std::string compact;
  for (char c : relay.fingerprint) {
    if (c != ':') compact += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  auto again = connect_websocket(relay.url, pinned(compact));
  CHECK(again.has_value());
}

TEST_CASE("wss:// with a wrong pin fails, naming the pin", "[transport][wss][hostile]") {
  TlsRelay relay;
  std::string wrong = relay.fingerprint;
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  auto transport = connect_websocket(relay.url, pinned(wrong));
  REQUIRE_FALSE(transport.has_value());
  CHECK(transport.error().message().find("pinned") != std::string::npos);
}

TEST_CASE("wss:// without a pin refuses a certificate no system CA vouches for", "[transport][wss][hostile]") {
  TlsRelay relay;
  auto transport = connect_websocket(relay.url, pinned(""));
  REQUIRE_FALSE(transport.has_value());
  CHECK(transport.error().message().find("TLS handshake") != std::string::npos);
}

TEST_CASE("ws:// to a TLS port fails instead of hanging", "[transport][wss][hostile]") {
  TlsRelay relay;
  std::string plain_url = relay.url;
  plain_url.replace(0, 6, "ws://");
  auto transport = connect_websocket(plain_url, pinned(""));
  CHECK_FALSE(transport.has_value());
}

TEST_CASE("malformed pins and pins on ws:// URLs are refused before connecting", "[transport][wss][hostile]") {
  for (const std::string& pin :
       std::vector<std::string>{"abcd", std::string(64, 'g'), std::string(66, 'a'), std::string(62, 'a')}) {
    INFO(pin);
    auto transport = connect_websocket("wss://127.0.0.1:1/v1/sync", pinned(pin));
    REQUIRE_FALSE(transport.has_value());
    CHECK(transport.error().code() == Code::kInvalidArgument);
  }
  auto plain = connect_websocket("ws://127.0.0.1:1/v1/sync", pinned(std::string(64, 'a')));
  REQUIRE_FALSE(plain.has_value());
  CHECK(plain.error().code() == Code::kInvalidArgument);
  CHECK(plain.error().message().find("wss://") != std::string::npos);
  auto scheme = connect_websocket("https://127.0.0.1:1/v1/sync", TransportOptions{});
  REQUIRE_FALSE(scheme.has_value());
  CHECK(scheme.error().code() == Code::kInvalidArgument);
}

}  // namespace
