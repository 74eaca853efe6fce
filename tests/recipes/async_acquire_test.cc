// The recipes' async forms (Mutex::LockAsync, Election::CampaignAsync/ProclaimAsync/ResignAsync,
// a resumed Election) and sessions that adopt a lease without keeping it alive or revoking it
// (what the server's v3lock/v3election services are built on), against etcd and cairn.
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "cairn/recipes/election.h"
#include "cairn/recipes/mutex.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using recipes::Election;
using recipes::Grant;
using recipes::Mutex;
using recipes::Session;
using recipes::SessionOptions;

class AsyncRecipeTest : public RecipeTest {
 protected:
  // A session on `lease` that neither keeps it alive nor revokes it.
  std::shared_ptr<Session> Adopt(LeaseId lease) {
    SessionOptions so;
    so.lease = lease;
    so.keep_alive = false;
    so.revoke_on_close = false;
    auto s = Session::Create(*client_, so);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : nullptr;
  }
  LeaseId NewLease(int64_t ttl = 60) {
    auto g = client_->lease().Grant(ttl);
    EXPECT_TRUE(g.ok()) << g.status();
    return g.ok() ? g->id : 0;
  }
};

TEST_P(AsyncRecipeTest, AdoptedLeaseIsNeitherKeptAliveNorRevoked) {
  LeaseId lease = NewLease();
  auto session = Adopt(lease);
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->lease(), lease);
  EXPECT_EQ(session->ttl_seconds(), 0);
  Mutex m(session, "adopt/l");
  auto g = m.LockAsync(Within(20000)).Get();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->lease, lease);
  EXPECT_TRUE(session->Close().ok());
  session.reset();
  // The lease and its key outlive the session.
  auto ttl = client_->lease().TimeToLive(lease);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_GT(ttl->ttl_seconds, 0);
  ASSERT_EQ(KeysUnder("adopt/l/").size(), 1u);
  EXPECT_EQ(KeysUnder("adopt/l/")[0].lease, lease);

  // An adopted lease that does not exist fails at the first write, as etcd's server does.
  auto unknown = Adopt(0x7eadbeef);
  ASSERT_NE(unknown, nullptr);
  Mutex mu(unknown, "adopt/u");
  auto fail = mu.LockAsync(Within(20000)).Get();
  EXPECT_EQ(ErrorKindOf(fail.status()), ErrorKind::kLeaseNotFound) << fail.status();
  EXPECT_TRUE(KeysUnder("adopt/u/").empty());
}

TEST_P(AsyncRecipeTest, LockAsyncWaitsInOrderAndCancelRemovesItsKey) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  auto s2 = NewSession();
  ASSERT_TRUE(s0 && s1 && s2);
  Mutex m0(s0, "async/l");
  Mutex m1(s1, "async/l");
  Mutex m2(s2, "async/l");
  ASSERT_TRUE(m0.LockAsync(Within(20000)).Get().ok());

  CallOptions canceled;
  canceled.cancel = CancelToken::Make();
  Future<Grant> f1 = m1.LockAsync(canceled);
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/l/").size() == 2; }));
  Future<Grant> f2 = m2.LockAsync();
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/l/").size() == 3; }));
  EXPECT_FALSE(f1.Ready());
  canceled.cancel.Cancel();
  auto r1 = f1.Get();
  EXPECT_EQ(r1.status().code(), absl::StatusCode::kCancelled) << r1.status();
  EXPECT_TRUE(PollUntil([&] { return KeysUnder("async/l/").size() == 2; }));
  EXPECT_FALSE(f2.Ready());

  ASSERT_TRUE(m0.Unlock().ok());
  auto r2 = f2.Get();
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->key, m2.key());
  EXPECT_TRUE(m2.grant().has_value());
  EXPECT_TRUE(m2.Unlock().ok());
  EXPECT_TRUE(KeysUnder("async/l/").empty());
}

TEST_P(AsyncRecipeTest, CampaignProclaimResignAsyncAndResume) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  ASSERT_TRUE(s0 && s1);
  Election e0(s0, "async/e");
  Election e1(s1, "async/e");
  auto lead = e0.CampaignAsync("a", Within(20000)).Get();
  ASSERT_TRUE(lead.ok()) << lead.status();
  Future<Grant> waiting = e1.CampaignAsync("b");
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/e/").size() == 2; }));

  // A resumed election acts on the leadership it is given.
  Election resumed(s0, "async/e", *lead);
  auto h = resumed.ProclaimAsync("a2", Within(20000)).Get();
  ASSERT_TRUE(h.ok()) << h.status();
  auto leader = e1.Leader(Within(20000));
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->value, "a2");
  EXPECT_EQ(leader->mod_revision, h->revision);
  EXPECT_FALSE(waiting.Ready());

  // A stale leadership cannot proclaim.
  Grant stale = *lead;
  stale.fencing_token -= 1;
  Election wrong(s0, "async/e", stale);
  auto refused = wrong.ProclaimAsync("x", Within(20000)).Get();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();

  auto resigned = resumed.ResignAsync(Within(20000)).Get();
  ASSERT_TRUE(resigned.ok()) << resigned.status();
  auto next = waiting.Get();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->key, e1.key());
  EXPECT_GE(next->header.revision, resigned->revision);  // read after the resign
  auto r = e1.ResignAsync(Within(20000)).Get();
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(KeysUnder("async/e/").empty());
}

INSTANTIATE_TEST_SUITE_P(Servers, AsyncRecipeTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
