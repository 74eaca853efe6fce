// Fault tests of the lock and election recipes with the lock holders and candidates in separate
// OS processes (recipe_fault_child), killed with SIGKILL and frozen with SIGSTOP. Safety is
// asserted on revisions and fencing tokens (the order the server saw), never on durations; the
// only time bounds are generous liveness deadlines. cairn runs through the public test kit
// (cairn::testing::TestingCluster), etcd through the internal harness. Random fault schedules
// print their seed; CAIRN_FAULT_SEED=<seed> replays the same choices of victims and faults.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/mutex.h"
#include "tests/recipes/fault_util.h"

namespace cairn::recipes_test {
namespace {

using recipes::Mutex;

uint32_t Seed() {
  const char* env = std::getenv("CAIRN_FAULT_SEED");
  if (env != nullptr && *env != '\0') return static_cast<uint32_t>(std::strtoul(env, nullptr, 10));
  return std::random_device{}();
}

class FaultTest : public ::testing::TestWithParam<ServerKind> {
 protected:
  void StartCluster(int members) {
    auto c = AnyCluster::Start(GetParam(), members);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
    client_ = cluster_->Connect();
    ASSERT_NE(client_, nullptr);
  }
  std::unique_ptr<FaultChild> Child(const std::string& label, const std::string& mode,
                                    const std::string& name, int ttl,
                                    std::vector<std::string> more = {}) {
    auto child = std::make_unique<FaultChild>(
        label, ChildArgs(mode, cluster_->EndpointList(), name, ttl, std::move(more)));
    EXPECT_TRUE(child->started()) << label;
    return child;
  }
  int64_t CountUnder(const std::string& prefix) {
    GetOptions go;
    go.prefix = true;
    go.count_only = true;
    auto r = client_->kv().Get(prefix, go, Within(10000));
    return r.ok() ? r->count : -1;
  }
  // The lease of the key owning lock `name` (0 when nobody holds it).
  LeaseId OwnerLease(const std::string& name) {
    GetOptions go;
    go.prefix = true;
    go.sort_target = SortTarget::kCreate;
    go.sort_order = SortOrder::kAscend;
    go.limit = 1;
    auto r = client_->kv().Get(name + "/", go, Within(10000));
    return r.ok() && !r->kvs.empty() ? r->kvs[0].lease : 0;
  }
  // TTL of a lease as the server reports it: -1 once it expired or was revoked.
  int64_t LeaseTtl(LeaseId lease) {
    auto r = client_->lease().TimeToLive(lease, false, Within(10000));
    return r.ok() ? r->ttl_seconds : -2;
  }
  // The key `key` at `revision` (nullopt when absent).
  std::optional<KeyValue> KeyAt(const std::string& key, Revision revision) {
    GetOptions go;
    go.revision = revision;
    auto r = client_->kv().Get(key, go, Within(10000));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->kvs.empty()) return std::nullopt;
    return r->kvs[0];
  }

