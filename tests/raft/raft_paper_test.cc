// One test per rule of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable
// Consensus Algorithm", 2014), named by section. PreVote and CheckQuorum are off here so the
// tests exercise the paper's algorithm; they have their own tests.
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "server/raft/raft.h"
#include "tests/raft/raft_test_util.h"

namespace cairn::raft {
namespace {

using testing::Cluster;
using testing::MakeEntry;
using testing::StorageWithTerms;
using testing::TestConfig;
using testing::Voters;

// A bare Raft over a bootstrapped MemoryStorage (term 1, config entries 1..n committed).
struct Member {
  explicit Member(MemberId id, std::vector<MemberId> voters = {1, 2, 3})
      : storage(std::make_unique<MemoryStorage>(Voters(voters))),
        raft(std::make_unique<Raft>(TestConfig(id, storage.get()))) {}
  Member(MemberId id, std::unique_ptr<MemoryStorage> s)
      : storage(std::move(s)), raft(std::make_unique<Raft>(TestConfig(id, storage.get()))) {}
  Raft* operator->() { return raft.get(); }
  // Persists what a Ready would hand out (entries and hard state), as the caller would.
  void Persist() {
    const auto& unstable = raft->log().UnstableEntries();
    if (!unstable.empty()) {
      CAIRN_CHECK_OK(storage->Append(unstable));
      raft->log().StableTo(unstable.back().index, unstable.back().term);
    }
    storage->SetHardState(raft->hard_state());
  }
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<Raft> raft;
};

Message Msg(MessageType type, MemberId from, MemberId to, Term term) {
  Message m;
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = term;
  return m;
}

void MakeLeader(Member& m) {
  m->BecomeCandidate();
  m->BecomeLeader();
  m->TakeMessages();
}

// §5.1: "If a server's current term is smaller than the other's, it updates its current term to
// the larger value. If a candidate or leader discovers that its term is out of date, it
// immediately reverts to follower state."
TEST(RaftPaper, UpdateTermFromMessage_5_1) {
  for (StateType state : {StateType::kFollower, StateType::kCandidate, StateType::kLeader}) {
    Member m(1);
    if (state == StateType::kCandidate) m->BecomeCandidate();
    if (state == StateType::kLeader) MakeLeader(m);
    ASSERT_OK(m->Step(Msg(MessageType::kApp, 2, 1, 10)));
    EXPECT_EQ(m->term(), 10u) << StateTypeName(state);
    EXPECT_EQ(m->state(), StateType::kFollower) << StateTypeName(state);
    EXPECT_EQ(m->leader(), 2u);
  }
}

// §5.1: "If a server receives a request with a stale term number, it rejects the request."
TEST(RaftPaper, RejectStaleTermMessage_5_1) {
  Member m(1);
  m->BecomeFollower(5, 2);
  Message app = Msg(MessageType::kApp, 3, 1, 4);
  app.index = 3;
  app.log_term = 1;
  app.entries = {MakeEntry(4, 4, "x")};
  ASSERT_OK(m->Step(app));
  EXPECT_EQ(m->term(), 5u);
  EXPECT_EQ(m->log().LastIndex(), 3u);
  EXPECT_TRUE(m->TakeMessages().empty());
}

// §5.2: "When servers start up, they begin as followers."
TEST(RaftPaper, StartAsFollower_5_2) {
  Member m(1);
  EXPECT_EQ(m->state(), StateType::kFollower);
  EXPECT_EQ(m->leader(), kNoMember);
}

// §5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries) to all
// followers in order to maintain their authority."
TEST(RaftPaper, LeaderBroadcastsHeartbeat_5_2) {
  Member m(1);
  MakeLeader(m);
  m->Tick();  // heartbeat_tick = 1
  std::set<MemberId> to;
  for (const Message& msg : m->TakeMessages()) {
    EXPECT_EQ(msg.type, MessageType::kHeartbeat);
    EXPECT_TRUE(msg.entries.empty());
    to.insert(msg.to);
  }
  EXPECT_EQ(to, (std::set<MemberId>{2, 3}));
}

// §5.2: "If a follower receives no communication over a period of time called the election
// timeout, then it ... begins an election": increments its term, votes for itself and issues
// RequestVote RPCs in parallel. The same holds for a candidate whose election timed out.
TEST(RaftPaper, NonLeaderStartsElection_5_2) {
  for (StateType state : {StateType::kFollower, StateType::kCandidate}) {
    Member m(1);
    if (state == StateType::kCandidate) m->BecomeCandidate();
    Term before = m->term();
    for (int i = 0; i < 2 * m->config().election_tick; ++i) m->Tick();
    EXPECT_EQ(m->state(), StateType::kCandidate);
    EXPECT_EQ(m->term(), before + 1);
    EXPECT_EQ(m->vote(), 1u);
    std::set<MemberId> to;
    for (const Message& msg : m->TakeMessages()) {
      EXPECT_EQ(msg.type, MessageType::kVote);
      EXPECT_EQ(msg.term, before + 1);
      EXPECT_EQ(msg.index, m->log().LastIndex());
      EXPECT_EQ(msg.log_term, m->log().LastTerm());
      to.insert(msg.to);
    }
    EXPECT_EQ(to, (std::set<MemberId>{2, 3}));
  }
}

// §5.2: "A candidate wins an election if it receives votes from a majority of the servers";
// it stays a candidate while the outcome is open and returns to follower once it has lost.
TEST(RaftPaper, LeaderElectionInOneRound_5_2) {
  struct Case {
    std::vector<MemberId> voters;
    std::map<MemberId, bool> votes;
    StateType want;
  };
  const std::vector<Case> cases = {
      {{1}, {}, StateType::kLeader},
      {{1, 2, 3}, {{2, true}, {3, true}}, StateType::kLeader},
      {{1, 2, 3}, {{2, true}}, StateType::kLeader},
      {{1, 2, 3, 4, 5}, {{2, true}, {3, true}}, StateType::kLeader},
      {{1, 2, 3, 4, 5}, {{2, true}}, StateType::kCandidate},
      {{1, 2, 3}, {}, StateType::kCandidate},
      {{1, 2, 3}, {{2, false}, {3, false}}, StateType::kFollower},
      {{1, 2, 3, 4, 5}, {{2, false}, {3, false}, {4, false}}, StateType::kFollower},
      {{1, 2, 3, 4, 5}, {{2, true}, {3, false}, {4, false}}, StateType::kCandidate},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    Member m(1, c.voters);
    ASSERT_OK(m->Step(Msg(MessageType::kHup, 1, 1, 0)));
    for (auto [from, granted] : c.votes) {
      Message resp = Msg(MessageType::kVoteResp, from, 1, m->term());
      resp.reject = !granted;
      ASSERT_OK(m->Step(resp));
    }
    EXPECT_EQ(m->state(), c.want) << "case " << i;
    EXPECT_EQ(m->term(), 2u) << "case " << i;
  }
}

// §5.2: "Each server will vote for at most one candidate in a given term, on a
// first-come-first-served basis."
TEST(RaftPaper, FollowerVotesFirstComeFirstServed_5_2) {
  struct Case {
    MemberId voted;
    MemberId candidate;
    bool reject;
  };
  const std::vector<Case> cases = {{kNoMember, 2, false}, {kNoMember, 3, false}, {2, 2, false},
                                   {3, 3, false},         {2, 3, true},          {3, 2, true}};
  for (const Case& c : cases) {
    Member m(1);
    m->BecomeFollower(2, kNoMember);
    if (c.voted != kNoMember) {
      Message v = Msg(MessageType::kVote, c.voted, 1, 2);
      v.index = 10;
      v.log_term = 2;
      ASSERT_OK(m->Step(v));
      m->TakeMessages();
    }
    Message v = Msg(MessageType::kVote, c.candidate, 1, 2);
    v.index = 10;
    v.log_term = 2;
    ASSERT_OK(m->Step(v));
    auto msgs = m->TakeMessages();
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].type, MessageType::kVoteResp);
    EXPECT_EQ(msgs[0].reject, c.reject) << "voted " << c.voted << " candidate " << c.candidate;
  }
}

