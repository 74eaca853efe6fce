// The lock workload (issue 16 item 4): clients increment one counter key, each increment made
// under the recipes' Mutex and written by a Txn guarded by the grant's fencing compare
// (Grant::Guard) only, while faults run. No update may be lost: at the end the counter lies in
// [acknowledged increments, acknowledged + unknown-outcome increments]. Same thread rule as
// workload.h.
#pragma once

#include <cstdint>
#include <string>

#include "tests/reliability/workload.h"

namespace cairn::reliability {

struct LockResult {
  int64_t acknowledged = 0;  // guarded txns that succeeded
  int64_t unknown = 0;       // guarded txns whose outcome is unknown
  int64_t fenced = 0;        // guarded txns refused because the lock had been lost
  int64_t final_counter = -1;
  int faults_injected = 0;
  std::string error;  // harness failure
  bool ok() const {
    return error.empty() && final_counter >= acknowledged &&
           final_counter <= acknowledged + unknown;
  }
  std::string Summary() const;
};

LockResult RunLockWorkload(const RunOptions& options);

}  // namespace cairn::reliability
