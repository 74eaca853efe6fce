// Commit throughput of the Raft core: 3 in-memory members in one thread, messages delivered
// synchronously, storage = MemoryStorage (no fsync). Measures the cost of the consensus logic
// itself: entries committed and applied on every member per second, with proposals batched
// `batch` at a time between Ready rounds (group commit).
//
//   ninja -C build-raft raft_bench && ./build-raft/bench/raft/raft_bench
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "server/base/check.h"
#include "server/raft/raw_node.h"
#include "server/raft/storage.h"

namespace cairn::raft {
namespace {

class BenchCluster {
 public:
  explicit BenchCluster(int members) {
    ConfState cs;
    for (int i = 1; i <= members; ++i) cs.voters.push_back(i);
    for (MemberId id : cs.voters) {
      Member& m = members_[id];
      m.storage = std::make_unique<MemoryStorage>(cs);
      Config c;
      c.id = id;
      c.storage = m.storage.get();
      c.random_seed = id;
      c.max_inflight_msgs = 256;
      m.node = std::move(*RawNode::Create(c));
      m.conf = cs;
    }
    CAIRN_CHECK_OK(members_.at(1).node->Campaign());
    Pump();
  }

  RawNode& leader() { return *members_.at(1).node; }
  LogIndex applied(MemberId id) { return members_.at(id).applied; }

  // Delivers messages and handles Readies until quiescent.
  void Pump() {
    bool progress = true;
    while (progress) {
      progress = false;
      for (auto& [id, m] : members_) {
        while (m.node->HasReady()) {
          HandleReady(m);
          progress = true;
        }
      }
      while (!queue_.empty()) {
        Message msg = std::move(queue_.front());
        queue_.pop_front();
        (void)members_.at(msg.to).node->Step(msg);
        progress = true;
      }
    }
  }

 private:
  struct Member {
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<RawNode> node;
    LogIndex applied = 0;
    ConfState conf;
  };

  void HandleReady(Member& m) {
    Ready rd = m.node->GetReady();
    CAIRN_CHECK_OK(m.storage->Append(rd.entries));
    if (rd.hard_state) m.storage->SetHardState(*rd.hard_state);
    for (Message& msg : rd.messages) queue_.push_back(std::move(msg));
    if (!rd.committed_entries.empty()) m.applied = rd.committed_entries.back().index;
    m.node->Advance(rd);
    // Keep memory bounded: compact well behind the applied index.
    if (m.applied > m.storage->FirstIndex() + 20000) {
      LogIndex at = m.applied - 10000;
      CAIRN_CHECK_OK(m.storage->CreateSnapshot(at, m.conf, "").status());
      CAIRN_CHECK_OK(m.storage->Compact(at));
    }
  }

  std::map<MemberId, Member> members_;
  std::deque<Message> queue_;
};

void BM_CommitThroughput3Members(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const std::string payload(static_cast<size_t>(state.range(1)), 'v');
  BenchCluster cluster(3);
  int64_t entries = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) CAIRN_CHECK_OK(cluster.leader().Propose(payload));
    cluster.Pump();
    entries += batch;
  }
  CAIRN_CHECK(cluster.applied(2) == cluster.applied(1) && cluster.applied(3) == cluster.applied(1))
      << "followers did not apply everything";
  state.SetItemsProcessed(entries);
  state.SetBytesProcessed(entries * static_cast<int64_t>(payload.size()));
  state.counters["entries/s"] =
      benchmark::Counter(static_cast<double>(entries), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CommitThroughput3Members)
    ->ArgNames({"batch", "bytes"})
    ->Args({1, 128})
    ->Args({16, 128})
    ->Args({64, 128})
    ->Args({256, 128})
    ->Args({64, 1024});

}  // namespace
}  // namespace cairn::raft

BENCHMARK_MAIN();
