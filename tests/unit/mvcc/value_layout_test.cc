// The value layout of docs/keyspace.md, "One copy of each value": a live key's value is held only
// in `latest`, its `rev` record is a marker rewritten in full when the key changes; readers of
// history (range at a revision, watch catch-up, HashKV) resolve markers; and a store written with
// the earlier layout (bare `latest` records, full `rev` records) still reads and writes correctly.
#include <filesystem>
#include <map>
#include <optional>
#include <random>

#include "cairnpb/internal.pb.h"
#include "gtest/gtest.h"
#include "server/base/encoding.h"
#include "server/etcdserver/maintenance.h"
#include "server/mvcc/kv_store.h"
#include "server/mvcc/kv_store_internal.h"
#include "server/storage/encoding.h"
#include "tests/unit/mvcc/apply_util.h"
#include "tests/unit/mvcc/store_fixture.h"

namespace cairn::mvcc {
namespace {

using etcdserverpb::RangeRequest;
using mvccpb::KeyValue;
using storage::Cf;

class ValueLayoutTest : public testing::StoreFixture {
 protected:
  // Applies one entry and keeps its events (the live watch stream).
  ApplyResult Apply(const cairnpb::InternalRequest& r) {
    ApplyResult res = testing::ApplyRequest(kv_.get(), kv_->applied_index() + 1, r);
    EXPECT_TRUE(res.status.ok()) << res.status;
    backend_->Sync();
    kv_->Publish();
    for (const auto& ev : res.events) events_.push_back(ev);
    return res;
  }
  void Put(const std::string& k, const std::string& v) {
    cairnpb::InternalRequest r;
    r.mutable_put()->set_key(k);
    r.mutable_put()->set_value(v);
    Apply(r);
  }
  void Delete(const std::string& k, const std::string& end = "") {
    cairnpb::InternalRequest r;
    r.mutable_delete_range()->set_key(k);
    r.mutable_delete_range()->set_range_end(end);
    Apply(r);
  }
  // One txn putting each of `kvs` (several changes of one revision: sub-revisions 0, 1, ...).
  void TxnPut(const std::vector<std::pair<std::string, std::string>>& kvs) {
    cairnpb::InternalRequest r;
    for (const auto& [k, v] : kvs) {
      auto* p = r.mutable_txn()->add_success()->mutable_request_put();
      p->set_key(k);
      p->set_value(v);
    }
    Apply(r);
  }
  // Consecutive plain puts and one-key deletes (a value of nullopt) applied as one group (one
  // RocksDB write).
  void Grouped(const std::vector<std::pair<std::string, std::optional<std::string>>>& kvs) {
    for (const auto& [k, v] : kvs) {
      ApplyResult res;
      if (v) {
        etcdserverpb::PutRequest p;
        p.set_key(k);
        p.set_value(*v);
        res = kv_->PutGrouped(kv_->applied_index() + 1, p);
      } else {
        etcdserverpb::DeleteRangeRequest d;
        d.set_key(k);
        res = kv_->DeleteGrouped(kv_->applied_index() + 1, d);
      }
      ASSERT_TRUE(res.status.ok()) << res.status;
      for (const auto& ev : res.events) events_.push_back(ev);
    }
    kv_->FlushGroup();
    backend_->Sync();
    kv_->Publish();
  }

