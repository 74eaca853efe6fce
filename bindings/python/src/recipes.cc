// Bindings of the recipes (recipes/): sessions, locks and elections. Their waits are the recipes'
// thread-free async forms completing a Future, so the blocking Python call releases the GIL and
// Ctrl-C cancels the wait (the recipe then removes its key).
#include <deque>
#include "bindings/python/src/common.h"
#include "bindings/python/src/recipes_util.h"

#include "cairn/recipes/election.h"
#include "cairn/recipes/leader_latch.h"
#include "cairn/recipes/leader_selector.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/session.h"

namespace cairn::python {

namespace {

using recipes::Election;
using recipes::Grant;
using recipes::LeaderInfo;
using recipes::Mutex;
using recipes::Session;

CallOptions Call(std::optional<double> timeout) { return CallWithTimeout(timeout); }

// Election.observe(): the leaders an observer reports, queued for next().
class PyObserver {
 public:
  struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<LeaderInfo> leaders;
    std::shared_ptr<Notifier> notifier;  // posted `token` per leader (asyncio, no GIL)
    uint64_t token = 0;
  };
  PyObserver(const Election& e, std::optional<double> timeout, std::shared_ptr<Notifier> notifier,
             uint64_t token)
      : q_(std::make_shared<Queue>()) {
    std::shared_ptr<Queue> q = q_;
    q->notifier = std::move(notifier);
    q->token = token;
    CallOptions call = Call(timeout);
    auto o = NoGil([&] {
      return e.Observe(
          [q](const LeaderInfo& l) {
            {
              std::lock_guard<std::mutex> lock(q->mu);
              q->leaders.push_back(l);
            }
            q->cv.notify_all();
            if (q->notifier) q->notifier->Post(q->token);
          },
          call);
    });
    if (!o.ok()) Raise(o.status());
    observer_ = std::move(*o);
  }
  ~PyObserver() { Close(); }
  void Close() {
    py::gil_scoped_release nogil;
    observer_.reset();
  }
  // The next leader (each change of leader or of its value), or None after `timeout` seconds.
  py::object Next(std::optional<double> timeout) {
    const auto deadline = DeadlineAfter(timeout);
    std::shared_ptr<Queue> q = q_;
    while (WaitInterruptibly(
        q->mu, q->cv, [q] { return !q->leaders.empty(); }, deadline)) {
      std::lock_guard<std::mutex> lock(q->mu);
      if (q->leaders.empty()) continue;  // another thread took it
      LeaderInfo l = std::move(q->leaders.front());
      q->leaders.pop_front();
      return py::cast(l);
    }
    return py::none();
  }
  // The next leader if one is queued, else None (never waits: the asyncio form).
  py::object Poll() {
    std::lock_guard<std::mutex> lock(q_->mu);
    if (q_->leaders.empty()) return py::none();
    LeaderInfo l = std::move(q_->leaders.front());
    q_->leaders.pop_front();
    return py::cast(l);
  }

