// Client pieces that need no server: error kinds, prefix ranges, sha256, futures, cancel
// tokens, fiber-aware waiting, connect errors.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <boost/fiber/all.hpp>

#include "cairn/client.h"
#include "client/src/core.h"
#include "client/src/sha256.h"

namespace cairn {
namespace {

TEST(ErrorKindTest, ParsesEtcdWireMessages) {
  struct Case {
    absl::StatusCode code;
    const char* msg;
    ErrorKind kind;
  };
  const Case cases[] = {
      {absl::StatusCode::kOutOfRange, "etcdserver: mvcc: required revision has been compacted",
       ErrorKind::kCompacted},
      {absl::StatusCode::kOutOfRange, "etcdserver: mvcc: required revision is a future revision",
       ErrorKind::kFutureRevision},
      {absl::StatusCode::kNotFound, "etcdserver: requested lease not found",
       ErrorKind::kLeaseNotFound},
      {absl::StatusCode::kUnavailable, "etcdserver: no leader", ErrorKind::kNoLeader},
      {absl::StatusCode::kPermissionDenied, "etcdserver: permission denied",
       ErrorKind::kPermissionDenied},
      {absl::StatusCode::kInvalidArgument, "etcdserver: user name is empty", ErrorKind::kUserEmpty},
      {absl::StatusCode::kUnauthenticated, "etcdserver: invalid auth token",
       ErrorKind::kInvalidAuthToken},
      {absl::StatusCode::kInvalidArgument, "etcdserver: key not found", ErrorKind::kKeyNotFound},
      {absl::StatusCode::kInvalidArgument, "etcdserver: duplicate key given in txn request",
       ErrorKind::kDuplicateKey},
      {absl::StatusCode::kInvalidArgument, "etcdserver: too many operations in txn request",
       ErrorKind::kTooManyOps},
      {absl::StatusCode::kInvalidArgument, "etcdserver: request is too large",
       ErrorKind::kRequestTooLarge},
      {absl::StatusCode::kFailedPrecondition, "etcdserver: lease already exists",
       ErrorKind::kLeaseExists},
      {absl::StatusCode::kUnavailable, "etcdserver: leader changed", ErrorKind::kLeaderChanged},
      {absl::StatusCode::kUnavailable, "etcdserver: request timed out", ErrorKind::kTimeout},
      {absl::StatusCode::kUnavailable,
       "etcdserver: request timed out, possibly due to previous leader failure",
       ErrorKind::kTimeout},
      {absl::StatusCode::kUnavailable, "rpc error: code = Unavailable desc = etcdserver: no leader",
       ErrorKind::kNoLeader},
      {absl::StatusCode::kDeadlineExceeded, "Deadline Exceeded", ErrorKind::kDeadlineExceeded},
      {absl::StatusCode::kCancelled, "call canceled", ErrorKind::kCanceled},
      {absl::StatusCode::kUnavailable, "failed to connect to all addresses",
       ErrorKind::kUnavailable},
      {absl::StatusCode::kInternal, "something else", ErrorKind::kUnknown},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ErrorKindOf(absl::Status(c.code, c.msg)), c.kind) << c.msg;
  }
  EXPECT_EQ(ErrorKindOf(absl::OkStatus()), ErrorKind::kOk);
}

TEST(ErrorKindTest, MakeErrorRoundTrips) {
  for (ErrorKind k :
       {ErrorKind::kCompacted, ErrorKind::kLeaseNotFound, ErrorKind::kNoLeader,
        ErrorKind::kInvalidAuthToken, ErrorKind::kLeaseLost, ErrorKind::kChecksumMismatch,
        ErrorKind::kCanceled, ErrorKind::kDeadlineExceeded}) {
    EXPECT_EQ(ErrorKindOf(MakeError(k)), k) << ErrorKindName(k);
  }
  EXPECT_EQ(MakeError(ErrorKind::kCompacted).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ErrorKindName(ErrorKind::kLeaseNotFound), "lease_not_found");
}

TEST(RetryPolicyTest, NeverReachedServerOnlyForConnectionFailures) {
  using internal::NeverReachedServer;
  EXPECT_TRUE(NeverReachedServer(absl::UnavailableError(
      "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
      "Failed to connect to remote host: Connection refused")));
  EXPECT_FALSE(NeverReachedServer(absl::UnavailableError("Socket closed")));
  EXPECT_FALSE(NeverReachedServer(absl::UnavailableError("etcdserver: request timed out")));
  EXPECT_FALSE(NeverReachedServer(absl::DeadlineExceededError("failed to connect")));
}

TEST(PrefixEndTest, Ranges) {
  EXPECT_EQ(PrefixEnd("abc"), "abd");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
  EXPECT_EQ(PrefixEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
}

TEST(Sha256Test, KnownVectors) {
  auto hex = [](std::string_view s) {
    internal::Sha256 h;
    h.Update(s);
    return internal::Sha256::Hex(h.Final());
  };
  EXPECT_EQ(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Split updates give the same digest as one update.
  std::string big(1000, 'x');
  internal::Sha256 a;
  a.Update(big);
  internal::Sha256 b;
  for (size_t i = 0; i < big.size(); i += 7) b.Update(std::string_view(big).substr(i, 7));
  EXPECT_EQ(a.Final(), b.Final());
}

TEST(FutureTest, GetThenAndCancel) {
  Promise<int> p;
  Future<int> f = p.future();
  EXPECT_FALSE(f.Ready());
  std::thread t([p] { p.Set(42); });
  auto v = f.Get();
  t.join();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 42);

  Promise<int> p2;
  Future<int> f2 = p2.future();
  std::atomic<int> got{0};
  f2.Then([&](absl::StatusOr<int> r) { got = r.ok() ? *r : -1; });
  p2.Set(7);
  EXPECT_EQ(got.load(), 7);

  Promise<int> p3;
  std::atomic<bool> canceled{false};
  p3.SetCancel([&] { canceled = true; });
  Future<int> f3 = p3.future();
  f3.Cancel();
  EXPECT_TRUE(canceled.load());
  EXPECT_FALSE(f3.WaitUntil(Clock::now()));  // the producer decides the result
}

TEST(CancelTokenTest, RunsCallbacksOnce) {
  CancelToken t = CancelToken::Make();
  int calls = 0;
  uint64_t id = t.Register([&] { ++calls; });
  uint64_t id2 = t.Register([&] { calls += 10; });
  t.Unregister(id2);
  EXPECT_NE(id, 0u);
  t.Cancel();
  t.Cancel();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(t.canceled());
  t.Register([&] { ++calls; });  // inline when already canceled
  EXPECT_EQ(calls, 2);
  CancelToken empty;
  EXPECT_FALSE(empty.canceled());
  empty.Cancel();
}

// A fiber blocked in Future::Get must not block the other fibers of its thread.
TEST(FiberTest, GetSuspendsOnlyTheFiber) {
  Promise<int> p;
  Future<int> f = p.future();
  std::atomic<bool> other_ran{false};
  int result = 0;
  std::thread producer;
  boost::fibers::fiber waiter([&] {
    EXPECT_TRUE(internal::OnFiber());
    auto r = f.Get();
    result = r.ok() ? *r : -1;
  });
  boost::fibers::fiber other([&] {
    other_ran = true;
    // Only now complete the promise, from another thread: the waiter was parked meanwhile.
    producer = std::thread([p] { p.Set(5); });
  });
  other.join();
  waiter.join();
  producer.join();
  EXPECT_TRUE(other_ran.load());
  EXPECT_EQ(result, 5);
  EXPECT_FALSE(internal::OnFiber());
}

TEST(ConnectTest, RejectsBadOptions) {
  ClientOptions o;
  auto c = Client::Connect(o);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  o.endpoints = {"127.0.0.1:1"};
  o.tls.enabled = true;
  o.tls.ca_file = "/nonexistent/ca.pem";
  c = Client::Connect(o);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConnectTest, UnreachableEndpoint) {
  ClientOptions o;
  o.endpoints = {"127.0.0.1:1"};
  o.dial_timeout = std::chrono::milliseconds(300);
  auto c = Client::Connect(o);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << c.status();

  // Without waiting for a connection, calls fail within their deadline: a read retries until
  // the deadline, a write reports the connection failure (it never reached a server).
  o.wait_for_connection = false;
  c = Client::Connect(o);
  ASSERT_TRUE(c.ok());
  CallOptions call;
  call.timeout = std::chrono::milliseconds(300);
  auto get = (*c)->kv().Get("k", {}, call);
  EXPECT_EQ(ErrorKindOf(get.status()), ErrorKind::kDeadlineExceeded) << get.status();
  // A write that could not reach any server is retried until the deadline; with kNever it
  // reports the connection failure at once.
  auto put = (*c)->kv().Put("k", "v", {}, call);
  EXPECT_EQ(ErrorKindOf(put.status()), ErrorKind::kDeadlineExceeded) << put.status();
  CallOptions once = call;
  once.retry = RetryMode::kNever;
  put = (*c)->kv().Put("k", "v", {}, once);
  EXPECT_EQ(ErrorKindOf(put.status()), ErrorKind::kUnavailable) << put.status();
  EXPECT_TRUE(internal::NeverReachedServer(put.status())) << put.status();
  auto canceled = CancelToken::Make();
  call.cancel = canceled;
  call.timeout = std::chrono::milliseconds(60000);
  auto fut = (*c)->kv().GetAsync("k", {}, call);
  canceled.Cancel();
  EXPECT_EQ(ErrorKindOf(fut.Get().status()), ErrorKind::kCanceled);
}

}  // namespace
}  // namespace cairn
