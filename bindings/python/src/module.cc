// The `cairn._cairn` extension module: errors, futures, and the bindings of client/ and recipes/.
#include <Python.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "bindings/python/src/common.h"
#include "cairn/errors.h"

namespace cairn::python {
namespace {

// cairn.Error and its subclasses, by kind; created at import, never freed.
py::object* g_base_error = nullptr;
std::map<ErrorKind, py::object>* g_errors = nullptr;

// "lease_not_found" -> "LeaseNotFoundError".
std::string ClassName(std::string_view kind) {
  std::string out;
  bool upper = true;
  for (char c : kind) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return out + "Error";
}

}  // namespace

void BindErrors(py::module_& m) {
  g_base_error = new py::object(py::reinterpret_steal<py::object>(
      PyErr_NewExceptionWithDoc("cairn.Error",
                                "Base of every Cairn error. `kind` names the error kind, `code` is "
                                "the gRPC status code and the message is etcd's.",
                                PyExc_Exception, nullptr)));
  m.attr("Error") = *g_base_error;
  g_errors = new std::map<ErrorKind, py::object>();
  py::dict names;
  for (int k = static_cast<int>(ErrorKind::kUnknown);
       k <= static_cast<int>(ErrorKind::kChecksumMismatch); ++k) {
    auto kind = static_cast<ErrorKind>(k);
    std::string name = ClassName(ErrorKindName(kind));
    std::string qualified = "cairn." + name;
    py::object cls = py::reinterpret_steal<py::object>(
        PyErr_NewException(qualified.c_str(), g_base_error->ptr(), nullptr));
    (*g_errors)[kind] = cls;
    m.attr(name.c_str()) = cls;
    names[py::str(std::string(ErrorKindName(kind)))] = cls;
  }
  m.attr("ERRORS_BY_KIND") = names;
}

py::object ErrorObject(const absl::Status& status) {
  ErrorKind kind = ErrorKindOf(status);
  auto it = g_errors->find(kind);
  py::object cls = it == g_errors->end() ? *g_base_error : it->second;
  py::object exc = cls(std::string(status.message()));
  exc.attr("kind") = std::string(ErrorKindName(kind));
  exc.attr("code") = static_cast<int>(status.code());
  return exc;
}

[[noreturn]] void Raise(const absl::Status& status) {
  py::object exc = ErrorObject(status);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw py::error_already_set();
}

std::string ToBytes(const py::handle& h, const char* what) {
  if (PyBytes_Check(h.ptr())) return std::string(py::reinterpret_borrow<py::bytes>(h));
  if (PyUnicode_Check(h.ptr())) {
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(h.ptr(), &size);
    if (data == nullptr) throw py::error_already_set();
    return std::string(data, static_cast<size_t>(size));
  }
  throw py::type_error(std::string(what) + " must be str or bytes, not " +
                       std::string(py::str(h.get_type().attr("__name__"))));
}

void CallWithGil(const std::function<void()>& fn) {
  if (!Py_IsInitialized() || _Py_IsFinalizing()) return;
  py::gil_scoped_acquire gil;
  fn();
}

PyCallback::~PyCallback() {
  if (!Py_IsInitialized() || _Py_IsFinalizing()) return;  // leaked at exit: no GIL to take
  py::gil_scoped_acquire gil;
  delete fn_;
}

void PyFuture::Complete(const std::shared_ptr<State>& st, absl::Status status,
                        std::function<py::object()> value) {
  std::shared_ptr<PyCallback> cb;
  std::shared_ptr<Notifier> notifier;
  bool settle;
  {
    std::lock_guard<std::mutex> l(st->mu);
    if (st->done) return;
    st->done = true;
    st->status = std::move(status);
    st->value = std::move(value);
    st->cancel = nullptr;
    cb = std::move(st->on_done);
    notifier = std::move(st->notifier);
    settle = st->settle;
  }
  st->cv.notify_all();
  if (notifier) settle ? notifier->PostSettle(st) : notifier->Post(st->token);
  if (cb) (*cb)();
}

Notifier::Notifier() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

// The queue of a notifier's starter thread. The thread holds it (not the notifier), runs what is
// queued in batches, and ends once stopped and empty (it is detached: a notifier may be destroyed
// on any thread, even one of the calls' own).
struct Notifier::Starter {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::function<void()>> queue;  // guarded by mu
  bool waiting = false;                      // guarded by mu: the thread sleeps on cv
  bool stop = false;                         // guarded by mu

