#include "tests/harness/server_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace cairn::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kStartAttempts = 4;
constexpr int kStopWaitMs = 10000;
constexpr int kPollIntervalMs = 20;

bool IsExecutable(const std::string& path) {
  return !path.empty() && access(path.c_str(), X_OK) == 0;
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return (value != nullptr && *value != '\0') ? std::string(value) : fallback;
}

// Picks a free loopback port by binding port 0. The port is released before the server binds it,
// so a race is possible; Start retries with new ports when that happens.
absl::StatusOr<int> PickFreePort(std::set<int>& taken) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      int err = errno;
      close(fd);
      return absl::InternalError(absl::StrCat("bind: ", std::strerror(err)));
    }
    close(fd);
    int port = ntohs(addr.sin_port);
    if (taken.insert(port).second) return port;
  }
  return absl::InternalError("could not pick a distinct free port");
}

std::string ReadTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff start = size > static_cast<std::streamoff>(max_bytes)
                             ? size - static_cast<std::streamoff>(max_bytes)
                             : 0;
  in.seekg(start);
  std::string out(static_cast<size_t>(size - start), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

// Resolves a program name against PATH (before fork, so the child only calls async-signal-safe
// functions).
std::string ResolveProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  for (absl::string_view dir : absl::StrSplit(EnvOr("PATH", "/usr/bin:/bin"), ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (IsExecutable(candidate)) return candidate;
  }
  return name;
}

// argv storage that outlives fork (the child must not allocate).
struct ExecArgs {
  explicit ExecArgs(const std::vector<std::string>& argv) : strings(argv) {
    for (std::string& s : strings) pointers.push_back(s.data());
    pointers.push_back(nullptr);
  }
  std::vector<std::string> strings;
  std::vector<char*> pointers;
};

// In the child after fork: own process group, die with the parent thread.
void ChildCommonSetup(pid_t parent) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died between fork and prctl.
  if (getppid() != parent) _exit(127);
  // Undo signal state the test process may have (gRPC or gtest may block or ignore signals).
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
}

// Waits for `pid` to exit for at most timeout_ms. Returns the wait status, or -1 if still running.
int WaitWithTimeout(pid_t pid, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return 0;  // already reaped
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

absl::Status ProbeRange(const std::string& endpoint, int timeout_ms) {
  auto channel = MakeTestChannel(endpoint);
  auto stub = etcdserverpb::KV::NewStub(channel);
  etcdserverpb::RangeRequest request;
  request.set_key("cairn-harness-probe");
  etcdserverpb::RangeResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  grpc::Status status = stub->Range(&context, request, &response);
  if (status.ok()) return absl::OkStatus();
  // With auth enabled a Range without a token is refused after its linearizable barrier (etcd's
  // order, and cairn's): the member serves.
  if (status.error_message() == "etcdserver: user name is empty") return absl::OkStatus();
  // A learner refuses linearizable reads (etcd: "etcdserver: rpc not supported for learner") but
  // is up when it serves a serializable one.
  if (absl::AsciiStrToLower(status.error_message()).find("learner") != std::string::npos) {
    request.set_serializable(true);
    grpc::ClientContext serializable_context;
    serializable_context.set_deadline(std::chrono::system_clock::now() +
                                      std::chrono::milliseconds(timeout_ms));
    status = stub->Range(&serializable_context, request, &response);
    if (status.ok()) return absl::OkStatus();
  }
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return absl::UnimplementedError(
        absl::StrCat("Range on ", endpoint, " is not implemented: ", status.error_message()));
  }
  return absl::UnavailableError(absl::StrCat("Range on ", endpoint, ": ",
                                             static_cast<int>(status.error_code()), " ",
                                             status.error_message()));
}

std::atomic<int> cluster_counter{0};

}  // namespace

struct ServerCluster::Member {
  std::string name;
  int client_port = 0;
  int peer_port = 0;
  std::string data_dir;
  std::string log_path;
  pid_t pid = -1;
  std::vector<std::string> extra_args;
  // Set for members added by PrepareMember/StartAddedMember: the --initial-cluster they were
  // started with (state "existing").
  bool added = false;
  std::string added_initial_cluster;
  bool removed = false;
};

