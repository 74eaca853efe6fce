// Election: campaign/proclaim/resign with an observer following the leaders, the next candidate
// taking over when the leader's lease expires (and the old leader's guard refused), bad input,
// and agreement with `etcdctl elect` in both directions.
#include "cairn/recipes/election.h"

#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using recipes::Election;
using recipes::Grant;
using recipes::LeaderInfo;

class ElectionTest : public RecipeTest {};

auto ValueIs(const std::string& v) {
  return [v](const LeaderInfo& l) { return l.value == v; };
}

TEST_P(ElectionTest, CampaignProclaimResignAndObserve) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  ASSERT_TRUE(s1 && s2);
  Election e1(s1, "elect/a");
  Election e2(s2, "elect/a");

  auto none = e1.Leader(Within(10000));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound) << none.status();

  std::mutex seen_mu;
  std::vector<std::string> seen;
  auto obs = e1.Observe(
      [&](const LeaderInfo& l) {
        std::lock_guard<std::mutex> lock(seen_mu);
        seen.push_back(l.value);
      },
      Within(10000));
  ASSERT_TRUE(obs.ok()) << obs.status();

  auto g1 = e1.Campaign("one", Within(20000));
  ASSERT_TRUE(g1.ok()) << g1.status();
  auto leader = e2.Leader(Within(10000));
  ASSERT_TRUE(leader.ok());
  EXPECT_EQ(leader->value, "one");
  EXPECT_EQ(leader->key, e1.key());
  EXPECT_EQ(leader->create_revision, g1->fencing_token);
  ASSERT_TRUE((*obs)->WaitFor(ValueIs("one"), Within(20000)).ok());

  ASSERT_TRUE(e1.Proclaim("one-b", Within(10000)).ok());
  ASSERT_TRUE((*obs)->WaitFor(ValueIs("one-b"), Within(20000)).ok());
  EXPECT_EQ(e2.Proclaim("nope", Within(10000)).code(), absl::StatusCode::kFailedPrecondition);

  absl::StatusOr<Grant> g2;
  std::atomic<bool> elected{false};
  std::thread t([&] {
    g2 = e2.Campaign("two", Within(60000));
    elected = true;
  });
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("elect/a/").size() == 2; }));
  EXPECT_FALSE(elected);
  ASSERT_TRUE(e1.Resign(Within(10000)).ok());
  t.join();
  ASSERT_TRUE(g2.ok()) << g2.status();
  EXPECT_GT(g2->fencing_token, g1->fencing_token);
  ASSERT_TRUE((*obs)->WaitFor(ValueIs("two"), Within(20000)).ok());
  {
    std::lock_guard<std::mutex> lock(seen_mu);
    EXPECT_EQ(seen, (std::vector<std::string>{"one", "one-b", "two"}));
  }
  EXPECT_FALSE(e1.leadership().has_value());
  ASSERT_TRUE(e2.leadership().has_value());
  EXPECT_TRUE(e1.Resign().ok());  // not leader: no-op
}

