// The request gate's space check (server/api/gate.h): with NOSPACE raised, Put, a Txn that writes
// and LeaseGrant are refused with etcd's error; reads, deletes, compaction and alarms pass.
#include <gtest/gtest.h>

#include "server/api/gate.h"
#include "server/base/errors.h"

namespace cairn::api {
namespace {

absl::Status Try(RequestGate& gate, Method method, bool writes = true) {
  absl::Status seen = absl::UnknownError("not run");
  RequestGate::Done done = [&seen](absl::Status st) { seen = std::move(st); };
  if (!gate.Admit(method, &done, writes)) return seen;
  done(absl::OkStatus());
  return seen;
}

TEST(GateSpaceTest, NoSpaceRefusesOnlyWritesThatGrowTheStore) {
  RequestGate gate;
  bool exceeded = false;
  gate.SetSpaceCheck([&exceeded] { return exceeded; });
  EXPECT_TRUE(Try(gate, Method::kPut).ok());
  exceeded = true;
  for (Method m : {Method::kPut, Method::kLeaseGrant, Method::kTxn}) {
    absl::Status st = Try(gate, m);
    EXPECT_TRUE(base::IsError(st, base::ErrorKind::kNoSpace)) << MethodName(m) << ": " << st;
    EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(st.message(), "etcdserver: mvcc: database space exceeded");
  }
  EXPECT_TRUE(Try(gate, Method::kTxn, /*writes=*/false).ok());
  for (Method m : {Method::kRange, Method::kDeleteRange, Method::kCompact, Method::kAlarm,
                   Method::kDefragment, Method::kLeaseRevoke, Method::kHashKV}) {
    EXPECT_TRUE(Try(gate, m).ok()) << MethodName(m);
  }
  EXPECT_EQ(gate.Stats(Method::kPut).refused, 1u);
  EXPECT_EQ(gate.Stats(Method::kPut).admitted, 1u);
  exceeded = false;
  EXPECT_TRUE(Try(gate, Method::kPut).ok());
}

}  // namespace
}  // namespace cairn::api
