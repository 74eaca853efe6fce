// Service discovery (registration under a session, resolver following changes, pickers,
// mark-down, the etcd endpoints JSON format), MultiLock (all or none, excludes single Mutexes),
// LeaderLatch (leadership handed over when the leader closes or loses its session).
#include <atomic>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "cairn/recipes/discovery.h"
#include "cairn/recipes/leader_latch.h"
#include "cairn/recipes/leader_selector.h"
#include "cairn/recipes/multi_lock.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using recipes::DecodeEndpoint;
using recipes::EncodeEndpoint;
using recipes::LeaderLatch;
using recipes::LeaderLatchOptions;
using recipes::LeaderSelector;
using recipes::LeaderSelectorOptions;
using recipes::MultiLock;
using recipes::Mutex;
using recipes::PickPolicy;
using recipes::ServiceEndpoint;
using recipes::ServiceResolver;

class CoordinationTest : public RecipeTest {};

TEST(EndpointJson, RoundTripsAndReadsEtcdFormat) {
  ServiceEndpoint ep{"10.0.0.1:80", "zone \"a\"\n"};
  auto back = DecodeEndpoint(EncodeEndpoint(ep));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, ep);
  EXPECT_EQ(EncodeEndpoint({"h:1", ""}), "{\"Addr\":\"h:1\",\"Metadata\":null}");
  // As etcd's Go endpoints manager writes it (Metadata may be any JSON value).
  auto go = DecodeEndpoint("{\"Op\":0,\"Addr\":\"1.2.3.4:5\",\"Metadata\":{\"w\":[1,2]}}");
  ASSERT_TRUE(go.ok()) << go.status();
  EXPECT_EQ(go->address, "1.2.3.4:5");
  EXPECT_EQ(go->metadata, "{\"w\":[1,2]}");
  EXPECT_FALSE(DecodeEndpoint("not json").ok());
  EXPECT_FALSE(DecodeEndpoint("{\"Metadata\":null}").ok());
}

