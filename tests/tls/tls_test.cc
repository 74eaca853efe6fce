// TLS and mTLS on cairn's client and peer URLs (docs/security.md), with certificates made by the
// openssl CLI in a temporary directory: etcdctl, the SDK and python-etcd3 with client
// certificates; the refusals (no client certificate, wrong CA, expired, plaintext on a TLS port,
// a peer CN that is not allowed), each leaving the member serving; rotation while a client stays
// connected; version and cipher bounds; auto-tls; a 3-member cluster whose peers use mTLS.
#include <filesystem>
#include <memory>

#include <gtest/gtest.h>

#include "cairn/client.h"
#include "tests/tls/tls_fixture.h"

namespace cairn::tls_test {
namespace {

constexpr const char* kFastRaft[] = {"--heartbeat-interval", "50", "--election-timeout", "500"};

std::vector<std::string> FastRaft() { return {std::begin(kFastRaft), std::end(kFastRaft)}; }

// One member with mutual TLS on its client URL, shared by the client-side tests.
class MutualTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("cairn-tls-test"));
    certs_ = new Certs();
    absl::Status s = certs_->Generate(*dir_);
    ASSERT_TRUE(s.ok()) << s;
    port_ = FreePort();
    member_ = new Member("mtls", *dir_);
    std::vector<std::string> args = {"--listen-client-urls", Url(),
                                     "--cert-file",          certs_->Path("server.pem"),
                                     "--key-file",           certs_->Path("server.key"),
                                     "--trusted-ca-file",    certs_->Path("ca.pem"),
                                     "--client-cert-auth"};
    for (const auto& a : FastRaft()) args.push_back(a);
    ASSERT_TRUE(member_->Start(args).ok());
    ASSERT_TRUE(PollUntil([] {
      return Etcdctl(Url(), GoodFlags(), {"get", "x"}).exit_code == 0;
    })) << member_->Log();
  }
  static void TearDownTestSuite() {
    delete member_;
    delete certs_;
    if (!dir_->empty()) std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  static std::string Url() { return "https://127.0.0.1:" + std::to_string(port_); }
  static std::vector<std::string> GoodFlags() {
    return {"--cacert", certs_->Path("ca.pem"),    "--cert", certs_->Path("client.pem"),
            "--key",    certs_->Path("client.key")};
  }
  // A call expected to be refused: short timeouts (etcdctl takes the last value of a flag).
  static CommandResult Refused(const std::string& url, std::vector<std::string> flags,
                               const std::vector<std::string>& args) {
    for (const std::string a : {"--dial-timeout", "1s", "--command-timeout", "1s"}) {
      flags.push_back(a);
    }
    return Etcdctl(url, flags, args);
  }
  // The member still serves a client with a good certificate.
  static void ExpectStillServing() {
    EXPECT_TRUE(member_->Running());
    CommandResult r = Etcdctl(Url(), GoodFlags(), {"put", "alive", "yes"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  // Bytes of the log written after `offset` contain `needle` (bounded wait).
  static bool LogShows(size_t offset, const std::string& needle) {
    return PollUntil(
        [&] {
          std::string log = member_->Log();
          return log.size() > offset && log.find(needle, offset) != std::string::npos;
        },
        std::chrono::milliseconds(5000));
  }

  static std::string* dir_;
  static Certs* certs_;
  static Member* member_;
  static int port_;
};
std::string* MutualTlsTest::dir_ = nullptr;
Certs* MutualTlsTest::certs_ = nullptr;
Member* MutualTlsTest::member_ = nullptr;
int MutualTlsTest::port_ = 0;

// etcdctl, the SDK and python-etcd3 with a client certificate.
TEST_F(MutualTlsTest, ClientsWithACertificateAreServed) {
  {
    SCOPED_TRACE("EtcdctlWithClientCertificate");
    CommandResult put = Etcdctl(Url(), GoodFlags(), {"put", "k", "v"});
    ASSERT_EQ(put.exit_code, 0) << put.err;
    CommandResult get = Etcdctl(Url(), GoodFlags(), {"get", "k", "--print-value-only"});
    ASSERT_EQ(get.exit_code, 0) << get.err;
    EXPECT_EQ(get.out, "v\n");
  }
  {
    SCOPED_TRACE("SdkWithClientCertificate");
    ClientOptions o;
    o.endpoints = {Url()};
    o.dial_timeout = std::chrono::milliseconds(10000);
    o.tls.ca_file = certs_->Path("ca.pem");
    o.tls.cert_file = certs_->Path("client.pem");
    o.tls.key_file = certs_->Path("client.key");
    auto client = Client::Connect(o);
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE((*client)->kv().Put("sdk", "tls").ok());
    auto got = (*client)->kv().Get("sdk");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->kvs.at(0).value, "tls");
  }
  {
    SCOPED_TRACE("PythonEtcd3WithClientCertificate");
    std::string script =
        "import etcd3\n"
        "c = etcd3.client(host='127.0.0.1', port=" +
        std::to_string(port_) + ", ca_cert='" + certs_->Path("ca.pem") + "', cert_cert='" +
        certs_->Path("client.pem") + "', cert_key='" + certs_->Path("client.key") +
        "', timeout=10)\n"
        "c.put('py', 'tls')\n"
        "print(c.get('py')[0].decode())\n";
    CommandResult r = cairn::testing::RunCommand({"/usr/bin/python3", "-c", script});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "tls\n");
  }
}

// Each refusal happens in the handshake, is logged, writes nothing, and the member keeps serving.
TEST_F(MutualTlsTest, RefusalsAreLoggedAndTheMemberKeepsServing) {
  {
    SCOPED_TRACE("MissingClientCertificateIsRefused");
    size_t offset = member_->Log().size();
    CommandResult r = Refused(Url(), {"--cacert", certs_->Path("ca.pem")}, {"put", "k", "nocert"});
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_TRUE(LogShows(offset, "Handshake failed")) << member_->Log().substr(offset);
    ExpectStillServing();
  }
  {
    SCOPED_TRACE("CertificateFromAnotherCaIsRefused");
    size_t offset = member_->Log().size();
    CommandResult r = Refused(Url(),
                              {"--cacert", certs_->Path("ca.pem"), "--cert",
                               certs_->Path("stranger.pem"), "--key", certs_->Path("stranger.key")},
                              {"put", "k", "stranger"});
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_TRUE(LogShows(offset, "Handshake failed")) << member_->Log().substr(offset);
    // A client that trusts another CA refuses the member's certificate itself.
    CommandResult distrust =
        Etcdctl(Url(),
                {"--cacert", certs_->Path("other-ca.pem"), "--cert", certs_->Path("client.pem"),
                 "--key", certs_->Path("client.key")},
                {"put", "k", "distrust"});
    EXPECT_NE(distrust.exit_code, 0) << distrust.out;
    ExpectStillServing();
  }
  {
    SCOPED_TRACE("ExpiredCertificateIsRefused");
    size_t offset = member_->Log().size();
    CommandResult r = Refused(Url(),
                              {"--cacert", certs_->Path("ca.pem"), "--cert",
                               certs_->Path("expired.pem"), "--key", certs_->Path("expired.key")},
                              {"put", "k", "expired"});
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_TRUE(LogShows(offset, "Handshake failed")) << member_->Log().substr(offset);
    ExpectStillServing();
    CommandResult get = Etcdctl(Url(), GoodFlags(), {"get", "k", "--print-value-only"});
    EXPECT_EQ(get.out.find("expired"), std::string::npos);  // nothing was written
  }
  {
    SCOPED_TRACE("PlaintextClientOnTlsPortIsRefused");
    size_t offset = member_->Log().size();
    CommandResult r =
        Refused("http://127.0.0.1:" + std::to_string(port_), {}, {"put", "k", "plain"});
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_TRUE(LogShows(offset, "Handshake failed")) << member_->Log().substr(offset);
    ExpectStillServing();
    CommandResult get = Etcdctl(Url(), GoodFlags(), {"get", "k", "--print-value-only"});
    EXPECT_EQ(get.out.find("plain"), std::string::npos);
  }
}

// Server-side TLS whose files are replaced while a client stays connected: new connections get
// the new certificate, the old connection keeps working.
TEST(TlsRotationTest, NewCertificateIsServedWhileClientsStayConnected) {
  std::string dir = MakeTempDir("cairn-tls-rotate");
  Certs certs;
  ASSERT_TRUE(certs.Generate(dir).ok());
  std::filesystem::copy_file(certs.Path("server.pem"), dir + "/live.pem");
  std::filesystem::copy_file(certs.Path("server.key"), dir + "/live.key");
  int port = FreePort();
  std::string url = "https://127.0.0.1:" + std::to_string(port);
  Member member("rotate", dir);
  std::vector<std::string> args = {"--listen-client-urls", url,          "--cert-file",
                                   dir + "/live.pem",      "--key-file", dir + "/live.key"};
  for (const auto& a : FastRaft()) args.push_back(a);
  ASSERT_TRUE(member.Start(args).ok());
  std::vector<std::string> ca = {"--cacert", certs.Path("ca.pem")};
  ASSERT_TRUE(PollUntil([&] {
    return Etcdctl(url, ca, {"get", "x"}).exit_code == 0;
  })) << member.Log();

  ClientOptions o;
  o.endpoints = {url};
  o.dial_timeout = std::chrono::milliseconds(10000);
  o.tls.ca_file = certs.Path("ca.pem");
  auto client = Client::Connect(o);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->kv().Put("before", "1").ok());

  auto served_serial = [&] {
    CommandResult r = cairn::testing::RunCommand(
        {"sh", "-c",
         "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
             " -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -serial"});
    return r.out;
  };
  std::string old_serial = certs.Serial("server.pem");
  std::string new_serial = certs.Serial("server2.pem");
  ASSERT_NE(old_serial, new_serial);
  EXPECT_EQ(served_serial(), old_serial);
  // Replace key and certificate by renames, so the watcher never sees half a pair.
  std::filesystem::copy_file(certs.Path("server2.key"), dir + "/next.key");
  std::filesystem::copy_file(certs.Path("server2.pem"), dir + "/next.pem");
  std::filesystem::rename(dir + "/next.key", dir + "/live.key");
  std::filesystem::rename(dir + "/next.pem", dir + "/live.pem");
  EXPECT_TRUE(PollUntil([&] { return served_serial() == new_serial; })) << served_serial();
  // The connection made before the rotation still works, and a new one too.
  EXPECT_TRUE((*client)->kv().Put("after", "2").ok());
  CommandResult get = Etcdctl(url, ca, {"get", "before", "--print-value-only"});
  EXPECT_EQ(get.out, "1\n") << get.err;
  member.Stop();
  std::filesystem::remove_all(dir);
}

