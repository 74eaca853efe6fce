// Differential testing machinery: operation sequences run through the gRPC stubs against two
// servers, every answer normalized and compared.
//
// An Op is one etcd v3 KV or Lease request. RunSequence sends each op in order to one endpoint and
// returns a transcript: one line per op, "OK <response>" or "ERR <grpc code>: <message>", with the
// response's header.cluster_id, header.member_id and header.raft_term cleared at every nesting
// level (they legitimately differ between servers); everything else, including sub-response
// headers and their presence, is compared.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "etcdserverpb/rpc.pb.h"

namespace cairn::testing::compat {

using Op = std::variant<etcdserverpb::RangeRequest, etcdserverpb::PutRequest,
                        etcdserverpb::DeleteRangeRequest, etcdserverpb::TxnRequest,
                        etcdserverpb::CompactionRequest, etcdserverpb::LeaseGrantRequest,
                        etcdserverpb::LeaseRevokeRequest>;

// One-line description of an op for failure messages (long values are abbreviated).
std::string DescribeOp(const Op& op);

// Runs `ops` in order against the server at `endpoint` ("host:port"), one RPC at a time, and
// returns one transcript line per op. Thread-compatible; different calls may run concurrently.
std::vector<std::string> RunSequence(const std::string& endpoint, const std::vector<Op>& ops);

// Index of the first op whose transcript lines differ, or -1 when equal (a length difference is
// reported at the shorter length).
int FirstDifference(const std::vector<std::string>& a, const std::vector<std::string>& b);

// Human-readable report of the first difference: op index, op, both answers. "" when equal.
std::string DifferenceReport(const std::vector<Op>& ops, const std::vector<std::string>& a,
                             const std::string& a_name, const std::vector<std::string>& b,
                             const std::string& b_name);

// Lease ids granted by every script and random sequence (explicit ids, because servers choose
// ids for ID=0 differently). TTLs are long enough never to expire during a test.
inline constexpr int64_t kLeaseIds[] = {101, 102, 103};
inline constexpr int64_t kMissingLeaseId = 999;

// Hand-written sequences. Each starts on an empty store.
std::vector<Op> ErrorScript();    // every KV error etcd reports
std::vector<Op> LeaseScript();    // lease grant/revoke errors, leased puts, LEASE compares
std::vector<Op> RangeScript();    // Range options, historical reads, sorting, filters
std::vector<Op> TxnScript();      // compares on every target/result, range_end, nested txns
                                  // (no leases)
std::vector<Op> CompactScript();  // compaction and reads around it

// `count` random ops from `seed` over a small key space (so keys collide), including
// compactions, nested transactions and, with `leases`, lease grants/revokes and leased puts.
// Deterministic in `seed`; generated without looking at any answer, so the same list runs on both
// servers.
std::vector<Op> RandomSequence(uint64_t seed, int count, bool leases = true);

// Builders for scripts.
Op MakePut(const std::string& key, const std::string& value, int64_t lease = 0,
           bool prev_kv = false);
Op MakeRange(const std::string& key, const std::string& range_end = "", int64_t revision = 0);
Op MakeDelete(const std::string& key, const std::string& range_end = "", bool prev_kv = false);
Op MakeCompact(int64_t revision, bool physical = false);
Op MakeLeaseGrant(int64_t id, int64_t ttl_seconds = 3600);
Op MakeLeaseRevoke(int64_t id);

// The end of the prefix range starting at `prefix` (etcd's GetPrefixRangeEnd).
std::string PrefixEnd(const std::string& prefix);

}  // namespace cairn::testing::compat
