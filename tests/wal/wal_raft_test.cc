// The WAL as the durable log of a real raft::RawNode: the driver loop of server/wal/wal.h, with
// restarts (crashes) in between, snapshots and segment release. Whatever was committed before a
// crash is committed, in the same order, after the member rebuilds its storage from the WAL.
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/base/check.h"
#include "server/base/fault_injection_env.h"
#include "server/raft/raw_node.h"
#include "server/raft/storage.h"
#include "server/wal/wal.h"

namespace cairn::wal {
namespace {

using base::Env;
using base::FaultInjectionEnv;
using base::JoinPath;

constexpr char kDir[] = "/member/wal";
const raft::ConfState kConf{{1}, {}};

class Member {
 public:
  // Starts from the WAL in kDir, creating (and bootstrapping) it if there is none.
  Member(FaultInjectionEnv* env, WalOptions options, uint64_t seed) {
    WalContents contents;
    if (WalExists(env, kDir)) {
      wal_ = *Wal::Open(env, kDir, options);
      contents = wal_->ReadAll();
    } else {
      wal_ = *Wal::Create(env, kDir, options);
      (void)wal_->ReadAll();
      // A founding member's log: its configuration, committed at term 1.
      raft::MemoryStorage bootstrap(kConf);
      contents.hard_state = bootstrap.hard_state();
      contents.entries = raft::BootstrapEntries(kConf);
      wal_->Save(contents.hard_state, contents.entries);
      wal_->Sync();
    }
    CAIRN_CHECK_OK(LoadIntoStorage(contents, "", &storage_));
    raft::Config config;
    config.id = 1;
    config.storage = &storage_;
    config.applied = contents.snapshot.index;  // state machine: rebuilt from the snapshot point
    config.random_seed = seed;
    node_ = *raft::RawNode::Create(config);
  }

  // Runs Readies until there are none: the persist / apply / Advance loop.
  void Drain() {
    while (node_->HasReady()) {
      raft::Ready rd = node_->GetReady();
      if (!rd.snapshot.IsEmpty()) {
        wal_->SaveSnapshot(rd.snapshot.metadata);
        CAIRN_CHECK_OK(storage_.ApplySnapshot(rd.snapshot));
      }
      wal_->Save(rd.hard_state, rd.entries);
      if (rd.must_sync) wal_->Sync();
      CAIRN_CHECK_OK(storage_.Append(rd.entries));
      if (rd.hard_state) storage_.SetHardState(*rd.hard_state);
      for (const raft::Entry& e : rd.committed_entries) {
        if (e.type == raft::EntryType::kConfChange) {
          node_->ApplyConfChange(*raft::DecodeConfChange(e.data));
        } else if (!e.data.empty()) {
          applied_.push_back(e.data);
        }
        applied_index_ = e.index;
      }
      node_->Advance(rd);
    }
  }

  void BecomeLeader() {
    ASSERT_TRUE(node_->Campaign().ok());
    Drain();
    ASSERT_EQ(node_->GetStatus().soft_state.state, raft::StateType::kLeader);
  }

  void Propose(const std::string& value) {
    ASSERT_TRUE(node_->Propose(value).ok());
    Drain();
  }

  // Snapshots the (trivial) state machine at the applied index, then releases old segments.
  void SnapshotAndRelease() {
    absl::StatusOr<raft::Snapshot> snap = storage_.CreateSnapshot(applied_index_, kConf, "");
    ASSERT_TRUE(snap.ok()) << snap.status();
    ASSERT_TRUE(storage_.Compact(applied_index_).ok());
    wal_->SaveSnapshot(snap->metadata);
    wal_->ReleaseTo(applied_index_);
  }

  const std::vector<std::string>& applied() const { return applied_; }
  Wal& wal() { return *wal_; }

 private:
  std::unique_ptr<Wal> wal_;
  raft::MemoryStorage storage_;
  std::unique_ptr<raft::RawNode> node_;
  std::vector<std::string> applied_;
  raft::LogIndex applied_index_ = 0;
};

TEST(WalRaftTest, SingleMemberKeepsCommittedEntriesAcrossCrashes) {
  FaultInjectionEnv env(3);
  WalOptions options;
  options.segment_bytes = 2048;
  std::vector<std::string> committed;  // everything acknowledged (applied) so far
  size_t after_snapshot = 0;           // values applied since the last snapshot
  for (int life = 0; life < 6; ++life) {
    Member member(&env, options, life + 1);
    member.Drain();
    // Entries after the snapshot are re-applied on restart, in order.
    ASSERT_EQ(member.applied().size(), after_snapshot) << "life " << life;
    for (size_t i = 0; i < after_snapshot; ++i) {
      EXPECT_EQ(member.applied()[i], committed[committed.size() - after_snapshot + i]);
    }
    member.BecomeLeader();
    if (::testing::Test::HasFatalFailure()) return;
    for (int i = 0; i < 40; ++i) {
      std::string value = "life" + std::to_string(life) + "-value" + std::to_string(i) +
                          std::string(static_cast<size_t>(i % 7) * 10, '.');
      member.Propose(value);
      committed.push_back(value);
      ++after_snapshot;
    }
    ASSERT_EQ(member.applied().size(), after_snapshot);
    if (life % 2 == 1) {
      const size_t segments = member.wal().SegmentFiles().size();
      member.SnapshotAndRelease();
      EXPECT_LT(member.wal().SegmentFiles().size(), segments);
      after_snapshot = 0;
    }
    // Power failure: every committed entry was fsynced before it was applied.
    env.SimulateCrash(life % 2 == 0 ? FaultInjectionEnv::CrashMode::kTornWrites
                                    : FaultInjectionEnv::CrashMode::kDropUnsynced);
  }
}

}  // namespace
}  // namespace cairn::wal