std::string ServerKindName(ServerKind kind) { return kind == ServerKind::kEtcd ? "etcd" : "cairn"; }

void PrintTo(ServerKind kind, std::ostream* os) { *os << ServerKindName(kind); }

std::string ServerBinary(ServerKind kind) {
  if (kind == ServerKind::kEtcd) return EnvOr("ETCD_BINARY", "/usr/bin/etcd");
#ifdef CAIRN_BINARY
  return EnvOr("CAIRN_BINARY", CAIRN_BINARY);
#else
  return EnvOr("CAIRN_BINARY", "");
#endif
}

bool ServerAvailable(ServerKind kind) { return IsExecutable(ServerBinary(kind)); }

bool CairnBuilt() {
#ifdef CAIRN_BINARY
  return true;
#else
  return false;
#endif
}

std::vector<ServerKind> TestedServerKinds() {
  std::vector<ServerKind> kinds;
  if (ServerAvailable(ServerKind::kEtcd)) kinds.push_back(ServerKind::kEtcd);
  if (CairnBuilt() || ServerAvailable(ServerKind::kCairn)) kinds.push_back(ServerKind::kCairn);
  return kinds;
}

std::string EtcdctlPath() { return EnvOr("ETCDCTL_BINARY", "/usr/bin/etcdctl"); }

std::shared_ptr<grpc::Channel> MakeTestChannel(const std::string& endpoint) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 300);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

std::shared_ptr<grpc::Channel> MakeConnectedTestChannel(const std::string& endpoint,
                                                        int timeout_ms) {
  auto channel = MakeTestChannel(endpoint);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                 std::chrono::milliseconds(timeout_ms))) {
    return nullptr;
  }
  return channel;
}

ServerCluster::ServerCluster(const ClusterOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<ServerCluster>> ServerCluster::Start(const ClusterOptions& options) {
  if (options.members < 1) return absl::InvalidArgumentError("members must be >= 1");
  std::unique_ptr<ServerCluster> cluster(new ServerCluster(options));
  cluster->binary_ = ServerBinary(options.kind);
  if (!IsExecutable(cluster->binary_)) {
    return absl::NotFoundError(
        absl::StrCat(ServerKindName(options.kind), " binary not found: '", cluster->binary_, "'"));
  }
  std::string tmpl = absl::StrCat(EnvOr("TMPDIR", "/tmp"), "/cairn-test-",
                                  ServerKindName(options.kind), "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", tmpl, ": ", std::strerror(errno)));
  }
  cluster->root_dir_ = tmpl;
  cluster->token_ = absl::StrCat("cairn-test-", getpid(), "-", cluster_counter.fetch_add(1), "-",
                                 std::filesystem::path(tmpl).filename().string());
  cluster->members_.resize(options.members);
  for (int i = 0; i < options.members; ++i) {
    Member& m = cluster->members_[i];
    m.name = absl::StrCat("m", i);
    m.data_dir = absl::StrCat(cluster->root_dir_, "/", m.name, ".data");
    m.log_path = absl::StrCat(cluster->root_dir_, "/", m.name, ".log");
    if (i < static_cast<int>(options.member_extra_args.size())) {
      m.extra_args = options.member_extra_args[i];
    }
  }
  absl::Status status;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    status = cluster->StartAll();
    if (status.ok()) return cluster;
    cluster->KillAll();
    // Only a lost port race is worth another attempt; anything else is a real failure. The data
    // dirs may be half initialized with the old ports' cluster config: start from scratch.
    bool port_race = false;
    for (int i = 0; i < cluster->size(); ++i) {
      std::string log = absl::AsciiStrToLower(ReadTail(cluster->members_[i].log_path, 1 << 16));
      // etcd (Go): "bind: address already in use"; cairn (gRPC C++): "Address already in use",
      // then "cannot listen on ...".
      if (log.find("address already in use") != std::string::npos ||
          log.find("cannot listen on") != std::string::npos) {
        port_race = true;
      }
      std::error_code ec;
      std::filesystem::remove_all(cluster->members_[i].data_dir, ec);
    }
    if (!port_race) break;
  }
  return status;
}

