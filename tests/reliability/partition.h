// Network partitions between real members on loopback (docs/reliability.md, "Partitions").
//
// Works only inside a private network namespace (the test binaries create one with
// unshare(CLONE_NEWNET) before anything else; Create refuses to run in the host's namespace, so
// the host's network is never touched). Each member's process is put in its own cgroup v2 group
// (under /sys/fs/cgroup/unified or /sys/fs/cgroup), and nftables rules in a table of that
// namespace drop the TCP packets a member's sockets send to the peer port of a member on the other
// side ("socket cgroupv2" matches the group of the socket's creator; existing connections are
// aborted with `ss -K` so that they are made again from the groups). Needs root, nft and ss.
//
// Thread-compatible; used from the fault loop's thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/harness/server_process.h"

namespace cairn::reliability {

class Partitioner {
 public:
  // FailedPrecondition (with the reason) when not in a private network namespace, not root, or
  // nft / cgroup v2 are missing.
  static absl::StatusOr<std::unique_ptr<Partitioner>> Create();
  ~Partitioner();

  // Cuts every link between a member of `a` and a member of `b` (both directions). The members'
  // current processes are (re)assigned to their groups first.
  absl::Status Cut(testing::ServerCluster& cluster, const std::vector<int>& a,
                   const std::vector<int>& b);
  // Removes every cut.
  absl::Status Heal();

 private:
  Partitioner(std::string mount, std::string group)
      : mount_(std::move(mount)), group_(std::move(group)) {}
  absl::Status Track(testing::ServerCluster& cluster, int member);
  std::string MemberGroup(int member) const;  // relative to the cgroup2 mount

  std::string mount_;  // "/sys/fs/cgroup/unified" or "/sys/fs/cgroup"
  std::string group_;  // "cairn-partition-<pid>"
  std::vector<int> created_;
};

// Unshares the network namespace of the calling process (call first thing in main, before any
// thread exists) and brings loopback up. Returns "" or what failed.
std::string EnterPrivateNetworkNamespace();

// True when process `pid` is in the network namespace this process started in (the host's), or
// when that cannot be told (EnterPrivateNetworkNamespace was not called, or /proc says nothing).
bool SharesHostNetwork(pid_t pid);

}  // namespace cairn::reliability
