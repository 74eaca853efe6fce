// Election observation across a lost connection: a LeaderObserver whose client is cut off from
// the server while leadership changes (twice, one change compacted away) reports the current
// leader once it reconnects, and keeps following later changes.
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/recipes/election.h"
#include "tests/recipes/recipes_test_util.h"
#include "tests/recipes/tcp_proxy.h"

namespace cairn::recipes_test {
namespace {

class ObserveReconnectTest : public RecipeTest {};

TEST_P(ObserveReconnectTest, ObserverFollowsTheLeaderAcrossACutAndCompaction) {
  std::string ep = cluster_->ClientEndpoint(0);
  TcpProxy proxy(std::stoi(ep.substr(ep.rfind(':') + 1)));
  ClientOptions o;
  o.endpoints = {proxy.endpoint()};
  o.default_timeout = std::chrono::milliseconds(15000);
  auto cut_off = Client::Connect(o);
  ASSERT_TRUE(cut_off.ok()) << cut_off.status();

  auto s1 = NewSession(/*ttl=*/30);
  auto s2 = NewSession(/*ttl=*/30);
  auto s3 = NewSession(/*ttl=*/30);
  ASSERT_TRUE(s1 && s2 && s3);
  recipes::Election e1(s1, "observe/elect"), e2(s2, "observe/elect"), e3(s3, "observe/elect");
  ASSERT_TRUE(e1.Campaign("one", Within(20000)).ok());

  std::mutex mu;
  std::vector<std::string> seen;
  auto obs = recipes::LeaderObserver::Start((*cut_off)->kv(), (*cut_off)->watch(), "observe/elect",
                                            [&](const recipes::LeaderInfo& l) {
                                              std::lock_guard<std::mutex> lock(mu);
                                              seen.push_back(l.value);
                                            });
  ASSERT_TRUE(obs.ok()) << obs.status();
  auto is = [](const std::string& v) {
    return [v](const recipes::LeaderInfo& l) { return l.value == v; };
  };
  ASSERT_TRUE((*obs)->WaitFor(is("one"), Within(20000)).ok());

  // Cut off: "one" resigns, "two" leads and resigns, "three" leads; the history is compacted,
  // so the observer's watch cannot resume where it stopped.
  // (Queued one after the other, so "two" is next in line and "three" after it.)
  Future<recipes::Grant> two = e2.CampaignAsync("two", Within(30000));
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("observe/elect/").size() == 2; }));
  Future<recipes::Grant> three = e3.CampaignAsync("three", Within(30000));
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("observe/elect/").size() == 3; }));
  proxy.Cut();
  ASSERT_TRUE(e1.Resign().ok());
  ASSERT_TRUE(two.Get().ok());
  ASSERT_TRUE(e2.Resign().ok());
  ASSERT_TRUE(three.Get().ok());
  auto last = client_->kv().Get("observe/elect/");
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(client_->kv().Compact(last->header.revision).ok());
  proxy.Restore();

  auto now = (*obs)->WaitFor(is("three"), Within(30000));
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->key, e3.key());
  // And it goes on following.
  ASSERT_TRUE(e3.Proclaim("three-again").ok());
  EXPECT_TRUE((*obs)->WaitFor(is("three-again"), Within(30000)).ok());
  // The callback runs just after waiters are woken: wait for it too.
  EXPECT_TRUE(PollUntil([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !seen.empty() && seen.back() == "three-again";
  }));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen.front(), "one");
}

INSTANTIATE_TEST_SUITE_P(Servers, ObserveReconnectTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
