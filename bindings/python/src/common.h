// Shared pieces of the `cairn._cairn` extension: errors, results that complete on client threads
// (PyFuture), and str/bytes conversion. docs/python.md describes the Python API built on it.
//
// GIL rules: every blocking wait releases the GIL and wakes every kPollSlice to run Python's
// signal handlers (so Ctrl-C interrupts it and cancels the call); callbacks from client threads
// take the GIL, and never run once the interpreter is finalizing.
#pragma once

#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/client.h"

namespace cairn::python {

namespace py = pybind11;

// How often a blocked wait wakes to let Python handle signals (KeyboardInterrupt).
inline constexpr std::chrono::milliseconds kPollSlice{50};
// How long a call canceled by Ctrl-C is given to finish (and clean up) before KeyboardInterrupt.
inline constexpr std::chrono::seconds kCancelSettle{5};

// Raises the Python exception for `status` (cairn.Error or its subclass for the kind). Needs the
// GIL.
[[noreturn]] void Raise(const absl::Status& status);
// The exception object Raise raises for `status` (not raised). Needs the GIL.
py::object ErrorObject(const absl::Status& status);
// Registers cairn.Error and one subclass per ErrorKind in `m`.
void BindErrors(py::module_& m);

// A key or value: `str` (UTF-8) or `bytes`; TypeError otherwise.
std::string ToBytes(const py::handle& h, const char* what);

// The time `timeout` seconds from now; never (time_point::max) for None.
Clock::time_point DeadlineAfter(std::optional<double> timeout);

// Waits until `ready()` (evaluated under `mu`) or `deadline`, with the GIL released, waking every
// kPollSlice to run Python's signal handlers: a pending KeyboardInterrupt (or another handler's
// exception) runs `on_interrupt` and is raised. Returns ready(). Needs the GIL.
bool WaitInterruptibly(std::mutex& mu, std::condition_variable& cv,
                       const std::function<bool()>& ready, Clock::time_point deadline,
                       const std::function<void()>& on_interrupt = nullptr);

// Runs `fn` (with the GIL) from a client thread, unless the interpreter is finalizing.
void CallWithGil(const std::function<void()>& fn);

// A Python callable kept by C++ code that may drop it on any thread: the reference is released
// under the GIL (or leaked at interpreter exit, when no GIL can be taken).
class PyCallback {
 public:
  explicit PyCallback(py::object fn) : fn_(new py::object(std::move(fn))) {}
  ~PyCallback();
  PyCallback(const PyCallback&) = delete;
  PyCallback& operator=(const PyCallback&) = delete;
  // Calls it with the GIL (an exception is reported as unraisable, never propagated).
  template <typename... Args>
  void operator()(Args&&... args) const {
    CallWithGil([&] {
      try {
        (*fn_)(std::forward<Args>(args)...);
      } catch (py::error_already_set& e) {
        e.discard_as_unraisable("cairn callback");
      }
    });
  }

 private:
  py::object* fn_;
};

class Notifier;

// The Python side of a call that completes on a client thread. result() blocks without the GIL,
// add_done_callback() runs its callable with the GIL once the call completes (the asyncio layer
// uses it with loop.call_soon_threadsafe).
class PyFuture {
 public:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    absl::Status status;
    std::function<py::object()> value;  // converts the result; called with the GIL
    std::shared_ptr<PyCallback> on_done;
    std::shared_ptr<Notifier> notifier;  // posted `token` on completion (no GIL)
    uint64_t token = 0;
    // With `settle`: `notifier` is given this state on completion (PostSettle), and its Settle
    // sets `aio` (a strong reference to an asyncio future, used and released with the GIL).
    bool settle = false;
    PyObject* aio = nullptr;
    bool cancel_requested = false;  // Cancel() came before Attach
    bool counted = false;           // started by Notifier::StartCall (its in-flight count)
    std::function<void()> cancel;
    // result() cancels the call at this time and raises DeadlineExceededError (a thread-free
    // recipe wait: its own deadline ends it too, this bounds the Python side's wait).
    Clock::time_point cancel_at = Clock::time_point::max();
  };

  PyFuture() : st_(std::make_shared<State>()) {}

  // Adapts a client future; `conv(const T&)` makes the Python result (called with the GIL).
  template <typename T, typename Conv>
  static PyFuture From(Future<T> f, Conv conv) {
    PyFuture pf;
    pf.Attach(std::move(f), conv);
    return pf;
  }

