// Watch differential: the same seeded operation sequence, with the same watchers attached (live
// and historical, prefix/key/from-key ranges, NOPUT/NODELETE filters, prev_kv), run against etcd
// and cairn. The event streams must be identical (event by event, kv and prev_kv included), and on
// both servers one revision's events never span two responses.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {
namespace {

using etcdserverpb::WatchCreateRequest;
using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

struct Spec {
  std::string key, range_end;
  int64_t start_revision;
  bool prev_kv, no_put, no_delete;
};

struct Change {
  int64_t revision;
  std::string key;
  bool put;
};

bool Matches(const Spec& s, const Change& c) {
  if (c.revision < s.start_revision) return false;
  if ((c.put && s.no_put) || (!c.put && s.no_delete)) return false;
  if (s.range_end.empty()) return c.key == s.key;
  if (c.key < s.key) return false;
  return s.range_end == std::string(1, '\0') || c.key < s.range_end;
}

// Runs the sequence on one server; returns the events each watcher received, serialized.
std::vector<std::vector<std::string>> RunSequence(ServerKind kind, uint32_t seed,
                                                  std::string* failure) {
  auto cluster = ServerCluster::Start(ClusterOptions{kind});
  if (!cluster.ok()) {
    *failure = cluster.status().ToString();
    return {};
  }
  auto channel = MakeTestChannel((*cluster)->ClientEndpoint(0));
  auto kv = etcdserverpb::KV::NewStub(channel);
  auto watch = etcdserverpb::Watch::NewStub(channel);
  std::mt19937 rng(seed);
  std::vector<Change> changes;
  auto key = [&] { return std::string(1, "abcd"[rng() % 4]) + std::to_string(rng() % 3); };

  // Some history before the watch stream opens, for the historical watchers.
  auto do_ops = [&](int n) {
    for (int i = 0; i < n; ++i) {
      grpc::ClientContext ctx;
      int op = rng() % 10;
      if (op < 6) {
        etcdserverpb::PutRequest p;
        p.set_key(key());
        p.set_value("v" + std::to_string(rng() % 100));
        etcdserverpb::PutResponse r;
        if (kv->Put(&ctx, p, &r).ok()) changes.push_back({r.header().revision(), p.key(), true});
      } else if (op < 8) {
        etcdserverpb::DeleteRangeRequest d;
        d.set_key(key());
        if (rng() % 2) d.set_range_end(std::string(1, static_cast<char>(d.key()[0] + 1)));
        d.set_prev_kv(true);
        etcdserverpb::DeleteRangeResponse r;
        if (kv->DeleteRange(&ctx, d, &r).ok()) {
          for (const auto& pk : r.prev_kvs())
            changes.push_back({r.header().revision(), pk.key(), false});
        }
      } else {
        // A txn writing two distinct keys: two events in one revision.
        etcdserverpb::TxnRequest t;
        std::string k1 = key(), k2 = key();
        if (k1 == k2) k2 += "x";
        for (const auto& k : {k1, k2}) {
          auto* p = t.add_success()->mutable_request_put();
          p->set_key(k);
          p->set_value("t");
        }
        etcdserverpb::TxnResponse r;
        if (kv->Txn(&ctx, t, &r).ok()) {
          changes.push_back({r.header().revision(), k1, true});
          changes.push_back({r.header().revision(), k2, true});
        }
      }
    }
  };
  do_ops(40);
  std::vector<Spec> specs = {
      {"a", "b", 0, true, false, false},                   // prefix a, live, prev_kv
      {"b1", "", 0, false, true, false},                   // one key, deletes only
      {"c", std::string(1, '\0'), 0, false, false, true},  // from c, puts only
      {"a", std::string(1, '\0'), 2, true, false, false},  // everything from revision 2
      {"b", "c", 10, false, false, false},                 // prefix b from revision 10
  };
  grpc::ClientContext wctx;
  auto stream = watch->Watch(&wctx);
  for (size_t i = 0; i < specs.size(); ++i) {
    WatchRequest req;
    auto* c = req.mutable_create_request();
    c->set_key(specs[i].key);
    c->set_range_end(specs[i].range_end);
    c->set_start_revision(specs[i].start_revision);
    c->set_prev_kv(specs[i].prev_kv);
    if (specs[i].no_put) c->add_filters(WatchCreateRequest::NOPUT);
    if (specs[i].no_delete) c->add_filters(WatchCreateRequest::NODELETE);
    c->set_watch_id(static_cast<int64_t>(i) + 1);
    stream->Write(req);
  }
  // Wait for the five "created" answers, so the live watchers start at the current revision.
  std::vector<std::vector<std::string>> got(specs.size());
  std::map<int64_t, int64_t> live_start;
  int created = 0;
  WatchResponse resp;
  int64_t created_rev = 0;
  while (created < static_cast<int>(specs.size()) && stream->Read(&resp)) {
    if (resp.created()) {
      ++created;
      created_rev = resp.header().revision();
    } else {
      for (const auto& ev : resp.events())
        got[resp.watch_id() - 1].push_back(ev.SerializeAsString());
    }
  }
  for (auto& s : specs) {
    if (s.start_revision == 0) s.start_revision = created_rev + 1;
  }
  do_ops(60);
  std::vector<size_t> want(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    for (const Change& c : changes) want[i] += Matches(specs[i], c);
  }
  auto complete = [&] {
    for (size_t i = 0; i < specs.size(); ++i) {
      if (got[i].size() < want[i]) return false;
    }
    return true;
  };
  // Bound: a stream that never completes is cancelled after 60 s (the test then fails).
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::thread stopper([&] {
    std::unique_lock<std::mutex> l(mu);
    cv.wait_for(l, std::chrono::seconds(60), [&] { return finished; });
    wctx.TryCancel();
  });
  std::vector<int64_t> last_rev(specs.size(), 0);
  while (!complete() && stream->Read(&resp)) {
    if (resp.events_size() == 0) continue;
    size_t w = static_cast<size_t>(resp.watch_id() - 1);
    // One revision's events are never split across two responses of a watcher.
    if (resp.events(0).kv().mod_revision() == last_rev[w]) {
      *failure += ServerKindName(kind) + ": revision " + std::to_string(last_rev[w]) +
                  " split across responses of watcher " + std::to_string(w + 1) + ";";
    }
    for (const auto& ev : resp.events()) got[w].push_back(ev.SerializeAsString());
    last_rev[w] = resp.events(resp.events_size() - 1).kv().mod_revision();
  }
  bool done = complete();
  {
    std::lock_guard<std::mutex> l(mu);
    finished = true;
  }
  cv.notify_all();
  stopper.join();
  if (!done) *failure = ServerKindName(kind) + ": watch streams incomplete";
  for (size_t i = 0; i < specs.size(); ++i) {
    if (got[i].size() != want[i]) {
      *failure += " watcher " + std::to_string(i + 1) + " got " + std::to_string(got[i].size()) +
                  " want " + std::to_string(want[i]) + ";";
    }
  }
  return got;
}

TEST(WatchDifferentialTest, SameEventStreamsAsEtcd) {
  ASSERT_TRUE(CairnBuilt());
  uint32_t seed = 20261121;
  if (const char* s = std::getenv("CAIRN_WATCH_DIFF_SEED"))
    seed = static_cast<uint32_t>(std::stoul(s));
  std::string etcd_failure, cairn_failure;
  auto etcd = RunSequence(ServerKind::kEtcd, seed, &etcd_failure);
  auto cairn = RunSequence(ServerKind::kCairn, seed, &cairn_failure);
  ASSERT_TRUE(etcd_failure.empty()) << etcd_failure << " (seed " << seed << ")";
  ASSERT_TRUE(cairn_failure.empty()) << cairn_failure << " (seed " << seed << ")";
  ASSERT_EQ(etcd.size(), cairn.size());
  size_t total = 0;
  for (const auto& w : etcd) total += w.size();
  EXPECT_GT(total, 50u) << "the sequence must exercise the watchers";
  for (size_t w = 0; w < etcd.size(); ++w) {
    ASSERT_EQ(etcd[w].size(), cairn[w].size()) << "watcher " << w + 1 << " seed " << seed;
    for (size_t i = 0; i < etcd[w].size(); ++i) {
      mvccpb::Event a, b;
      a.ParseFromString(etcd[w][i]);
      b.ParseFromString(cairn[w][i]);
      EXPECT_EQ(etcd[w][i], cairn[w][i])
          << "watcher " << w + 1 << " event " << i << " seed " << seed
          << "\netcd:  " << a.ShortDebugString() << "\ncairn: " << b.ShortDebugString();
    }
  }
}

}  // namespace
}  // namespace cairn::testing
