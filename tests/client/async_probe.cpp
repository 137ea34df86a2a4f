// async_probe: a small program that drives an AsyncClient in its own process, so that tests can
// kill it at awkward moments (tests/client/async_client_process_test.cpp).
//
//   async_probe push HOME GROUP_HEX COUNT PREFIX [--wait]
//       pushes COUNT blobs "PREFIX-<i>", printing "pushed <i> <blob_id hex>" as each push()
//       returns (the blob is then durable in the outbox), then "queued". With --wait it then waits
//       until the outbox is empty and prints "drained"; without, it waits to be killed.
//   async_probe drain HOME
//       waits until the outbox (all groups) is empty, prints "drained" and exits 0.
//
// Exit codes: 0 done, 1 failure (printed on stderr), 2 bad arguments. Every wait is bounded (60 s).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "blindsync/client/async_client.h"
#include "blindsync/transport_ws/ws_transport.h"

using namespace blindsync;

namespace {

constexpr auto kMaxWait = std::chrono::seconds(60);

std::unique_ptr<AsyncClient> open_client(const std::string& home) {
  AsyncClientOptions options;
  options.transport = [](const std::string& url, const TransportOptions& transport_options) {
    return connect_websocket(url, transport_options);
  };
  options.request_timeout = std::chrono::milliseconds(5000);
  options.backoff = BackoffPolicy{std::chrono::milliseconds(20), std::chrono::milliseconds(200),
                                  std::chrono::milliseconds(20)};
  auto client = AsyncClient::open(home, std::move(options));
  if (!client) {
    std::cerr << "async_probe: " << client.error().to_string() << "\n";
    std::exit(1);
  }
  return std::move(*client);
}

std::uint64_t outbox_size(AsyncClient& client) {
  std::uint64_t total = 0;
  for (const auto& group : client.status()) total += group.outbox;
  return total;
}

int wait_drained(AsyncClient& client) {
  const auto deadline = std::chrono::steady_clock::now() + kMaxWait;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto& event : client.poll_events()) {
      if (const auto* error = std::get_if<EventError>(&event)) {
        std::cerr << "async_probe: event error " << error->status.to_string() << "\n";
      }
    }
    if (outbox_size(client) == 0) {
      std::cout << "drained" << std::endl;
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::cerr << "async_probe: outbox not drained within 60 s\n";
  return 1;
}

int usage() {
  std::cerr << "usage: async_probe push HOME GROUP_HEX COUNT PREFIX [--wait] | async_probe drain HOME\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string command = argv[1];
  const std::string home = argv[2];
  if (command == "drain" && argc == 3) {
    auto client = open_client(home);
    return wait_drained(*client);
  }
  if (command != "push" || argc < 6 || argc > 7) return usage();
  auto group = GroupId::parse_hex(argv[3]);
  if (!group) return usage();
  const int count = std::atoi(argv[4]);
  const std::string prefix = argv[5];
  const bool wait = argc == 7 && std::string(argv[6]) == "--wait";
  auto client = open_client(home);
  for (int i = 0; i < count; ++i) {
    const std::string text = prefix + "-" + std::to_string(i);
    auto pushed = client->push(*group, as_bytes(text));
    if (!pushed) {
      std::cerr << "async_probe: push failed: " << pushed.error().to_string() << "\n";
      return 1;
    }
    std::cout << "pushed " << i << " " << pushed->to_hex() << std::endl;
  }
  std::cout << "queued" << std::endl;
  if (wait) return wait_drained(*client);
  // Wait to be killed (bounded, in case the test forgets).
  const auto deadline = std::chrono::steady_clock::now() + kMaxWait;
  while (std::chrono::steady_clock::now() < deadline) {
    (void)client->poll_events();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 1;
}
