#include "cairn/testing/cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace cairn::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kMaxMembers = 5;
constexpr int kStartAttempts = 4;
constexpr milliseconds kPollInterval(25);
constexpr milliseconds kProbeTimeout(1000);
constexpr char kForeignServer[] = "answered by another server";

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         ::access(path.c_str(), X_OK) == 0;
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::string(value) : std::string();
}

// Binds port 0 on loopback to learn a free port. The port is released before the server binds
// it, so another process may take it meanwhile; Start retries with fresh ports when that happens.
absl::StatusOr<int> PickFreePort(std::set<int>& taken) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat("bind to a loopback port: ", std::strerror(err)));
    }
    ::close(fd);
    int port = ntohs(addr.sin_port);
    if (taken.insert(port).second) return port;
  }
  return absl::InternalError("could not pick distinct free loopback ports");
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

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// True when a member's log says it could not bind its ports (the race PickFreePort leaves open).
bool LostPortRace(const std::string& log_path) {
  std::string log = absl::AsciiStrToLower(ReadTail(log_path, 1 << 16));
  return log.find("address already in use") != std::string::npos ||
         log.find("cannot listen on") != std::string::npos;
}

CallOptions Bounded(milliseconds timeout) {
  CallOptions call;
  call.timeout = timeout;
  call.retry = RetryMode::kNever;
  return call;
}

std::atomic<int> cluster_counter{0};

}  // namespace

absl::StatusOr<std::string> FindCairnBinary(const std::string& explicit_path) {
  if (!explicit_path.empty()) {
    if (IsExecutableFile(explicit_path)) return explicit_path;
    return absl::NotFoundError(absl::StrCat("cairn binary '", explicit_path,
                                            "' (TestingClusterOptions::binary) is not an "
                                            "executable file"));
  }
  std::string from_env = Env("CAIRN_BINARY");
  if (!from_env.empty()) {
    if (IsExecutableFile(from_env)) return from_env;
    return absl::NotFoundError(absl::StrCat("cairn binary '", from_env,
                                            "' (environment variable CAIRN_BINARY) is not an "
                                            "executable file"));
  }
  std::vector<std::string> tried = {"TestingClusterOptions::binary (empty)",
                                    "$CAIRN_BINARY (unset)"};
#ifdef CAIRN_TESTING_INSTALLED_BINARY
  if (IsExecutableFile(CAIRN_TESTING_INSTALLED_BINARY))
    return std::string(CAIRN_TESTING_INSTALLED_BINARY);
  tried.push_back(CAIRN_TESTING_INSTALLED_BINARY);
#endif
  std::string path = Env("PATH");
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/cairn");
    if (IsExecutableFile(candidate)) return candidate;
  }
  tried.push_back(absl::StrCat("cairn on PATH (", path, ")"));
  return absl::NotFoundError(
      absl::StrCat("cairn binary not found; tried: ", absl::StrJoin(tried, "; "),
                   ". Set TestingClusterOptions::binary or CAIRN_BINARY."));
}

struct TestingCluster::Member {
  std::string name;
  int client_port = 0;
  int peer_port = 0;
  std::string data_dir;
  std::string log_path;
  pid_t pid = -1;
  bool paused = false;
  MemberId member_id = 0;
  // Set once the server answering on client_port proved to be this member (see VerifyIdentity).
  bool verified = false;
  // A client to this member only (no failover), so probes reach exactly this member.
  std::unique_ptr<Client> client;
};

TestingCluster::TestingCluster(TestingClusterOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<TestingCluster>> TestingCluster::Start(
    TestingClusterOptions options) {
  if (options.members < 1 || options.members > kMaxMembers) {
    return absl::InvalidArgumentError(absl::StrCat("TestingCluster: members must be in [1, ",
                                                   kMaxMembers, "], got ", options.members));
  }
  absl::StatusOr<std::string> binary = FindCairnBinary(options.binary);
  if (!binary.ok()) return binary.status();
  std::unique_ptr<TestingCluster> cluster(new TestingCluster(std::move(options)));
  cluster->binary_ = *binary;
  std::string root = cluster->options_.temp_root;
  if (root.empty()) root = Env("TMPDIR");
  if (root.empty()) root = "/tmp";
  std::string tmpl = absl::StrCat(root, "/cairn-testing-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", tmpl, ": ", std::strerror(errno)));
  }
  cluster->root_dir_ = tmpl;
  cluster->token_ = absl::StrCat("cairn-testing-", ::getpid(), "-", cluster_counter.fetch_add(1),
                                 "-", std::filesystem::path(tmpl).filename().string());
  for (int i = 0; i < cluster->options_.members; ++i) {
    auto m = std::make_unique<Member>();
    m->name = absl::StrCat("m", i);
    m->data_dir = absl::StrCat(cluster->root_dir_, "/", m->name, ".data");
    m->log_path = absl::StrCat(cluster->root_dir_, "/", m->name, ".log");
    cluster->members_.push_back(std::move(m));
  }
  absl::Status status;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    status = cluster->StartAll();
    if (status.ok()) return cluster;
    cluster->KillAll();
    // Only a lost port race is worth another attempt. The data dirs may hold the old ports'
    // cluster configuration: start from scratch.
    bool port_race = absl::StrContains(status.message(), kForeignServer);
    for (const auto& m : cluster->members_) {
      port_race = port_race || LostPortRace(m->log_path);
      std::error_code ec;
      std::filesystem::remove_all(m->data_dir, ec);
    }
    if (!port_race) break;
  }
  return status;
}

