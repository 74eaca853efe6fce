// Test helpers for the Raft core: a small in-memory cluster of RawNodes that follows the
// Ready/Advance contract (persist, send, apply, advance) and delivers messages synchronously
// until the cluster is quiescent, with per-link message filters for partitions.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/base/check.h"
#include "server/raft/raw_node.h"
#include "server/raft/storage.h"

#define ASSERT_OK(expr)                    \
  do {                                     \
    const auto& s_ = (expr);               \
    ASSERT_TRUE(s_.ok()) << s_.ToString(); \
  } while (0)
#define EXPECT_OK(expr) EXPECT_TRUE((expr).ok()) << (expr).ToString()

namespace cairn::raft::testing {

inline Config TestConfig(MemberId id, const Storage* storage) {
  Config c;
  c.id = id;
  c.election_tick = 10;
  c.heartbeat_tick = 1;
  c.storage = storage;
  c.pre_vote = false;
  c.check_quorum = false;
  c.random_seed = id;
  return c;
}

inline ConfState Voters(std::vector<MemberId> ids) { return ConfState{std::move(ids), {}}; }

inline Entry MakeEntry(Term term, LogIndex index, std::string data = "") {
  Entry e;
  e.term = term;
  e.index = index;
  e.data = std::move(data);
  return e;
}

// A log for paper-figure tests: a snapshot at (index 1, term 1) holding configuration `cs`,
// then one entry per element of `terms` at indexes 2, 3, ... Hard state: last term, commit 1.
inline std::unique_ptr<MemoryStorage> StorageWithTerms(const ConfState& cs,
                                                       const std::vector<Term>& terms) {
  auto s = std::make_unique<MemoryStorage>();
  Snapshot snap;
  snap.metadata.index = 1;
  snap.metadata.term = 1;
  snap.metadata.conf_state = cs;
  CAIRN_CHECK_OK(s->ApplySnapshot(snap));
  std::vector<Entry> entries;
  for (size_t i = 0; i < terms.size(); ++i) entries.push_back(MakeEntry(terms[i], i + 2));
  CAIRN_CHECK_OK(s->Append(entries));
  s->SetHardState(HardState{terms.empty() ? 1 : terms.back(), kNoMember, 1});
  return s;
}

class Cluster {
 public:
  using Tweak = std::function<void(Config&)>;
  // Drop a message when the filter returns true.
  using Filter = std::function<bool(const Message&)>;

  explicit Cluster(std::vector<MemberId> ids, Tweak tweak = nullptr) : tweak_(std::move(tweak)) {
    ConfState cs = Voters(ids);
    for (MemberId id : ids) {
      members_[id].storage = std::make_unique<MemoryStorage>(cs);
      Start(id);
    }
    Stabilize();
  }

  // Members with prepared storages (e.g. the logs of a paper figure).
  explicit Cluster(std::map<MemberId, std::unique_ptr<MemoryStorage>> storages,
                   Tweak tweak = nullptr)
      : tweak_(std::move(tweak)) {
    for (auto& [id, s] : storages) {
      members_[id].storage = std::move(s);
      Start(id);
    }
  }

  // A member with its own storage (e.g. a prepared log, or empty to join later).
  void AddMember(MemberId id, std::unique_ptr<MemoryStorage> storage) {
    members_[id].storage = std::move(storage);
    Start(id);
  }

  RawNode& node(MemberId id) { return *members_.at(id).node; }
  const Raft& raft(MemberId id) { return members_.at(id).node->raft(); }
  Raft& mutable_raft(MemberId id) { return members_.at(id).node->mutable_raft_for_testing(); }
  MemoryStorage& storage(MemberId id) { return *members_.at(id).storage; }
  // Data of the normal, non-empty entries applied by `id`, in order.
  const std::vector<std::string>& applied(MemberId id) { return members_.at(id).applied; }
  std::vector<ReadState>& read_states(MemberId id) { return members_.at(id).read_states; }
  // Every message sent so far (after filtering), for assertions.
  std::vector<Message>& sent() { return sent_; }

  void Isolate(MemberId id) { isolated_.insert(id); }
  void Cut(MemberId from, MemberId to) { cut_.insert({from, to}); }
  void Heal() {
    isolated_.clear();
    cut_.clear();
  }
  void SetFilter(Filter f) { filter_ = std::move(f); }

  void Crash(MemberId id) { members_.at(id).node.reset(); }
  void Restart(MemberId id) { Start(id); }

