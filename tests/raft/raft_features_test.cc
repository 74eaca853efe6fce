// Feature and table-driven tests beyond the basic paper rules: PreVote and CheckQuorum (thesis
// §9.6, §6.2), flow control, fast backtracking, snapshots (§7), ReadIndex (thesis §6.4),
// leadership transfer (thesis §3.10), membership changes (thesis §4), proposal errors.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/raft/raft.h"
#include "tests/raft/raft_test_util.h"

namespace cairn::raft {
namespace {

using testing::Cluster;
using testing::StorageWithTerms;
using testing::Voters;

void PreVoteAndCheckQuorum(Config& c) {
  c.pre_vote = true;
  c.check_quorum = true;
}

int CountSent(Cluster& c, MessageType type, MemberId to = kNoMember) {
  int n = 0;
  for (const Message& m : c.sent()) {
    if (m.type == type && (to == kNoMember || m.to == to)) ++n;
  }
  return n;
}

// ---- PreVote and CheckQuorum ---------------------------------------------------------------

// Thesis §9.6: a member cut off from the cluster keeps failing PreVote, so its term does not
// grow, and when it rejoins the leader is undisturbed.
TEST(RaftPreVote, IsolatedMemberRejoinsWithoutDisruptingLeader) {
  Cluster c({1, 2, 3}, PreVoteAndCheckQuorum);
  c.Campaign(1);
  ASSERT_EQ(c.Leader(), 1u);
  Term term = c.raft(1).term();
  c.Isolate(3);
  c.TickAll(100);  // many election timeouts for 3
  EXPECT_EQ(c.raft(3).term(), term) << "PreVote must not bump the term";
  EXPECT_EQ(c.raft(3).state(), StateType::kPreCandidate);
  c.Heal();
  c.TickAll(30);
  EXPECT_EQ(c.Leader(), 1u);
  EXPECT_EQ(c.raft(1).term(), term);
  EXPECT_EQ(c.raft(3).leader(), 1u);
  ASSERT_OK(c.Propose(1, "x"));
  EXPECT_EQ(c.applied(3), std::vector<std::string>{"x"});
}

// Without PreVote the same scenario makes the rejoining member force a new election (this is
// what PreVote prevents).
TEST(RaftPreVote, WithoutPreVoteRejoiningMemberBumpsTerm) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  Term term = c.raft(1).term();
  c.Isolate(3);
  c.TickAll(100);
  EXPECT_GT(c.raft(3).term(), term);
}

// Thesis §6.2: a leader that does not hear from a quorum for an election timeout steps down.
TEST(RaftCheckQuorum, LeaderWithoutQuorumStepsDown) {
  Cluster c({1, 2, 3}, PreVoteAndCheckQuorum);
  c.Campaign(1);
  ASSERT_EQ(c.Leader(), 1u);
  c.Isolate(1);
  for (int i = 0; i < 2 * 10 + 1; ++i) c.Tick(1);
  EXPECT_EQ(c.raft(1).state(), StateType::kFollower);
  EXPECT_EQ(c.raft(1).leader(), kNoMember);
}

// Thesis §4.2.3/§6.2: a follower that hears from a leader ignores vote requests with a higher
// term (from a removed or partitioned member) until the election timeout passes.
TEST(RaftCheckQuorum, FollowerInLeaseIgnoresHigherTermVotes) {
  Cluster c({1, 2, 3}, PreVoteAndCheckQuorum);
  c.Campaign(1);
  Term term = c.raft(1).term();
  Message vote;
  vote.type = MessageType::kVote;
  vote.from = 3;
  vote.to = 2;
  vote.term = term + 5;
  vote.index = 100;
  vote.log_term = term;
  c.Deliver(vote);
  EXPECT_EQ(c.raft(2).term(), term);
  EXPECT_EQ(c.raft(2).leader(), 1u);
}

// A leader that cannot reach a quorum because of an asymmetric partition still steps down.
TEST(RaftCheckQuorum, AsymmetricPartitionLeaderStepsDownAndClusterRecovers) {
  Cluster c({1, 2, 3}, PreVoteAndCheckQuorum);
  c.Campaign(1);
  c.Cut(2, 1);  // 1 hears nothing from 2 and 3, but they hear 1
  c.Cut(3, 1);
  c.TickAll(25);
  EXPECT_NE(c.raft(1).state(), StateType::kLeader);
  c.Heal();
  c.TickAll(60);
  MemberId leader = c.Leader();
  ASSERT_NE(leader, kNoMember);
  ASSERT_OK(c.Propose(leader, "after"));
  for (MemberId id : {1, 2, 3}) EXPECT_EQ(c.applied(id).back(), "after");
}

// ---- Replication and flow control ----------------------------------------------------------

// Fast backtracking (§5.3, term hint): a follower with a long conflicting suffix is repaired in
// a number of round trips bounded by the number of conflicting terms, not entries.
TEST(RaftReplication, FastBacktrackingSkipsWholeTerms) {
  std::map<MemberId, std::unique_ptr<MemoryStorage>> storages;
  ConfState cs = Voters({1, 2, 3});
  std::vector<Term> leader(60, 1), follower(60, 1);
  for (size_t i = 10; i < 60; ++i) leader[i] = 4;
  for (size_t i = 10; i < 60; ++i) follower[i] = (i < 35) ? 2 : 3;
  storages[1] = StorageWithTerms(cs, leader);
  storages[2] = StorageWithTerms(cs, follower);
  storages[3] = StorageWithTerms(cs, leader);
  for (auto& [id, s] : storages) s->SetHardState(HardState{4, kNoMember, 1});
  Cluster c(std::move(storages));
  c.Campaign(1);
  ASSERT_EQ(c.Leader(), 1u);
  ASSERT_OK(c.Propose(1, "x"));
  int rejections = 0;
  for (const Message& m : c.sent()) {
    if (m.type == MessageType::kAppResp && m.from == 2 && m.reject) ++rejections;
  }
  EXPECT_LE(rejections, 3) << "conflicting terms 2 and 3 should be skipped in one step each";
  EXPECT_EQ(c.raft(2).log().LastIndex(), c.raft(1).log().LastIndex());
  EXPECT_EQ(c.applied(2), std::vector<std::string>{"x"});
}

// Flow control: in replicate state at most max_inflight_msgs appends are unacknowledged, and
// each carries at most max_size_per_msg bytes (but at least one entry).
TEST(RaftReplication, InflightAndSizeLimits) {
  Cluster c(std::vector<MemberId>{1, 2}, [](Config& cfg) {
    cfg.max_inflight_msgs = 3;
    cfg.max_size_per_msg = 10;
  });
  c.Campaign(1);
  ASSERT_EQ(c.Leader(), 1u);
  // Stop acknowledgements from 2 to fill the window.
  c.SetFilter([](const Message& m) { return m.type == MessageType::kAppResp && m.from == 2; });
  c.sent().clear();
  for (int i = 0; i < 10; ++i) (void)c.Propose(1, std::string(6, 'a' + i));
  int apps = 0;
  for (const Message& m : c.sent()) {
    if (m.type != MessageType::kApp || m.to != 2) continue;
    ++apps;
    uint64_t bytes = 0;
    for (const Entry& e : m.entries) bytes += e.PayloadSize();
    EXPECT_TRUE(m.entries.size() == 1 || bytes <= 10) << "append of " << bytes << " bytes";
  }
  EXPECT_EQ(apps, 3);
  EXPECT_TRUE(c.raft(1).tracker().progress().at(2).inflights.Full());
  c.SetFilter(nullptr);
  c.TickAll(3);
  EXPECT_EQ(c.applied(2).size(), 10u);
}

// The leader refuses proposals beyond max_uncommitted_entries_size with a clear error.
TEST(RaftReplication, UncommittedBytesLimit) {
  Cluster c({1, 2, 3}, [](Config& cfg) { cfg.max_uncommitted_entries_size = 100; });
  c.Campaign(1);
  c.Isolate(2);
  c.Isolate(3);  // nothing commits
  ASSERT_OK(c.Propose(1, std::string(60, 'a')));
  absl::Status s = c.Propose(1, std::string(60, 'b'));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  c.Heal();
  c.TickAll(2);
  EXPECT_OK(c.Propose(1, std::string(60, 'c')));
}

// ---- Proposals -----------------------------------------------------------------------------

TEST(RaftProposal, NoLeaderFailsWithClearError) {
  Cluster c({1, 2, 3});
  absl::Status s = c.node(1).Propose("x");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("no leader"), std::string::npos) << s;
}

