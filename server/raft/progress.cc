#include "server/raft/progress.h"

#include <algorithm>
#include <vector>

#include "server/base/check.h"

namespace cairn::raft {

void Inflights::Add(LogIndex last_index, uint64_t bytes) {
  CAIRN_CHECK(!Full()) << "inflights full";
  CAIRN_CHECK(window_.empty() || window_.back().first < last_index)
      << "inflight " << last_index << " not increasing";
  window_.emplace_back(last_index, bytes);
  bytes_ += bytes;
}

void Inflights::FreeLE(LogIndex index) {
  while (!window_.empty() && window_.front().first <= index) {
    bytes_ -= window_.front().second;
    window_.pop_front();
  }
}

void Inflights::FreeFirstOne() {
  if (window_.empty()) return;
  bytes_ -= window_.front().second;
  window_.pop_front();
}

void Inflights::Reset() {
  window_.clear();
  bytes_ = 0;
}

std::string_view ProgressStateName(ProgressState state) {
  switch (state) {
    case ProgressState::kProbe:
      return "Probe";
    case ProgressState::kReplicate:
      return "Replicate";
    case ProgressState::kSnapshot:
      return "Snapshot";
  }
  return "Unknown";
}

void Progress::BecomeProbe() {
  // After a snapshot, the follower has at least the snapshot's entries: probe right after it.
  if (state == ProgressState::kSnapshot) {
    LogIndex pending = pending_snapshot;
    state = ProgressState::kProbe;
    next = std::max(match + 1, pending + 1);
  } else {
    state = ProgressState::kProbe;
    next = match + 1;
  }
  pending_snapshot = 0;
  msg_app_flow_paused = false;
  inflights.Reset();
}

void Progress::BecomeReplicate() {
  state = ProgressState::kReplicate;
  next = match + 1;
  pending_snapshot = 0;
  msg_app_flow_paused = false;
  inflights.Reset();
}

void Progress::BecomeSnapshot(LogIndex snapshot_index) {
  state = ProgressState::kSnapshot;
  pending_snapshot = snapshot_index;
  msg_app_flow_paused = false;
  inflights.Reset();
}

bool Progress::MaybeUpdate(LogIndex n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    msg_app_flow_paused = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::MaybeDecrTo(LogIndex rejected, LogIndex match_hint) {
  if (state == ProgressState::kReplicate) {
    // Pipelined appends: a rejection of an index at or below match is stale.
    if (rejected <= match) return false;
    next = match + 1;  // the caller moves to probe and probes from match
    return true;
  }
  // Probe: only the rejection of the last probe (next - 1) is current.
  if (next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  msg_app_flow_paused = false;
  return true;
}

void Progress::SentEntries(size_t entries, LogIndex last_index, uint64_t bytes) {
  switch (state) {
    case ProgressState::kReplicate:
      if (entries > 0) {
        next = last_index + 1;
        inflights.Add(last_index, bytes);
      }
      break;
    case ProgressState::kProbe:
      if (entries > 0) msg_app_flow_paused = true;
      break;
    case ProgressState::kSnapshot:
      CAIRN_CHECK(false) << "sending append in snapshot state";
  }
}

bool Progress::IsPaused() const {
  switch (state) {
    case ProgressState::kProbe:
      return msg_app_flow_paused;
    case ProgressState::kReplicate:
      return inflights.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

void ProgressTracker::ApplyConfState(const ConfState& cs, LogIndex next_index) {
  voters_ = std::set<MemberId>(cs.voters.begin(), cs.voters.end());
  learners_ = std::set<MemberId>(cs.learners.begin(), cs.learners.end());
  for (auto it = progress_.begin(); it != progress_.end();) {
    if (!voters_.contains(it->first) && !learners_.contains(it->first)) {
      it = progress_.erase(it);
    } else {
      ++it;
    }
  }
  auto add = [&](MemberId id, bool learner) {
    auto it = progress_.find(id);
    if (it == progress_.end()) {
      it = progress_.emplace(id, Progress(next_index, max_inflight_msgs_, max_inflight_bytes_))
               .first;
      // A new member counts as active so that CheckQuorum does not fire before it is reached.
      it->second.recent_active = true;
    }
    it->second.is_learner = learner;
  };
  for (MemberId id : voters_) add(id, false);
  for (MemberId id : learners_) add(id, true);
}

ConfState ProgressTracker::conf_state() const {
  return ConfState{std::vector<MemberId>(voters_.begin(), voters_.end()),
                   std::vector<MemberId>(learners_.begin(), learners_.end())};
}

Progress* ProgressTracker::Find(MemberId id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

LogIndex ProgressTracker::QuorumCommitted() const {
  if (voters_.empty()) return 0;
  std::vector<LogIndex> matches;
  matches.reserve(voters_.size());
  for (MemberId id : voters_) matches.push_back(progress_.at(id).match);
  std::sort(matches.begin(), matches.end(), std::greater<>());
  // The (n/2+1)-th highest match is on a majority.
  return matches[voters_.size() / 2];
}

bool ProgressTracker::QuorumActive() const {
  std::set<MemberId> active;
  for (MemberId id : voters_) {
    if (progress_.at(id).recent_active) active.insert(id);
  }
  return IsQuorum(active);
}

bool ProgressTracker::IsQuorum(const std::set<MemberId>& acks) const {
  size_t n = 0;
  for (MemberId id : voters_) n += acks.contains(id) ? 1 : 0;
  return n > voters_.size() / 2;
}

void ProgressTracker::RecordVote(MemberId id, bool granted) { votes_.emplace(id, granted); }

ProgressTracker::VoteResult ProgressTracker::TallyVotes(size_t* granted, size_t* rejected) const {
  *granted = 0;
  *rejected = 0;
  for (MemberId id : voters_) {
    auto it = votes_.find(id);
    if (it == votes_.end()) continue;
    (it->second ? *granted : *rejected) += 1;
  }
  size_t quorum = voters_.size() / 2 + 1;
  if (*granted >= quorum) return VoteResult::kWon;
  if (*rejected > voters_.size() - quorum) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace cairn::raft
