// ServiceRegistration across a lost session: the instance's client is cut off from the server for
// longer than the TTL, so its lease expires and the registration disappears; once the connection
// is back, it registers again under a new session (once). Close() deregisters.
#include <atomic>

#include <gtest/gtest.h>

#include "cairn/recipes/discovery.h"
#include "tests/recipes/recipes_test_util.h"
#include "tests/recipes/tcp_proxy.h"

namespace cairn::recipes_test {
namespace {

class RegistrationTest : public RecipeTest {};

TEST_P(RegistrationTest, RegistersAgainAfterTheSessionIsLostAndTheServerIsBack) {
  std::string ep = cluster_->ClientEndpoint(0);
  TcpProxy proxy(std::stoi(ep.substr(ep.rfind(':') + 1)));
  ClientOptions o;
  o.endpoints = {proxy.endpoint()};
  o.default_timeout = std::chrono::milliseconds(2000);
  auto cut_off = Client::Connect(o);
  ASSERT_TRUE(cut_off.ok()) << cut_off.status();

  std::atomic<int> registered{0}, lost{0};
  recipes::ServiceRegistrationOptions ro;
  ro.ttl_seconds = 2;
  ro.on_registered = [&](LeaseId) { ++registered; };
  ro.on_lost = [&](const absl::Status&) { ++lost; };
  auto reg = recipes::ServiceRegistration::Start(**cut_off, "reg/svc", {"10.0.0.1:80", "m"}, ro,
                                                 Within(20000));
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_TRUE((*reg)->registered());
  EXPECT_EQ((*reg)->registrations(), 1);
  auto first = KeysUnder("reg/svc/");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].key, "reg/svc/10.0.0.1:80");

  proxy.Cut();
  // The server expires the lease (the registration is gone); the process learns that its
  // session is lost from its keeper, during the cut (no renewal within the TTL) or at the latest
  // when it reaches the server again (the lease is not found).
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("reg/svc/").empty(); }, std::chrono::seconds(30)));
  proxy.Restore();
  ASSERT_TRUE(PollUntil(
      [&] {
        auto now = KeysUnder("reg/svc/");
        return now.size() == 1 && now[0].lease != first[0].lease;
      },
      std::chrono::seconds(30)));
  EXPECT_TRUE(PollUntil([&] { return (*reg)->registrations() == 2 && registered.load() == 2; }));
  EXPECT_EQ(lost.load(), 1);
  EXPECT_TRUE((*reg)->registered());
  EXPECT_TRUE((*reg)->status().ok()) << (*reg)->status();

  EXPECT_TRUE((*reg)->Close().ok());
  EXPECT_TRUE(KeysUnder("reg/svc/").empty());
  EXPECT_TRUE((*reg)->Close().ok());  // idempotent
  EXPECT_FALSE((*reg)->registered());
}

TEST_P(RegistrationTest, BadInput) {
  recipes::ServiceRegistrationOptions ro;
  EXPECT_EQ(recipes::ServiceRegistration::Start(*client_, "", {"h:1", ""}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(recipes::ServiceRegistration::Start(*client_, "s", {"", ""}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(recipes::ServiceRegistration::Start(*client_, "s", {"a/b", ""}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(recipes::ServiceRegistration::Start(*client_, "s", {"http://a/b", "", "i1"}).ok());
  ro.ttl_seconds = 0;
  EXPECT_EQ(recipes::ServiceRegistration::Start(*client_, "s", {"h:1", ""}, ro).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(KeysUnder("s/").empty());  // the one that started was closed when destroyed
}

INSTANTIATE_TEST_SUITE_P(Servers, RegistrationTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
