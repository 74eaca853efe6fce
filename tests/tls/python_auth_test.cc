// python-etcd3 (Debian's, /usr/bin/python3) with a user name and password, against etcd 3.4 and
// cairn with the same expectations. grpcio sends call credentials only on a secure channel, so
// the servers serve TLS (certificates made by openssl here; no client certificate). Users and
// roles are made with etcdctl; python-etcd3 then authenticates, writes and reads inside its
// prefix, is refused outside it, and a wrong password is refused.
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/harness/server_process.h"
#include "tests/tls/tls_fixture.h"

namespace cairn::tls_test {
namespace {

using cairn::testing::CommandResult;
using cairn::testing::ServerKind;

constexpr char kScript[] = R"(
import sys, etcd3
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def attempt(what, fn):
    try:
        print(what, 'ok', fn())
    except Exception as e:
        print(what, type(e).__name__, e.details() if hasattr(e, 'details') else e)
c = etcd3.client(host=host, port=port, ca_cert=ca, user='app', password='apw', timeout=10)
attempt('put-own', lambda: c.put('app/k', 'v') is not None)
attempt('get-own', lambda: c.get('app/k')[0].decode())
attempt('put-other', lambda: c.put('other/k', 'v'))
attempt('get-other', lambda: c.get('other/k')[0])
attempt('wrong-password', lambda: etcd3.client(host=host, port=port, ca_cert=ca, user='app',
                                                password='nope', timeout=10).get('app/k'))
)";

std::string RunScenario(ServerKind kind, const Certs& certs, const std::string& dir) {
  int port = FreePort(), peer = FreePort();
  std::string url = "https://127.0.0.1:" + std::to_string(port);
  std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
  std::string name = kind == ServerKind::kEtcd ? "etcd" : "cairn";
  Member m(name, dir + "/" + name, cairn::testing::ServerBinary(kind));
  std::filesystem::create_directories(dir + "/" + name);
  EXPECT_TRUE(
      m.Start({"--listen-client-urls", url, "--advertise-client-urls", url, "--listen-peer-urls",
               peer_url, "--initial-advertise-peer-urls", peer_url, "--initial-cluster",
               name + "=" + peer_url, "--cert-file", certs.Path("server.pem"), "--key-file",
               certs.Path("server.key"), "--bcrypt-cost", "4"})
          .ok());
  const std::vector<std::string> tls = {"--cacert", certs.Path("ca.pem")};
  EXPECT_TRUE(PollUntil([&] { return Etcdctl(url, tls, {"get", "x"}).exit_code == 0; })) << m.Log();
  for (std::vector<std::string> cmd :
       {std::vector<std::string>{"user", "add", "root:rootpw"},
        {"user", "grant-role", "root", "root"},  // etcdctl made the root role with the user
        {"role", "add", "rw"},
        {"role", "grant-permission", "rw", "readwrite", "app/", "--prefix=true"},
        {"user", "add", "app:apw"},
        {"user", "grant-role", "app", "rw"},
        {"auth", "enable"}}) {
    CommandResult r = Etcdctl(url, tls, cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd[0] << " " << cmd[1] << ": " << r.err;
  }
  CommandResult r = cairn::testing::RunCommand(
      {"/usr/bin/python3", "-c", kScript, "127.0.0.1", std::to_string(port), certs.Path("ca.pem")},
      "", 60000);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

TEST(PythonEtcd3AuthTest, UserAndPasswordOverTlsMatchEtcd) {
  std::string dir = MakeTempDir("cairn-py-auth");
  Certs certs;
  std::filesystem::create_directories(dir + "/certs");
  absl::Status made = certs.Generate(dir + "/certs");
  ASSERT_TRUE(made.ok()) << made;
  std::string etcd = RunScenario(ServerKind::kEtcd, certs, dir);
  std::string cairn = RunScenario(ServerKind::kCairn, certs, dir);
  EXPECT_EQ(cairn, etcd);
  EXPECT_NE(etcd.find("put-own ok True"), std::string::npos) << etcd;
  EXPECT_NE(etcd.find("get-own ok v"), std::string::npos) << etcd;
  EXPECT_NE(etcd.find("put-other"), std::string::npos) << etcd;
  EXPECT_EQ(etcd.find("put-other ok"), std::string::npos) << etcd;
  EXPECT_EQ(etcd.find("wrong-password ok"), std::string::npos) << etcd;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::tls_test
