// Tests of server/transport: delivery, dead and hung peers, cluster and removed-member checks,
// peer URLs. Two or three Transports in one process on ephemeral loopback ports, each with a fake
// Handler. Conditions are polled with a bound; no test asserts a duration.
#include "tests/transport/transport_test_util.h"

namespace cairn::transport::test {
namespace {

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
}  // namespace cairn::transport::test
