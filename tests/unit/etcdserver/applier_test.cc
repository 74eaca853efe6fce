// The applier: one RocksDB batch per committed entry, membership included (durable before
// acknowledged). A process that crashes at any RocksDB write while applying a member's own
// removal must, after restart and replay, hold the removal exactly once and learn of it.
#include "server/etcdserver/applier.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
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

// A log of KV entries mixing runs of plain puts and one-key deletes (grouped into one RocksDB
// write) with entries of other kinds, failing puts, and entries that read what an earlier entry
// of the same run wrote.
std::vector<cairnpb::InternalRequest> MixedKvLog() {
  std::vector<cairnpb::InternalRequest> log;
  auto put = [&log](const std::string& key, const std::string& value) {
    cairnpb::InternalRequest r;
    r.mutable_put()->set_key(key);
    r.mutable_put()->set_value(value);
    r.mutable_put()->set_prev_kv(true);
    log.push_back(r);
    return &log.back();
  };
  put("a", "1");
  put("a", "2");                                        // reads the group's own "a"
  put("b", "1")->mutable_put()->set_lease(99);          // unknown lease: fails, writes nothing
  put("c", "")->mutable_put()->set_ignore_value(true);  // no "c": fails
  put("a", "")->mutable_put()->set_ignore_value(true);  // keeps "2"
  cairnpb::InternalRequest grant;
  grant.mutable_lease_grant()->set_id(7);
  grant.mutable_lease_grant()->set_ttl(60);
  log.push_back(grant);  // flushes the run
  put("b", "2")->mutable_put()->set_lease(7);
  put("b", "3")->mutable_put()->set_ignore_lease(true);
  cairnpb::InternalRequest txn;  // reads the history the run before it wrote
  auto* range = txn.mutable_txn()->add_success()->mutable_request_range();
  range->set_key("a");
  range->set_revision(2);
  txn.mutable_txn()->add_success()->mutable_request_put()->set_key("t");
  log.push_back(txn);
  cairnpb::InternalRequest del;
  del.mutable_delete_range()->set_key("a");
  del.mutable_delete_range()->set_prev_kv(true);
  log.push_back(del);
  put("a", "4");  // a new incarnation: version 1
  for (int i = 0; i < 5; ++i) put("k" + std::to_string(i % 2), std::to_string(i));
  // One-key deletes join the run too; a delete of a range flushes it.
  auto del_one = [&log](const std::string& key) {
    cairnpb::InternalRequest r;
    r.mutable_delete_range()->set_key(key);
    r.mutable_delete_range()->set_prev_kv(true);
    log.push_back(r);
    return &log.back();
  };
  del_one("k0");     // the run's own k0
  put("k0", "new");  // a new incarnation inside the run
  del_one("zz");     // nothing to delete: no revision
  del_one("b");      // a key with a lease: its lease_keys record goes too
  put("b", "5");     // reads the run's deletion of b
  del_one("k0");     // twice in one run
  del_one("k0");     // already gone within the run
  del_one("k1")->mutable_delete_range()->set_range_end("k2");  // a range: flushes the run
  put("k1", "after");
  return log;
}

raft::Entry KvEntry(uint64_t index, const cairnpb::InternalRequest& r) {
  raft::Entry e;
  e.term = 1;
  e.index = index;
  e.data = r.SerializeAsString();
  return e;
}

// Everything in the store: every key's latest record and, for each revision, its events.
std::string Dump(mvcc::KvStore* kv) {
  mvcc::ReadView view = kv->View();
  std::string out = "revision " + std::to_string(view.revision) + "\n";
  etcdserverpb::RangeRequest all;
  all.set_key(std::string(1, '\0'));
  all.set_range_end(std::string(1, '\0'));
  auto got = kv->Range(view, all);
  CAIRN_CHECK(got.ok()) << got.status();
  for (const auto& k : got->kvs()) out += k.ShortDebugString() + "\n";
  std::vector<mvccpb::Event> events;
  int64_t next = 0;
  CAIRN_CHECK(kv->ReadEvents(view, 1, all.key(), all.range_end(), true, 1000, &events, &next).ok());
  for (const auto& e : events) out += e.ShortDebugString() + "\n";
  return out;
}

// The store after applying the first `n` entries of `log` each in a batch of its own
// (KvStore::Begin / Commit, the path of every other entry kind), in a fresh data dir.
std::string OneBatchPerEntryDump(const std::string& dir,
                                 const std::vector<cairnpb::InternalRequest>& log, size_t n) {
  std::filesystem::remove_all(dir);
  Member m(dir);
  for (size_t i = 0; i < n; ++i) {
    auto b = m.kv->Begin(i + 1);
    mvcc::ApplyResult r = ApplyKvRequest(m.kv.get(), *b, log[i]);
    m.kv->Commit(*b, &r);
  }
  m.kv->Publish();
  return Dump(m.kv.get());
}

std::vector<raft::Entry> KvEntries(std::vector<cairnpb::InternalRequest>& log) {
  std::vector<raft::Entry> entries;
  for (size_t i = 0; i < log.size(); ++i) {
    log[i].set_proposer(kSelf);
    log[i].set_id(i + 1);
    entries.push_back(KvEntry(i + 1, log[i]));
  }
  return entries;
}

