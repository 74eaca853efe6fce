// Locks, elections (Election and LeaderLatch) and service discovery on 3-member clusters of etcd
// and cairn (cairn through the public test kit), with each participant's client pinned to a
// different member, so the recipes' waits are woken by watches served by other members than the
// writes that end them.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "cairn/recipes/discovery.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/leader_latch.h"
#include "cairn/recipes/mutex.h"
#include "tests/recipes/fault_util.h"

namespace cairn::recipes_test {
namespace {

using recipes::Election;
using recipes::Grant;
using recipes::LeaderLatch;
using recipes::LeaderLatchOptions;
using recipes::Mutex;
using recipes::PickPolicy;
using recipes::ServiceResolver;

class MultiMemberTest : public ::testing::TestWithParam<ServerKind> {
 protected:
  void SetUp() override {
    auto c = AnyCluster::Start(GetParam(), 3);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
    for (const std::string& endpoint : cluster_->Endpoints()) {
      ClientOptions o;
      o.endpoints = {endpoint};
      o.dial_timeout = std::chrono::milliseconds(10000);
      o.default_timeout = std::chrono::milliseconds(15000);
      auto client = Client::Connect(o);
      ASSERT_TRUE(client.ok()) << client.status();
      clients_.push_back(std::move(*client));
    }
  }
  std::shared_ptr<recipes::Session> NewSession(int member, int64_t ttl = 10) {
    recipes::SessionOptions so;
    so.ttl_seconds = ttl;
    auto s = recipes::Session::Create(*clients_[member], so);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : nullptr;
  }

