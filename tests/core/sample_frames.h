// Test helpers: one frame of every message type with every field set to a non-default value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blindsync/core/codec.h"
#include "blindsync/core/messages.h"

namespace blindsync::test {

// An id whose bytes are seed, seed+1, ... (distinct per seed, never all zero).
template <typename Id>
Id make_id(std::uint8_t seed) {
  typename Id::Array a{};
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::uint8_t>(seed + i);
  return Id(a);
}

inline Bytes make_payload(std::size_t size, std::uint8_t seed) {
  Bytes b(size);
  for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 7);
  return b;
}

inline Limits sample_limits() {
  Limits l;
  l.max_frame_bytes = 2'000'001;
  l.max_blob_bytes = 1'500'002;
  l.max_pull_limit = 503;
  l.inline_notify_bytes = 8'004;
  l.hello_timeout_ms = 5'005;
  l.max_ttl_seconds = 86'406;
  return l;
}

inline std::vector<MessageType> all_message_types() {
  return {MessageType::kHello,        MessageType::kWelcome,       MessageType::kChallenge,
          MessageType::kBye,          MessageType::kPush,          MessageType::kPushAck,
          MessageType::kPull,         MessageType::kPullResponse,  MessageType::kAck,
          MessageType::kNotify,       MessageType::kDelete,        MessageType::kDeleteAck,
          MessageType::kRevokeDevice, MessageType::kDeviceRevoked, MessageType::kListDevices,
          MessageType::kDevices,      MessageType::kRegisterPush,  MessageType::kUnregisterPush,
          MessageType::kError};
}

// One sample frame per message type, in all_message_types() order; request ids differ.
// Find a type's frame with sample_frame(type) rather than by index: the list grows.
inline std::vector<Frame> sample_frames() {
  std::vector<Frame> frames;
  std::uint32_t rid = 1000;
  auto add = [&](Message m) { frames.push_back(Frame{rid++, std::move(m)}); };

  Hello hello;
  hello.device_id = make_id<DeviceId>(1);
  hello.group_id = make_id<GroupId>(2);
  hello.device_name = "Ada's laptop \xC3\xA9";  // UTF-8 e-acute
  hello.last_cursor = 0x1'0000'0001ull;
  hello.client_nonce = make_id<Nonce>(3);
  hello.access_token = "tok-123";
  hello.device_sig = make_id<Signature>(4);
  hello.group_sig = make_id<Signature>(5);
  add(hello);

  Welcome welcome;
  welcome.session_id = 77;
  welcome.epoch = 0xDEADBEEFCAFEull;
  welcome.max_cursor = 4242;
  welcome.pending_count = 17;
  welcome.limits = sample_limits();
  welcome.relay_sig = make_id<Signature>(6);
  add(welcome);

  Challenge challenge;
  challenge.relay_id = make_id<RelayId>(7);
  challenge.relay_nonce = make_id<Nonce>(8);
  challenge.versions = {1, 2, 70000};
  challenge.limits = sample_limits();
  add(challenge);

  add(Bye{3001, "relay shutting down"});

  Push push;
  push.blob_id = make_id<BlobId>(9);
  push.payload = make_payload(300, 1);
  push.ttl_seconds = 3600;
  add(push);

  add(PushAck{make_id<BlobId>(10), 99, 1'700'000'000'123ull, true});
  add(Pull{55, 200});

  PullResponse pr;
  pr.blobs.push_back(PulledBlob{make_id<BlobId>(11), 56, make_id<DeviceId>(12), 1'700'000'000'001ull,
                                make_payload(40, 2)});
  pr.blobs.push_back(PulledBlob{make_id<BlobId>(13), 57, make_id<DeviceId>(14), 1'700'000'000'002ull,
                                make_payload(70000, 3)});
  pr.has_more = true;
  pr.max_cursor = 900;
  add(pr);

  add(Ack{57});

  Notify notify;
  notify.blob_id = make_id<BlobId>(15);
  notify.cursor = 58;
  notify.sender_id = make_id<DeviceId>(16);
  notify.timestamp = 1'700'000'000'003ull;
  notify.size = 12;
  notify.payload = make_payload(12, 4);
  add(notify);

  add(Delete{make_id<BlobId>(17), true});
  add(DeleteAck{make_id<BlobId>(17), true});
  add(RevokeDevice{make_id<DeviceId>(18), "lost phone"});
  add(DeviceRevoked{make_id<DeviceId>(19), "lost phone", make_id<DeviceId>(20), 1'700'000'000'004ull});
  add(ListDevices{});

  Devices devices;
  devices.devices.push_back(DeviceInfo{make_id<DeviceId>(21), "desk", 1'700'000'000'005ull, 12, true, false});
  devices.devices.push_back(DeviceInfo{make_id<DeviceId>(22), "phone", 1'700'000'000'006ull, 13, false, true});
  add(devices);

  add(RegisterPush{"apns-token-abc", "ios"});
  add(UnregisterPush{"fcm-token-def", "android"});
  add(Error{1004, "not the blob owner", 1009});
  return frames;
}

inline Frame sample_frame(MessageType type) {
  for (Frame& frame : sample_frames()) {
    if (frame.type() == type) return frame;
  }
  return Frame{};
}

}  // namespace blindsync::test
