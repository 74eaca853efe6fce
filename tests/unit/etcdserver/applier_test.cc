// The applier: one RocksDB batch per committed entry, membership included (durable before
// acknowledged). A process that crashes at any RocksDB write while applying a member's own
// removal must, after restart and replay, hold the removal exactly once and learn of it.
#include "server/etcdserver/applier.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/base/check.h"
#include "server/base/clock.h"

namespace cairn::etcdserver {
namespace {

constexpr uint64_t kSelf = 3;

// The member's state machine over one data dir, as the server opens it.
struct Member {
  explicit Member(const std::string& dir, Applier::Hooks hooks = {}) {
    auto b = storage::Backend::Open(dir);
    CAIRN_CHECK(b.ok()) << b.status();
    backend = std::move(*b);
    membership = std::make_unique<Membership>(backend.get());
    membership->Load();
    kv = std::make_unique<mvcc::KvStore>(backend.get());
    hub = std::make_unique<mvcc::WatchHub>(kv.get(), 0);
    lessor = std::make_unique<lease::Lessor>([] { return base::Clock::Real()->NowMs(); }, 1);
    waits = std::make_unique<WaitRegistry>(100);
    Applier::Deps deps;
    deps.backend = backend.get();
    deps.kv = kv.get();
    deps.watch_hub = hub.get();
    deps.lessor = lessor.get();
    deps.membership = membership.get();
    deps.waits = waits.get();
    deps.member_id = kSelf;
    applier = std::make_unique<Applier>(deps, std::move(hooks));
  }
  std::unique_ptr<storage::Backend> backend;
  std::unique_ptr<Membership> membership;
  std::unique_ptr<mvcc::KvStore> kv;
  std::unique_ptr<mvcc::WatchHub> hub;
  std::unique_ptr<lease::Lessor> lessor;
  std::unique_ptr<WaitRegistry> waits;
  std::unique_ptr<Applier> applier;  // last: destroyed first
};

raft::Entry ConfChangeEntry(uint64_t index, raft::ConfChangeType type, uint64_t id) {
  raft::Entry e;
  e.term = 1;
  e.index = index;
  e.type = raft::EntryType::kConfChange;
  e.data = raft::EncodeConfChange(raft::ConfChange{type, id, ""});
  return e;
}

// Entries 1-3 add members 1, 2, 3 (this member); entry 4 removes this member.
std::vector<raft::Entry> Log() {
  std::vector<raft::Entry> log;
  for (uint64_t id = 1; id <= 3; ++id) {
    log.push_back(ConfChangeEntry(id, raft::ConfChangeType::kAddNode, id));
  }
  log.push_back(ConfChangeEntry(4, raft::ConfChangeType::kRemoveNode, kSelf));
  return log;
}

class ApplierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-applier-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(ApplierTest, AppliesMembershipAndIndexTogether) {
  bool removed = false;
  Applier::Hooks hooks;
  hooks.on_removed = [&] { removed = true; };
  Member m(dir_, std::move(hooks));
  std::vector<raft::Entry> log = Log();
  m.applier->ApplyEntries(log);
  EXPECT_TRUE(removed);
  EXPECT_EQ(m.kv->applied_index(), 4u);
  EXPECT_EQ(m.applier->applied_index(), 4u);
  EXPECT_FALSE(m.membership->Get(kSelf).has_value());
  EXPECT_TRUE(m.membership->IsRemoved(kSelf));
  EXPECT_EQ(m.membership->Members().size(), 2u);
  // Replaying the same entries (a restart before the WAL learned they were applied) is a no-op.
  removed = false;
  std::vector<raft::Entry> again = Log();
  m.applier->ApplyEntries(again);
  EXPECT_FALSE(removed);
  EXPECT_EQ(m.membership->Members().size(), 2u);
}

// The process dies right before its k-th RocksDB write while applying entry 4 (or, when entry 4
// takes fewer writes, after applying it). After restart, replay must leave the removal applied
// once, and the member must learn of it: either the store already had entry 4 (then the removal
// was in the same batch), or the replay applies it as a valid change and reports it.
TEST_F(ApplierTest, CrashAtAnyWriteOfAMembershipEntryNeverLosesTheRemoval) {
  for (int crash_at = 1; crash_at <= 3; ++crash_at) {
    SCOPED_TRACE(crash_at);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Child: no gtest assertions here, only CHECKs and the exit code.
      Member m(dir_);
      std::vector<raft::Entry> log = Log();
      std::vector<raft::Entry> first(log.begin(), log.begin() + 3);
      m.applier->ApplyEntries(first);
      m.backend->Sync();
      int writes = 0;
      m.backend->SetBeforeWriteHookForTesting([&writes, crash_at] {
        if (++writes == crash_at) _exit(42);  // a crash right before this write
      });
      std::vector<raft::Entry> last(log.begin() + 3, log.end());
      m.applier->ApplyEntries(last);
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_TRUE(WEXITSTATUS(status) == 42 || WEXITSTATUS(status) == 0) << WEXITSTATUS(status);

    bool reported = false;
    Applier::Hooks hooks;
    hooks.on_removed = [&] { reported = true; };
    Member m(dir_, std::move(hooks));
    const uint64_t applied_before = m.kv->applied_index();
    ASSERT_GE(applied_before, 3u);
    if (applied_before < 4) {
      // Entry 4 never landed: none of its changes may have either.
      EXPECT_TRUE(m.membership->Get(kSelf).has_value()) << "removal written without its entry";
    }
    std::vector<raft::Entry> replay = Log();
    m.applier->ApplyEntries(replay);
    EXPECT_EQ(m.kv->applied_index(), 4u);
    EXPECT_FALSE(m.membership->Get(kSelf).has_value());
    EXPECT_TRUE(m.membership->IsRemoved(kSelf));
    EXPECT_EQ(m.membership->Members().size(), 2u);
    EXPECT_EQ(reported, applied_before < 4) << "applied before replay: " << applied_before;
  }
}

}  // namespace
}  // namespace cairn::etcdserver