TEST(RaftProposal, FollowerForwardsToLeader) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_OK(c.Propose(2, "from follower"));
  for (MemberId id : {1, 2, 3}) EXPECT_EQ(c.applied(id), std::vector<std::string>{"from follower"});
}

// A batch becomes consecutive entries in one step, on the leader and forwarded by a follower;
// it is refused whole (nothing appended) without a leader, and an empty batch is invalid.
TEST(RaftProposal, BatchIsAppendedTogetherInOrder) {
  Cluster c({1, 2, 3});
  absl::Status none = c.node(2).ProposeBatch({"a", "b"});
  EXPECT_EQ(none.code(), absl::StatusCode::kUnavailable) << none;
  c.Campaign(1);
  ASSERT_OK(c.node(1).ProposeBatch({"l1", "l2", "l3"}));
  c.Stabilize();
  ASSERT_OK(c.node(3).ProposeBatch({"f1", "f2"}));
  c.Stabilize();
  const std::vector<std::string> want = {"l1", "l2", "l3", "f1", "f2"};
  for (MemberId id : {1, 2, 3}) EXPECT_EQ(c.applied(id), want) << "member " << id;
  EXPECT_EQ(c.node(1).ProposeBatch({}).code(), absl::StatusCode::kInvalidArgument);
}

