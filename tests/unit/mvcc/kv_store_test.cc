// KvStore unit tests: revisions, history, range options, txn semantics, compaction, restart.
// A model (map of revision -> key space) checks historical reads over random operation sequences.
#include "server/mvcc/kv_store.h"
#include "cairnpb/internal.pb.h"
#include "tests/unit/mvcc/apply_util.h"
#include "tests/unit/mvcc/store_fixture.h"

#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <random>

#include "gtest/gtest.h"
#include "server/base/errors.h"

namespace cairn::mvcc {
namespace {

using base::ErrorKind;
using base::IsError;
using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;
using etcdserverpb::TxnRequest;

class KvStoreTest : public testing::StoreFixture {
 protected:
  ApplyResult Apply(const cairnpb::InternalRequest& r) {
    ApplyResult res = mvcc::testing::ApplyRequest(kv_.get(), kv_->applied_index() + 1, r);
    backend_->Sync();
    kv_->Publish();
    return res;
  }
  ApplyResult Put(const std::string& k, const std::string& v, bool prev_kv = false) {
    cairnpb::InternalRequest r;
    r.mutable_put()->set_key(k);
    r.mutable_put()->set_value(v);
    r.mutable_put()->set_prev_kv(prev_kv);
    return Apply(r);
  }
  ApplyResult Delete(const std::string& k, const std::string& end = "") {
    cairnpb::InternalRequest r;
    r.mutable_delete_range()->set_key(k);
    r.mutable_delete_range()->set_range_end(end);
    r.mutable_delete_range()->set_prev_kv(true);
    return Apply(r);
  }
  ApplyResult Compact(int64_t rev) {
    cairnpb::InternalRequest r;
    r.mutable_compaction()->set_revision(rev);
    return Apply(r);
  }
  ApplyResult Txn(const TxnRequest& t) {
    cairnpb::InternalRequest r;
    *r.mutable_txn() = t;
    return Apply(r);
  }
  absl::StatusOr<RangeResponse> Range(const RangeRequest& r) { return kv_->Range(kv_->View(), r); }
  absl::StatusOr<RangeResponse> Get(const std::string& k, const std::string& end = "",
                                    int64_t rev = 0) {
    RangeRequest r;
    r.set_key(k);
    r.set_range_end(end);
    r.set_revision(rev);
    return Range(r);
  }
  void WaitCompacted(int64_t rev) {
    std::promise<bool> p;
    kv_->OnCompacted(rev, [&](bool ok) { p.set_value(ok); });
    ASSERT_TRUE(p.get_future().get());
  }
  int64_t CountFamily(storage::Cf cf) {
    std::unique_ptr<rocksdb::Iterator> it(
        backend_->db()->NewIterator(rocksdb::ReadOptions(), backend_->cf(cf)));
    int64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }
};

TEST_F(KvStoreTest, PutAssignsRevisionsVersionsAndCreateRevisions) {
  // A new store is at revision 1, as etcd's: the first write is revision 2.
  EXPECT_EQ(kv_->View().revision, 1);
  EXPECT_EQ(Put("a", "1").put.header().revision(), 2);
  ApplyResult second = Put("a", "2", /*prev_kv=*/true);
  EXPECT_EQ(second.put.header().revision(), 3);
  EXPECT_EQ(second.put.prev_kv().value(), "1");
  EXPECT_EQ(Put("b", "x").put.header().revision(), 4);
  auto r = Get("a");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs_size(), 1);
  EXPECT_EQ(r->kvs(0).create_revision(), 2);
  EXPECT_EQ(r->kvs(0).mod_revision(), 3);
  EXPECT_EQ(r->kvs(0).version(), 2);
  EXPECT_EQ(r->kvs(0).value(), "2");
  EXPECT_EQ(r->header().revision(), 4);
}

TEST_F(KvStoreTest, DeleteIsHistoryAndRecreateResetsVersion) {
  Put("a", "1");
  ApplyResult d = Delete("a");
  EXPECT_EQ(d.delete_range.deleted(), 1);
  EXPECT_EQ(d.delete_range.prev_kvs(0).value(), "1");
  EXPECT_EQ(d.delete_range.header().revision(), 3);
  // Deleting nothing does not create a revision.
  ApplyResult none = Delete("zzz");
  EXPECT_EQ(none.delete_range.deleted(), 0);
  EXPECT_EQ(none.delete_range.header().revision(), 3);
  Put("a", "again");
  auto now = Get("a");
  ASSERT_EQ(now->kvs_size(), 1);
  EXPECT_EQ(now->kvs(0).version(), 1);
  EXPECT_EQ(now->kvs(0).create_revision(), 4);
  EXPECT_EQ(Get("a", "", 2)->kvs(0).value(), "1");
  EXPECT_EQ(Get("a", "", 3)->kvs_size(), 0);
  EXPECT_EQ(Get("a", "", 1)->kvs_size(), 0);
}

TEST_F(KvStoreTest, RangeOptions) {
  for (std::string k : {"a", "b", "c", "d"}) Put(k, "v" + k);
  Put("b", "vb2");  // b: version 2, mod 6 (a 2, b 3, c 4, d 5)
  RangeRequest r;
  r.set_key("a");
  r.set_range_end(std::string(1, '\0'));
  r.set_limit(2);
  auto res = Range(r);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->kvs_size(), 2);
  EXPECT_TRUE(res->more());
  EXPECT_EQ(res->count(), 4);