absl::Status TestingCluster::StartAll() {
  auto deadline = SteadyClock::now() + options_.start_timeout;
  std::set<int> taken;
  for (auto& m : members_) {
    absl::StatusOr<int> client_port = PickFreePort(taken);
    if (!client_port.ok()) return client_port.status();
    absl::StatusOr<int> peer_port = PickFreePort(taken);
    if (!peer_port.ok()) return peer_port.status();
    m->client_port = *client_port;
    m->peer_port = *peer_port;
    m->member_id = 0;
  }
  for (int i = 0; i < size(); ++i) {
    absl::Status s = Spawn(i);
    if (!s.ok()) return s;
  }
  auto remaining = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
  return WaitReady(std::max(remaining, milliseconds(0)));
}

std::vector<std::string> TestingCluster::MemberArgs(int member) const {
  const Member& m = *members_[member];
  std::string client_url = absl::StrCat("http://127.0.0.1:", m.client_port);
  std::string peer_url = absl::StrCat("http://127.0.0.1:", m.peer_port);
  std::vector<std::string> initial;
  for (const auto& other : members_) {
    initial.push_back(absl::StrCat(other->name, "=http://127.0.0.1:", other->peer_port));
  }
  // etcd's flag names. On a restart the data dir already knows the cluster and the
  // --initial-* flags are ignored, as etcd does.
  std::vector<std::string> args = {binary_,
                                   "--name",
                                   m.name,
                                   "--data-dir",
                                   m.data_dir,
                                   "--listen-client-urls",
                                   client_url,
                                   "--advertise-client-urls",
                                   client_url,
                                   "--listen-peer-urls",
                                   peer_url,
                                   "--initial-advertise-peer-urls",
                                   peer_url,
                                   "--initial-cluster",
                                   absl::StrJoin(initial, ","),
                                   "--initial-cluster-state",
                                   "new",
                                   "--initial-cluster-token",
                                   token_,
                                   "--log-level",
                                   options_.log_level};
  if (options_.heartbeat_interval_ms > 0) {
    args.push_back("--heartbeat-interval");
    args.push_back(absl::StrCat(options_.heartbeat_interval_ms));
  }
  if (options_.election_timeout_ms > 0) {
    args.push_back("--election-timeout");
    args.push_back(absl::StrCat(options_.election_timeout_ms));
  }
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  return args;
}

absl::Status TestingCluster::Spawn(int member) {
  Member& m = *members_[member];
  // Everything the child needs is prepared before fork: after it, in a multi-threaded parent,
  // the child may only call async-signal-safe functions.
  std::vector<std::string> args = MemberArgs(member);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int log_fd = ::open(m.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("open ", m.log_path, ": ", std::strerror(errno)));
  }
  std::string banner =
      absl::StrCat("==== cairn::testing: starting ", absl::StrJoin(args, " "), "\n");
  if (::write(log_fd, banner.data(), banner.size()) < 0) {
    // The banner only helps debugging.
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(err)));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    // Die with the thread that started us, even if the test process crashes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execv(argv[0], argv.data());
    static const char kMsg[] = "cairn::testing: exec of the cairn binary failed\n";
    if (::write(2, kMsg, sizeof(kMsg) - 1) < 0) ::_exit(127);
    ::_exit(127);
  }
  // Set the group from the parent too, so a signal to -pid works before the child runs.
  ::setpgid(pid, pid);
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  m.pid = pid;
  m.paused = false;
  m.verified = false;
  ClientOptions co;
  co.endpoints = {Endpoint(member)};
  co.wait_for_connection = false;
  co.dial_timeout = kProbeTimeout;
  co.default_timeout = kProbeTimeout;
  auto client = Client::Connect(co);
  if (!client.ok()) return client.status();
  m.client = std::move(*client);
  return absl::OkStatus();
}

