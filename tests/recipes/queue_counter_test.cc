// Queue: FIFO within a priority, lower priority numbers first, a blocking Dequeue woken by an
// Enqueue, every item taken exactly once by competing consumers. Counter: get/add/CAS under
// contention, bad values. Bad input for both.
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/recipes/counter.h"
#include "cairn/recipes/queue.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using recipes::Counter;
using recipes::Queue;
using recipes::QueueItem;

class QueueCounterTest : public RecipeTest {};

TEST_P(QueueCounterTest, QueueOrdersByPriorityThenArrival) {
  Queue q(*client_, "queue/a");
  ASSERT_TRUE(q.Enqueue("low-1", 10).ok());
  ASSERT_TRUE(q.Enqueue("high-1", 1).ok());
  ASSERT_TRUE(q.Enqueue("low-2", 10).ok());
  ASSERT_TRUE(q.Enqueue("high-2", 1).ok());
  ASSERT_TRUE(q.Enqueue("top", 0).ok());
  auto size = q.Size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 5);
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i) {
    auto item = q.Dequeue(Within(10000));
    ASSERT_TRUE(item.ok()) << item.status();
    got.push_back(item->value);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"top", "high-1", "high-2", "low-1", "low-2"}));
  auto empty = q.TryDequeue(Within(10000));
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
  EXPECT_EQ(q.Dequeue(Within(300)).status().code(), absl::StatusCode::kDeadlineExceeded);

  EXPECT_EQ(q.Enqueue("x", -1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(q.Enqueue("x", 65536).status().code(), absl::StatusCode::kInvalidArgument);
  Queue bad(*client_, "");
  EXPECT_EQ(bad.Enqueue("x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.Dequeue(Within(1000)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(QueueCounterTest, BlockedDequeueWakesOnEnqueue) {
  Queue q(*client_, "queue/b");
  absl::StatusOr<QueueItem> item;
  std::atomic<bool> done{false};
  std::thread consumer([&] {
    item = q.Dequeue(Within(60000));
    done = true;
  });
  // The consumer waits on a watch; the item arrives later.
  EXPECT_FALSE(done);
  ASSERT_TRUE(q.Enqueue("job").ok());
  consumer.join();
  ASSERT_TRUE(item.ok()) << item.status();
  EXPECT_EQ(item->value, "job");
}

TEST_P(QueueCounterTest, CompetingConsumersTakeEachItemOnce) {
  constexpr int kItems = 60;
  constexpr int kConsumers = 4;
  Queue q(*client_, "queue/c");
  std::mutex mu;
  std::map<std::string, int> taken;
  std::atomic<int> total{0};
  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&] {
      while (total.load() < kItems) {
        CallOptions call;
        call.timeout = std::chrono::milliseconds(500);
        auto item = q.Dequeue(call);
        if (!item.ok()) continue;  // the bounded wait ended: look at the total again
        std::lock_guard<std::mutex> lock(mu);
        ++taken[item->value];
        ++total;
      }
    });
  }
  std::thread producer2([&] {
    for (int i = 0; i < kItems / 2; ++i) ASSERT_TRUE(q.Enqueue("b" + std::to_string(i)).ok());
  });
  for (int i = 0; i < kItems / 2; ++i) ASSERT_TRUE(q.Enqueue("a" + std::to_string(i)).ok());
  producer2.join();
  for (auto& t : consumers) t.join();
  EXPECT_EQ(total.load(), kItems);
  EXPECT_EQ(taken.size(), static_cast<size_t>(kItems));
  for (const auto& [v, n] : taken) EXPECT_EQ(n, 1) << v;
  auto size = q.Size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 0);
}