// --tls-max-version and --cipher-suites bound what the handshake accepts.
TEST(TlsPolicyTest, VersionAndCipherSuitesAreEnforced) {
  std::string dir = MakeTempDir("cairn-tls-policy");
  Certs certs;
  ASSERT_TRUE(certs.Generate(dir).ok());
  int port = FreePort();
  std::string url = "https://127.0.0.1:" + std::to_string(port);
  Member member("policy", dir);
  std::vector<std::string> args = {
      "--listen-client-urls", url,
      "--cert-file",          certs.Path("server.pem"),
      "--key-file",           certs.Path("server.key"),
      "--tls-max-version",    "TLS1.2",
      "--cipher-suites",      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"};
  for (const auto& a : FastRaft()) args.push_back(a);
  ASSERT_TRUE(member.Start(args).ok());
  std::vector<std::string> ca = {"--cacert", certs.Path("ca.pem")};
  ASSERT_TRUE(PollUntil([&] {
    return Etcdctl(url, ca, {"get", "x"}).exit_code == 0;
  })) << member.Log();
  // With -brief, s_client prints the negotiated suite as soon as the handshake completes (its
  // exit code is not usable: the member closes a connection that sends no HTTP/2).
  auto handshake = [&](const std::vector<std::string>& opts) {
    std::vector<std::string> argv = {"openssl",
                                     "s_client",
                                     "-brief",
                                     "-connect",
                                     "127.0.0.1:" + std::to_string(port),
                                     "-CAfile",
                                     certs.Path("ca.pem"),
                                     "-verify_return_error"};
    argv.insert(argv.end(), opts.begin(), opts.end());
    CommandResult r = cairn::testing::RunCommand(argv);
    return (r.out + r.err).find("Ciphersuite: ") != std::string::npos;
  };
  EXPECT_TRUE(handshake({"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"}));
  EXPECT_FALSE(handshake({"-tls1_3"}));
  EXPECT_FALSE(handshake({"-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"}));
  EXPECT_TRUE(member.Running());
  member.Stop();
  std::filesystem::remove_all(dir);
}

// --auto-tls: a self-signed certificate in <data-dir>/fixtures/client; clients skip verification.
TEST(AutoTlsTest, ServesWithAGeneratedCertificate) {
  std::string dir = MakeTempDir("cairn-tls-auto");
  int port = FreePort();
  std::string url = "https://127.0.0.1:" + std::to_string(port);
  Member member("auto", dir);
  std::vector<std::string> args = {"--listen-client-urls", url, "--auto-tls"};
  for (const auto& a : FastRaft()) args.push_back(a);
  ASSERT_TRUE(member.Start(args).ok());
  std::vector<std::string> skip = {"--insecure-transport=false", "--insecure-skip-tls-verify"};
  ASSERT_TRUE(PollUntil([&] {
    return Etcdctl(url, skip, {"put", "a", "b"}).exit_code == 0;
  })) << member.Log();
  EXPECT_TRUE(std::filesystem::exists(member.DataDir() + "/fixtures/client/cert.pem"));
  EXPECT_TRUE(std::filesystem::exists(member.DataDir() + "/fixtures/client/key.pem"));
  EXPECT_EQ(std::filesystem::status(member.DataDir() + "/fixtures/client/key.pem").permissions() &
                std::filesystem::perms::others_read,
            std::filesystem::perms::none);
  // Without skipping verification, the self-signed certificate is not trusted.
  EXPECT_NE(
      Etcdctl(url, {"--dial-timeout", "1s", "--command-timeout", "1s"}, {"get", "a"}).exit_code, 0);
  member.Stop();
  std::filesystem::remove_all(dir);
}

// Three members whose peer URLs use mutual TLS with an allowed CN: writes replicate (forwarded
// writes included); a peer connection with another CN, or a plaintext one, is refused and logged,
// and the cluster keeps serving; a member added later joins (fetching the members and catching up
// over TLS).
TEST(PeerTlsTest, ThreeMembersReplicateOverMutualTls) {
  std::string dir = MakeTempDir("cairn-tls-peers");
  Certs certs;
  ASSERT_TRUE(certs.Generate(dir).ok());
  constexpr int kMembers = 3;
  std::vector<int> client_ports, peer_ports;
  std::string cluster;
  for (int i = 0; i < kMembers; ++i) {
    client_ports.push_back(FreePort());
    peer_ports.push_back(FreePort());
    cluster += (i ? "," : "") + std::string("m") + std::to_string(i) +
               "=https://127.0.0.1:" + std::to_string(peer_ports[i]);
  }
  std::vector<std::unique_ptr<Member>> members;
  for (int i = 0; i < kMembers; ++i) {
    std::string mdir = dir + "/m" + std::to_string(i);
    std::filesystem::create_directories(mdir);
    members.push_back(std::make_unique<Member>("m" + std::to_string(i), mdir));
    std::string client = "http://127.0.0.1:" + std::to_string(client_ports[i]);
    std::string peer = "https://127.0.0.1:" + std::to_string(peer_ports[i]);
    std::vector<std::string> args = {"--listen-client-urls",
                                     client,
                                     "--listen-peer-urls",
                                     peer,
                                     "--initial-advertise-peer-urls",
                                     peer,
                                     "--initial-cluster",
                                     cluster,
                                     "--initial-cluster-token",
                                     "tls-peers",
                                     "--peer-cert-file",
                                     certs.Path("peer.pem"),
                                     "--peer-key-file",
                                     certs.Path("peer.key"),
                                     "--peer-trusted-ca-file",
                                     certs.Path("ca.pem"),
                                     "--peer-client-cert-auth",
                                     "--peer-cert-allowed-cn",
                                     "peer"};
    for (const auto& a : FastRaft()) args.push_back(a);
    ASSERT_TRUE(members.back()->Start(args).ok());
  }
  auto endpoint = [&](int i) { return "http://127.0.0.1:" + std::to_string(client_ports[i]); };
  ASSERT_TRUE(PollUntil([&] {
    return Etcdctl(endpoint(0), {}, {"put", "k", "v1"}).exit_code == 0;
  })) << members[0]->Log();
  EXPECT_TRUE(PollUntil([&] {
    CommandResult r = Etcdctl(endpoint(2), {"--consistency=s"}, {"get", "k", "--print-value-only"});
    return r.out == "v1\n";
  })) << members[2]->Log();

  // A process with a certificate from the trusted CA but CN=intruder that believes it belongs to
  // the cluster: its raft messages to the members are refused in the handshake, and logged.
  size_t offset = members[0]->Log().size();
  std::string intruder_peer = "https://127.0.0.1:" + std::to_string(FreePort());
  std::filesystem::create_directories(dir + "/intruder");
  Member intruder("m3", dir + "/intruder");
  std::vector<std::string> args = {"--listen-client-urls",
                                   "http://127.0.0.1:" + std::to_string(FreePort()),
                                   "--listen-peer-urls",
                                   intruder_peer,
                                   "--initial-advertise-peer-urls",
                                   intruder_peer,
                                   "--initial-cluster",
                                   cluster + ",m3=" + intruder_peer,
                                   "--initial-cluster-token",
                                   "tls-peers",
                                   "--peer-cert-file",
                                   certs.Path("intruder.pem"),
                                   "--peer-key-file",
                                   certs.Path("intruder.key"),
                                   "--peer-trusted-ca-file",
                                   certs.Path("ca.pem")};
  for (const auto& a : FastRaft()) args.push_back(a);
  ASSERT_TRUE(intruder.Start(args).ok());
  EXPECT_TRUE(PollUntil([&] {
    return members[0]->Log().find("peer certificate CN \"intruder\" is not the allowed CN \"peer\"",
                                  offset) != std::string::npos;
  })) << members[0]->Log().substr(offset)
      << intruder.Log();
  intruder.Stop();
  // A plaintext peer is refused too, and the cluster still replicates.
  offset = members[1]->Log().size();
  Etcdctl("http://127.0.0.1:" + std::to_string(peer_ports[1]),
          {"--dial-timeout", "1s", "--command-timeout", "1s"}, {"get", "k"});
  EXPECT_TRUE(PollUntil([&] {
    return members[1]->Log().find("Handshake failed", offset) != std::string::npos;
  })) << members[1]->Log().substr(offset);
  CommandResult put = Etcdctl(endpoint(1), {}, {"put", "k", "v2"});
  EXPECT_EQ(put.exit_code, 0) << put.err;
  EXPECT_TRUE(PollUntil([&] {
    CommandResult r = Etcdctl(endpoint(0), {"--consistency=s"}, {"get", "k", "--print-value-only"});
    return r.out == "v2\n";
  }));

  // A member added now fetches the members and catches up over the peers' TLS.
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Etcdctl(endpoint(0), {}, {"put", "fill" + std::to_string(i), "x"}).exit_code, 0);
  }
  int joiner_client = FreePort();
  std::string joiner_peer = "https://127.0.0.1:" + std::to_string(FreePort());
  // etcd's strict reconfig check refuses ("unhealthy cluster") until the members have been
  // connected for 5 s.
  CommandResult add;
  EXPECT_TRUE(PollUntil([&] {
    add = Etcdctl(endpoint(0), {}, {"member", "add", "m4", "--peer-urls=" + joiner_peer});
    return add.exit_code == 0;
  })) << add.err;
  std::filesystem::create_directories(dir + "/m4");
  Member joiner("m4", dir + "/m4");
  std::vector<std::string> join_args = {"--listen-client-urls",
                                        "http://127.0.0.1:" + std::to_string(joiner_client),
                                        "--listen-peer-urls",
                                        joiner_peer,
                                        "--initial-advertise-peer-urls",
                                        joiner_peer,
                                        "--initial-cluster",
                                        cluster + ",m4=" + joiner_peer,
                                        "--initial-cluster-state",
                                        "existing",
                                        "--peer-cert-file",
                                        certs.Path("peer.pem"),
                                        "--peer-key-file",
                                        certs.Path("peer.key"),
                                        "--peer-trusted-ca-file",
                                        certs.Path("ca.pem"),
                                        "--peer-client-cert-auth",
                                        "--peer-cert-allowed-cn",
                                        "peer"};
  for (const auto& a : FastRaft()) join_args.push_back(a);
  ASSERT_TRUE(joiner.Start(join_args).ok());
  EXPECT_TRUE(PollUntil([&] {
    CommandResult r = Etcdctl("http://127.0.0.1:" + std::to_string(joiner_client),
                              {"--consistency=s"}, {"get", "fill2", "--print-value-only"});
    return r.out == "x\n";
  })) << joiner.Log();
  joiner.Stop();
  for (auto& m : members) EXPECT_TRUE(m->Running());
  members.clear();
  std::filesystem::remove_all(dir);
}

