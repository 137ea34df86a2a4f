// The in-memory tail of journaled pushes. See pending_blobs.h.
#include "store/pending_blobs.h"

#include <algorithm>
#include <utility>

namespace blindsync::relay::sqlite {

void PendingBlobs::add(std::vector<JournalRecord> records) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard guard(mutex_);
  for (JournalRecord& record : records) {
    auto [it, created] = groups_.try_emplace(record.group_id);
    Group& group = it->second;
    if (created) group.first_added = now;
    const std::uint64_t size = record.payload->size();
    group.by_blob_id.emplace(record.blob_id, group.blobs.size());
    group.max_cursor = std::max(group.max_cursor, record.cursor);
    if (!group.max_blob_id || *group.max_blob_id < record.blob_id) group.max_blob_id = record.blob_id;
    group.blobs.push_back(std::move(record));
    group.bytes += size;
    totals_.blobs += 1;
    totals_.bytes += size;
  }
}

std::vector<PendingBlobs::GroupSnapshot> PendingBlobs::snapshot(const std::vector<GroupId>& groups) const {
  std::vector<GroupSnapshot> out;
  out.reserve(groups.size());
  std::lock_guard guard(mutex_);
  for (const GroupId& group_id : groups) {
    const auto it = groups_.find(group_id);
    if (it != groups_.end()) out.push_back(GroupSnapshot{group_id, it->second.blobs, it->second.max_cursor});
  }
  return out;
}

std::unique_lock<std::mutex> PendingBlobs::settled_lock() const {
  std::unique_lock guard(mutex_);
  settled_.wait(guard, [this] { return !applying_; });
  return guard;
}

void PendingBlobs::begin_apply() {
  std::lock_guard guard(mutex_);
  applying_ = true;
}

void PendingBlobs::finish_apply(const std::vector<std::pair<GroupId, Cursor>>& applied) {
  {
    std::lock_guard guard(mutex_);
    erase_applied_locked(applied);
    applying_ = false;
  }
  settled_.notify_all();
}

void PendingBlobs::erase_applied_locked(const std::vector<std::pair<GroupId, Cursor>>& applied) {
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [group_id, through] : applied) {
    const auto it = groups_.find(group_id);
    if (it == groups_.end()) continue;
    Group& group = it->second;
    const auto first_kept = std::upper_bound(group.blobs.begin(), group.blobs.end(), through,
                                             [](Cursor value, const JournalRecord& r) { return value < r.cursor; });
    for (auto blob = group.blobs.begin(); blob != first_kept; ++blob) {
      const std::uint64_t size = blob->payload->size();
      group.bytes -= size;
      totals_.blobs -= 1;
      totals_.bytes -= size;
    }
    group.blobs.erase(group.blobs.begin(), first_kept);
    if (group.blobs.empty() && group.max_cursor <= through) {
      groups_.erase(it);
      continue;
    }
    // What is left came while the applier worked: it waits from now on.
    group.first_added = now;
    reindex(group);
  }
}

void PendingBlobs::reindex(Group& group) {
  group.by_blob_id.clear();
  for (std::size_t i = 0; i < group.blobs.size(); ++i) group.by_blob_id.emplace(group.blobs[i].blob_id, i);
}

std::vector<GroupId> PendingBlobs::oldest_groups(std::size_t min_blobs, std::size_t min_bytes) const {
  std::lock_guard guard(mutex_);
  std::vector<std::pair<std::chrono::steady_clock::time_point, const GroupId*>> order;
  order.reserve(groups_.size());
  for (const auto& [group_id, group] : groups_) order.emplace_back(group.first_added, &group_id);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<GroupId> picked;
  std::size_t blobs = 0;
  std::size_t bytes = 0;
  for (const auto& [added, group_id] : order) {
    if (blobs >= min_blobs || bytes >= min_bytes) break;
    const Group& group = groups_.at(*group_id);
    blobs += group.blobs.size();
    bytes += group.bytes;
    picked.push_back(*group_id);
  }
  return picked;
}

std::optional<std::chrono::steady_clock::time_point> PendingBlobs::oldest_added() const {
  std::lock_guard guard(mutex_);
  std::optional<std::chrono::steady_clock::time_point> oldest;
  for (const auto& [group_id, group] : groups_) {
    if (!oldest || group.first_added < *oldest) oldest = group.first_added;
  }
  return oldest;
}

std::optional<std::pair<Cursor, std::uint64_t>> PendingBlobs::find(const GroupId& group_id,
                                                                   const BlobId& blob_id) const {
  std::lock_guard guard(mutex_);
  const auto group = groups_.find(group_id);
  if (group == groups_.end()) return std::nullopt;
  const auto it = group->second.by_blob_id.find(blob_id);
  if (it == group->second.by_blob_id.end()) return std::nullopt;
  const JournalRecord& record = group->second.blobs[it->second];
  return std::pair{record.cursor, record.timestamp_ms};
}

std::unordered_map<GroupId, Cursor, FixedIdHash> PendingBlobs::max_cursors() const {
  std::lock_guard guard(mutex_);
  std::unordered_map<GroupId, Cursor, FixedIdHash> out;
  out.reserve(groups_.size());
  for (const auto& [group_id, group] : groups_) out.emplace(group_id, group.max_cursor);
  return out;
}

PendingSummary PendingBlobs::summary(const GroupId& group_id) const {
  std::lock_guard guard(mutex_);
  const auto group = groups_.find(group_id);
  if (group == groups_.end()) return {};
  return PendingSummary{group->second.max_cursor, group->second.blobs.size(), group->second.bytes,
                        group->second.max_blob_id};
}

PendingTotals PendingBlobs::totals() const {
  std::lock_guard guard(mutex_);
  return totals_;
}

std::size_t PendingBlobs::group_count() const {
  std::lock_guard guard(mutex_);
  return groups_.size();
}

bool PendingBlobs::empty() const {
  std::lock_guard guard(mutex_);
  return groups_.empty();
}

PendingBlobs::Collected PendingBlobs::collect(const GroupId& group_id, Cursor after, std::size_t limit,
                                              std::uint64_t now_ms) const {
  Collected out;
  std::lock_guard guard(mutex_);
  const auto group = groups_.find(group_id);
  if (group == groups_.end()) return out;
  out.max_cursor = group->second.max_cursor;
  const auto& blobs = group->second.blobs;
  auto it = std::upper_bound(blobs.begin(), blobs.end(), after,
                             [](Cursor value, const JournalRecord& r) { return value < r.cursor; });
  for (; it != blobs.end() && out.blobs.size() < limit; ++it) {
    if (it->expires_at_ms > now_ms) out.blobs.push_back(*it);
  }
  return out;
}

std::pair<std::uint64_t, std::uint64_t> PendingBlobs::remove_expired(std::uint64_t now_ms) {
  std::pair<std::uint64_t, std::uint64_t> removed{0, 0};
  std::lock_guard guard(mutex_);
  for (auto& [group_id, group] : groups_) {
    const auto expired = [&](const JournalRecord& r) { return r.expires_at_ms <= now_ms; };
    if (std::none_of(group.blobs.begin(), group.blobs.end(), expired)) continue;
    for (const JournalRecord& r : group.blobs) {
      if (!expired(r)) continue;
      removed.first += 1;
      removed.second += r.payload->size();
      group.bytes -= r.payload->size();
    }
    std::erase_if(group.blobs, expired);
    reindex(group);
  }
  totals_.blobs -= removed.first;
  totals_.bytes -= removed.second;
  return removed;
}

}  // namespace blindsync::relay::sqlite
