// Physical compaction (server/mvcc/kv_compactor.cc): after a compaction at C, the `rev` and
// `index` families hold exactly what etcd keeps (every revision above C; at or below C, only each
// key's newest revision, and that one only when it is a put or a delete exactly at C), through
// successive compactions, batch boundaries, runs removed by one range tombstone next to kept
// records, keys whose newest version is a delete, and a compaction cut by a restart.
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "cairnpb/internal.pb.h"
#include "gtest/gtest.h"
#include "rocksdb/utilities/checkpoint.h"
#include "server/base/encoding.h"
#include "server/mvcc/kv_store.h"
#include "server/mvcc/kv_store_internal.h"
#include "server/storage/encoding.h"
#include "tests/unit/mvcc/apply_util.h"

namespace cairn::mvcc {
namespace {

using etcdserverpb::TxnRequest;
using storage::Cf;

// One history record: (main, sub) -> key, put or delete.
struct Record {
  std::string key;
  bool put = false;
  bool operator==(const Record& o) const { return key == o.key && put == o.put; }
};
using History = std::map<std::pair<int64_t, int64_t>, Record>;

class KvCompactorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-compactor-XXXXXX";
    dir_ = mkdtemp(tmpl);
    Open(dir_ + "/db");
  }
  void TearDown() override {
    kv_.reset();
    backend_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open(const std::string& db) {
    auto b = storage::Backend::Open(db);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
    kv_ = std::make_unique<KvStore>(backend_.get());
  }
  ApplyResult Apply(const cairnpb::InternalRequest& r) {
    ApplyResult res = mvcc::testing::ApplyRequest(kv_.get(), kv_->applied_index() + 1, r);
    backend_->Sync();
    kv_->Publish();
    return res;
  }
  // One revision: puts of `puts` and deletes of `deletes` (distinct keys), in one txn.
  int64_t Write(const std::vector<std::string>& puts, const std::vector<std::string>& deletes) {
    cairnpb::InternalRequest r;
    TxnRequest* t = r.mutable_txn();
    for (const std::string& k : puts) {
      auto* p = t->add_success()->mutable_request_put();
      p->set_key(k);
      p->set_value("v" + std::to_string(kv_->View().revision + 1) + k);
    }
    for (const std::string& k : deletes)
      t->add_success()->mutable_request_delete_range()->set_key(k);
    ApplyResult res = Apply(r);
    EXPECT_TRUE(res.status.ok()) << res.status;
    return kv_->View().revision;
  }
  void CompactAndWait(int64_t rev) {
    cairnpb::InternalRequest r;
    r.mutable_compaction()->set_revision(rev);
    ASSERT_TRUE(Apply(r).status.ok());
    std::promise<bool> p;
    kv_->OnCompacted(rev, [&](bool ok) { p.set_value(ok); });
    ASSERT_TRUE(p.get_future().get());
  }

  // The `rev` family as records.
  History ReadRev(storage::Backend* b) {
    History out;
    std::unique_ptr<rocksdb::Iterator> it(
        b->db()->NewIterator(rocksdb::ReadOptions(), b->cf(Cf::kRev)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view k = it->key().ToStringView();
      std::string_view v = it->value().ToStringView();
      EXPECT_EQ(k.size(), 16u);
      mvccpb::KeyValue kv;
      EXPECT_TRUE(v.size() > 1 && kv.ParseFromArray(v.data() + 1, static_cast<int>(v.size() - 1)));
      out[{static_cast<int64_t>(base::GetBE64(k)),
           static_cast<int64_t>(base::GetBE64(k.substr(8)))}] =
          Record{kv.key(), v[0] != internal::kKindDelete};
    }
    EXPECT_TRUE(it->status().ok());
    return out;
  }
  // The `index` family as records (it must name each (main, sub) once).
  History ReadIndex(storage::Backend* b) {
    History out;
    std::unique_ptr<rocksdb::Iterator> it(
        b->db()->NewIterator(rocksdb::ReadOptions(), b->cf(Cf::kIndex)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view k = it->key().ToStringView();
      std::string_view v = it->value().ToStringView();
      std::string key;
      size_t consumed = 0;
      EXPECT_TRUE(storage::ParseEscaped(k, &key, &consumed) && k.size() == consumed + 8);
      EXPECT_EQ(v.size(), 9u);
      int64_t main = static_cast<int64_t>(std::numeric_limits<uint64_t>::max() -
                                          base::GetBE64(k.substr(consumed)));
      auto [pos, fresh] = out.emplace(std::make_pair(main, static_cast<int64_t>(base::GetBE64(v))),
                                      Record{key, v[8] == internal::kKindPut});
      EXPECT_TRUE(fresh) << "two index records for revision " << main;
    }
    EXPECT_TRUE(it->status().ok());
    return out;
  }
  // What etcd keeps of `all` after a compaction at `c`.
  static History Kept(const History& all, int64_t c) {
    std::map<std::string, std::pair<int64_t, int64_t>> newest;  // key -> newest revision <= c
    for (const auto& [rev, r] : all) {
      if (rev.first <= c) newest[r.key] = rev;
    }
    History out;
    for (const auto& [rev, r] : all) {
      if (rev.first > c || (newest[r.key] == rev && (r.put || rev.first == c))) out[rev] = r;
    }
    return out;
  }
  // Both families hold exactly `want`, and a read at every revision from `c` to the head sees
  // the newest put of each key (as `all` says).
  void ExpectCompactedTo(storage::Backend* b, KvStore* kv, const History& all, int64_t c) {
    History want = Kept(all, c);
    EXPECT_EQ(ReadRev(b), want) << "rev family after compaction at " << c;
    EXPECT_EQ(ReadIndex(b), want) << "index family after compaction at " << c;
    const int64_t head = kv->View().revision;
    for (int64_t r = c; r <= head; ++r) {
      std::map<std::string, int64_t> alive;  // key -> mod_revision at r
      for (const auto& [rev, rec] : all) {
        if (rev.first > r) break;
        if (rec.put) {
          alive[rec.key] = rev.first;
        } else {
          alive.erase(rec.key);
        }
      }
      etcdserverpb::RangeRequest q;
      q.set_key("k");
      q.set_range_end("l");  // every key of the tests
      q.set_revision(r);
      auto res = kv->Range(kv->View(), q);
      ASSERT_TRUE(res.ok()) << r << ": " << res.status();
      ASSERT_EQ(res->kvs_size(), static_cast<int>(alive.size())) << "revision " << r;
      int i = 0;
      for (const auto& [key, mod] : alive) {
        EXPECT_EQ(res->kvs(i).key(), key) << "revision " << r;
        EXPECT_EQ(res->kvs(i).mod_revision(), mod) << "revision " << r;
        ++i;
      }
    }
  }

  std::string dir_;
  std::unique_ptr<storage::Backend> backend_;
  std::unique_ptr<KvStore> kv_;
};

std::string Key(int i) { return "k" + std::to_string(100 + i); }

// A history of ~2,500 records over 40 keys: long runs of superseded records (range tombstones)
// next to kept ones, deletes as the newest version, deletes exactly at a compact revision, and
// keys left untouched between two compactions.
TEST_F(KvCompactorTest, SuccessiveCompactionsKeepExactlyEtcdsRecords) {
  std::mt19937 rng(7);
  std::set<std::string> live;
  auto random_revision = [&] {
    std::vector<std::string> puts, dels;
    std::set<std::string> used;
    int n = 1 + static_cast<int>(rng() % 25);
    for (int j = 0; j < n; ++j) {
      std::string k = Key(static_cast<int>(rng() % 40));
      if (!used.insert(k).second) continue;
      if (live.count(k) && rng() % 5 == 0) {
        dels.push_back(k);
        live.erase(k);
      } else {
        puts.push_back(k);
        live.insert(k);
      }
    }
    return Write(puts, dels);
  };
  // Keys that keep one version across compactions: k190 put once; k191 put, then deleted later.
  Write({Key(90), Key(91), Key(92)}, {});
  for (int i = 0; i < 60; ++i) random_revision();
  // A delete exactly at the first compact revision is kept, then removed by the next compaction.
  const int64_t c1 = Write({Key(93)}, {Key(92)});
  for (int i = 0; i < 60; ++i) random_revision();
  Write({}, {Key(91)});  // k191's newest version <= c2 is a delete: both versions go at c2
  for (int i = 0; i < 30; ++i) random_revision();
  const int64_t c2 = kv_->View().revision;
  for (int i = 0; i < 40; ++i) random_revision();
  const int64_t c3 = kv_->View().revision;
  const History all = ReadRev(backend_.get());
  ASSERT_GT(all.size(), 2u * internal::kCompactionBatchLimit) << "spans several batches";
  ASSERT_EQ(ReadIndex(backend_.get()), all);

  CompactAndWait(c1);
  ExpectCompactedTo(backend_.get(), kv_.get(), all, c1);
  EXPECT_EQ(ReadRev(backend_.get()).count({c1, 1}), 1u) << "the delete at c1 is kept";
  CompactAndWait(c2);
  ExpectCompactedTo(backend_.get(), kv_.get(), all, c2);
  // After a restart the next compaction starts from the finished one.
  kv_.reset();
  kv_ = std::make_unique<KvStore>(backend_.get());
  CompactAndWait(c3);
  ExpectCompactedTo(backend_.get(), kv_.get(), all, c3);
}

// A compaction cut after its first batch (a copy of the database taken there, as a crash would
// leave it) resumes when the copy is opened, and ends with exactly what the uncut one keeps.
TEST_F(KvCompactorTest, CompactionCutByARestartResumesFromTheFinishedRevision) {
  for (int i = 0; i < 40; ++i) {
    std::vector<std::string> puts;
    for (int j = 0; j < 100; ++j) puts.push_back(Key((i * 7 + j) % 150));
    Write(puts, i % 10 == 9 ? std::vector<std::string>{Key(200 + i)} : std::vector<std::string>{});
    if (i % 10 == 8) Write({Key(200 + i + 1)}, {});
  }
  const int64_t first = kv_->View().revision;
  CompactAndWait(first / 2);  // a finished compaction before: the cut one starts above it
  for (int i = 0; i < 30; ++i) {
    std::vector<std::string> puts;
    for (int j = 0; j < 100; ++j) puts.push_back(Key((i * 13 + j) % 150));
    Write(puts, {});
  }
  const int64_t c = kv_->View().revision - 5;
  const History all = ReadRev(backend_.get());
  const std::string copy = dir_ + "/copy";
  std::promise<void> copied;
  kv_->SetCompactionBatchHook([&](int batches) {
    if (batches != 1) return;
    rocksdb::Checkpoint* cp = nullptr;
    ASSERT_TRUE(rocksdb::Checkpoint::Create(backend_->db(), &cp).ok());
    std::unique_ptr<rocksdb::Checkpoint> owned(cp);
    ASSERT_TRUE(owned->CreateCheckpoint(copy).ok());
    copied.set_value();
  });
  CompactAndWait(c);
  kv_->SetCompactionBatchHook(nullptr);
  ASSERT_EQ(copied.get_future().wait_for(std::chrono::seconds(0)), std::future_status::ready);
  ExpectCompactedTo(backend_.get(), kv_.get(), all, c);

  auto b = storage::Backend::Open(copy);
  ASSERT_TRUE(b.ok()) << b.status();
  std::unique_ptr<storage::Backend> cut = std::move(*b);
  ASSERT_EQ(cut->ReadMetaInt("compact_revision", -1), c);
  ASSERT_EQ(cut->ReadMetaInt("finished_compact_revision", 0), first / 2) << "cut mid-way";
  History partial = ReadRev(cut.get());
  EXPECT_LT(partial.size(), all.size()) << "the first batch was written";
  EXPECT_GT(partial.size(), Kept(all, c).size()) << "not all batches were written";
  auto resumed = std::make_unique<KvStore>(cut.get());
  std::promise<bool> p;
  resumed->OnCompacted(c, [&](bool ok) { p.set_value(ok); });
  ASSERT_TRUE(p.get_future().get());
  ExpectCompactedTo(cut.get(), resumed.get(), all, c);
  resumed.reset();
}

}  // namespace
}  // namespace cairn::mvcc
