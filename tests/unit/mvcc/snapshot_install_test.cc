// A follower installs a leader's state-machine snapshot under a running KvStore and WatchHub
// (docs/snapshot_format.md "After the install"): the store serves the leader's data, history and
// leases at the leader's revision and keeps applying from there; physical compaction is stopped
// during the install and resumes afterwards; watchers behind the new revision catch up from
// history or are canceled with compact_revision when their position was compacted away.
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <thread>

#include "cairnpb/internal.pb.h"
#include "gtest/gtest.h"
#include "server/base/encoding.h"
#include "server/base/errors.h"
#include "server/mvcc/kv_store.h"
#include "server/mvcc/watch_hub.h"
#include "server/storage/encoding.h"
#include "server/storage/snapshot.h"
#include "tests/unit/mvcc/apply_util.h"

namespace cairn::mvcc {
namespace {

using cairnpb::InternalRequest;
using etcdserverpb::RangeRequest;
using storage::Cf;
using Event = std::tuple<int64_t, std::string, int>;  // (revision, key, type)

InternalRequest PutReq(const std::string& k, const std::string& v, int64_t lease = 0) {
  InternalRequest r;
  r.mutable_put()->set_key(k);
  r.mutable_put()->set_value(v);
  r.mutable_put()->set_lease(lease);
  return r;
}
InternalRequest DeleteReq(const std::string& k, const std::string& end = "") {
  InternalRequest r;
  r.mutable_delete_range()->set_key(k);
  r.mutable_delete_range()->set_range_end(end);
  return r;
}
InternalRequest GrantReq(int64_t id) {
  InternalRequest r;
  r.mutable_lease_grant()->set_id(id);
  r.mutable_lease_grant()->set_ttl(60);
  return r;
}
InternalRequest RevokeReq(int64_t id) {
  InternalRequest r;
  r.mutable_lease_revoke()->set_id(id);
  return r;
}
InternalRequest CompactReq(int64_t rev) {
  InternalRequest r;
  r.mutable_compaction()->set_revision(rev);
  return r;
}

// The replicated log both members apply: leases, puts (some with leases), deletes, a revoke.
std::vector<InternalRequest> Script(int n) {
  std::vector<InternalRequest> out = {GrantReq(100), GrantReq(200)};
  for (int i = 0; i < n; ++i) {
    std::string k = "k" + std::to_string(i % 5);
    if (i % 6 == 5) {
      out.push_back(DeleteReq("k" + std::to_string(i % 4)));
    } else if (i % 7 == 3) {
      out.push_back(PutReq(k, "v" + std::to_string(i), i % 2 || i > n / 2 ? 100 : 200));
    } else {
      out.push_back(PutReq(k, "v" + std::to_string(i)));
    }
    if (i == n / 2) out.push_back(RevokeReq(200));
  }
  return out;
}

// A sink that records what it receives.
class RecordingSink : public WatchSink {
 public:
  struct Item {
    int64_t watch_id;
    int64_t revision;
    std::vector<mvccpb::Event> events;
    enum Kind { kEvents, kCompacted, kProgress } kind;
  };
  bool Deliver(int64_t watch_id, int64_t revision, const EventView& events, bool) override {
    std::lock_guard<std::mutex> l(mu_);
    items_.push_back({watch_id, revision, events.Materialize(), Item::kEvents});
    return true;
  }
  void Compacted(int64_t watch_id, int64_t compact_revision) override {
    std::lock_guard<std::mutex> l(mu_);
    items_.push_back({watch_id, compact_revision, {}, Item::kCompacted});
  }
  void Progress(int64_t watch_id, int64_t revision) override {
    std::lock_guard<std::mutex> l(mu_);
    items_.push_back({watch_id, revision, {}, Item::kProgress});
  }
  std::vector<Item> items() {
    std::lock_guard<std::mutex> l(mu_);
    return items_;
  }
  std::vector<Event> EventsOf(int64_t watch_id) {
    std::vector<Event> out;
    for (const Item& it : items()) {
      if (it.kind != Item::kEvents || it.watch_id != watch_id) continue;
      for (const auto& ev : it.events) {
        out.emplace_back(ev.kv().mod_revision(), ev.kv().key(), ev.type());
      }
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<Item> items_;
};

// One member: backend, store and (optionally) a watch hub, applying as the server does.
struct Member {
  std::string dir;
  std::unique_ptr<storage::Backend> backend;
  std::unique_ptr<KvStore> kv;
  std::unique_ptr<WatchHub> hub;
  std::vector<Event> history;  // every event this member applied

  void Open(const std::string& d, uint64_t member_id, const std::string& name) {
    dir = d;
    auto b = storage::Backend::Open(dir);
    ASSERT_TRUE(b.ok()) << b.status();
    backend = std::move(*b);
    rocksdb::WriteBatch wb;
    std::string id;
    base::PutBE64(&id, member_id);
    ASSERT_TRUE(wb.Put(backend->cf(Cf::kMeta), "member_id", id).ok());
    ASSERT_TRUE(wb.Put(backend->cf(Cf::kMeta), "member_name", name).ok());
    ASSERT_TRUE(wb.Put(backend->cf(Cf::kMeta), "term", id).ok());
    backend->Write(&wb);
    backend->Sync();
    kv = std::make_unique<KvStore>(backend.get());
  }
  void Close() {
    hub.reset();
    kv.reset();
    backend.reset();
  }
  ApplyResult Apply(const InternalRequest& r) {
    ApplyResult res = mvcc::testing::ApplyRequest(kv.get(), kv->applied_index() + 1, r);
    backend->Sync();
    kv->Publish();
    if (res.revision > 0) {
      for (const auto& ev : res.events)
        history.emplace_back(res.revision, ev.kv().key(), ev.type());
      if (hub) hub->Notify(res.revision, res.events);
    }
    return res;
  }
  void ApplyAll(const std::vector<InternalRequest>& rs, size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      ApplyResult res = Apply(rs[i]);
      ASSERT_TRUE(res.status.ok()) << i << ": " << res.status;
    }
  }
  // Waits (bounded) until physical compaction has reached `rev`, then publishes, so that reads
  // (prev_kv in particular) no longer see the removed history on either member.
  void WaitCompacted(int64_t rev) {
    auto done = std::make_shared<std::promise<bool>>();
    std::future<bool> f = done->get_future();
    kv->OnCompacted(rev, [done](bool ok) { done->set_value(ok); });
    ASSERT_EQ(f.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    ASSERT_TRUE(f.get());
    kv->Publish();
  }
  // Every family; member-local meta keys only if `with_local`.
  std::map<std::pair<int, std::string>, std::string> Dump(bool with_local) {
    std::map<std::pair<int, std::string>, std::string> out;
    for (int i = 0; i < 6; ++i) {
      std::unique_ptr<rocksdb::Iterator> it(
          backend->db()->NewIterator(rocksdb::ReadOptions(), backend->cf(static_cast<Cf>(i))));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        std::string k = it->key().ToString();
        if (i == 0 && !with_local && storage::IsMemberLocalMetaKey(k)) continue;
        out[{i, k}] = it->value().ToString();
      }
    }
    return out;
  }
  std::string RangeAt(int64_t rev, const std::string& key = "a", const std::string& end = "z") {
    RangeRequest r;
    r.set_key(key);
    r.set_range_end(end);
    r.set_revision(rev);
    auto resp = kv->Range(kv->View(), r);
    if (!resp.ok()) return resp.status().ToString();
    return resp->SerializeAsString();
  }
};

class SnapshotInstallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-install-XXXXXX";
    dir_ = mkdtemp(tmpl);
    leader_.Open(dir_ + "/leader", 1, "leader");
    follower_.Open(dir_ + "/follower", 2, "follower");
  }
  void TearDown() override {
    follower_.Close();
    leader_.Close();
    std::filesystem::remove_all(dir_);
  }

