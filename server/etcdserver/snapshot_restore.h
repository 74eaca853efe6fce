// The data dir of a new member made from a client snapshot (`etcdctl snapshot save` on a cairn
// member), as `etcdutl snapshot restore` makes it: the keys, leases and revisions of the
// snapshot; no membership, alarms or applied index, so the member starts a new cluster from its
// flags (docs/maintenance.md, "Restore"). `cairn snapshot restore` (server/main/restore.h) runs it.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "server/base/env.h"

namespace cairn::etcdserver {

// Verifies `file` (VerifyClientSnapshot) and makes `data_dir`, which must not exist. On any error
// nothing is left behind. Errors: kNotFound (no file), kAlreadyExists (data dir), kDataLoss (a
// damaged or truncated file), kInternal (I/O).
absl::Status RestoreClientSnapshot(const std::string& file, const std::string& data_dir,
                                   base::Env* env = base::Env::Default());

}  // namespace cairn::etcdserver