// The leader-parallel fsync (docs/raft.md, R1 exception) sends a leader's appends before its
// Ready is durable only while its commit index is within its durable log. Pin the two facts that
// rule rests on: with several voters, an append alone never moves the commit index past the
// stored log (it needs another voter's acknowledgement); a lone voter commits at append, ahead of
// its storage, and must therefore follow R1 literally.
TEST(RaftProposal, CommitPassesTheDurableLogOnlyForALoneVoter) {
  Cluster three({1, 2, 3});
  three.Campaign(1);
  ASSERT_OK(three.node(1).Propose("x"));  // appended, not yet persisted by the caller
  EXPECT_GT(three.raft(1).log().LastIndex(), three.storage(1).LastIndex());
  EXPECT_LE(three.raft(1).hard_state().commit, three.storage(1).LastIndex());

  Cluster one({1});
  one.Campaign(1);
  ASSERT_OK(one.node(1).Propose("y"));
  EXPECT_GT(one.raft(1).hard_state().commit, one.storage(1).LastIndex());
}

// ---- Snapshots (§7) ------------------------------------------------------------------------

// Table: the follower falls behind the leader's compacted log in different ways; it must
// install the snapshot and then continue by normal replication.
TEST(RaftSnapshot, LaggingFollowerInstallsSnapshot) {
  struct Case {
    const char* name;
    bool crash_follower;         // the follower restarts from its (stale) storage
    bool drop_first_snapshot;    // the first snapshot message is lost
    bool proposals_during_send;  // entries are appended while the snapshot is in flight
  };
  const std::vector<Case> cases = {
      {"plain", false, false, false},
      {"after restart", true, false, false},
      {"snapshot lost once", false, true, false},
      {"replication continues during snapshot", false, false, true},
  };
  for (const Case& tc : cases) {
    Cluster c({1, 2, 3});
    c.Campaign(1);
    c.Isolate(3);
    if (tc.crash_follower) c.Crash(3);
    for (int i = 0; i < 20; ++i) ASSERT_OK(c.Propose(1, "e" + std::to_string(i)));
    c.Compact(1);
    ASSERT_GT(c.storage(1).FirstIndex(), 5u);
    bool dropped = false;
    if (tc.drop_first_snapshot) {
      c.SetFilter([&dropped](const Message& m) {
        if (m.type == MessageType::kSnap && !dropped) {
          dropped = true;
          return true;
        }
        return false;
      });
    }
    if (tc.crash_follower) c.Restart(3);
    c.Heal();
    if (tc.proposals_during_send) {
      c.SetFilter([](const Message& m) { return m.type == MessageType::kAppResp && m.from == 3; });
      c.TickAll(2);
      ASSERT_OK(c.Propose(1, "during"));
      c.SetFilter(nullptr);
    }
    c.TickAll(10);
    if (tc.drop_first_snapshot) {
      EXPECT_TRUE(dropped) << tc.name;
      // The transport reports the failure; the leader retries after a heartbeat.
      c.node(1).ReportSnapshot(3, true);
      c.TickAll(10);
    }
    EXPECT_GE(c.storage(3).FirstIndex(), c.storage(1).FirstIndex()) << tc.name;
    EXPECT_EQ(c.raft(3).log().LastIndex(), c.raft(1).log().LastIndex()) << tc.name;
    EXPECT_EQ(c.raft(3).log().committed(), c.raft(1).log().committed()) << tc.name;
    ASSERT_OK(c.Propose(1, "after"));
    EXPECT_EQ(c.applied(3).back(), "after") << tc.name;
  }
}