// §5.2: "If the AppendEntries RPC is from another server claiming to be leader whose term is at
// least as large as the candidate's current term, the candidate ... returns to follower state."
TEST(RaftPaper, CandidateFallsBack_5_2) {
  for (Term delta : {0, 1}) {
    Member m(1);
    ASSERT_OK(m->Step(Msg(MessageType::kHup, 1, 1, 0)));
    ASSERT_EQ(m->state(), StateType::kCandidate);
    Message app = Msg(MessageType::kApp, 2, 1, m->term() + delta);
    app.index = 3;
    app.log_term = 1;
    ASSERT_OK(m->Step(app));
    EXPECT_EQ(m->state(), StateType::kFollower);
    EXPECT_EQ(m->leader(), 2u);
  }
}

// §5.2: "Raft uses randomized election timeouts ... chosen randomly from a fixed interval".
TEST(RaftPaper, ElectionTimeoutIsRandomized_5_2) {
  Member m(1);
  std::set<int> seen;
  for (int i = 0; i < 200; ++i) {
    m->BecomeFollower(m->term() + 1, kNoMember);
    int t = m->randomized_election_timeout();
    EXPECT_GE(t, m->config().election_tick);
    EXPECT_LT(t, 2 * m->config().election_tick);
    seen.insert(t);
  }
  EXPECT_GE(seen.size(), 5u);
}

