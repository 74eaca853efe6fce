// Futures, cancellation and fiber-aware waiting for the Cairn client.
//
// Every asynchronous call returns a Future<T>. Consume it exactly once, either by Get() (blocks
// the caller until the result is ready) or by Then(callback) (called once with the result).
// Get() is fiber-aware: on a Boost.Fiber fiber it suspends only that fiber; on a plain thread (or
// the main context of a thread) it blocks the thread.
//
// Thread safety: a Future may be moved between threads; Cancel() and Ready() may be called from
// any thread, concurrently with Get()/Then(). Then() callbacks run on an internal client thread
// (or inline in Then() if the result is already there): they must be quick and must not block on
// another call of the same client.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cairn {

using Clock = std::chrono::steady_clock;

namespace internal {

// A one-shot event: Set() once, Wait() any number of times from any thread or fiber.
class Notification {
 public:
  Notification();
  ~Notification();
  Notification(const Notification&) = delete;
  Notification& operator=(const Notification&) = delete;

  void Set();
  bool IsSet() const;
  // Waits until Set() or `deadline`; returns IsSet(). Fiber-aware (see file comment).
  bool WaitUntil(Clock::time_point deadline);
  void Wait() { WaitUntil(Clock::time_point::max()); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True when the caller runs on a Boost.Fiber fiber other than a thread's main context.
bool OnFiber();

}  // namespace internal

// A cancellation handle shared by copies. Make() creates a live token; a default-constructed
// token is empty and never cancels. Cancel() is idempotent and thread-safe; callbacks registered
// by calls run once, on the canceling thread (or inline at registration if already canceled).
class CancelToken {
 public:
  CancelToken() = default;
  static CancelToken Make();

  void Cancel() const;
  bool canceled() const;
  bool empty() const { return state_ == nullptr; }

  // Internal: registers `cb`; returns an id for Unregister (0 when run inline or empty).
  uint64_t Register(std::function<void()> cb) const;
  void Unregister(uint64_t id) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

namespace internal {

template <typename T>
struct FutureState {
  std::mutex mu;
  std::optional<absl::StatusOr<T>> result;
  std::function<void(absl::StatusOr<T>)> callback;
  std::function<void()> cancel;
  Notification done;

  void Complete(absl::StatusOr<T> value) {
    std::function<void(absl::StatusOr<T>)> cb;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (result.has_value()) return;
      cancel = nullptr;
      if (callback) {
        cb = std::move(callback);
        callback = nullptr;
        result.emplace(absl::CancelledError("result handed to callback"));
      } else {
        result.emplace(std::move(value));
      }
    }
    if (cb) {
      cb(std::move(value));
    }
    done.Set();
  }
};

}  // namespace internal

template <typename T>
class Promise;

template <typename T>
class Future {
 public:
  Future() = default;
  Future(Future&&) noexcept = default;
  Future& operator=(Future&&) noexcept = default;

  bool valid() const { return state_ != nullptr; }
  bool Ready() const { return state_ && state_->done.IsSet(); }

  // Waits for and returns the result; call at most once, and not after Then().
  absl::StatusOr<T> Get() {
    if (!state_) return absl::FailedPreconditionError("invalid future");
    state_->done.Wait();
    std::lock_guard<std::mutex> lock(state_->mu);
    absl::StatusOr<T> out = std::move(*state_->result);
    state_->result.emplace(absl::FailedPreconditionError("future already consumed"));
    return out;
  }

  // Waits until `deadline`; false if the result is not ready by then (the call goes on).
  bool WaitUntil(Clock::time_point deadline) const {
    return state_ && state_->done.WaitUntil(deadline);
  }

  // Calls `cb` once with the result (inline if ready). Call at most once, and not after Get().
  void Then(std::function<void(absl::StatusOr<T>)> cb) {
    if (!state_) {
      cb(absl::FailedPreconditionError("invalid future"));
      return;
    }
    std::unique_lock<std::mutex> lock(state_->mu);
    if (state_->result.has_value()) {
      absl::StatusOr<T> out = std::move(*state_->result);
      state_->result.emplace(absl::FailedPreconditionError("future already consumed"));
      lock.unlock();
      cb(std::move(out));
      return;
    }
    state_->callback = std::move(cb);
  }

  // Requests cancellation; the result becomes CANCELLED unless it completed first.
  void Cancel() const {
    if (!state_) return;
    std::function<void()> cancel;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      cancel = state_->cancel;
    }
    if (cancel) cancel();
  }

 private:
  friend class Promise<T>;
  explicit Future(std::shared_ptr<internal::FutureState<T>> s) : state_(std::move(s)) {}
  std::shared_ptr<internal::FutureState<T>> state_;
};

// The producer side (used by the client internals and by code that adapts other APIs).
template <typename T>
class Promise {
 public:
  Promise() : state_(std::make_shared<internal::FutureState<T>>()) {}
  Future<T> future() const { return Future<T>(state_); }
  void Set(absl::StatusOr<T> value) const { state_->Complete(std::move(value)); }
  void SetCancel(std::function<void()> cancel) const {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->result.has_value()) state_->cancel = std::move(cancel);
  }

 private:
  std::shared_ptr<internal::FutureState<T>> state_;
};

// A ready future.
template <typename T>
Future<T> MakeReadyFuture(absl::StatusOr<T> value) {
  Promise<T> p;
  p.Set(std::move(value));
  return p.future();
}

}  // namespace cairn
