// A recipe user as a separate OS process, for the fault tests (fault_test.cc): the test kills it
// (SIGKILL), freezes it (SIGSTOP/SIGCONT) and reads what it did from its stdout, one event per
// line, each flushed at once.
//
//   recipe_fault_child lock    --endpoints E1,E2 --name N --ttl S
//       SESSION <lease>, then LOCKED <fencing token> <grant revision> <lease>; then commands on
//       stdin, one a line: "write KEY VALUE" -> WRITE applied|refused <revision> (a Txn guarded
//       by the lock's fencing token); "unlock" -> UNLOCKED. Exits at the end of stdin.
//   recipe_fault_child counter --endpoints ... --name N --ttl S --key K --count C [--hold-ms H]
//       C times: take the lock, read K, wait H ms (the work), then in one Txn guarded by the
//       fencing token put K = value + 1 and "K/inc/<token>-<seq>" = value + 1. Prints
//       COMMIT <token> <new value> <revision> or REFUSED <token>; a lost session is replaced.
//       Prints DONE and exits 0 after C commits.
//   recipe_fault_child elect   --endpoints ... --name N --ttl S --id ID
//       Campaigns with value ID: LEADER <token> <grant revision>; then, as leader, puts
//       "N-log/<token>/<seq>" in a guarded Txn every 50 ms: WROTE <token> <revision>, or
//       FENCED <token> once refused, then campaigns again with a new session. Runs until killed.
//   recipe_fault_child kit --binary CAIRN
//       Starts a 1-member cairn::testing::TestingCluster, prints KIT <member pid> <data dir>, then
//       blocks reading stdin: the test kills this process to show that the member dies with it.
// Errors print ERROR <what>: <status> and the step is retried.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cairn/client.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/session.h"
#include "cairn/testing/cluster.h"