// §5.3: "Once a leader has been elected ... it appends the command to its log as a new entry,
// then issues AppendEntries RPCs in parallel to each of the other servers."
TEST(RaftPaper, LeaderStartsReplication_5_3) {
  Member m(1);
  MakeLeader(m);
  // Followers acknowledge the no-op so they are in replicate state.
  LogIndex noop = m->log().LastIndex();
  for (MemberId id : {2, 3}) {
    Message ack = Msg(MessageType::kAppResp, id, 1, m->term());
    ack.index = noop;
    ASSERT_OK(m->Step(ack));
  }
  m->TakeMessages();
  ASSERT_OK(m->Propose({MakeEntry(0, 0, "some data")}));
  EXPECT_EQ(m->log().LastIndex(), noop + 1);
  std::set<MemberId> to;
  for (const Message& msg : m->TakeMessages()) {
    EXPECT_EQ(msg.type, MessageType::kApp);
    EXPECT_EQ(msg.index, noop);
    EXPECT_EQ(msg.log_term, m->term());
    ASSERT_EQ(msg.entries.size(), 1u);
    EXPECT_EQ(msg.entries[0].data, "some data");
    EXPECT_EQ(msg.entries[0].index, noop + 1);
    to.insert(msg.to);
  }
  EXPECT_EQ(to, (std::set<MemberId>{2, 3}));
}

// §5.3: "A log entry is committed once the leader that created the entry has replicated it on a
// majority of the servers."
TEST(RaftPaper, LeaderCommitsOnMajorityAck_5_3) {
  struct Case {
    size_t size;
    std::set<MemberId> acks;
    bool committed;
  };
  const std::vector<Case> cases = {
      {1, {}, true},   {3, {}, false},    {3, {2}, true},    {3, {2, 3}, true},
      {5, {}, false},  {5, {2}, false},   {5, {2, 3}, true}, {5, {2, 3, 4, 5}, true},
      {4, {2}, false}, {4, {2, 3}, true},
  };
  for (const Case& c : cases) {
    std::vector<MemberId> voters;
    for (size_t i = 1; i <= c.size; ++i) voters.push_back(i);
    Member m(1, voters);
    MakeLeader(m);
    LogIndex noop = m->log().LastIndex();
    for (MemberId id : c.acks) {
      Message ack = Msg(MessageType::kAppResp, id, 1, m->term());
      ack.index = noop;
      ASSERT_OK(m->Step(ack));
    }
    EXPECT_EQ(m->log().committed() == noop, c.committed)
        << "size " << c.size << " acks " << c.acks.size();
  }
}

