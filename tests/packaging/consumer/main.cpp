// Installed-package consumer: opens a device home with the client library, creates an identity
// and round-trips an invite link. Exit 0 when everything behaved. Usage: consumer HOME_DIR
#include <chrono>
#include <cstdio>
#include <future>
#include <string>

#include "blindsync/client/async_client.h"
#include "blindsync/client/invite.h"
#include "blindsync/transport_ws/ws_transport.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer HOME_DIR\n");
    return 2;
  }
  blindsync::AsyncClientOptions options;
  options.transport = [](const std::string& url, const blindsync::TransportOptions& transport) {
    return blindsync::connect_websocket(url, transport);
  };
  auto client = blindsync::AsyncClient::open(argv[1], std::move(options));
  if (!client) {
    std::fprintf(stderr, "open failed: %s\n", client.error().to_string().c_str());
    return 1;
  }
  auto future = (*client)->create_identity("consumer");
  if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    std::fprintf(stderr, "create_identity timed out\n");
    return 1;
  }
  auto identity = future.get();
  if (!identity) {
    std::fprintf(stderr, "create_identity failed: %s\n", identity.error().to_string().c_str());
    return 1;
  }
  auto again = (*client)->identity();
  if (!again || again->device_id != identity->device_id) {
    std::fprintf(stderr, "identity() does not return the created identity\n");
    return 1;
  }

  blindsync::Invite invite;
  invite.relays.push_back({"ws://127.0.0.1:7600/v1/sync", blindsync::RelayId()});
  invite.secret.fill(1);
  invite.group_name = "consumer";
  auto decoded = blindsync::decode_invite(blindsync::encode_invite(invite), 0);
  if (!decoded || !(*decoded == invite)) {
    std::fprintf(stderr, "invite round trip failed\n");
    return 1;
  }
  std::printf("consumer: device %s ok\n", identity->device_id.to_hex().c_str());
  return 0;
}