  // Exports the leader's published view into a file.
  std::string ExportLeader() {
    std::string path = dir_ + "/snap";
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    ReadView view = leader_.kv->View();
    absl::Status s = storage::ExportSnapshot(
        leader_.backend.get(), view.snapshot.get(),
        [&](std::string_view c) {
          f.write(c.data(), static_cast<std::streamsize>(c.size()));
          return f.good();
        },
        /*chunk_bytes=*/4096);
    EXPECT_TRUE(s.ok()) << s;
    return path;
  }
  // The lead's call sequence on the applier thread.
  void InstallOnFollower(const std::string& path) {
    follower_.kv->BeginInstall();
    absl::Status s = storage::InstallSnapshotFile(follower_.backend.get(), path);
    follower_.kv->ReloadAfterInstall();
    ASSERT_TRUE(s.ok()) << s;
    if (follower_.hub) follower_.hub->ResetAfterInstall();
  }
  // Polls `cond` (bounded: 20 s) for conditions reached by the syncer thread.
  template <typename F>
  void Eventually(F cond) {
    for (int i = 0; i < 20000 && !cond(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(cond()) << "condition not reached";
  }
  void ExpectSameState() {
    ReadView lv = leader_.kv->View();
    ReadView fv = follower_.kv->View();
    EXPECT_EQ(fv.revision, lv.revision);
    EXPECT_EQ(fv.compact_revision, lv.compact_revision);
    EXPECT_EQ(follower_.kv->applied_index(), leader_.kv->applied_index());
    for (int64_t rev = std::max<int64_t>(lv.compact_revision, 1); rev <= lv.revision; ++rev) {
      EXPECT_EQ(follower_.RangeAt(rev), leader_.RangeAt(rev)) << "at revision " << rev;
    }
    std::vector<mvccpb::Event> le, fe;
    int64_t ln = 0, fn = 0;
    int64_t from = std::max<int64_t>(lv.compact_revision, 1);
    ASSERT_TRUE(leader_.kv->ReadEvents(lv, from, "a", "z", true, 1 << 20, &le, &ln).ok());
    ASSERT_TRUE(follower_.kv->ReadEvents(fv, from, "a", "z", true, 1 << 20, &fe, &fn).ok());
    ASSERT_EQ(fe.size(), le.size());
    for (size_t i = 0; i < le.size(); ++i) {
      EXPECT_EQ(fe[i].SerializeAsString(), le[i].SerializeAsString());
    }
    EXPECT_EQ(fn, ln);
    auto leases = [](KvStore* kv) {
      std::vector<std::tuple<int64_t, int64_t, int64_t>> out;
      for (const auto& l : kv->Leases()) out.emplace_back(l.id, l.ttl_seconds, l.remaining_ms);
      return out;
    };
    EXPECT_EQ(leases(follower_.kv.get()), leases(leader_.kv.get()));
    for (int64_t id : {100, 200}) {
      EXPECT_EQ(follower_.kv->LeaseKeys(fv, id), leader_.kv->LeaseKeys(lv, id));
    }
    EXPECT_EQ(follower_.Dump(false), leader_.Dump(false));
    EXPECT_EQ(follower_.backend->ReadMetaString("member_name"), "follower");
    EXPECT_EQ(follower_.backend->ReadMetaInt("member_id", 0), 2);
  }

  std::string dir_;
  Member leader_;
  Member follower_;
};

TEST_F(SnapshotInstallTest, FollowerServesLeaderStateAndKeepsApplying) {
  auto script = Script(80);
  leader_.ApplyAll(script, 0, 40);
  ASSERT_TRUE(leader_.Apply(CompactReq(20)).status.ok());
  leader_.WaitCompacted(20);
  leader_.ApplyAll(script, 40, script.size());
  // The follower has an older prefix of the log, plus a compaction waiter of its own.
  follower_.ApplyAll(script, 0, 10);
  int64_t old_revision = follower_.kv->View().revision;
  ReadView old_view = follower_.kv->View();
  std::string old_range = follower_.RangeAt(0);
  std::vector<int> done;  // 1: true, 0: false
  follower_.kv->OnCompacted(15, [&](bool ok) { done.push_back(ok ? 1 : 0); });
  follower_.kv->OnCompacted(1 << 30, [&](bool ok) { done.push_back(ok ? 1 : 0); });

  InstallOnFollower(ExportLeader());
  ExpectSameState();
  EXPECT_GT(follower_.kv->View().revision, old_revision);
  EXPECT_EQ(done, (std::vector<int>{1, 0}));  // 15 <= leader's finished 20; 2^30 never
  // Readers of the old view still see the old state.
  RangeRequest all;
  all.set_key("a");
  all.set_range_end("z");
  EXPECT_EQ(follower_.kv->Range(old_view, all)->SerializeAsString(), old_range);
  // Below the installed compact revision, history is gone.
  RangeRequest below;
  below.set_key("k0");
  below.set_revision(10);
  EXPECT_TRUE(base::IsError(follower_.kv->Range(follower_.kv->View(), below).status(),
                            base::ErrorKind::kCompacted));

  // Both keep applying the same log: a put under the installed lease 100 succeeds at the next
  // revision, and the stores stay identical.
  for (const InternalRequest& r :
       {PutReq("k9", "after", 100), DeleteReq("k0", "k3"), RevokeReq(100), CompactReq(60)}) {
    ApplyResult l = leader_.Apply(r);
    ApplyResult f = follower_.Apply(r);
    ASSERT_TRUE(f.status.ok()) << f.status;
    EXPECT_EQ(f.revision, l.revision);
  }
  leader_.WaitCompacted(60);
  follower_.WaitCompacted(60);
  ExpectSameState();
  // And after a restart.
  follower_.kv.reset();
  follower_.kv = std::make_unique<KvStore>(follower_.backend.get());
  ExpectSameState();
}

TEST_F(SnapshotInstallTest, UnfinishedCompactionInTheDumpResumesOnTheFollower) {
  auto script = Script(120);
  leader_.ApplyAll(script, 0, script.size());
  // Hold the leader's compactor (BeginInstall pauses it) so its dump carries compact_revision
  // with the history not yet removed: a dump cut while physical compaction was running.
  leader_.kv->BeginInstall();
  ASSERT_TRUE(leader_.Apply(CompactReq(100)).status.ok());
  std::string path = ExportLeader();
  EXPECT_EQ(leader_.backend->ReadMetaInt("finished_compact_revision", 0), 0);
  leader_.kv->ReloadAfterInstall();  // resume the leader's compactor

  InstallOnFollower(path);
  follower_.WaitCompacted(100);
  leader_.WaitCompacted(100);
  ExpectSameState();
  EXPECT_EQ(follower_.backend->ReadMetaInt("finished_compact_revision", 0), 100);
}

TEST_F(SnapshotInstallTest, InstallStopsARunningCompaction) {
  auto script = Script(60);
  leader_.ApplyAll(script, 0, script.size());
  // The follower has a long history of its own and compacts it (about 30 compaction batches).
  // Should that compaction go on during the install, it would delete the installed history of
  // the same keys and overwrite finished_compact_revision: the final comparison would fail.
  constexpr int kRevisions = 30000;
  for (int i = 0; i < kRevisions; ++i) {
    ApplyResult r =
        mvcc::testing::ApplyRequest(follower_.kv.get(), follower_.kv->applied_index() + 1,
                                    PutReq("k" + std::to_string(i % 50), std::to_string(i)));
    ASSERT_TRUE(r.status.ok());
  }
  follower_.backend->Sync();
  follower_.kv->Publish();
  ASSERT_TRUE(follower_.Apply(CompactReq(kRevisions)).status.ok());
  // Wait until the compaction has written its first batch (revision 2 is gone), then install.
  auto first_gone = [&] {
    std::string v;
    return follower_.backend->db()
        ->Get(rocksdb::ReadOptions(), follower_.backend->cf(Cf::kRev), storage::RevKey(2, 0), &v)
        .IsNotFound();
  };
  for (int i = 0; i < 20000 && !first_gone(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(first_gone());
  follower_.kv->BeginInstall();
  bool interrupted = follower_.backend->ReadMetaInt("finished_compact_revision", 0) < kRevisions;
  std::cout << "compaction " << (interrupted ? "interrupted" : "had finished") << " at install\n";
  absl::Status s = storage::InstallSnapshotFile(follower_.backend.get(), ExportLeader());
  follower_.kv->ReloadAfterInstall();
  ASSERT_TRUE(s.ok()) << s;
  ExpectSameState();
  // The store compacts again normally afterwards.
  ASSERT_TRUE(leader_.Apply(CompactReq(50)).status.ok());
  ASSERT_TRUE(follower_.Apply(CompactReq(50)).status.ok());
  leader_.WaitCompacted(50);
  follower_.WaitCompacted(50);
  ExpectSameState();
}

TEST_F(SnapshotInstallTest, WatcherBehindCatchesUpFromHistory) {
  auto script = Script(60);
  follower_.hub = std::make_unique<WatchHub>(follower_.kv.get(), /*progress_interval_ms=*/0);
  follower_.ApplyAll(script, 0, 15);
  int64_t f_rev = follower_.kv->View().revision;
  RecordingSink sink;
  follower_.hub->Add(&sink, 1, WatchSpec{"k", "l"}, [](int64_t) {});
  follower_.hub->Add(&sink, 2, WatchSpec{"k1", ""}, [](int64_t) {});
  ASSERT_EQ(follower_.hub->synced_count(), 2u);

  leader_.ApplyAll(script, 0, 50);
  // Compacted exactly up to the watchers' next revision: nothing they need is gone.
  ASSERT_TRUE(leader_.Apply(CompactReq(f_rev + 1)).status.ok());
  leader_.WaitCompacted(f_rev + 1);
  leader_.ApplyAll(script, 50, script.size());
  InstallOnFollower(ExportLeader());
  int64_t new_rev = follower_.kv->View().revision;
  EXPECT_EQ(follower_.hub->notified_revision(), new_rev);
  follower_.hub->RequestProgress(&sink);
  // Live writes continue at the new revision while the watchers catch up.
  for (const InternalRequest& r : {PutReq("k1", "live"), PutReq("k2", "live")}) {
    leader_.Apply(r);
    follower_.Apply(r);
  }
  std::vector<Event> want_all, want_k1;
  for (const Event& e : leader_.history) {
    if (std::get<0>(e) <= f_rev) continue;
    want_all.push_back(e);
    if (std::get<1>(e) == "k1") want_k1.push_back(e);
  }
  ASSERT_GT(want_all.size(), 40u);
  Eventually([&] { return sink.EventsOf(1).size() >= want_all.size(); });
  Eventually([&] { return sink.EventsOf(2).size() >= want_k1.size(); });
  EXPECT_EQ(sink.EventsOf(1), want_all);
  EXPECT_EQ(sink.EventsOf(2), want_k1);
  Eventually([&] { return follower_.hub->unsynced_count() == 0; });
  // The stream's progress answer comes after every event up to its revision.
  int64_t delivered = 0;
  bool progress = false;
  for (const auto& it : sink.items()) {
    if (it.kind == RecordingSink::Item::kEvents) {
      delivered = std::max(delivered, it.events.back().kv().mod_revision());
    } else if (it.kind == RecordingSink::Item::kProgress) {
      progress = true;
      EXPECT_GE(it.revision, new_rev);
      EXPECT_LE(it.revision, delivered);
    }
  }
  EXPECT_TRUE(progress);
}

TEST_F(SnapshotInstallTest, WatcherWhosePositionWasCompactedIsCanceled) {
  auto script = Script(60);
  follower_.hub = std::make_unique<WatchHub>(follower_.kv.get(), /*progress_interval_ms=*/0);
  follower_.ApplyAll(script, 0, 15);
  int64_t f_rev = follower_.kv->View().revision;
  RecordingSink sink;
  follower_.hub->Add(&sink, 1, WatchSpec{"k", "l"}, [](int64_t) {});

  leader_.ApplyAll(script, 0, script.size());
  int64_t compact = f_rev + 10;
  ASSERT_TRUE(leader_.Apply(CompactReq(compact)).status.ok());
  int64_t l_rev = leader_.kv->View().revision;
  // A watcher starting in the future (beyond the new revision) is not disturbed.
  follower_.hub->Add(&sink, 2, WatchSpec{"k", "l", /*start_revision=*/l_rev + 2}, [](int64_t) {});
  InstallOnFollower(ExportLeader());

  Eventually([&] {
    for (const auto& it : sink.items()) {
      if (it.kind == RecordingSink::Item::kCompacted) return true;
    }
    return false;
  });
  auto items = sink.items();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].kind, RecordingSink::Item::kCompacted);
  EXPECT_EQ(items[0].watch_id, 1);
  EXPECT_EQ(items[0].revision, compact);
  for (const InternalRequest& r : {PutReq("k1", "a"), PutReq("k2", "b"), PutReq("k3", "c")}) {
    follower_.Apply(r);
  }
  Eventually([&] { return sink.EventsOf(2).size() == 2; });
  EXPECT_EQ(sink.EventsOf(2), (std::vector<Event>{{l_rev + 2, "k2", mvccpb::Event::PUT},
                                                  {l_rev + 3, "k3", mvccpb::Event::PUT}}));
  EXPECT_TRUE(sink.EventsOf(1).empty());
  Eventually([&] { return follower_.hub->synced_count() == 1; });
  EXPECT_EQ(follower_.hub->unsynced_count(), 0u);
}

}  // namespace
}  // namespace cairn::mvcc
