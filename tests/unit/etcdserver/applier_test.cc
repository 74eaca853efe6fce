// The applier: one RocksDB batch per committed entry, membership included (durable before
// acknowledged). A process that crashes at any RocksDB write while applying a member's own
// removal must, after restart and replay, hold the removal exactly once and learn of it.
#include "server/etcdserver/applier.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
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
    alarms = std::make_unique<Alarms>(backend.get());
    alarms->Load();
    deps.alarms = alarms.get();
    applier = std::make_unique<Applier>(deps, std::move(hooks));
  }
  std::unique_ptr<storage::Backend> backend;
  std::unique_ptr<Membership> membership;
  std::unique_ptr<mvcc::KvStore> kv;
  std::unique_ptr<mvcc::WatchHub> hub;
  std::unique_ptr<lease::Lessor> lessor;
  std::unique_ptr<WaitRegistry> waits;
  std::unique_ptr<Alarms> alarms;
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

// etcd's applierV3Corrupt: with a CORRUPT alarm raised (by an earlier entry), the entries that
// write are refused at apply with "etcdserver: corrupt cluster" and change nothing but the
// applied index; read-only txns and the alarm's own deactivation still apply.
TEST_F(ApplierTest, CorruptAlarmRefusesWritesAtApply) {
  Member m(dir_);
  uint64_t index = 0;
  auto entry = [&](cairnpb::InternalRequest r) {
    r.set_proposer(kSelf);
    r.set_id(++index);
    raft::Entry e;
    e.term = 1;
    e.index = index;
    e.data = r.SerializeAsString();
    return e;
  };
  auto alarm = [](etcdserverpb::AlarmRequest::AlarmAction action) {
    cairnpb::InternalRequest r;
    r.mutable_alarm()->set_action(action);
    r.mutable_alarm()->set_memberid(1);
    r.mutable_alarm()->set_alarm(etcdserverpb::CORRUPT);
    return r;
  };
  auto put = [](const std::string& key) {
    cairnpb::InternalRequest r;
    r.mutable_put()->set_key(key);
    r.mutable_put()->set_value("v");
    return r;
  };
  cairnpb::InternalRequest del;
  del.mutable_delete_range()->set_key("a");
  cairnpb::InternalRequest write_txn;
  write_txn.mutable_txn()->add_success()->mutable_request_put()->set_key("t");
  cairnpb::InternalRequest read_txn;
  read_txn.mutable_txn()->add_success()->mutable_request_range()->set_key("a");
  cairnpb::InternalRequest compaction;
  compaction.mutable_compaction()->set_revision(1);
  cairnpb::InternalRequest grant;
  grant.mutable_lease_grant()->set_id(7);
  grant.mutable_lease_grant()->set_ttl(60);
  cairnpb::InternalRequest revoke;
  revoke.mutable_lease_revoke()->set_id(7);

  std::vector<raft::Entry> log = {
      entry(put("a")),  // 1: before the alarm
      entry(alarm(etcdserverpb::AlarmRequest::ACTIVATE)),
      entry(put("b")),  // 3..8: refused
      entry(del),
      entry(write_txn),
      entry(compaction),
      entry(grant),
      entry(revoke),
      entry(read_txn),  // 9: applies
      entry(alarm(etcdserverpb::AlarmRequest::DEACTIVATE)),
      entry(put("c")),  // 11: applies again
  };
  std::map<uint64_t, absl::Status> results;
  for (uint64_t id = 1; id <= index; ++id) {
    Waiter w;
    w.done = [&results, id](mvcc::ApplyResult r) { results[id] = r.status; };
    ASSERT_TRUE(m.waits->Register(id, base::Clock::Real()->NowMs() + 60000, w));
  }
  m.applier->ApplyEntries(log);
  ASSERT_EQ(results.size(), index);
  for (uint64_t id : {1, 2, 9, 10, 11}) EXPECT_TRUE(results[id].ok()) << id << results[id];
  for (uint64_t id = 3; id <= 8; ++id) {
    EXPECT_EQ(results[id].code(), absl::StatusCode::kDataLoss) << id;
    EXPECT_EQ(results[id].message(), "etcdserver: corrupt cluster") << id;
  }
  EXPECT_EQ(m.kv->applied_index(), index);
  etcdserverpb::RangeRequest all;
  all.set_key(std::string(1, '\0'));
  all.set_range_end(std::string(1, '\0'));
  auto got = m.kv->Range(m.kv->View(), all);
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<std::string> keys;
  for (const auto& kv : got->kvs()) keys.push_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "c"}));  // no b, t; a not deleted
  EXPECT_FALSE(m.alarms->HasAny(etcdserverpb::CORRUPT));
}

}  // namespace
}  // namespace cairn::etcdserver