// A follower whose log already holds the snapshot's last entry keeps its log and just commits
// (§7: "If the follower's log already contains the entry ... retain the entries following it").
TEST(RaftSnapshot, FollowerWithMatchingLogFastForwards) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  for (int i = 0; i < 5; ++i) ASSERT_OK(c.Propose(1, "e"));
  Snapshot snap;
  snap.metadata.index = c.raft(2).log().LastIndex();
  snap.metadata.term = c.raft(2).log().LastTerm();
  snap.metadata.conf_state = Voters({1, 2, 3});
  Message m;
  m.type = MessageType::kSnap;
  m.from = 1;
  m.to = 2;
  m.term = c.raft(1).term();
  m.snapshot = snap;
  LogIndex first = c.storage(2).FirstIndex();
  c.Deliver(m);
  EXPECT_EQ(c.storage(2).FirstIndex(), first) << "log must not be replaced";
  EXPECT_EQ(c.raft(2).log().committed(), snap.metadata.index);
}

// ---- ReadIndex (thesis §6.4) ---------------------------------------------------------------

TEST(RaftReadIndex, LeaderConfirmsWithHeartbeatQuorum) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_OK(c.Propose(1, "w"));
  LogIndex commit = c.raft(1).log().committed();
  c.Isolate(2);
  c.Isolate(3);
  ASSERT_OK(c.node(1).ReadIndex("r1"));
  c.Stabilize();
  EXPECT_TRUE(c.read_states(1).empty()) << "no quorum, no read";
  c.Heal();
  c.Tick(1);  // the next heartbeat carries the request id
  ASSERT_EQ(c.read_states(1).size(), 1u);
  EXPECT_EQ(c.read_states(1)[0].request_ctx, "r1");
  EXPECT_EQ(c.read_states(1)[0].index, commit);
  EXPECT_EQ(CountSent(c, MessageType::kApp), CountSent(c, MessageType::kApp));  // no log write
  EXPECT_EQ(c.raft(1).log().LastIndex(), commit) << "ReadIndex must not write to the log";
}

TEST(RaftReadIndex, FollowerRequestIsForwardedAndAnswered) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_OK(c.Propose(1, "w"));
  ASSERT_OK(c.node(3).ReadIndex("from-3"));
  c.Stabilize();
  ASSERT_EQ(c.read_states(3).size(), 1u);
  EXPECT_EQ(c.read_states(3)[0].index, c.raft(1).log().committed());
}

TEST(RaftReadIndex, NoLeaderFailsAndEmptyContextRejected) {
  Cluster c({1, 2, 3});
  EXPECT_EQ(c.node(1).ReadIndex("x").code(), absl::StatusCode::kUnavailable);
  c.Campaign(1);
  EXPECT_EQ(c.node(1).ReadIndex("").code(), absl::StatusCode::kInvalidArgument);
}