  std::unique_ptr<AnyCluster> cluster_;
  std::unique_ptr<Client> client_;
};

// A holder killed with SIGKILL keeps the lock until its lease expires: the waiter is still
// waiting while the holder's lease has a positive TTL, and its grant comes after the
// lease-expiry delete of the holder's key.
TEST_P(FaultTest, KilledHolderPassesTheLockOnlyAfterItsLeaseExpires) {
  StartCluster(1);
  const std::string name = "fault/kill";
  // TTL 3 s: the killed holder's lease lives >= 2 s after the kill (keepalives every TTL/3), for
  // a poll on a loaded machine to see the waiter still waiting.
  auto holder = Child("holder", "lock", name, 3);
  auto locked = holder->WaitEvent("LOCKED");
  ASSERT_TRUE(locked) << holder->Describe();
  const int64_t holder_token = ToInt((*locked)[1]);
  const LeaseId holder_lease = ToInt((*locked)[3]);
  GetOptions go;
  go.prefix = true;
  auto keys = client_->kv().Get(name + "/", go, Within(10000));
  ASSERT_TRUE(keys.ok() && keys->kvs.size() == 1);
  const std::string holder_key = keys->kvs[0].key;
  ASSERT_EQ(keys->kvs[0].create_revision, holder_token);

  auto waiter = Child("waiter", "lock", name, 10);
  ASSERT_TRUE(PollUntil([&] { return CountUnder(name + "/") == 2; })) << waiter->Describe();
  // Still held (the holder kept its lease alive) when it is killed.
  ASSERT_GT(LeaseTtl(holder_lease), 0) << holder->Describe();
  holder->Kill();

  // Sample (waiter locked?) first and the lease after: a grant seen before a positive TTL would
  // be a grant while the holder's lease was alive.
  bool saw_waiting_with_positive_ttl = false;
  ASSERT_TRUE(PollUntil(
      [&] {
        bool waiter_locked = !waiter->Events("LOCKED").empty();
        int64_t ttl = LeaseTtl(holder_lease);
        if (waiter_locked) {
          EXPECT_LE(ttl, 0) << "the waiter got the lock while the killed holder's lease lived";
          return true;
        }
        if (ttl > 0) saw_waiting_with_positive_ttl = true;
        return false;
      },
      std::chrono::milliseconds(30000)))
      << waiter->Describe();
  EXPECT_TRUE(saw_waiting_with_positive_ttl);
  auto granted = waiter->WaitEvent("LOCKED");
  ASSERT_TRUE(granted);
  const int64_t waiter_token = ToInt((*granted)[1]);
  const Revision grant_revision = ToInt((*granted)[2]);
  EXPECT_GT(waiter_token, holder_token);
  EXPECT_EQ(LeaseTtl(holder_lease), -1);
  // The holder's key was there when the waiter queued, and gone (deleted by the lease expiry)
  // at the revision the waiter's grant was established.
  EXPECT_TRUE(KeyAt(holder_key, waiter_token).has_value());
  EXPECT_FALSE(KeyAt(holder_key, grant_revision).has_value());
}

// A holder frozen (SIGSTOP) past its TTL loses the lock to another process; resumed, its write
// guarded by the old fencing token is refused.
TEST_P(FaultTest, FrozenHolderPastItsTtlIsFenced) {
  StartCluster(1);
  const std::string name = "fault/freeze";
  auto holder = Child("holder", "lock", name, 2);
  auto locked = holder->WaitEvent("LOCKED");
  ASSERT_TRUE(locked) << holder->Describe();
  const int64_t holder_token = ToInt((*locked)[1]);
  const LeaseId holder_lease = ToInt((*locked)[3]);
  holder->Stop();
  ASSERT_TRUE(
      PollUntil([&] { return LeaseTtl(holder_lease) == -1; }, std::chrono::milliseconds(30000)));
  recipes::SessionOptions so;
  so.ttl_seconds = 10;
  auto session = recipes::Session::Create(*client_, so);
  ASSERT_TRUE(session.ok()) << session.status();
  Mutex mu(*session, name);
  auto grant = mu.Lock(Within(20000));
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_GT(grant->fencing_token, holder_token);

  holder->Cont();
  holder->Send("write fault/freeze-data stale");
  auto wrote = holder->WaitEvent("WRITE");
  ASSERT_TRUE(wrote) << holder->Describe();
  EXPECT_EQ((*wrote)[1], "refused") << holder->Describe();
  auto data = client_->kv().Get("fault/freeze-data", {}, Within(10000));
  ASSERT_TRUE(data.ok());
  EXPECT_TRUE(data->kvs.empty());
  // The new holder's guarded write applies.
  Txn txn;
  txn.If({grant->Guard()}).Then({Op::Put("fault/freeze-data", "fresh")});
  auto r = client_->kv().Commit(txn, Within(10000));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded);
}

