// LeaderLatch: campaign in the background and be told when leadership comes and goes
// (Curator's LeaderLatch), on top of Election (etcd's layout, so it agrees with `etcdctl elect`).
//
// Start() begins campaigning on a background thread. When this participant becomes leader,
// has_leadership() turns true and on_leader runs; when the leadership ends (session lost, or
// Close()), has_leadership() turns false and on_not_leader runs (only if on_leader ran before).
// After a lost session the latch does not campaign again: it is done (status() tells why);
// create a new session and latch to rejoin.
//
// Thread-safe. Callbacks run on the latch's thread, one at a time; they must not call Close().
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/recipes/async.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes {

struct LeaderLatchOptions {
  std::string value;  // the proposal stored in the election key
  std::function<void(const Grant&)> on_leader;
  std::function<void()> on_not_leader;
};

class LeaderLatch {
 public:
  // INVALID_ARGUMENT for an empty name; FAILED_PRECONDITION for an ended session.
  static absl::StatusOr<std::unique_ptr<LeaderLatch>> Start(std::shared_ptr<Session> session,
                                                            std::string name,
                                                            LeaderLatchOptions options = {});
  // Close()s.
  ~LeaderLatch();

  bool has_leadership() const;
  // The grant while leader.
  std::optional<Grant> leadership() const;
  // Waits until this participant is leader (returns the grant) or the latch is done (its
  // status), or `call`'s deadline / cancel. Fiber-aware.
  absl::StatusOr<Grant> Await(const CallOptions& call = {}) const;
  // Await's async form, holding no thread while it waits (the latch's own thread completes it;
  // the cancel token or the recipes' timer at the deadline end it; see async.h). It may outlive
  // this object (Close() ends it with CANCELLED).
  Future<Grant> AwaitAsync(const CallOptions& call = {}) const;
  // OK while campaigning or leading; why the latch is done otherwise.
  absl::Status status() const;
  // Stops campaigning and resigns (on_not_leader runs if it was leader). Idempotent.
  void Close();

  struct State;  // internal

 private:
  LeaderLatch() = default;
  std::shared_ptr<State> state_;
};

}  // namespace cairn::recipes
