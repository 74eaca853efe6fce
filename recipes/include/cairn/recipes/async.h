// Async forms of the recipes' blocking calls.
//
// Every call that waits has a named twin returning the client's Future<T>: Mutex::LockAsync,
// RWMutex::{R,}LockAsync, Semaphore::AcquireAsync, MultiLock::LockAsync, Election::CampaignAsync,
// LeaderObserver::WaitForAsync, LeaderLatch::AwaitAsync, Queue::{Dequeue,Claim}Async,
// Barrier::WaitAsync, DoubleBarrier::{Enter,Leave}Async, ServiceResolver::WaitForAsync,
// PrefixCache::WaitForRevisionAsync, RunStmAsync (Session::Done is Session::Wait's). RunAsync
// turns any other blocking call (a recipe call of your own built on the blocking ones) into one:
//
//   auto f = cairn::recipes::RunAsync<int64_t>(call, [&](const cairn::CallOptions& c) {
//     return counter.Add(1, c);
//   });
//
// Every *Async form of the recipes (Mutex::{Lock,TryLock,Unlock}Async, RWMutex::{R,}LockAsync,
// RWMutex::UnlockAsync, Semaphore::{Acquire,Release}Async, MultiLock::{Lock,Unlock}Async,
// Election::{Campaign,Proclaim,Resign,Leader}Async, Barrier::{Hold,Release,Wait}Async,
// DoubleBarrier::{Enter,Leave}Async, Queue::{Enqueue,Dequeue,TryDequeue,Claim,Size}Async,
// LeaderLatch::AwaitAsync, Counter::*Async, PrefixCache::WaitForRevisionAsync,
// ServiceResolver::WaitForAsync, LeaderObserver::WaitForAsync, Session::{Create,Close}Async,
// RegisterEndpointAsync, RunStmAsync) holds no thread while it waits: each step starts from the
// completion of the one before (client threads, watch callbacks), and one process-wide timer
// thread ends waits at their deadlines. Only RunAsync runs its blocking call on a thread of its
// own, started for the call. Either way, `call`'s deadline/timeout bounds the whole call.
//
// RunAsync's blocking call runs on a thread of its own, started for the call, so waiting holds
// neither the caller's thread nor its fiber. `call`'s deadline/timeout bound it (the timeout counts
// from the *Async call); canceling the returned future or `call`'s token cancels it, with the same
// outcome as canceling the blocking call (CANCELLED; a waiter key it created is removed). The
// object the call is made on, its session and its client must outlive the future's completion.
// Calls that return only a status complete with Completed{}.
#pragma once

#include <chrono>
#include <functional>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/client.h"

namespace cairn::recipes {

// The value of a completed call that returns only a status.
struct Completed {};

// Runs fn(c) on a new thread, where `c` is `call` with an absolute deadline and a cancel token
// canceled by `call.cancel` or by the returned future's Cancel(); the future completes with fn's
// result.
template <typename T>
Future<T> RunAsync(const CallOptions& call,
                   std::function<absl::StatusOr<T>(const CallOptions&)> fn) {
  CallOptions inner = call;
  if (inner.timeout.count() > 0) {
    Clock::time_point d = Clock::now() + inner.timeout;
    if (d < inner.deadline) inner.deadline = d;
    inner.timeout = std::chrono::milliseconds(0);
  }
  CancelToken token = CancelToken::Make();
  inner.cancel = token;
  Promise<T> p;
  p.SetCancel([token] { token.Cancel(); });
  CancelToken parent = call.cancel;
  uint64_t parent_id = parent.Register([token] { token.Cancel(); });
  std::thread([p, fn = std::move(fn), inner, parent, parent_id] {
    absl::StatusOr<T> r = fn(inner);
    parent.Unregister(parent_id);
    p.Set(std::move(r));
  }).detach();
  return p.future();
}

// The same for a call that returns only a status.
inline Future<Completed> RunAsync(const CallOptions& call,
                                  std::function<absl::Status(const CallOptions&)> fn) {
  return RunAsync<Completed>(
      call, [fn = std::move(fn)](const CallOptions& c) -> absl::StatusOr<Completed> {
        absl::Status st = fn(c);
        if (!st.ok()) return st;
        return Completed{};
      });
}

}  // namespace cairn::recipes
