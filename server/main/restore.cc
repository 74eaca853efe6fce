#include "server/main/restore.h"

#include "server/etcdserver/snapshot_restore.h"
#include "server/main/flags.h"

namespace cairn::main {

absl::Status RunSnapshotCommand(const std::vector<std::string>& args) {
  if (args.size() < 2 || args[0] != "restore") {
    return absl::InvalidArgumentError(
        "usage: cairn snapshot restore <filename> --data-dir <dir> --name <name> "
        "--initial-cluster <name=url,...> --initial-cluster-token <token> "
        "--initial-advertise-peer-urls <urls>");
  }
  const std::string file = args[1];
  std::vector<std::string> rest(args.begin() + 2, args.end());
  auto flags = ParseFlags(rest);
  if (!flags.ok()) return flags.status();
  std::string data_dir = flags->server.data_dir;
  if (data_dir.empty()) data_dir = flags->server.name + ".cairn";

  return etcdserver::RestoreClientSnapshot(file, data_dir);
}

}  // namespace cairn::main
