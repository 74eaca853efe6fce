#include "tests/sim/cluster_sim.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "server/base/check.h"
#include "server/raft/config.h"
#include "server/raft/message.h"
#include "server/raft/raw_node.h"
#include "server/raft/storage.h"

namespace cairn::raft::sim {
namespace {

uint64_t g_current_seed = 0;
int g_current_members = 0;

uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t HashBytes(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// State-machine digest: a hash chain over every applied entry, so two members that applied the
// same prefix have the same digest and a snapshot carries the digest of everything it covers.
uint64_t ChainHash(uint64_t prev, const Entry& e) {
  uint64_t h = Mix(prev, e.term);
  h = Mix(h, e.index);
  h = Mix(h, static_cast<uint64_t>(e.type));
  return Mix(h, HashBytes(e.data)) | 1;  // never 0: 0 means "unknown"
}

std::string EncodeDigest(uint64_t digest) { return std::to_string(digest); }
uint64_t DecodeDigest(const std::string& data) { return data.empty() ? 0 : std::stoull(data); }

constexpr int kElectionTick = 10;
constexpr int kHeartbeatTick = 2;

struct Node {
  MemberId id = kNoMember;
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> raw;
  bool up = false;
  uint64_t incarnation = 0;
  int64_t restart_at = -1;
  // State machine.
  LogIndex applied = 0;
  uint64_t digest = 0;
  ConfState applied_conf;
  bool applied_final = false;
  // Monotonicity trackers.
  LogIndex last_commit = 0;          // this incarnation
  LogIndex last_applied = 0;         // this incarnation
  LogIndex last_durable_commit = 0;  // across incarnations
  Term last_durable_term = 0;        // across incarnations
  StateType last_state = StateType::kFollower;
};

struct ReadRequest {
  MemberId node = kNoMember;
  uint64_t incarnation = 0;
  LogIndex min_index = 0;
  bool done = false;
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& options)
      : options_(options), rng_(Mix(options.seed, 7)), fsync_rng_(Mix(options.seed, 13)) {}

  SimResult Run() {
    Setup();
    const int64_t total = options_.chaos_ticks + options_.liveness_ticks;
    for (now_ = 0; now_ < total && !failed(); ++now_) {
      if (now_ == options_.chaos_ticks) Heal();
      if (now_ < options_.chaos_ticks) {
        ChaosEvents();
      } else {
        LivenessStep();
        if (liveness_done_) break;
      }
      if (failed()) break;
      for (auto& [id, node] : nodes_) {
        if (!node.up && node.restart_at >= 0 && now_ >= node.restart_at) Restart(node);
      }
      for (auto& [id, node] : nodes_) {
        if (!node.up) continue;
        node.raw->Tick();
        ProcessReady(node);
      }
      ObserveAll();
      DeliverDue();
    }
    if (!failed() && !liveness_done_) {
      std::ostringstream os;
      os << "liveness: no proposal committed on every member within " << options_.liveness_ticks
         << " ticks after healing (" << LeaderSummary() << ")";
      Fail(os.str());
    }
    result_.ticks = static_cast<uint64_t>(now_);
    return result_;
  }

 private:
  bool failed() const { return !result_.ok; }

  void Fail(const std::string& why) {
    if (failed()) return;
    result_.ok = false;
    std::ostringstream os;
    os << "tick " << now_ << ": " << why;
    result_.failure = os.str();
    Trace("FAIL " + result_.failure);
  }

  void Trace(const std::string& line) {
    if (options_.trace) std::cerr << "[" << now_ << "] " << line << "\n";
  }

#define SIM_EXPECT(cond, stream_expr) \
  do {                                \
    if (!(cond)) {                    \
      std::ostringstream sim_os_;     \
      sim_os_ << stream_expr;         \
      Fail(sim_os_.str());            \
    }                                 \
  } while (0)

  // ---- Setup, crash, restart ----------------------------------------------------------------

  void Setup() {
    // Fault profile of this seed.
    loss_ = static_cast<double>(rng_.Uniform(16)) / 100.0;
    dup_ = static_cast<double>(rng_.Uniform(8)) / 100.0;
    max_delay_ = 1 + static_cast<int>(rng_.Uniform(6));
    crash_p_ = static_cast<double>(rng_.Uniform(20)) / 1000.0;
    partition_p_ = static_cast<double>(1 + rng_.Uniform(50)) / 1000.0;
    membership_ = rng_.Bernoulli(0.5);
    // Half the seeds run leaders that send before their fsync (docs/raft.md, the R1 exception)
    // and may crash in the middle of it. Drawn apart from rng_ so seeds keep their profiles.
    early_send_ = Mix(options_.seed, 11) % 2 == 0;
    compact_every_ = 5 + static_cast<LogIndex>(rng_.Uniform(40));
    max_size_per_msg_ = rng_.Bernoulli(0.3) ? 1 : 16 + rng_.Uniform(200);  // 1: one entry each
    max_inflight_ = 1 + rng_.Uniform(8);
    // One seed in five is a "churn" profile: leaders crash often and come back fast, appends
    // carry one entry, and proposals are frequent. Leader changes with partially replicated
    // entries of several terms are where the commitment rule (§5.4.2, Figure 8) matters.
    churn_ = rng_.Bernoulli(0.2);
    if (churn_) {
      crash_p_ = 0.02 + static_cast<double>(rng_.Uniform(30)) / 1000.0;
      max_size_per_msg_ = 1;
      propose_p_ = 0.7;
    }

    ConfState cs;
    for (int i = 1; i <= options_.members; ++i) cs.voters.push_back(static_cast<MemberId>(i));
    int spares = membership_ ? 3 : 0;
    for (int i = 1; i <= options_.members + spares; ++i) {
      Node& node = nodes_[static_cast<MemberId>(i)];
      node.id = static_cast<MemberId>(i);
      node.storage = i <= options_.members ? std::make_unique<MemoryStorage>(cs)
                                           : std::make_unique<MemoryStorage>();
      Start(node);
    }
    std::ostringstream os;
    os << "seed " << options_.seed << " members " << options_.members << " loss " << loss_
       << " dup " << dup_ << " max_delay " << max_delay_ << " crash_p " << crash_p_
       << " partition_p " << partition_p_ << " membership " << membership_ << " compact_every "
       << compact_every_ << " max_size_per_msg " << max_size_per_msg_ << " max_inflight "
       << max_inflight_ << " churn " << churn_ << " leader_early_send " << early_send_;
    Trace(os.str());
  }

  void Start(Node& node) {
    auto snapshot = node.storage->GetSnapshot();
    CAIRN_CHECK_OK(snapshot.status());
    // The state machine restarts from the last snapshot; committed entries after it are
    // applied again.
    node.applied = snapshot->metadata.index;
    node.digest = DecodeDigest(snapshot->data);
    node.applied_conf = snapshot->metadata.conf_state;
    node.applied_final = false;
    Config c;
    c.id = node.id;
    c.election_tick = kElectionTick;
    c.heartbeat_tick = kHeartbeatTick;
    c.storage = node.storage.get();
    c.applied = node.applied;
    c.max_size_per_msg = max_size_per_msg_;
    c.max_inflight_msgs = max_inflight_;
    c.max_inflight_bytes = max_size_per_msg_ * max_inflight_;
    c.max_uncommitted_entries_size = 2048;
    c.max_committed_size_per_ready = 512;
    c.random_seed = Mix(options_.seed, node.id * 1000003 + node.incarnation);
    auto raw = RawNode::Create(c);
    CAIRN_CHECK_OK(raw.status());
    node.raw = std::move(*raw);
    node.up = true;
    node.restart_at = -1;
    node.last_commit = node.storage->hard_state().commit;
    node.last_applied = node.applied;
    node.last_state = StateType::kFollower;
  }

  void Crash(Node& node) {
    ++result_.crashes;
    node.raw.reset();  // volatile state is gone; storage keeps exactly what was persisted
    node.up = false;
    node.restart_at = now_ + 1 + static_cast<int64_t>(rng_.Uniform(churn_ ? 15 : 60));
    Trace("crash " + std::to_string(node.id));
  }

  void Restart(Node& node) {
    ++node.incarnation;
    Start(node);
    Trace("restart " + std::to_string(node.id));
  }

  // ---- Network --------------------------------------------------------------------------------

  bool Blocked(MemberId from, MemberId to) const { return blocked_.contains({from, to}); }

  void Send(const Message& m) {
    if (Blocked(m.from, m.to) || rng_.Bernoulli(loss_)) {
      Dropped(m);
      return;
    }
    Enqueue(m);
    if (rng_.Bernoulli(dup_)) Enqueue(m);
  }

  void Enqueue(const Message& m) {
    int64_t delay = 1 + static_cast<int64_t>(rng_.Uniform(max_delay_));
    if (rng_.Bernoulli(0.01)) delay += static_cast<int64_t>(rng_.Uniform(4 * kElectionTick));
    network_.emplace(std::make_pair(now_ + delay, seq_++), m);
  }

  void Dropped(const Message& m) {
    // The transport reports a failed snapshot send to the leader, as etcd's does.
    if (m.type != MessageType::kSnap) return;
    Node& from = nodes_.at(m.from);
    if (!from.up) return;
    // Only report here: the sender may be in the middle of handling a Ready (R4: inputs are
    // fine between GetReady and Advance, a nested GetReady is not). Its next Ready round picks
    // up the consequences.
    from.raw->ReportSnapshot(m.to, /*failure=*/true);
  }

  void DeliverDue() {
    while (!network_.empty() && network_.begin()->first.first <= now_ && !failed()) {
      Message m = std::move(network_.begin()->second);
      network_.erase(network_.begin());
      auto it = nodes_.find(m.to);
      if (it == nodes_.end() || !it->second.up || Blocked(m.from, m.to)) {
        Dropped(m);
        continue;
      }
      Node& node = it->second;
      ++result_.messages_delivered;
      if (options_.trace) {
        std::ostringstream os;
        os << "deliver " << MessageTypeName(m.type) << " " << m.from << "->" << m.to << " term "
           << m.term << " log_term " << m.log_term << " index " << m.index << " commit " << m.commit
           << " entries " << m.entries.size() << (m.reject ? " reject" : "") << " hint "
           << m.reject_hint;
        Trace(os.str());
      }
      (void)node.raw->Step(m);  // forwarded proposals may be refused by the leader: fine
      ProcessReady(node);
      if (m.type == MessageType::kSnap) {
        Node& from = nodes_.at(m.from);
        if (from.up) {
          from.raw->ReportSnapshot(m.to, /*failure=*/false);
          ProcessReady(from);
        }
      }
      ObserveAll();
    }
  }

  // ---- The caller's side of Ready (docs/raft.md ordering rules) -----------------------------

  void ProcessReady(Node& node) {
    while (!failed() && node.raw->HasReady()) {
      Ready rd = node.raw->GetReady();
      // 0. Leader-parallel fsync (R1 exception): a leader whose commit index is durable sends its
      // appends and heartbeats first, and may crash before the Ready is durable.
      std::vector<bool> sent(rd.messages.size(), false);
      if (early_send_ && node.raw->raft().state() == StateType::kLeader &&
          node.raw->raft().hard_state().commit <= node.storage->LastIndex()) {
        for (size_t i = 0; i < rd.messages.size(); ++i) {
          const Message& m = rd.messages[i];
          if (m.type != MessageType::kApp && m.type != MessageType::kHeartbeat) continue;
          SIM_EXPECT(m.commit <= node.storage->LastIndex(),
                     "early send: member " << node.id << " sent commit " << m.commit
                                           << " past its durable log "
                                           << node.storage->LastIndex());
          Send(m);
          sent[i] = true;
        }
        if (now_ < options_.chaos_ticks && fsync_rng_.Bernoulli(4 * crash_p_)) {
          Trace("crash during the fsync of " + std::to_string(node.id));
          Crash(node);
          return;
        }
      }
      // 1. Persist snapshot, entries, hard state.
      if (!rd.snapshot.IsEmpty()) InstallSnapshot(node, rd.snapshot);
      CAIRN_CHECK_OK(node.storage->Append(rd.entries));
      for (const Entry& e : rd.entries) CheckLogMatching(node, e);
      if (rd.hard_state.has_value()) {
        const HardState& hs = *rd.hard_state;
        SIM_EXPECT(hs.term >= node.last_durable_term,
                   "member " << node.id << " durable term went back " << node.last_durable_term
                             << " -> " << hs.term);
        SIM_EXPECT(hs.commit >= node.last_durable_commit,
                   "member " << node.id << " durable commit went back " << node.last_durable_commit
                             << " -> " << hs.commit);
        node.storage->SetHardState(hs);
        node.last_durable_term = hs.term;
        node.last_durable_commit = hs.commit;
      }
      // 2. Send (everything a message depends on is durable now; verify it).
      for (size_t i = 0; i < rd.messages.size(); ++i) {
        if (sent[i]) continue;
        CheckDurableBeforeSend(node, rd.messages[i]);
        Send(rd.messages[i]);
      }
      // 3. Apply.
      for (const Entry& e : rd.committed_entries) Apply(node, e);
      for (const ReadState& rs : rd.read_states) CheckRead(node, rs);
      node.raw->Advance(rd);
      MaybeCompact(node);
    }
  }

  void InstallSnapshot(Node& node, const Snapshot& s) {
    CAIRN_CHECK_OK(node.storage->ApplySnapshot(s));
    LogIndex idx = s.metadata.index;
    uint64_t digest = DecodeDigest(s.data);
    if (idx < digest_at_.size() && digest_at_[idx] != 0) {
      SIM_EXPECT(digest_at_[idx] == digest, "member "
                                                << node.id << " installed a snapshot at " << idx
                                                << " whose state differs from what others applied");
    }
    node.applied = idx;
    node.last_applied = idx;
    node.digest = digest;
    node.applied_conf = s.metadata.conf_state;
    ++result_.snapshots_installed;
    Trace("member " + std::to_string(node.id) + " installed snapshot at " + std::to_string(idx));
  }

  void Apply(Node& node, const Entry& e) {
    SIM_EXPECT(e.index == node.applied + 1,
               "member " << node.id << " applied " << e.index << " after " << node.applied);
    node.digest = ChainHash(node.digest, e);
    if (digest_at_.size() <= e.index) digest_at_.resize(e.index + 1, 0);
    if (digest_at_[e.index] == 0) {
      digest_at_[e.index] = node.digest;
    } else {
      SIM_EXPECT(digest_at_[e.index] == node.digest,
                 "state machine safety: member " << node.id << " applied a different entry at "
                                                 << e.index << " (term " << e.term << ")");
    }
    RecordCommitted(e.index, e.term, node.id);
    node.applied = e.index;
    SIM_EXPECT(node.applied >= node.last_applied, "applied went back on " << node.id);
    node.last_applied = node.applied;
    if (e.type == EntryType::kConfChange) {
      auto cc = DecodeConfChange(e.data);
      CAIRN_CHECK_OK(cc.status());
      node.applied_conf = node.raw->ApplyConfChange(*cc);
      ++result_.conf_changes_applied;
      Trace("member " + std::to_string(node.id) + " applied conf change at " +
            std::to_string(e.index));
    } else if (e.data.rfind("final", 0) == 0) {
      node.applied_final = true;
    }
    if (!e.data.empty() && node.id == 1) ++result_.entries_committed;
  }

  void MaybeCompact(Node& node) {
    LogIndex snap_index = node.storage->FirstIndex() - 1;
    if (node.applied < snap_index + compact_every_ || node.applied > node.storage->LastIndex()) {
      return;
    }
    auto s =
        node.storage->CreateSnapshot(node.applied, node.applied_conf, EncodeDigest(node.digest));
    CAIRN_CHECK_OK(s.status());
    LogIndex keep = rng_.Uniform(4);
    if (node.applied > snap_index + keep + 1) {
      CAIRN_CHECK_OK(node.storage->Compact(node.applied - keep));
    }
  }

  // ---- Invariants --------------------------------------------------------------------------

  void CheckLogMatching(const Node& node, const Entry& e) {
    auto prev = node.storage->TermAt(e.index - 1);
    SIM_EXPECT(prev.ok(), "member " << node.id << " has no term before appended entry " << e.index);
    if (!prev.ok()) return;
    uint64_t h = Mix(HashBytes(e.data), static_cast<uint64_t>(e.type));
    auto [it, inserted] =
        log_entries_.emplace(std::make_pair(e.index, e.term), std::make_pair(h, *prev));
    if (!inserted) {
      // Log Matching (§5.3): same index and term means same entry and same predecessor (and so,
      // inductively, the same log up to here).
      SIM_EXPECT(it->second.first == h && it->second.second == *prev,
                 "log matching: member " << node.id << " holds a different entry at index "
                                         << e.index << " term " << e.term);
    }
  }

  void CheckDurableBeforeSend(const Node& node, const Message& m) {
    const HardState& hs = node.storage->hard_state();
    if (m.type == MessageType::kVoteResp && !m.reject) {
      SIM_EXPECT(hs.term == m.term && hs.vote == m.to,
                 "ordering: member " << node.id << " granted a vote to " << m.to << " in term "
                                     << m.term << " before persisting it");
    }
    if (m.type == MessageType::kAppResp && !m.reject) {
      SIM_EXPECT(node.storage->LastIndex() >= m.index, "ordering: member "
                                                           << node.id << " acknowledged index "
                                                           << m.index << " before persisting it");
    }
    SIM_EXPECT(
        m.term == 0 || hs.term >= m.term || m.type == MessageType::kPreVote ||
            m.type == MessageType::kPreVoteResp,
        "ordering: member " << node.id << " sent term " << m.term << " before persisting it");
  }

  void RecordCommitted(LogIndex index, Term term, MemberId by) {
    if (committed_terms_.size() <= index) committed_terms_.resize(index + 1, 0);
    if (committed_terms_[index] == 0) {
      committed_terms_[index] = term;
    } else {
      SIM_EXPECT(committed_terms_[index] == term, "committed entry changed: index "
                                                      << index << " was term "
                                                      << committed_terms_[index] << ", member "
                                                      << by << " committed term " << term);
    }
    max_committed_ = std::max(max_committed_, index);
  }

  void ObserveAll() {
    for (auto& [id, node] : nodes_) {
      if (node.up) ObserveNode(node);
    }
  }

  void ObserveNode(Node& node) {
    const Raft& r = node.raw->raft();
    LogIndex commit = r.log().committed();
    SIM_EXPECT(commit >= node.last_commit, "member " << node.id << " commit went back "
                                                     << node.last_commit << " -> " << commit);
    if (commit > node.last_commit) {
      LogIndex from = std::max(node.last_commit + 1, r.log().FirstIndex());
      for (LogIndex i = from; i <= commit; ++i) {
        auto t = r.log().TermAt(i);
        SIM_EXPECT(t.ok(), "member " << node.id << " committed " << i << " it does not hold");
        if (t.ok()) RecordCommitted(i, *t, node.id);
      }
      node.last_commit = commit;
      if (options_.trace) {
        Trace("member " + std::to_string(node.id) + " commit " + std::to_string(commit) + " term " +
              std::to_string(r.term()) + " conf " + ConfString(r.conf_state()));
      }
    }
    if (r.state() == StateType::kLeader) {
      auto [it, inserted] = leaders_.emplace(r.term(), node.id);
      SIM_EXPECT(it->second == node.id, "election safety: members " << it->second << " and "
                                                                    << node.id << " both lead term "
                                                                    << r.term());
      if (node.last_state != StateType::kLeader) {
        ++result_.leaders_elected;
        Trace("member " + std::to_string(node.id) + " leads term " + std::to_string(r.term()));
        CheckLeaderCompleteness(node);
      }
    }
    node.last_state = r.state();
  }

  void CheckLeaderCompleteness(const Node& node) {
    // §5.4: a leader's log contains every entry committed in earlier terms.
    const RaftLog& log = node.raw->raft().log();
    LogIndex first = log.FirstIndex();
    for (LogIndex i = first > 0 ? first - 1 : 0; i <= max_committed_; ++i) {
      if (i == 0 || committed_terms_[i] == 0) continue;
      auto t = log.TermAt(i);
      SIM_EXPECT(t.ok() && *t == committed_terms_[i], "leader completeness: new leader "
                                                          << node.id << " of term "
                                                          << node.raw->raft().term()
                                                          << " lacks committed entry " << i);
      if (failed()) return;
    }
  }

  void CheckRead(const Node& node, const ReadState& rs) {
    auto it = reads_.find(rs.request_ctx);
    SIM_EXPECT(it != reads_.end() && it->second.node == node.id,
               "member " << node.id << " got a read state for unknown request " << rs.request_ctx);
    if (it == reads_.end()) return;
    // Linearizability of ReadIndex (thesis §6.4): the read index covers every entry that was
    // committed anywhere before the request was made.
    SIM_EXPECT(rs.index >= it->second.min_index,
               "stale read: request " << rs.request_ctx << " on member " << node.id
                                      << " got read index " << rs.index << " but "
                                      << it->second.min_index << " was committed before it");
    // A duplicated request may be answered twice; each answer must be valid.
    if (!it->second.done) ++result_.reads_completed;
    it->second.done = true;
  }

  // ---- Workload and faults -----------------------------------------------------------------

  Node* RandomUpNode() {
    std::vector<Node*> up;
    for (auto& [id, node] : nodes_) {
      if (node.up) up.push_back(&node);
    }
    if (up.empty()) return nullptr;
    return up[rng_.Uniform(up.size())];
  }

  Node* Leader() {
    Node* best = nullptr;
    for (auto& [id, node] : nodes_) {
      if (!node.up || cut_off_.contains(id) || node.raw->raft().state() != StateType::kLeader) {
        continue;
      }
      if (best == nullptr || node.raw->raft().term() > best->raw->raft().term()) best = &node;
    }
    return best;
  }

  void Propose(Node& node, const std::string& data) {
    (void)node.raw->Propose(data);  // errors (no leader, transfer, limits) are expected here
    ProcessReady(node);
  }

  void ChaosEvents() {
    if (rng_.Bernoulli(propose_p_)) {
      if (Node* n = RandomUpNode()) {
        std::string data =
            "p" + std::to_string(proposal_seq_++) + ":" + std::string(rng_.Uniform(40), 'x');
        Propose(*n, data);
      }
    }
    if (rng_.Bernoulli(0.05)) {
      if (Node* n = RandomUpNode()) {
        std::string ctx = "r" + std::to_string(read_seq_++);
        if (node_read_ok(*n, ctx)) reads_[ctx] = ReadRequest{n->id, n->incarnation, max_committed_};
        ProcessReady(*n);
      }
    }
    if (rng_.Bernoulli(0.01)) {
      if (Node* l = Leader()) {
        const auto& voters = l->raw->raft().tracker().voters();
        std::vector<MemberId> v(voters.begin(), voters.end());
        MemberId to = v[rng_.Uniform(v.size())];
        Trace("transfer leadership " + std::to_string(l->id) + " -> " + std::to_string(to));
        l->raw->TransferLeader(to);
        ProcessReady(*l);
      }
    }
    if (membership_ && rng_.Bernoulli(0.02)) ChangeMembership();
    if (rng_.Bernoulli(crash_p_)) {
      // Half of the crashes hit the leader: leader churn with partially replicated entries is
      // where the commitment rule (§5.4.2, Figure 8) matters.
      Node* n = rng_.Bernoulli(churn_ ? 0.8 : 0.5) ? Leader() : RandomUpNode();
      if (n != nullptr) Crash(*n);
    }
    if (rng_.Bernoulli(partition_p_)) ChangePartitions();
  }

  bool node_read_ok(Node& n, const std::string& ctx) { return n.raw->ReadIndex(ctx).ok(); }

  void ChangeMembership() {
    Node* l = Leader();
    if (l == nullptr) return;
    ConfState cs = l->raw->raft().conf_state();
    std::vector<ConfChange> options;
    for (auto& [id, node] : nodes_) {
      if (retired_.contains(id) || cs.IsVoter(id) || cs.IsLearner(id)) continue;
      options.push_back(ConfChange{ConfChangeType::kAddLearnerNode, id, ""});
      if (rng_.Bernoulli(0.3)) options.push_back(ConfChange{ConfChangeType::kAddNode, id, ""});
    }
    for (MemberId id : cs.learners) {
      options.push_back(ConfChange{ConfChangeType::kAddNode, id, ""});
      options.push_back(ConfChange{ConfChangeType::kRemoveNode, id, ""});
    }
    if (cs.voters.size() >= 3) {
      for (MemberId id : cs.voters)
        options.push_back(ConfChange{ConfChangeType::kRemoveNode, id, ""});
    }
    if (options.empty()) return;
    ConfChange cc = options[rng_.Uniform(options.size())];
    absl::Status s = l->raw->ProposeConfChange(cc);
    std::ostringstream os;
    os << "leader " << l->id << " proposes conf change type " << static_cast<int>(cc.type)
       << " node " << cc.node_id << ": " << s;
    Trace(os.str());
    // A member once proposed for removal is never re-added (etcd never reuses member ids).
    if (s.ok() && cc.type == ConfChangeType::kRemoveNode) retired_.insert(cc.node_id);
    ProcessReady(*l);
  }

  void ChangePartitions() {
    std::vector<MemberId> ids;
    for (auto& [id, node] : nodes_) ids.push_back(id);
    auto cut_both = [&](MemberId a, MemberId b) {
      blocked_.insert({a, b});
      blocked_.insert({b, a});
    };
    switch (rng_.Uniform(6)) {
      case 0:
        blocked_.clear();
        Trace("heal partitions");
        break;
      case 1: {
        MemberId a = ids[rng_.Uniform(ids.size())];
        for (MemberId b : ids) {
          if (b != a) cut_both(a, b);
        }
        Trace("isolate " + std::to_string(a));
        break;
      }
      case 2: {
        Node* l = Leader();
        if (l == nullptr) break;
        for (MemberId b : ids) {
          if (b != l->id) cut_both(l->id, b);
        }
        Trace("isolate leader " + std::to_string(l->id));
        break;
      }
      case 3: {
        MemberId a = ids[rng_.Uniform(ids.size())];
        MemberId b = ids[rng_.Uniform(ids.size())];
        if (a != b) blocked_.insert({a, b});
        Trace("cut link " + std::to_string(a) + "->" + std::to_string(b));
        break;
      }
      case 4: {
        blocked_.clear();
        std::vector<bool> side(ids.size());
        for (size_t i = 0; i < ids.size(); ++i) side[i] = rng_.Bernoulli(0.5);
        for (size_t i = 0; i < ids.size(); ++i) {
          for (size_t j = 0; j < ids.size(); ++j) {
            if (side[i] != side[j]) blocked_.insert({ids[i], ids[j]});
          }
        }
        Trace("split in two");
        break;
      }
      case 5: {
        // Asymmetric: a member hears others but cannot be heard (or the reverse).
        MemberId a = ids[rng_.Uniform(ids.size())];
        bool outbound = rng_.Bernoulli(0.5);
        for (MemberId b : ids) {
          if (b == a) continue;
          if (outbound) {
            blocked_.insert({a, b});
          } else {
            blocked_.insert({b, a});
          }
        }
        Trace("asymmetric cut of " + std::to_string(a));
        break;
      }
    }
  }

  // ---- Liveness ----------------------------------------------------------------------------

  void Heal() {
    Trace("heal everything; liveness phase");
    blocked_.clear();
    loss_ = 0;
    dup_ = 0;
    max_delay_ = std::min(max_delay_, 3);
    for (auto& [id, node] : nodes_) {
      if (!node.up) Restart(node);
    }
    // Half of the static-membership seeds keep a minority of voters cut off for good: a
    // connected majority must be enough for liveness. (With membership changes the voter set
    // may still move by one, so everything is connected there.)
    if (!membership_ && rng_.Bernoulli(0.5)) {
      std::vector<MemberId> ids;
      for (auto& [id, node] : nodes_) ids.push_back(id);
      for (int k = 0; k < (options_.members - 1) / 2; ++k) {
        MemberId victim = ids[rng_.Uniform(ids.size())];
        if (cut_off_.contains(victim)) continue;
        cut_off_.insert(victim);
        for (MemberId other : ids) {
          if (other == victim) continue;
          blocked_.insert({victim, other});
          blocked_.insert({other, victim});
        }
        Trace("liveness with " + std::to_string(victim) + " cut off");
      }
    }
  }

  void LivenessStep() {
    Node* l = Leader();
    if (l == nullptr) return;
    if (!final_proposed_ || now_ - final_proposed_at_ > 8 * kElectionTick) {
      if (l->raw->Propose("final" + std::to_string(final_seq_++)).ok()) {
        final_proposed_ = true;
        final_proposed_at_ = now_;
      }
      ProcessReady(*l);
      return;
    }
    ConfState cs = l->raw->raft().conf_state();
    for (auto* ids : {&cs.voters, &cs.learners}) {
      for (MemberId id : *ids) {
        if (!cut_off_.contains(id) && !nodes_.at(id).applied_final) return;
      }
    }
    liveness_done_ = true;
  }

  static std::string ConfString(const ConfState& cs) {
    std::ostringstream os;
    os << "v{";
    for (MemberId id : cs.voters) os << id << ",";
    os << "}l{";
    for (MemberId id : cs.learners) os << id << ",";
    os << "}";
    return os.str();
  }

  std::string LeaderSummary() {
    std::ostringstream os;
    for (auto& [id, node] : nodes_) {
      if (!node.up) {
        os << id << ":down ";
        continue;
      }
      const Raft& r = node.raw->raft();
      os << id << ":" << StateTypeName(r.state()) << "/t" << r.term() << "/c" << r.log().committed()
         << "/l" << r.log().LastIndex() << "/lead" << r.leader()
         << (node.applied_final ? "/final " : " ");
    }
    return os.str();
  }

  SimOptions options_;
  Rng rng_;
  Rng fsync_rng_;  // crashes during a leader's fsync (early_send_ seeds)
  SimResult result_;
  int64_t now_ = 0;
  std::map<MemberId, Node> nodes_;
  std::map<std::pair<int64_t, uint64_t>, Message> network_;
  uint64_t seq_ = 0;
  std::set<std::pair<MemberId, MemberId>> blocked_;
  std::set<MemberId> retired_;
  std::set<MemberId> cut_off_;  // liveness phase: minority kept partitioned

  double loss_ = 0, dup_ = 0, crash_p_ = 0, partition_p_ = 0;
  int max_delay_ = 1;
  bool membership_ = false;
  bool churn_ = false;
  bool early_send_ = false;
  double propose_p_ = 0.3;
  LogIndex compact_every_ = 10;
  uint64_t max_size_per_msg_ = 64;
  size_t max_inflight_ = 4;

  // Global knowledge for invariants.
  std::map<Term, MemberId> leaders_;
  std::map<std::pair<LogIndex, Term>, std::pair<uint64_t, Term>> log_entries_;
  std::vector<Term> committed_terms_{0};
  std::vector<uint64_t> digest_at_{0};
  LogIndex max_committed_ = 0;
  std::map<std::string, ReadRequest> reads_;

  uint64_t proposal_seq_ = 0, read_seq_ = 0, final_seq_ = 0;
  bool final_proposed_ = false;
  int64_t final_proposed_at_ = 0;
  bool liveness_done_ = false;
#undef SIM_EXPECT
};

}  // namespace

SimResult RunSimulation(const SimOptions& options) {
  g_current_seed = options.seed;
  g_current_members = options.members;
  Simulation sim(options);
  return sim.Run();
}

uint64_t CurrentSimSeed() { return g_current_seed; }
int CurrentSimMembers() { return g_current_members; }

}  // namespace cairn::raft::sim
