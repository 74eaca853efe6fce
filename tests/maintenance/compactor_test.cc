// The auto-compactor's schedule (server/etcdserver/compactor.h), driven with synthetic times:
// etcd 3.4's periodic and revision modes.
#include "server/etcdserver/compactor.h"

#include <gtest/gtest.h>

#include <vector>

namespace cairn::etcdserver {
namespace {

struct Fake {
  bool leader = true;
  int64_t revision = 1;
  std::vector<int64_t> compacted;
  Compactor Make(CompactionMode mode, int64_t retention) {
    Compactor::Deps d;
    d.mode = mode;
    d.retention = retention;
    d.is_leader = [this] { return leader; };
    d.revision = [this] { return revision; };
    d.compact = [this](int64_t rev) {
      compacted.push_back(rev);
      return true;
    };
    return Compactor(std::move(d));
  }
};

TEST(CompactorTest, PeriodicKeepsOneRetentionPeriodOfHistory) {
  Fake f;
  const int64_t hour = Compactor::kHourMs;
  Compactor c = f.Make(CompactionMode::kPeriodic, 10 * hour);
  EXPECT_EQ(c.TickMs(), hour / 10);  // samples every 1/10 of min(retention, 1h)
  // 100 revisions per hour, one step per sample interval.
  for (int64_t t = 0; t <= 12 * hour; t += hour / 10) {
    f.revision = 1001 + t * 100 / hour;
    c.Step(t);
  }
  // etcd's example: the first compaction after 10 h at the revision of 0 h, then hourly, each at
  // the revision of 10 h earlier.
  ASSERT_EQ(f.compacted.size(), 3u);
  EXPECT_EQ(f.compacted, (std::vector<int64_t>{1001, 1101, 1201}));
}

TEST(CompactorTest, PeriodicShortRetentionCompactsEveryPeriod) {
  Fake f;
  Compactor c = f.Make(CompactionMode::kPeriodic, 1000);  // 1 s
  for (int64_t t = 0; t <= 3000; t += 100) {
    f.revision = 2 + t / 100;  // one write per 100 ms
    c.Step(t);
  }
  // At 1 s the revision of 0 s, at 2 s that of 1 s, at 3 s that of 2 s.
  EXPECT_EQ(f.compacted, (std::vector<int64_t>{2, 12, 22}));
}

TEST(CompactorTest, RevisionModeEveryFiveMinutes) {
  Fake f;
  Compactor c = f.Make(CompactionMode::kRevision, 1000);
  const int64_t five = Compactor::kRevisionIntervalMs;
  f.revision = 500;
  c.Step(0);
  c.Step(five);  // 500 - 1000 <= 0: nothing
  f.revision = 30000;
  c.Step(five + 1000);  // not yet five minutes since the last check
  c.Step(2 * five);
  c.Step(3 * five);  // the same revision again: not repeated
  f.revision = 30500;
  c.Step(4 * five);
  EXPECT_EQ(f.compacted, (std::vector<int64_t>{29000, 29500}));
}

TEST(CompactorTest, OnlyTheLeaderCompacts) {
  Fake f;
  f.leader = false;
  Compactor c = f.Make(CompactionMode::kPeriodic, 1000);
  for (int64_t t = 0; t <= 5000; t += 100) {
    f.revision = 2 + t / 100;
    c.Step(t);
  }
  EXPECT_TRUE(f.compacted.empty());
  f.leader = true;  // a new leader waits a whole period first
  for (int64_t t = 5100; t <= 6000; t += 100) {
    f.revision = 2 + t / 100;
    c.Step(t);
  }
  EXPECT_TRUE(f.compacted.empty());
  c.Step(6100);
  EXPECT_EQ(f.compacted.size(), 1u);
}

}  // namespace
}  // namespace cairn::etcdserver