  r.set_limit(0);
  r.set_sort_target(RangeRequest::MOD);
  r.set_sort_order(RangeRequest::DESCEND);
  res = Range(r);
  EXPECT_EQ(res->kvs(0).key(), "b");

  r.set_sort_order(RangeRequest::NONE);
  r.set_sort_target(RangeRequest::VERSION);  // defaults to ASCEND; ties keep key order
  res = Range(r);
  ASSERT_EQ(res->kvs_size(), 4);
  EXPECT_EQ(res->kvs(0).key(), "a");
  EXPECT_EQ(res->kvs(3).key(), "b");

  RangeRequest filt;
  filt.set_key("a");
  filt.set_range_end("z");
  filt.set_min_mod_revision(4);
  filt.set_keys_only(true);
  res = Range(filt);
  ASSERT_EQ(res->kvs_size(), 3);  // b (6), c (4), d (5)
  EXPECT_EQ(res->count(), 4);     // count ignores filters, as etcd
  EXPECT_TRUE(res->kvs(0).value().empty());

  RangeRequest count;
  count.set_key("b");
  count.set_range_end("d");
  count.set_count_only(true);
  res = Range(count);
  EXPECT_EQ(res->kvs_size(), 0);
  EXPECT_EQ(res->count(), 2);

  RangeRequest backwards;
  backwards.set_key("d");
  backwards.set_range_end("a");
  EXPECT_EQ(Range(backwards)->count(), 0);
}

TEST_F(KvStoreTest, FutureAndCompactedRevisionsAreErrors) {
  Put("a", "1");  // revision 2
  Put("a", "2");  // 3
  Put("a", "3");  // 4
  EXPECT_TRUE(IsError(Get("a", "", 5).status(), ErrorKind::kFutureRev));
  EXPECT_TRUE(Compact(3).status.ok());
  EXPECT_TRUE(IsError(Get("a", "", 2).status(), ErrorKind::kCompacted));
  EXPECT_EQ(Get("a", "", 3)->kvs(0).value(), "2");
  EXPECT_TRUE(IsError(Compact(3).status, ErrorKind::kCompacted));
  EXPECT_TRUE(IsError(Compact(9).status, ErrorKind::kFutureRev));
}

// Random puts/deletes over a small key space; every revision's full range must equal the model,
// before and after compaction, and after a restart.
TEST_F(KvStoreTest, HistoricalReadsMatchModelThroughCompactionAndRestart) {
  std::mt19937 rng(42);
  std::map<int64_t, std::map<std::string, mvccpb::KeyValue>> model;  // revision -> state
  std::map<std::string, mvccpb::KeyValue> state;
  int64_t rev = 1;  // a new store's revision
  model[1] = state;
  for (int i = 0; i < 400; ++i) {
    std::string k = "k" + std::to_string(rng() % 12);
    if (rng() % 4 == 0) {
      std::string end = "k" + std::to_string(rng() % 12);
      ApplyResult d = Delete(k, end > k ? end : "");
      if (d.delete_range.deleted() == 0) continue;
      ++rev;
      for (auto it = state.begin(); it != state.end();) {
        bool in = end > k ? (it->first >= k && it->first < end) : it->first == k;
        it = in ? state.erase(it) : std::next(it);
      }
    } else {
      std::string v = "v" + std::to_string(i);
      ASSERT_EQ(Put(k, v).put.header().revision(), ++rev);
      mvccpb::KeyValue kv;
      kv.set_key(k);
      kv.set_value(v);
      kv.set_mod_revision(rev);
      auto prev = state.find(k);
      kv.set_create_revision(prev == state.end() ? rev : prev->second.create_revision());
      kv.set_version(prev == state.end() ? 1 : prev->second.version() + 1);
      state[k] = kv;
    }
    model[rev] = state;
  }
  auto check_from = [&](int64_t first) {
    for (int64_t r = first; r <= rev; ++r) {
      auto res = Get("k", "l", r);
      ASSERT_TRUE(res.ok()) << r << ": " << res.status();
      const auto& want = model[r];
      ASSERT_EQ(res->kvs_size(), static_cast<int>(want.size())) << "revision " << r;
      int i = 0;
      for (const auto& [k, kv] : want) {
        EXPECT_EQ(res->kvs(i).SerializeAsString(), kv.SerializeAsString()) << "rev " << r;
        ++i;
      }
    }
  };
  check_from(2);
  int64_t history_before = CountFamily(storage::Cf::kRev);
  int64_t c = rev / 2;
  ASSERT_TRUE(Compact(c).status.ok());
  WaitCompacted(c);
  EXPECT_LT(CountFamily(storage::Cf::kRev), history_before);
  check_from(c);
  EXPECT_TRUE(IsError(Get("k", "l", c - 1).status(), ErrorKind::kCompacted));
  Reopen();
  EXPECT_EQ(kv_->View().revision, rev);
  EXPECT_EQ(kv_->View().compact_revision, c);
  check_from(c);
}