// The Raft leader of a 3-member cluster killed while two locks are held and waited on (all by
// separate processes): a holder's guarded write applies only before its waiter's grant, and
// every waiter eventually acquires.
TEST_P(FaultTest, ClusterLeaderKilledWhileLocksAreHeldAndWaitedOn) {
  StartCluster(3);
  std::vector<std::unique_ptr<FaultChild>> holders, waiters;
  std::vector<int64_t> holder_tokens;
  for (int i = 0; i < 2; ++i) {
    std::string name = absl::StrCat("fault/leader/lock", i);
    holders.push_back(Child(absl::StrCat("holder", i), "lock", name, 5));
    auto locked = holders[i]->WaitEvent("LOCKED");
    ASSERT_TRUE(locked) << holders[i]->Describe();
    holder_tokens.push_back(ToInt((*locked)[1]));
    waiters.push_back(Child(absl::StrCat("waiter", i), "lock", name, 5));
    ASSERT_TRUE(PollUntil([&] { return CountUnder(name + "/") == 2; })) << waiters[i]->Describe();
  }
  auto leader = cluster_->Leader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  cluster_->Kill(*leader);
  auto next = cluster_->Leader({*leader});
  ASSERT_TRUE(next.ok()) << next.status();

  for (int i = 0; i < 2; ++i) {
    holders[i]->Send(absl::StrCat("write fault/leader/data", i, " holder"));
    auto wrote = holders[i]->WaitEvent("WRITE", 1, std::chrono::milliseconds(60000));
    ASSERT_TRUE(wrote) << holders[i]->Describe();
    holders[i]->Send("unlock");
    auto granted = waiters[i]->WaitEvent("LOCKED", 1, std::chrono::milliseconds(60000));
    ASSERT_TRUE(granted) << waiters[i]->Describe() << "\n" << holders[i]->Describe();
    EXPECT_GT(ToInt((*granted)[1]), holder_tokens[i]);
    if ((*wrote)[1] == "applied") {
      // The holder still held the lock at its write: the waiter's grant came later.
      EXPECT_GT(ToInt((*granted)[2]), ToInt((*wrote)[2])) << holders[i]->Describe() << "\n"
                                                          << waiters[i]->Describe();
    }
    waiters[i]->Send(absl::StrCat("write fault/leader/data", i, " waiter"));
    auto waiter_wrote = waiters[i]->WaitEvent("WRITE", 1, std::chrono::milliseconds(60000));
    ASSERT_TRUE(waiter_wrote) << waiters[i]->Describe();
    EXPECT_EQ((*waiter_wrote)[1], "applied") << waiters[i]->Describe();
  }
}

// An elected leader process killed: another candidate leads within the TTL plus a generous
// margin, with a larger fencing token.
TEST_P(FaultTest, KilledElectionLeaderIsReplaced) {
  StartCluster(1);
  const std::string name = "fault/elect";
  std::vector<std::unique_ptr<FaultChild>> candidates;
  for (int i = 0; i < 3; ++i) {
    candidates.push_back(
        Child(absl::StrCat("c", i), "elect", name, 2, {"--id", absl::StrCat("c", i)}));
  }
  // The leader as the server sees it (value = candidate index), once that candidate reported
  // the leadership (token = its key's create revision).
  auto leader_reported = [&](int* index, int64_t* token) {
    auto l = recipes::GetLeader(client_->kv(), name, Within(10000));
    if (!l.ok()) return false;
    int i = std::atoi(l->value.c_str() + 1);
    for (const auto& e : candidates[i]->Events("LEADER")) {
      if (ToInt(e[1]) == l->create_revision) {
        *index = i;
        *token = l->create_revision;
        return true;
      }
    }
    return false;
  };
  int leader = -1;
  int64_t old_token = 0;
  ASSERT_TRUE(PollUntil([&] { return leader_reported(&leader, &old_token); }));
  candidates[leader]->Kill();
  // Liveness: TTL (2 s) + a generous margin.
  int next = -1;
  int64_t new_token = 0;
  ASSERT_TRUE(PollUntil([&] { return leader_reported(&next, &new_token) && next != leader; },
                        std::chrono::milliseconds(2000 + 30000)))
      << candidates[0]->Describe() << "\n"
      << candidates[1]->Describe() << "\n"
      << candidates[2]->Describe();
  EXPECT_GT(new_token, old_token);
}

