// TLS and mutual TLS against etcd and cairn started by this test with certificates generated at
// test time (openssl CLI) in a temporary directory. The shared harness starts plain-HTTP servers
// only, so this file has its own small launcher.
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/client/client_test_util.h"

extern char** environ;

namespace cairn::client_test {
namespace {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

bool Run(const std::vector<std::string>& argv) {
  auto r = cairn::testing::RunCommand(argv);
  if (r.exit_code != 0) ADD_FAILURE() << argv[0] << " " << argv[1] << ": " << r.err;
  return r.exit_code == 0;
}

class TlsServer {
 public:
  // Generates a CA, a server certificate for 127.0.0.1 and a client certificate.
  bool Start(ServerKind kind, bool client_cert_auth) {
    char tmpl[] = "/tmp/cairn-client-tls-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return false;
    dir_ = tmpl;
    std::ofstream(dir_ + "/san.cnf") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    std::ofstream(dir_ + "/client.cnf") << "extendedKeyUsage=clientAuth\n";
    std::ofstream(dir_ + "/server.cnf")
        << "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n";
    const std::string o = "openssl";
    if (!Run({o, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
              "/CN=cairn-test-ca", "-keyout", dir_ + "/ca.key", "-out", dir_ + "/ca.pem"})) {
      return false;
    }
    for (const std::string name : {"server", "client"}) {
      if (!Run({o, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name, "-keyout",
                dir_ + "/" + name + ".key", "-out", dir_ + "/" + name + ".csr"})) {
        return false;
      }
      if (!Run({o, "x509", "-req", "-in", dir_ + "/" + name + ".csr", "-CA", dir_ + "/ca.pem",
                "-CAkey", dir_ + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile",
                dir_ + "/" + name + ".cnf", "-out", dir_ + "/" + name + ".pem"})) {
        return false;
      }
    }
    port_ = FreePort();
    int peer = FreePort();
    std::string client_url = "https://127.0.0.1:" + std::to_string(port_);
    std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    std::vector<std::string> args = {cairn::testing::ServerBinary(kind),
                                     "--name",
                                     "tls0",
                                     "--data-dir",
                                     dir_ + "/data",
                                     "--listen-client-urls",
                                     client_url,
                                     "--advertise-client-urls",
                                     client_url,
                                     "--listen-peer-urls",
                                     peer_url,
                                     "--initial-advertise-peer-urls",
                                     peer_url,
                                     "--initial-cluster",
                                     "tls0=" + peer_url,
                                     "--cert-file",
                                     dir_ + "/server.pem",
                                     "--key-file",
                                     dir_ + "/server.key",
                                     "--log-level",
                                     "error"};
    if (kind == ServerKind::kEtcd) {
      args.push_back("--logger");
      args.push_back("zap");
    }
    // etcd verifies client certificates as soon as it has a trusted CA file.
    if (client_cert_auth) {
      for (std::string a : {"--client-cert-auth", "--trusted-ca-file"}) args.push_back(a);
      args.push_back(dir_ + "/ca.pem");
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, (dir_ + "/etcd.log").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0;
  }
  ~TlsServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

ClientOptions TlsOptions(const TlsServer& etcd, bool with_client_cert) {
  ClientOptions o;
  o.endpoints = {"https://" + etcd.endpoint()};
  o.dial_timeout = std::chrono::milliseconds(20000);
  o.tls.ca_file = etcd.file("ca.pem");
  if (with_client_cert) {
    o.tls.cert_file = etcd.file("client.pem");
    o.tls.key_file = etcd.file("client.key");
  }
  return o;
}

class TlsTest : public ::testing::TestWithParam<ServerKind> {};

TEST_P(TlsTest, ServerTls) {
  ASSERT_TRUE(cairn::testing::ServerAvailable(GetParam()));
  TlsServer etcd;
  ASSERT_TRUE(etcd.Start(GetParam(), /*client_cert_auth=*/false));
  auto client = Client::Connect(TlsOptions(etcd, false));
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->kv().Put("tls", "yes").ok());
  auto g = (*client)->kv().Get("tls");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->kvs.at(0).value, "yes");
}

TEST_P(TlsTest, MutualTls) {
  ASSERT_TRUE(cairn::testing::ServerAvailable(GetParam()));
  TlsServer etcd;
  ASSERT_TRUE(etcd.Start(GetParam(), /*client_cert_auth=*/true));
  auto client = Client::Connect(TlsOptions(etcd, true));
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->kv().Put("mtls", "yes").ok());
  WatchLog log;
  WatchOptions wo;
  wo.start_revision = 1;
  auto w = (*client)->watch().Watch("mtls", wo, log.Callback());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(log.WaitEvents(1));

  // Without a client certificate the handshake is refused: the client never connects.
  ClientOptions no_cert = TlsOptions(etcd, false);
  no_cert.dial_timeout = std::chrono::milliseconds(1500);
  auto refused = Client::Connect(no_cert);
  if (refused.ok()) {
    // With TLS 1.3 the client may finish its side of the handshake first; calls still fail.
    CallOptions call;
    call.timeout = std::chrono::milliseconds(1500);
    EXPECT_FALSE((*refused)->kv().Get("mtls", {}, call).ok());
  }
}

// Both servers, with the same expectations (cairn: docs/security.md).
INSTANTIATE_TEST_SUITE_P(Servers, TlsTest, ::testing::ValuesIn(cairn::testing::TestedServerKinds()),
                         KindName);

}  // namespace
}  // namespace cairn::client_test
