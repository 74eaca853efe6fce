// Tests of server/transport: two or three Transports in one process on ephemeral loopback ports,
// each with a fake Handler. Conditions are polled with a bound; no test asserts a duration.
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

namespace cairn::transport {
namespace {

namespace fs = std::filesystem;

constexpr auto kWaitBound = std::chrono::seconds(30);

// Polls `cond` until it holds or kWaitBound passes; returns its last value.
bool WaitFor(const std::function<bool()>& cond) {
  auto deadline = std::chrono::steady_clock::now() + kWaitBound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

std::string TempDir() {
  char tmpl[] = "/tmp/cairn_transport_test_XXXXXX";
  return mkdtemp(tmpl);
}

// A loopback port nothing listens on (bound, then released).
int UnusedPort() {
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

std::string Url(int port) { return "http://127.0.0.1:" + std::to_string(port); }

raft::Message App(uint64_t from, uint64_t to, uint64_t index) {
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

raft::Message Snap(uint64_t from, uint64_t to, uint64_t term, uint64_t index) {
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

std::string PseudoRandomBytes(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool HasFileWithSuffix(const std::string& dir, const std::string& suffix) {
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

std::unique_ptr<Member> StartMember(uint64_t id, TransportOptions options = {},
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
void SendApps(Member* a, uint64_t to, uint64_t first, uint64_t n) {
  std::vector<raft::Message> batch;
  for (uint64_t i = first; i < first + n; ++i) batch.push_back(App(a->id, to, i));
  a->transport->Send(std::move(batch));
}

TEST(TransportTest, DeliversMessagesInOrderPerPeer) {
  auto a = StartMember(1);
  auto b = StartMember(2);
  auto c = StartMember(3);
  ASSERT_TRUE(a && b && c);
  a->transport->AddPeer(2, {b->url()});
  a->transport->AddPeer(3, {c->url()});
  constexpr uint64_t kN = 2000;
  for (uint64_t i = 0; i < kN; i += 50) {
    std::vector<raft::Message> batch;
    for (uint64_t j = i; j < i + 50; ++j) {
      batch.push_back(App(1, 2, j));
      batch.push_back(App(1, 3, j));
    }
    a->transport->Send(std::move(batch));
    // Stay under the default queue bound: raft paces itself the same way.
    ASSERT_TRUE(WaitFor([&] { return a->transport->stats().sent + 200 >= 2 * (i + 50); }));
  }
  ASSERT_TRUE(WaitFor(
      [&] { return b->handler.message_count() == kN && c->handler.message_count() == kN; }));
  for (Member* m : {b.get(), c.get()}) {
    auto got = m->handler.messages();
    for (uint64_t i = 0; i < kN; ++i) {
      ASSERT_EQ(got[i], App(1, m->id, i)) << "member " << m->id << " message " << i;
    }
    EXPECT_EQ(m->transport->stats().received, kN);
  }
  EXPECT_EQ(a->transport->stats().sent, 2 * kN);
  EXPECT_EQ(a->transport->stats().dropped, 0u);
  EXPECT_EQ(a->handler.unreachable(2), 0);
  EXPECT_EQ(a->handler.unreachable(3), 0);
}

TEST(TransportTest, MessageToUnknownPeerIsDroppedAndReported) {
  auto a = StartMember(1);
  ASSERT_TRUE(a);
  SendApps(a.get(), 9, 0, 3);
  EXPECT_EQ(a->transport->stats().dropped, 3u);
  EXPECT_TRUE(WaitFor([&] { return a->handler.unreachable(9) > 0; }));
}

TEST(TransportTest, DeadPeerDoesNotDelayOthersAndItsMessagesAreDropped) {
  auto a = StartMember(1);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  a->transport->AddPeer(3, {Url(UnusedPort())});  // never started
  constexpr uint64_t kRounds = 50;
  for (uint64_t r = 0; r < kRounds; ++r) {
    SendApps(a.get(), 3, r * 20, 20);
    SendApps(a.get(), 2, r, 1);
    ASSERT_TRUE(WaitFor([&] { return b->handler.message_count() == r + 1; }));
  }
  auto got = b->handler.messages();
  for (uint64_t i = 0; i < kRounds; ++i) EXPECT_EQ(got[i], App(1, 2, i));
  // Every message to the dead peer is dropped (queue full or stream failed), none sent.
  EXPECT_TRUE(WaitFor([&] { return a->transport->stats().dropped == kRounds * 20; }));
  EXPECT_EQ(a->transport->stats().sent, kRounds);
  EXPECT_TRUE(WaitFor([&] { return a->handler.unreachable(3) > 0; }));
  EXPECT_EQ(a->handler.unreachable(2), 0);
}

TEST(TransportTest, HungPeerKeepsABoundedQueueAndDoesNotDelayOthers) {
  Blackhole hung;
  TransportOptions options;
  options.max_queued_messages = 16;
  auto a = StartMember(1, options);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  a->transport->AddPeer(3, {Url(hung.port())});
  constexpr uint64_t kToHung = 1000;
  SendApps(a.get(), 3, 0, kToHung);
  // The sender to 3 is stuck connecting: at most one queue plus one frame is held, the rest
  // dropped.
  auto dropped = a->transport->stats().dropped;
  EXPECT_GE(dropped, kToHung - 2 * options.max_queued_messages);
  EXPECT_TRUE(WaitFor([&] { return a->handler.unreachable(3) > 0; }));
  for (uint64_t i = 0; i < 10; ++i) {
    SendApps(a.get(), 2, i, 1);
    ASSERT_TRUE(WaitFor([&] { return b->handler.message_count() == i + 1; }));
  }
  EXPECT_EQ(a->handler.unreachable(2), 0);
  // Destruction with a sender stuck on the hung peer must not hang (ctest's timeout would catch
  // it).
  a.reset();
}

TEST(TransportTest, DeliveryResumesAfterPeerRestart) {
  auto a = StartMember(1);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  SendApps(a.get(), 2, 0, 10);
  ASSERT_TRUE(WaitFor([&] { return b->handler.message_count() == 10; }));

  int port = b->port;
  std::string snap_dir = b->snap_dir;
  b->transport.reset();  // peer stops
  // Messages sent while it is down are dropped and the peer reported.
  uint64_t next = 10;
  EXPECT_TRUE(WaitFor([&] {
    SendApps(a.get(), 2, next++, 1);
    return a->handler.unreachable(2) > 0;
  }));

  // Restart on the same port with a fresh handler.
  auto b2 = std::make_unique<Member>();
  b2->id = 2;
  auto restarted = Transport::Start({Url(port)}, kCluster, 2, snap_dir, &b2->handler);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  b2->transport = std::move(*restarted);
  // Raft retransmits until something gets through; do the same.
  ASSERT_TRUE(WaitFor([&] {
    SendApps(a.get(), 2, next++, 1);
    return b2->handler.message_count() > 0;
  }));
  uint64_t first = next;
  SendApps(a.get(), 2, first, 100);
  ASSERT_TRUE(WaitFor([&] {
    auto got = b2->handler.messages();
    return !got.empty() && got.back() == App(1, 2, first + 99);
  }));
  auto got = b2->handler.messages();
  // The 100 after the first delivery arrive complete and in order.
  ASSERT_GE(got.size(), 100u);
  for (uint64_t i = 0; i < 100; ++i) EXPECT_EQ(got[got.size() - 100 + i], App(1, 2, first + i));
}

TEST(TransportTest, SnapshotIsStreamedInChunksAndVerified) {
  TransportOptions options;
  options.snapshot_chunk_bytes = 256 * 1024;
  auto a = StartMember(1, options);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  const std::string data = PseudoRandomBytes(5 * 1024 * 1024 + 123, 7);
  a->handler.SetSnapshot(data, 100 * 1000);  // pieces do not line up with chunks
  a->transport->Send({Snap(1, 2, 7, 42)});

  ASSERT_TRUE(WaitFor([&] { return !a->handler.snapshot_sent().empty(); }));
  EXPECT_EQ(a->handler.snapshot_sent(), (std::vector<std::pair<uint64_t, bool>>{{2, true}}));
  ASSERT_TRUE(WaitFor([&] { return b->handler.snapshots().size() == 1; }));
  auto [message, path] = b->handler.snapshots()[0];
  EXPECT_EQ(path, b->snap_dir + "/0000000000000007-000000000000002a.snap");
  EXPECT_EQ(message.type, raft::MessageType::kSnap);
  EXPECT_EQ(message.from, 1u);
  ASSERT_TRUE(message.snapshot.has_value());
  EXPECT_EQ(message.snapshot->metadata, Snap(1, 2, 7, 42).snapshot->metadata);
  EXPECT_TRUE(message.snapshot->data.empty());
  EXPECT_TRUE(ReadFile(path) == data);
  EXPECT_FALSE(HasFileWithSuffix(b->snap_dir, ".tmp"));
  EXPECT_EQ(a->transport->stats().snapshots_sent, 1u);
  EXPECT_EQ(b->transport->stats().snapshots_received, 1u);
  // Raft messages are not held up by the snapshot stream.
  SendApps(a.get(), 2, 0, 5);
  EXPECT_TRUE(WaitFor([&] { return b->handler.message_count() == 5; }));
}

// The receiver does its file work through TransportOptions::env: the snapshot lands in that Env,
// synced under its final name (it survives a crash that drops every unsynced byte), and nothing
// is written to the real disk.
TEST(TransportTest, ReceivedSnapshotIsWrittenAndSyncedThroughTheEnv) {
  base::FaultInjectionEnv env(1);
  auto a = StartMember(1);
  TransportOptions options;
  options.env = &env;
  auto b = StartMember(2, options);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  const std::string data = PseudoRandomBytes(300 * 1000, 3);
  a->handler.SetSnapshot(data, 64 * 1024);
  a->transport->Send({Snap(1, 2, 7, 42)});
  ASSERT_TRUE(WaitFor([&] { return b->handler.snapshots().size() == 1; }));
  const std::string path = b->handler.snapshots()[0].second;
  EXPECT_EQ(path, b->snap_dir + "/0000000000000007-000000000000002a.snap");
  EXPECT_FALSE(fs::exists(path));  // not on the real disk
  EXPECT_EQ(env.UnsyncedBytes(path), 0u);
  env.SimulateCrash(base::FaultInjectionEnv::CrashMode::kDropUnsynced);
  std::string contents;
  ASSERT_TRUE(env.ReadFile(path, &contents).ok());
  EXPECT_TRUE(contents == data);
  absl::StatusOr<std::vector<std::string>> names = env.ListDir(b->snap_dir);
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(*names, std::vector<std::string>{"0000000000000007-000000000000002a.snap"});
}

TEST(TransportTest, AbortedSnapshotLeavesNothingBehind) {
  TransportOptions options;
  options.snapshot_chunk_bytes = 64 * 1024;
  auto a = StartMember(1, options);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  // The dump fails after 1 MB has been streamed.
  a->handler.SetSnapshot(PseudoRandomBytes(3 * 1024 * 1024, 9), 128 * 1024, 8);
  a->transport->Send({Snap(1, 2, 2, 10)});
  ASSERT_TRUE(WaitFor([&] { return !a->handler.snapshot_sent().empty(); }));
  EXPECT_EQ(a->handler.snapshot_sent(), (std::vector<std::pair<uint64_t, bool>>{{2, false}}));
  // The receiver sees the stream break and removes its partial file.
  EXPECT_TRUE(WaitFor([&] {
    return !HasFileWithSuffix(b->snap_dir, ".tmp") && !HasFileWithSuffix(b->snap_dir, ".snap");
  }));
  EXPECT_TRUE(b->handler.snapshots().empty());
  EXPECT_EQ(a->transport->stats().snapshots_sent, 0u);
  EXPECT_EQ(b->transport->stats().snapshots_received, 0u);

  // A later complete send goes through.
  a->handler.SetSnapshot(PseudoRandomBytes(300 * 1024, 10), 50 * 1024);
  a->transport->Send({Snap(1, 2, 2, 11)});
  ASSERT_TRUE(WaitFor([&] { return b->handler.snapshots().size() == 1; }));
  EXPECT_TRUE(WaitFor([&] { return a->handler.snapshot_sent().size() == 2; }));
  EXPECT_EQ(a->handler.snapshot_sent()[1], std::make_pair(uint64_t{2}, true));
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

TEST(TransportTest, SnapshotWithBadChecksumIsRefused) {
  auto b = StartMember(2);
  ASSERT_TRUE(b);
  RawPeer raw(b->port);
  grpc::ClientContext context;
  cairnpb::SnapshotAck ack;
  auto writer = raw.stub()->Snapshot(&context, &ack);
  raft::Message m = Snap(1, 2, 4, 20);
  m.snapshot->data.clear();
  cairnpb::SnapshotChunk first;
  first.mutable_header()->set_cluster_id(kCluster);
  first.mutable_header()->set_from(1);
  first.mutable_header()->set_to(2);
  first.set_message(raft::EncodeMessage(m));
  first.set_data("hello ");
  ASSERT_TRUE(writer->Write(first));
  cairnpb::SnapshotChunk last;
  last.set_data("world");
  last.set_last(true);
  last.set_crc32c(base::crc32c::Value(std::string_view("hello world")) ^ 1u);
  writer->Write(last);
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS) << status.error_message();
  EXPECT_FALSE(HasFileWithSuffix(b->snap_dir, ".tmp"));
  EXPECT_FALSE(HasFileWithSuffix(b->snap_dir, ".snap"));
  EXPECT_TRUE(b->handler.snapshots().empty());

  // The same stream with the right checksum is accepted.
  grpc::ClientContext context2;
  auto writer2 = raw.stub()->Snapshot(&context2, &ack);
  ASSERT_TRUE(writer2->Write(first));
  last.set_crc32c(base::crc32c::Value(std::string_view("hello world")));
  writer2->Write(last);
  writer2->WritesDone();
  status = writer2->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(b->handler.snapshots().size(), 1u);
  EXPECT_EQ(ReadFile(b->handler.snapshots()[0].second), "hello world");
}

TEST(TransportTest, SnapshotSendsBeyondTheLimitAreRefusedAtOnce) {
  TransportOptions options;
  options.max_concurrent_snapshot_sends = 1;
  auto a = StartMember(1, options);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  a->handler.SetSnapshot(PseudoRandomBytes(100 * 1024, 3), 10 * 1024);
  a->handler.SetGate(false);  // the first send stays in flight
  a->transport->Send({Snap(1, 2, 1, 5)});
  a->transport->Send({Snap(1, 2, 1, 6)});
  ASSERT_TRUE(WaitFor([&] { return a->handler.snapshot_sent().size() == 1; }));
  EXPECT_EQ(a->handler.snapshot_sent()[0], std::make_pair(uint64_t{2}, false));
  a->handler.SetGate(true);
  ASSERT_TRUE(WaitFor([&] { return a->handler.snapshot_sent().size() == 2; }));
  EXPECT_EQ(a->handler.snapshot_sent()[1], std::make_pair(uint64_t{2}, true));
  ASSERT_TRUE(WaitFor([&] { return b->handler.snapshots().size() == 1; }));
  EXPECT_EQ(b->handler.snapshots()[0].first.snapshot->metadata.index, 5u);
}

TEST(TransportTest, StoppingWithASnapshotInFlightDoesNotHang) {
  auto a = StartMember(1);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  a->handler.SetSnapshot(PseudoRandomBytes(64 * 1024 * 1024, 5), 64 * 1024);
  a->transport->Send({Snap(1, 2, 1, 5)});
  a.reset();
  EXPECT_TRUE(WaitFor([&] { return !HasFileWithSuffix(b->snap_dir, ".tmp"); }));
  EXPECT_TRUE(b->handler.snapshots().empty());
}

TEST(TransportTest, PeerOfAnotherClusterIsRefused) {
  auto a = StartMember(1, {}, /*cluster_id=*/100);
  auto b = StartMember(2, {}, /*cluster_id=*/200);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  uint64_t next = 0;
  EXPECT_TRUE(WaitFor([&] {
    SendApps(a.get(), 2, next++, 1);
    return a->handler.unreachable(2) > 0;
  }));
  EXPECT_EQ(b->handler.message_count(), 0u);

  RawPeer raw(b->port);
  {
    grpc::ClientContext context;
    cairnpb::MembersRequest request;
    request.mutable_header()->set_cluster_id(100);
    cairnpb::MembersResponse response;
    grpc::Status status = raw.stub()->Members(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(status.error_message(), "cluster ID mismatch");
  }
  {
    // A joining member does not know the cluster id yet.
    grpc::ClientContext context;
    cairnpb::MembersRequest request;
    cairnpb::MembersResponse response;
    EXPECT_TRUE(raw.stub()->Members(&context, request, &response).ok());
  }
  {
    grpc::ClientContext context;
    cairnpb::LeaseRenewRequest request;
    request.mutable_header()->set_cluster_id(100);
    cairnpb::LeaseRenewResponse response;
    grpc::Status status = raw.stub()->LeaseRenew(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }

  // Once they agree, messages flow.
  b->transport->SetClusterId(100);
  EXPECT_TRUE(WaitFor([&] {
    SendApps(a.get(), 2, next++, 1);
    return b->handler.message_count() > 0;
  }));
}

// A member removed from the cluster is refused by its former peers (even on a stream opened
// before its removal) and is told so; members not removed are unaffected.
TEST(TransportTest, RemovedMemberIsRefusedAndTold) {
  auto a = StartMember(1);
  auto b = StartMember(2);
  auto c = StartMember(3);
  ASSERT_TRUE(a && b && c);
  a->transport->AddPeer(2, {b->url()});
  c->transport->AddPeer(2, {b->url()});
  SendApps(a.get(), 2, 0, 5);
  ASSERT_TRUE(WaitFor([&] { return b->handler.message_count() == 5; }));

  b->handler.MarkRemoved(1);
  uint64_t next = 5;
  ASSERT_TRUE(WaitFor([&] {
    SendApps(a.get(), 2, next++, 1);
    return a->handler.told_removed() > 0;
  }));
  EXPECT_EQ(b->handler.message_count(), 5u) << "a removed member's messages were delivered";
  // The refused stream is also reported unreachable (after the removal notice).
  EXPECT_TRUE(WaitFor([&] { return a->handler.unreachable(2) > 0; }));

  SendApps(c.get(), 2, 0, 3);
  ASSERT_TRUE(WaitFor([&] { return b->handler.message_count() == 8; }));
  EXPECT_EQ(c->handler.told_removed(), 0);
}

// The forwarding calls are asynchronous: these wait for their one callback.
template <typename T>
class Answer {
 public:
  std::function<void(T)> callback() {
    return [p = promise_](T value) { p->set_value(std::move(value)); };
  }
  T get() { return future_.get(); }
  bool ready() { return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }

 private:
  std::shared_ptr<std::promise<T>> promise_ = std::make_shared<std::promise<T>>();
  std::future<T> future_ = promise_->get_future();
};

constexpr int64_t kForwardMs = 5000;

absl::StatusOr<int64_t> Renew(Transport* t, uint64_t peer, int64_t id) {
  Answer<absl::StatusOr<int64_t>> answer;
  t->LeaseRenew(peer, id, kForwardMs, answer.callback());
  return answer.get();
}

absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> TimeToLive(
    Transport* t, uint64_t peer, const etcdserverpb::LeaseTimeToLiveRequest& request) {
  Answer<absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>> answer;
  t->LeaseTimeToLive(peer, request, kForwardMs, answer.callback());
  return answer.get();
}

TEST(TransportTest, LeaseCallsAreForwardedWithEtcdErrors) {
  auto a = StartMember(1);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  b->handler.SetLease(5, 30);

  auto ttl = Renew(a->transport.get(), 2, 5);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(*ttl, 30);
  auto missing = Renew(a->transport.get(), 2, 6);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "etcdserver: requested lease not found");

  etcdserverpb::LeaseTimeToLiveRequest request;
  request.set_id(5);
  request.set_keys(true);
  auto answer = TimeToLive(a->transport.get(), 2, request);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->id(), 5);
  EXPECT_EQ(answer->ttl(), 29);
  EXPECT_EQ(answer->grantedttl(), 30);
  ASSERT_EQ(answer->keys_size(), 1);
  request.set_id(7);
  auto not_found = TimeToLive(a->transport.get(), 2, request);
  EXPECT_EQ(not_found.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(not_found.status().message(), "etcdserver: requested lease not found");

  // Unknown and unreachable peers.
  EXPECT_EQ(Renew(a->transport.get(), 9, 5).status().code(), absl::StatusCode::kUnavailable);
  a->transport->AddPeer(3, {Url(UnusedPort())});
  auto down = Renew(a->transport.get(), 3, 5);
  EXPECT_TRUE(down.status().code() == absl::StatusCode::kUnavailable ||
              down.status().code() == absl::StatusCode::kDeadlineExceeded)
      << down.status();
}

TEST(TransportTest, ForwardedPromoteCompletesWhenTheLeaderAnswersWithoutHoldingAThread) {
  auto a = StartMember(1);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  // More promotions in flight than the peer server has threads for blocking handlers: each
  // waits at the leader without holding one.
  constexpr int kCalls = 64;
  std::vector<Answer<absl::Status>> answers(kCalls);
  for (auto& answer : answers) a->transport->MemberPromote(2, 7, kForwardMs, answer.callback());
  ASSERT_TRUE(WaitFor([&] { return b->handler.pending_promotes() == kCalls; }));
  // Meanwhile the peer still answers other calls.
  b->handler.SetLease(5, 30);
  auto ttl = Renew(a->transport.get(), 2, 5);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  for (auto& answer : answers) EXPECT_FALSE(answer.ready());
  b->handler.AnswerPromotes(absl::FailedPreconditionError("etcdserver: learner not ready"));
  for (auto& answer : answers) {
    absl::Status st = answer.get();
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(st.message(), "etcdserver: learner not ready");
  }
}

TEST(TransportTest, StoppingEndsForwardedCallsOnBothSides) {
  auto a = StartMember(1);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  Answer<absl::Status> held_by_peer;
  a->transport->MemberPromote(2, 7, kForwardMs, held_by_peer.callback());
  ASSERT_TRUE(WaitFor([&] { return b->handler.pending_promotes() == 1; }));
  // The peer stops with the promotion unanswered: the caller is told, the peer's late answer
  // goes nowhere.
  b->transport.reset();
  absl::Status st = held_by_peer.get();
  EXPECT_FALSE(st.ok());
  b->handler.AnswerPromotes(absl::OkStatus());

  // The caller stops with a call in flight to a peer that never answers: the callback runs
  // before the transport is gone, and calls after that fail at once.
  auto c = StartMember(3);
  ASSERT_TRUE(c);
  a->transport->AddPeer(3, {c->url()});
  Answer<absl::Status> in_flight;
  a->transport->MemberPromote(3, 7, kForwardMs, in_flight.callback());
  ASSERT_TRUE(WaitFor([&] { return c->handler.pending_promotes() == 1; }));
  a->transport.reset();
  ASSERT_TRUE(in_flight.ready());
  EXPECT_EQ(in_flight.get().code(), absl::StatusCode::kCancelled);
  c->handler.AnswerPromotes(absl::OkStatus());
}

TEST(TransportTest, FetchMembersAsksEachUrlInTurn) {
  auto b = StartMember(2);
  ASSERT_TRUE(b);
  cairnpb::MembersResponse members;
  members.set_cluster_id(kCluster);
  members.set_leader(2);
  auto* m = members.add_members();
  m->set_id(2);
  m->set_name("b");
  m->add_peer_urls(b->url());
  b->handler.SetMembers(members);

  auto got = Transport::FetchMembers({"bogus://x", Url(UnusedPort()), b->url()}, 5000);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->cluster_id(), kCluster);
  EXPECT_EQ(got->leader(), 2u);
  ASSERT_EQ(got->members_size(), 1);
  EXPECT_EQ(got->members(0).name(), "b");

  auto none = Transport::FetchMembers({Url(UnusedPort())}, 2000);
  EXPECT_FALSE(none.ok());
  EXPECT_FALSE(Transport::FetchMembers({}, 2000).ok());
}

TEST(TransportTest, ChangedPeerUrlsAreFollowed) {
  auto a = StartMember(1);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  // First a wrong URL, then the right one (MemberUpdate).
  a->transport->AddPeer(2, {Url(UnusedPort())});
  SendApps(a.get(), 2, 0, 1);
  EXPECT_TRUE(WaitFor([&] { return a->handler.unreachable(2) > 0; }));
  a->transport->AddPeer(2, {b->url()});
  uint64_t next = 1;
  EXPECT_TRUE(WaitFor([&] {
    SendApps(a.get(), 2, next++, 1);
    return b->handler.message_count() > 0;
  }));
  // After RemovePeer, messages to it are dropped.
  a->transport->RemovePeer(2);
  auto dropped = a->transport->stats().dropped;
  SendApps(a.get(), 2, 1000, 1);
  EXPECT_EQ(a->transport->stats().dropped, dropped + 1);
}

TEST(TransportTest, StartRefusesBadUrlsAndTakenPorts) {
  FakeHandler handler;
  std::string dir = TempDir();
  EXPECT_FALSE(Transport::Start({"https://127.0.0.1:0"}, 1, 1, dir, &handler).ok());
  EXPECT_FALSE(Transport::Start({"http://127.0.0.1"}, 1, 1, dir, &handler).ok());
  auto first = Transport::Start({"http://127.0.0.1:0"}, 1, 1, dir, &handler);
  ASSERT_TRUE(first.ok()) << first.status();
  int port = (*first)->BoundPorts().at(0);
  EXPECT_GT(port, 0);
  auto second = Transport::Start({Url(port)}, 1, 2, dir, &handler);
  EXPECT_FALSE(second.ok());
}

}  // namespace
}  // namespace cairn::transport
