// The corruption check on a cluster whose client and peer URLs are https (with client
// certificates required on both): the leader asks the other members for HashKV over the peer
// transport, with its peer TLS settings (peer mTLS), so a member damaged offline still gets the
// CORRUPT alarm (docs/maintenance.md "Corruption checks"). Certificates come from the TLS tests'
// fixture.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/maintenance/maintenance_util.h"
#include "tests/tls/tls_fixture.h"

namespace cairn::tls_test {
namespace {

constexpr int kMembers = 3;

TEST(MaintenanceTlsCorruptTest, HttpsMembersDetectADamagedMember) {
  std::string dir = MakeTempDir("cairn-tls-corrupt");
  ASSERT_FALSE(dir.empty());
  Certs certs;
  ASSERT_TRUE(certs.Generate(dir).ok());
  std::vector<std::string> clients, peers;
  std::string cluster;
  for (int i = 0; i < kMembers; ++i) {
    clients.push_back("https://127.0.0.1:" + std::to_string(FreePort()));
    peers.push_back("https://127.0.0.1:" + std::to_string(FreePort()));
    cluster += (i ? "," : "") + std::string("c") + std::to_string(i) + "=" + peers[i];
  }
  auto args = [&](int i) {
    return std::vector<std::string>{"--listen-client-urls",
                                    clients[i],
                                    "--advertise-client-urls",
                                    clients[i],
                                    "--listen-peer-urls",
                                    peers[i],
                                    "--initial-advertise-peer-urls",
                                    peers[i],
                                    "--initial-cluster",
                                    cluster,
                                    "--initial-cluster-token",
                                    "tls-corrupt",
                                    "--cert-file",
                                    certs.Path("server.pem"),
                                    "--key-file",
                                    certs.Path("server.key"),
                                    "--trusted-ca-file",
                                    certs.Path("ca.pem"),
                                    "--client-cert-auth",
                                    "--peer-cert-file",
                                    certs.Path("peer.pem"),
                                    "--peer-key-file",
                                    certs.Path("peer.key"),
                                    "--peer-trusted-ca-file",
                                    certs.Path("ca.pem"),
                                    "--heartbeat-interval",
                                    "50",
                                    "--election-timeout",
                                    "500",
                                    "--experimental-corrupt-check-time",
                                    "300ms"};
  };
  std::vector<std::unique_ptr<Member>> members;
  for (int i = 0; i < kMembers; ++i) {
    std::string mdir = dir + "/c" + std::to_string(i);
    std::filesystem::create_directories(mdir);
    members.push_back(std::make_unique<Member>("c" + std::to_string(i), mdir));
    ASSERT_TRUE(members.back()->Start(args(i)).ok());
  }
  const std::vector<std::string> tls = {"--cacert", certs.Path("ca.pem"),
                                        "--cert",   certs.Path("client.pem"),
                                        "--key",    certs.Path("client.key")};
  for (int k = 0; k < 5; ++k) {
    CommandResult put;
    ASSERT_TRUE(PollUntil([&] {
      put = Etcdctl(clients[k % kMembers], tls, {"put", "k" + std::to_string(k), "v"});
      return put.exit_code == 0;
    })) << put.err
        << members[0]->Log();
  }
  // Every member at the same revision, then one is damaged offline and started again.
  ASSERT_TRUE(PollUntil([&] {
    for (const auto& c : clients) {
      if (Etcdctl(c, tls, {"get", "k4", "--consistency=s", "--print-value-only"}).out != "v\n") {
        return false;
      }
    }
    return true;
  }));
  const int victim = 2;
  members[victim]->Stop();
  ASSERT_TRUE(cairn::testing::maintenance::DamageNewestRevision(members[victim]->DataDir()).ok());
  ASSERT_TRUE(members[victim]->Start(args(victim)).ok());
  // Whichever member leads compares its HashKV with the others' over peer mTLS: a damaged
  // follower, or (when the damaged member leads) the healthy ones, get the alarm. Skipping the
  // peers (no TLS) would raise none.
  CommandResult list;
  EXPECT_TRUE(PollUntil(
      [&] {
        list = Etcdctl(clients[0], tls, {"alarm", "list"});
        return list.out.find("alarm:CORRUPT") != std::string::npos;
      },
      std::chrono::milliseconds(30000)))
      << list.out << list.err << members[0]->Log() << members[victim]->Log();
  members.clear();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::tls_test