  std::optional<KeyValue> Get(const std::string& k, int64_t rev = 0) {
    RangeRequest r;
    r.set_key(k);
    r.set_revision(rev);
    auto resp = kv_->Range(kv_->View(), r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    if (!resp.ok() || resp->kvs_size() == 0) return std::nullopt;
    return resp->kvs(0);
  }

  // Every event of the whole key space from revision 2, with prev_kv, as a catch-up reads them.
  std::vector<mvccpb::Event> CatchUp() {
    std::vector<mvccpb::Event> out;
    int64_t next = 0;
    EXPECT_TRUE(kv_->ReadEvents(kv_->View(), 2, std::string(1, '\0'), std::string(1, '\0'), true,
                                1u << 20, &out, &next)
                    .ok());
    return out;
  }

  void ExpectCatchUpEqualsLiveEvents() {
    std::vector<mvccpb::Event> read = CatchUp();
    ASSERT_EQ(read.size(), events_.size());
    for (size_t i = 0; i < read.size(); ++i) {
      EXPECT_EQ(read[i].SerializeAsString(), events_[i].SerializeAsString())
          << "event " << i << ": read " << read[i].ShortDebugString() << ", live "
          << events_[i].ShortDebugString();
    }
  }

  uint32_t HashAt(int64_t rev) {
    auto h = etcdserver::HashKv(backend_.get(), kv_->View(), rev);
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? h->hash : 0;
  }

  // How many times each value is stored in `latest` and `rev` together.
  std::map<std::string, int> StoredValues() {
    std::map<std::string, int> out;
    std::unique_ptr<rocksdb::Iterator> it(
        backend_->db()->NewIterator(rocksdb::ReadOptions(), backend_->cf(Cf::kRev)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view v = it->value().ToStringView();
      KeyValue kv;
      EXPECT_TRUE(v.size() > 1 && kv.ParseFromArray(v.data() + 1, static_cast<int>(v.size() - 1)));
      if (v[0] == internal::kKindLive) {
        EXPECT_EQ(kv.value(), "") << "a live marker holds a value";
        EXPECT_EQ(kv.mod_revision(), 0);
      }
      if (!kv.value().empty()) ++out[kv.value()];
    }
    it.reset(backend_->db()->NewIterator(rocksdb::ReadOptions(), backend_->cf(Cf::kLatest)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      internal::LatestRecord rec = internal::DecodeLatest(it->value().ToStringView());
      KeyValue kv;
      EXPECT_TRUE(kv.ParseFromArray(rec.kv.data(), static_cast<int>(rec.kv.size())));
      ++out[kv.value()];
    }
    return out;
  }

  // Writes key `k` = `v` at revision `main` the way the earlier layout did (a bare `latest`
  // record, a full `rev` record), for a store that is not open.
  void WriteEarlierLayoutPut(rocksdb::WriteBatch* b, const std::string& k, const std::string& v,
                             int64_t main, int64_t create, int64_t version) {
    KeyValue kv;
    kv.set_key(k);
    kv.set_value(v);
    kv.set_create_revision(create);
    kv.set_mod_revision(main);
    kv.set_version(version);
    std::string index_value;
    base::PutBE64(&index_value, 0);
    index_value.push_back(internal::kKindPut);
    ASSERT_TRUE(b->Put(backend_->cf(Cf::kIndex), storage::IndexKey(k, main), index_value).ok());
    ASSERT_TRUE(b->Put(backend_->cf(Cf::kRev), storage::RevKey(main, 0),
                       std::string(1, internal::kKindPut) + kv.SerializeAsString())
                    .ok());
    ASSERT_TRUE(b->Put(backend_->cf(Cf::kLatest), k, kv.SerializeAsString()).ok());
  }

  std::vector<mvccpb::Event> events_;
};

std::string Value(int key, int version) {
  std::string v = "value-" + std::to_string(key) + "-" + std::to_string(version) + "-";
  v.resize(64, 'x');
  return v;
}

TEST_F(ValueLayoutTest, EachValueIsHeldOnce) {
  std::map<std::string, int> written;
  for (int i = 0; i < 20; ++i) Put("k" + std::to_string(i), Value(i, 0));
  for (int i = 0; i < 10; ++i) Put("k" + std::to_string(i), Value(i, 1));
  TxnPut({{"k10", Value(10, 1)}, {"k11", Value(11, 1)}, {"k12", Value(12, 1)}});
  Grouped({{"k13", Value(13, 1)}, {"k13", Value(13, 2)}, {"k14", Value(14, 1)}});
  Grouped({{"k19", Value(19, 1)}, {"k19", std::nullopt}, {"k19", Value(19, 2)}});
  for (int i = 0; i < 5; ++i) Delete("k" + std::to_string(i));
  Delete("k15", "k18");
  for (const mvccpb::Event& ev : events_) {
    if (ev.type() == mvccpb::Event::PUT) ++written[ev.kv().value()];
  }
  EXPECT_EQ(StoredValues(), written);
  ExpectCatchUpEqualsLiveEvents();
}

// The history a reader sees (range at every revision, watch catch-up with prev_kv) is what the
// applier produced, over random puts, txns, grouped puts and deletes of a few keys, with
// restarts; and HashKV of a revision is the same before and after its records are rewritten.
TEST_F(ValueLayoutTest, HistoryMatchesTheLiveStreamOverRandomChanges) {
  std::mt19937 rng(7);
  std::map<int64_t, std::map<std::string, std::string>> model;  // revision -> key space
  std::map<std::string, std::string> now;
  std::map<int64_t, uint32_t> hashes;
  auto key = [&] { return "k" + std::to_string(rng() % 6); };
  for (int step = 0; step < 300; ++step) {
    const int64_t before = kv_->View().revision;
    switch (rng() % 5) {
      case 0:
      case 1: {
        std::string k = key(), v = Value(step, 0);
        Put(k, v);
        now[k] = v;
        break;
      }
      case 2: {
        std::string a = key(), b = key();
        if (a == b) b = a + "x";
        TxnPut({{a, Value(step, 1)}, {b, Value(step, 2)}});
        now[a] = Value(step, 1);
        now[b] = Value(step, 2);
        break;
      }
      case 3: {
        // A group of a put and a put or a delete (of the same key or another).
        std::string a = key(), b = key();
        const bool del = rng() % 2 == 0;
        Grouped({{a, Value(step, 1)}, {b, del ? std::nullopt : std::optional(Value(step, 2))}});
        now[a] = Value(step, 1);
        model[before + 1] = now;  // two revisions: one a put
        if (del) {
          now.erase(b);
        } else {
          now[b] = Value(step, 2);
        }
        break;
      }
      default: {
        std::string k = key();
        Delete(k);
        now.erase(k);
      }
    }
    for (int64_t r = before + 1; r <= kv_->View().revision; ++r) model.emplace(r, now);
    if (step % 50 == 0) hashes[kv_->View().revision] = HashAt(kv_->View().revision);
    if (step % 97 == 0) Reopen();
  }
  for (const auto& [rev, space] : model) {
    for (int i = 0; i < 6; ++i) {
      for (const std::string& k : {"k" + std::to_string(i), "k" + std::to_string(i) + "x"}) {
        auto got = Get(k, rev);
        auto want = space.find(k);
        ASSERT_EQ(got.has_value(), want != space.end()) << k << " at " << rev;
        if (got) {
          EXPECT_EQ(got->value(), want->second) << k << " at " << rev;
        }
      }
    }
  }
  ExpectCatchUpEqualsLiveEvents();
  for (const auto& [rev, hash] : hashes) EXPECT_EQ(HashAt(rev), hash) << "revision " << rev;
}

TEST_F(ValueLayoutTest, StoreOfTheEarlierLayoutReadsAndChanges) {
  kv_.reset();
  rocksdb::WriteBatch b;
  WriteEarlierLayoutPut(&b, "x", "x1", 2, 2, 1);
  WriteEarlierLayoutPut(&b, "y", "y1", 3, 3, 1);
  WriteEarlierLayoutPut(&b, "x", "x2", 4, 2, 2);
  std::string rev;
  base::PutBE64(&rev, 4);
  ASSERT_TRUE(b.Put(backend_->cf(Cf::kMeta), "revision", rev).ok());
  backend_->Write(&b);
  backend_->Sync();
  kv_ = std::make_unique<KvStore>(backend_.get());
  const uint32_t hash4 = HashAt(4);

  EXPECT_EQ(Get("x")->value(), "x2");
  EXPECT_EQ(Get("x", 3)->value(), "x1");
  Put("x", "x3");  // over a bare latest record
  Delete("y");
  Put("y", "y2");
  Put("x", "x4");  // over a record of the new layout
  EXPECT_EQ(Get("x", 4)->value(), "x2");
  EXPECT_EQ(Get("x", 5)->value(), "x3");
  EXPECT_EQ(Get("x")->value(), "x4");
  EXPECT_FALSE(Get("y", 6).has_value());
  EXPECT_EQ(Get("y")->value(), "y2");
  EXPECT_EQ(HashAt(4), hash4);

  std::vector<mvccpb::Event> read = CatchUp();
  ASSERT_EQ(read.size(), 7u);
  EXPECT_EQ(read[2].kv().value(), "x2");
  EXPECT_EQ(read[2].prev_kv().value(), "x1");
  EXPECT_EQ(read[3].kv().value(), "x3");
  EXPECT_EQ(read[3].prev_kv().value(), "x2");
  EXPECT_EQ(read[4].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(read[4].prev_kv().value(), "y1");
  EXPECT_EQ(read[6].prev_kv().value(), "x3");
}

// A DeleteRange entry of at least kDeleteRangeTombstoneMin keys removes them from `latest` with
// one range tombstone (docs/keyspace.md). It must leave exactly what deleting key by key leaves:
// the same prefix deleted inside a txn (which deletes key by key) is the reference, before and
// after a restart, with the keys put again afterwards, in history and in the watch stream.
TEST_F(ValueLayoutTest, LargeDeleteRangeMatchesKeyByKeyDeletes) {
  const int n = static_cast<int>(internal::kDeleteRangeTombstoneMin) + 500;
  auto name = [](const std::string& prefix, int i) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%05d", i);
    return prefix + buf;
  };
  for (const std::string prefix : {"a/", "b/"}) {
    for (int first = 0; first < n + 20; first += 100) {
      std::vector<std::pair<std::string, std::string>> kvs;
      for (int i = first; i < std::min(first + 100, n + 20); ++i) {
        kvs.emplace_back(name(prefix, i), Value(i, 0));
      }
      TxnPut(kvs);
    }
    Put(name(prefix, 7), Value(7, 1));  // a key whose history already holds a full record
  }
  // Around the range tombstone's end (the last deleted key + 0x00): the last deleted key, and a
  // key equal to the tombstone's end, which is also the request's range_end, so it stays.
  const std::string last = name("a/", n + 10) + std::string(1, '\0');
  const std::string end = last + std::string(1, '\0');
  Put("a/", "before the range");
  Put(last, "the last deleted key");
  Put(end, "at the range's end");
  const int64_t before = kv_->View().revision;
  auto deleted_count = [&] {
    uint64_t deletes = 0;
    EXPECT_TRUE(backend_->db()->GetIntProperty(backend_->cf(Cf::kLatest),
                                               "rocksdb.num-deletes-active-mem-table", &deletes));
    return deletes;
  };
  const uint64_t point_deletes = deleted_count();
  // [a/00000, a/<n+10>\0\0): n + 12 keys, one range tombstone, no point tombstones in `latest`.
  cairnpb::InternalRequest del;
  del.mutable_delete_range()->set_key(name("a/", 0));
  del.mutable_delete_range()->set_range_end(end);
  EXPECT_EQ(Apply(del).delete_range.deleted(), n + 12);
  EXPECT_EQ(deleted_count(), point_deletes) << "point tombstones instead of one range tombstone";
  cairnpb::InternalRequest txn;
  auto* d = txn.mutable_txn()->add_success()->mutable_request_delete_range();
  d->set_key(name("b/", 0));
  d->set_range_end(name("b/", n + 11));
  Apply(txn);
  EXPECT_EQ(deleted_count(), point_deletes + n + 11) << "a txn deletes key by key";
  ASSERT_FALSE(Get(name("b/", n + 10)).has_value());
  ASSERT_TRUE(Get(name("b/", n + 11)).has_value());
  Put(name("a/", 3), "again");
  Put(name("b/", 3), "again");

  auto expect_same = [&](int64_t rev) {
    for (int i = 0; i < n + 20; ++i) {
      auto a = Get(name("a/", i), rev), b = Get(name("b/", i), rev);
      ASSERT_EQ(a.has_value(), b.has_value()) << i << " at " << rev;
      const bool live = rev == before || i > n + 10 || i == 3;  // rev is `before` or 0 (now)
      ASSERT_EQ(a.has_value(), live) << i << " at " << rev;
      if (!a) continue;
      EXPECT_EQ(a->value(), b->value()) << i << " at " << rev;
      EXPECT_EQ(a->version(), b->version()) << i << " at " << rev;
    }
    EXPECT_EQ(Get("a/", rev)->value(), "before the range");
    EXPECT_EQ(Get(last, rev).has_value(), rev == before);
    EXPECT_EQ(Get(end, rev)->value(), "at the range's end");
  };
  for (int pass = 0; pass < 2; ++pass) {
    expect_same(before);
    expect_same(0);
    EXPECT_EQ(Get(name("a/", 3))->version(), 1);
    EXPECT_EQ(Get(name("a/", 7), before)->value(), Value(7, 1));
    RangeRequest all;
    all.set_key("a/");
    all.set_range_end("a0");
    all.set_count_only(true);
    EXPECT_EQ(kv_->Range(kv_->View(), all)->count(), 1 + 1 + 9 + 1);  // a/, a/00003, 9, end
    Reopen();
  }
  ExpectCatchUpEqualsLiveEvents();
}

// A DeleteRange of at least kDeleteRangeFreshMemtableMin keys writes its history records into new
// `index` and `rev` memtables (docs/keyspace.md); what it leaves is what any delete leaves.
TEST_F(ValueLayoutTest, DeleteRangeOfManyKeysWritesIntoFreshMemtables) {
  const int n = static_cast<int>(internal::kDeleteRangeFreshMemtableMin) + 10;
  auto name = [](int i) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "m/%06d", i);
    return std::string(buf);
  };
  for (int first = 0; first < n; first += 1000) {
    std::vector<std::pair<std::string, std::string>> kvs;
    for (int i = first; i < std::min(first + 1000, n); ++i) kvs.emplace_back(name(i), "v");
    TxnPut(kvs);
  }
  Put("n", "outside");
  const int64_t before = kv_->View().revision;
  auto entries = [&](Cf family) {
    uint64_t count = 0;
    EXPECT_TRUE(backend_->db()->GetIntProperty(backend_->cf(family),
                                               "rocksdb.num-entries-active-mem-table", &count));
    return count;
  };
  ASSERT_GE(entries(Cf::kIndex), static_cast<uint64_t>(n));
  events_.clear();  // only the delete's events are compared with a catch-up below
  Delete("m/", "m0");
  EXPECT_EQ(entries(Cf::kIndex), static_cast<uint64_t>(n)) << "not a fresh memtable";
  EXPECT_EQ(entries(Cf::kRev), static_cast<uint64_t>(2 * n)) << "markers and tombstones";
  for (int pass = 0; pass < 2; ++pass) {
    for (int i : {0, 1, n / 2, n - 1}) {
      EXPECT_FALSE(Get(name(i)).has_value()) << i;
      EXPECT_EQ(Get(name(i), before)->value(), "v") << i;
    }
    EXPECT_EQ(Get("n")->value(), "outside");
    Reopen();
  }
  std::vector<mvccpb::Event> read;
  int64_t next = 0;
  ASSERT_TRUE(
      kv_->ReadEvents(kv_->View(), before + 1, "m/", "m0", true, 1u << 30, &read, &next).ok());
  ASSERT_EQ(read.size(), static_cast<size_t>(n));
  ASSERT_EQ(events_.size(), static_cast<size_t>(n));
  for (int i : {0, n / 3, n - 1}) {
    EXPECT_EQ(read[i].SerializeAsString(), events_[i].SerializeAsString()) << i;
  }
}

TEST_F(ValueLayoutTest, LatestRecordPrefixRoundTrips) {
  for (int64_t sub :
       {int64_t{0}, int64_t{1}, int64_t{127}, int64_t{128}, int64_t{300}, int64_t{1} << 40}) {
    std::string encoded = internal::EncodeLatest(sub, "payload");
    internal::LatestRecord rec = internal::DecodeLatest(encoded);
    EXPECT_EQ(rec.sub, sub);
    EXPECT_EQ(rec.kv, "payload");
  }
  KeyValue kv;
  kv.set_key("k");
  std::string bare = kv.SerializeAsString();
  EXPECT_EQ(internal::DecodeLatest(bare).sub, -1);
  EXPECT_EQ(internal::DecodeLatest(bare).kv, bare);
}

}  // namespace
}  // namespace cairn::mvcc
