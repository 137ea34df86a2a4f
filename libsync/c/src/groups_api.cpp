// Identity, groups and push across the C boundary. One-shot calls wait on the AsyncClient's
// futures with the caller's timeout.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "c_api_internal.h"

namespace blindsync::capi {
namespace {

void fill_identity(bs_identity* out, const DeviceIdentity& identity) {
  std::memset(out, 0, sizeof(*out));
  copy_truncated(out->device_id, sizeof(out->device_id), identity.device_id.to_hex());
  copy_truncated(out->name, sizeof(out->name), identity.name);
}

// Fills *out (zeroed first). Returns false when out of memory (*out then owns nothing).
bool fill_group(bs_group_info* out, const GroupInfo& group) {
  std::memset(out, 0, sizeof(*out));
  copy_truncated(out->group_id, sizeof(out->group_id), group.group_id.to_hex());
  copy_truncated(out->relay_id, sizeof(out->relay_id), group.relay_id.to_hex());
  out->cursor = group.cursor;
  out->name = dup_string(group.name);
  out->relay_url = dup_string(group.relay_url);
  if (out->name == nullptr || out->relay_url == nullptr) {
    bs_group_info_free(out);
    return false;
  }
  return true;
}

int timed_out(bs_error* err, const char* what) {
  return set_error(err, BS_ERR_TIMEOUT,
                   std::string(what) + " did not complete in time (it may still complete)");
}

int no_client(bs_error* err) { return set_error(err, BS_ERR_INVALID_ARGUMENT, "client must not be NULL"); }

}  // namespace
}  // namespace blindsync::capi

using blindsync::capi::guarded;
using blindsync::capi::set_error;
using blindsync::capi::set_ok;

