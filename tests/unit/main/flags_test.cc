#include "server/main/flags.h"

#include "gtest/gtest.h"

namespace cairn::main {
namespace {

TEST(FlagsTest, DefaultsAreTheEmbeddedSingleMember) {
  auto f = ParseFlags({});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->server.name, "default");
  EXPECT_EQ(f->listen_client_urls, std::vector<std::string>{"http://127.0.0.1:2379"});
  EXPECT_EQ(f->server.advertise_client_urls, f->listen_client_urls);
  EXPECT_EQ(f->server.max_request_bytes, 1572864);
  EXPECT_EQ(f->server.max_txn_ops, 128);
}

// etcd's TLS flags (docs/security.md) fill the client and peer TLS settings.
TEST(FlagsTest, TlsFlagsFillClientAndPeerSettings) {
  auto f = ParseFlags(
      {"--cert-file=c.pem", "--key-file", "c.key", "--trusted-ca-file=ca.pem", "--client-cert-auth",
       "--peer-cert-file=p.pem", "--peer-key-file=p.key", "--peer-trusted-ca-file=pca.pem",
       "--peer-client-cert-auth", "--peer-cert-allowed-cn=peer", "--peer-auto-tls",
       "--auto-tls=false",
       "--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA",
       "--tls-min-version=TLS1.2", "--tls-max-version=TLS1.3"});
  ASSERT_TRUE(f.ok()) << f.status();
  const auto& c = f->server.client_tls;
  const auto& p = f->server.peer_tls;
  EXPECT_EQ(c.cert_file, "c.pem");
  EXPECT_EQ(c.key_file, "c.key");
  EXPECT_EQ(c.trusted_ca_file, "ca.pem");
  EXPECT_TRUE(c.client_cert_auth);
  EXPECT_FALSE(c.auto_tls);
  EXPECT_EQ(c.allowed_cn, "");
  EXPECT_EQ(p.cert_file, "p.pem");
  EXPECT_EQ(p.key_file, "p.key");
  EXPECT_EQ(p.trusted_ca_file, "pca.pem");
  EXPECT_TRUE(p.client_cert_auth);
  EXPECT_TRUE(p.auto_tls);
  EXPECT_EQ(p.allowed_cn, "peer");
  for (const auto* t : {&c, &p}) {
    EXPECT_EQ(t->cipher_suites.size(), 2u);
    EXPECT_EQ(t->min_version, "TLS1.2");
    EXPECT_EQ(t->max_version, "TLS1.3");
  }
}

TEST(FlagsTest, GoFlagSyntax) {
  auto f = ParseFlags({"--name=n1", "-data-dir", "/tmp/x", "--max-txn-ops", "64",
                       "--listen-client-urls=http://127.0.0.1:1,http://127.0.0.1:2", "--version"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->server.name, "n1");
  EXPECT_EQ(f->server.data_dir, "/tmp/x");
  EXPECT_EQ(f->server.max_txn_ops, 64);
  EXPECT_EQ(f->listen_client_urls.size(), 2u);
  EXPECT_TRUE(f->version);
  auto d = ParseFlags({"--experimental-watch-progress-notify-interval=1m30s"});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->server.watch_progress_notify_interval_ms, 90000);
  EXPECT_FALSE(ParseFlags({"--experimental-watch-progress-notify-interval=10x"}).ok());
}

TEST(FlagsTest, BadFlagsAreErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--no-such-flag"},
           {"--max-txn-ops=abc"},
           {"--max-txn-ops=0"},
           {"--max-request-bytes"},
           {"--log-level=loud"},
           {"--version=maybe"},
           {"positional"},
           {"--initial-cluster-state=old"},
           {"--initial-cluster=other=http://localhost:2381"},
           {"--initial-cluster=default=http://10.0.0.1:2380"},
           {"--heartbeat-interval=0"},
           {"--snapshot-count=x"},
       }) {
    EXPECT_FALSE(ParseFlags(args).ok()) << args[0];
  }
  EXPECT_TRUE(ParseFlags({"--initial-cluster=default=http://localhost:2380"}).ok());
  auto multi = ParseFlags({"--initial-cluster=default=http://localhost:2380,other=http://h:2381",
                           "--initial-cluster-state", "existing", "--election-timeout=500",
                           "--heartbeat-interval=50", "--snapshot-count=10",
                           "--listen-peer-urls=http://127.0.0.1:0"});
  ASSERT_TRUE(multi.ok()) << multi.status();
  EXPECT_EQ(multi->server.initial_cluster.size(), 2u);
  EXPECT_TRUE(multi->server.initial_cluster_state_existing);
  EXPECT_EQ(multi->server.election_timeout_ms, 500);
  EXPECT_EQ(multi->server.heartbeat_interval_ms, 50);
  EXPECT_EQ(multi->server.snapshot_count, 10u);
  EXPECT_EQ(multi->server.listen_peer_urls.size(), 1u);
}

TEST(FlagsTest, UsageListsEveryFlagWithDefault) {
  std::string u = Usage();
  for (const char* name :
       {"--name", "--data-dir", "--listen-client-urls", "--advertise-client-urls",
        "--max-request-bytes", "--max-txn-ops", "--log-level", "--initial-cluster-token"}) {
    EXPECT_NE(u.find(name), std::string::npos) << name;
  }
  EXPECT_NE(u.find("(default: 1572864)"), std::string::npos);
}

}  // namespace
}  // namespace cairn::main