  static void Run(const std::shared_ptr<Starter>& s) {
    std::unique_lock<std::mutex> l(s->mu);
    while (true) {
      if (s->queue.empty()) {
        if (s->stop) return;
        s->waiting = true;
        s->cv.wait(l);
        s->waiting = false;
        continue;
      }
      std::vector<std::function<void()>> batch;
      batch.swap(s->queue);
      l.unlock();
      for (auto& start : batch) start();
      batch.clear();
      l.lock();
    }
  }
};

void Notifier::StartCall(const PyFuture& pf, std::function<void()> start) {
  pf.st_->counted = true;  // before the call can complete
  if (in_flight_.fetch_add(1, std::memory_order_relaxed) == 0) {
    py::gil_scoped_release nogil;
    start();
    return;
  }
  if (!starter_) {
    starter_ = std::make_shared<Starter>();
    std::thread([s = starter_] { Starter::Run(s); }).detach();
  }
  bool wake;
  {
    std::lock_guard<std::mutex> l(starter_->mu);
    starter_->queue.push_back(std::move(start));
    wake = starter_->waiting;
  }
  if (wake) starter_->cv.notify_one();
}

Notifier::~Notifier() {
  // Queued states keep their asyncio future: releasing it needs the GIL, which a client thread
  // dropping the last reference does not hold (the loop's waker, which owns this, is gone).
  for (auto& st : settle_) st->aio = nullptr;
  if (starter_) {
    {
      std::lock_guard<std::mutex> l(starter_->mu);
      starter_->stop = true;
    }
    starter_->cv.notify_one();
  }
  close(fd_);
}

void Notifier::Wake(bool was_empty) {
  if (!was_empty) return;  // the write for the first queued entry is still unread
  const uint64_t one = 1;
  while (write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void Notifier::Post(uint64_t token) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> l(mu_);
    was_empty = ready_.empty() && settle_.empty();
    ready_.push_back(token);
  }
  Wake(was_empty);
}

void Notifier::PostSettle(std::shared_ptr<PyFuture::State> st) {
  if (st->counted) in_flight_.fetch_sub(1, std::memory_order_relaxed);
  bool was_empty;
  {
    std::lock_guard<std::mutex> l(mu_);
    was_empty = ready_.empty() && settle_.empty();
    settle_.push_back(std::move(st));
  }
  Wake(was_empty);
}

namespace {

// Sets `fut` (an asyncio future, not done) from the completed call `st`. Needs the GIL.
void SetFuture(PyObject* fut, const PyFuture::State& st) {
  static PyObject* set_result = PyUnicode_InternFromString("set_result");
  static PyObject* set_exception = PyUnicode_InternFromString("set_exception");
  // Complete() wrote status and value once, before `done`, and never touches them again.
  py::object arg = st.status.ok() ? (st.value ? st.value() : py::none()) : ErrorObject(st.status);
  PyObject* r =
      PyObject_CallMethodOneArg(fut, st.status.ok() ? set_result : set_exception, arg.ptr());
  if (r == nullptr) throw py::error_already_set();
  Py_DECREF(r);
}

}  // namespace

std::vector<uint64_t> Notifier::Settle() {
  static PyObject* done = PyUnicode_InternFromString("done");
  std::vector<std::shared_ptr<PyFuture::State>> states;
  std::vector<uint64_t> tokens;
  uint64_t count;
  while (read(fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    states.swap(settle_);
    tokens.swap(ready_);
  }
  for (auto& st : states) {
    py::object fut = py::reinterpret_steal<py::object>(std::exchange(st->aio, nullptr));
    if (!fut) continue;
    try {
      py::object is_done =
          py::reinterpret_steal<py::object>(PyObject_CallMethodNoArgs(fut.ptr(), done));
      if (!is_done) throw py::error_already_set();
      if (!PyObject_IsTrue(is_done.ptr())) SetFuture(fut.ptr(), *st);
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("cairn: settling an asyncio future");
    }
  }
  return tokens;
}

std::vector<uint64_t> Notifier::Drain() {
  // Read before taking the queue: a Post after the read either lands in this batch or writes
  // again for the next one, so no token waits without fd() being readable.
  uint64_t count;
  while (read(fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
  std::vector<uint64_t> out;
  std::lock_guard<std::mutex> l(mu_);
  out.swap(ready_);
  return out;
}

void PyFuture::NotifyTo(std::shared_ptr<Notifier> notifier, uint64_t token) const {
  {
    std::lock_guard<std::mutex> l(st_->mu);
    if (!st_->done) {
      st_->notifier = std::move(notifier);
      st_->token = token;
      return;
    }
  }
  notifier->Post(token);
}

void PyFuture::SettleTo(std::shared_ptr<Notifier> notifier, py::handle fut) const {
  if (notifier == nullptr) throw py::type_error("notifier must be a Notifier");
  st_->aio = fut.inc_ref().ptr();  // released by Settle
  {
    std::lock_guard<std::mutex> l(st_->mu);
    if (!st_->done) {
      st_->notifier = std::move(notifier);
      st_->settle = true;
      return;
    }
  }
  notifier->PostSettle(st_);
}

Clock::time_point DeadlineAfter(std::optional<double> timeout) {
  if (!timeout) return Clock::time_point::max();
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(std::max(0.0, *timeout)));
}

bool WaitInterruptibly(std::mutex& mu, std::condition_variable& cv,
                       const std::function<bool()>& ready, Clock::time_point deadline,
                       const std::function<void()>& on_interrupt) {
  while (true) {
    bool done = false;
    {
      py::gil_scoped_release nogil;
      std::unique_lock<std::mutex> l(mu);
      const auto now = Clock::now();
      cv.wait_until(l, deadline - now > kPollSlice ? now + kPollSlice : deadline, ready);
      done = ready();
    }
    if (done) return true;
    if (PyErr_CheckSignals() != 0) {
      if (on_interrupt) on_interrupt();
      throw py::error_already_set();
    }
    if (Clock::now() >= deadline) return false;
  }
}

py::object PyFuture::Result(std::optional<double> timeout) const {
  std::shared_ptr<State> st = st_;
  Clock::time_point cancel_at;
  bool done;
  {
    std::lock_guard<std::mutex> l(st->mu);
    cancel_at = st->cancel_at;
    done = st->done;
  }
  // Already complete (asyncio settles only completed futures): no GIL round trip, no wait.
  if (done) return Settled();
  const Clock::time_point deadline = std::min(DeadlineAfter(timeout), cancel_at);
  // Cancels the call and gives it a moment to finish, so that its cleanup (a recipe removing its
  // waiting key) is done before the exception unwinds, possibly to the interpreter's exit.
  auto cancel_and_settle = [this, st] {
    Cancel();
    py::gil_scoped_release nogil;
    std::unique_lock<std::mutex> l(st->mu);
    st->cv.wait_for(l, kCancelSettle, [st] { return st->done; });
  };
  if (!WaitInterruptibly(
          st->mu, st->cv, [st] { return st->done; }, deadline, cancel_and_settle)) {
    if (deadline != cancel_at) {
      Raise(MakeError(ErrorKind::kDeadlineExceeded, "timed out waiting for the result"));
    }
    cancel_and_settle();
    if (!Done() || !st->status.ok()) {
      Raise(MakeError(ErrorKind::kDeadlineExceeded, "deadline exceeded while waiting"));
    }
  }
  return Settled();
}

py::object PyFuture::Settled() const {
  absl::Status status;
  {
    std::lock_guard<std::mutex> l(st_->mu);
    status = st_->status;
  }
  if (!status.ok()) Raise(status);
  // Complete() set `value` once, before `done`, and never touches it again: read it as is.
  return st_->value ? st_->value() : py::none();
}

void PyFuture::CancelAt(Clock::time_point when) const {
  std::lock_guard<std::mutex> l(st_->mu);
  st_->cancel_at = when;
}

bool PyFuture::Done() const {
  std::lock_guard<std::mutex> l(st_->mu);
  return st_->done;
}

void PyFuture::Cancel() const {
  std::function<void()> cancel;
  {
    std::lock_guard<std::mutex> l(st_->mu);
    cancel = st_->cancel;
    if (!cancel && !st_->done) st_->cancel_requested = true;  // not started yet: see Attach
  }
  if (cancel) {
    py::gil_scoped_release nogil;
    cancel();
  }
}

void PyFuture::AddDoneCallback(py::object fn) const {
  auto cb = std::make_shared<PyCallback>(std::move(fn));
  {
    std::lock_guard<std::mutex> l(st_->mu);
    if (!st_->done) {
      st_->on_done = std::move(cb);
      return;
    }
  }
  (*cb)();  // already done: run it now (we hold the GIL; CallWithGil re-enters it)
}

void BindFuture(py::module_& m) {
  // Starting a call and waiting for it in one C++ call leaves no bytecode boundary between the
  // two, so a Ctrl-C never lands after the call started and before its wait could cancel it
  // (which would leave a recipe's waiting key behind).
  m.def(
      "wait",
      [](py::object start, py::args args) {
        // The call's own deadline (its timeout argument) ends it, with its cleanup.
        return start(*args).cast<PyFuture>().Result(std::nullopt);
      },
      py::arg("start"), "wait(start, *args): start(*args) returns a Future; returns its result.");
  py::class_<PyFuture>(m, "Future", "The result of a call that completes on a client thread.")
      .def("result", &PyFuture::Result, py::arg("timeout") = py::none(),
           "Waits (without the GIL) for the result and returns it, or raises the call's error. "
           "Ctrl-C cancels the call.")
      .def("done", &PyFuture::Done, "True once the call has completed.")
      .def("cancel", &PyFuture::Cancel, "Asks for the call to be cancelled.")
      .def("add_done_callback", &PyFuture::AddDoneCallback, py::arg("fn"),
           "Calls fn() once the call completes (on a client thread, with the GIL).")
      .def("notify_to", &PyFuture::NotifyTo, py::arg("notifier"), py::arg("token"),
           "Posts token to notifier once the call completes (no GIL is taken).")
      .def("settle_to", &PyFuture::SettleTo, py::arg("notifier"), py::arg("future"),
           "Has notifier.settle() set the asyncio future from this call once it completes.");
  py::class_<Notifier, std::shared_ptr<Notifier>>(
      m, "Notifier",
      "Wakes an asyncio loop from client threads without the GIL: add_reader(fd(), ...) and "
      "drain() the tokens posted by notify_to.")
      .def(py::init<>())
      .def("fileno", &Notifier::fd)
      .def("drain", &Notifier::Drain)
      .def("settle", &Notifier::Settle,
           "Sets the asyncio futures of the completed settle_to calls; returns drain().");
}

PYBIND11_MODULE(_cairn, m) {
  m.doc() = "The native part of the cairn package: the C++ SDK and recipes.";
#ifdef NDEBUG
  // Debian's abseil is built with Mutex deadlock detection on, and gRPC's locks are absl
  // Mutexes: the cycle graph (a process-wide lock) was about 2% of a Python caller's CPU (perf).
  // The server and the C++ benchmarks turn it off the same way.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  BindErrors(m);
  BindFuture(m);
  BindClient(m);
  BindRecipes(m);
}

}  // namespace cairn::python
