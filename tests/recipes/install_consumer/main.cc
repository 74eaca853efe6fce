// Starts a 3-member cluster with the installed test kit and runs an Election on it; prints
// "consumer: ok" and exits 0 on success, the error and 1 otherwise.
#include <cstdio>

#include "cairn/recipes/election.h"
#include "cairn/recipes/session.h"
#include "cairn/testing/cluster.h"

namespace {

int Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "consumer: %s: %s\n", what, status.ToString().c_str());
  return 1;
}

}  // namespace

int main() {
  cairn::testing::TestingClusterOptions options;
  options.members = 3;
  auto cluster = cairn::testing::TestingCluster::Start(options);
  if (!cluster.ok()) return Fail("start", cluster.status());
  auto client = (*cluster)->Connect();
  if (!client.ok()) return Fail("connect", client.status());
  cairn::recipes::SessionOptions so;
  so.ttl_seconds = 5;
  auto session = cairn::recipes::Session::Create(**client, so);
  if (!session.ok()) return Fail("session", session.status());
  cairn::recipes::Election election(*session, "consumer/election");
  auto grant = election.Campaign("me");
  if (!grant.ok()) return Fail("campaign", grant.status());
  auto leader = cairn::recipes::GetLeader((*client)->kv(), "consumer/election");
  if (!leader.ok()) return Fail("leader", leader.status());
  if (leader->value != "me" || leader->create_revision != grant->fencing_token) {
    std::fprintf(stderr, "consumer: unexpected leader %s\n", leader->value.c_str());
    return 1;
  }
  auto raft_leader = (*cluster)->Leader();
  if (!raft_leader.ok()) return Fail("raft leader", raft_leader.status());
  std::printf("consumer: ok (raft leader m%d, fencing token %lld)\n", *raft_leader,
              static_cast<long long>(grant->fencing_token));
  return 0;
}
