// LeaderSelector: run a function while leader (Curator's LeaderSelector), on top of Election
// (etcd's layout).
//
// A background thread campaigns; once elected it calls take_leadership(grant, lost). Leadership
// lasts while that function runs: when it returns, the selector resigns and, with requeue set,
// campaigns again (else it stops). `lost` is canceled when the leadership is in danger (the
// session ended) or the selector is closing: the function must then stop promptly and must not
// rely on its leadership any more (guard writes with grant.Guard()).
//
// Thread-safe. take_leadership runs on the selector's thread; it must not call Close().
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes {

struct LeaderSelectorOptions {
  std::string value;  // the proposal stored in the election key
  std::function<void(const Grant& grant, const CancelToken& lost)> take_leadership;
  bool requeue = true;  // campaign again after each leadership
};

class LeaderSelector {
 public:
  // INVALID_ARGUMENT for an empty name or no take_leadership; FAILED_PRECONDITION for an ended
  // session.
  static absl::StatusOr<std::unique_ptr<LeaderSelector>> Start(std::shared_ptr<Session> session,
                                                               std::string name,
                                                               LeaderSelectorOptions options);
  // Close()s.
  ~LeaderSelector();

  // How many times take_leadership was entered.
  int64_t leaderships() const;
  // Stops campaigning, cancels `lost` of a running take_leadership, waits for it to return,
  // resigns. Idempotent.
  void Close();
  // OK while running; why the selector stopped otherwise (session ended, Close, or no requeue).
  absl::Status status() const;

  struct State;  // internal

 private:
  LeaderSelector() = default;
  std::shared_ptr<State> state_;
};

}  // namespace cairn::recipes