TEST_F(KvStoreTest, TxnChoosesBranchAndReadsItsOwnWrites) {
  Put("a", "1");
  TxnRequest t;
  Compare* cmp = t.add_compare();
  cmp->set_key("b");
  cmp->set_target(Compare::VERSION);
  cmp->set_result(Compare::EQUAL);
  cmp->set_version(0);  // b does not exist yet
  auto* put = t.add_success()->mutable_request_put();
  put->set_key("b");
  put->set_value("2");
  auto* get = t.add_success()->mutable_request_range();
  get->set_key("b");
  t.add_failure()->mutable_request_range()->set_key("a");
  ApplyResult res = Txn(t);
  ASSERT_TRUE(res.status.ok()) << res.status;
  EXPECT_TRUE(res.txn.succeeded());
  EXPECT_EQ(res.txn.header().revision(), 3);
  ASSERT_EQ(res.txn.responses_size(), 2);
  EXPECT_EQ(res.txn.responses(0).response_put().header().revision(), 3);
  EXPECT_EQ(res.txn.responses(1).response_range().kvs(0).value(), "2");
  EXPECT_EQ(res.txn.responses(1).response_range().header().revision(), 3);

  // Now b exists, the compare fails: the failure branch (a read) runs, nothing is written.
  res = Txn(t);
  EXPECT_FALSE(res.txn.succeeded());
  EXPECT_EQ(res.txn.header().revision(), 3);
  EXPECT_EQ(res.txn.responses(0).response_range().kvs(0).value(), "1");
  EXPECT_EQ(kv_->View().revision, 3);
}

TEST_F(KvStoreTest, CompareOnMissingKeyAndOverRange) {
  Put("p/1", "x");
  Put("p/2", "x");
  TxnRequest t;
  Compare* c = t.add_compare();
  c->set_key("p/");
  c->set_range_end("p0");
  c->set_target(Compare::VALUE);
  c->set_value("x");
  EXPECT_TRUE(Txn(t).txn.succeeded());
  Compare* missing = t.add_compare();
  missing->set_key("nope");
  missing->set_target(Compare::VERSION);
  missing->set_version(0);
  EXPECT_TRUE(Txn(t).txn.succeeded());  // a missing key has version 0
  missing->set_target(Compare::VALUE);
  missing->set_value("");
  EXPECT_FALSE(Txn(t).txn.succeeded());  // a value compare on a missing key always fails
}

TEST_F(KvStoreTest, FailedChecksLeaveNoPartialWrite) {
  Put("a", "1");
  TxnRequest t;
  auto* p1 = t.add_success()->mutable_request_put();
  p1->set_key("x");
  p1->set_value("1");
  auto* p2 = t.add_success()->mutable_request_put();
  p2->set_key("missing");
  p2->set_ignore_value(true);
  ApplyResult res = Txn(t);
  EXPECT_TRUE(IsError(res.status, ErrorKind::kKeyNotFound)) << res.status;
  EXPECT_EQ(Get("x")->kvs_size(), 0);
  EXPECT_EQ(kv_->View().revision, 2);

  cairnpb::InternalRequest leased;
  leased.mutable_put()->set_key("y");
  leased.mutable_put()->set_lease(7);
  EXPECT_TRUE(IsError(Apply(leased).status, ErrorKind::kLeaseNotFound));
  EXPECT_EQ(kv_->View().revision, 2);
  // The applied index still advances: the entry was applied (as a no-op).
  EXPECT_EQ(kv_->applied_index(), 3u);
}

