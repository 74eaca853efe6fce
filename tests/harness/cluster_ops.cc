#include "tests/harness/cluster_ops.h"

#include <algorithm>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace cairn::testing {
namespace {

using Clock = std::chrono::steady_clock;

void SetDeadline(grpc::ClientContext& context, int timeout_ms) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
}

// FNV-1a, 64 bit.
class Hasher {
 public:
  void Bytes(const std::string& s) {
    Int(static_cast<int64_t>(s.size()));
    for (unsigned char c : s) Byte(c);
  }
  void Int(int64_t v) {
    for (int i = 0; i < 8; ++i)
      Byte(static_cast<unsigned char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
  }
  uint64_t value() const { return h_; }

 private:
  void Byte(unsigned char c) {
    h_ ^= c;
    h_ *= 1099511628211ull;
  }
  uint64_t h_ = 14695981039346656037ull;
};

std::vector<int> LiveMembers(const ServerCluster& cluster, const std::vector<int>& exclude = {}) {
  std::vector<int> out;
  for (int i = 0; i < cluster.size(); ++i) {
    if (cluster.IsRemoved(i) || !cluster.IsRunning(i)) continue;
    if (std::find(exclude.begin(), exclude.end(), i) != exclude.end()) continue;
    out.push_back(i);
  }
  return out;
}

}  // namespace

bool PollUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

