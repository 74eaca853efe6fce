// Crash test: concurrent Puts, SIGKILL of the server mid-load, restart on the same data dir. Every
// acknowledged write must survive with its value and mod_revision, and the store's revision must
// not go back below the highest acknowledged one (ARCHITECTURE.md "Durable before acknowledged").
// Runs against etcd (which must pass) and cairn.
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {
namespace {

constexpr int kRounds = 3;
constexpr int kClientThreads = 4;
// Acknowledged writes per round before the kill (the kill then lands while puts are in flight).
constexpr int kAcksBeforeKill = 150;
constexpr int kWaitBoundMs = 60000;

struct Ack {
  std::string value;
  int64_t revision = 0;
};

class CrashTest : public ::testing::TestWithParam<ServerKind> {
 protected:
  // Acknowledged writes of all rounds, by key.
  std::mutex mu_;
  std::map<std::string, Ack> acked_;
  int64_t max_acked_revision_ = 0;
  std::vector<int64_t> ack_revisions_;

  void Record(const std::string& key, const std::string& value, int64_t revision) {
    std::lock_guard<std::mutex> lock(mu_);
    acked_[key] = Ack{value, revision};
    max_acked_revision_ = std::max(max_acked_revision_, revision);
    ack_revisions_.push_back(revision);
  }

  size_t AckCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_.size();
  }

  // One client: distinct keys, one put at a time, until `stop`. Failed puts (the server is gone)
  // are not recorded: they may or may not have been applied.
  void Writer(const std::string& endpoint, int round, int thread, const std::atomic<bool>& stop) {
    auto stub = etcdserverpb::KV::NewStub(MakeTestChannel(endpoint));
    for (int i = 0; !stop.load(); ++i) {
      etcdserverpb::PutRequest req;
      req.set_key(absl::StrCat("crash/", round, "/", thread, "/", i));
      req.set_value(absl::StrCat("value-", round, "-", thread, "-", i));
      etcdserverpb::PutResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      grpc::Status status = stub->Put(&ctx, req, &resp);
      if (status.ok()) {
        Record(req.key(), req.value(), resp.header().revision());
      } else {
        // The server was killed; nothing more can be acknowledged this round.
        return;
      }
    }
  }

  // Reads every key under "crash/" and checks each acknowledged write.
  void Verify(const std::string& endpoint, int round) {
    auto stub = etcdserverpb::KV::NewStub(MakeTestChannel(endpoint));
    etcdserverpb::RangeRequest req;
    req.set_key("crash/");
    req.set_range_end("crash0");  // prefix end of "crash/"
    etcdserverpb::RangeResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status status = stub->Range(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    std::map<std::string, const mvccpb::KeyValue*> present;
    for (const auto& kv : resp.kvs()) present[kv.key()] = &kv;

    std::lock_guard<std::mutex> lock(mu_);
    SCOPED_TRACE(absl::StrCat("after crash round ", round, ": ", acked_.size(),
                              " acknowledged writes, max acknowledged revision ",
                              max_acked_revision_, ", store revision ", resp.header().revision()));
    EXPECT_GE(resp.header().revision(), max_acked_revision_);
    int missing = 0, wrong = 0;
    for (const auto& [key, ack] : acked_) {
      auto it = present.find(key);
      if (it == present.end()) {
        if (++missing <= 5) ADD_FAILURE() << "acknowledged write lost: " << key;
        continue;
      }
      const mvccpb::KeyValue& kv = *it->second;
      if (kv.value() != ack.value || kv.mod_revision() != ack.revision ||
          kv.create_revision() != ack.revision || kv.version() != 1) {
        if (++wrong <= 5) {
          ADD_FAILURE() << "acknowledged write changed: " << key << " acked value " << ack.value
                        << " revision " << ack.revision << ", now " << kv.ShortDebugString();
        }
      }
    }
    EXPECT_EQ(missing, 0);
    EXPECT_EQ(wrong, 0);
    // Unacknowledged writes may have survived, but only with the value that was sent.
    for (const auto& [key, kv] : present) {
      std::string expected = key;
      expected.replace(0, std::string("crash/").size(), "value-");
      for (char& c : expected) {
        if (c == '/') c = '-';
      }
      EXPECT_EQ(kv->value(), expected) << key;
      EXPECT_LE(kv->mod_revision(), resp.header().revision()) << key;
    }
    // Each acknowledged put got its own revision.
    std::vector<int64_t> revisions = ack_revisions_;
    std::sort(revisions.begin(), revisions.end());
    EXPECT_EQ(std::adjacent_find(revisions.begin(), revisions.end()), revisions.end())
        << "two acknowledged puts share a revision";
  }
};

TEST_P(CrashTest, AcknowledgedWritesSurviveKill9) {
  auto cluster = ServerCluster::Start({.kind = GetParam()});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;

  for (int round = 0; round < kRounds; ++round) {
    size_t before = AckCount();
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < kClientThreads; ++t) {
      writers.emplace_back([&, t] { Writer(c.ClientEndpoint(0), round, t, stop); });
    }
    // Poll (bounded) until enough writes of this round are acknowledged, then kill mid-load.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitBoundMs);
    while (AckCount() < before + kAcksBeforeKill && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    size_t acked_at_kill = AckCount();
    c.Kill(0);
    stop = true;
    for (auto& w : writers) w.join();
    ASSERT_GE(acked_at_kill, before + kAcksBeforeKill) << "writes were not acknowledged in time";

    absl::Status restarted = c.Restart(0);
    ASSERT_TRUE(restarted.ok()) << restarted;
    Verify(c.ClientEndpoint(0), round);
    if (HasFailure()) break;
  }
}

// Transactions writing two keys at once: after a kill -9 each pair is all-or-nothing, whether or
// not it was acknowledged, and acknowledged pairs are all there.
TEST_P(CrashTest, TxnPairsAtomicAcrossKill9) {
  auto cluster = ServerCluster::Start({.kind = GetParam()});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  std::mutex mu;
  std::map<std::string, int64_t> acked;  // pair id -> revision
  std::vector<std::string> attempted;    // pair ids sent (maybe applied)

  for (int round = 0; round < kRounds; ++round) {
    std::atomic<bool> stop{false};
    std::atomic<int> round_acks{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < kClientThreads; ++t) {
      writers.emplace_back([&, t] {
        auto stub = etcdserverpb::KV::NewStub(MakeTestChannel(c.ClientEndpoint(0)));
        for (int i = 0; !stop.load(); ++i) {
          std::string id = absl::StrCat(round, "-", t, "-", i);
          etcdserverpb::TxnRequest txn;
          auto* cmp = txn.add_compare();  // the pair does not exist yet
          cmp->set_key("pair/a/" + id);
          cmp->set_target(etcdserverpb::Compare::VERSION);
          cmp->set_result(etcdserverpb::Compare::EQUAL);
          cmp->set_version(0);
          for (const char* side : {"a", "b"}) {
            auto* put = txn.add_success()->mutable_request_put();
            put->set_key(absl::StrCat("pair/", side, "/", id));
            put->set_value(id);
          }
          {
            std::lock_guard<std::mutex> lock(mu);
            attempted.push_back(id);
          }
          etcdserverpb::TxnResponse resp;
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
          if (!stub->Txn(&ctx, txn, &resp).ok()) return;
          if (!resp.succeeded()) {
            ADD_FAILURE() << "compare on a fresh pair failed: " << id;
            return;
          }
          std::lock_guard<std::mutex> lock(mu);
          acked[id] = resp.header().revision();
          ++round_acks;
        }
      });
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitBoundMs);
    while (round_acks.load() < kAcksBeforeKill / 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    int acks_at_kill = round_acks.load();
    c.Kill(0);
    stop = true;
    for (auto& w : writers) w.join();
    ASSERT_GE(acks_at_kill, kAcksBeforeKill / 2) << "transactions were not acknowledged in time";
    absl::Status restarted = c.Restart(0);
    ASSERT_TRUE(restarted.ok()) << restarted;

    auto stub = etcdserverpb::KV::NewStub(MakeTestChannel(c.ClientEndpoint(0)));
    etcdserverpb::RangeRequest req;
    req.set_key("pair/");
    req.set_range_end("pair0");
    etcdserverpb::RangeResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status status = stub->Range(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    std::map<std::string, std::vector<const mvccpb::KeyValue*>> by_id;
    for (const auto& kv : resp.kvs()) {
      by_id[kv.key().substr(std::string("pair/a/").size())].push_back(&kv);
    }
    std::lock_guard<std::mutex> lock(mu);
    SCOPED_TRACE(absl::StrCat("after crash round ", round, ": ", acked.size(),
                              " acknowledged pairs, ", attempted.size(), " attempted"));
    int torn = 0, lost = 0;
    for (const std::string& id : attempted) {
      auto it = by_id.find(id);
      size_t present = it == by_id.end() ? 0 : it->second.size();
      if (present == 1 && ++torn <= 5) ADD_FAILURE() << "torn transaction: one key of pair " << id;
      if (present == 2) {
        const auto& kvs = it->second;
        EXPECT_EQ(kvs[0]->mod_revision(), kvs[1]->mod_revision()) << id;
        EXPECT_EQ(kvs[0]->value(), id);
        EXPECT_EQ(kvs[1]->value(), id);
        auto ack = acked.find(id);
        if (ack != acked.end()) {
          EXPECT_EQ(kvs[0]->mod_revision(), ack->second) << id;
        }
      }
      if (present == 0 && acked.count(id) > 0 && ++lost <= 5) {
        ADD_FAILURE() << "acknowledged transaction lost: " << id;
      }
    }
    EXPECT_EQ(torn, 0);
    EXPECT_EQ(lost, 0);
    if (HasFailure()) break;
  }
}

INSTANTIATE_TEST_SUITE_P(Fault, CrashTest, ::testing::ValuesIn(TestedServerKinds()),
                         [](const ::testing::TestParamInfo<ServerKind>& info) {
                           return ServerKindName(info.param);
                         });

}  // namespace
}  // namespace cairn::testing