// Step 1 of §6.4: a new leader does not answer reads until it has committed an entry of its
// term (its commit index may be stale before that).
TEST(RaftReadIndex, NewLeaderWaitsForCurrentTermCommit) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  // Keep the new leader's no-op from being acknowledged.
  c.SetFilter([](const Message& m) { return m.type == MessageType::kAppResp; });
  c.Campaign(2);
  ASSERT_EQ(c.Leader(), 2u);
  ASSERT_OK(c.node(2).ReadIndex("early"));
  c.Tick(2);
  EXPECT_TRUE(c.read_states(2).empty());
  c.SetFilter(nullptr);
  c.Tick(2);
  c.Tick(2);
  ASSERT_EQ(c.read_states(2).size(), 1u);
  EXPECT_EQ(c.raft(2).log().TermOrZero(c.read_states(2)[0].index), c.raft(2).term());
}

// ---- Leadership transfer (thesis §3.10) ----------------------------------------------------

TEST(RaftTransfer, ToUpToDateFollower) {
  Cluster c({1, 2, 3}, PreVoteAndCheckQuorum);
  c.Campaign(1);
  ASSERT_OK(c.Propose(1, "a"));
  c.node(1).TransferLeader(3);
  c.Stabilize();
  EXPECT_EQ(c.Leader(), 3u);
  EXPECT_EQ(c.raft(1).state(), StateType::kFollower);
  EXPECT_EQ(c.raft(1).leader(), 3u);
  ASSERT_OK(c.Propose(3, "b"));
  EXPECT_EQ(c.applied(1), (std::vector<std::string>{"a", "b"}));
}

TEST(RaftTransfer, ToLaggingFollowerCatchesItUpFirst) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_OK(c.Propose(1, "x"));
  c.Heal();
  c.node(1).TransferLeader(3);
  c.Stabilize();
  c.Tick(1);
  EXPECT_EQ(c.Leader(), 3u);
  EXPECT_EQ(c.raft(3).log().committed(), c.raft(3).log().LastIndex());
}

TEST(RaftTransfer, ProposalsFailDuringTransferAndTransferTimesOut) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(3);
  c.node(1).TransferLeader(3);
  c.Stabilize();
  EXPECT_EQ(c.raft(1).lead_transferee(), 3u);
  absl::Status s = c.node(1).Propose("x");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("transfer"), std::string::npos) << s;
  for (int i = 0; i < 10; ++i) c.Tick(1);  // an election timeout
  EXPECT_EQ(c.raft(1).lead_transferee(), kNoMember);
  EXPECT_EQ(c.Leader(), 1u);
  EXPECT_OK(c.Propose(1, "y"));
}

// Table: configuration changes meeting a leadership transfer.
TEST(RaftTransfer, ConfChangeDuringTransfer) {
  struct Case {
    const char* name;
    int step;  // 0: conf change proposed during transfer; 1: transferee removed first;
               // 2: transfer to a learner; 3: transfer to a member being removed
  };
  for (const Case& tc : std::vector<Case>{{"propose during transfer", 0},
                                          {"transferee removed", 1},
                                          {"transfer to learner", 2},
                                          {"transfer then removal commits", 3}}) {
    Cluster c({1, 2, 3});
    c.AddMember(4, std::make_unique<MemoryStorage>());
    c.Campaign(1);
    switch (tc.step) {
      case 0: {
        c.Isolate(3);
        c.node(1).TransferLeader(3);
        c.Stabilize();
        absl::Status s =
            c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kAddLearnerNode, 4, ""});
        EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << tc.name << ": " << s;
        EXPECT_FALSE(c.raft(1).conf_state().IsLearner(4)) << tc.name;
        break;
      }
      case 1: {
        c.Isolate(3);
        ASSERT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kRemoveNode, 3, ""}));
        c.Stabilize();
        c.node(1).TransferLeader(3);  // no longer a member: ignored
        c.Stabilize();
        EXPECT_EQ(c.raft(1).lead_transferee(), kNoMember) << tc.name;
        EXPECT_EQ(c.Leader(), 1u) << tc.name;
        break;
      }
      case 2: {
        ASSERT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kAddLearnerNode, 4, ""}));
        c.Stabilize();
        c.node(1).TransferLeader(4);  // a learner cannot lead: ignored
        c.Stabilize();
        EXPECT_EQ(c.Leader(), 1u) << tc.name;
        EXPECT_EQ(c.raft(1).lead_transferee(), kNoMember) << tc.name;
        break;
      }
      case 3: {
        c.Isolate(3);
        c.node(1).TransferLeader(3);
        c.Stabilize();
        ASSERT_EQ(c.raft(1).lead_transferee(), 3u);
        // The transfer blocks proposals; once it times out the removal can go through, and a
        // later transfer to the removed member is ignored.
        c.Tick(1, 10);
        ASSERT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kRemoveNode, 3, ""}));
        c.Stabilize();
        c.node(1).TransferLeader(3);
        c.Stabilize();
        EXPECT_EQ(c.raft(1).lead_transferee(), kNoMember) << tc.name;
        EXPECT_FALSE(c.raft(1).conf_state().IsVoter(3)) << tc.name;
        break;
      }
    }
  }
}