absl::Status FromGrpc(const grpc::Status& status, const std::string& what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

absl::StatusOr<etcdserverpb::StatusResponse> MemberStatus(const std::string& endpoint,
                                                          int timeout_ms) {
  auto stub = etcdserverpb::Maintenance::NewStub(MakeTestChannel(endpoint));
  grpc::ClientContext context;
  SetDeadline(context, timeout_ms);
  etcdserverpb::StatusResponse response;
  grpc::Status status = stub->Status(&context, etcdserverpb::StatusRequest(), &response);
  if (!status.ok()) return FromGrpc(status, absl::StrCat("Status on ", endpoint));
  return response;
}

absl::StatusOr<uint64_t> MemberId(const ServerCluster& cluster, int member, int timeout_ms) {
  auto status = MemberStatus(cluster.ClientEndpoint(member), timeout_ms);
  if (!status.ok()) return status.status();
  return status->header().member_id();
}

absl::StatusOr<int> WaitForLeader(const ServerCluster& cluster, int timeout_ms,
                                  const std::vector<int>& exclude) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last;
  while (true) {
    std::vector<std::string> seen;
    int leader_index = -1;
    uint64_t leader_id = 0;
    bool agree = true;
    std::map<int, uint64_t> reported;
    for (int i : LiveMembers(cluster, exclude)) {
      auto status = MemberStatus(cluster.ClientEndpoint(i), 500);
      if (!status.ok()) {
        seen.push_back(absl::StrCat(cluster.Name(i), ": ", status.status().message()));
        continue;
      }
      seen.push_back(absl::StrCat(cluster.Name(i), ": id ", status->header().member_id(),
                                  " leader ", status->leader()));
      reported[i] = status->leader();
      if (status->leader() != 0 && status->leader() == status->header().member_id()) {
        if (leader_index != -1) agree = false;  // two members claim leadership
        leader_index = i;
        leader_id = status->leader();
      }
    }
    if (leader_index != -1 && agree) {
      for (const auto& [i, id] : reported) {
        if (id != leader_id) agree = false;
      }
      if (agree) return leader_index;
    }
    last = absl::StrJoin(seen, "; ");
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no agreed leader after ", timeout_ms, " ms; last: ", last));
}

std::string DescribeDigest(const KvDigest& digest) {
  return absl::StrCat("{revision ", digest.revision, ", ", digest.count, " keys, hash ",
                      digest.hash, "}");
}

absl::StatusOr<KvDigest> KvContentDigest(const std::string& endpoint, int64_t revision,
                                         int timeout_ms, int64_t page_size) {
  auto stub = etcdserverpb::KV::NewStub(MakeTestChannel(endpoint));
  KvDigest digest;
  digest.revision = revision;
  Hasher hasher;
  std::string start(1, '\0');
  while (true) {
    etcdserverpb::RangeRequest request;
    request.set_key(start);
    request.set_range_end(std::string(1, '\0'));  // every key >= start
    request.set_serializable(true);
    request.set_revision(digest.revision);
    request.set_limit(page_size);
    request.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
    request.set_sort_target(etcdserverpb::RangeRequest::KEY);
    etcdserverpb::RangeResponse response;
    grpc::ClientContext context;
    SetDeadline(context, timeout_ms);
    grpc::Status status = stub->Range(&context, request, &response);
    if (!status.ok()) return FromGrpc(status, absl::StrCat("Range on ", endpoint));
    // Later pages read at the revision of the first (so the pages form one snapshot).
    if (digest.revision == 0) digest.revision = response.header().revision();
    for (const mvccpb::KeyValue& kv : response.kvs()) {
      hasher.Bytes(kv.key());
      hasher.Bytes(kv.value());
      hasher.Int(kv.create_revision());
      hasher.Int(kv.mod_revision());
      hasher.Int(kv.version());
      hasher.Int(kv.lease());
      ++digest.count;
    }
    if (!response.more() || response.kvs().empty()) break;
    start = response.kvs(response.kvs_size() - 1).key() + std::string(1, '\0');
  }
  digest.hash = hasher.value();
  return digest;
}

absl::StatusOr<KvDigest> WaitConverged(const ServerCluster& cluster, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last;
  while (true) {
    std::vector<std::string> seen;
    std::vector<KvDigest> digests;
    bool all_ok = true;
    for (int i : LiveMembers(cluster)) {
      auto digest = KvContentDigest(cluster.ClientEndpoint(i), 0, 10000);
      if (!digest.ok()) {
        all_ok = false;
        seen.push_back(absl::StrCat(cluster.Name(i), ": ", digest.status().message()));
        continue;
      }
      seen.push_back(absl::StrCat(cluster.Name(i), ": ", DescribeDigest(*digest)));
      digests.push_back(*digest);
    }
    if (all_ok && !digests.empty() &&
        std::all_of(digests.begin(), digests.end(),
                    [&](const KvDigest& d) { return d == digests.front(); })) {
      return digests.front();
    }
    last = absl::StrJoin(seen, "; ");
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("members did not converge in ", timeout_ms, " ms; last: ", last));
}

absl::StatusOr<etcdserverpb::MemberListResponse> ListMembers(const std::string& endpoint,
                                                             int timeout_ms) {
  auto stub = etcdserverpb::Cluster::NewStub(MakeTestChannel(endpoint));
  grpc::ClientContext context;
  SetDeadline(context, timeout_ms);
  etcdserverpb::MemberListResponse response;
  grpc::Status status = stub->MemberList(&context, etcdserverpb::MemberListRequest(), &response);
  if (!status.ok()) return FromGrpc(status, absl::StrCat("MemberList on ", endpoint));
  return response;
}

absl::StatusOr<etcdserverpb::MemberAddResponse> AddMember(const std::string& endpoint,
                                                          const std::string& peer_url, bool learner,
                                                          int timeout_ms) {
  auto stub = etcdserverpb::Cluster::NewStub(MakeTestChannel(endpoint));
  grpc::ClientContext context;
  SetDeadline(context, timeout_ms);
  etcdserverpb::MemberAddRequest request;
  request.add_peerurls(peer_url);
  request.set_islearner(learner);
  etcdserverpb::MemberAddResponse response;
  grpc::Status status = stub->MemberAdd(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, absl::StrCat("MemberAdd on ", endpoint));
  return response;
}

absl::Status RemoveMember(const std::string& endpoint, uint64_t id, int timeout_ms) {
  auto stub = etcdserverpb::Cluster::NewStub(MakeTestChannel(endpoint));
  grpc::ClientContext context;
  SetDeadline(context, timeout_ms);
  etcdserverpb::MemberRemoveRequest request;
  request.set_id(id);
  etcdserverpb::MemberRemoveResponse response;
  return FromGrpc(stub->MemberRemove(&context, request, &response),
                  absl::StrCat("MemberRemove on ", endpoint));
}

absl::Status PromoteMember(const std::string& endpoint, uint64_t id, int timeout_ms) {
  auto stub = etcdserverpb::Cluster::NewStub(MakeTestChannel(endpoint));
  grpc::ClientContext context;
  SetDeadline(context, timeout_ms);
  etcdserverpb::MemberPromoteRequest request;
  request.set_id(id);
  etcdserverpb::MemberPromoteResponse response;
  return FromGrpc(stub->MemberPromote(&context, request, &response),
                  absl::StrCat("MemberPromote on ", endpoint));
}

absl::Status MoveLeader(const std::string& endpoint, uint64_t target_id, int timeout_ms) {
  auto stub = etcdserverpb::Maintenance::NewStub(MakeTestChannel(endpoint));
  grpc::ClientContext context;
  SetDeadline(context, timeout_ms);
  etcdserverpb::MoveLeaderRequest request;
  request.set_targetid(target_id);
  etcdserverpb::MoveLeaderResponse response;
  return FromGrpc(stub->MoveLeader(&context, request, &response),
                  absl::StrCat("MoveLeader on ", endpoint));
}

absl::StatusOr<etcdserverpb::PutResponse> PutKey(const std::string& endpoint,
                                                 const std::string& key, const std::string& value,
                                                 int timeout_ms, int64_t lease) {
  auto stub = etcdserverpb::KV::NewStub(MakeTestChannel(endpoint));
  grpc::ClientContext context;
  SetDeadline(context, timeout_ms);
  etcdserverpb::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  request.set_lease(lease);
  etcdserverpb::PutResponse response;
  grpc::Status status = stub->Put(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, absl::StrCat("Put on ", endpoint));
  return response;
}

absl::StatusOr<etcdserverpb::RangeResponse> GetKey(const std::string& endpoint,
                                                   const std::string& key, bool serializable,
                                                   int timeout_ms) {
  auto stub = etcdserverpb::KV::NewStub(MakeTestChannel(endpoint));
  grpc::ClientContext context;
  SetDeadline(context, timeout_ms);
  etcdserverpb::RangeRequest request;
  request.set_key(key);
  request.set_serializable(serializable);
  etcdserverpb::RangeResponse response;
  grpc::Status status = stub->Range(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, absl::StrCat("Range on ", endpoint));
  return response;
}

}  // namespace cairn::testing
