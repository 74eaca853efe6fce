// WatchResponseQueue: a watcher's events join its queued response only while that response waits
// (never the one being written), never ahead of a non-events response queued after it, within
// the byte limit; revisions stay in order and the header takes the newest.
#include "server/api/watch_queue.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cairn::api {
namespace {

using etcdserverpb::WatchResponse;

constexpr size_t kNoLimit = 1 << 30;

// One revision's events response for `watch_id`: one put of key "k<rev>".
WatchResponse Events(int64_t watch_id, int64_t rev, size_t value_bytes = 8) {
  WatchResponse r;
  r.set_watch_id(watch_id);
  r.mutable_header()->set_revision(rev);
  mvccpb::Event* ev = r.add_events();
  ev->mutable_kv()->set_key("k" + std::to_string(rev));
  ev->mutable_kv()->set_value(std::string(value_bytes, 'v'));
  ev->mutable_kv()->set_mod_revision(rev);
  return r;
}

WatchResponse Progress(int64_t rev) {
  WatchResponse r;
  r.set_watch_id(-1);
  r.mutable_header()->set_revision(rev);
  return r;
}

// Pushes `r` unless it joins an earlier response, as WatchStream::Deliver does.
void Deliver(WatchResponseQueue& q, int64_t watch_id, WatchResponse r, size_t limit = kNoLimit) {
  if (!q.Merge(watch_id, r, limit)) q.Push(std::move(r), watch_id);
}

std::vector<int64_t> Revisions(const WatchResponse& r) {
  std::vector<int64_t> revs;
  for (const mvccpb::Event& ev : r.events()) revs.push_back(ev.kv().mod_revision());
  return revs;
}

TEST(WatchQueueTest, EventsJoinTheWaitingResponseNeverTheOneBeingWritten) {
  WatchResponseQueue q;
  Deliver(q, 7, Events(7, 1));
  const WatchResponse& writing = q.StartFront();
  Deliver(q, 7, Events(7, 2));  // revision 1 is being written: a new response
  Deliver(q, 7, Events(7, 3));  // joins revision 2's
  Deliver(q, 7, Events(7, 4));
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(Revisions(writing), (std::vector<int64_t>{1}));
  q.PopFront();
  const WatchResponse& merged = q.StartFront();
  EXPECT_EQ(merged.watch_id(), 7);
  EXPECT_EQ(Revisions(merged), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(merged.header().revision(), 4);
  q.PopFront();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  // The written response's entry is stale now: the next events start a new response.
  Deliver(q, 7, Events(7, 5));
  EXPECT_EQ(q.size(), 1u);
}

TEST(WatchQueueTest, WatchersOfOneStreamEachKeepTheirOwnResponse) {
  WatchResponseQueue q;
  q.Push(Progress(0));  // in flight below
  q.StartFront();
  for (int64_t rev = 1; rev <= 3; ++rev) {
    Deliver(q, 1, Events(1, rev));
    Deliver(q, 2, Events(2, rev));
  }
  ASSERT_EQ(q.size(), 3u);
  q.PopFront();
  const WatchResponse& first = q.StartFront();
  EXPECT_EQ(first.watch_id(), 1);
  EXPECT_EQ(Revisions(first), (std::vector<int64_t>{1, 2, 3}));
  q.PopFront();
  const WatchResponse& second = q.StartFront();
  EXPECT_EQ(second.watch_id(), 2);
  EXPECT_EQ(Revisions(second), (std::vector<int64_t>{1, 2, 3}));
}

TEST(WatchQueueTest, EventsNeverPassANonEventsResponse) {
  WatchResponseQueue q;
  q.Push(Progress(0));
  q.StartFront();
  Deliver(q, 1, Events(1, 1));
  q.Push(Progress(1));  // a progress report at 1 must follow revision 1 and precede revision 2
  Deliver(q, 1, Events(1, 2));
  Deliver(q, 1, Events(1, 3));  // joins revision 2, after the progress
  ASSERT_EQ(q.size(), 4u);
  q.PopFront();
  EXPECT_EQ(Revisions(q.StartFront()), (std::vector<int64_t>{1}));
  q.PopFront();
  EXPECT_EQ(q.StartFront().watch_id(), -1);
  q.PopFront();
  EXPECT_EQ(Revisions(q.StartFront()), (std::vector<int64_t>{2, 3}));
}

TEST(WatchQueueTest, AMergeStaysWithinTheLimitAndARefusalLeavesTheResponseWhole) {
  WatchResponseQueue q;
  q.Push(Progress(0));
  q.StartFront();
  const size_t one = Events(1, 1, 100).ByteSizeLong();
  const size_t limit = 2 * one + one / 2;  // room for two revisions, not three
  Deliver(q, 1, Events(1, 1, 100), limit);
  Deliver(q, 1, Events(1, 2, 100), limit);
  WatchResponse third = Events(1, 3, 100);
  EXPECT_FALSE(q.Merge(1, third, limit));
  EXPECT_EQ(Revisions(third), (std::vector<int64_t>{3}));
  q.Push(std::move(third), 1);
  ASSERT_EQ(q.size(), 3u);
  const size_t queued = q.bytes();
  q.PopFront();
  const WatchResponse& joined = q.StartFront();
  EXPECT_EQ(Revisions(joined), (std::vector<int64_t>{1, 2}));
  EXPECT_LE(joined.ByteSizeLong(), limit);
  q.PopFront();
  EXPECT_EQ(Revisions(q.StartFront()), (std::vector<int64_t>{3}));
  q.PopFront();
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_GE(queued, 3 * one);
}

}  // namespace
}  // namespace cairn::api