// §5.3: "Once a follower learns that a log entry is committed, it applies the entry to its local
// state machine" — the follower commits up to min(leader commit, last new entry).
TEST(RaftPaper, FollowerCommitsFromLeaderCommit_5_3) {
  struct Case {
    std::vector<Entry> entries;
    LogIndex commit;
    LogIndex want;
  };
  const std::vector<Case> cases = {
      {{MakeEntry(2, 4, "a")}, 4, 4},
      {{MakeEntry(2, 4, "a"), MakeEntry(2, 5, "b")}, 5, 5},
      {{MakeEntry(2, 4, "a"), MakeEntry(2, 5, "b")}, 4, 4},
      {{MakeEntry(2, 4, "a")}, 9, 4},  // never past what this message proves
  };
  for (const Case& c : cases) {
    Member m(1);
    m->BecomeFollower(2, 2);
    Message app = Msg(MessageType::kApp, 2, 1, 2);
    app.index = 3;
    app.log_term = 1;
    app.entries = c.entries;
    app.commit = c.commit;
    ASSERT_OK(m->Step(app));
    EXPECT_EQ(m->log().committed(), c.want);
  }
}

// §5.3: "If a follower does not find an entry in its log with the same index and term [as
// prevLogIndex/prevLogTerm], then it refuses the new entries." The rejection carries a hint:
// the last index whose term is <= the leader's prevLogTerm.
TEST(RaftPaper, FollowerChecksPrevEntry_5_3) {
  // Log: snapshot (1,1), then terms 1 1 2 3 at indexes 2..5.
  struct Case {
    Term log_term;
    LogIndex index;
    bool reject;
    LogIndex hint;
  };
  const std::vector<Case> cases = {
      {1, 1, false, 0}, {1, 3, false, 0}, {2, 4, false, 0},
      {3, 5, false, 0}, {3, 4, true, 4},  // our term at 4 is 2 <= 3: skip back to 4
      {2, 5, true, 4},  // our 5 has term 3 > 2: the last entry with term <= 2 is 4
      {3, 6, true, 5},  // past our log: hint is our last index
      {1, 5, true, 3},  // terms 3 and 2 are newer than 1
  };
  for (const Case& c : cases) {
    Member m(1, StorageWithTerms(Voters({1, 2, 3}), {1, 1, 2, 3}));
    m->BecomeFollower(4, 2);
    Message app = Msg(MessageType::kApp, 2, 1, 4);
    app.index = c.index;
    app.log_term = c.log_term;
    ASSERT_OK(m->Step(app));
    auto msgs = m->TakeMessages();
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].reject, c.reject) << "index " << c.index << " term " << c.log_term;
    if (c.reject) {
      EXPECT_EQ(msgs[0].reject_hint, c.hint) << "index " << c.index;
    }
  }
}