  void Tick(MemberId id, int n = 1) {
    for (int i = 0; i < n; ++i) {
      node(id).Tick();
      Stabilize();
    }
  }
  void TickAll(int n = 1) {
    for (int i = 0; i < n; ++i) {
      for (auto& [id, m] : members_) {
        if (m.node) m.node->Tick();
      }
      Stabilize();
    }
  }
  void Campaign(MemberId id) {
    (void)node(id).Campaign();
    Stabilize();
  }
  absl::Status Propose(MemberId id, std::string data) {
    absl::Status s = node(id).Propose(std::move(data));
    Stabilize();
    return s;
  }
  void Deliver(const Message& m) {
    queue_.push_back(m);
    Stabilize();
  }

  // Handles every Ready and delivers every message until nothing is left.
  void Stabilize() {
    for (int rounds = 0; rounds < 10000; ++rounds) {
      bool progress = false;
      for (auto& [id, m] : members_) {
        if (m.node && m.node->HasReady()) {
          HandleReady(id);
          progress = true;
        }
      }
      while (!queue_.empty()) {
        Message msg = std::move(queue_.front());
        queue_.erase(queue_.begin());
        auto it = members_.find(msg.to);
        if (it == members_.end() || !it->second.node || Dropped(msg)) continue;
        sent_.push_back(msg);
        (void)it->second.node->Step(msg);
        progress = true;
        if (msg.type == MessageType::kSnap) {
          auto from = members_.find(msg.from);
          if (from != members_.end() && from->second.node) {
            from->second.node->ReportSnapshot(msg.to, false);
          }
        }
      }
      if (!progress) return;
    }
    ADD_FAILURE() << "cluster did not stabilize";
  }

  // The leader with the highest term, or 0.
  MemberId Leader() {
    MemberId best = kNoMember;
    Term best_term = 0;
    for (auto& [id, m] : members_) {
      if (m.node && m.node->raft().state() == StateType::kLeader &&
          m.node->raft().term() >= best_term) {
        best = id;
        best_term = m.node->raft().term();
      }
    }
    return best;
  }

  // Takes a snapshot at `id`'s applied index and compacts its log up to it.
  void Compact(MemberId id) {
    Member& m = members_.at(id);
    LogIndex applied = m.node->raft().log().applied();
    CAIRN_CHECK_OK(m.storage->CreateSnapshot(applied, m.conf, "snap").status());
    CAIRN_CHECK_OK(m.storage->Compact(applied));
  }

 private:
  struct Member {
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<RawNode> node;
    std::vector<std::string> applied;
    std::vector<ReadState> read_states;
    ConfState conf;
  };

  void Start(MemberId id) {
    Member& m = members_.at(id);
    Config c = TestConfig(id, m.storage.get());
    auto snap = m.storage->GetSnapshot();
    c.applied = snap->metadata.index;
    m.conf = snap->metadata.conf_state;
    m.applied.clear();
    if (tweak_) tweak_(c);
    auto node = RawNode::Create(c);
    CAIRN_CHECK_OK(node.status());
    m.node = std::move(*node);
  }

  bool Dropped(const Message& m) const {
    if (isolated_.contains(m.from) || isolated_.contains(m.to)) return true;
    if (cut_.contains({m.from, m.to})) return true;
    return filter_ && filter_(m);
  }

  void HandleReady(MemberId id) {
    Member& m = members_.at(id);
    Ready rd = m.node->GetReady();
    if (!rd.snapshot.IsEmpty()) {
      CAIRN_CHECK_OK(m.storage->ApplySnapshot(rd.snapshot));
      m.conf = rd.snapshot.metadata.conf_state;
    }
    CAIRN_CHECK_OK(m.storage->Append(rd.entries));
    if (rd.hard_state) m.storage->SetHardState(*rd.hard_state);
    for (Message& msg : rd.messages) queue_.push_back(std::move(msg));
    for (const Entry& e : rd.committed_entries) {
      if (e.type == EntryType::kConfChange) {
        auto cc = DecodeConfChange(e.data);
        CAIRN_CHECK_OK(cc.status());
        m.conf = m.node->ApplyConfChange(*cc);
      } else if (!e.data.empty()) {
        m.applied.push_back(e.data);
      }
    }
    for (const ReadState& rs : rd.read_states) m.read_states.push_back(rs);
    m.node->Advance(rd);
  }

  Tweak tweak_;
  Filter filter_;
  std::map<MemberId, Member> members_;
  std::vector<Message> queue_;
  std::vector<Message> sent_;
  std::set<MemberId> isolated_;
  std::set<std::pair<MemberId, MemberId>> cut_;
};

}  // namespace cairn::raft::testing