// Grouped puts and one-key deletes give exactly the answers and the store that one batch per entry
// gives (the events went to the watch hub; the dump compares the history they come from).
TEST_F(ApplierTest, GroupedEntriesMatchOneBatchPerEntry) {
  std::vector<cairnpb::InternalRequest> log = MixedKvLog();
  std::vector<raft::Entry> entries = KvEntries(log);
  std::string grouped_dump;
  {
    Member m(dir_ + "/grouped");
    std::vector<mvcc::ApplyResult> got;
    for (size_t i = 0; i < log.size(); ++i) {
      Waiter w;
      w.done = [&got](mvcc::ApplyResult r) { got.push_back(std::move(r)); };
      ASSERT_TRUE(m.waits->Register(i + 1, base::Clock::Real()->NowMs() + 60000, w));
    }
    m.applier->ApplyEntries(entries);
    ASSERT_EQ(got.size(), log.size());
    EXPECT_EQ(m.kv->applied_index(), log.size());
    grouped_dump = Dump(m.kv.get());

    Member single(dir_ + "/single");
    for (size_t i = 0; i < log.size(); ++i) {
      SCOPED_TRACE(i);
      auto b = single.kv->Begin(i + 1);
      mvcc::ApplyResult want = ApplyKvRequest(single.kv.get(), *b, log[i]);
      single.kv->Commit(*b, &want);
      EXPECT_EQ(got[i].status, want.status);
      EXPECT_EQ(got[i].revision, want.revision);
      EXPECT_EQ(got[i].put.ShortDebugString(), want.put.ShortDebugString());
      EXPECT_EQ(got[i].txn.ShortDebugString(), want.txn.ShortDebugString());
      EXPECT_EQ(got[i].delete_range.ShortDebugString(), want.delete_range.ShortDebugString());
    }
    single.kv->Publish();
    EXPECT_EQ(grouped_dump, Dump(single.kv.get()));
    EXPECT_NE(grouped_dump.find("key: \"b\" create_revision"), std::string::npos);
  }
  // Reopened from disk: the same store, revision and applied index included.
  Member reopened(dir_ + "/grouped");
  EXPECT_EQ(reopened.kv->applied_index(), log.size());
  EXPECT_EQ(Dump(reopened.kv.get()), grouped_dump);
}

// The process dies right before its k-th RocksDB write while applying the mixed log in one
// applied batch. After restart the store holds exactly a prefix of the log that ends where a
// write ended (a run of puts wholly or not at all), and replay completes it to the same store.
TEST_F(ApplierTest, CrashAtAnyWriteLeavesAPrefixOfWholeRuns) {
  std::vector<cairnpb::InternalRequest> log = MixedKvLog();
  const std::string full = OneBatchPerEntryDump(dir_ + "/ref", log, log.size());
  std::set<uint64_t> seen;
  for (int crash_at = 1;; ++crash_at) {
    SCOPED_TRACE(crash_at);
    const std::string dir = dir_ + "/crash";
    std::filesystem::remove_all(dir);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Member m(dir);
      int writes = 0;
      m.backend->SetBeforeWriteHookForTesting([&writes, crash_at] {
        if (++writes == crash_at) _exit(42);
      });
      std::vector<raft::Entry> entries = KvEntries(log);
      m.applier->ApplyEntries(entries);
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    ASSERT_TRUE(code == 42 || code == 0) << code;
    uint64_t applied = 0;
    {
      Member m(dir);
      applied = m.kv->applied_index();
      const std::string after_crash = Dump(m.kv.get());
      std::vector<raft::Entry> replay = KvEntries(log);
      m.applier->ApplyEntries(replay);
      EXPECT_EQ(Dump(m.kv.get()), full);
      EXPECT_EQ(after_crash, OneBatchPerEntryDump(dir_ + "/ref", log, applied));
    }
    seen.insert(applied);
    if (code == 0) break;
    ASSERT_LT(crash_at, 100);
  }
  // Crashes fell between the runs: before everything, after the first run of five puts, after
  // the grant, after the run of two, after the txn, after the run of puts and one-key deletes
  // (10-23), after the range delete; then the last run.
  EXPECT_EQ(seen, (std::set<uint64_t>{0, 5, 6, 8, 9, 23, 24, 25}));
}

// A run of large puts is written in parts of about kMaxGroupBytes (4 MiB), not held in memory
// whole: twenty-four puts of 1 MiB (a live value is held once, in latest; a superseded one once,
// in history) take about six writes of four puts, not one, and every put lands.
TEST_F(ApplierTest, ARunOfLargePutsIsWrittenInBoundedParts) {
  std::vector<cairnpb::InternalRequest> log;
  for (int i = 0; i < 24; ++i) {
    cairnpb::InternalRequest r;
    r.mutable_put()->set_key("big" + std::to_string(i));
    r.mutable_put()->set_value(std::string(1 << 20, static_cast<char>('a' + i)));
    log.push_back(r);
  }
  std::vector<raft::Entry> entries = KvEntries(log);
  Member m(dir_);
  int writes = 0;
  m.backend->SetBeforeWriteHookForTesting([&writes] { ++writes; });
  m.applier->ApplyEntries(entries);
  EXPECT_GE(writes, 5);
  EXPECT_LE(writes, 7);
  EXPECT_EQ(m.kv->applied_index(), 24u);
  EXPECT_EQ(m.kv->View().revision, 25);
  m.backend->SetBeforeWriteHookForTesting(nullptr);
  EXPECT_EQ(Dump(m.kv.get()), OneBatchPerEntryDump(dir_ + "-ref", log, log.size()));
  std::filesystem::remove_all(dir_ + "-ref");
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
