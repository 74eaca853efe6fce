#include "tests/reliability/partition.h"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cairn::reliability {
namespace {

constexpr char kTable[] = "cairn_partition";

absl::Status Shell(const std::string& command) {
  const int rc = std::system((command + " 2>&1").c_str());
  if (rc != 0) return absl::InternalError(absl::StrCat("'", command, "' failed (", rc, ")"));
  return absl::OkStatus();
}

// The network namespace the process started in (recorded by EnterPrivateNetworkNamespace before it
// leaves it); 0 until then.
ino_t g_original_netns = 0;

ino_t CurrentNetns() {
  struct stat st {};
  return ::stat("/proc/self/ns/net", &st) == 0 ? st.st_ino : 0;
}

bool IsCgroup2(const std::string& dir) {
  struct stat st {};
  return ::stat((dir + "/cgroup.procs").c_str(), &st) == 0 &&
         ::stat((dir + "/cgroup.controllers").c_str(), &st) == 0;
}

int PeerPort(const testing::ServerCluster& cluster, int member) {
  const std::string url = cluster.PeerUrl(member);
  int port = 0;
  if (!absl::SimpleAtoi(url.substr(url.rfind(':') + 1), &port)) return 0;
  return port;
}

}  // namespace

std::string EnterPrivateNetworkNamespace() {
  g_original_netns = CurrentNetns();
  if (::unshare(CLONE_NEWNET) != 0)
    return absl::StrCat("unshare(CLONE_NEWNET): ", std::strerror(errno));
  if (!Shell("ip link set lo up").ok()) return "ip link set lo up failed";
  return "";
}

bool SharesHostNetwork(pid_t pid) {
  struct stat st {};
  if (g_original_netns == 0 || ::stat(absl::StrCat("/proc/", pid, "/ns/net").c_str(), &st) != 0)
    return true;
  return st.st_ino == g_original_netns;
}

absl::StatusOr<std::unique_ptr<Partitioner>> Partitioner::Create() {
  if (::geteuid() != 0) return absl::FailedPreconditionError("partitions need root (nft, cgroups)");
  if (g_original_netns == 0 || CurrentNetns() == g_original_netns) {
    return absl::FailedPreconditionError(
        "partitions run only in a private network namespace (the test binaries enter one; run "
        "cairn-torture as root so it can)");
  }
  if (!Shell("nft --version >/dev/null").ok())
    return absl::FailedPreconditionError("nft is missing (apt-get install nftables)");
  std::string mount;
  for (const char* dir : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    if (IsCgroup2(dir)) {
      mount = dir;
      break;
    }
  }
  if (mount.empty()) return absl::FailedPreconditionError("no writable cgroup v2 hierarchy");
  auto p = std::unique_ptr<Partitioner>(
      new Partitioner(mount, absl::StrCat("cairn-partition-", ::getpid())));
  if (::mkdir((mount + "/" + p->group_).c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(
        absl::StrCat("mkdir in ", mount, ": ", std::strerror(errno)));
  }
  if (absl::Status s =
          Shell(absl::StrCat("nft add table inet ", kTable, " && nft add chain inet ", kTable,
                             " out '{ type filter hook output priority 0; }'"));
      !s.ok()) {
    return absl::FailedPreconditionError(s.message());
  }
  return p;
}

Partitioner::~Partitioner() {
  (void)Shell(absl::StrCat("nft delete table inet ", kTable));
  // Members still running go back to the hierarchy's root group, so the groups can be removed.
  for (int m : created_) {
    const std::string dir = mount_ + "/" + MemberGroup(m);
    std::ifstream procs(dir + "/cgroup.procs");
    for (pid_t pid; procs >> pid;) std::ofstream(mount_ + "/cgroup.procs") << pid << std::endl;
    ::rmdir(dir.c_str());
  }
  ::rmdir((mount_ + "/" + group_).c_str());
}

std::string Partitioner::MemberGroup(int member) const {
  return absl::StrCat(group_, "/m", member);
}

absl::Status Partitioner::Track(testing::ServerCluster& cluster, int member) {
  const std::string dir = mount_ + "/" + MemberGroup(member);
  if (::mkdir(dir.c_str(), 0755) == 0) created_.push_back(member);
  const pid_t pid = cluster.Pid(member);
  if (pid <= 0) return absl::OkStatus();  // not running: nothing to cut
  std::ofstream procs(dir + "/cgroup.procs");
  procs << pid << std::endl;
  if (!procs) return absl::InternalError(absl::StrCat("cannot move pid ", pid, " into ", dir));
  return absl::OkStatus();
}

absl::Status Partitioner::Cut(testing::ServerCluster& cluster, const std::vector<int>& a,
                              const std::vector<int>& b) {
  // The group's path as nft resolves it: relative to /sys/fs/cgroup, at cgroup2 level 2.
  const std::string prefix =
      mount_ == "/sys/fs/cgroup" ? "" : mount_.substr(std::strlen("/sys/fs/cgroup/")) + "/";
  for (int m : a) {
    if (absl::Status s = Track(cluster, m); !s.ok()) return s;
  }
  for (int m : b) {
    if (absl::Status s = Track(cluster, m); !s.ok()) return s;
  }
  for (const auto& [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
    for (int x : *from) {
      std::string ports;
      for (int y : *to) absl::StrAppend(&ports, ports.empty() ? "" : ", ", PeerPort(cluster, y));
      if (absl::Status s =
              Shell(absl::StrCat("nft add rule inet ", kTable, " out socket cgroupv2 level 2 '\"",
                                 prefix, MemberGroup(x), "\"' tcp dport '{ ", ports, " }' drop"));
          !s.ok()) {
        return s;
      }
    }
  }
  // A socket keeps the group of the process that created it: connections made before the members
  // were moved would not match the rules. Abort every connection to the involved peer ports; the
  // members dial again from their groups (and the rules now hold those new connections).
  for (const std::vector<int>* side : {&a, &b}) {
    for (int m : *side) {
      if (absl::Status s =
              Shell(absl::StrCat("ss -K 'dport = :", PeerPort(cluster, m), "' >/dev/null"));
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Partitioner::Heal() {
  return Shell(absl::StrCat("nft flush chain inet ", kTable, " out"));
}

}  // namespace cairn::reliability