// Even a txn that gets past validation and fails while applying (here: a put with ignore_lease
// after a delete of the same key, which only the API layer's duplicate check refuses) answers an
// error and writes nothing; it never aborts the server.
TEST_F(KvStoreTest, TxnFailingWhileApplyingWritesNothing) {
  Put("k1", "v");
  int64_t before = kv_->View().revision;
  TxnRequest t;
  auto* d = t.add_success()->mutable_request_delete_range();
  d->set_key("b");
  d->set_range_end(std::string(1, '\0'));
  auto* p = t.add_success()->mutable_request_put();
  p->set_key("k1");
  p->set_ignore_lease(true);
  ApplyResult res = Txn(t);
  EXPECT_TRUE(IsError(res.status, ErrorKind::kKeyNotFound)) << res.status;
  EXPECT_EQ(kv_->View().revision, before);
  ASSERT_EQ(Get("k1")->kvs_size(), 1);
  EXPECT_TRUE(res.events.empty());
}

TEST_F(KvStoreTest, UnpublishedWritesAreInvisibleToReaders) {
  Put("a", "1");
  ReadView before = kv_->View();
  cairnpb::InternalRequest r;
  r.mutable_put()->set_key("a");
  r.mutable_put()->set_value("2");
  mvcc::testing::ApplyRequest(kv_.get(), kv_->applied_index() + 1, r);
  EXPECT_EQ(kv_->View().revision, 2);
  EXPECT_EQ(kv_->Range(kv_->View(),
                       [] {
                         RangeRequest q;
                         q.set_key("a");
                         return q;
                       }())
                ->kvs(0)
                .value(),
            "1");
  backend_->Sync();
  kv_->Publish();
  EXPECT_EQ(kv_->View().revision, 3);
  EXPECT_EQ(before.revision, 2);
}

