#include "tests/tls/tls_fixture.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace cairn::tls_test {
namespace {

absl::Status Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = cairn::testing::RunCommand(argv);
  if (r.exit_code == 0) return absl::OkStatus();
  return absl::InternalError("openssl " + args.at(0) + " failed: " + r.err);
}

std::vector<std::string> NewKeyArgs() {
  return {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
}

}  // namespace

std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status Certs::Generate(const std::string& dir) {
  dir_ = dir;
  std::ofstream(Path("client.ext")) << "extendedKeyUsage=clientAuth\n";
  for (const std::string ca : {"ca", "other-ca"}) {
    std::vector<std::string> args = {"req", "-x509"};
    for (const auto& a : NewKeyArgs()) args.push_back(a);
    for (const std::string& a :
         std::vector<std::string>{"-days", "2", "-subj", "/CN=cairn-test-" + ca, "-keyout",
                                  Path(ca + ".key"), "-out", Path(ca + ".pem")}) {
      args.push_back(a);
    }
    if (absl::Status s = Openssl(args); !s.ok()) return s;
  }
  struct LeafDef {
    const char *name, *cn, *ca;
    bool server;
  };
  for (const LeafDef& l :
       {LeafDef{"server", "server", "ca", true}, LeafDef{"server2", "server", "ca", true},
        LeafDef{"client", "client-user", "ca", false}, LeafDef{"peer", "peer", "ca", true},
        LeafDef{"intruder", "intruder", "ca", true},
        LeafDef{"stranger", "client-user", "other-ca", false}}) {
    if (absl::Status s = Leaf(l.name, l.cn, l.ca, l.server); !s.ok()) return s;
  }
  return Expired("expired", "client-user");
}

// One openssl call: a new key and a certificate signed by `ca`, valid for two days.
absl::Status Certs::Leaf(const std::string& name, const std::string& cn, const std::string& ca,
                         bool server) {
  std::vector<std::string> req = {"req", "-x509"};
  for (const auto& a : NewKeyArgs()) req.push_back(a);
  for (const std::string& a : std::vector<std::string>{
           "-subj", "/CN=" + cn, "-keyout", Path(name + ".key"), "-out", Path(name + ".pem"), "-CA",
           Path(ca + ".pem"), "-CAkey", Path(ca + ".key"), "-days", "2", "-addext",
           "basicConstraints=critical,CA:FALSE", "-addext",
           server ? "extendedKeyUsage=serverAuth,clientAuth" : "extendedKeyUsage=clientAuth"}) {
    req.push_back(a);
  }
  if (server) {
    req.push_back("-addext");
    req.push_back("subjectAltName=IP:127.0.0.1,DNS:localhost");
  }
  return Openssl(req);
}

// `openssl req` refuses a negative validity; `openssl x509 -req -days -1` makes one that ended
// a day before it began, i.e. expired now.
absl::Status Certs::Expired(const std::string& name, const std::string& cn) {
  std::vector<std::string> req = {"req"};
  for (const auto& a : NewKeyArgs()) req.push_back(a);
  for (const std::string& a : std::vector<std::string>{
           "-subj", "/CN=" + cn, "-keyout", Path(name + ".key"), "-out", Path(name + ".csr")}) {
    req.push_back(a);
  }
  if (absl::Status s = Openssl(req); !s.ok()) return s;
  return Openssl({"x509", "-req", "-in", Path(name + ".csr"), "-CA", Path("ca.pem"), "-CAkey",
                  Path("ca.key"), "-CAcreateserial", "-days", "-1", "-extfile", Path("client.ext"),
                  "-out", Path(name + ".pem")});
}

std::string Certs::Serial(const std::string& pem_name) const {
  CommandResult r =
      cairn::testing::RunCommand({"openssl", "x509", "-noout", "-serial", "-in", Path(pem_name)});
  return r.out;
}

Member::~Member() { Stop(); }

absl::Status Member::Start(const std::vector<std::string>& args) {
  std::vector<std::string> all = {
      binary_.empty() ? cairn::testing::ServerBinary(cairn::testing::ServerKind::kCairn) : binary_,
      "--name", name_, "--data-dir", DataDir()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, (dir_ + "/cairn.log").c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    pid_ = -1;
    return absl::InternalError("cannot spawn " + all[0]);
  }
  return absl::OkStatus();
}

bool Member::Running() {
  if (pid_ <= 0) return false;
  if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

void Member::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  bool exited = PollUntil([&] { return waitpid(pid_, nullptr, WNOHANG) == pid_; },
                          std::chrono::milliseconds(5000));
  if (!exited) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
}

CommandResult Etcdctl(const std::string& endpoint, const std::vector<std::string>& flags,
                      const std::vector<std::string>& args) {
  std::vector<std::string> argv = {
      cairn::testing::EtcdctlPath(), "--endpoints", endpoint, "--dial-timeout", "2s",
      "--command-timeout",           "3s"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return cairn::testing::RunCommand(argv, "", 15000);
}

}  // namespace cairn::tls_test