INSTANTIATE_TEST_SUITE_P(Servers, FaultTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

// The randomized, longer scenarios (seeded fault schedules).
class RandomFaultTest : public FaultTest {};

struct Commit {
  int64_t token = 0;
  int64_t value = 0;
  Revision revision = 0;
};

// A counter incremented under the lock by three processes while random ones are killed
// (SIGKILL) or frozen (SIGSTOP, then SIGCONT once the others progressed): no update is lost
// and no two increments come from overlapping lock holds.
TEST_P(RandomFaultTest, CounterUnderTheLockLosesNoUpdateDespiteKillsAndPauses) {
  const uint32_t seed = Seed();
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (replay: CAIRN_FAULT_SEED=", seed, ")"));
  std::mt19937 rng(seed);
  StartCluster(1);
  const std::string lock = "fault/counter/lock";
  const std::string key = "fault/counter/value";
  std::vector<std::unique_ptr<FaultChild>> all;  // every child ever started, for the checks
  std::vector<FaultChild*> live;
  int spawned = 0;
  auto spawn = [&] {
    all.push_back(Child(absl::StrCat("w", spawned++), "counter", lock, 2,
                        {"--key", key, "--count", "1000", "--hold-ms", "50"}));
    live.push_back(all.back().get());
  };
  for (int i = 0; i < 3; ++i) spawn();
  auto total_commits = [&] {
    size_t n = 0;
    for (const auto& c : all) n += c->Events("COMMIT").size();
    return n;
  };
  auto describe = [&] {
    std::string out;
    for (const auto& c : all) out += c->Describe() + "\n";
    return out;
  };

  const int kFaults = 6;
  for (int fault = 0; fault < kFaults; ++fault) {
    size_t before = total_commits();
    ASSERT_TRUE(
        PollUntil([&] { return total_commits() >= before + 3; }, std::chrono::milliseconds(60000)))
        << describe();
    // Mostly the current lock holder (most likely between its read and its guarded write, where
    // a stale holder would lose an update), sometimes any process.
    size_t victim = rng() % live.size();
    if (rng() % 4 != 0) {
      LeaseId holder_lease = 0;
      ASSERT_TRUE(PollUntil([&] {
        holder_lease = OwnerLease(lock);
        return holder_lease != 0;
      }));
      for (size_t i = 0; i < live.size(); ++i) {
        for (const auto& e : live[i]->Events("SESSION")) {
          if (ToInt(e[1]) == holder_lease) victim = i;
        }
      }
    }
    if (rng() % 2 == 0) {
      live[victim]->Kill();
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(victim));
      spawn();
    } else {
      FaultChild* frozen = live[victim];
      frozen->Stop();
      // Frozen until the others committed twice more: if it held the lock, that takes its lease
      // expiring first.
      size_t at_freeze = total_commits();
      ASSERT_TRUE(PollUntil([&] { return total_commits() >= at_freeze + 2; },
                            std::chrono::milliseconds(60000)))
          << describe();
      frozen->Cont();
    }
  }
  size_t before = total_commits();
  ASSERT_TRUE(
      PollUntil([&] { return total_commits() >= before + 3; }, std::chrono::milliseconds(60000)))
      << describe();
  for (auto& c : all) c->Kill();

  // What the server holds.
  auto counter = client_->kv().Get(key, {}, Within(10000));
  ASSERT_TRUE(counter.ok() && counter->kvs.size() == 1) << describe();
  const int64_t final_value = ToInt(counter->kvs[0].value);
  GetOptions go;
  go.prefix = true;
  go.sort_target = SortTarget::kMod;
  go.sort_order = SortOrder::kAscend;
  auto incs = client_->kv().Get(key + "/inc/", go, Within(10000));
  ASSERT_TRUE(incs.ok()) << incs.status();
  // Every increment the server applied added exactly one: values 1..N in commit order, from
  // lock holds with non-decreasing fencing tokens.
  ASSERT_EQ(static_cast<int64_t>(incs->kvs.size()), final_value) << describe();
  std::map<std::pair<int64_t, int64_t>, Revision> applied;  // (token, value) -> revision
  int64_t last_token = 0;
  for (size_t i = 0; i < incs->kvs.size(); ++i) {
    const KeyValue& kv = incs->kvs[i];
    EXPECT_EQ(ToInt(kv.value), static_cast<int64_t>(i) + 1) << kv.key << "\n" << describe();
    std::string suffix = kv.key.substr(key.size() + 5);
    int64_t token = ToInt(suffix.substr(0, suffix.find('-')));
    EXPECT_GE(token, last_token) << "increments of overlapping holds: " << kv.key;
    last_token = token;
    applied[{token, ToInt(kv.value)}] = kv.mod_revision;
  }
  // Every increment a process reported as committed is there, at the revision it reported.
  size_t reported = 0;
  for (const auto& c : all) {
    for (const auto& e : c->Events("COMMIT")) {
      ++reported;
      auto it = applied.find({ToInt(e[1]), ToInt(e[2])});
      ASSERT_NE(it, applied.end()) << c->label() << " reported " << absl::StrJoin(e, " ");
      EXPECT_EQ(it->second, ToInt(e[3]));
    }
  }
  EXPECT_LE(static_cast<int64_t>(reported), final_value);
  EXPECT_GE(reported, static_cast<size_t>(3 * kFaults));
}

