// `cairn snapshot restore <file> [flags]`: makes a new member's data dir from a client snapshot
// (`etcdctl snapshot save` on any cairn member), as `etcdutl snapshot restore` does, with
// etcd's flags: --data-dir --name --initial-cluster --initial-cluster-token
// --initial-advertise-peer-urls. The restored member is then started with the same
// --name/--initial-cluster/--initial-cluster-token/--initial-advertise-peer-urls and
// --initial-cluster-state new (docs/maintenance.md, "Restore").
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace cairn::main {

// args: everything after "snapshot" ("restore", the file, flags). Prints nothing; the caller
// reports the status.
absl::Status RunSnapshotCommand(const std::vector<std::string>& args);

}  // namespace cairn::main