TEST_P(ElectionTest, BadInput) {
  auto s = NewSession();
  ASSERT_NE(s, nullptr);
  Election empty(s, "");
  EXPECT_EQ(empty.Campaign("v", Within(5000)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.Leader(Within(5000)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.Observe(nullptr, Within(5000)).status().code(),
            absl::StatusCode::kInvalidArgument);
  Election e(s, "elect/bad");
  EXPECT_EQ(e.Proclaim("v").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(e.Campaign("v", Within(20000)).ok());
  EXPECT_EQ(e.Campaign("v", Within(5000)).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s->Close().ok());
  Election after(s, "elect/bad2");
  EXPECT_EQ(after.Campaign("v", Within(5000)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_P(ElectionTest, ExpiredLeaderIsReplacedAndItsGuardRefused) {
  auto s1 = NewSession(/*ttl=*/2);
  auto s2 = NewSession();
  ASSERT_TRUE(s1 && s2);
  Election e1(s1, "elect/expire");
  Election e2(s2, "elect/expire");
  auto g1 = e1.Campaign("one", Within(20000));
  ASSERT_TRUE(g1.ok()) << g1.status();
  absl::StatusOr<Grant> g2;
  std::thread t([&] { g2 = e2.Campaign("two", Within(60000)); });
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("elect/expire/").size() == 2; }));
  s1->Orphan();
  t.join();
  ASSERT_TRUE(g2.ok()) << g2.status();
  Txn stale;
  stale.If({g1->Guard()}).Then({Op::Put("elect-fenced", "old")});
  auto r = client_->kv().Commit(stale);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
  EXPECT_EQ(e1.Proclaim("again").code(), absl::StatusCode::kFailedPrecondition);
  auto leader = e2.Leader();
  ASSERT_TRUE(leader.ok());
  EXPECT_EQ(leader->value, "two");
}

// LeaderObserver::WaitForAsync holds no thread: the observer's updates complete it; its deadline
// (the recipes' timer), a cancel and the observer's destruction end it.
TEST_P(ElectionTest, ObserverWaitForAsyncCompletesEndsAndCancels) {
  auto s = NewSession();
  ASSERT_NE(s, nullptr);
  Election e(s, "elect/async");
  auto obs = e.Observe(nullptr, Within(10000));
  ASSERT_TRUE(obs.ok()) << obs.status();

  auto late = (*obs)->WaitForAsync(ValueIs("x"), Within(300)).Get();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  auto by_future = (*obs)->WaitForAsync(ValueIs("x"), Within(30000));
  by_future.Cancel();
  EXPECT_EQ(by_future.Get().status().code(), absl::StatusCode::kCancelled);

  auto first = (*obs)->WaitForAsync(ValueIs("me"), Within(20000));
  auto second = (*obs)->WaitForAsync(ValueIs("me"), Within(20000));
  auto never = (*obs)->WaitForAsync(ValueIs("someone else"), Within(30000));
  auto g = e.Campaign("me", Within(10000));
  ASSERT_TRUE(g.ok()) << g.status();
  auto seen = first.Get();
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->create_revision, g->fencing_token);
  EXPECT_TRUE(second.Get().ok());
  // Already true: at once; the blocking form is the async one waited for.
  EXPECT_TRUE((*obs)->WaitForAsync(ValueIs("me")).Get().ok());
  EXPECT_TRUE((*obs)->WaitFor(ValueIs("me"), Within(1000)).ok());
  EXPECT_FALSE(never.Ready());
  obs->reset();
  auto ended = never.Get();
  EXPECT_EQ(ended.status().code(), absl::StatusCode::kCancelled) << ended.status();
  EXPECT_EQ(ended.status().message(), "observer destroyed");
  ASSERT_TRUE(e.Resign().ok());
}

TEST_P(ElectionTest, AgreesWithEtcdctlElect) {
  // etcdctl campaigns first and leads; our candidate waits.
  BackgroundCommand candidate(Etcdctl({"elect", "elect/interop", "from-etcdctl"}),
                              TempPath("elect"));
  ASSERT_TRUE(candidate.started());
  auto s = NewSession();
  ASSERT_NE(s, nullptr);
  Election e(s, "elect/interop");
  auto obs = e.Observe(nullptr, Within(10000));
  ASSERT_TRUE(obs.ok()) << obs.status();
  ASSERT_TRUE((*obs)->WaitFor(ValueIs("from-etcdctl"), Within(20000)).ok()) << candidate.Output();
  ASSERT_TRUE(PollUntil([&] {
    return candidate.Output().find("from-etcdctl") != std::string::npos;
  })) << candidate.Output();

  absl::StatusOr<Grant> g;
  std::atomic<bool> elected{false};
  std::thread t([&] {
    g = e.Campaign("from-cairn", Within(60000));
    elected = true;
  });
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("elect/interop/").size() == 2; }));
  EXPECT_FALSE(elected);
  EXPECT_EQ(candidate.Terminate(), 0) << candidate.Output();  // etcdctl resigns
  t.join();
  ASSERT_TRUE(g.ok()) << g.status();

  // etcdctl's observer sees our candidate as leader.
  BackgroundCommand listener(Etcdctl({"elect", "-l", "elect/interop"}), TempPath("listen"));
  ASSERT_TRUE(listener.started());
  EXPECT_TRUE(PollUntil([&] { return listener.Output().find("from-cairn") != std::string::npos; }))
      << listener.Output();
  listener.Terminate();
  ASSERT_TRUE(e.Resign().ok());
}

INSTANTIATE_TEST_SUITE_P(Servers, ElectionTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