 private:
  std::shared_ptr<Queue> q_;
  std::unique_ptr<recipes::LeaderObserver> observer_;
};

// What a selector's leadership function gets to learn that leadership is lost.
struct PyLost {
  CancelToken token;
  bool is_set() const { return token.canceled(); }
  bool Wait(std::optional<double> timeout) const {
    struct Sync {
      std::mutex mu;
      std::condition_variable cv;
    };
    auto sync = std::make_shared<Sync>();
    const uint64_t id = token.Register([sync] {
      std::lock_guard<std::mutex> l(sync->mu);
      sync->cv.notify_all();
    });
    CancelToken t = token;
    bool lost = false;
    try {
      lost = WaitInterruptibly(
          sync->mu, sync->cv, [t] { return t.canceled(); }, DeadlineAfter(timeout));
    } catch (...) {
      token.Unregister(id);
      throw;
    }
    token.Unregister(id);
    return lost;
  }
};

template <typename T>
struct OwnedRecipe {
  std::unique_ptr<T> ptr;
  ~OwnedRecipe() { Close(); }
  void Close() {
    py::gil_scoped_release nogil;  // its thread may be waiting for the GIL to call back
    if (ptr) ptr->Close();
  }
};
using Latch = OwnedRecipe<recipes::LeaderLatch>;
using Selector = OwnedRecipe<recipes::LeaderSelector>;

// A latch's wait: thread-free (the latch's thread completes it; its timeout is the recipes'
// timer), so neither a blocking nor an asyncio wait holds a thread.
PyFuture LatchWait(const Latch& l, std::optional<double> timeout) {
  if (!l.ptr) Raise(MakeError(ErrorKind::kCanceled, "latch closed"));
  CallOptions call = Call(timeout);
  Future<Grant> f = NoGil([&] { return l.ptr->AwaitAsync(call); });
  PyFuture pf = PyFuture::From(std::move(f), [](const Grant& g) { return py::cast(g); });
  pf.CancelAt(DeadlineAfter(timeout));
  return pf;
}

void BindLeadership(py::module_& m) {
  py::class_<PyObserver>(m, "ElectionObserver")
      .def("next", &PyObserver::Next, py::arg("timeout") = py::none())
      .def("poll", &PyObserver::Poll)
      .def("close", &PyObserver::Close);
  py::class_<PyLost>(m, "LeadershipLost", "Set when the selector's leadership is lost.")
      .def("is_set", &PyLost::is_set)
      .def("wait", &PyLost::Wait, py::arg("timeout") = py::none());
  py::class_<Latch>(m, "LeaderLatch")
      .def(py::init([](std::shared_ptr<Session> s, const std::string& name, py::object value,
                       std::optional<py::object> on_leader, std::optional<py::object> on_not) {
             CheckName(name);
             recipes::LeaderLatchOptions o;
             o.value = ToBytes(value, "value");
             if (on_leader && !on_leader->is_none()) {
               auto cb = std::make_shared<PyCallback>(*on_leader);
               o.on_leader = [cb](const Grant& g) { (*cb)(g); };
             }
             if (on_not && !on_not->is_none()) {
               auto cb = std::make_shared<PyCallback>(*on_not);
               o.on_not_leader = [cb] { (*cb)(); };
             }
             auto r = NoGil([&] { return recipes::LeaderLatch::Start(s, name, o); });
             if (!r.ok()) Raise(r.status());
             auto latch = std::make_unique<Latch>();
             latch->ptr = std::move(*r);
             return latch;
           }),
           py::arg("session"), py::arg("name"), py::arg("value") = "",
           py::arg("on_leader") = py::none(), py::arg("on_not_leader") = py::none())
      .def_property_readonly("is_leader",
                             [](const Latch& l) { return l.ptr && l.ptr->has_leadership(); })
      .def(
          "wait_async",
          [](const Latch& l, std::optional<double> timeout) { return LatchWait(l, timeout); },
          py::arg("timeout") = py::none(),
          "A Future of the grant once this participant leads (thread-free).")
      .def(
          "wait",
          [](const Latch& l, std::optional<double> timeout) {
            return LatchWait(l, timeout).Result(std::nullopt);
          },
          py::arg("timeout") = py::none())
      .def("close", &Latch::Close);
  py::class_<Selector>(m, "LeaderSelector")
      .def(py::init([](std::shared_ptr<Session> s, const std::string& name, py::object fn,
                       py::object value, bool requeue) {
             CheckName(name);
             recipes::LeaderSelectorOptions o;
             o.value = ToBytes(value, "value");
             o.requeue = requeue;
             auto cb = std::make_shared<PyCallback>(std::move(fn));
             o.take_leadership = [cb](const Grant& g, const CancelToken& lost) {
               (*cb)(g, PyLost{lost});
             };
             auto r = NoGil([&] { return recipes::LeaderSelector::Start(s, name, o); });
             if (!r.ok()) Raise(r.status());
             auto sel = std::make_unique<Selector>();
             sel->ptr = std::move(*r);
             return sel;
           }),
           py::arg("session"), py::arg("name"), py::arg("fn"), py::arg("value") = "",
           py::arg("requeue") = true)
      .def_property_readonly("leaderships",
                             [](const Selector& s) { return s.ptr ? s.ptr->leaderships() : 0; })
      .def("close", &Selector::Close);
}

}  // namespace

