// Bindings of the data recipes: Queue, Counter, STM, service discovery and the prefix cache.
#include <chrono>

#include "bindings/python/src/common.h"
#include "bindings/python/src/recipes_util.h"
#include "cairn/recipes/counter.h"
#include "cairn/recipes/discovery.h"
#include "cairn/recipes/prefix_cache.h"
#include "cairn/recipes/queue.h"
#include "cairn/recipes/stm.h"

namespace cairn::python {
namespace {

using recipes::Counter;
using recipes::PickPolicy;
using recipes::PrefixCache;
using recipes::Queue;
using recipes::QueueItem;
using recipes::ServiceEndpoint;
using recipes::ServiceResolver;
using recipes::Session;
using recipes::Stm;

// Owns a recipe object whose destructor may join a thread that calls back into Python: the
// object is destroyed with the GIL released, so that thread can finish its callback.
template <typename T>
struct Owned {
  explicit Owned(std::unique_ptr<T> p) : ptr(std::move(p)) {}
  ~Owned() {
    if (ptr == nullptr) return;
    py::gil_scoped_release nogil;
    ptr.reset();
  }
  T& operator*() const { return *ptr; }
  std::unique_ptr<T> ptr;
};

// The STM handed to a Python function: valid only during that call.
struct PyStm {
  Stm* stm = nullptr;
  Stm& Get() const {
    if (stm == nullptr) throw py::value_error("the STM is used outside its transaction function");
    return *stm;
  }
};

void BindQueueCounter(py::module_& m) {
  py::class_<QueueItem>(m, "QueueItem")
      .def_property_readonly("key", [](const QueueItem& i) { return py::bytes(i.key); })
      .def_property_readonly("value", [](const QueueItem& i) { return py::bytes(i.value); })
      .def_readonly("priority", &QueueItem::priority);
  py::class_<Queue, std::shared_ptr<Queue>>(m, "Queue")
      .def(py::init([](py::object client, const std::string& name) {
             CheckName(name);
             return std::make_shared<Queue>(*ClientOf(client), name);
           }),
           py::arg("client"), py::arg("name"))
      .def(
          "enqueue",
          [](const Queue& self, py::object value, int priority) {
            if (priority < 0 || priority > recipes::kQueueMaxPriority) {
              throw py::value_error("priority must be 0 to 65535");
            }
            std::string v = ToBytes(value, "value");
            auto key = NoGil([&] { return self.Enqueue(v, priority); });
            if (!key.ok()) Raise(key.status());
            return py::bytes(*key);
          },
          py::arg("value"), py::arg("priority") = 0)
      .def(
          "dequeue_async",
          [](std::shared_ptr<Queue> self, std::optional<double> timeout) {
            // Thread-free: reads and a take, and a watch while the queue is empty.
            CallOptions call = CallWithTimeout(timeout);
            Future<QueueItem> f = NoGil([&] { return self->DequeueAsync(call); });
            PyFuture pf =
                PyFuture::From(std::move(f), [self](const QueueItem& i) { return py::cast(i); });
            pf.CancelAt(DeadlineAfter(timeout));
            return pf;
          },
          py::arg("timeout") = py::none())
      .def(
          "enqueue_async",
          [](std::shared_ptr<Queue> self, py::object value, int priority) {
            if (priority < 0 || priority > recipes::kQueueMaxPriority) {
              throw py::value_error("priority must be 0 to 65535");
            }
            std::string v = ToBytes(value, "value");
            Future<std::string> f = NoGil([&] { return self->EnqueueAsync(v, priority); });
            return PyFuture::From(std::move(f),
                                  [self](const std::string& key) { return py::bytes(key); });
          },
          py::arg("value"), py::arg("priority") = 0)
      .def("try_dequeue_async",
           [](std::shared_ptr<Queue> self) {
             auto f = NoGil([&] { return self->TryDequeueAsync(); });
             return PyFuture::From(std::move(f), [self](const std::optional<QueueItem>& i) {
               return i ? py::cast(*i) : py::none();
             });
           })
      .def("size_async",
           [](std::shared_ptr<Queue> self) {
             auto f = NoGil([&] { return self->SizeAsync(); });
             return PyFuture::From(std::move(f), [self](const int64_t& n) { return py::int_(n); });
           })
      .def("try_dequeue",
           [](const Queue& self) -> py::object {
             auto r = NoGil([&] { return self.TryDequeue(); });
             if (!r.ok()) Raise(r.status());
             return *r ? py::cast(**r) : py::none();
           })
      .def("size", [](const Queue& self) {
        auto r = NoGil([&] { return self.Size(); });
        if (!r.ok()) Raise(r.status());
        return *r;
      });

  py::class_<Counter, std::shared_ptr<Counter>>(m, "Counter")
      .def(py::init([](py::object client, py::object key) {
             std::string k = ToBytes(key, "key");
             CheckName(k);
             return std::make_shared<Counter>(*ClientOf(client), k);
           }),
           py::arg("client"), py::arg("key"))
      .def("get",
           [](const Counter& self) {
             auto r = NoGil([&] { return self.Get(); });
             if (!r.ok()) Raise(r.status());
             return *r;
           })
      .def(
          "add",
          [](const Counter& self, int64_t delta) {
            auto r = NoGil([&] { return self.Add(delta); });
            if (!r.ok()) Raise(r.status());
            return *r;
          },
          py::arg("delta") = 1)
      .def(
          "compare_and_set",
          [](const Counter& self, int64_t expected, int64_t desired) {
            auto r = NoGil([&] { return self.CompareAndSet(expected, desired); });
            if (!r.ok()) Raise(r.status());
            return *r;
          },
          py::arg("expected"), py::arg("desired"))
      .def(
          "set", [](const Counter& self, int64_t v) { Check(NoGil([&] { return self.Set(v); })); },
          py::arg("value"))
      // The async forms (cairn.aio): thread-free, completed on the client's threads.
      .def("get_async",
           [](std::shared_ptr<Counter> self) {
             return PyFuture::From(NoGil([&] { return self->GetAsync(); }),
                                   [self](const int64_t& v) { return py::int_(v); });
           })
      .def(
          "add_async",
          [](std::shared_ptr<Counter> self, int64_t delta) {
            return PyFuture::From(NoGil([&] { return self->AddAsync(delta); }),
                                  [self](const int64_t& v) { return py::int_(v); });
          },
          py::arg("delta") = 1)
      .def(
          "compare_and_set_async",
          [](std::shared_ptr<Counter> self, int64_t expected, int64_t desired) {
            return PyFuture::From(
                NoGil([&] { return self->CompareAndSetAsync(expected, desired); }),
                [self](const bool& b) { return py::bool_(b); });
          },
          py::arg("expected"), py::arg("desired"))
      .def(
          "set_async",
          [](std::shared_ptr<Counter> self, int64_t v) {
            return PyFuture::From(NoGil([&] { return self->SetAsync(v); }),
                                  [self](const bool&) { return py::none(); });
          },
          py::arg("value"));
}

void BindStm(py::module_& m) {
  py::class_<PyStm>(m, "Stm", "Reads and writes of one STM attempt.")
      .def(
          "get",
          [](const PyStm& s, py::object key) -> py::object {
            std::string k = ToBytes(key, "key");
            Stm& stm = s.Get();
            auto exists = NoGil([&] { return stm.Exists(k); });
            if (!exists.ok()) Raise(exists.status());
            if (!*exists) return py::none();
            auto v = NoGil([&] { return stm.Get(k); });
            if (!v.ok()) Raise(v.status());
            return py::bytes(*v);
          },
          py::arg("key"), "The key's value (None when missing), as of this transaction.")
      .def(
          "rev",
          [](const PyStm& s, py::object key) {
            std::string k = ToBytes(key, "key");
            Stm& stm = s.Get();
            auto r = NoGil([&] { return stm.Rev(k); });
            if (!r.ok()) Raise(r.status());
            return *r;
          },
          py::arg("key"))
      .def(
          "put",
          [](const PyStm& s, py::object key, py::object value) {
            s.Get().Put(ToBytes(key, "key"), ToBytes(value, "value"));
          },
          py::arg("key"), py::arg("value"))
      .def(
          "delete", [](const PyStm& s, py::object key) { s.Get().Delete(ToBytes(key, "key")); },
          py::arg("key"));
  m.def(
      "run_stm",
      [](py::object client, py::function fn, int isolation, int max_attempts) {
        if (isolation < 0 || isolation > 3) throw py::value_error("bad isolation level");
        if (max_attempts <= 0) throw py::value_error("max_attempts must be > 0");
        recipes::StmOptions o;
        o.isolation = static_cast<recipes::Isolation>(isolation);
        o.max_attempts = max_attempts;
        Kv kv = ClientOf(client)->kv();
        // Python errors raised by `fn` end the transaction (nothing is written) and propagate.
        std::optional<py::error_already_set> raised;
        auto apply = [&](Stm& stm) -> absl::Status {
          py::gil_scoped_acquire gil;
          PyStm handle{&stm};
          py::object obj = py::cast(&handle, py::return_value_policy::reference);
          try {
            fn(obj);
          } catch (py::error_already_set& e) {
            raised.emplace(std::move(e));
            return absl::AbortedError("the STM function raised");
          }
          return absl::OkStatus();
        };
        auto r = NoGil([&] { return recipes::RunStm(kv, apply, o); });
        if (raised) throw std::move(*raised);
        if (!r.ok()) Raise(r.status());
        return py::cast(*r);
      },
      py::arg("client"), py::arg("fn"), py::arg("isolation") = 0, py::arg("max_attempts") = 64);
}

void BindDiscovery(py::module_& m) {
  py::class_<ServiceEndpoint>(m, "ServiceEndpoint")
      .def_readonly("id", &ServiceEndpoint::id)
      .def_readonly("address", &ServiceEndpoint::address)
      .def_readonly("metadata", &ServiceEndpoint::metadata)
      .def("__repr__", [](const ServiceEndpoint& e) {
        return "ServiceEndpoint(address=" + std::string(py::repr(py::str(e.address))) +
               ", metadata=" + std::string(py::repr(py::str(e.metadata))) + ")";
      });
  m.def(
      "register_endpoint",
      [](std::shared_ptr<Session> s, const std::string& service, const std::string& id,
         const std::string& address, const std::string& metadata) {
        CheckName(service);
        ServiceEndpoint e{address, metadata, id};
        Check(NoGil([&] { return recipes::RegisterEndpoint(*s, service, e); }));
      },
      py::arg("session"), py::arg("service"), py::arg("id"), py::arg("address"),
      py::arg("metadata"));
  m.def(
      "register_endpoint_async",
      [](std::shared_ptr<Session> s, const std::string& service, const std::string& id,
         const std::string& address, const std::string& metadata) {
        CheckName(service);
        ServiceEndpoint e{address, metadata, id};
        return NoneWhenDone(NoGil([&] { return recipes::RegisterEndpointAsync(*s, service, e); }),
                            s);
      },
      py::arg("session"), py::arg("service"), py::arg("id"), py::arg("address"),
      py::arg("metadata"), "register_endpoint's call as a Future (one Put).");
  m.def(
      "unregister_endpoint",
      [](py::object client, const std::string& service, const std::string& address) {
        Kv kv = ClientOf(client)->kv();
        Check(NoGil([&] { return recipes::UnregisterEndpoint(kv, service, address); }));
      },
      py::arg("client"), py::arg("service"), py::arg("address"));
  using Resolver = Owned<ServiceResolver>;
  py::class_<Resolver>(m, "Resolver")
      .def(py::init([](py::object client, const std::string& service, int policy) {
             CheckName(service);
             if (policy < 0 || policy > 2) throw py::value_error("bad pick strategy");
             std::shared_ptr<Client> c = ClientOf(client);
             auto r = NoGil([&] {
               return ServiceResolver::Start(*c, service, static_cast<PickPolicy>(policy));
             });
             if (!r.ok()) Raise(r.status());
             return std::make_unique<Resolver>(std::move(*r));
           }),
           py::arg("client"), py::arg("service"), py::arg("policy") = 0)
      .def("endpoints", [](const Resolver& self) { return (*self).Endpoints(); })
      .def("pick",
           [](Resolver& self) {
             auto r = (*self).Pick();
             if (!r.ok()) Raise(r.status());
             return *r;
           })
      .def(
          "mark_down",
          [](Resolver& self, const std::string& address, double seconds) {
            if (seconds <= 0) throw py::value_error("seconds must be > 0");
            (*self).MarkDown(address,
                             std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
          },
          py::arg("address"), py::arg("seconds"))
      .def(
          "wait_for_count",
          [](Resolver& self, size_t count, std::optional<double> timeout) {
            CallOptions call = CallWithTimeout(timeout);
            Check(NoGil([&] {
              return (*self).WaitFor(
                  [count](const std::vector<ServiceEndpoint>& e) { return e.size() >= count; },
                  call);
            }));
          },
          py::arg("count"), py::arg("timeout") = py::none())
      .def(
          "wait_for_count_async",
          [](const Resolver& self, size_t count, std::optional<double> timeout) {
            // Thread-free: the resolver's watch completes it (blocking, through _cairn.wait,
            // and cairn.aio). A resolver destroyed first ends it (CANCELLED), as the cache's.
            CallOptions call = CallWithTimeout(timeout);
            Future<recipes::Completed> f = NoGil([&] {
              return (*self).WaitForAsync(
                  [count](const std::vector<ServiceEndpoint>& e) { return e.size() >= count; },
                  call);
            });
            PyFuture pf =
                PyFuture::From(std::move(f), [](const recipes::Completed&) { return py::none(); });
            pf.CancelAt(DeadlineAfter(timeout));
            return pf;
          },
          py::arg("count"), py::arg("timeout") = py::none());
}

void BindCache(py::module_& m) {
  using Cache = Owned<PrefixCache>;
  py::class_<Cache>(m, "PrefixCache")
      .def(py::init([](py::object client, py::object prefix) {
             std::shared_ptr<Client> c = ClientOf(client);
             std::string p = ToBytes(prefix, "prefix");
             auto r = NoGil([&] { return PrefixCache::Start(*c, p); });
             if (!r.ok()) Raise(r.status());
             return std::make_unique<Cache>(std::move(*r));
           }),
           py::arg("client"), py::arg("prefix"))
      .def(
          "get",
          [](const Cache& self, py::object key) -> py::object {
            auto kv = (*self).Get(ToBytes(key, "key"));
            return kv ? py::cast(*kv) : py::none();
          },
          py::arg("key"))
      .def("list", [](const Cache& self) { return (*self).List(); })
      .def_property_readonly("revision", [](const Cache& self) { return (*self).revision(); })
      .def_property_readonly("resyncs", [](const Cache& self) { return (*self).resyncs(); })
      .def("__len__", [](const Cache& self) { return (*self).size(); })
      .def(
          "add_listener",
          [](Cache& self, py::object fn) {
            auto cb = std::make_shared<PyCallback>(std::move(fn));
            return (*self).AddListener([cb](const std::vector<Event>& events, Revision rev,
                                            bool resync) { (*cb)(events, rev, resync); });
          },
          py::arg("fn"), "fn(events, revision, resync) on a client thread, with the GIL.")
      .def("remove_listener", [](Cache& self, uint64_t id) { (*self).RemoveListener(id); })
      .def(
          "wait_for_revision",
          [](const Cache& self, int64_t rev, std::optional<double> timeout) {
            CallOptions call = CallWithTimeout(timeout);
            Check(NoGil([&] { return (*self).WaitForRevision(rev, call); }));
          },
          py::arg("revision"), py::arg("timeout") = py::none())
      .def(
          "wait_for_revision_async",
          [](const Cache& self, int64_t rev, std::optional<double> timeout) {
            // Thread-free: the cache's watch completes it (cairn.aio). A cache destroyed first
            // ends it (CANCELLED); the future does not keep the cache (its owner needs the GIL).
            CallOptions call = CallWithTimeout(timeout);
            Future<recipes::Completed> f =
                NoGil([&] { return (*self).WaitForRevisionAsync(rev, call); });
            PyFuture pf =
                PyFuture::From(std::move(f), [](const recipes::Completed&) { return py::none(); });
            pf.CancelAt(DeadlineAfter(timeout));
            return pf;
          },
          py::arg("revision"), py::arg("timeout") = py::none());
}

}  // namespace

void BindData(py::module_& m) {
  BindQueueCounter(m);
  BindStm(m);
  BindDiscovery(m);
  BindCache(m);
}

}  // namespace cairn::python
