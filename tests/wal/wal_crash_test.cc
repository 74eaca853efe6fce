// Randomized crash tests of the WAL on FaultInjectionEnv (ARCHITECTURE.md "Testing, in layers",
// item 3). Each seed drives a random sequence of Save / SaveSnapshot / Sync / ReleaseTo calls,
// shaped like a raft driver's, with crashes scheduled at random fsyncs (so a crash lands between
// a write and its fsync, inside a rollover, inside a release, or inside Open's tail cut) and
// crashes at random points between calls, in both crash modes. After every reopen:
//  - Open succeeds: nothing unsynced that was lost or torn breaks it;
//  - the replayed contents equal the model's state after some prefix of the records saved since
//    the last completed fsync: everything synced is present, and the log is prefix-consistent.
// A failure prints its seed; rerun one seed with --gtest_filter and WAL_CRASH_SEED=<seed>.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/base/fault_injection_env.h"
#include "server/base/logging.h"
#include "server/raft/storage.h"
#include "server/wal/wal.h"

namespace cairn::wal {
namespace {

using base::Env;
using base::FaultInjectionEnv;
using base::JoinPath;

using CrashMode = FaultInjectionEnv::CrashMode;

constexpr char kDir[] = "/crash/wal";

// The WAL's logical contents, maintained record by record with the replay rules of
// docs/wal_format.md.
class Model {
 public:
  const WalContents& state() const { return state_; }
  raft::LogIndex LastIndex() const { return state_.LastIndex(); }
  raft::LogIndex commit() const { return state_.hard_state.commit; }
  raft::Term TermAt(raft::LogIndex i) const {
    if (i == state_.snapshot.index) return state_.snapshot.term;
    return state_.entries[i - state_.snapshot.index - 1].term;
  }

  void Entry(const raft::Entry& e) {
    if (e.index <= state_.snapshot.index) return;
    state_.entries.resize(e.index - state_.snapshot.index - 1);
    state_.entries.push_back(e);
  }
  void HardState(const raft::HardState& hs) { state_.hard_state = hs; }
  void Snapshot(const raft::SnapshotMetadata& meta) {
    const bool keep = meta.index <= LastIndex() && TermAt(meta.index) == meta.term;
    if (keep) {
      state_.entries.erase(state_.entries.begin(),
                           state_.entries.begin() + (meta.index - state_.snapshot.index));
    } else {
      state_.entries.clear();
    }
    state_.snapshot = meta;
  }
  void Reset(WalContents contents) { state_ = std::move(contents); }

 private:
  WalContents state_;
};

std::string Describe(const WalContents& c) {
  std::string out = "hs{" + std::to_string(c.hard_state.term) + "," +
                    std::to_string(c.hard_state.vote) + "," + std::to_string(c.hard_state.commit) +
                    "} snap{" + std::to_string(c.snapshot.index) + "@" +
                    std::to_string(c.snapshot.term) + "} entries[";
  for (const raft::Entry& e : c.entries) {
    out += std::to_string(e.index) + "@" + std::to_string(e.term) + ":" +
           std::to_string(e.data.size()) + " ";
  }
  return out + "]";
}

class CrashRun {
 public:
  explicit CrashRun(uint64_t seed) : seed_(seed), env_(seed * 7919 + 1), rng_(seed) {
    const uint64_t sizes[] = {512, 2048, 8192};
    options_.segment_bytes = sizes[rng_() % 3];
  }