void BindRecipes(py::module_& m) {
  py::class_<Grant>(m, "Grant", "Ownership of a lock or a leadership.")
      .def_property_readonly("key", [](const Grant& g) { return py::bytes(g.key); })
      .def_readonly("fencing_token", &Grant::fencing_token)
      .def_readonly("lease", &Grant::lease)
      .def("guard", &Grant::Guard,
           "A Compare that holds only while this grant is still held: add it to a txn.");
  py::class_<LeaderInfo>(m, "LeaderInfo")
      .def_property_readonly("key", [](const LeaderInfo& l) { return py::bytes(l.key); })
      .def_property_readonly("value", [](const LeaderInfo& l) { return py::bytes(l.value); })
      .def_readonly("fencing_token", &LeaderInfo::create_revision)
      .def_readonly("mod_revision", &LeaderInfo::mod_revision)
      .def_readonly("lease", &LeaderInfo::lease);

  py::class_<Session, std::shared_ptr<Session>>(m, "Session")
      .def_static(
          "create",
          [](py::object client, int64_t ttl, int64_t lease, std::optional<double> timeout) {
            if (ttl <= 0 && lease == 0) throw py::value_error("ttl must be > 0");
            recipes::SessionOptions o;
            o.ttl_seconds = ttl;
            o.lease = lease;
            std::shared_ptr<Client> c = ClientOf(client);
            CallOptions call = Call(timeout);
            auto s = NoGil([&] { return Session::Create(*c, o, call); });
            if (!s.ok()) Raise(s.status());
            return *s;
          },
          py::arg("client"), py::arg("ttl") = 60, py::arg("lease") = 0,
          py::arg("timeout") = py::none())
      .def_static(
          "create_async",
          [](py::object client, int64_t ttl, int64_t lease) {
            if (ttl <= 0 && lease == 0) throw py::value_error("ttl must be > 0");
            recipes::SessionOptions o;
            o.ttl_seconds = ttl;
            o.lease = lease;
            std::shared_ptr<Client> c = ClientOf(client);
            auto f = NoGil([&] { return Session::CreateAsync(*c, o); });
            // The client lives until the grant completes.
            return PyFuture::From(std::move(f),
                                  [c](const std::shared_ptr<Session>& s) { return py::cast(s); });
          },
          py::arg("client"), py::arg("ttl") = 60, py::arg("lease") = 0,
          "create's call as a Future of the Session (the grant is a native future).")
      .def(
          "close_async",
          [](std::shared_ptr<Session> s) {
            return NoneWhenDone(NoGil([&] { return s->CloseAsync(); }), s);
          },
          "close's call as a Future (the revoke is a native future).")
      .def_property_readonly("lease", &Session::lease)
      .def_property_readonly("ttl", &Session::ttl_seconds)
      .def_property_readonly("alive", &Session::alive)
      .def(
          "close",
          [](Session& s) {
            absl::Status st = NoGil([&] { return s.Close(); });
            // Closing a session that already ended (lost, or closed before) is no error.
            if (!st.ok() && s.alive()) Raise(st);
          },
          "Revokes the session's lease: every key held under it goes.");

  py::class_<Mutex, std::shared_ptr<Mutex>>(m, "Mutex")
      .def(py::init([](std::shared_ptr<Session> s, const std::string& name) {
             CheckName(name);
             return std::make_shared<Mutex>(std::move(s), name);
           }),
           py::arg("session"), py::arg("name"))
      .def(
          "lock_async",
          [](std::shared_ptr<Mutex> self, std::optional<double> timeout) {
            // Thread-free: the wait runs on the client's callback threads. `timeout` bounds
            // each RPC and, through CancelAt, the whole wait.
            CallOptions call = Call(timeout);
            Future<Grant> f = NoGil([&] { return self->LockAsync(call); });
            PyFuture pf =
                PyFuture::From(std::move(f), [self](const Grant& g) { return py::cast(g); });
            pf.CancelAt(DeadlineAfter(timeout));
            return pf;
          },
          py::arg("timeout") = py::none())
      .def(
          "try_lock",
          [](Mutex& self, std::optional<double> timeout) -> py::object {
            CallOptions call = Call(timeout);
            auto r = NoGil([&] { return self.TryLock(call); });
            if (!r.ok()) Raise(r.status());
            return *r ? py::cast(**r) : py::none();
          },
          py::arg("timeout") = py::none())
      .def("try_lock_async",
           [](std::shared_ptr<Mutex> self) {
             auto f = NoGil([&] { return self->TryLockAsync(); });
             return PyFuture::From(std::move(f), [self](const std::optional<Grant>& g) {
               return g ? py::cast(*g) : py::none();
             });
           })
      .def("unlock_async",
           [](std::shared_ptr<Mutex> self) {
             return NoneWhenDone(NoGil([&] { return self->UnlockAsync(); }), self);
           })
      .def(
          "unlock",
          [](Mutex& self, std::optional<double> timeout) {
            CallOptions call = Call(timeout);
            Check(NoGil([&] { return self.Unlock(call); }));
          },
          py::arg("timeout") = py::none())
      .def_property_readonly("grant", [](const Mutex& self) -> py::object {
        auto g = self.grant();
        return g ? py::cast(*g) : py::none();
      });

  py::class_<Election, std::shared_ptr<Election>>(m, "Election")
      .def(py::init([](std::shared_ptr<Session> s, const std::string& name) {
             CheckName(name);
             return std::make_shared<Election>(std::move(s), name);
           }),
           py::arg("session"), py::arg("name"))
      .def(
          "campaign_async",
          [](std::shared_ptr<Election> self, py::object value, std::optional<double> timeout) {
            std::string v = ToBytes(value, "value");
            // Thread-free, as Mutex.lock_async.
            CallOptions call = Call(timeout);
            Future<Grant> f = NoGil([&] { return self->CampaignAsync(v, call); });
            PyFuture pf =
                PyFuture::From(std::move(f), [self](const Grant& g) { return py::cast(g); });
            pf.CancelAt(DeadlineAfter(timeout));
            return pf;
          },
          py::arg("value"), py::arg("timeout") = py::none())
      .def(
          "proclaim",
          [](Election& self, py::object value, std::optional<double> timeout) {
            std::string v = ToBytes(value, "value");
            CallOptions call = Call(timeout);
            Check(NoGil([&] { return self.Proclaim(v, call); }));
          },
          py::arg("value"), py::arg("timeout") = py::none())
      .def(
          "resign",
          [](Election& self, std::optional<double> timeout) {
            CallOptions call = Call(timeout);
            Check(NoGil([&] { return self.Resign(call); }));
          },
          py::arg("timeout") = py::none())
      .def(
          "leader",
          [](const Election& self, std::optional<double> timeout) -> py::object {
            CallOptions call = Call(timeout);
            auto r = NoGil([&] { return self.Leader(call); });
            if (!r.ok()) Raise(r.status());
            return py::cast(*r);
          },
          py::arg("timeout") = py::none())
      .def(
          "proclaim_async",
          [](std::shared_ptr<Election> self, py::object value) {
            std::string v = ToBytes(value, "value");
            auto f = NoGil([&] { return self->ProclaimAsync(v); });
            return PyFuture::From(std::move(f),
                                  [self](const ResponseHeader&) { return py::none(); });
          },
          py::arg("value"))
      .def("resign_async",
           [](std::shared_ptr<Election> self) {
             auto f = NoGil([&] { return self->ResignAsync(); });
             return PyFuture::From(std::move(f),
                                   [self](const ResponseHeader&) { return py::none(); });
           })
      .def("leader_async",
           [](std::shared_ptr<Election> self) {
             auto f = NoGil([&] { return self->LeaderAsync(); });
             return PyFuture::From(std::move(f),
                                   [self](const LeaderInfo& l) { return py::cast(l); });
           })
      .def_property_readonly("leadership",
                             [](const Election& self) -> py::object {
                               auto g = self.leadership();
                               return g ? py::cast(*g) : py::none();
                             })
      .def(
          "observe",
          [](const Election& self, std::optional<double> timeout,
             std::shared_ptr<Notifier> notifier, uint64_t token) {
            return std::make_unique<PyObserver>(self, timeout, std::move(notifier), token);
          },
          py::arg("timeout") = py::none(), py::arg("notifier") = py::none(), py::arg("token") = 0);
  BindLeadership(m);
  BindSync(m);
  BindData(m);
  BindAdmin(m);
}

}  // namespace cairn::python
