// cairn-torture: one long run of the reliability workload from a seed (scripts/torture.sh).
//   cairn-torture --server cairn|etcd --members N --faults kill,pause,member,disk --duration
//   SECONDS
//                 --seed N [--workload register|lock] [--clients N] [--snapshot-count N]
//                 [--keep-dir DIR]
// Exit 0 when the history checks out; 1 with the seed and the kept directory otherwise.
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "tests/reliability/lock_workload.h"
#include "tests/reliability/partition.h"
#include "tests/reliability/workload.h"

int main(int argc, char** argv) {
  cairn::reliability::RunOptions options;
  std::string faults = "kill,pause";
  std::string workload = "register";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    int64_t number = 0;
    const bool numeric = absl::SimpleAtoi(value, &number);
    if (flag == "--server") {
      options.kind =
          value == "etcd" ? cairn::testing::ServerKind::kEtcd : cairn::testing::ServerKind::kCairn;
    } else if (flag == "--workload") {
      workload = value;
    } else if (flag == "--faults") {
      faults = value;
    } else if (flag == "--members" && numeric) {
      options.members = static_cast<int>(number);
    } else if (flag == "--duration" && numeric) {
      options.duration_ms = static_cast<int>(number * 1000);
    } else if (flag == "--seed" && numeric) {
      options.seed = static_cast<uint64_t>(number);
    } else if (flag == "--clients" && numeric) {
      options.clients = static_cast<int>(number);
    } else if (flag == "--snapshot-count" && numeric) {
      options.snapshot_count = static_cast<int>(number);
    } else if (flag == "--keep-dir") {
      options.keep_dir = value;
    } else {
      std::cerr << "unknown or malformed flag " << flag << " " << value << "\n";
      return 2;
    }
  }
  std::string error;
  // Before any thread exists: the whole run (servers included) lives in a private network
  // namespace. Partition rules then never touch the host's network, and no process outside the
  // run can reach the members' loopback ports: on a shared host another test's client, left
  // pointing at a port number a member now holds, would write into the cluster (a revision
  // with no writer in the history; docs/reliability.md, "Seed 327").
  if (std::string failed = cairn::reliability::EnterPrivateNetworkNamespace(); !failed.empty()) {
    if (faults.find("partition") != std::string::npos) {
      std::cerr << "partition faults need a private network namespace: " << failed << "\n";
      return 1;
    }
    std::cerr << "warning: the run shares the host's network (" << failed
              << "); a write from another process would void it (outside_writes)\n";
  }
  options.faults = cairn::reliability::ParseFaults(faults, &error);
  if (!error.empty()) {
    std::cerr << error << "\n";
    return 2;
  }
  if (workload == "lock") {
    cairn::reliability::LockResult result = cairn::reliability::RunLockWorkload(options);
    std::cout << "lock workload seed " << options.seed << " members " << options.members
              << " faults " << faults << ": "
              << (result.ok() ? "OK: " : "LOST UPDATES or harness error: ") << result.Summary()
              << std::endl;
    return result.ok() ? 0 : 1;
  }
  cairn::reliability::RunResult result = cairn::reliability::RunRegisterWorkload(options);
  std::cout << "seed " << options.seed << " members " << options.members << " faults " << faults
            << ": " << result.Summary() << std::endl;
  return result.ok() ? 0 : 1;
}