  void Run(int steps) {
    absl::StatusOr<std::unique_ptr<Wal>> created = Wal::Create(&env_, kDir, options_);
    ASSERT_TRUE(created.ok()) << created.status();
    wal_ = *std::move(created);
    candidates_ = {model_.state()};
    for (int step = 0; step < steps; ++step) {
      bool crash_now = false;
      const int r = static_cast<int>(rng_() % 100);
      if (r < 50) {
        Save();
      } else if (r < 70) {
        Call([&] { wal_->Sync(); });
      } else if (r < 77) {
        LocalSnapshot();
      } else if (r < 80) {
        LeaderSnapshot();
      } else if (r < 86) {
        if (model_.state().snapshot.index > 0) {
          Call([&] { wal_->ReleaseTo(model_.state().snapshot.index); });
        }
      } else if (r < 95) {
        env_.ScheduleCrash(1 + rng_() % 4, RandomMode());
      } else {
        crash_now = true;
      }
      if (crash_now) {
        env_.SimulateCrash(RandomMode());
        Recover("crash between calls");
      } else if (env_.crashed()) {
        Recover("crash at an fsync");
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
    env_.Restart();
    wal_->Sync();
    Recover("final reopen");
    ASSERT_EQ(model_.state(), candidates_.front());
  }

  int recoveries() const { return recoveries_; }
  // Recoveries that kept some but not all records since the last fsync (a torn Ready), and
  // recoveries that kept none of several.
  int partial_recoveries() const { return partial_recoveries_; }
  int lost_recoveries() const { return lost_recoveries_; }

 private:
  CrashMode RandomMode() {
    return rng_() % 2 == 0 ? CrashMode::kDropUnsynced : CrashMode::kTornWrites;
  }
  void Record() { candidates_.push_back(model_.state()); }

  // Runs one WAL call whose records the model already holds. A completed fsync inside it (Sync,
  // a rollover, a release) made everything saved so far durable.
  template <typename F>
  void Call(F f) {
    const uint64_t syncs = env_.file_sync_count() + env_.dir_sync_count();
    f();
    if (!env_.crashed() && env_.file_sync_count() + env_.dir_sync_count() != syncs) {
      candidates_ = {model_.state()};
    }
  }

  // A Ready's entries and hard state: appends at the end, or overwrites an uncommitted suffix
  // under a newer term (a new leader's log, Raft §5.3).
  void Save() {
    const raft::LogIndex floor = std::max(model_.commit(), model_.state().snapshot.index) + 1;
    const raft::LogIndex last = model_.LastIndex();
    raft::LogIndex start = last + 1;
    if (rng_() % 5 == 0 && floor <= last) {
      start = floor + rng_() % (last - floor + 1);
      ++term_;
    }
    const size_t count = rng_() % 5;
    std::vector<raft::Entry> entries;
    for (size_t i = 0; i < count; ++i) {
      size_t bytes = rng_() % 10 == 0 ? 1500 : rng_() % 200;
      std::string data(bytes, static_cast<char>('a' + rng_() % 26));
      entries.push_back(
          raft::Entry{term_, start + i,
                      rng_() % 8 == 0 ? raft::EntryType::kConfChange : raft::EntryType::kNormal,
                      std::move(data)});
    }
    for (const raft::Entry& e : entries) {
      model_.Entry(e);
      Record();
    }
    std::optional<raft::HardState> hs;
    if (rng_() % 10 < 6) {
      const raft::LogIndex new_last = model_.LastIndex();
      const raft::LogIndex commit = model_.commit() + rng_() % (new_last - model_.commit() + 1);
      hs = raft::HardState{term_, rng_() % 4, commit};
      if (!hs->IsEmpty()) {
        model_.HardState(*hs);
        Record();
      }
    }
    Call([&] { wal_->Save(hs, entries); });
  }

  // The state machine snapshotted at an applied (committed) index: compaction keeps the suffix.
  void LocalSnapshot() {
    const raft::LogIndex snap = model_.state().snapshot.index;
    if (model_.commit() <= snap) return;
    const raft::LogIndex index = snap + 1 + rng_() % (model_.commit() - snap);
    raft::SnapshotMetadata meta{index, model_.TermAt(index), raft::ConfState{{1, 2, 3}, {}}};
    model_.Snapshot(meta);
    Record();
    Call([&] { wal_->SaveSnapshot(meta); });
  }

  // A leader's snapshot past the end of this log replaces it, with commit moved to it.
  void LeaderSnapshot() {
    ++term_;
    const raft::LogIndex index = model_.LastIndex() + 1 + rng_() % 5;
    raft::SnapshotMetadata meta{index, term_, raft::ConfState{{1, 2}, {3}}};
    model_.Snapshot(meta);
    Record();
    Call([&] { wal_->SaveSnapshot(meta); });
    raft::HardState hs{term_, 0, index};
    model_.HardState(hs);
    Record();
    Call([&] { wal_->Save(hs, {}); });
  }

  void Recover(const char* why) {
    ++recoveries_;
    wal_.reset();
    env_.Restart();
    // Sometimes crash again inside Open (at its tail-cut fsync): that must lose nothing either.
    const bool crash_in_open = rng_() % 5 == 0;
    if (crash_in_open) env_.ScheduleCrash(1, RandomMode());
    absl::StatusOr<WalContents> read = ReadWal(&env_, kDir);
    ASSERT_TRUE(read.ok()) << "seed " << seed_ << " (" << why << "): " << read.status();
    absl::StatusOr<std::unique_ptr<Wal>> opened = Wal::Open(&env_, kDir, options_);
    ASSERT_TRUE(opened.ok()) << "seed " << seed_ << " (" << why << "): " << opened.status();
    WalContents contents = (*opened)->ReadAll();
    ASSERT_EQ(contents, *read) << "seed " << seed_;
    size_t match = candidates_.size();
    for (size_t i = 0; i < candidates_.size() && match == candidates_.size(); ++i) {
      if (candidates_[i] == contents) match = i;
    }
    if (match == candidates_.size()) {
      std::string expected;
      for (const WalContents& c : candidates_) expected += "\n  " + Describe(c);
      FAIL() << "seed " << seed_ << " (" << why << "): replayed " << Describe(contents)
             << "\nnot a prefix state of the records since the last fsync:" << expected;
    }
    if (match > 0 && match + 1 < candidates_.size()) ++partial_recoveries_;
    if (match == 0 && candidates_.size() > 1) ++lost_recoveries_;
    EXPECT_EQ((*opened)->LastIndex(), contents.LastIndex());
    raft::MemoryStorage storage;
    ASSERT_TRUE(LoadIntoStorage(contents, "", &storage).ok()) << "seed " << seed_;
    EXPECT_EQ(storage.LastIndex(), contents.LastIndex());
    model_.Reset(contents);
    candidates_ = {contents};
    wal_ = *std::move(opened);
    if (env_.crashed()) Recover("crash inside Open");
  }

  const uint64_t seed_;
  FaultInjectionEnv env_;
  std::mt19937_64 rng_;
  WalOptions options_;
  std::unique_ptr<Wal> wal_;
  Model model_;
  std::vector<WalContents> candidates_;
  raft::Term term_ = 1;
  int recoveries_ = 0;
  int partial_recoveries_ = 0;
  int lost_recoveries_ = 0;
};

TEST(WalCrashTest, RandomSequencesOverManySeeds) {
  base::SetLogLevel(base::LogLevel::kError);  // every recovery logs its torn-tail cut
  uint64_t first = 0, count = 300;
  if (const char* only = std::getenv("WAL_CRASH_SEED")) {
    first = std::strtoull(only, nullptr, 10);
    count = 1;
  }
  int recoveries = 0, partial = 0, lost = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    CrashRun run(seed);
    run.Run(250);
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure()) {
      FAIL() << "failing seed " << seed << " (rerun with WAL_CRASH_SEED=" << seed << ")";
    }
    recoveries += run.recoveries();
    partial += run.partial_recoveries();
    lost += run.lost_recoveries();
  }
  EXPECT_GT(recoveries, static_cast<int>(count));
  if (count > 1) {
    // The seeds do exercise torn writes, not only clean crashes.
    EXPECT_GT(partial, 0);
    EXPECT_GT(lost, 0);
  }
  std::printf("wal crash test: %d recoveries, %d kept part of a Ready, %d lost a whole one\n",
              recoveries, partial, lost);
}

}  // namespace
}  // namespace cairn::wal
