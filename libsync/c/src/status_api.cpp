// bs_status_json: the client's status as a JSON document (no secrets, no payloads).
#include <nlohmann/json.hpp>
#include <string>

#include "c_api_internal.h"

namespace blindsync::capi {
namespace {

std::string status_document(const AsyncClient& client) {
  nlohmann::json doc;
  if (auto identity = client.identity()) {
    doc["device"] = {{"device_id", identity->device_id.to_hex()}, {"name", identity->name}};
  } else {
    doc["device"] = nullptr;
  }
  doc["groups"] = nlohmann::json::array();
  for (const GroupStatus& status : client.status()) {
    nlohmann::json relays = nlohmann::json::array();
    for (const RelayStatus& relay : status.relays) {
      relays.push_back({{"url", relay.url},
                        {"state", connection_state_name(relay.state)},
                        {"cursor", relay.cursor},
                        {"relay_max_cursor", relay.relay_max_cursor}});
    }
    doc["groups"].push_back({{"group_id", status.group.group_id.to_hex()},
                             {"name", status.group.name},
                             {"relay_url", status.group.relay_url},
                             {"relay_id", status.group.relay_id.to_hex()},
                             {"cursor", status.group.cursor},
                             {"epoch", status.group.epoch},
                             {"outbox", status.outbox},
                             {"relays", std::move(relays)}});
  }
  // Names are user text: replace invalid UTF-8 rather than fail.
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace
}  // namespace blindsync::capi

extern "C" {

char* bs_status_json(bs_client* client, bs_error* err) {
  if (client == nullptr) {
    blindsync::capi::set_error(err, BS_ERR_INVALID_ARGUMENT, "client must not be NULL");
    return nullptr;
  }
  char* out = nullptr;
  blindsync::capi::guarded(err, [&]() -> int {
    out = blindsync::capi::dup_string(blindsync::capi::status_document(*client->client));
    if (out == nullptr) return blindsync::capi::set_error(err, BS_ERR_OUT_OF_MEMORY, "out of memory");
    return blindsync::capi::set_ok(err);
  });
  return out;
}

}  // extern "C"
