// Election: leader election in etcd's concurrency layout, so it agrees with Go's
// concurrency.Election and `etcdctl elect NAME`.
//
// Key layout: each candidate puts "<name>/<lease id hex>" = its proposal, on its session's lease.
// The leader is the key with the smallest create revision under "<name>/"; its value is the
// leader's proposal. A candidate waits for the deletion of the key created just before its own
// (no polling, no herd). The leader's fencing token is its key's create revision; Grant::Guard()
// makes a Txn apply only while that leadership lasts.
//
// A lost session means lost leadership: the key goes with the lease and the next candidate
// becomes leader. Campaign() re-checks after waiting that its key still exists on the session's
// lease; a leader must guard its writes (Grant::Guard) or watch Session::Done().
//
// Thread-compatible: Campaign/Proclaim/Resign on one Election object must not overlap;
// leadership() is thread-safe. LeaderObserver is thread-safe. Blocking calls are fiber-aware.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/client.h"
#include "cairn/recipes/async.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/prefix_cache.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes {

// The current leader of an election.
struct LeaderInfo {
  std::string key;
  std::string value;
  Revision create_revision = 0;  // the leader's fencing token
  Revision mod_revision = 0;     // changes with every Proclaim
  LeaseId lease = 0;

  Compare Guard() const { return Cmp::CreateRevision(key) == create_revision; }
  bool operator==(const LeaderInfo&) const = default;
};

// The leader of election `name` now. NOT_FOUND ("election: no leader") when there is none;
// INVALID_ARGUMENT for an empty name; server errors.
absl::StatusOr<LeaderInfo> GetLeader(const Kv& kv, const std::string& name,
                                     const CallOptions& call = {});
Future<LeaderInfo> GetLeaderAsync(const Kv& kv, const std::string& name,
                                  const CallOptions& call = {});

// Follows the leader of an election: a stream of leaders, as etcd's Observe. Built on a
// PrefixCache of "<name>/", so it survives reconnects and compaction.
class LeaderObserver {
 public:
  // Called with every new leader or new proclaimed value (not when there is no leader), in
  // order, on a client thread; keep it quick.
  using Callback = std::function<void(const LeaderInfo&)>;

  // INVALID_ARGUMENT for an empty name; otherwise as PrefixCache::Start.
  static absl::StatusOr<std::unique_ptr<LeaderObserver>> Start(const Kv& kv,
                                                               const WatchClient& watch,
                                                               std::string name,
                                                               Callback callback = nullptr,
                                                               const CallOptions& call = {});
  ~LeaderObserver();

  // The leader as currently known (nullopt: none).
  std::optional<LeaderInfo> current() const;
  // Waits until the current leader satisfies `pred` and returns it. DEADLINE_EXCEEDED /
  // CANCELLED per `call`. Fiber-aware.
  absl::StatusOr<LeaderInfo> WaitFor(std::function<bool(const LeaderInfo&)> pred,
                                     const CallOptions& call = {});
  // WaitFor's async form (see async.h), holding no thread: the observer's updates check `pred`
  // (keep it quick; it runs under the observer's lock) and complete it; the recipes' timer ends
  // it at the deadline. CANCELLED ("observer destroyed") if the observer is destroyed first.
  Future<LeaderInfo> WaitForAsync(std::function<bool(const LeaderInfo&)> pred,
                                  const CallOptions& call = {});

  struct State;  // internal

 private:
  LeaderObserver() = default;
  std::shared_ptr<State> state_;
  std::unique_ptr<PrefixCache> cache_;
};

class Election {
 public:
  // `name` as given to `etcdctl elect`. An empty name is reported by the calls (INVALID_ARGUMENT).
  // `session` must not be null.
  Election(std::shared_ptr<Session> session, std::string name);
  // Resumes a leadership obtained elsewhere (etcd's ResumeElection): Proclaim and Resign act on
  // `leadership`'s key, guarded by its fencing token, as if Campaign had returned it.
  Election(std::shared_ptr<Session> session, std::string name, Grant leadership);

  // Puts this candidate's key with `value` and waits until it is the leader. `call` bounds the
  // whole wait (unset: no limit). Errors: INVALID_ARGUMENT (empty name); FAILED_PRECONDITION
  // when already leader through this object or the session was closed; the session's loss
  // status when it is lost, or kLeaseLost if the key vanished; DEADLINE_EXCEEDED / CANCELLED
  // (the candidate key created by this call is then removed). If the session already had a
  // key in this election (another Election object), it is reused and its value updated.
  absl::StatusOr<Grant> Campaign(const std::string& value, const CallOptions& call = {});
  // Campaign() without blocking any thread (see Mutex::LockAsync: same threads, same limits of
  // `call`'s deadline, and this object must outlive the future's completion).
  Future<Grant> CampaignAsync(const std::string& value, const CallOptions& call = {});

  // Sets a new value while leader (guarded by the fencing token). FAILED_PRECONDITION
  // ("election: not leader") when not leader or the leadership was lost.
  absl::Status Proclaim(const std::string& value, const CallOptions& call = {});

  // Gives up leadership (deletes the key if it is still ours). OK when not leader.
  absl::Status Resign(const CallOptions& call = {});

  // Proclaim and Resign without blocking; they complete with the header of their transaction
  // (Resign when not leader: an empty header). Errors as the blocking forms.
  Future<ResponseHeader> ProclaimAsync(const std::string& value, const CallOptions& call = {});
  Future<ResponseHeader> ResignAsync(const CallOptions& call = {});

  // The current leader (anyone's). See GetLeader.
  absl::StatusOr<LeaderInfo> Leader(const CallOptions& call = {}) const;
  Future<LeaderInfo> LeaderAsync(const CallOptions& call = {}) const;

  // Observes this election; see LeaderObserver.
  absl::StatusOr<std::unique_ptr<LeaderObserver>> Observe(LeaderObserver::Callback callback,
                                                          const CallOptions& call = {}) const;

  // Our leadership as known locally (may have been lost since; use Guard()).
  std::optional<Grant> leadership() const;
  std::string key() const { return key_; }

 private:
  std::shared_ptr<Session> session_;
  std::string name_;
  std::string prefix_;
  std::string key_;
  mutable std::mutex mu_;
  std::optional<Grant> grant_;
};

}  // namespace cairn::recipes