// A DeleteRange of a large prefix (etcdctl check perf deletes ~400k keys in one request; 50k
// here): one revision, every key deleted once, in key order, with its prev_kv; the neighbours
// untouched; the history before it readable; one atomic batch across a restart.
TEST_F(KvStoreTest, LargePrefixDeleteIsOneRevisionWithEveryPrevKv) {
  constexpr int kKeys = 50000;
  constexpr int kPerTxn = 5000;
  auto key = [](int i) {
    char b[32];
    snprintf(b, sizeof b, "p/%06d", i);
    return std::string(b);
  };
  Put("other", "x");
  Put("p0", "y");  // the range end itself stays
  for (int i = 0; i < kKeys; i += kPerTxn) {
    TxnRequest t;
    for (int j = i; j < i + kPerTxn; ++j) {
      auto* p = t.add_success()->mutable_request_put();
      p->set_key(key(j));
      p->set_value("v" + std::to_string(j));
    }
    ASSERT_TRUE(Txn(t).status.ok());
  }
  const int64_t before = kv_->View().revision;
  ApplyResult res = Delete("p/", "p0");  // with prev_kv
  ASSERT_TRUE(res.status.ok()) << res.status;
  EXPECT_EQ(res.delete_range.deleted(), kKeys);
  EXPECT_EQ(res.revision, before + 1);
  EXPECT_EQ(res.delete_range.header().revision(), before + 1);
  ASSERT_EQ(res.delete_range.prev_kvs_size(), kKeys);
  ASSERT_EQ(res.events.size(), static_cast<size_t>(kKeys));
  for (int i = 0; i < kKeys; ++i) {
    const mvccpb::KeyValue& prev = res.delete_range.prev_kvs(i);
    ASSERT_EQ(prev.key(), key(i));
    ASSERT_EQ(prev.value(), "v" + std::to_string(i));
    ASSERT_EQ(prev.mod_revision(), before - (kKeys - 1 - i) / kPerTxn);
    const mvccpb::Event& ev = res.events[i];
    ASSERT_EQ(ev.type(), mvccpb::Event::DELETE);
    ASSERT_EQ(ev.kv().key(), key(i));
    ASSERT_EQ(ev.kv().mod_revision(), before + 1);
    ASSERT_EQ(ev.prev_kv().SerializeAsString(), prev.SerializeAsString());
  }
  EXPECT_EQ(Get("p/", "p0")->count(), 0);
  EXPECT_EQ(Get("other")->kvs_size(), 1);
  EXPECT_EQ(Get("p0")->kvs_size(), 1);
  EXPECT_EQ(Get("p/", "p0", before)->count(), kKeys);
  std::vector<mvccpb::Event> history;
  int64_t next = 0;
  ASSERT_TRUE(
      kv_->ReadEvents(kv_->View(), before + 1, "p/", "p0", true, kKeys + 1, &history, &next).ok());
  ASSERT_EQ(history.size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(next, before + 2);
  EXPECT_EQ(history.back().prev_kv().value(), "v" + std::to_string(kKeys - 1));

  Reopen();
  EXPECT_EQ(kv_->View().revision, before + 1);
  EXPECT_EQ(Get("p/", "p0")->count(), 0);
  Put(key(7), "again");  // a new life: version 1, created now
  auto again = Get(key(7));
  ASSERT_EQ(again->kvs_size(), 1);
  EXPECT_EQ(again->kvs(0).version(), 1);
  EXPECT_EQ(again->kvs(0).create_revision(), before + 2);
}

// A txn's history records are not in its batch's read index (docs/keyspace.md): reads of an
// earlier revision inside the txn, after its own writes, still see the past, and reads of the
// current revision see the writes.
TEST_F(KvStoreTest, TxnReadsThePastAndItsOwnWritesAfterChanging) {
  Put("h", "1");
  Put("i", "1");
  const int64_t before = kv_->View().revision;
  TxnRequest t;
  auto* p = t.add_success()->mutable_request_put();
  p->set_key("h");
  p->set_value("2");
  t.add_success()->mutable_request_delete_range()->set_key("i");
  for (int64_t rev : {before, int64_t{0}}) {
    for (const char* k : {"h", "i"}) {
      auto* r = t.add_success()->mutable_request_range();
      r->set_key(k);
      r->set_revision(rev);
    }
  }
  ApplyResult res = Txn(t);
  ASSERT_TRUE(res.status.ok()) << res.status;
  ASSERT_EQ(res.txn.responses_size(), 6);
  ASSERT_EQ(res.txn.responses(2).response_range().kvs_size(), 1);
  EXPECT_EQ(res.txn.responses(2).response_range().kvs(0).value(), "1");
  ASSERT_EQ(res.txn.responses(3).response_range().kvs_size(), 1);
  EXPECT_EQ(res.txn.responses(3).response_range().kvs(0).value(), "1");
  ASSERT_EQ(res.txn.responses(4).response_range().kvs_size(), 1);
  EXPECT_EQ(res.txn.responses(4).response_range().kvs(0).value(), "2");
  EXPECT_EQ(res.txn.responses(5).response_range().kvs_size(), 0);
}

// Physical compaction works in bounded batches and holds nothing the applier needs between them:
// a put applies and publishes while a compaction is paused after its first batch.
TEST_F(KvStoreTest, PutsApplyBetweenPhysicalCompactionBatches) {
  std::mutex mu;
  std::vector<std::string> order;
  std::promise<void> first_batch;
  std::promise<void> put_done;
  std::shared_future<void> put_done_f = put_done.get_future().share();
  kv_->SetCompactionBatchHook([&](int batches) {
    {
      std::lock_guard<std::mutex> l(mu);
      order.push_back("batch" + std::to_string(batches));
    }
    if (batches != 1) return;
    first_batch.set_value();
    // Bounded: a put that cannot proceed shows up as a wrong order below, not as a hang.
    put_done_f.wait_for(std::chrono::seconds(60));
  });
  for (int round = 0; round < 3; ++round) {  // 3,000 history entries: at least 3 batches
    TxnRequest t;
    for (int j = 0; j < 1000; ++j) {
      auto* p = t.add_success()->mutable_request_put();
      p->set_key("c/" + std::to_string(j));
      p->set_value(std::to_string(round));
    }
    ASSERT_TRUE(Txn(t).status.ok());
  }
  const int64_t rev = kv_->View().revision;
  ASSERT_TRUE(Compact(rev).status.ok());
  ASSERT_EQ(first_batch.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
  ApplyResult put = Put("w", "during");
  ASSERT_TRUE(put.status.ok());
  EXPECT_EQ(Get("w")->kvs(0).value(), "during");
  {
    std::lock_guard<std::mutex> l(mu);
    order.push_back("put");
  }
  put_done.set_value();
  WaitCompacted(rev);
  kv_->SetCompactionBatchHook(nullptr);  // the compactor is idle now
  std::lock_guard<std::mutex> l(mu);
  ASSERT_GE(order.size(), 4u);
  EXPECT_EQ(order[0], "batch1");
  EXPECT_EQ(order[1], "put");
  EXPECT_EQ(order[2], "batch2");
  EXPECT_EQ(Get("c/5", "", rev)->kvs(0).value(), "2");
}

}  // namespace
}  // namespace cairn::mvcc