absl::Status TestingCluster::CheckAlive(int member) {
  Member& m = *members_[member];
  if (m.pid <= 0) {
    return absl::FailedPreconditionError(absl::StrCat("member ", m.name, " is not running"));
  }
  int status = 0;
  pid_t r = ::waitpid(m.pid, &status, WNOHANG);
  if (r != m.pid) return absl::OkStatus();
  // Reaped here; forget the pid so that no later signal hits a reused one.
  m.pid = -1;
  m.paused = false;
  return absl::UnavailableError(absl::StrCat("cairn member ", m.name, " exited with status ",
                                             DecodeWaitStatus(status), "; log tail:\n",
                                             ReadTail(m.log_path, 4000)));
}

absl::Status TestingCluster::VerifyIdentity(int member) {
  Member& m = *members_[member];
  if (m.verified) return absl::OkStatus();
  auto list = m.client->cluster().MemberList(Bounded(kProbeTimeout));
  if (!list.ok()) return list.status();
  std::string peer_url = absl::StrCat("http://127.0.0.1:", m.peer_port);
  for (const auto& listed : list->members) {
    if (listed.id != list->header.member_id) continue;
    for (const std::string& url : listed.peer_urls) {
      if (url == peer_url) {
        m.verified = true;
        m.member_id = listed.id;
        return absl::OkStatus();
      }
    }
  }
  // Someone else's server took the port between PickFreePort and our bind: our member exits, and
  // until it does its endpoint is answered by a stranger.
  return absl::UnavailableError(absl::StrCat(kForeignServer, " on ", Endpoint(member),
                                             " (expected member ", m.name, ", peer URL ", peer_url,
                                             ")"));
}

void TestingCluster::KillAll() {
  for (int i = 0; i < size(); ++i) {
    (void)Kill(i);
  }
}

TestingCluster::~TestingCluster() {
  KillAll();
  if (!root_dir_.empty() && !options_.keep_dirs && std::getenv("CAIRN_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(root_dir_, ec);
  }
}

int TestingCluster::size() const { return static_cast<int>(members_.size()); }

const std::string& TestingCluster::binary() const { return binary_; }

std::string TestingCluster::Endpoint(int member) const {
  return absl::StrCat("127.0.0.1:", members_[member]->client_port);
}

std::vector<std::string> TestingCluster::Endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(Endpoint(i));
  return out;
}

std::string TestingCluster::ClientUrls() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(absl::StrCat("http://", Endpoint(i)));
  return absl::StrJoin(out, ",");
}

ClientOptions TestingCluster::MakeClientOptions() const {
  ClientOptions co;
  co.endpoints = Endpoints();
  co.dial_timeout = milliseconds(10000);
  co.default_timeout = milliseconds(15000);
  return co;
}

absl::StatusOr<std::unique_ptr<Client>> TestingCluster::Connect() const {
  return Client::Connect(MakeClientOptions());
}

absl::Status TestingCluster::Kill(int member) {
  Member& m = *members_[member];
  m.client.reset();
  if (m.pid <= 0) return absl::OkStatus();
  // SIGKILL ends a stopped process too.
  ::kill(-m.pid, SIGKILL);
  ::kill(m.pid, SIGKILL);
  int status = 0;
  while (::waitpid(m.pid, &status, 0) < 0 && errno == EINTR) {
  }
  m.pid = -1;
  m.paused = false;
  return absl::OkStatus();
}

absl::Status TestingCluster::WaitAnswers(int member, SteadyClock::time_point deadline) {
  Member& m = *members_[member];
  absl::Status last = absl::UnavailableError("not probed yet");
  while (true) {
    absl::Status alive = CheckAlive(member);
    if (!alive.ok()) return alive;
    auto status = m.client->maintenance().Status("", Bounded(kProbeTimeout));
    if (status.ok()) {
      absl::Status identity = VerifyIdentity(member);
      if (identity.ok()) return CheckAlive(member);
      if (absl::StrContains(identity.message(), kForeignServer)) return identity;
      last = identity;
    } else {
      last = status.status();
    }
    if (SteadyClock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollInterval);  // poll interval of a bounded wait
  }
  return absl::UnavailableError(
      absl::StrCat("cairn member ", m.name, " does not answer Maintenance.Status (",
                   last.ToString(), "); log tail:\n", ReadTail(m.log_path, 4000)));
}

absl::Status TestingCluster::Restart(int member, milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  absl::Status s = Kill(member);
  if (!s.ok()) return s;
  s = Spawn(member);
  if (!s.ok()) return s;
  return WaitAnswers(member, deadline);
}

absl::Status TestingCluster::Pause(int member) {
  Member& m = *members_[member];
  if (m.pid <= 0) {
    return absl::FailedPreconditionError(absl::StrCat("member ", m.name, " is not running"));
  }
  ::kill(-m.pid, SIGSTOP);
  m.paused = true;
  return absl::OkStatus();
}