// --peer-auto-tls: members generate self-signed peer certificates and talk TLS without verifying
// each other's, as etcd does.
TEST(PeerTlsTest, AutoTlsPeersReplicate) {
  std::string dir = MakeTempDir("cairn-tls-peer-auto");
  std::vector<int> client_ports = {FreePort(), FreePort()};
  std::vector<std::string> peers = {"https://127.0.0.1:" + std::to_string(FreePort()),
                                    "https://127.0.0.1:" + std::to_string(FreePort())};
  std::string cluster = "a0=" + peers[0] + ",a1=" + peers[1];
  std::vector<std::unique_ptr<Member>> members;
  for (int i = 0; i < 2; ++i) {
    std::string mdir = dir + "/a" + std::to_string(i);
    std::filesystem::create_directories(mdir);
    members.push_back(std::make_unique<Member>("a" + std::to_string(i), mdir));
    std::vector<std::string> args = {"--listen-client-urls",
                                     "http://127.0.0.1:" + std::to_string(client_ports[i]),
                                     "--listen-peer-urls",
                                     peers[i],
                                     "--initial-advertise-peer-urls",
                                     peers[i],
                                     "--initial-cluster",
                                     cluster,
                                     "--peer-auto-tls"};
    for (const auto& a : FastRaft()) args.push_back(a);
    ASSERT_TRUE(members.back()->Start(args).ok());
  }
  auto endpoint = [&](int i) { return "http://127.0.0.1:" + std::to_string(client_ports[i]); };
  ASSERT_TRUE(PollUntil([&] {
    return Etcdctl(endpoint(0), {}, {"put", "k", "auto"}).exit_code == 0;
  })) << members[0]->Log();
  EXPECT_TRUE(PollUntil([&] {
    CommandResult r = Etcdctl(endpoint(1), {"--consistency=s"}, {"get", "k", "--print-value-only"});
    return r.out == "auto\n";
  })) << members[1]->Log();
  EXPECT_TRUE(std::filesystem::exists(members[0]->DataDir() + "/fixtures/peer/cert.pem"));
  members.clear();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::tls_test