  // Makes this (a PyFuture made empty, whose call is started later: Notifier::StartCall)
  // complete with `f`'s result, converted by `conv`. A Cancel() before this cancels `f` at once.
  // Any thread; takes no GIL.
  template <typename T, typename Conv>
  void Attach(Future<T> f, Conv conv) const {
    auto holder = std::make_shared<Future<T>>(std::move(f));
    bool cancel_now;
    {
      std::lock_guard<std::mutex> l(st_->mu);
      st_->cancel = [holder] { holder->Cancel(); };
      cancel_now = st_->cancel_requested;
    }
    std::shared_ptr<State> st = st_;
    holder->Then([st, conv](absl::StatusOr<T> r) { CompleteWith(st, std::move(r), conv); });
    if (cancel_now) holder->Cancel();
  }

  // Blocks (GIL released) until done or `timeout` seconds; Ctrl-C cancels the call and raises
  // KeyboardInterrupt. Raises the call's error, or DeadlineExceededError on timeout.
  py::object Result(std::optional<double> timeout) const;
  bool Done() const;
  void Cancel() const;
  void AddDoneCallback(py::object fn) const;
  // result() cancels the call at `when` (see State::cancel_at).
  void CancelAt(Clock::time_point when) const;
  // Posts `token` to `notifier` once the call completes (at once if it has).
  void NotifyTo(std::shared_ptr<Notifier> notifier, uint64_t token) const;
  // Has `notifier`'s Settle set the asyncio future `fut` from this call once it completes.
  // Needs the GIL.
  void SettleTo(std::shared_ptr<Notifier> notifier, py::handle fut) const;

 private:
  static void Complete(const std::shared_ptr<State>& st, absl::Status status,
                       std::function<py::object()> value);
  // Completes with `r`; a value is converted by `conv` only when Python asks for it.
  template <typename T, typename Conv>
  static void CompleteWith(const std::shared_ptr<State>& st, absl::StatusOr<T> r, Conv conv) {
    if (!r.ok()) return Complete(st, r.status(), nullptr);
    auto v = std::make_shared<T>(std::move(*r));
    Complete(st, absl::OkStatus(), [v, conv] { return py::object(conv(*v)); });
  }
  // The result of a completed call (or its error raised).
  py::object Settled() const;
  friend class Notifier;
  std::shared_ptr<State> st_;
};

// A wake-up channel from client threads to an asyncio event loop that needs no GIL: completed
// tokens (and calls to settle) queue up and an eventfd becomes readable; the loop's reader
// (loop.add_reader on fd()) drains them. Thread-safe.
class Notifier {
 public:
  Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;
  int fd() const { return fd_; }
  // Queues `token` and makes fd() readable. Any thread; never takes the GIL.
  void Post(uint64_t token);
  // Queues a completed call whose asyncio future (PyFuture::SettleTo) Settle sets. Any thread;
  // never takes the GIL.
  void PostSettle(std::shared_ptr<PyFuture::State> st);
  // Runs `start` (which starts the call of `pf` and Attach-es it; no Python) inline, with the GIL
  // released, when no other call started here is in flight; otherwise queues it for this
  // notifier's starter thread (one per notifier, started on first use, not one per call). So a
  // loop with many calls in flight hands the gRPC work of starting them (building the call,
  // writing it to the socket) to that thread instead of doing it between its Python steps, and
  // one caller's call starts at once. Needs the GIL (the loop's thread).
  void StartCall(const PyFuture& pf, std::function<void()> start);
  // Every token posted since the last Drain, in order; fd() is not readable afterwards until
  // the next Post.
  std::vector<uint64_t> Drain();
  // Sets the result (or exception) of the asyncio future of every call queued by PostSettle,
  // unless it is done (cancelled), then returns Drain()'s tokens: one native call per wake-up
  // of the loop, no Python frame per completed call. Needs the GIL (the loop's thread).
  std::vector<uint64_t> Settle();
  ~Notifier();  // calls still queued leak their asyncio future (no GIL may be held here)

 private:
  // Queues under mu_; writes the eventfd when both queues were empty.
  void Wake(bool was_empty);
  struct Starter;  // the starter thread's queue (module.cc)
  std::mutex mu_;
  std::vector<uint64_t> ready_;
  std::vector<std::shared_ptr<PyFuture::State>> settle_;
  int fd_;
  std::atomic<int64_t> in_flight_{0};  // calls started by StartCall and not yet completed
  std::shared_ptr<Starter> starter_;   // created on first use, by the loop's thread
};

void BindFuture(py::module_& m);
void BindClient(py::module_& m);
void BindRecipes(py::module_& m);

}  // namespace cairn::python
