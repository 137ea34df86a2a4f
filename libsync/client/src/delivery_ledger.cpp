#include "delivery_ledger.h"

#include <algorithm>
#include <optional>

namespace blindsync::client_detail {

void DeliveryLedger::add_link(LinkId link, const GroupId& group, const std::string& relay_url) {
  links_[link] = Link{group, relay_url, {}};
}

void DeliveryLedger::note_blob(const GroupId& group, const BlobId& blob, Cursor cursor, std::uint64_t seq) {
  queued_.push_back(QueuedBlob{seq, group, blob, cursor});
  pending_[group].insert(blob);
}

void DeliveryLedger::note_cursor(LinkId link, Cursor cursor, std::uint64_t required_seq) {
  auto it = links_.find(link);
  if (it == links_.end()) return;
  auto& marks = it->second.marks;
  // Consecutive marks with the same requirement collapse into the last one: only the highest
  // cursor of such a run is ever persisted.
  if (!marks.empty() && marks.back().required_seq == required_seq) {
    marks.back().cursor = std::max(marks.back().cursor, cursor);
    return;
  }
  marks.push_back(Mark{cursor, required_seq});
}

bool DeliveryLedger::is_pending(const GroupId& group, const BlobId& blob) const {
  auto it = pending_.find(group);
  return it != pending_.end() && it->second.count(blob) != 0;
}

void DeliveryLedger::reset_link(LinkId link) {
  auto it = links_.find(link);
  if (it != links_.end()) it->second.marks.clear();
}

std::vector<DeliveryLedger::GroupCommit> DeliveryLedger::take_committable(std::uint64_t confirmed_seq) {
  std::map<GroupId, GroupCommit> by_group;
  auto commit_for = [&](const GroupId& group) -> GroupCommit& {
    auto& commit = by_group[group];
    commit.group = group;
    return commit;
  };
  while (!queued_.empty() && queued_.front().seq <= confirmed_seq) {
    const QueuedBlob& blob = queued_.front();
    commit_for(blob.group).seen.push_back(SeenBlob{blob.blob, blob.cursor});
    queued_.pop_front();
  }
  for (auto& [id, link] : links_) {
    std::optional<Cursor> cursor;
    while (!link.marks.empty() && link.marks.front().required_seq <= confirmed_seq) {
      cursor = link.marks.front().cursor;
      link.marks.pop_front();
    }
    if (cursor) {
      auto& commit = commit_for(link.group);
      commit.cursors.push_back(RelayCursor{link.relay_url, *cursor});
      commit.links.emplace_back(id, *cursor);
    }
  }
  std::vector<GroupCommit> out;
  out.reserve(by_group.size());
  for (auto& [group, commit] : by_group) out.push_back(std::move(commit));
  return out;
}

void DeliveryLedger::forget(const GroupCommit& commit) {
  auto it = pending_.find(commit.group);
  if (it == pending_.end()) return;
  for (const auto& seen : commit.seen) it->second.erase(seen.blob_id);
  if (it->second.empty()) pending_.erase(it);
}

}  // namespace blindsync::client_detail
