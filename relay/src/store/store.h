// Store: the relay's durable blob storage, behind an interface so SQLite (default) and
// PostgreSQL (scale-out) can both implement it. No Beast/Asio here.
//
// Pushes are asynchronous: submit_push() queues the request for the single writer, which commits
// concurrent pushes in one transaction (group commit) and only then calls each completion. With
// durability kFull the transaction is fsynced before completions run, so a PUSH_ACK sent from a
// completion promises the blob survives power loss.
//
// Thread-safety: all methods may be called from any thread. Completions run on the writer
// thread: they must be short (post to the session's executor) and must not call back into the
// Store synchronously.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "blindsync/core/bytes.h"
#include "blindsync/core/ids.h"
#include "blindsync/core/messages.h"
#include "blindsync/core/status.h"

namespace blindsync::relay {

enum class Durability { kFull, kNormal };

struct StoreOptions {
  std::string path;                     // SQLite file (created if missing)
  Durability durability = Durability::kFull;
  std::size_t max_batch = 256;          // pushes per group-commit transaction
};

struct PushRequest {
  GroupId group_id;
  BlobId blob_id;
  DeviceId sender_id;
  Bytes payload;
  std::uint64_t timestamp_ms = 0;   // relay clock at receipt
  std::uint64_t expires_at_ms = 0;  // timestamp + ttl
};

struct PushResult {
  Cursor cursor = 0;
  std::uint64_t timestamp_ms = 0;  // original timestamp when duplicate
  bool duplicate = false;
};

using PushCompletion = std::function<void(Result<PushResult>)>;

struct PullPage {
  std::vector<PulledBlob> blobs;  // ascending cursor, expired ones never included
  bool has_more = false;
  Cursor max_cursor = 0;
};

struct StoreStats {
  std::uint64_t groups = 0;
  std::uint64_t blobs = 0;
  std::uint64_t bytes = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Random per database, made at creation, stable across restarts.
  virtual std::uint64_t epoch() const = 0;

  virtual void submit_push(PushRequest request, PushCompletion done) = 0;
  // Blobs with cursor > after_cursor that have not expired at now_ms, at most limit of them.
  virtual Result<PullPage> pull(const GroupId& group, Cursor after_cursor, std::uint32_t limit,
                                std::uint64_t now_ms) = 0;
  virtual Result<Cursor> max_cursor(const GroupId& group) = 0;
  virtual Result<StoreStats> stats() = 0;

  // Finishes queued pushes (their completions run), then closes the database cleanly.
  virtual void close() = 0;
};

// Opens (creating and migrating as needed) the SQLite store.
Result<std::unique_ptr<Store>> open_sqlite_store(const StoreOptions& options);

}  // namespace blindsync::relay