absl::Status TestingCluster::Resume(int member) {
  Member& m = *members_[member];
  if (m.pid <= 0) {
    return absl::FailedPreconditionError(absl::StrCat("member ", m.name, " is not running"));
  }
  ::kill(-m.pid, SIGCONT);
  m.paused = false;
  return absl::OkStatus();
}

bool TestingCluster::IsRunning(int member) const { return members_[member]->pid > 0; }

bool TestingCluster::IsPaused(int member) const { return members_[member]->paused; }

pid_t TestingCluster::Pid(int member) const { return members_[member]->pid; }

absl::StatusOr<MemberId> TestingCluster::MemberIdOf(int member, milliseconds timeout) const {
  const Member& m = *members_[member];
  if (m.member_id != 0) return m.member_id;
  auto deadline = SteadyClock::now() + timeout;
  absl::Status last = absl::UnavailableError("not running");
  while (m.pid > 0 && !m.paused && m.client != nullptr) {
    auto status = m.client->maintenance().Status("", Bounded(kProbeTimeout));
    if (status.ok()) return status->header.member_id;
    last = status.status();
    if (SteadyClock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollInterval);  // poll interval of a bounded wait
  }
  return absl::UnavailableError(absl::StrCat("member ", m.name, " id unknown: ", last.ToString()));
}

absl::StatusOr<int> TestingCluster::Leader(milliseconds timeout) const {
  auto deadline = SteadyClock::now() + timeout;
  std::vector<std::string> said(members_.size());
  while (true) {
    // member id -> index, and what each running member names as leader.
    std::map<MemberId, int> index_of;
    std::set<MemberId> named;
    for (int i = 0; i < size(); ++i) {
      const Member& m = *members_[i];
      if (m.pid <= 0 || m.paused || m.client == nullptr) {
        said[i] = m.pid <= 0 ? "not running" : "paused";
        continue;
      }
      auto status = m.client->maintenance().Status("", Bounded(kProbeTimeout));
      if (!status.ok()) {
        said[i] = status.status().ToString();
        continue;
      }
      index_of[status->header.member_id] = i;
      named.insert(status->leader);
      said[i] = absl::StrCat("leader ", status->leader);
    }
    if (named.size() == 1 && *named.begin() != 0) {
      auto it = index_of.find(*named.begin());
      if (it != index_of.end()) return it->second;
    }
    if (SteadyClock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollInterval);  // poll interval of a bounded wait
  }
  std::vector<std::string> parts;
  for (int i = 0; i < size(); ++i) parts.push_back(absl::StrCat(members_[i]->name, ": ", said[i]));
  return absl::DeadlineExceededError(absl::StrCat("no agreed leader after ", timeout.count(),
                                                  " ms (", absl::StrJoin(parts, "; "), ")"));
}

absl::Status TestingCluster::WaitReady(milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  absl::Status last = absl::DeadlineExceededError("not probed yet");
  while (true) {
    bool ready = true;
    for (int i = 0; i < size() && ready; ++i) {
      Member& m = *members_[i];
      if (m.pid <= 0 || m.paused) continue;
      absl::Status alive = CheckAlive(i);
      if (!alive.ok()) return alive;
      // A linearizable read needs this member to reach a leader with a quorum.
      GetOptions get;
      auto read = m.client->kv().Get("cairn-testing-probe", get, Bounded(kProbeTimeout));
      if (!read.ok()) {
        last = absl::DeadlineExceededError(
            absl::StrCat("linearizable read through ", m.name, ": ", read.status().ToString()));
        ready = false;
        continue;
      }
      absl::Status identity = VerifyIdentity(i);
      if (absl::StrContains(identity.message(), kForeignServer)) return identity;
      if (!identity.ok()) {
        last = absl::DeadlineExceededError(
            absl::StrCat("member list through ", m.name, ": ", identity.ToString()));
        ready = false;
      }
    }
    if (ready) {
      auto remaining = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
      auto leader = Leader(std::max(remaining, milliseconds(0)));
      if (leader.ok()) {
        // Every member answered as itself and is still running.
        for (int i = 0; i < size(); ++i) {
          if (members_[i]->pid <= 0 || members_[i]->paused) continue;
          absl::Status alive = CheckAlive(i);
          if (!alive.ok()) return alive;
        }
        return absl::OkStatus();
      }
      last = leader.status();
    }
    if (SteadyClock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollInterval);  // poll interval of a bounded wait
  }
  return absl::DeadlineExceededError(
      absl::StrCat("cluster not ready after ", timeout.count(), " ms: ", last.message()));
}

std::string TestingCluster::DataDir(int member) const { return members_[member]->data_dir; }

std::string TestingCluster::LogPath(int member) const { return members_[member]->log_path; }

std::string TestingCluster::LogTail(int member, size_t max_bytes) const {
  return ReadTail(members_[member]->log_path, max_bytes);
}

}  // namespace cairn::testing