  std::unique_ptr<AnyCluster> cluster_;
  std::vector<std::unique_ptr<Client>> clients_;  // clients_[i] talks to member i only
};

// Three contenders, one per member, increment a counter under the lock with guarded Txns:
// every increment applies, none is lost, and the fencing tokens of successive holds grow.
TEST_P(MultiMemberTest, MutexExcludesAcrossMembers) {
  const std::string counter = "multi/lock/counter";
  constexpr int kRounds = 4;
  std::atomic<int> refused{0};
  std::vector<std::vector<Revision>> tokens(3);
  std::vector<std::thread> threads;
  for (int member = 0; member < 3; ++member) {
    threads.emplace_back([&, member] {
      auto session = NewSession(member);
      if (session == nullptr) return;
      for (int round = 0; round < kRounds; ++round) {
        Mutex mu(session, "multi/lock/mu");
        auto grant = mu.Lock(Within(60000));
        if (!grant.ok()) {
          ADD_FAILURE() << "member " << member << ": " << grant.status();
          return;
        }
        tokens[member].push_back(grant->fencing_token);
        const Kv& kv = clients_[member]->kv();
        auto got = kv.Get(counter, {}, Within(15000));
        ASSERT_TRUE(got.ok()) << got.status();
        int64_t value = got->kvs.empty() ? 0 : std::atoll(got->kvs[0].value.c_str());
        Txn txn;
        txn.If({grant->Guard()}).Then({Op::Put(counter, std::to_string(value + 1))});
        auto r = kv.Commit(txn, Within(15000));
        ASSERT_TRUE(r.ok()) << r.status();
        if (!r->succeeded) ++refused;
        ASSERT_TRUE(mu.Unlock(Within(15000)).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(refused.load(), 0);
  auto got = clients_[1]->kv().Get(counter, {}, Within(15000));
  ASSERT_TRUE(got.ok() && got->kvs.size() == 1);
  EXPECT_EQ(got->kvs[0].value, std::to_string(3 * kRounds));
  for (const auto& per_member : tokens) {
    EXPECT_TRUE(std::is_sorted(per_member.begin(), per_member.end()));
  }
}

// Campaigners on members 0 and 1, an observer on member 2: the observer follows the leader,
// a resignation hands leadership over, and LeaderLatches on different members take turns.
TEST_P(MultiMemberTest, ElectionAndLatchAcrossMembers) {
  const std::string name = "multi/elect";
  auto s0 = NewSession(0);
  auto s1 = NewSession(1);
  ASSERT_TRUE(s0 && s1);
  Election e0(s0, name);
  Election e1(s1, name);
  auto g0 = e0.Campaign("zero", Within(20000));
  ASSERT_TRUE(g0.ok()) << g0.status();
  absl::StatusOr<Grant> g1;
  std::thread t([&] { g1 = e1.Campaign("one", Within(60000)); });
  Election observer_view(NewSession(2), name);
  auto observer = observer_view.Observe(nullptr, Within(20000));
  ASSERT_TRUE(observer.ok()) << observer.status();
  auto seen = (*observer)->WaitFor([](const auto& l) { return l.value == "zero"; }, Within(20000));
  ASSERT_TRUE(seen.ok()) << seen.status();
  ASSERT_TRUE(e0.Proclaim("zero-again", Within(20000)).ok());
  seen = (*observer)->WaitFor([](const auto& l) { return l.value == "zero-again"; }, Within(20000));
  ASSERT_TRUE(seen.ok()) << seen.status();
  ASSERT_TRUE(e0.Resign(Within(20000)).ok());
  t.join();
  ASSERT_TRUE(g1.ok()) << g1.status();
  EXPECT_GT(g1->fencing_token, g0->fencing_token);
  seen = (*observer)->WaitFor([](const auto& l) { return l.value == "one"; }, Within(20000));
  ASSERT_TRUE(seen.ok()) << seen.status();
  observer->reset();

  auto ls0 = NewSession(0);
  auto ls2 = NewSession(2);
  ASSERT_TRUE(ls0 && ls2);
  LeaderLatchOptions o0;
  o0.value = "latch0";
  auto l0 = LeaderLatch::Start(ls0, "multi/latch", o0);
  ASSERT_TRUE(l0.ok()) << l0.status();
  auto lg0 = (*l0)->Await(Within(20000));
  ASSERT_TRUE(lg0.ok()) << lg0.status();
  LeaderLatchOptions o2;
  o2.value = "latch2";
  auto l2 = LeaderLatch::Start(ls2, "multi/latch", o2);
  ASSERT_TRUE(l2.ok()) << l2.status();
  EXPECT_FALSE((*l2)->has_leadership());
  (*l0)->Close();
  auto lg2 = (*l2)->Await(Within(30000));
  ASSERT_TRUE(lg2.ok()) << lg2.status();
  EXPECT_GT(lg2->fencing_token, lg0->fencing_token);
  (*l2)->Close();
}

// An instance registers through member 0; resolvers on members 1 and 2 see it, and drop it
// when its session is lost (the lease expires on the cluster's leader).
TEST_P(MultiMemberTest, DiscoveryAcrossMembers) {
  const std::string service = "multi/svc";
  auto r1 = ServiceResolver::Start(*clients_[1], service, PickPolicy::kRoundRobin, Within(20000));
  auto r2 = ServiceResolver::Start(*clients_[2], service, PickPolicy::kSticky, Within(20000));
  ASSERT_TRUE(r1.ok() && r2.ok());
  auto keep = NewSession(0);
  auto lose = NewSession(0, /*ttl=*/2);
  ASSERT_TRUE(keep && lose);
  ASSERT_TRUE(recipes::RegisterEndpoint(*keep, service, {"10.0.0.1:80", "a"}).ok());
  ASSERT_TRUE(recipes::RegisterEndpoint(*lose, service, {"10.0.0.2:80", "b"}).ok());
  for (auto* r : {r1->get(), r2->get()}) {
    ASSERT_TRUE(r->WaitFor([](const auto& eps) { return eps.size() == 2; }, Within(20000)).ok());
  }
  lose->Orphan();
  for (auto* r : {r1->get(), r2->get()}) {
    ASSERT_TRUE(r->WaitFor([](const auto& eps) { return eps.size() == 1; }, Within(30000)).ok());
    auto picked = r->Pick();
    ASSERT_TRUE(picked.ok()) << picked.status();
    EXPECT_EQ(picked->address, "10.0.0.1:80");
  }
}

INSTANTIATE_TEST_SUITE_P(Servers, MultiMemberTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
