// The relay never sees plaintext or keys: a marker pushed through it appears in none of its files
// (database, -wal, -shm, keys) and none of its output, and neither does the group secret.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "blindsync/client/invite.h"
#include "blindsync/core/bytes.h"
#include "blindsync/crypto/group_keys.h"
#include "cli_fixture.h"
#include "relay_process.h"

using namespace blindsync;
using namespace blindsync::test;

namespace {

struct FileText {
  std::string path;
  std::string bytes;
};

std::vector<FileText> read_all_files(const std::string& root) {
  std::vector<FileText> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    files.push_back({entry.path().string(), content.str()});
  }
  return files;
}

// Fails the test naming the file if any needle occurs in it.
void require_absent(const std::vector<FileText>& files, const std::vector<std::string>& needles) {
  for (const auto& file : files) {
    for (const auto& needle : needles) {
      INFO("file " << file.path << " contains a forbidden string of " << needle.size() << " bytes");
      REQUIRE(file.bytes.find(needle) == std::string::npos);
    }
  }
}

}  // namespace

TEST_CASE("pushed plaintext and the group secret never reach the relay's files or output",
          "[integration][zero-knowledge]") {
  TempDir dir;
  const std::string data_dir = dir.sub("relay");
  auto relay = RelayProcess::start(data_dir);
  const auto devices = make_paired_devices(dir, relay->url());

  const std::string marker = random_marker("MARKER");
  push_text(devices.a, marker);
  const std::string stdin_marker = random_marker("STDIN-MARKER");
  {
    const auto pushed = run_cli(devices.a.home, {"push", "-"}, stdin_marker);
    INFO(describe(pushed));
    REQUIRE(pushed.exit_code == 0);
  }
  // It went through the relay: B reads both back.
  const auto pulled = pull_json(devices.b);
  REQUIRE(pulled.size() == 2);
  REQUIRE(blob_data(pulled[0]) == marker);
  REQUIRE(blob_data(pulled[1]) == stdin_marker);

  // The group secret and the payload key, in every text form a careless log might use.
  auto invite = decode_invite(devices.invite_link, 0);
  REQUIRE(invite.has_value());
  const ByteView secret(invite->secret.data(), invite->secret.size());
  const auto keys = crypto::GroupKeys::derive(invite->secret);
  const ByteView payload_key(keys.payload_key().data(), keys.payload_key().size());
  std::vector<std::string> needles{marker,
                                   stdin_marker,
                                   std::string(as_chars(secret)),
                                   to_hex(secret),
                                   to_base64url(secret),
                                   to_base64(secret),
                                   std::string(as_chars(payload_key)),
                                   to_hex(payload_key),
                                   devices.invite_link.substr(kInvitePrefix.size())};

  // While the relay runs (database, -wal and -shm as they are now) ...
  require_absent(read_all_files(data_dir), needles);
  // ... and after it has stopped and checkpointed.
  REQUIRE(relay->stop() == 0);
  const auto files = read_all_files(data_dir);
  REQUIRE(!files.empty());
  require_absent(files, needles);
  require_absent({{"relay stdout", relay->process().stdout_text()}, {"relay stderr", relay->process().stderr_text()}},
                 needles);
}
