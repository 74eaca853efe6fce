// STM: concurrent transfers keep the total under every serializable level (conflicts retried),
// reads inside one attempt are repeatable, an error from apply writes nothing, bad input.
#include "cairn/recipes/stm.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using recipes::Isolation;
using recipes::RunStm;
using recipes::Stm;
using recipes::StmOptions;

class StmTest : public RecipeTest {};

absl::StatusOr<int> ReadInt(Stm& stm, const std::string& key) {
  auto v = stm.Get(key);
  if (!v.ok()) return v.status();
  int n = 0;
  if (!absl::SimpleAtoi(*v, &n)) return absl::DataLossError("not a number: " + key);
  return n;
}

TEST_P(StmTest, TransfersKeepTheTotalUnderEverySerializableLevel) {
  for (Isolation iso :
       {Isolation::kSerializableSnapshot, Isolation::kSerializable, Isolation::kRepeatableReads}) {
    SCOPED_TRACE(static_cast<int>(iso));
    constexpr int kAccounts = 4;
    constexpr int kThreads = 4;
    constexpr int kTransfers = 10;
    std::string pfx = "bank" + std::to_string(static_cast<int>(iso)) + "/";
    for (int i = 0; i < kAccounts; ++i) {
      ASSERT_TRUE(client_->kv().Put(pfx + std::to_string(i), "100").ok());
    }
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kTransfers; ++i) {
          std::string from = pfx + std::to_string((t + i) % kAccounts);
          std::string to = pfx + std::to_string((t + i + 1) % kAccounts);
          StmOptions o;
          o.isolation = iso;
          o.max_attempts = 1000;
          o.call.timeout = std::chrono::milliseconds(60000);
          auto r = RunStm(
              client_->kv(),
              [&](Stm& stm) -> absl::Status {
                auto a = ReadInt(stm, from);
                if (!a.ok()) return a.status();
                auto b = ReadInt(stm, to);
                if (!b.ok()) return b.status();
                stm.Put(from, std::to_string(*a - 7));
                stm.Put(to, std::to_string(*b + 7));
                return absl::OkStatus();
              },
              o);
          if (!r.ok()) ++failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    int total = 0;
    for (int i = 0; i < kAccounts; ++i) {
      auto v = client_->kv().Get(pfx + std::to_string(i));
      ASSERT_TRUE(v.ok());
      ASSERT_EQ(v->kvs.size(), 1u);
      int n = 0;
      ASSERT_TRUE(absl::SimpleAtoi(v->kvs[0].value, &n));
      total += n;
    }
    EXPECT_EQ(total, kAccounts * 100);
  }
}

TEST_P(StmTest, ConflictRetriesAndAbortWritesNothing) {
  ASSERT_TRUE(client_->kv().Put("stm/x", "1").ok());
  int attempts = 0;
  auto r = RunStm(client_->kv(), [&](Stm& stm) -> absl::Status {
    ++attempts;
    auto x = stm.Get("stm/x");
    if (!x.ok()) return x.status();
    if (attempts == 1) {
      // A conflicting write between our read and our commit forces a second attempt.
      if (!client_->kv().Put("stm/x", "2").ok()) return absl::InternalError("put");
    }
    auto again = stm.Get("stm/x");  // repeatable within the attempt
    if (!again.ok() || *again != *x) return absl::InternalError("read not repeatable");
    stm.Put("stm/y", *x);
    return absl::OkStatus();
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(attempts, 2);
  auto y = client_->kv().Get("stm/y");
  ASSERT_TRUE(y.ok());
  ASSERT_EQ(y->kvs.size(), 1u);
  EXPECT_EQ(y->kvs[0].value, "2");

  auto aborted = RunStm(client_->kv(), [](Stm& stm) -> absl::Status {
    stm.Put("stm/z", "never");
    return absl::CancelledError("changed my mind");
  });
  EXPECT_EQ(aborted.status().code(), absl::StatusCode::kCancelled);
  auto z = client_->kv().Get("stm/z");
  ASSERT_TRUE(z.ok());
  EXPECT_TRUE(z->kvs.empty());

  // Read committed: no read validation, the commit goes through despite the conflict.
  StmOptions rc;
  rc.isolation = Isolation::kReadCommitted;
  attempts = 0;
  r = RunStm(
      client_->kv(),
      [&](Stm& stm) -> absl::Status {
        ++attempts;
        auto x = stm.Get("stm/x");
        if (!x.ok()) return x.status();
        if (!client_->kv().Put("stm/x", "3").ok()) return absl::InternalError("put");
        stm.Put("stm/w", *x);
        return absl::OkStatus();
      },
      rc);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(attempts, 1);

  StmOptions none;
  none.max_attempts = 0;
  EXPECT_EQ(RunStm(
                client_->kv(), [](Stm&) { return absl::OkStatus(); }, none)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RunStm(client_->kv(), nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  StmOptions once;
  once.max_attempts = 1;
  auto gave_up = RunStm(
      client_->kv(),
      [&](Stm& stm) -> absl::Status {
        auto x = stm.Get("stm/x");
        if (!x.ok()) return x.status();
        if (!client_->kv().Put("stm/x", "4").ok()) return absl::InternalError("put");
        stm.Put("stm/v", "1");
        return absl::OkStatus();
      },
      once);
  EXPECT_EQ(gave_up.status().code(), absl::StatusCode::kAborted);
}

INSTANTIATE_TEST_SUITE_P(Servers, StmTest, ::testing::ValuesIn(cairn::testing::TestedServerKinds()),
                         KindName);

}  // namespace
}  // namespace cairn::recipes_test