// §5.3: "If an existing entry conflicts with a new one (same index but different terms),
// delete the existing entry and all that follow it; append any new entries not already in
// the log." Appending entries already present changes nothing.
TEST(RaftPaper, FollowerAppendsAndTruncatesConflicts_5_3) {
  // Log: snapshot (1,1), then (2,1) (3,2) (4,2).
  struct Case {
    LogIndex index;
    Term log_term;
    std::vector<Entry> entries;
    std::vector<Term> want;  // terms from index 2
  };
  const std::vector<Case> cases = {
      {4, 2, {MakeEntry(3, 5)}, {1, 2, 2, 3}},
      {3, 2, {MakeEntry(3, 4), MakeEntry(4, 5)}, {1, 2, 3, 4}},
      {2, 1, {MakeEntry(2, 3)}, {1, 2, 2}},  // matching entry: nothing truncated
      {2, 1, {MakeEntry(3, 3), MakeEntry(3, 4)}, {1, 3, 3}},
      {1, 1, {MakeEntry(5, 2)}, {5}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    Member m(1, StorageWithTerms(Voters({1, 2, 3}), {1, 2, 2}));
    m->BecomeFollower(6, 2);
    Message app = Msg(MessageType::kApp, 2, 1, 6);
    app.index = c.index;
    app.log_term = c.log_term;
    app.entries = c.entries;
    ASSERT_OK(m->Step(app));
    std::vector<Term> got;
    for (LogIndex j = 2; j <= m->log().LastIndex(); ++j) got.push_back(m->log().TermOrZero(j));
    EXPECT_EQ(got, c.want) << "case " << i;
  }
}

// §5.3 (Figure 7): "the leader handles inconsistencies by forcing the followers' logs to
// duplicate its own" — for every follower log (a)-(f) of Figure 7.
TEST(RaftPaper, LeaderBringsFollowerLogsIntoAgreement_5_3) {
  const std::vector<Term> leader_log = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::vector<std::vector<Term>> followers = {
      {1, 1, 1, 4, 4, 5, 5, 6, 6},           // (a) missing entries
      {1, 1, 1, 4},                          // (b) missing more
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},     // (c) an extra uncommitted entry
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},  // (d) extra entries of a later term
      {1, 1, 1, 4, 4, 4, 4},                 // (e) conflicting and missing
      {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},     // (f) a whole conflicting branch
  };
  for (size_t i = 0; i < followers.size(); ++i) {
    std::map<MemberId, std::unique_ptr<MemoryStorage>> storages;
    ConfState cs = Voters({1, 2, 3});
    storages[1] = StorageWithTerms(cs, leader_log);
    storages[1]->SetHardState(HardState{7, kNoMember, 1});
    storages[2] = StorageWithTerms(cs, followers[i]);
    storages[2]->SetHardState(HardState{7, kNoMember, 1});
    storages[3] = StorageWithTerms(cs, {});  // an empty log that votes for the leader
    storages[3]->SetHardState(HardState{7, kNoMember, 1});
    Cluster c(std::move(storages));
    c.Campaign(1);
    ASSERT_EQ(c.raft(1).state(), StateType::kLeader) << "follower " << char('a' + i);
    ASSERT_OK(c.Propose(1, "x"));
    const RaftLog& l = c.raft(1).log();
    const RaftLog& f = c.raft(2).log();
    ASSERT_EQ(f.LastIndex(), l.LastIndex()) << "follower " << char('a' + i);
    for (LogIndex j = 2; j <= l.LastIndex(); ++j) {
      EXPECT_EQ(f.TermOrZero(j), l.TermOrZero(j)) << "follower " << char('a' + i) << " index " << j;
    }
  }
}

// §5.4.1: "the voter denies its vote if its own log is more up-to-date than that of the
// candidate": compare last terms, then lengths.
TEST(RaftPaper, VoterRejectsCandidateWithOlderLog_5_4_1) {
  // Voter log: terms 1 2 3 at indexes 2..4 (last index 4, last term 3).
  struct Case {
    Term log_term;
    LogIndex index;
    bool reject;
  };
  const std::vector<Case> cases = {
      {2, 3, true},  {2, 4, true},  {2, 9, true},   // older last term, whatever the length
      {3, 3, true},                                 // same term, shorter
      {3, 4, false}, {3, 5, false},                 // same term, at least as long
      {4, 2, false}, {4, 4, false}, {4, 9, false},  // newer last term
  };
  for (const Case& c : cases) {
    Member m(1, StorageWithTerms(Voters({1, 2, 3}), {1, 2, 3}));
    m->BecomeFollower(5, kNoMember);
    Message v = Msg(MessageType::kVote, 2, 1, 5);
    v.index = c.index;
    v.log_term = c.log_term;
    ASSERT_OK(m->Step(v));
    auto msgs = m->TakeMessages();
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].reject, c.reject)
        << "candidate last (" << c.index << ", " << c.log_term << ")";
  }
}

