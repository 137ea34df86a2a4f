// W5's catch-up half: what a new device of a group pays to get its history through the library,
// beside W3's raw PULL of the same kind of blobs. Client::pull decrypts and verifies each blob,
// hands it to the app in cursor order, and persists the cursor and the seen blob ids per page.
#include "w5_client_pull.h"

#include <chrono>

#include "blindsync/client/client.h"
#include "blindsync/transport_ws/ws_transport.h"
#include "report.h"
#include "stats.h"

namespace blindsync::bench {

nlohmann::json client_pull_figures(const std::filesystem::path& home, const std::string& invite_link,
                                   std::uint64_t expected) {
  ClientOptions options;
  options.transport = connect_websocket;
  auto client = Client::open(home.string(), std::move(options));
  if (!client) return part_failure("Client::open: " + client.error().to_string());
  if (auto id = (*client)->create_identity("bench-w5-reader"); !id) {
    return part_failure("create_identity: " + id.error().to_string());
  }
  auto joined = (*client)->join_group(invite_link);
  if (!joined) return part_failure("join_group: " + joined.error().to_string());

  std::uint64_t blobs = 0, bytes = 0, out_of_order = 0;
  Cursor last = 0;
  const auto start = std::chrono::steady_clock::now();
  const Status pulled = (*client)->pull(joined->group_id, PullOptions{}, [&](const ReceivedBlob& blob) {
    if (blob.cursor <= last) ++out_of_order;
    last = blob.cursor;
    ++blobs;
    bytes += blob.data.size();
  });
  const double seconds = seconds_between(start, std::chrono::steady_clock::now());
  if (!pulled) return part_failure("pull: " + pulled.to_string());

  nlohmann::json out;
  out["ok"] = blobs == expected && out_of_order == 0;
  out["blobs"] = blobs;
  out["expected"] = expected;
  out["seconds"] = round_to(seconds, 3);
  out["blobs_per_s"] = round_to(seconds > 0 ? static_cast<double>(blobs) / seconds : 0, 1);
  out["mb_per_s"] = round_to(seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0, 1);
  if (blobs != expected) out["error"] = "pulled " + std::to_string(blobs) + " of " + std::to_string(expected) + " blobs";
  return out;
}

}  // namespace blindsync::bench
