// Lessor timers (with a fake clock) and the store's lease entries: grant, attach, move, revoke in
// one revision, checkpoint, restart.
#include "server/lease/lessor.h"
#include "cairnpb/internal.pb.h"
#include "tests/unit/mvcc/apply_util.h"
#include "tests/unit/mvcc/store_fixture.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "server/base/errors.h"

namespace cairn::lease {
namespace {

using base::ErrorKind;
using base::IsError;

TEST(LessorTest, RenewExpiryAndRevokeHandOut) {
  int64_t now = 1000;
  Lessor lessor([&] { return now; }, /*min_ttl_seconds=*/2);
  lessor.OnGranted({7, 10, 0});
  bool cp = true;
  EXPECT_EQ(*lessor.Renew(7, &cp), 10);
  EXPECT_FALSE(cp);
  now += 9000;
  EXPECT_TRUE(lessor.Expired(10).empty());
  EXPECT_EQ(lessor.Get(7)->remaining_ms, 1000);
  now += 1000;
  EXPECT_EQ(lessor.Expired(10), std::vector<int64_t>{7});
  EXPECT_TRUE(lessor.Expired(10).empty());  // handed out once
  EXPECT_TRUE(IsError(lessor.Renew(7, &cp).status(), ErrorKind::kLeaseNotFound));
  lessor.RevokeFailed(7);
  EXPECT_EQ(lessor.Expired(10), std::vector<int64_t>{7});
  lessor.OnRevoked(7);
  EXPECT_FALSE(lessor.Get(7).has_value());
  EXPECT_TRUE(IsError(lessor.Renew(99, &cp).status(), ErrorKind::kLeaseNotFound));
}

TEST(LessorTest, RestoreUsesCheckpointedRemainingTtl) {
  int64_t now = 0;
  Lessor lessor([&] { return now; }, 2);
  lessor.Restore({{1, 60, 0}, {2, 60, 5000}});
  EXPECT_EQ(lessor.Get(1)->remaining_ms, 60000);  // never checkpointed: full TTL
  EXPECT_EQ(lessor.Get(2)->remaining_ms, 5000);   // not reset to 60 s by the restart
  bool cp = false;
  EXPECT_EQ(*lessor.Renew(2, &cp), 60);
  EXPECT_TRUE(cp);  // the caller must clear the checkpoint
}

class LeaseStoreTest : public mvcc::testing::StoreFixture {
 protected:
  mvcc::ApplyResult Apply(const cairnpb::InternalRequest& r) {
    auto res = mvcc::testing::ApplyRequest(kv_.get(), kv_->applied_index() + 1, r);
    backend_->Sync();
    kv_->Publish();
    return res;
  }
  mvcc::ApplyResult Grant(int64_t id, int64_t ttl) {
    cairnpb::InternalRequest r;
    r.mutable_lease_grant()->set_id(id);
    r.mutable_lease_grant()->set_ttl(ttl);
    return Apply(r);
  }
  mvcc::ApplyResult Put(const std::string& k, int64_t lease) {
    cairnpb::InternalRequest r;
    r.mutable_put()->set_key(k);
    r.mutable_put()->set_value("v");
    r.mutable_put()->set_lease(lease);
    return Apply(r);
  }
  mvcc::ApplyResult Revoke(int64_t id) {
    cairnpb::InternalRequest r;
    r.mutable_lease_revoke()->set_id(id);
    return Apply(r);
  }
};

TEST_F(LeaseStoreTest, GrantAttachMoveRevokeInOneRevision) {
  EXPECT_TRUE(Grant(1, 30).status.ok());
  EXPECT_TRUE(IsError(Grant(1, 30).status, ErrorKind::kLeaseExist));
  EXPECT_TRUE(Grant(2, 30).status.ok());
  EXPECT_TRUE(IsError(Put("x", 3).status, ErrorKind::kLeaseNotFound));
  Put("a", 1);
  Put("b", 1);
  Put("c", 1);
  Put("c", 2);  // moves c to lease 2
  EXPECT_EQ(kv_->LeaseKeys(kv_->View(), 1), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(kv_->LeaseKeys(kv_->View(), 2), (std::vector<std::string>{"c"}));
  int64_t before = kv_->View().revision;
  mvcc::ApplyResult r = Revoke(1);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.revision, before + 1);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].kv().key(), "a");
  EXPECT_EQ(r.events[1].kv().key(), "b");
  EXPECT_TRUE(IsError(Revoke(1).status, ErrorKind::kLeaseNotFound));
  EXPECT_TRUE(kv_->LeaseKeys(kv_->View(), 1).empty());
  // A delete detaches the key.
  cairnpb::InternalRequest del;
  del.mutable_delete_range()->set_key("c");
  Apply(del);
  EXPECT_TRUE(kv_->LeaseKeys(kv_->View(), 2).empty());
}

TEST_F(LeaseStoreTest, LeasesAndCheckpointsSurviveRestart) {
  Grant(5, 100);
  cairnpb::InternalRequest cp;
  auto* c = cp.mutable_lease_checkpoint()->add_checkpoints();
  c->set_id(5);
  c->set_remaining_ttl(42000);
  Apply(cp);
  Put("k", 5);
  Reopen();
  auto leases = kv_->Leases();
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].id, 5);
  EXPECT_EQ(leases[0].ttl_seconds, 100);
  EXPECT_EQ(leases[0].remaining_ms, 42000);
  EXPECT_TRUE(Put("k2", 5).status.ok());  // the lease still exists after the restart
  EXPECT_EQ(kv_->LeaseKeys(kv_->View(), 5), (std::vector<std::string>{"k", "k2"}));
}

}  // namespace
}  // namespace cairn::lease
