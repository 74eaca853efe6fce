#include "server/etcdserver/member_id.h"

#include "gtest/gtest.h"

namespace cairn::etcdserver {
namespace {

// etcd's well-known ids for a default single member (peer URL http://localhost:2380, token
// etcd-cluster): member 8e9e05c52164694d, cluster cdf818194e3a8c32.
TEST(MemberIdTest, DefaultMemberMatchesEtcd) {
  uint64_t member = ComputeMemberId({"http://localhost:2380"}, "etcd-cluster");
  EXPECT_EQ(IdToHex(member), "8e9e05c52164694d");
  EXPECT_EQ(IdToHex(ComputeClusterId({member})), "cdf818194e3a8c32");
}

TEST(MemberIdTest, PeerUrlOrderDoesNotMatterButTokenDoes) {
  EXPECT_EQ(ComputeMemberId({"http://a:1", "http://b:2"}, "t"),
            ComputeMemberId({"http://b:2", "http://a:1"}, "t"));
  EXPECT_NE(ComputeMemberId({"http://a:1"}, "t1"), ComputeMemberId({"http://a:1"}, "t2"));
  EXPECT_EQ(ComputeClusterId({1, 2, 3}), ComputeClusterId({3, 1, 2}));
}

}  // namespace
}  // namespace cairn::etcdserver
