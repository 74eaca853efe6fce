// Tests of server/transport: forwarded lease and promote calls, the HashKV peer call, and stopping
// with calls in flight.
#include "tests/transport/transport_test_util.h"

namespace cairn::transport::test {
namespace {

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

absl::StatusOr<etcdserverpb::HashKVResponse> HashKV(Transport* t, uint64_t peer, int64_t revision) {
  Answer<absl::StatusOr<etcdserverpb::HashKVResponse>> answer;
  t->HashKV(peer, revision, kForwardMs, answer.callback());
  return answer.get();
}

// The corruption check's peer RPC: the peer's HashKV, or Maintenance.HashKV's errors verbatim.
TEST(TransportTest, HashKvIsAnsweredByThePeerWithEtcdErrors) {
  auto a = StartMember(1);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});

  for (int64_t revision : {int64_t{0}, int64_t{7}}) {
    auto hash = HashKV(a->transport.get(), 2, revision);
    ASSERT_TRUE(hash.ok()) << hash.status();
    const int64_t hashed = revision == 0 ? FakeHandler::kHashRevision : revision;
    EXPECT_EQ(hash->hash(), static_cast<uint32_t>(1000 + hashed));
    EXPECT_EQ(hash->compact_revision(), FakeHandler::kHashCompacted);
    EXPECT_EQ(hash->header().revision(), hashed);
  }
  auto future = HashKV(a->transport.get(), 2, 11);
  EXPECT_EQ(future.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(future.status().message(), "etcdserver: mvcc: required revision is a future revision");
  auto compacted = HashKV(a->transport.get(), 2, 2);
  EXPECT_EQ(compacted.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(compacted.status().message(), "etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(HashKV(a->transport.get(), 9, 0).status().code(), absl::StatusCode::kUnavailable);

  // A member of another cluster is refused, as every peer call.
  cairnpb::HashKVRequest request;
  request.mutable_header()->set_cluster_id(kCluster + 1);
  request.mutable_header()->set_from(1);
  etcdserverpb::HashKVResponse response;
  grpc::ClientContext context;
  RawPeer raw(b->port);
  grpc::Status refused = raw.stub()->HashKV(&context, request, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(refused.error_message(), "cluster ID mismatch");
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

}  // namespace
}  // namespace cairn::transport::test