// §5.4.2 (Figure 8): "Raft never commits log entries from previous terms by counting replicas.
// Only log entries from the leader's current term are committed by counting replicas."
TEST(RaftPaper, LeaderCommitsOnlyCurrentTermByCounting_5_4_2) {
  // Leader log: snapshot (1,1), (2,1), (3,2): entry 3 is from an earlier term.
  Member m(1, StorageWithTerms(Voters({1, 2, 3}), {1, 2}));
  m->BecomeFollower(2, kNoMember);
  MakeLeader(m);  // term 3, no-op at index 4
  ASSERT_EQ(m->term(), 3u);
  Message ack = Msg(MessageType::kAppResp, 2, 1, 3);
  ack.index = 3;  // follower 2 holds the old entry: a majority (1, 2) has index 3
  ASSERT_OK(m->Step(ack));
  EXPECT_EQ(m->log().committed(), 1u) << "old-term entry committed by counting replicas";
  ack.index = 4;  // now the current-term no-op is on a majority
  ASSERT_OK(m->Step(ack));
  EXPECT_EQ(m->log().committed(), 4u) << "current-term entry commits earlier ones with it";
}

// §5.4.2, Figure 8 played out on a 5-member cluster: an entry of an old term that a later
// leader replicates to a majority is NOT committed by that, so another leader may legally
// overwrite it and no member ever applies it; once the leader's own-term entry reaches a
// majority, both are committed and can no longer be lost.
TEST(RaftPaper, Figure8Scenario_5_4_2) {
  for (bool current_term_entry_replicated : {false, true}) {
    SCOPED_TRACE(current_term_entry_replicated ? "no-op replicated" : "no-op withheld");
    LogIndex x_index = 0;
    Cluster c({1, 2, 3, 4, 5}, [](Config& cfg) { cfg.max_size_per_msg = 1; });
    auto campaign_until_leader = [&c](MemberId id) {
      for (int i = 0; i < 4 && c.raft(id).state() != StateType::kLeader; ++i) c.Campaign(id);
      return c.raft(id).state() == StateType::kLeader;
    };
    // (a) S1 leads term 2 and appends X, which reaches nobody else.
    ASSERT_TRUE(campaign_until_leader(1));
    for (MemberId id : {2, 3, 4, 5}) c.Isolate(id);
    ASSERT_OK(c.Propose(1, "XX"));  // 2 bytes > max_size_per_msg: always sent alone
    x_index = c.raft(1).log().LastIndex();
    c.Heal();
    // (b) S1 crashes; S5 leads term 3 with S3 and S4; its own entry at X's index stays on S5.
    c.Crash(1);
    c.Isolate(2);
    c.SetFilter([](const Message& m) { return m.type == MessageType::kApp && m.from == 5; });
    ASSERT_TRUE(campaign_until_leader(5));
    Term t5 = c.raft(5).term();
    ASSERT_TRUE(c.raft(5).log().MatchTerm(x_index, t5));
    c.Crash(5);
    c.SetFilter(nullptr);
    c.Heal();
    // (c) S1 restarts and leads a later term with S2 and S3 (S4 is cut off); it copies X to
    // both, so X is on a majority. Unless the case says otherwise, its own-term entries do not
    // reach anyone holding X.
    c.Restart(1);
    c.Isolate(4);
    c.SetFilter([&](const Message& m) {
      if (current_term_entry_replicated || m.type != MessageType::kApp || m.from != 1) {
        return false;
      }
      if (!c.raft(m.to).log().MatchTerm(x_index, 2)) return false;
      for (const Entry& e : m.entries) {
        if (e.term == c.raft(1).term()) return true;
      }
      return false;
    });
    ASSERT_TRUE(campaign_until_leader(1));
    c.Tick(1);
    c.Tick(1);
    ASSERT_TRUE(c.raft(2).log().MatchTerm(x_index, 2));
    ASSERT_TRUE(c.raft(3).log().MatchTerm(x_index, 2));
    if (current_term_entry_replicated) {
      EXPECT_GT(c.raft(1).log().committed(), x_index);
      EXPECT_EQ(c.applied(1), std::vector<std::string>{"XX"});
    } else {
      EXPECT_LT(c.raft(1).log().committed(), x_index) << "X committed by counting replicas";
    }
    // (d) S1 crashes again; S5 restarts and campaigns.
    c.Crash(1);
    c.SetFilter(nullptr);
    c.Heal();
    c.Restart(5);
    bool s5_won = campaign_until_leader(5);
    if (current_term_entry_replicated) {
      // (e) X is committed; S2 and S3 hold a newer log than S5, which cannot win.
      EXPECT_FALSE(s5_won);
      EXPECT_EQ(c.applied(2), std::vector<std::string>{"XX"});
    } else {
      // S5 wins with S2, S3, S4 and overwrites X: legal, X was never committed.
      ASSERT_TRUE(s5_won);
      c.Restart(1);
      c.Tick(5);
      c.Tick(5);
      for (MemberId id : {1, 2, 3, 4, 5}) {
        EXPECT_TRUE(c.raft(id).log().MatchTerm(x_index, t5)) << "member " << id;
        EXPECT_TRUE(c.applied(id).empty()) << "member " << id << " applied X";
      }
    }
  }
}