// Leaders of an election (separate processes) killed and frozen at random: the leaderships,
// each a fencing token with the revisions from its grant to its last applied guarded write, are
// ordered by token and never overlap; a frozen leader's writes are fenced once it is resumed.
TEST_P(RandomFaultTest, LeadershipIntervalsNeverOverlap) {
  const uint32_t seed = Seed();
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (replay: CAIRN_FAULT_SEED=", seed, ")"));
  std::mt19937 rng(seed);
  StartCluster(1);
  const std::string name = "fault/terms";
  std::vector<std::unique_ptr<FaultChild>> all;
  std::map<std::string, FaultChild*> by_id;
  int spawned = 0;
  auto spawn = [&] {
    std::string id = absl::StrCat("c", spawned++);
    all.push_back(Child(id, "elect", name, 2, {"--id", id}));
    by_id[id] = all.back().get();
  };
  for (int i = 0; i < 3; ++i) spawn();
  auto describe = [&] {
    std::string out;
    for (const auto& c : all) out += c->Describe() + "\n";
    return out;
  };
  auto current_leader = [&]() -> std::optional<recipes::LeaderInfo> {
    auto l = recipes::GetLeader(client_->kv(), name, Within(10000));
    if (!l.ok()) return std::nullopt;
    return *l;
  };

  const int kRounds = 4;
  // kRounds faults, then the leadership after the last one.
  for (int round = 0; round <= kRounds; ++round) {
    // The current leader, once it has written under its leadership.
    std::optional<recipes::LeaderInfo> leader;
    ASSERT_TRUE(PollUntil(
        [&] {
          leader = current_leader();
          if (!leader || by_id.count(leader->value) == 0) return false;
          for (const auto& e : by_id[leader->value]->Events("WROTE")) {
            if (ToInt(e[1]) == leader->create_revision) return true;
          }
          return false;
        },
        std::chrono::milliseconds(60000)))
        << describe();
    if (round == kRounds) break;
    FaultChild* victim = by_id[leader->value];
    if (rng() % 2 == 0) {
      victim->Kill();
      by_id.erase(leader->value);
      spawn();
    } else {
      victim->Stop();
      ASSERT_TRUE(PollUntil(
          [&] {
            auto now = current_leader();
            return now && now->create_revision != leader->create_revision;
          },
          std::chrono::milliseconds(2000 + 30000)))
          << describe();
      victim->Cont();
      ASSERT_TRUE(PollUntil(
          [&] {
            for (const auto& e : victim->Events("FENCED")) {
              if (ToInt(e[1]) == leader->create_revision) return true;
            }
            return false;
          },
          std::chrono::milliseconds(30000)))
          << describe();
    }
  }
  for (auto& c : all) c->Kill();

  // Leaderships as the processes saw them: token -> [grant revision, last applied write].
  struct Interval {
    Revision first = 0;
    Revision last = 0;
    std::string who;
  };
  std::map<int64_t, Interval> terms;
  for (const auto& c : all) {
    for (const auto& e : c->Events("LEADER")) {
      ASSERT_EQ(terms.count(ToInt(e[1])), 0u) << "token granted twice: " << e[1];
      terms[ToInt(e[1])] = {ToInt(e[2]), ToInt(e[2]), c->label()};
    }
    for (const auto& e : c->Events("WROTE")) {
      ASSERT_EQ(terms.count(ToInt(e[1])), 1u) << describe();
      terms[ToInt(e[1])].last = std::max(terms[ToInt(e[1])].last, ToInt(e[2]));
    }
  }
  // Writes the server applied (some may not have been reported before a kill).
  GetOptions go;
  go.prefix = true;
  auto log = client_->kv().Get(name + "-log/", go, Within(10000));
  ASSERT_TRUE(log.ok()) << log.status();
  for (const KeyValue& kv : log->kvs) {
    std::vector<std::string> parts = absl::StrSplit(kv.key, '/');
    int64_t token = ToInt(parts[parts.size() - 2]);
    ASSERT_EQ(terms.count(token), 1u) << "a write under an unknown leadership: " << kv.key;
    EXPECT_GE(kv.mod_revision, terms[token].first) << kv.key;
    terms[token].last = std::max(terms[token].last, kv.mod_revision);
  }
  ASSERT_GE(terms.size(), static_cast<size_t>(kRounds + 1)) << describe();
  const Interval* previous = nullptr;
  int64_t previous_token = 0;
  for (const auto& [token, interval] : terms) {
    if (previous != nullptr) {
      EXPECT_LT(previous->last, interval.first)
          << "leadership " << previous_token << " (" << previous->who << ") overlaps " << token
          << " (" << interval.who << ")\n"
          << describe();
    }
    previous = &interval;
    previous_token = token;
  }
}

INSTANTIATE_TEST_SUITE_P(Servers, RandomFaultTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
