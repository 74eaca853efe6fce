// Bindings of the recipes (recipes/): sessions, locks and elections. Their waits run on a thread
// of their own and complete a Future, so the blocking Python call releases the GIL and Ctrl-C
// cancels the wait (the recipe then removes its key).
#include "bindings/python/src/common.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/session.h"

namespace cairn::python {

std::shared_ptr<Client> ClientOf(const py::object& client);

namespace {

using recipes::Election;
using recipes::Grant;
using recipes::LeaderInfo;
using recipes::Mutex;
using recipes::Session;

CallOptions Call(std::optional<double> timeout) {
  CallOptions call;
  if (timeout) {
    if (*timeout <= 0) throw py::value_error("timeout must be > 0");
    call.timeout = std::chrono::milliseconds(static_cast<int64_t>(*timeout * 1000));
  }
  return call;
}

void CheckName(const std::string& name) {
  if (name.empty()) throw py::value_error("name must not be empty");
}

// Calls that need no waiting still leave the GIL while they talk to the server.
template <typename F>
auto NoGil(F f) {
  py::gil_scoped_release nogil;
  return f();
}

void Check(const absl::Status& st) {
  if (!st.ok()) Raise(st);
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
            CallOptions call = Call(timeout);
            return PyFuture::RunBlocking<Grant>(
                [self](const CallOptions& c) { return self->Lock(c); },
                [](const Grant& g) { return py::cast(g); }, call);
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
            CallOptions call = Call(timeout);
            return PyFuture::RunBlocking<Grant>(
                [self, v](const CallOptions& c) { return self->Campaign(v, c); },
                [](const Grant& g) { return py::cast(g); }, call);
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
      .def_property_readonly("leadership", [](const Election& self) -> py::object {
        auto g = self.leadership();
        return g ? py::cast(*g) : py::none();
      });
}

}  // namespace cairn::python