absl::Status ServerCluster::StartAll() {
  std::set<int> taken;
  for (Member& m : members_) {
    absl::StatusOr<int> client = PickFreePort(taken);
    if (!client.ok()) return client.status();
    absl::StatusOr<int> peer = PickFreePort(taken);
    if (!peer.ok()) return peer.status();
    m.client_port = *client;
    m.peer_port = *peer;
  }
  for (int i = 0; i < size(); ++i) {
    absl::Status s = Spawn(i);
    if (!s.ok()) return s;
  }
  for (int i = 0; i < size(); ++i) {
    absl::Status s = WaitReady(i);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

namespace {
// The members' log level: "error" unless CAIRN_TEST_LOG_LEVEL says otherwise (for debugging).
std::string TestLogLevel() {
  const char* level = std::getenv("CAIRN_TEST_LOG_LEVEL");
  return level != nullptr && *level != '\0' ? level : "error";
}
}  // namespace

std::vector<std::string> ServerCluster::MemberArgs(int member) const {
  const Member& m = members_[member];
  std::string client_url = absl::StrCat("http://127.0.0.1:", m.client_port);
  std::vector<std::string> args = {binary_,       "--name",
                                   m.name,        "--data-dir",
                                   m.data_dir,    "--listen-client-urls",
                                   client_url,    "--advertise-client-urls",
                                   client_url,    "--log-level",
                                   TestLogLevel()};
  bool peers = options_.kind == ServerKind::kEtcd || size() > 1 || options_.peer_urls_always;
  if (peers) {
    std::string initial_cluster = m.added_initial_cluster;
    if (!m.added) {
      // The founding members; flags a restarted member ignores (its data dir knows the cluster).
      std::vector<std::string> initial;
      for (const Member& other : members_) {
        if (other.added) continue;
        initial.push_back(absl::StrCat(other.name, "=http://127.0.0.1:", other.peer_port));
      }
      initial_cluster = absl::StrJoin(initial, ",");
    }
    std::string peer_url = absl::StrCat("http://127.0.0.1:", m.peer_port);
    std::vector<std::string> peer_args = {"--listen-peer-urls",
                                          peer_url,
                                          "--initial-advertise-peer-urls",
                                          peer_url,
                                          "--initial-cluster",
                                          initial_cluster,
                                          "--initial-cluster-state",
                                          m.added ? "existing" : "new",
                                          "--initial-cluster-token",
                                          token_};
    args.insert(args.end(), peer_args.begin(), peer_args.end());
  }
  if (options_.kind == ServerKind::kEtcd) {
    args.push_back("--logger");
    args.push_back("zap");
  }
  if (options_.heartbeat_interval_ms > 0) {
    args.push_back("--heartbeat-interval");
    args.push_back(absl::StrCat(options_.heartbeat_interval_ms));
  }
  if (options_.election_timeout_ms > 0) {
    args.push_back("--election-timeout");
    args.push_back(absl::StrCat(options_.election_timeout_ms));
  }
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  args.insert(args.end(), m.extra_args.begin(), m.extra_args.end());
  return args;
}

absl::Status ServerCluster::Spawn(int member) {
  Member& m = members_[member];
  ExecArgs exec_args(MemberArgs(member));
  int log_fd = open(m.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("open ", m.log_path, ": ", std::strerror(errno)));
  }
  std::string banner =
      absl::StrCat("==== harness: starting ", absl::StrJoin(exec_args.strings, " "), "\n");
  if (write(log_fd, banner.data(), banner.size()) < 0) {
    // The banner is only a debugging aid.
  }
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(log_fd);
    close(null_fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(err)));
  }
  if (pid == 0) {
    ChildCommonSetup(parent);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execv(exec_args.pointers[0], exec_args.pointers.data());
    _exit(127);
  }
  // Also set the group from the parent, so a signal to -pid works even before the child runs.
  setpgid(pid, pid);
  close(log_fd);
  close(null_fd);
  m.pid = pid;
  return absl::OkStatus();
}

