// Shared by the tests of server/transport (transport_test.cc, transport_snapshot_test.cc,
// transport_forward_test.cc): in-process members on ephemeral loopback ports with a fake Handler.
#pragma once

#include "server/transport/transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "cairnpb/peer.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/base/crc32c.h"
#include "server/base/fault_injection_env.h"

namespace cairn::transport::test {

namespace fs = std::filesystem;

constexpr auto kWaitBound = std::chrono::seconds(30);

// Polls `cond` until it holds or kWaitBound passes; returns its last value.
inline bool WaitFor(const std::function<bool()>& cond) {
  auto deadline = std::chrono::steady_clock::now() + kWaitBound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

inline std::string TempDir() {
  char tmpl[] = "/tmp/cairn_transport_test_XXXXXX";
  return mkdtemp(tmpl);
}

// A loopback port nothing listens on (bound, then released).
inline int UnusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A socket that accepts TCP connections (the kernel completes the handshake) but never speaks
// HTTP/2: a peer that hangs.
class Blackhole {
 public:
  Blackhole() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Blackhole() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

inline std::string Url(int port) { return "http://127.0.0.1:" + std::to_string(port); }

inline raft::Message App(uint64_t from, uint64_t to, uint64_t index) {
  raft::Message m;
  m.type = raft::MessageType::kApp;
  m.from = from;
  m.to = to;
  m.term = 3;
  m.index = index;
  m.commit = index;
  raft::Entry e;
  e.term = 3;
  e.index = index + 1;
  e.data = "entry-" + std::to_string(index);
  m.entries.push_back(e);
  return m;
}

inline raft::Message Snap(uint64_t from, uint64_t to, uint64_t term, uint64_t index) {
  raft::Message m;
  m.type = raft::MessageType::kSnap;
  m.from = from;
  m.to = to;
  m.term = term;
  raft::Snapshot snapshot;
  snapshot.metadata.index = index;
  snapshot.metadata.term = term;
  snapshot.metadata.conf_state.voters = {1, 2};
  snapshot.data = "stale data the transport must not ship";
  m.snapshot = snapshot;
  return m;
}

inline std::string PseudoRandomBytes(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool HasFileWithSuffix(const std::string& dir, const std::string& suffix) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return true;
    }
  }
  return false;
}

class FakeHandler : public Handler {
 public:
  void OnRaftMessage(raft::Message message) override {
    std::lock_guard<std::mutex> lock(mu_);
    messages_.push_back(std::move(message));
  }
  void OnSnapshot(raft::Message message, std::string path) override {
    std::lock_guard<std::mutex> lock(mu_);
    snapshots_.emplace_back(std::move(message), std::move(path));
  }
  void OnUnreachable(uint64_t to) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++unreachable_[to];
  }
  void OnSnapshotSent(uint64_t to, bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_sent_.emplace_back(to, ok);
  }
  absl::Status WriteSnapshot(const std::function<bool(std::string_view)>& sink) override {
    std::string data;
    size_t piece = 0;
    int fail_after = -1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      data = snapshot_data_;
      piece = piece_bytes_;
      fail_after = fail_after_pieces_;
    }
    // Blocks while the test holds the gate (to keep a send in flight).
    {
      std::unique_lock<std::mutex> lock(mu_);
      gate_cv_.wait(lock, [this] { return gate_open_; });
    }
    int pieces = 0;
    for (size_t off = 0; off < data.size(); off += piece) {
      if (fail_after >= 0 && pieces == fail_after) {
        return absl::InternalError("dump failed mid-way");
      }
      if (!sink(std::string_view(data).substr(off, piece))) {
        return absl::UnavailableError("receiver gone");
      }
      ++pieces;
    }
    return absl::OkStatus();
  }
  void OnLeaseRenew(int64_t id, std::function<void(absl::StatusOr<int64_t>)> done) override {
    done(Renew(id));
  }
  void OnLeaseTimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& request,
      std::function<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>)> done) override {
    done(TimeToLive(request));
  }
  absl::StatusOr<int64_t> Renew(int64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = leases_.find(id);
    if (it == leases_.end()) {
      return absl::NotFoundError("etcdserver: requested lease not found");
    }
    return it->second;
  }
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> TimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& request) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = leases_.find(request.id());
    if (it == leases_.end()) {
      return absl::NotFoundError("etcdserver: requested lease not found");
    }
    etcdserverpb::LeaseTimeToLiveResponse response;
    response.set_id(request.id());
    response.set_ttl(it->second - 1);
    response.set_grantedttl(it->second);
    if (request.keys()) response.add_keys("k1");
    return response;
  }
  // A store at revision kHashRevision compacted at kHashCompacted, answering as Maintenance.HashKV.
  static constexpr int64_t kHashRevision = 10;
  static constexpr int64_t kHashCompacted = 3;
  void OnHashKV(int64_t revision,
                std::function<void(absl::StatusOr<etcdserverpb::HashKVResponse>)> done) override {
    if (revision > kHashRevision) {
      return done(
          absl::OutOfRangeError("etcdserver: mvcc: required revision is a future revision"));
    }
    if (revision != 0 && revision < kHashCompacted) {
      return done(absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted"));
    }
    etcdserverpb::HashKVResponse response;
    const int64_t hashed = revision == 0 ? kHashRevision : revision;
    response.set_hash(static_cast<uint32_t>(1000 + hashed));
    response.set_compact_revision(kHashCompacted);
    response.mutable_header()->set_revision(hashed);
    done(std::move(response));
  }
  cairnpb::MembersResponse OnMembers() override {
    std::lock_guard<std::mutex> lock(mu_);
    return members_;
  }
  bool IsRemovedMember(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    return removed_.count(id) > 0;
  }
  // Promotions are held until AnswerPromotes (as the leader answers once the change applies).
  void OnMemberPromote(uint64_t id, std::function<void(absl::Status)> done) override {
    std::lock_guard<std::mutex> lock(mu_);
    promotes_.emplace_back(id, std::move(done));
  }
  size_t pending_promotes() {
    std::lock_guard<std::mutex> lock(mu_);
    return promotes_.size();
  }
  void AnswerPromotes(const absl::Status& status) {
    std::vector<std::pair<uint64_t, std::function<void(absl::Status)>>> promotes;
    {
      std::lock_guard<std::mutex> lock(mu_);
      promotes.swap(promotes_);
    }
    for (auto& [id, done] : promotes) done(status);
  }
  void OnRemovedFromCluster() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++told_removed_;
  }

  void MarkRemoved(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    removed_.insert(id);
  }
  int told_removed() {
    std::lock_guard<std::mutex> lock(mu_);
    return told_removed_;
  }

  std::vector<raft::Message> messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  size_t message_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_.size();
  }
  std::vector<std::pair<raft::Message, std::string>> snapshots() {
    std::lock_guard<std::mutex> lock(mu_);
    return snapshots_;
  }
  int unreachable(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return unreachable_[id];
  }
  std::vector<std::pair<uint64_t, bool>> snapshot_sent() {
    std::lock_guard<std::mutex> lock(mu_);
    return snapshot_sent_;
  }
  void SetSnapshot(std::string data, size_t piece_bytes, int fail_after_pieces = -1) {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_data_ = std::move(data);
    piece_bytes_ = piece_bytes;
    fail_after_pieces_ = fail_after_pieces;
  }
  void SetGate(bool open) {
    std::lock_guard<std::mutex> lock(mu_);
    gate_open_ = open;
    gate_cv_.notify_all();
  }
  void SetLease(int64_t id, int64_t ttl) {
    std::lock_guard<std::mutex> lock(mu_);
    leases_[id] = ttl;
  }
  void SetMembers(cairnpb::MembersResponse members) {
    std::lock_guard<std::mutex> lock(mu_);
    members_ = std::move(members);
  }

 private:
  std::mutex mu_;
  std::condition_variable gate_cv_;
  bool gate_open_ = true;
  std::vector<raft::Message> messages_;
  std::vector<std::pair<raft::Message, std::string>> snapshots_;
  std::map<uint64_t, int> unreachable_;
  std::vector<std::pair<uint64_t, bool>> snapshot_sent_;
  std::string snapshot_data_;
  size_t piece_bytes_ = 1;
  int fail_after_pieces_ = -1;
  std::map<int64_t, int64_t> leases_;
  cairnpb::MembersResponse members_;
  std::set<uint64_t> removed_;
  int told_removed_ = 0;
  std::vector<std::pair<uint64_t, std::function<void(absl::Status)>>> promotes_;
};