TEST_P(CoordinationTest, DiscoveryResolvesPicksAndDropsLostInstances) {
  auto s1 = NewSession();
  auto s2 = NewSession(/*ttl=*/2);
  ASSERT_TRUE(s1 && s2);
  auto rr = ServiceResolver::Start(*client_, "svc/api", PickPolicy::kRoundRobin, Within(10000));
  ASSERT_TRUE(rr.ok()) << rr.status();
  EXPECT_EQ((*rr)->Pick().status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(recipes::RegisterEndpoint(*s1, "svc/api", {"10.0.0.1:80", "a"}).ok());
  ASSERT_TRUE(recipes::RegisterEndpoint(*s2, "svc/api", {"10.0.0.2:80", "b"}).ok());
  ASSERT_TRUE((*rr)->WaitFor([](const auto& eps) { return eps.size() == 2; }, Within(20000)).ok());

  std::multiset<std::string> picked;
  for (int i = 0; i < 4; ++i) {
    auto p = (*rr)->Pick();
    ASSERT_TRUE(p.ok());
    picked.insert(p->address);
  }
  EXPECT_EQ(picked.count("10.0.0.1:80"), 2u);
  EXPECT_EQ(picked.count("10.0.0.2:80"), 2u);

  auto sticky = ServiceResolver::Start(*client_, "svc/api", PickPolicy::kSticky, Within(10000));
  ASSERT_TRUE(sticky.ok());
  auto first = (*sticky)->Pick();
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*sticky)->Pick()->address, first->address);
  (*sticky)->MarkDown(first->address, std::chrono::minutes(5));
  auto other = (*sticky)->Pick();
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->address, first->address);

  auto random = ServiceResolver::Start(*client_, "svc/api", PickPolicy::kRandom, Within(10000));
  ASSERT_TRUE(random.ok());
  for (int i = 0; i < 5; ++i) EXPECT_TRUE((*random)->Pick().ok());

  // The second instance's process "dies": its registration expires and resolvers drop it.
  s2->Orphan();
  ASSERT_TRUE((*rr)->WaitFor([](const auto& eps) { return eps.size() == 1; }, Within(30000)).ok());
  EXPECT_EQ((*rr)->Pick()->address, "10.0.0.1:80");
  ASSERT_TRUE(recipes::UnregisterEndpoint(client_->kv(), "svc/api", "10.0.0.1:80").ok());
  ASSERT_TRUE((*rr)->WaitFor([](const auto& eps) { return eps.empty(); }, Within(20000)).ok());

  EXPECT_EQ(recipes::RegisterEndpoint(*s1, "", {"x:1", ""}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(recipes::RegisterEndpoint(*s1, "svc", {"a/b", ""}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ServiceResolver::Start(*client_, "", PickPolicy::kRandom).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// WaitForAsync holds no thread: the resolver's watch completes it; its deadline (the recipes'
// timer), a cancel and the resolver's destruction end it.
TEST_P(CoordinationTest, ResolverWaitForAsyncCompletesEndsAndCancels) {
  auto s1 = NewSession();
  ASSERT_TRUE(s1);
  auto rr = ServiceResolver::Start(*client_, "svc/async", PickPolicy::kRoundRobin, Within(10000));
  ASSERT_TRUE(rr.ok()) << rr.status();
  auto two = [](const std::vector<ServiceEndpoint>& eps) { return eps.size() >= 2; };
  auto one = [](const std::vector<ServiceEndpoint>& eps) { return eps.size() >= 1; };

  // Already true: completes at once.
  ASSERT_TRUE((*rr)->WaitForAsync([](const auto&) { return true; }).Get().ok());
  // Ends at its deadline, with the blocking form's error.
  auto late = (*rr)->WaitForAsync(two, Within(300)).Get();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  // Canceled through the future and through the caller's token.
  auto by_future = (*rr)->WaitForAsync(two, Within(30000));
  by_future.Cancel();
  EXPECT_EQ(by_future.Get().status().code(), absl::StatusCode::kCancelled);
  CallOptions call = Within(30000);
  call.cancel = CancelToken::Make();
  auto by_token = (*rr)->WaitForAsync(two, call);
  call.cancel.Cancel();
  EXPECT_EQ(by_token.Get().status().code(), absl::StatusCode::kCancelled);

  // Pending waits complete when a registration makes them true, in any number.
  auto first = (*rr)->WaitForAsync(one, Within(20000));
  auto second = (*rr)->WaitForAsync(one, Within(20000));
  auto never = (*rr)->WaitForAsync(two, Within(30000));
  ASSERT_TRUE(recipes::RegisterEndpoint(*s1, "svc/async", {"10.0.0.9:80", ""}).ok());
  EXPECT_TRUE(first.Get().ok());
  EXPECT_TRUE(second.Get().ok());
  EXPECT_FALSE(never.Ready());
  // The blocking form is the async one waited for.
  EXPECT_TRUE((*rr)->WaitFor(one, Within(20000)).ok());
  // Destroying the resolver ends the pending wait.
  rr->reset();
  auto ended = never.Get();
  EXPECT_EQ(ended.status().code(), absl::StatusCode::kCancelled) << ended.status();
  EXPECT_EQ(ended.status().message(), "resolver destroyed");
}

TEST_P(CoordinationTest, MultiLockTakesAllOrNone) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  ASSERT_TRUE(s1 && s2);
  Mutex single(s2, "ml/b");
  ASSERT_TRUE(single.Lock(Within(20000)).ok());
  MultiLock ml(s1, {"ml/c", "ml/a", "ml/b", "ml/a"});
  EXPECT_EQ(ml.names(), (std::vector<std::string>{"ml/a", "ml/b", "ml/c"}));
  // ml/b is held: the attempt times out and releases ml/a.
  EXPECT_EQ(ml.Lock(Within(500)).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(KeysUnder("ml/a/").empty());
  EXPECT_TRUE(KeysUnder("ml/c/").empty());
  ASSERT_TRUE(single.Unlock().ok());
  auto grants = ml.Lock(Within(20000));
  ASSERT_TRUE(grants.ok()) << grants.status();
  EXPECT_EQ(grants->size(), 3u);
  Txn t;
  t.If(ml.Guards()).Then({Op::Put("ml/protected", "1")});
  auto r = client_->kv().Commit(t);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->succeeded);
  auto try_single = single.TryLock(Within(20000));
  ASSERT_TRUE(try_single.ok());
  EXPECT_FALSE(try_single->has_value());
  ASSERT_TRUE(ml.Unlock().ok());
  EXPECT_EQ(ml.Unlock().code(), absl::StatusCode::kFailedPrecondition);
  r = client_->kv().Commit(t);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
  MultiLock empty(s1, {});
  EXPECT_EQ(empty.Lock().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(CoordinationTest, LeaderLatchHandsOverLeadership) {
  auto s1 = NewSession(/*ttl=*/2);
  auto s2 = NewSession();
  ASSERT_TRUE(s1 && s2);
  std::atomic<int> lost1{0};
  LeaderLatchOptions o1;
  o1.value = "one";
  o1.on_not_leader = [&] { ++lost1; };
  auto l1 = LeaderLatch::Start(s1, "latch/a", o1);
  ASSERT_TRUE(l1.ok()) << l1.status();
  auto g1 = (*l1)->Await(Within(20000));
  ASSERT_TRUE(g1.ok()) << g1.status();
  EXPECT_TRUE((*l1)->has_leadership());

  std::atomic<int> led2{0};
  LeaderLatchOptions o2;
  o2.value = "two";
  o2.on_leader = [&](const recipes::Grant&) { ++led2; };
  auto l2 = LeaderLatch::Start(s2, "latch/a", o2);
  ASSERT_TRUE(l2.ok());
  EXPECT_EQ((*l2)->Await(Within(300)).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE((*l2)->has_leadership());

  // The leader's session is lost: the latch reports it and the other takes over.
  s1->Orphan();
  auto g2 = (*l2)->Await(Within(30000));
  ASSERT_TRUE(g2.ok()) << g2.status();
  EXPECT_GT(g2->fencing_token, g1->fencing_token);
  // on_leader runs on the latch's thread after Await's waiters are released.
  EXPECT_TRUE(PollUntil([&] { return led2.load() == 1; }));
  EXPECT_EQ(led2.load(), 1);
  ASSERT_TRUE(PollUntil([&] { return !(*l1)->status().ok(); }));
  EXPECT_FALSE((*l1)->has_leadership());
  EXPECT_EQ(lost1.load(), 1);
  (*l2)->Close();
  EXPECT_FALSE((*l2)->has_leadership());
  EXPECT_TRUE(KeysUnder("latch/a/").empty());

  EXPECT_EQ(LeaderLatch::Start(s2, "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(CoordinationTest, LeaderSelectorsTakeTurnsExclusively) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  ASSERT_TRUE(s1 && s2);
  std::atomic<bool> inside{false};
  std::atomic<bool> overlap{false};
  std::atomic<int> turns[2] = {0, 0};
  std::atomic<int> refused_writes{0};
  auto make = [&](int who) {
    LeaderSelectorOptions o;
    o.value = "sel" + std::to_string(who);
    o.take_leadership = [&, who](const recipes::Grant& g, const CancelToken&) {
      if (inside.exchange(true)) overlap = true;
      Txn t;
      t.If({g.Guard()}).Then({Op::Put("selector/owner", std::to_string(who))});
      auto r = client_->kv().Commit(t);
      if (!r.ok() || !r->succeeded) ++refused_writes;
      ++turns[who];
      inside = false;
    };
    return o;
  };
  auto a = LeaderSelector::Start(s1, "selector/a", make(0));
  auto b = LeaderSelector::Start(s2, "selector/a", make(1));
  ASSERT_TRUE(a.ok() && b.ok());
  // Requeued campaigns go to the back of the queue: the two take turns.
  ASSERT_TRUE(PollUntil([&] { return turns[0] >= 3 && turns[1] >= 3; }));
  (*a)->Close();
  (*b)->Close();
  EXPECT_FALSE(overlap);
  EXPECT_EQ(refused_writes.load(), 0);
  EXPECT_EQ((*a)->status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(KeysUnder("selector/a/").empty());

  // Close cancels `lost` of a running leadership and waits for it to return.
  LeaderSelectorOptions hold;
  hold.take_leadership = [](const recipes::Grant&, const CancelToken& lost) {
    Promise<bool> done;
    lost.Register([done] { done.Set(true); });
    (void)done.future().Get();
  };
  auto c = LeaderSelector::Start(s1, "selector/b", hold);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(PollUntil([&] { return (*c)->leaderships() == 1; }));
  (*c)->Close();
  EXPECT_TRUE(KeysUnder("selector/b/").empty());

  LeaderSelectorOptions none;
  EXPECT_EQ(LeaderSelector::Start(s1, "selector/c", none).status().code(),
            absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Servers, CoordinationTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