absl::Status ServerCluster::WaitReady(int member, int timeout_ms) {
  Member& m = members_[member];
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  absl::Status last = absl::UnavailableError("not probed");
  while (true) {
    if (m.pid > 0) {
      int status = 0;
      pid_t r = waitpid(m.pid, &status, WNOHANG);
      if (r == m.pid) {
        // Reaped here; remember it so Kill does not signal a reused pid.
        m.pid = -1;
        return absl::UnavailableError(
            absl::StrCat(ServerKindName(options_.kind), " member ", m.name, " exited with status ",
                         DecodeWaitStatus(status), " before becoming ready; log tail:\n",
                         ReadTail(m.log_path, 4000)));
      }
    } else {
      return absl::UnavailableError(
          absl::StrCat("member ", m.name, " is not running; log tail:\n", LogTail(member)));
    }
    last = ProbeRange(ClientEndpoint(member), 1000);
    if (last.ok()) return last;
    // A server that answers but cannot serve a Range will not become ready by waiting.
    if (absl::IsUnimplemented(last)) return last;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollIntervalMs));
  }
  return absl::UnavailableError(absl::StrCat(ServerKindName(options_.kind), " member ", m.name,
                                             " not ready after ", timeout_ms, " ms (",
                                             last.message(), "); log tail:\n", LogTail(member)));
}

void ServerCluster::KillAll() {
  for (int i = 0; i < size(); ++i) Kill(i);
}

ServerCluster::~ServerCluster() {
  for (Member& m : members_) {
    if (m.pid > 0) {
      kill(-m.pid, SIGCONT);  // a paused member cannot act on SIGTERM
      kill(-m.pid, SIGTERM);
    }
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(kStopWaitMs);
  for (Member& m : members_) {
    if (m.pid <= 0) continue;
    int remaining = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (WaitWithTimeout(m.pid, std::max(remaining, 0)) == -1) {
      kill(-m.pid, SIGKILL);
      WaitWithTimeout(m.pid, kStopWaitMs);
    }
    m.pid = -1;
  }
  if (!root_dir_.empty() && std::getenv("CAIRN_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(root_dir_, ec);
  }
}

ServerKind ServerCluster::kind() const { return options_.kind; }

int ServerCluster::size() const { return static_cast<int>(members_.size()); }

std::string ServerCluster::ClientEndpoint(int member) const {
  return absl::StrCat("127.0.0.1:", members_[member].client_port);
}

std::vector<std::string> ServerCluster::ClientEndpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(ClientEndpoint(i));
  return out;
}

std::string ServerCluster::ClientUrls() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(absl::StrCat("http://", ClientEndpoint(i)));
  return absl::StrJoin(out, ",");
}

void ServerCluster::Kill(int member) {
  Member& m = members_[member];
  if (m.pid <= 0) return;
  kill(-m.pid, SIGKILL);
  kill(m.pid, SIGKILL);
  WaitWithTimeout(m.pid, kStopWaitMs);
  m.pid = -1;
}

absl::Status ServerCluster::Restart(int member) {
  if (members_[member].removed) {
    return absl::FailedPreconditionError(
        absl::StrCat("member ", members_[member].name, " was removed from the cluster"));
  }
  Kill(member);
  absl::Status s = Spawn(member);
  if (!s.ok()) return s;
  return WaitReady(member);
}