// §5.4.3 Leader Completeness: a member missing committed entries cannot be elected, and the
// member that is elected holds every committed entry.
TEST(RaftPaper, LeaderCompleteness_5_4_3) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_EQ(c.Leader(), 1u);
  c.Isolate(3);
  ASSERT_OK(c.Propose(1, "a"));
  ASSERT_OK(c.Propose(1, "b"));
  LogIndex committed = c.raft(1).log().committed();
  c.Heal();
  c.Isolate(1);
  c.Campaign(3);  // 3 lacks the committed entries: 2 refuses its vote
  EXPECT_NE(c.raft(3).state(), StateType::kLeader);
  c.Campaign(2);
  ASSERT_EQ(c.raft(2).state(), StateType::kLeader);
  EXPECT_GE(c.raft(2).log().LastIndex(), committed);
  EXPECT_EQ(c.applied(2), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.applied(3), (std::vector<std::string>{"a", "b"}));
}

// §5.3 Log Matching: after replication through leader changes, every log holds identical
// entries at every index where the terms agree.
TEST(RaftPaper, LogMatching_5_3) {
  Cluster c({1, 2, 3, 4, 5});
  c.Campaign(1);
  ASSERT_OK(c.Propose(1, "a"));
  c.Isolate(1);
  (void)c.node(1).Propose("lost");  // never leaves the isolated leader
  c.Stabilize();
  c.Campaign(2);
  ASSERT_OK(c.Propose(2, "b"));
  c.Heal();
  ASSERT_OK(c.Propose(2, "c"));
  c.Tick(2);  // a heartbeat round un-pauses the probe to the old leader
  for (MemberId id : {1, 3, 4, 5}) {
    EXPECT_EQ(c.applied(id), (std::vector<std::string>{"a", "b", "c"})) << id;
    const RaftLog& a = c.raft(2).log();
    const RaftLog& b = c.raft(id).log();
    ASSERT_EQ(a.LastIndex(), b.LastIndex());
    for (LogIndex i = 1; i <= a.LastIndex(); ++i) {
      EXPECT_EQ(a.TermOrZero(i), b.TermOrZero(i)) << "member " << id << " index " << i;
    }
  }
}

}  // namespace
}  // namespace cairn::raft
