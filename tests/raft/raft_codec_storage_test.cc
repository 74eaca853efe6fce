// Codecs (Message/Entry/ConfChange round trips and malformed input), MemoryStorage, RaftLog
// helpers, Progress/Inflights, and the RawNode Ready/Advance contract.
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/raft/message.h"
#include "server/raft/progress.h"
#include "server/raft/raft_log.h"
#include "server/raft/raw_node.h"
#include "server/raft/storage.h"
#include "tests/raft/raft_test_util.h"

namespace cairn::raft {
namespace {

using testing::MakeEntry;
using testing::TestConfig;
using testing::Voters;

std::vector<Message> SampleMessages() {
  std::vector<Message> out;
  Message hup;
  out.push_back(hup);
  Message app;
  app.type = MessageType::kApp;
  app.to = 2;
  app.from = 1;
  app.term = 7;
  app.log_term = 6;
  app.index = 1ull << 40;
  app.commit = 99;
  app.entries = {MakeEntry(7, 100, "hello"), MakeEntry(7, 101, std::string(300, '\0'))};
  app.entries[1].type = EntryType::kConfChange;
  out.push_back(app);
  Message resp;
  resp.type = MessageType::kAppResp;
  resp.to = 1;
  resp.from = 2;
  resp.term = ~0ull;
  resp.reject = true;
  resp.reject_hint = 12345;
  resp.log_term = 3;
  out.push_back(resp);
  Message snap;
  snap.type = MessageType::kSnap;
  snap.to = 3;
  snap.from = 1;
  snap.term = 2;
  snap.snapshot = Snapshot{SnapshotMetadata{50, 2, ConfState{{1, 2, 3}, {4}}}, "state bytes"};
  out.push_back(snap);
  Message read;
  read.type = MessageType::kReadIndex;
  read.from = 2;
  read.context = "request-42";
  out.push_back(read);
  Message pre;
  pre.type = MessageType::kPreVoteResp;
  pre.term = 9;
  out.push_back(pre);
  return out;
}

TEST(RaftCodec, MessageRoundTrip) {
  for (const Message& m : SampleMessages()) {
    std::string bytes = EncodeMessage(m);
    auto back = DecodeMessage(bytes);
    ASSERT_OK(back.status());
    EXPECT_EQ(*back, m) << MessageTypeName(m.type);
  }
}

TEST(RaftCodec, EntryAndConfChangeRoundTrip) {
  Entry e = MakeEntry(3, 4, "data");
  e.type = EntryType::kConfChange;
  std::string bytes;
  EncodeEntry(e, &bytes);
  auto back = DecodeEntry(bytes);
  ASSERT_OK(back.status());
  EXPECT_EQ(*back, e);
  ConfChange cc{ConfChangeType::kAddLearnerNode, 77, "http://peer:2380"};
  auto cc_back = DecodeConfChange(EncodeConfChange(cc));
  ASSERT_OK(cc_back.status());
  EXPECT_EQ(*cc_back, cc);
}

// Every truncation and some corruptions of a valid encoding are rejected, never crash.
TEST(RaftCodec, MalformedInputIsRejected) {
  for (const Message& m : SampleMessages()) {
    std::string bytes = EncodeMessage(m);
    for (size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_FALSE(DecodeMessage(bytes.substr(0, n)).ok()) << "prefix " << n;
    }
    EXPECT_FALSE(DecodeMessage(bytes + "x").ok());
    std::string bad_type = bytes;
    bad_type[1] = static_cast<char>(200);
    EXPECT_FALSE(DecodeMessage(bad_type).ok());
    std::string bad_version = bytes;
    bad_version[0] = 9;
    EXPECT_FALSE(DecodeMessage(bad_version).ok());
  }
  EXPECT_FALSE(DecodeConfChange(std::string("\x07\x01\x00", 3)).ok());
  EXPECT_FALSE(DecodeEntry(std::string("\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11)).ok());
}

TEST(RaftConfChange, ApplyAndValidate) {
  ConfState cs = Voters({1, 2, 3});
  EXPECT_EQ(ApplyConfChangeToState(cs, {ConfChangeType::kAddLearnerNode, 4, ""}),
            (ConfState{{1, 2, 3}, {4}}));
  EXPECT_EQ(ApplyConfChangeToState(ConfState{{1, 2, 3}, {4}}, {ConfChangeType::kAddNode, 4, ""}),
            Voters({1, 2, 3, 4}));
  EXPECT_EQ(ApplyConfChangeToState(cs, {ConfChangeType::kRemoveNode, 2, ""}), Voters({1, 3}));
  // Invalid changes are no-ops.
  EXPECT_EQ(ApplyConfChangeToState(cs, {ConfChangeType::kAddLearnerNode, 2, ""}), cs);
  EXPECT_EQ(ApplyConfChangeToState(cs, {ConfChangeType::kRemoveNode, 9, ""}), cs);
  EXPECT_EQ(ApplyConfChangeToState(Voters({1}), {ConfChangeType::kRemoveNode, 1, ""}), Voters({1}));
  EXPECT_FALSE(ValidateConfChange(cs, {ConfChangeType::kAddNode, 0, ""}).ok());
}

TEST(RaftStorage, MemoryStorageAppendCompactSnapshot) {
  MemoryStorage s;
  EXPECT_EQ(s.FirstIndex(), 1u);
  EXPECT_EQ(s.LastIndex(), 0u);
  ASSERT_OK(s.Append(
      {MakeEntry(1, 1, "aa"), MakeEntry(1, 2, "bb"), MakeEntry(2, 3, "cc"), MakeEntry(2, 4)}));
  EXPECT_EQ(s.LastIndex(), 4u);
  // Overwrite a suffix.
  ASSERT_OK(s.Append({MakeEntry(3, 3, "dd")}));
  EXPECT_EQ(s.LastIndex(), 3u);
  EXPECT_EQ(*s.TermAt(3), 3u);
  EXPECT_TRUE(IsEntryUnavailable(s.TermAt(4).status()));
  auto ents = s.Entries(1, 4, 0);  // max_bytes 0 still returns one entry
  ASSERT_OK(ents.status());
  EXPECT_EQ(ents->size(), 1u);
  ents = s.Entries(1, 4, 4);
  ASSERT_OK(ents.status());
  EXPECT_EQ(ents->size(), 2u);
  ASSERT_OK(s.CreateSnapshot(2, Voters({1}), "d").status());
  ASSERT_OK(s.Compact(2));
  EXPECT_EQ(s.FirstIndex(), 3u);
  EXPECT_EQ(*s.TermAt(2), 1u);
  EXPECT_TRUE(IsCompacted(s.TermAt(1).status()));
  EXPECT_TRUE(IsCompacted(s.Entries(2, 3, kNoLimit).status()));
  EXPECT_TRUE(IsCompacted(s.Compact(1)));
  Snapshot snap{SnapshotMetadata{10, 4, Voters({1, 2})}, "x"};
  ASSERT_OK(s.ApplySnapshot(snap));
  EXPECT_EQ(s.FirstIndex(), 11u);
  EXPECT_EQ(s.LastIndex(), 10u);
  EXPECT_FALSE(s.ApplySnapshot(snap).ok()) << "older or equal snapshots are refused";
}

// The log's byte count follows appends, replaced suffixes, compaction and snapshots, and
// CompactIndexKeeping keeps behind a snapshot at most so many entries and so many bytes.
TEST(RaftStorage, MemoryStorageBytesAndCompactIndexKeeping) {
  MemoryStorage s;
  EXPECT_EQ(s.Bytes(), 0u);
  ASSERT_OK(s.Append({MakeEntry(1, 1, "a"), MakeEntry(1, 2, "bb"), MakeEntry(1, 3, "ccc"),
                      MakeEntry(1, 4, "dddd"), MakeEntry(1, 5, "eeeee")}));
  EXPECT_EQ(s.Bytes(), 15u);
  ASSERT_OK(s.Append({MakeEntry(2, 5, "xy")}));  // replaces the 5-byte entry at 5
  EXPECT_EQ(s.Bytes(), 12u);
  ASSERT_OK(s.Append({MakeEntry(2, 4, "z")}));  // replaces 4 and 5
  EXPECT_EQ(s.Bytes(), 7u);
  ASSERT_OK(s.Append({MakeEntry(2, 5, "eeeee")}));
  EXPECT_EQ(s.Bytes(), 12u);
  // Entries 1..5 hold 1, 2, 3, 1, 5 bytes.
  EXPECT_EQ(s.CompactIndexKeeping(5, 100, 100), 0u);  // keep all: nothing to compact
  EXPECT_EQ(s.CompactIndexKeeping(5, 2, 100), 3u);    // keep 4 and 5
  EXPECT_EQ(s.CompactIndexKeeping(5, 100, 6), 3u);    // 5 + 1 bytes fit, + 3 does not
  EXPECT_EQ(s.CompactIndexKeeping(5, 100, 4), 5u);    // not even entry 5 fits
  EXPECT_EQ(s.CompactIndexKeeping(3, 1, 100), 2u);    // keeps 3 (and all after it)
  EXPECT_EQ(s.CompactIndexKeeping(5, 0, 100), 5u);
  ASSERT_OK(s.CreateSnapshot(5, Voters({1}), "").status());
  ASSERT_OK(s.Compact(3));
  EXPECT_EQ(s.Bytes(), 6u);                           // 4 and 5 remain
  EXPECT_EQ(s.CompactIndexKeeping(5, 100, 100), 3u);  // never below the snapshot index
  ASSERT_OK(s.ApplySnapshot(Snapshot{SnapshotMetadata{10, 4, Voters({1})}, "x"}));
  EXPECT_EQ(s.Bytes(), 0u);
  ASSERT_OK(s.Append({MakeEntry(4, 11, "abc")}));
  EXPECT_EQ(s.Bytes(), 3u);
}

TEST(RaftLogTest, FindConflictByTermTable) {
  MemoryStorage s;
  // Terms at 1..7: 1 1 2 2 2 5 5
  ASSERT_OK(s.Append({MakeEntry(1, 1), MakeEntry(1, 2), MakeEntry(2, 3), MakeEntry(2, 4),
                      MakeEntry(2, 5), MakeEntry(5, 6), MakeEntry(5, 7)}));
  RaftLog log(&s, kNoLimit);
  struct Case {
    LogIndex index;
    Term term;
    LogIndex want_index;
    Term want_term;
  };
  for (const Case& c : std::vector<Case>{
           {7, 5, 7, 5}, {7, 4, 5, 2}, {7, 2, 5, 2}, {7, 1, 2, 1}, {4, 3, 4, 2}, {2, 0, 0, 0}}) {
    auto [i, t] = log.FindConflictByTerm(c.index, c.term);
    EXPECT_EQ(i, c.want_index) << c.index << "/" << c.term;
    EXPECT_EQ(t, c.want_term) << c.index << "/" << c.term;
  }
}

TEST(RaftProgress, InflightsBoundCountAndBytes) {
  Inflights in(3, 100);
  in.Add(1, 10);
  in.Add(2, 10);
  EXPECT_FALSE(in.Full());
  in.Add(5, 10);
  EXPECT_TRUE(in.Full());
  in.FreeLE(2);
  EXPECT_EQ(in.count(), 1u);
  EXPECT_FALSE(in.Full());
  in.Add(6, 95);
  EXPECT_TRUE(in.Full()) << "byte bound";
  in.FreeFirstOne();
  EXPECT_EQ(in.count(), 1u);
}

TEST(RaftProgress, ProbeAndReplicateTransitions) {
  Progress pr(5, 4, kNoLimit);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(2, 6, 10);
  EXPECT_TRUE(pr.IsPaused()) << "probe: one append at a time";
  EXPECT_TRUE(pr.MaybeUpdate(6));
  pr.BecomeReplicate();
  EXPECT_EQ(pr.next, 7u);
  pr.SentEntries(3, 9, 3);
  EXPECT_EQ(pr.next, 10u) << "replicate: optimistic next";
  EXPECT_FALSE(pr.MaybeDecrTo(6, 0)) << "stale rejection";
  EXPECT_TRUE(pr.MaybeDecrTo(9, 7));
  EXPECT_EQ(pr.next, 7u);
}

// ---- RawNode contract ------------------------------------------------------------------------

TEST(RaftRawNode, ReadyAdvanceCycle) {
  MemoryStorage storage(Voters({1}));
  Config c = TestConfig(1, &storage);
  auto node = std::move(*RawNode::Create(c));
  ASSERT_TRUE(node->HasReady()) << "bootstrap entries are committed and must be applied";
  ASSERT_OK(node->Campaign());
  ASSERT_OK(node->Propose("x"));
  std::vector<std::string> applied;
  while (node->HasReady()) {
    Ready rd = node->GetReady();
    ASSERT_OK(storage.Append(rd.entries));
    if (rd.hard_state) storage.SetHardState(*rd.hard_state);
    for (const Entry& e : rd.committed_entries) {
      if (e.type == EntryType::kNormal && !e.data.empty()) applied.push_back(e.data);
    }
    node->Advance(rd);
  }
  EXPECT_EQ(applied, std::vector<std::string>{"x"});
  EXPECT_EQ(node->GetStatus().soft_state.state, StateType::kLeader);
  EXPECT_FALSE(node->HasReady());
}

TEST(RaftRawNode, StepRejectsLocalMessages) {
  MemoryStorage storage(Voters({1}));
  auto node = std::move(*RawNode::Create(TestConfig(1, &storage)));
  Message m;
  m.type = MessageType::kHup;
  m.to = 1;
  EXPECT_EQ(node->Step(m).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RaftRawNode, InvalidConfigIsAnError) {
  MemoryStorage storage;
  Config c = TestConfig(0, &storage);
  EXPECT_FALSE(RawNode::Create(c).ok());
  c = TestConfig(1, &storage);
  c.election_tick = 1;
  EXPECT_FALSE(RawNode::Create(c).ok());
}

// Rule R1/R4: Advance checks that the Ready was persisted.
TEST(RaftRawNodeDeathTest, AdvanceWithoutPersistingAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        MemoryStorage storage(Voters({1}));
        auto node = std::move(*RawNode::Create(TestConfig(1, &storage)));
        (void)node->Campaign();
        Ready rd = node->GetReady();
        node->Advance(rd);  // entries and hard state never written to storage
      },
      "not persisted");
}

TEST(RaftRawNodeDeathTest, GetReadyTwiceAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        MemoryStorage storage(Voters({1}));
        auto node = std::move(*RawNode::Create(TestConfig(1, &storage)));
        (void)node->GetReady();
        (void)node->GetReady();
      },
      "before Advance");
}

}  // namespace
}  // namespace cairn::raft