// ---- Membership changes (thesis §4) --------------------------------------------------------

TEST(RaftMembership, LearnerReceivesLogNeverVotesAndCanBePromoted) {
  Cluster c({1, 2, 3});
  c.AddMember(4, std::make_unique<MemoryStorage>());
  c.Campaign(1);
  ASSERT_OK(c.Propose(1, "before"));
  ASSERT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kAddLearnerNode, 4, ""}));
  c.Stabilize();
  c.TickAll(2);
  EXPECT_TRUE(c.raft(4).conf_state().IsLearner(4));
  EXPECT_EQ(c.applied(4), std::vector<std::string>{"before"});
  // A learner never campaigns, and the leader does not count it for commit or votes.
  c.Tick(4, 50);
  EXPECT_EQ(c.raft(4).state(), StateType::kFollower);
  EXPECT_EQ(c.raft(1).tracker().voters().size(), 3u);
  // Promote.
  ASSERT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kAddNode, 4, ""}));
  c.Stabilize();
  EXPECT_TRUE(c.raft(1).conf_state().IsVoter(4));
  EXPECT_TRUE(c.raft(4).conf_state().IsVoter(4));
  // Now 4 counts: with 1 and 4 alone a quorum of 4 voters (3) is not reached.
  c.Isolate(2);
  c.Isolate(3);
  ASSERT_OK(c.Propose(1, "needs three"));
  EXPECT_TRUE(c.applied(4).size() == 1) << "committed without a quorum of the new config";
}

// docs/raft.md rule 1a: a lone voter adding a second voter commits the change alone (under rule
// 1 the entry would need the new member, which cannot start before the change is applied); from
// the commit on, both voters are needed. etcd accepts this add too.
TEST(RaftMembership, LoneVoterAddsSecondVoterAtCommit) {
  Cluster c({1});
  c.Campaign(1);
  ASSERT_EQ(c.Leader(), 1u);
  ASSERT_OK(c.Propose(1, "alone"));
  ASSERT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kAddNode, 2, ""}));
  c.Stabilize();
  const LogIndex cc_index = c.raft(1).log().LastIndex();
  EXPECT_EQ(c.raft(1).log().committed(), cc_index) << "the add needed the new voter to commit";
  EXPECT_EQ(c.raft(1).conf_state(), Voters({1, 2}));
  EXPECT_EQ(c.raft(1).tracker().voters().size(), 2u);
  // From now on member 2 counts: without it nothing commits.
  ASSERT_OK(c.Propose(1, "needs two"));
  EXPECT_EQ(c.raft(1).log().committed(), cc_index);
  // The configuration survives a restart of the lone voter (rebuilt from the committed log).
  c.Crash(1);
  c.Restart(1);
  EXPECT_EQ(c.raft(1).conf_state(), Voters({1, 2}));
  // Once member 2 runs, it catches up and both commit.
  c.AddMember(2, std::make_unique<MemoryStorage>());
  c.TickAll(40);
  MemberId leader = c.Leader();
  ASSERT_NE(leader, kNoMember);
  ASSERT_OK(c.Propose(leader, "with two"));
  EXPECT_EQ(c.applied(2).back(), "with two");
  EXPECT_EQ(c.raft(2).conf_state(), Voters({1, 2}));
}

