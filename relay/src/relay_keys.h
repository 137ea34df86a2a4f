// The relay's long-term Ed25519 identity and the private directory that holds it.
//
// relay.key holds the raw 32-byte Ed25519 seed, nothing else. It is created with
// open(O_CREAT | O_EXCL, 0600), so it is never readable by others even for an instant and two
// starting relays cannot both create it. An existing file is refused (the relay does not start)
// when it is not a regular file, when group or others have any permission on it, or when it is
// not exactly 32 bytes long: a leaked or damaged identity must be looked at by a person, not
// silently used or replaced. The seed is wiped from every buffer after use.
//
// Thread-safety: free functions; do not race two calls on the same path within one process.
#pragma once

#include <filesystem>

#include "blindsync/auth/identity.h"
#include "blindsync/core/status.h"

namespace blindsync::relay {

inline constexpr const char* kRelayKeyFileName = "relay.key";
inline constexpr const char* kRelayDatabaseFileName = "relay.db";

// Creates dir (and missing parents) with mode 0700 if it does not exist. An existing directory is
// used as it is (a warning is logged if group or others may access it). kIoError otherwise.
Status ensure_private_dir(const std::filesystem::path& dir);

// Loads the key at path, or creates a new random one there if no file exists. kIoError with an
// explanation when the file cannot be used.
Result<auth::SigningKey> load_or_create_relay_key(const std::filesystem::path& path);

}  // namespace blindsync::relay
