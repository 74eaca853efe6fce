// KV, Txn and Compact against a real server (etcd 3.4, and cairn), the same bodies for both.
#include <atomic>

#include <gtest/gtest.h>
#include <boost/fiber/all.hpp>

#include "tests/client/client_test_util.h"

namespace cairn::client_test {
namespace {

class KvTest : public ClusterTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartCluster());
    client_ = Connect();
    ASSERT_NE(client_, nullptr);
  }
  Kv kv() { return client_->kv(); }
  std::unique_ptr<Client> client_;
};

TEST_P(KvTest, PutGetDelete) {
  auto put = kv().Put("a", "1");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_GT(put->header.revision, 0);
  auto get = kv().Get("a");
  ASSERT_TRUE(get.ok()) << get.status();
  ASSERT_EQ(get->kvs.size(), 1u);
  EXPECT_EQ(get->kvs[0].key, "a");
  EXPECT_EQ(get->kvs[0].value, "1");
  EXPECT_EQ(get->kvs[0].version, 1);
  EXPECT_EQ(get->kvs[0].create_revision, put->header.revision);
  EXPECT_EQ(get->count, 1);

  PutOptions po;
  po.prev_kv = true;
  auto put2 = kv().Put("a", "2", po);
  ASSERT_TRUE(put2.ok());
  ASSERT_TRUE(put2->has_prev_kv);
  EXPECT_EQ(put2->prev_kv.value, "1");

  DeleteOptions dopt;
  dopt.prev_kv = true;
  auto del = kv().Delete("a", dopt);
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->deleted, 1);
  ASSERT_EQ(del->prev_kvs.size(), 1u);
  EXPECT_EQ(del->prev_kvs[0].value, "2");
  get = kv().Get("a");
  ASSERT_TRUE(get.ok());
  EXPECT_TRUE(get->kvs.empty());
}

TEST_P(KvTest, RangeOptions) {
  for (const char* k : {"p/a", "p/b", "p/c", "q"}) ASSERT_TRUE(kv().Put(k, k).ok());
  GetOptions o;
  o.prefix = true;
  auto r = kv().Get("p/", o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 3u);
  EXPECT_EQ(r->kvs[0].key, "p/a");

  o.limit = 2;
  r = kv().Get("p/", o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs.size(), 2u);
  EXPECT_TRUE(r->more);
  EXPECT_EQ(r->count, 3);

  GetOptions desc;
  desc.prefix = true;
  desc.sort_order = SortOrder::kDescend;
  desc.sort_target = SortTarget::kKey;
  r = kv().Get("p/", desc);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 3u);
  EXPECT_EQ(r->kvs[0].key, "p/c");

  GetOptions from;
  from.from_key = true;
  r = kv().Get("p/b", from);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 3u);  // p/b p/c q
  EXPECT_EQ(r->kvs[2].key, "q");

  GetOptions range;
  range.range_end = "p/c";
  r = kv().Get("p/a", range);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs.size(), 2u);

  GetOptions keys;
  keys.prefix = true;
  keys.keys_only = true;
  r = kv().Get("p/", keys);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 3u);
  EXPECT_EQ(r->kvs[0].value, "");

  GetOptions count;
  count.prefix = true;
  count.count_only = true;
  r = kv().Get("p/", count);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->kvs.empty());
  EXPECT_EQ(r->count, 3);

  GetOptions ser;
  ser.serializable = true;
  r = kv().Get("q", ser);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs.size(), 1u);
}

TEST_P(KvTest, RevisionsAndFilters) {
  auto p1 = kv().Put("r", "1");
  auto p2 = kv().Put("r", "2");
  auto p3 = kv().Put("s", "x");
  ASSERT_TRUE(p1.ok() && p2.ok() && p3.ok());
  GetOptions at;
  at.revision = p1->header.revision;
  auto r = kv().Get("r", at);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].value, "1");

  GetOptions f;
  f.from_key = true;
  f.min_mod_revision = p3->header.revision;
  r = kv().Get("r", f);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].key, "s");

  GetOptions future;
  future.revision = p3->header.revision + 100;
  r = kv().Get("r", future);
  EXPECT_EQ(ErrorKindOf(r.status()), ErrorKind::kFutureRevision) << r.status();

  auto c = kv().Compact(p2->header.revision);
  ASSERT_TRUE(c.ok()) << c.status();
  r = kv().Get("r", at);
  EXPECT_EQ(ErrorKindOf(r.status()), ErrorKind::kCompacted) << r.status();
  c = kv().Compact(p1->header.revision);
  EXPECT_EQ(ErrorKindOf(c.status()), ErrorKind::kCompacted) << c.status();
}

TEST_P(KvTest, PutIgnoreValueAndEmptyKey) {
  PutOptions ig;
  ig.ignore_value = true;
  auto p = kv().Put("missing", "", ig);
  EXPECT_EQ(ErrorKindOf(p.status()), ErrorKind::kKeyNotFound) << p.status();
  ASSERT_TRUE(kv().Put("x", "v").ok());
  p = kv().Put("x", "", ig);
  ASSERT_TRUE(p.ok()) << p.status();
  auto g = kv().Get("x");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->kvs[0].value, "v");
  EXPECT_EQ(g->kvs[0].version, 2);
  auto e = kv().Get("");
  EXPECT_EQ(ErrorKindOf(e.status()), ErrorKind::kEmptyKey);
}

