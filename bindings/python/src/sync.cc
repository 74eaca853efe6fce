// Bindings of the lock-like recipes beyond Mutex: RWMutex, Semaphore, MultiLock, Barrier and
// DoubleBarrier. Every wait is thread-free (the recipes' async forms complete a PyFuture on the
// client's threads); the GIL is released and Ctrl-C cancels.
#include "bindings/python/src/common.h"
#include "bindings/python/src/recipes_util.h"
#include "cairn/recipes/barrier.h"
#include "cairn/recipes/multi_lock.h"
#include "cairn/recipes/rw_mutex.h"
#include "cairn/recipes/semaphore.h"

namespace cairn::python {
namespace {

using recipes::Barrier;
using recipes::DoubleBarrier;
using recipes::Grant;
using recipes::MultiLock;
using recipes::RWMutex;
using recipes::Semaphore;
using recipes::Session;

py::object CastGrant(const Grant& g) { return py::cast(g); }

// A thread-free recipe wait as a Python Future: `owner` (the recipe object) lives until it
// completes, and the Python side's wait ends at the timeout too (the recipe's own deadline
// also ends it, removing its waiting key first).
template <typename Owner>
PyFuture ThreadFree(Future<Grant> f, std::shared_ptr<Owner> owner, std::optional<double> timeout) {
  PyFuture pf = PyFuture::From(std::move(f), [owner](const Grant& g) { return CastGrant(g); });
  pf.CancelAt(DeadlineAfter(timeout));
  return pf;
}
// The same for a thread-free wait that completes with no value (None in Python).
template <typename Owner>
PyFuture Completion(Future<recipes::Completed> f, std::shared_ptr<Owner> owner,
                    std::optional<double> timeout) {
  PyFuture pf =
      PyFuture::From(std::move(f), [owner](const recipes::Completed&) { return py::none(); });
  pf.CancelAt(DeadlineAfter(timeout));
  return pf;
}

}  // namespace

void BindSync(py::module_& m) {
  py::class_<RWMutex, std::shared_ptr<RWMutex>>(m, "RWMutex")
      .def(py::init([](std::shared_ptr<Session> s, const std::string& name) {
             CheckName(name);
             return std::make_shared<RWMutex>(std::move(s), name);
           }),
           py::arg("session"), py::arg("name"))
      .def(
          "lock_async",
          [](std::shared_ptr<RWMutex> self, bool write, std::optional<double> timeout) {
            // Thread-free, as Mutex.lock_async.
            CallOptions call = CallWithTimeout(timeout);
            Future<Grant> f =
                NoGil([&] { return write ? self->LockAsync(call) : self->RLockAsync(call); });
            return ThreadFree(std::move(f), self, timeout);
          },
          py::arg("write"), py::arg("timeout") = py::none())
      .def("unlock", [](RWMutex& self) { Check(NoGil([&] { return self.Unlock(); })); })
      .def("unlock_async",
           [](std::shared_ptr<RWMutex> self) {
             return NoneWhenDone(NoGil([&] { return self->UnlockAsync(); }), self);
           })
      .def_property_readonly("grant", [](const RWMutex& self) -> py::object {
        auto g = self.grant();
        return g ? py::cast(*g) : py::none();
      });

  py::class_<Semaphore, std::shared_ptr<Semaphore>>(m, "Semaphore")
      .def(py::init([](std::shared_ptr<Session> s, const std::string& name, int64_t permits) {
             CheckName(name);
             if (permits <= 0) throw py::value_error("permits must be > 0");
             return std::make_shared<Semaphore>(std::move(s), name, permits);
           }),
           py::arg("session"), py::arg("name"), py::arg("permits"))
      .def(
          "acquire_async",
          [](std::shared_ptr<Semaphore> self, std::optional<double> timeout) {
            CallOptions call = CallWithTimeout(timeout);
            Future<Grant> f = NoGil([&] { return self->AcquireAsync(call); });
            return ThreadFree(std::move(f), self, timeout);
          },
          py::arg("timeout") = py::none())
      .def("release", [](Semaphore& self) { Check(NoGil([&] { return self.Release(); })); })
      .def("release_async",
           [](std::shared_ptr<Semaphore> self) {
             return NoneWhenDone(NoGil([&] { return self->ReleaseAsync(); }), self);
           })
      .def_property_readonly("permits", &Semaphore::permits)
      .def_property_readonly("grant", [](const Semaphore& self) -> py::object {
        auto g = self.grant();
        return g ? py::cast(*g) : py::none();
      });

  py::class_<MultiLock, std::shared_ptr<MultiLock>>(m, "MultiLock")
      .def(py::init([](std::shared_ptr<Session> s, const std::vector<std::string>& names) {
             if (names.empty()) throw py::value_error("names must not be empty");
             for (const auto& n : names) CheckName(n);
             return std::make_shared<MultiLock>(std::move(s), names);
           }),
           py::arg("session"), py::arg("names"))
      .def(
          "lock_async",
          [](std::shared_ptr<MultiLock> self, std::optional<double> timeout) {
            // Thread-free: one Mutex::LockAsync after another.
            CallOptions call = CallWithTimeout(timeout);
            Future<std::vector<Grant>> f = NoGil([&] { return self->LockAsync(call); });
            PyFuture pf = PyFuture::From(
                std::move(f), [self](const std::vector<Grant>& g) { return py::cast(g); });
            pf.CancelAt(DeadlineAfter(timeout));
            return pf;
          },
          py::arg("timeout") = py::none())
      .def("unlock", [](MultiLock& self) { Check(NoGil([&] { return self.Unlock(); })); })
      .def("unlock_async",
           [](std::shared_ptr<MultiLock> self) {
             return NoneWhenDone(NoGil([&] { return self->UnlockAsync(); }), self);
           })
      .def("guards", &MultiLock::Guards);

  py::class_<Barrier, std::shared_ptr<Barrier>>(m, "Barrier")
      .def(py::init([](std::shared_ptr<Session> s, const std::string& name) {
             CheckName(name);
             return std::make_shared<Barrier>(std::move(s), name);
           }),
           py::arg("session"), py::arg("name"))
      .def("hold", [](const Barrier& self) { Check(NoGil([&] { return self.Hold(); })); })
      .def("release", [](const Barrier& self) { Check(NoGil([&] { return self.Release(); })); })
      .def("hold_async",
           [](std::shared_ptr<Barrier> self) {
             return NoneWhenDone(NoGil([&] { return self->HoldAsync(); }), self);
           })
      .def("release_async",
           [](std::shared_ptr<Barrier> self) {
             return NoneWhenDone(NoGil([&] { return self->ReleaseAsync(); }), self);
           })
      .def(
          "wait_async",
          [](std::shared_ptr<Barrier> self, std::optional<double> timeout) {
            // Thread-free: a watch for the barrier key's deletion.
            CallOptions call = CallWithTimeout(timeout);
            return Completion(NoGil([&] { return self->WaitAsync(call); }), self, timeout);
          },
          py::arg("timeout") = py::none());

  py::class_<DoubleBarrier, std::shared_ptr<DoubleBarrier>>(m, "DoubleBarrier")
      .def(py::init([](std::shared_ptr<Session> s, const std::string& name, int64_t count) {
             CheckName(name);
             if (count <= 0) throw py::value_error("count must be > 0");
             return std::make_shared<DoubleBarrier>(std::move(s), name, count);
           }),
           py::arg("session"), py::arg("name"), py::arg("count"))
      .def(
          "enter_async",
          [](std::shared_ptr<DoubleBarrier> self, std::optional<double> timeout) {
            CallOptions call = CallWithTimeout(timeout);
            return Completion(NoGil([&] { return self->EnterAsync(call); }), self, timeout);
          },
          py::arg("timeout") = py::none())
      .def(
          "leave_async",
          [](std::shared_ptr<DoubleBarrier> self, std::optional<double> timeout) {
            CallOptions call = CallWithTimeout(timeout);
            return Completion(NoGil([&] { return self->LeaveAsync(call); }), self, timeout);
          },
          py::arg("timeout") = py::none());
}

}  // namespace cairn::python