constexpr uint64_t kCluster = 0xc1u;

// One member: its handler, snapshot directory and transport.
struct Member {
  uint64_t id = 0;
  std::string snap_dir;
  FakeHandler handler;
  std::unique_ptr<Transport> transport;
  int port = 0;

  std::string url() const { return Url(port); }
};

inline std::unique_ptr<Member> StartMember(uint64_t id, TransportOptions options = {},
                                           uint64_t cluster_id = kCluster, int port = 0) {
  auto member = std::make_unique<Member>();
  member->id = id;
  member->snap_dir = TempDir() + "/snap";
  auto transport =
      Transport::Start({Url(port)}, cluster_id, id, member->snap_dir, &member->handler, options);
  EXPECT_TRUE(transport.ok()) << transport.status();
  if (!transport.ok()) return nullptr;
  member->transport = std::move(*transport);
  member->port = member->transport->BoundPorts().at(0);
  return member;
}

// Sends App messages [first, first + n) from `a` to member `to`.
inline void SendApps(Member* a, uint64_t to, uint64_t first, uint64_t n) {
  std::vector<raft::Message> batch;
  for (uint64_t i = first; i < first + n; ++i) batch.push_back(App(a->id, to, i));
  a->transport->Send(std::move(batch));
}

// Drives the receiver directly with a hand-made stream.
class RawPeer {
 public:
  explicit RawPeer(int port)
      : stub_(cairnpb::Peer::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                         grpc::InsecureChannelCredentials()))) {}
  cairnpb::Peer::Stub* stub() { return stub_.get(); }

 private:
  std::unique_ptr<cairnpb::Peer::Stub> stub_;
};

}  // namespace cairn::transport::test