TEST_P(QueueCounterTest, CounterAddAndCompareAndSet) {
  Counter c(*client_, "counter/a");
  auto v = c.Get();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 0);
  constexpr int kThreads = 4;
  constexpr int kAdds = 15;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kAdds; ++i) {
        if (!c.Add(1, Within(30000)).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  v = c.Get();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, kThreads * kAdds);

  auto cas = c.CompareAndSet(1, 5);
  ASSERT_TRUE(cas.ok());
  EXPECT_FALSE(*cas);
  cas = c.CompareAndSet(kThreads * kAdds, 5);
  ASSERT_TRUE(cas.ok());
  EXPECT_TRUE(*cas);
  auto added = c.Add(-7);
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(*added, -2);
  ASSERT_TRUE(c.Set(INT64_MAX).ok());
  EXPECT_EQ(c.Add(1).status().code(), absl::StatusCode::kOutOfRange);

  ASSERT_TRUE(client_->kv().Put("counter/text", "abc").ok());
  Counter text(*client_, "counter/text");
  EXPECT_EQ(text.Get().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(text.Add(1).status().code(), absl::StatusCode::kFailedPrecondition);
  Counter bad(*client_, "");
  EXPECT_EQ(bad.Get().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(QueueCounterTest, ClaimedItemsAreRedeliveredWhenTheConsumerIsLost) {
  Queue q(*client_, "queue/claims");
  auto lost_session = NewSession(/*ttl=*/2);
  auto s2 = NewSession();
  ASSERT_TRUE(lost_session && s2);
  ASSERT_TRUE(q.Enqueue("one").ok());
  ASSERT_TRUE(q.Enqueue("two").ok());
  ASSERT_TRUE(q.Enqueue("urgent", 0).ok());
  ASSERT_TRUE(q.Enqueue("later", 3).ok());

  // Claims go in queue order and skip claimed items; claimed items stay in the queue.
  auto c1 = q.Claim(*lost_session, Within(10000));
  ASSERT_TRUE(c1.ok()) << c1.status();
  EXPECT_EQ(c1->item.value, "one");
  auto c2 = q.Claim(*s2, Within(10000));
  ASSERT_TRUE(c2.ok()) << c2.status();
  EXPECT_EQ(c2->item.value, "two");
  EXPECT_EQ(*q.Size(), 4);
  ASSERT_TRUE(q.Ack(*c2).ok());
  EXPECT_EQ(*q.Size(), 3);
  auto c3 = q.Claim(*s2, Within(10000));
  ASSERT_TRUE(c3.ok());
  EXPECT_EQ(c3->item.value, "urgent");
  ASSERT_TRUE(q.Release(*c3).ok());  // given back: claimable again
  c3 = q.Claim(*s2, Within(10000));
  ASSERT_TRUE(c3.ok());
  EXPECT_EQ(c3->item.value, "urgent");
  ASSERT_TRUE(q.Ack(*c3).ok());
  auto c4 = q.Claim(*s2, Within(10000));
  ASSERT_TRUE(c4.ok());
  EXPECT_EQ(c4->item.value, "later");
  ASSERT_TRUE(q.Ack(*c4).ok());
  auto none = q.TryClaim(*s2, Within(10000));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());  // "one" is still claimed by the first consumer

  // The first consumer's session is lost before it acks: "one" is delivered again.
  absl::StatusOr<recipes::ClaimedItem> again;
  std::thread t([&] { again = q.Claim(*s2, Within(60000)); });
  lost_session->Orphan();
  t.join();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->item.value, "one");
  EXPECT_EQ(q.Ack(*c1).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(q.Ack(*again).ok());
  EXPECT_EQ(*q.Size(), 0);
  EXPECT_TRUE(KeysUnder("queue/claims!claim/").empty());
  EXPECT_EQ(q.Claim(*lost_session, Within(5000)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_P(QueueCounterTest, CompetingClaimersProcessEachItemOnce) {
  constexpr int kItems = 40;
  constexpr int kConsumers = 4;
  Queue q(*client_, "queue/claimers");
  std::vector<std::shared_ptr<recipes::Session>> sessions;
  for (int i = 0; i < kConsumers; ++i) {
    sessions.push_back(NewSession());
    ASSERT_NE(sessions.back(), nullptr);
  }
  for (int i = 0; i < kItems; ++i) ASSERT_TRUE(q.Enqueue("i" + std::to_string(i)).ok());
  std::mutex mu;
  std::map<std::string, int> acked;
  std::atomic<int> errors{0};
  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      while (true) {
        auto item = q.TryClaim(*sessions[c], Within(20000));
        if (!item.ok()) {
          ++errors;
          return;
        }
        if (!item->has_value()) return;  // everything claimed or done
        if (!q.Ack(**item).ok()) ++errors;
        std::lock_guard<std::mutex> lock(mu);
        ++acked[(*item)->item.value];
      }
    });
  }
  for (auto& t : consumers) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(acked.size(), static_cast<size_t>(kItems));
  for (const auto& [v, n] : acked) EXPECT_EQ(n, 1) << v;
  EXPECT_EQ(*q.Size(), 0);
}

INSTANTIATE_TEST_SUITE_P(Servers, QueueCounterTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