TEST_P(KvTest, TxnCompareThenElseNested) {
  ASSERT_TRUE(kv().Put("t", "v1").ok());
  Txn txn;
  txn.If({Cmp::Value("t") == "v1", Cmp::Version("t") > 0, Cmp::CreateRevision("none") == 0})
      .Then({Op::Put("t", "v2"), Op::Get("t"),
             Op::Nested(Txn().If({Cmp::Value("t") == "v1"}).Then({Op::Put("u", "nested")}))})
      .Else({Op::Get("t")});
  auto r = kv().Commit(txn);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded);
  ASSERT_EQ(r->responses.size(), 3u);
  EXPECT_EQ(r->responses[0].type, Op::Type::kPut);
  EXPECT_EQ(r->responses[1].get.kvs.at(0).value, "v2");
  ASSERT_NE(r->responses[2].txn, nullptr);
  EXPECT_TRUE(r->responses[2].txn->succeeded);
  auto u = kv().Get("u");
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->kvs.size(), 1u);

  // Failing compare runs Else.
  r = kv().Commit(
      Txn().If({Cmp::Value("t") == "nope"}).Then({Op::Put("t", "x")}).Else({Op::Delete("u")}));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
  EXPECT_EQ(r->responses.at(0).del.deleted, 1);

  // Compare over a range: every key with prefix "t" has version > 0.
  Cmp ranged = Cmp::Version("t");
  ranged.WithPrefix();
  r = kv().Commit(Txn().If({ranged > 0}));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->succeeded);

  // Duplicate key in one txn is rejected.
  r = kv().Commit(Txn().Then({Op::Put("d", "1"), Op::Put("d", "2")}));
  EXPECT_EQ(ErrorKindOf(r.status()), ErrorKind::kDuplicateKey) << r.status();
}

TEST_P(KvTest, NamespacePrefix) {
  ClientOptions o = OptionsFor(*cluster_);
  o.key_prefix = "ns1/";
  auto ns = Connect(o);
  ASSERT_NE(ns, nullptr);
  ASSERT_TRUE(ns->kv().Put("k", "v").ok());
  ASSERT_TRUE(ns->kv().Put("k2", "v").ok());
  ASSERT_TRUE(kv().Put("outside", "o").ok());
  auto raw = kv().Get("ns1/k");
  ASSERT_TRUE(raw.ok());
  ASSERT_EQ(raw->kvs.size(), 1u);
  GetOptions all;
  all.from_key = true;
  auto in = ns->kv().Get("", all);  // every key of the namespace only
  ASSERT_TRUE(in.ok()) << in.status();
  ASSERT_EQ(in->kvs.size(), 2u);
  EXPECT_EQ(in->kvs[0].key, "k");
  auto t = ns->kv().Commit(Txn().If({Cmp::Value("k") == "v"}).Then({Op::Get("k")}));
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->succeeded);
  EXPECT_EQ(t->responses.at(0).get.kvs.at(0).key, "k");
}

TEST_P(KvTest, AsyncCallbacksAndCancel) {
  std::vector<Future<PutResponse>> puts;
  for (int i = 0; i < 20; ++i) puts.push_back(kv().PutAsync("async/" + std::to_string(i), "v"));
  for (auto& f : puts) ASSERT_TRUE(f.Get().ok());
  std::atomic<int> count{-1};
  GetOptions o;
  o.prefix = true;
  o.count_only = true;
  auto f = kv().GetAsync("async/", o);
  cairn::internal::Notification done;
  f.Then([&](absl::StatusOr<GetResponse> r) {
    count = r.ok() ? static_cast<int>(r->count) : -2;
    done.Set();
  });
  ASSERT_TRUE(done.WaitUntil(In(std::chrono::milliseconds(15000))));
  EXPECT_EQ(count.load(), 20);

  // A canceled token fails the call with CANCELLED (it may also have completed first).
  CancelToken token = CancelToken::Make();
  token.Cancel();
  CallOptions call;
  call.cancel = token;
  auto g = kv().Get("async/1", {}, call);
  EXPECT_EQ(ErrorKindOf(g.status()), ErrorKind::kCanceled);
}

TEST_P(KvTest, BlockingCallsOnFibers) {
  // Many fibers on one thread issue blocking calls concurrently; each suspends only itself.
  constexpr int kFibers = 8;
  std::atomic<int> ok{0};
  std::vector<boost::fibers::fiber> fibers;
  for (int i = 0; i < kFibers; ++i) {
    fibers.emplace_back([&, i] {
      std::string key = "fiber/" + std::to_string(i);
      if (kv().Put(key, "v").ok() && kv().Get(key).ok()) ++ok;
    });
  }
  for (auto& f : fibers) f.join();
  EXPECT_EQ(ok.load(), kFibers);
}

TEST_P(KvTest, StatusAndMemberList) {
  auto st = client_->maintenance().Status();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_FALSE(st->version.empty());
  EXPECT_NE(st->leader, 0u);
  auto st2 = client_->maintenance().Status(cluster_->ClientEndpoint(0));
  ASSERT_TRUE(st2.ok()) << st2.status();
  auto members = client_->cluster().MemberList();
  ASSERT_TRUE(members.ok()) << members.status();
  ASSERT_EQ(members->members.size(), 1u);
  EXPECT_FALSE(members->members[0].client_urls.empty());
  ASSERT_TRUE(client_->Sync().ok());
  EXPECT_EQ(client_->endpoints().size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Servers, KvTest, ::testing::ValuesIn(CairnServedKinds()), KindName);

}  // namespace
}  // namespace cairn::client_test