// A learner promoted in a one-voter cluster (it is running, so either rule works) still
// becomes a voter, at commit.
TEST(RaftMembership, LoneVoterPromotesLearner) {
  Cluster c({1});
  c.AddMember(2, std::make_unique<MemoryStorage>());
  c.Campaign(1);
  ASSERT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kAddLearnerNode, 2, ""}));
  c.Stabilize();
  c.TickAll(2);
  ASSERT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kAddNode, 2, ""}));
  c.Stabilize();
  c.TickAll(2);
  EXPECT_EQ(c.raft(1).conf_state(), Voters({1, 2}));
  EXPECT_EQ(c.raft(2).conf_state(), Voters({1, 2}));
  c.Isolate(2);
  LogIndex before = c.raft(1).log().committed();
  ASSERT_OK(c.Propose(1, "needs two"));
  EXPECT_EQ(c.raft(1).log().committed(), before);
}

TEST(RaftMembership, OnlyOneChangeAtATimeAndInvalidChangesRejected) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(2);
  c.Isolate(3);
  ASSERT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kAddLearnerNode, 4, ""}));
  absl::Status s = c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kAddLearnerNode, 5, ""});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kAddNode, 2, ""}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kRemoveNode, 9, ""}).code(),
            absl::StatusCode::kInvalidArgument);
  c.Heal();
  c.TickAll(2);
  EXPECT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kAddLearnerNode, 5, ""}));
}

TEST(RaftMembership, NewLeaderMustCommitBeforeChangingConfig) {
  Cluster c({1, 2, 3});
  c.SetFilter([](const Message& m) { return m.type == MessageType::kAppResp; });
  c.Campaign(1);
  ASSERT_EQ(c.Leader(), 1u);
  // Ongaro (raft-dev, 2015): a leader may change the configuration only after committing an
  // entry of its own term.
  absl::Status s = c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kRemoveNode, 3, ""});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
}

TEST(RaftMembership, RemoveVoterShrinksQuorum) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kRemoveNode, 3, ""}));
  c.Stabilize();
  EXPECT_EQ(c.raft(1).conf_state(), Voters({1, 2}));
  c.Crash(3);
  ASSERT_OK(c.Propose(1, "two voters"));
  EXPECT_EQ(c.applied(2), std::vector<std::string>{"two voters"});
}

// Thesis §4.2.2: a leader removed from the configuration keeps leading until the change is
// committed (not counting itself), then steps down; the rest elect a new leader.
TEST(RaftMembership, RemovedLeaderStepsDown) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kRemoveNode, 1, ""}));
  c.Stabilize();
  EXPECT_EQ(c.raft(1).state(), StateType::kFollower);
  EXPECT_FALSE(c.raft(1).Promotable());
  c.TickAll(40);
  MemberId leader = c.Leader();
  ASSERT_TRUE(leader == 2 || leader == 3) << leader;
  ASSERT_OK(c.Propose(leader, "without 1"));
  EXPECT_EQ(c.applied(leader == 2 ? 3 : 2).back(), "without 1");
}

// The configuration follows the log (thesis §4.1): an uncommitted change that is truncated
// by a new leader is rolled back on the member that held it.
TEST(RaftMembership, TruncatedConfChangeIsRolledBack) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(1);
  ASSERT_OK(c.node(1).ProposeConfChange(ConfChange{ConfChangeType::kAddLearnerNode, 4, ""}));
  c.Stabilize();
  EXPECT_TRUE(c.raft(1).conf_state().IsLearner(4));
  c.Campaign(2);
  ASSERT_OK(c.Propose(2, "new leader"));
  c.Heal();
  c.Tick(2);
  EXPECT_FALSE(c.raft(1).conf_state().IsLearner(4));
  EXPECT_EQ(c.applied(1), std::vector<std::string>{"new leader"});
}

// ---- Restart ---------------------------------------------------------------------------------

TEST(RaftRestart, MemberKeepsOnlyPersistedStateAndCatchesUp) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_OK(c.Propose(1, "a"));
  Term term = c.raft(2).term();
  MemberId vote = c.raft(2).vote();
  c.Crash(2);
  ASSERT_OK(c.Propose(1, "b"));
  c.Restart(2);
  EXPECT_EQ(c.raft(2).term(), term);
  EXPECT_EQ(c.raft(2).vote(), vote);
  c.TickAll(2);
  // Re-applies from its (empty) snapshot, then catches up.
  EXPECT_EQ(c.applied(2), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace cairn::raft
