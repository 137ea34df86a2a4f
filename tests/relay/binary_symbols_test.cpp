// The zero-knowledge boundary is a link boundary (DESIGN.md "Build graph"): the built
// blindsync-relay executable must carry no payload crypto. nm lists what the binary references
// from shared libraries (libsodium is linked dynamically) and what it defines itself; neither may
// name AEAD, password hashing, HMAC or HKDF. The test also requires a symbol the relay does need
// (Ed25519 verification), so an nm that printed nothing could not make it pass.
#include <sys/wait.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#ifndef BLINDSYNC_RELAY_BINARY
#error "BLINDSYNC_RELAY_BINARY must name the built blindsync-relay"
#endif

namespace {

// Runs a shell command and returns its stdout; fails the test if it does not exit 0.
std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  INFO(command);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return out;
}

std::vector<std::string> lines_containing(const std::string& text, const std::vector<std::string>& needles) {
  std::vector<std::string> hits;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    std::string lower = line;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto& needle : needles) {
      if (lower.find(needle) != std::string::npos) {
        hits.push_back(line);
        break;
      }
    }
    start = end + 1;
  }
  return hits;
}

const std::string kBinary = BLINDSYNC_RELAY_BINARY;
const std::vector<std::string> kForbidden = {"crypto_aead_", "crypto_pwhash", "crypto_auth_hmacsha256", "hkdf",
                                             "crypto_secretbox", "crypto_kdf"};

TEST_CASE("blindsync-relay imports no payload crypto from libsodium", "[zero_knowledge]") {
  const std::string undefined = run("nm -D --undefined-only '" + kBinary + "'");
  // The check can fail: the relay does verify HELLO signatures through libsodium.
  REQUIRE(undefined.find("crypto_sign_verify_detached") != std::string::npos);
  const auto hits = lines_containing(undefined, kForbidden);
  for (const auto& hit : hits) UNSCOPED_INFO("forbidden import: " << hit);
  CHECK(hits.empty());
}

TEST_CASE("blindsync-relay defines no payload crypto of its own", "[zero_knowledge]") {
  const std::string all = run("nm -C '" + kBinary + "'");
  REQUIRE(all.find("blindsync::relay::Hub::on_frame") != std::string::npos);  // symbols are there to inspect
  const auto hits = lines_containing(all, kForbidden);
  for (const auto& hit : hits) UNSCOPED_INFO("forbidden symbol: " << hit);
  CHECK(hits.empty());
}

}  // namespace
