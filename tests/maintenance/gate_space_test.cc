// The request gate's alarm checks (server/api/gate.h): with NOSPACE raised, Put, a Txn that writes
// and LeaseGrant are refused with etcd's error; reads, deletes, compaction and alarms pass. With
// CORRUPT raised every write is refused with "etcdserver: corrupt cluster"; reads pass.
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

TEST(GateCorruptTest, CorruptRefusesWritesUntilDisarmed) {
  RequestGate gate;
  bool corrupt = false;
  bool exceeded = false;
  gate.SetSpaceCheck([&exceeded] { return exceeded; });
  gate.SetCorruptCheck([&corrupt] { return corrupt; });
  EXPECT_TRUE(Try(gate, Method::kDeleteRange).ok());
  corrupt = true;
  for (Method m : {Method::kPut, Method::kDeleteRange, Method::kTxn, Method::kCompact,
                   Method::kLeaseGrant, Method::kLeaseRevoke}) {
    absl::Status st = Try(gate, m);
    EXPECT_TRUE(base::IsError(st, base::ErrorKind::kCorrupt)) << MethodName(m) << ": " << st;
    EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(st.message(), "etcdserver: corrupt cluster");
  }
  EXPECT_TRUE(Try(gate, Method::kTxn, /*writes=*/false).ok());
  for (Method m : {Method::kRange, Method::kAlarm, Method::kHashKV, Method::kStatus,
                   Method::kLeaseKeepAlive, Method::kMemberList, Method::kDefragment}) {
    EXPECT_TRUE(Try(gate, m).ok()) << MethodName(m);
  }
  EXPECT_TRUE(gate.AdmitStream(Method::kWatch).ok());
  gate.StreamDone(Method::kWatch, absl::OkStatus());
  // NOSPACE too: the space check answers first, as etcd's quota check precedes its applier.
  exceeded = true;
  EXPECT_TRUE(base::IsError(Try(gate, Method::kPut), base::ErrorKind::kNoSpace));
  EXPECT_TRUE(base::IsError(Try(gate, Method::kDeleteRange), base::ErrorKind::kCorrupt));
  exceeded = false;
  EXPECT_EQ(gate.Stats(Method::kDeleteRange).refused, 2u);
  // Refusals are counted by their code (grpc_server_handled_total's grpc_code label).
  const std::map<absl::StatusCode, uint64_t> want = {{absl::StatusCode::kResourceExhausted, 1},
                                                     {absl::StatusCode::kDataLoss, 1}};
  EXPECT_EQ(gate.Stats(Method::kPut).refused_by_code, want);
  corrupt = false;  // disarmed
  EXPECT_TRUE(Try(gate, Method::kPut).ok());
  EXPECT_TRUE(Try(gate, Method::kDeleteRange).ok());
}

}  // namespace
}  // namespace cairn::api