extern "C" {

int bs_identity_create(bs_client* client, const char* name, int64_t timeout_ms, bs_identity* out,
                       bs_error* err) {
  if (client == nullptr) return blindsync::capi::no_client(err);
  if (name == nullptr) return set_error(err, BS_ERR_INVALID_ARGUMENT, "name must not be NULL");
  return guarded(err, [&]() -> int {
    auto future = client->client->create_identity(name);
    if (!blindsync::capi::wait_future(future, timeout_ms))
      return blindsync::capi::timed_out(err, "identity creation");
    auto created = future.get();
    if (!created) return set_error(err, created.error());
    if (out != nullptr) blindsync::capi::fill_identity(out, *created);
    return set_ok(err);
  });
}

int bs_identity_get(bs_client* client, bs_identity* out) {
  if (client == nullptr || out == nullptr) return -BS_ERR_INVALID_ARGUMENT;
  bs_error err{};
  int rc = guarded(&err, [&]() -> int {
    auto identity = client->client->identity();
    if (!identity) return 0;
    blindsync::capi::fill_identity(out, *identity);
    return 1;
  });
  return rc == 0 || rc == 1 ? rc : -rc;
}

void bs_group_info_free(bs_group_info* info) {
  if (info == nullptr) return;
  std::free(info->name);
  std::free(info->relay_url);
  info->name = nullptr;
  info->relay_url = nullptr;
}

int bs_group_create(bs_client* client, const char* const* relay_urls, size_t n_relays, const char* name,
                    int64_t timeout_ms, bs_group_info* out_group, char** out_invite_link, bs_error* err) {
  if (out_group != nullptr) std::memset(out_group, 0, sizeof(*out_group));
  if (out_invite_link != nullptr) *out_invite_link = nullptr;
  if (client == nullptr) return blindsync::capi::no_client(err);
  if (relay_urls == nullptr || n_relays == 0) {
    return set_error(err, BS_ERR_INVALID_ARGUMENT, "at least one relay URL is required");
  }
  return guarded(err, [&]() -> int {
    std::vector<std::string> urls;
    urls.reserve(n_relays);
    for (size_t i = 0; i < n_relays; ++i) {
      if (relay_urls[i] == nullptr)
        return set_error(err, BS_ERR_INVALID_ARGUMENT, "relay URL must not be NULL");
      urls.emplace_back(relay_urls[i]);
    }
    auto future = client->client->create_group(urls, name == nullptr ? std::string() : std::string(name));
    if (!blindsync::capi::wait_future(future, timeout_ms))
      return blindsync::capi::timed_out(err, "group creation");
    auto created = future.get();
    if (!created) return set_error(err, created.error());
    char* link = nullptr;
    if (out_invite_link != nullptr) {
      link = blindsync::capi::dup_string(created->invite_link);
      if (link == nullptr) return set_error(err, BS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (out_group != nullptr && !blindsync::capi::fill_group(out_group, created->group)) {
      bs_string_free(link);
      return set_error(err, BS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (out_invite_link != nullptr) *out_invite_link = link;
    return set_ok(err);
  });
}

int bs_group_join(bs_client* client, const char* invite_link, int64_t timeout_ms, bs_group_info* out_group,
                  bs_error* err) {
  if (out_group != nullptr) std::memset(out_group, 0, sizeof(*out_group));
  if (client == nullptr) return blindsync::capi::no_client(err);
  if (invite_link == nullptr) return set_error(err, BS_ERR_INVALID_ARGUMENT, "invite_link must not be NULL");
  return guarded(err, [&]() -> int {
    auto future = client->client->join_group(invite_link);
    if (!blindsync::capi::wait_future(future, timeout_ms))
      return blindsync::capi::timed_out(err, "joining the group");
    auto joined = future.get();
    if (!joined) return set_error(err, joined.error());
    if (out_group != nullptr && !blindsync::capi::fill_group(out_group, *joined)) {
      return set_error(err, BS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return set_ok(err);
  });
}

int bs_groups_list(bs_client* client, bs_group_info** out_groups, size_t* out_count, bs_error* err) {
  if (out_groups != nullptr) *out_groups = nullptr;
  if (out_count != nullptr) *out_count = 0;
  if (client == nullptr) return blindsync::capi::no_client(err);
  if (out_groups == nullptr || out_count == nullptr) {
    return set_error(err, BS_ERR_INVALID_ARGUMENT, "out_groups and out_count must not be NULL");
  }
  return guarded(err, [&]() -> int {
    std::vector<blindsync::GroupInfo> groups = client->client->groups();
    if (groups.empty()) return set_ok(err);
    auto* array = static_cast<bs_group_info*>(std::calloc(groups.size(), sizeof(bs_group_info)));
    if (array == nullptr) return set_error(err, BS_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < groups.size(); ++i) {
      if (!blindsync::capi::fill_group(&array[i], groups[i])) {
        bs_group_list_free(array, i);
        return set_error(err, BS_ERR_OUT_OF_MEMORY, "out of memory");
      }
    }
    *out_groups = array;
    *out_count = groups.size();
    return set_ok(err);
  });
}

void bs_group_list_free(bs_group_info* groups, size_t count) {
  if (groups == nullptr) return;
  for (size_t i = 0; i < count; ++i) bs_group_info_free(&groups[i]);
  std::free(groups);
}

int bs_push(bs_client* client, const char* group_id_hex, const void* data, size_t len, uint32_t ttl_seconds,
            char out_blob_id[33], bs_error* err) {
  if (out_blob_id != nullptr) out_blob_id[0] = '\0';
  if (client == nullptr) return blindsync::capi::no_client(err);
  if (group_id_hex == nullptr)
    return set_error(err, BS_ERR_INVALID_ARGUMENT, "group_id_hex must not be NULL");
  if (data == nullptr && len != 0)
    return set_error(err, BS_ERR_INVALID_ARGUMENT, "data is NULL but len is not 0");
  return guarded(err, [&]() -> int {
    auto group = blindsync::GroupId::parse_hex(group_id_hex);
    if (!group) return set_error(err, group.error());
    blindsync::ByteView bytes(static_cast<const std::uint8_t*>(data), len);
    auto pushed = client->client->push(*group, bytes, ttl_seconds);
    if (!pushed) return set_error(err, pushed.error());
    if (out_blob_id != nullptr) blindsync::capi::copy_truncated(out_blob_id, 33, pushed->to_hex());
    return set_ok(err);
  });
}

}  // extern "C"