namespace {

using cairn::CallOptions;
using cairn::Client;
using cairn::Op;
using cairn::Txn;
using cairn::recipes::Election;
using cairn::recipes::Grant;
using cairn::recipes::Mutex;
using cairn::recipes::Session;

void Emit(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

// Pacing between retries of a failed step (not a wait for a condition).
void RetryPause() { std::this_thread::sleep_for(std::chrono::milliseconds(100)); }

CallOptions Within(int ms) {
  CallOptions c;
  c.timeout = std::chrono::milliseconds(ms);
  return c;
}

struct Args {
  std::string mode;
  std::vector<std::string> endpoints;
  std::string name;
  int64_t ttl = 2;
  std::string key;
  int count = 0;
  int hold_ms = 0;
  std::string id;
  std::string binary;
};

bool Parse(int argc, char** argv, Args& a) {
  if (argc < 2) return false;
  a.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string value = argv[i + 1];
    if (flag == "--endpoints") {
      a.endpoints = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else if (flag == "--name") {
      a.name = value;
    } else if (flag == "--ttl") {
      a.ttl = std::atoll(value.c_str());
    } else if (flag == "--key") {
      a.key = value;
    } else if (flag == "--count") {
      a.count = std::atoi(value.c_str());
    } else if (flag == "--hold-ms") {
      a.hold_ms = std::atoi(value.c_str());
    } else if (flag == "--id") {
      a.id = value;
    } else if (flag == "--binary") {
      a.binary = value;
    } else {
      return false;
    }
  }
  return a.mode == "kit" || (!a.endpoints.empty() && !a.name.empty());
}

int RunKit(const Args& a) {
  cairn::testing::TestingClusterOptions o;
  o.binary = a.binary;
  auto cluster = cairn::testing::TestingCluster::Start(o);
  if (!cluster.ok()) {
    Emit(absl::StrCat("ERROR kit: ", cluster.status().ToString()));
    return 1;
  }
  Emit(absl::StrCat("KIT ", (*cluster)->Pid(0), " ", (*cluster)->DataDir(0)));
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  return 0;
}

std::shared_ptr<Session> NewSession(const Client& client, int64_t ttl) {
  while (true) {
    cairn::recipes::SessionOptions so;
    so.ttl_seconds = ttl;
    auto s = Session::Create(client, so, Within(10000));
    if (s.ok()) {
      Emit(absl::StrCat("SESSION ", (*s)->lease()));
      return *s;
    }
    Emit(absl::StrCat("ERROR session: ", s.status().ToString()));
    RetryPause();
  }
}

int RunLock(const Client& client, const Args& a) {
  auto session = NewSession(client, a.ttl);
  Mutex mu(session, a.name);
  auto grant = mu.Lock();
  if (!grant.ok()) {
    Emit(absl::StrCat("ERROR lock: ", grant.status().ToString()));
    return 1;
  }
  Emit(absl::StrCat("LOCKED ", grant->fencing_token, " ", grant->header.revision, " ",
                    grant->lease));
  std::string line;
  while (std::getline(std::cin, line)) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    if (parts[0] == "write" && parts.size() == 3) {
      Txn txn;
      txn.If({grant->Guard()}).Then({Op::Put(parts[1], parts[2])});
      auto r = client.kv().Commit(txn, Within(20000));
      if (!r.ok()) {
        Emit(absl::StrCat("WRITE error ", r.status().ToString()));
      } else {
        Emit(absl::StrCat("WRITE ", r->succeeded ? "applied " : "refused ", r->header.revision));
      }
    } else if (parts[0] == "unlock") {
      auto s = mu.Unlock(Within(20000));
      Emit(s.ok() ? "UNLOCKED" : absl::StrCat("ERROR unlock: ", s.ToString()));
    }
  }
  return 0;
}

int RunCounter(const Client& client, const Args& a) {
  std::shared_ptr<Session> session;
  int committed = 0;
  int seq = 0;
  while (committed < a.count) {
    if (session == nullptr || !session->alive()) session = NewSession(client, a.ttl);
    Mutex mu(session, a.name);
    auto grant = mu.Lock(Within(60000));
    if (!grant.ok()) {
      Emit(absl::StrCat("ERROR lock: ", grant.status().ToString()));
      RetryPause();
      continue;
    }
    auto got = client.kv().Get(a.key, {}, Within(10000));
    if (!got.ok()) {
      Emit(absl::StrCat("ERROR get: ", got.status().ToString()));
      (void)mu.Unlock(Within(10000));
      continue;
    }
    int64_t value = got->kvs.empty() ? 0 : std::atoll(got->kvs[0].value.c_str());
    if (a.hold_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(a.hold_ms));  // work
    std::string next = std::to_string(value + 1);
    Txn txn;
    txn.If({grant->Guard()})
        .Then({Op::Put(a.key, next),
               Op::Put(absl::StrCat(a.key, "/inc/", grant->fencing_token, "-", seq++), next)});
    auto r = client.kv().Commit(txn, Within(20000));
    if (!r.ok()) {
      // Unknown outcome: the final check counts what the server holds, not what we report.
      Emit(absl::StrCat("ERROR commit: ", r.status().ToString()));
    } else if (r->succeeded) {
      ++committed;
      Emit(absl::StrCat("COMMIT ", grant->fencing_token, " ", next, " ", r->header.revision));
    } else {
      Emit(absl::StrCat("REFUSED ", grant->fencing_token));
    }
    (void)mu.Unlock(Within(10000));
  }
  Emit("DONE");
  return 0;
}

int RunElect(const Client& client, const Args& a) {
  while (true) {
    auto session = NewSession(client, a.ttl);
    Election election(session, a.name);
    auto grant = election.Campaign(a.id, Within(120000));
    if (!grant.ok()) {
      Emit(absl::StrCat("ERROR campaign: ", grant.status().ToString()));
      RetryPause();
      continue;
    }
    Emit(absl::StrCat("LEADER ", grant->fencing_token, " ", grant->header.revision));
    for (int seq = 0;; ++seq) {
      Txn txn;
      txn.If({grant->Guard()})
          .Then({Op::Put(absl::StrCat(a.name, "-log/", grant->fencing_token, "/", seq), a.id)});
      auto r = client.kv().Commit(txn, Within(10000));
      if (!r.ok()) {
        Emit(absl::StrCat("ERROR write: ", r.status().ToString()));
      } else if (r->succeeded) {
        Emit(absl::StrCat("WROTE ", grant->fencing_token, " ", r->header.revision));
      } else {
        Emit(absl::StrCat("FENCED ", grant->fencing_token));
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the leader's work pace
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!Parse(argc, argv, a)) {
    std::fprintf(stderr,
                 "usage: recipe_fault_child lock|counter|elect --endpoints E1,E2 --name N "
                 "[--ttl S] [--key K --count C --hold-ms H] [--id ID]\n");
    return 2;
  }
  if (a.mode == "kit") return RunKit(a);
  cairn::ClientOptions co;
  co.endpoints = a.endpoints;
  co.dial_timeout = std::chrono::milliseconds(10000);
  co.default_timeout = std::chrono::milliseconds(15000);
  auto client = Client::Connect(co);
  if (!client.ok()) {
    Emit(absl::StrCat("ERROR connect: ", client.status().ToString()));
    return 1;
  }
  if (a.mode == "lock") return RunLock(**client, a);
  if (a.mode == "counter") return RunCounter(**client, a);
  if (a.mode == "elect") return RunElect(**client, a);
  std::fprintf(stderr, "recipe_fault_child: unknown mode %s\n", a.mode.c_str());
  return 2;
}