absl::Status ServerCluster::RestartAll(int timeout_ms) {
  // Removed members stay down; prepared members never started stay unstarted.
  auto restartable = [this](const Member& m) {
    return !m.removed && !(m.added && m.added_initial_cluster.empty());
  };
  for (int i = 0; i < size(); ++i) {
    if (restartable(members_[i])) Kill(i);
  }
  for (int i = 0; i < size(); ++i) {
    if (!restartable(members_[i])) continue;
    absl::Status s = Spawn(i);
    if (!s.ok()) return s;
  }
  for (int i = 0; i < size(); ++i) {
    if (!restartable(members_[i])) continue;
    absl::Status s = WaitReady(i, timeout_ms);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

void ServerCluster::Pause(int member) {
  if (members_[member].pid > 0) kill(-members_[member].pid, SIGSTOP);
}

void ServerCluster::Resume(int member) {
  if (members_[member].pid > 0) kill(-members_[member].pid, SIGCONT);
}

std::string ServerCluster::Name(int member) const { return members_[member].name; }

std::string ServerCluster::PeerUrl(int member) const {
  return absl::StrCat("http://127.0.0.1:", members_[member].peer_port);
}

absl::StatusOr<int> ServerCluster::PrepareMember(std::vector<std::string> extra_args) {
  std::set<int> taken;
  for (const Member& m : members_) {
    taken.insert(m.client_port);
    taken.insert(m.peer_port);
  }
  Member m;
  absl::StatusOr<int> client = PickFreePort(taken);
  if (!client.ok()) return client.status();
  absl::StatusOr<int> peer = PickFreePort(taken);
  if (!peer.ok()) return peer.status();
  m.client_port = *client;
  m.peer_port = *peer;
  m.name = absl::StrCat("m", members_.size());
  m.data_dir = absl::StrCat(root_dir_, "/", m.name, ".data");
  m.log_path = absl::StrCat(root_dir_, "/", m.name, ".log");
  m.extra_args = std::move(extra_args);
  m.added = true;
  members_.push_back(std::move(m));
  return size() - 1;
}

absl::Status ServerCluster::StartAddedMember(int member, int timeout_ms) {
  Member& m = members_[member];
  if (!m.added) return absl::FailedPreconditionError("not a member from PrepareMember");
  if (m.removed) return absl::FailedPreconditionError("member was removed");
  std::vector<std::string> initial;
  for (const Member& other : members_) {
    if (other.removed) continue;
    initial.push_back(absl::StrCat(other.name, "=http://127.0.0.1:", other.peer_port));
  }
  m.added_initial_cluster = absl::StrJoin(initial, ",");
  absl::Status status;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    Kill(member);
    absl::Status s = Spawn(member);
    if (!s.ok()) return s;
    status = WaitReady(member, timeout_ms);
    if (status.ok() || !LostClientPortRace(member)) return status;
    // The peer URL is already in the cluster's membership and cannot change, but the client URL
    // is the member's own: pick another and start again.
    Kill(member);
    std::set<int> taken;
    for (const Member& other : members_) {
      taken.insert(other.client_port);
      taken.insert(other.peer_port);
    }
    absl::StatusOr<int> client = PickFreePort(taken);
    if (!client.ok()) return client.status();
    members_[member].client_port = *client;
  }
  return status;
}

bool ServerCluster::LostClientPortRace(int member) const {
  const Member& m = members_[member];
  std::string log = absl::AsciiStrToLower(ReadTail(m.log_path, 1 << 16));
  size_t banner = log.rfind("==== harness: starting");
  if (banner != std::string::npos) log = log.substr(banner);
  if (log.find("address already in use") == std::string::npos) return false;
  // cairn: "cannot listen on http://127.0.0.1:<port>: Address already in use"; etcd: "listen tcp
  // 127.0.0.1:<port>: bind: address already in use". (The banner has "127.0.0.1:<port> --".)
  return log.find(absl::StrCat("127.0.0.1:", m.client_port, ":")) != std::string::npos;
}

void ServerCluster::MarkRemoved(int member) {
  Kill(member);
  members_[member].removed = true;
}

bool ServerCluster::IsRemoved(int member) const { return members_[member].removed; }

bool ServerCluster::IsRunning(int member) const { return members_[member].pid > 0; }

absl::StatusOr<int> ServerCluster::WaitExit(int member, int timeout_ms) {
  Member& m = members_[member];
  if (m.pid <= 0) return absl::FailedPreconditionError(absl::StrCat(m.name, " is not running"));
  int status = WaitWithTimeout(m.pid, timeout_ms);
  if (status == -1) {
    return absl::DeadlineExceededError(
        absl::StrCat(m.name, " still running after ", timeout_ms, " ms"));
  }
  m.pid = -1;
  return DecodeWaitStatus(status);
}

std::string ServerCluster::DataDir(int member) const { return members_[member].data_dir; }

std::string ServerCluster::LogPath(int member) const { return members_[member].log_path; }

std::string ServerCluster::LogTail(int member, size_t max_bytes) const {
  return ReadTail(members_[member].log_path, max_bytes);
}

pid_t ServerCluster::Pid(int member) const { return members_[member].pid; }

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& stdin_data,
                         int timeout_ms) {
  CommandResult result;
  if (argv.empty()) {
    result.err = "RunCommand: empty argv";
    return result;
  }
  std::vector<std::string> resolved = argv;
  resolved[0] = ResolveProgram(argv[0]);
  ExecArgs exec_args(resolved);
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) {
    result.err = absl::StrCat("pipe: ", std::strerror(errno));
    return result;
  }
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(in_pipe[0]);
    close(in_pipe[1]);
    result.err = absl::StrCat("pipe: ", std::strerror(errno));
    return result;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) close(fd);
    result.err = absl::StrCat("pipe: ", std::strerror(errno));
    return result;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) {
      close(fd);
    }
    result.err = absl::StrCat("fork: ", std::strerror(errno));
    return result;
  }
  if (pid == 0) {
    ChildCommonSetup(parent);
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execv(exec_args.pointers[0], exec_args.pointers.data());
    static const char kMsg[] = "RunCommand: exec failed\n";
    if (write(2, kMsg, sizeof(kMsg) - 1) < 0) _exit(127);
    _exit(127);
  }
  setpgid(pid, pid);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  int in_fd = in_pipe[1];
  int out_fd = out_pipe[0];
  int err_fd = err_pipe[0];
  fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) | O_NONBLOCK);
  size_t written = 0;
  if (stdin_data.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  bool timed_out = false;
  char buffer[65536];
  while (out_fd >= 0 || err_fd >= 0) {
    auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (remaining <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    int in_index = -1, out_index = -1, err_index = -1;
    if (in_fd >= 0) {
      in_index = n;
      fds[n++] = {in_fd, POLLOUT, 0};
    }
    if (out_fd >= 0) {
      out_index = n;
      fds[n++] = {out_fd, POLLIN, 0};
    }
    if (err_fd >= 0) {
      err_index = n;
      fds[n++] = {err_fd, POLLIN, 0};
    }
    int r = poll(fds, n, static_cast<int>(std::min<long long>(remaining, 1000)));
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (in_index >= 0 && fds[in_index].revents != 0) {
      ssize_t w = write(in_fd, stdin_data.data() + written, stdin_data.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) written = stdin_data.size();
      if (written >= stdin_data.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
    for (auto [index, fd, sink] : {std::tuple{out_index, &out_fd, &result.out},
                                   std::tuple{err_index, &err_fd, &result.err}}) {
      if (index < 0 || fds[index].revents == 0) continue;
      ssize_t got = read(*fd, buffer, sizeof(buffer));
      if (got > 0) {
        sink->append(buffer, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(*fd);
        *fd = -1;
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) close(fd);
  }
  if (timed_out) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    WaitWithTimeout(pid, kStopWaitMs);
    result.exit_code = -1;
    result.err += absl::StrCat("\nRunCommand: timed out after ", timeout_ms, " ms");
    return result;
  }
  auto remaining =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  int status = WaitWithTimeout(pid, static_cast<int>(std::max<long long>(remaining, 0)));
  if (status == -1) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    WaitWithTimeout(pid, kStopWaitMs);
    result.exit_code = -1;
    result.err += absl::StrCat("\nRunCommand: timed out after ", timeout_ms, " ms");
    return result;
  }
  result.exit_code = DecodeWaitStatus(status);
  return result;
}

}  // namespace cairn::testing
