// Bindings of the C++ SDK (client/): the client, KV, transactions, watches and leases. Every call
// returns a Future; the pure-Python layer (cairn/__init__.py, cairn/aio.py) makes the blocking and
// the asyncio forms from it.
#include <deque>

#include "bindings/python/src/common.h"
#include "cairn/errors.h"

namespace cairn::python {
namespace {

CallOptions Call(std::optional<double> timeout) {
  CallOptions call;
  if (timeout) {
    if (*timeout <= 0) throw py::value_error("timeout must be > 0");
    call.timeout = std::chrono::milliseconds(static_cast<int64_t>(*timeout * 1000));
  }
  return call;
}

template <typename T>
py::object Cast(const T& v) {
  return py::cast(v);
}

// One fast-path call (get_kv/put_kv and their _async forms), its arguments converted from Python
// (with the GIL held); Start() begins it on `kv` (called with the GIL released).
struct GetCall {
  GetCall(py::handle key, bool serializable) : key(ToBytes(key, "key")) {
    options.serializable = serializable;
  }
  Future<GetResponse> Start(const Kv& kv) const { return kv.GetAsync(key, options, CallOptions{}); }
  std::string key;
  GetOptions options;
};

struct PutCall {
  PutCall(py::handle key, py::handle value, int64_t lease, bool prev_kv)
      : key(ToBytes(key, "key")), value(ToBytes(value, "value")) {
    options.lease = lease;
    options.prev_kv = prev_kv;
  }
  Future<PutResponse> Start(const Kv& kv) const {
    return kv.PutAsync(key, value, options, CallOptions{});
  }
  std::string key, value;
  PutOptions options;
};

// The blocking calls' path (get_kv, put_kv): starts the call and waits for its own future, with
// one GIL release for both and no PyFuture, no completion callback and no response object on
// the Python side; only the value Python returns is converted. Wakes every kPollSlice for
// Python's signal handlers: Ctrl-C cancels the call and raises KeyboardInterrupt.
template <typename T, typename Start>
absl::StatusOr<T> StartAndWait(Start start) {
  Future<T> f;
  bool ready;
  {
    py::gil_scoped_release nogil;
    f = start();
    ready = f.WaitUntil(Clock::now() + kPollSlice);
  }
  while (!ready) {
    if (PyErr_CheckSignals() != 0) {
      {
        py::gil_scoped_release nogil;
        f.Cancel();
        f.WaitUntil(Clock::now() + kCancelSettle);
      }
      throw py::error_already_set();
    }
    py::gil_scoped_release nogil;
    ready = f.WaitUntil(Clock::now() + kPollSlice);
  }
  return f.Get();
}

// get_kv's and put_kv's results: the key's KeyValue (or the previous one), or None.
py::object FirstKv(const GetResponse& r) { return r.kvs.empty() ? py::none() : py::cast(r.kvs[0]); }
py::object PrevKv(const PutResponse& r) { return r.has_prev_kv ? py::cast(r.prev_kv) : py::none(); }

// The asyncio form of get_kv/put_kv: a PyFuture converting to the same value, whose result
// `notifier`'s settle() sets on the asyncio future `fut` (one native call to start and register).
// The call is started by Notifier::StartCall: inline, or on the notifier's starter thread while
// other calls are in flight.
template <typename CallT, typename Conv>
PyFuture Settling(CallT call, Kv kv, Conv conv, const std::shared_ptr<Notifier>& notifier,
                  py::handle fut) {
  PyFuture pf;
  pf.SettleTo(notifier, fut);
  notifier->StartCall(pf, [pf, call = std::move(call), kv = std::move(kv), conv] {
    pf.Attach(call.Start(kv), conv);
  });
  return pf;
}

// One client shared by Python threads. close() drops it; calls made afterwards raise
// CanceledError("client closed"). Calls in flight keep what they need alive.
class PyClient {
 public:
  PyClient(const std::vector<std::string>& endpoints, double timeout, double dial_timeout,
           std::optional<std::string> user, std::optional<std::string> password,
           std::optional<std::string> ca_cert, std::optional<std::string> cert,
           std::optional<std::string> key, std::optional<std::string> ns) {
    if (endpoints.empty()) throw py::value_error("endpoints must not be empty");
    if (timeout <= 0) throw py::value_error("timeout must be > 0");
    if (dial_timeout <= 0) throw py::value_error("dial_timeout must be > 0");
    ClientOptions o;
    o.endpoints = endpoints;
    o.default_timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000));
    o.dial_timeout = std::chrono::milliseconds(static_cast<int64_t>(dial_timeout * 1000));
    if (user) o.username = *user;
    if (password) o.password = *password;
    if (ca_cert || cert || key) {
      o.tls.enabled = true;
      o.tls.ca_file = ca_cert.value_or("");
      o.tls.cert_file = cert.value_or("");
      o.tls.key_file = key.value_or("");
    }
    if (ns) o.key_prefix = *ns;
    absl::StatusOr<std::unique_ptr<Client>> c;
    {
      py::gil_scoped_release nogil;
      c = Client::Connect(o);
    }
    if (!c.ok()) Raise(c.status());
    client_ = std::shared_ptr<Client>(std::move(*c));
  }

  ~PyClient() { Close(); }

  void Close() {
    std::shared_ptr<Client> c;
    {
      std::lock_guard<std::mutex> l(mu_);
      c.swap(client_);
    }
    py::gil_scoped_release nogil;  // its threads may be waiting for the GIL to call back
    c.reset();
  }

  bool closed() const {
    std::lock_guard<std::mutex> l(mu_);
    return client_ == nullptr;
  }

  // The client, or CanceledError once closed. Handles (Kv, WatchClient...) keep the client's
  // core alive on their own, so the shared_ptr need not outlive the call that starts.
  std::shared_ptr<Client> Get() const {
    std::lock_guard<std::mutex> l(mu_);
    if (client_ == nullptr) Raise(MakeError(ErrorKind::kCanceled, "client closed"));
    return client_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<Client> client_;
};

GetOptions MakeGet(std::optional<py::object> range_end, bool prefix, bool from_key, int64_t limit,
                   int64_t revision, int sort_order, int sort_target, bool serializable,
                   bool keys_only, bool count_only) {
  if (limit < 0) throw py::value_error("limit must be >= 0");
  if (sort_order < 0 || sort_order > 2) throw py::value_error("bad sort order");
  if (sort_target < 0 || sort_target > 4) throw py::value_error("bad sort target");
  GetOptions o;
  if (range_end && !range_end->is_none()) o.range_end = ToBytes(*range_end, "range_end");
  o.prefix = prefix;
  o.from_key = from_key;
  o.limit = limit;
  o.revision = revision;
  o.sort_order = static_cast<SortOrder>(sort_order);
  o.sort_target = static_cast<SortTarget>(sort_target);
  o.serializable = serializable;
  o.keys_only = keys_only;
  o.count_only = count_only;
  return o;
}

DeleteOptions MakeDelete(std::optional<py::object> range_end, bool prefix, bool from_key,
                         bool prev_kv) {
  DeleteOptions o;
  if (range_end && !range_end->is_none()) o.range_end = ToBytes(*range_end, "range_end");
  o.prefix = prefix;
  o.from_key = from_key;
  o.prev_kv = prev_kv;
  return o;
}

Txn MakeTxn(const std::vector<Compare>& compares, const std::vector<Op>& success,
            const std::vector<Op>& failure) {
  Txn t;
  t.If(compares).Then(success).Else(failure);
  return t;
}

// A watch: responses queue up until next() takes them; `notify` (optional) is called with the GIL
// each time one arrives (the asyncio layer wakes its loop from it).
class PyWatch {
 public:
  static constexpr std::chrono::seconds kCreateTimeout{10};
  struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<WatchResponse> responses;
    bool ended = false;
    std::shared_ptr<PyCallback> notify;
    std::shared_ptr<Notifier> notifier;  // posted `token` per response (asyncio, no GIL)
    uint64_t token = 0;
    std::shared_ptr<PyCallback> on_response;  // set: responses go to it, not to the queue
  };

  PyWatch(const WatchClient& watch, const std::string& key, const WatchOptions& opts,
          std::optional<py::object> notify, std::optional<py::object> on_response,
          std::shared_ptr<Notifier> notifier, uint64_t token)
      : q_(std::make_shared<Queue>()) {
    if (notify && !notify->is_none()) q_->notify = std::make_shared<PyCallback>(*notify);
    q_->notifier = std::move(notifier);
    q_->token = token;
    if (on_response && !on_response->is_none()) {
      q_->on_response = std::make_shared<PyCallback>(*on_response);
    }
    std::shared_ptr<Queue> q = q_;
    absl::StatusOr<std::unique_ptr<Watcher>> w;
    {
      py::gil_scoped_release nogil;
      w = watch.Watch(key, opts, [q](const WatchResponse& r) {
        if (q->on_response) {
          if (!r.events.empty()) (*q->on_response)(r);
          if (!r.canceled) return;
        }
        std::shared_ptr<PyCallback> notify;
        {
          std::lock_guard<std::mutex> l(q->mu);
          q->responses.push_back(r);
          if (r.canceled) q->ended = true;
          notify = q->notify;
        }
        q->cv.notify_all();
        if (q->notifier) q->notifier->Post(q->token);
        if (notify) (*notify)();
      });
    }
    if (!w.ok()) Raise(w.status());
    watcher_ = std::move(*w);
    // As python-etcd3: the watch is in place when watch() returns, so no later write is missed.
    absl::Status created;
    {
      py::gil_scoped_release nogil;
      created = watcher_->WaitCreated(Clock::now() + kCreateTimeout);
    }
    if (!created.ok()) Raise(created);
  }

  ~PyWatch() {
    py::gil_scoped_release nogil;
    watcher_.reset();
  }

  // The next response, None after `timeout` seconds without one, or StopIteration once the watch
  // has ended and everything was taken. A response that ends the watch with an error raises it
  // (CompactedError when its start revision was compacted).
  py::object Next(std::optional<double> timeout) {
    const auto deadline = DeadlineAfter(timeout);
    std::shared_ptr<Queue> q = q_;
    while (true) {
      if (!WaitInterruptibly(
              q->mu, q->cv, [q] { return !q->responses.empty() || q->ended; }, deadline)) {
        return py::none();
      }
      std::optional<WatchResponse> r;
      {
        std::lock_guard<std::mutex> l(q->mu);
        if (!q->responses.empty()) {
          r = std::move(q->responses.front());
          q->responses.pop_front();
        } else if (q->ended) {
          throw py::stop_iteration();
        }
      }
      if (!r) continue;  // another thread took it
      if (!r->canceled) return py::cast(*r);
      if (r->compact_revision != 0) {
        Raise(MakeError(
            ErrorKind::kCompacted,
            "required revision " + std::to_string(r->compact_revision) + " has been compacted"));
      }
      if (!r->status.ok() && ErrorKindOf(r->status) != ErrorKind::kCanceled) Raise(r->status);
      throw py::stop_iteration();
    }
  }

  // Takes a queued response without waiting (None if there is none).
  py::object Poll() { return Next(0.0); }

  void Cancel() {
    py::gil_scoped_release nogil;
    if (watcher_) watcher_->Cancel();
    {
      std::lock_guard<std::mutex> l(q_->mu);
      q_->ended = true;
    }
    q_->cv.notify_all();
  }

  int64_t next_revision() const { return watcher_ ? watcher_->next_revision() : 0; }

 private:
  std::shared_ptr<Queue> q_;
  std::unique_ptr<Watcher> watcher_;
};

class PyKeepAlive {
 public:
  explicit PyKeepAlive(std::unique_ptr<LeaseKeepAlive> k) : k_(std::move(k)) {}
  ~PyKeepAlive() { Stop(); }
  void Stop() {
    py::gil_scoped_release nogil;
    if (k_) k_->Stop();
  }
  bool lost() const { return k_->lost(); }
  int64_t ttl() const { return k_->ttl_seconds(); }
  int64_t id() const { return k_->id(); }

 private:
  std::unique_ptr<LeaseKeepAlive> k_;
};

void BindTypes(py::module_& m) {
  py::class_<ResponseHeader>(m, "ResponseHeader")
      .def_readonly("cluster_id", &ResponseHeader::cluster_id)
      .def_readonly("member_id", &ResponseHeader::member_id)
      .def_readonly("revision", &ResponseHeader::revision)
      .def_readonly("raft_term", &ResponseHeader::raft_term);
  py::class_<KeyValue>(m, "KeyValue", "A key's value and metadata; key and value are bytes.")
      .def_property_readonly("key", [](const KeyValue& kv) { return py::bytes(kv.key); })
      .def_property_readonly("value", [](const KeyValue& kv) { return py::bytes(kv.value); })
      .def_readonly("create_revision", &KeyValue::create_revision)
      .def_readonly("mod_revision", &KeyValue::mod_revision)
      .def_readonly("version", &KeyValue::version)
      .def_readonly("lease", &KeyValue::lease)
      .def("__eq__",
           [](const KeyValue& a, const KeyValue& b) {
             return a.key == b.key && a.value == b.value &&
                    a.create_revision == b.create_revision && a.mod_revision == b.mod_revision &&
                    a.version == b.version && a.lease == b.lease;
           })
      .def("__repr__", [](const KeyValue& kv) {
        return "KeyValue(key=" + std::string(py::repr(py::bytes(kv.key))) +
               ", value=" + std::string(py::repr(py::bytes(kv.value))) +
               ", create_revision=" + std::to_string(kv.create_revision) +
               ", mod_revision=" + std::to_string(kv.mod_revision) +
               ", version=" + std::to_string(kv.version) + ", lease=" + std::to_string(kv.lease) +
               ")";
      });
  py::class_<GetResponse>(m, "GetResponse")
      .def_readonly("header", &GetResponse::header)
      .def_readonly("kvs", &GetResponse::kvs)
      .def_readonly("more", &GetResponse::more)
      .def_readonly("count", &GetResponse::count);
  py::class_<PutResponse>(m, "PutResponse")
      .def_readonly("header", &PutResponse::header)
      .def_property_readonly("prev_kv", [](const PutResponse& r) {
        return r.has_prev_kv ? py::cast(r.prev_kv) : py::none();
      });
  py::class_<DeleteResponse>(m, "DeleteResponse")
      .def_readonly("header", &DeleteResponse::header)
      .def_readonly("deleted", &DeleteResponse::deleted)
      .def_readonly("prev_kvs", &DeleteResponse::prev_kvs);
  py::class_<OpResponse>(m, "OpResponse")
      .def_property_readonly("kind", [](const OpResponse& r) { return static_cast<int>(r.type); })
      .def_readonly("get", &OpResponse::get)
      .def_readonly("put", &OpResponse::put)
      .def_readonly("delete", &OpResponse::del)
      .def_property_readonly(
          "txn", [](const OpResponse& r) { return r.txn ? py::cast(*r.txn) : py::none(); });
  py::class_<TxnResponse>(m, "TxnResponse")
      .def_readonly("header", &TxnResponse::header)
      .def_readonly("succeeded", &TxnResponse::succeeded)
      .def_readonly("responses", &TxnResponse::responses);
  py::class_<Event>(m, "Event", "A watch event: type is 'put' or 'delete'.")
      .def_property_readonly(
          "type", [](const Event& e) { return e.type == EventType::kPut ? "put" : "delete"; })
      .def_readonly("kv", &Event::kv)
      .def_property_readonly(
          "prev_kv",
          [](const Event& e) { return e.has_prev_kv ? py::cast(e.prev_kv) : py::none(); })
      .def("__repr__", [](const Event& e) {
        return std::string("Event(") + (e.type == EventType::kPut ? "put" : "delete") + ", " +
               std::string(py::repr(py::bytes(e.kv.key))) + ")";
      });
  py::class_<WatchResponse>(m, "WatchResponse")
      .def_readonly("header", &WatchResponse::header)
      .def_readonly("events", &WatchResponse::events)
      .def_readonly("created", &WatchResponse::created)
      .def_readonly("progress_notify", &WatchResponse::progress_notify);
  py::class_<LeaseGrantResponse>(m, "LeaseGrantResponse")
      .def_readonly("header", &LeaseGrantResponse::header)
      .def_readonly("id", &LeaseGrantResponse::id)
      .def_readonly("ttl", &LeaseGrantResponse::ttl_seconds);
  py::class_<LeaseTimeToLiveResponse>(m, "LeaseTimeToLiveResponse")
      .def_readonly("header", &LeaseTimeToLiveResponse::header)
      .def_readonly("id", &LeaseTimeToLiveResponse::id)
      .def_readonly("ttl", &LeaseTimeToLiveResponse::ttl_seconds)
      .def_readonly("granted_ttl", &LeaseTimeToLiveResponse::granted_ttl_seconds)
      .def_property_readonly("keys", [](const LeaseTimeToLiveResponse& r) {
        py::list out;
        for (const auto& k : r.keys) out.append(py::bytes(k));
        return out;
      });
  py::class_<StatusResponse>(m, "StatusResponse")
      .def_readonly("header", &StatusResponse::header)
      .def_readonly("version", &StatusResponse::version)
      .def_readonly("db_size", &StatusResponse::db_size)
      .def_readonly("leader", &StatusResponse::leader)
      .def_readonly("raft_index", &StatusResponse::raft_index)
      .def_readonly("raft_term", &StatusResponse::raft_term)
      .def_readonly("is_learner", &StatusResponse::is_learner);
  py::class_<Compare>(m, "Compare", "One comparison of a transaction.")
      .def(py::init([](int target, int result, py::object key, int64_t number, py::object value,
                       std::optional<py::object> range_end) {
             if (target < 0 || target > 4) throw py::value_error("bad compare target");
             if (result < 0 || result > 3) throw py::value_error("bad compare result");
             Compare c;
             c.target = static_cast<CompareTarget>(target);
             c.result = static_cast<CompareResult>(result);
             c.key = ToBytes(key, "key");
             c.number = number;
             if (!value.is_none()) c.value = ToBytes(value, "value");
             if (range_end && !range_end->is_none()) c.range_end = ToBytes(*range_end, "range_end");
             return c;
           }),
           py::arg("target"), py::arg("result"), py::arg("key"), py::arg("number") = 0,
           py::arg("value") = py::none(), py::arg("range_end") = py::none());
  py::class_<Op>(m, "Op", "One operation of a transaction.");
}

void BindKv(py::class_<PyClient>& c) {
  c.def(
      "get",
      [](const PyClient& self, py::object key, std::optional<py::object> range_end, bool prefix,
         bool from_key, int64_t limit, int64_t revision, int sort_order, int sort_target,
         bool serializable, bool keys_only, bool count_only, std::optional<double> timeout) {
        GetOptions o = MakeGet(range_end, prefix, from_key, limit, revision, sort_order,
                               sort_target, serializable, keys_only, count_only);
        std::string k = ToBytes(key, "key");
        CallOptions call = Call(timeout);
        Kv kv = self.Get()->kv();
        py::gil_scoped_release nogil;
        return PyFuture::From(kv.GetAsync(k, o, call), Cast<GetResponse>);
      },
      py::arg("key"), py::arg("range_end") = py::none(), py::arg("prefix") = false,
      py::arg("from_key") = false, py::arg("limit") = 0, py::arg("revision") = 0,
      py::arg("sort_order") = 0, py::arg("sort_target") = 0, py::arg("serializable") = false,
      py::arg("keys_only") = false, py::arg("count_only") = false, py::arg("timeout") = py::none());
  // The fast paths of cairn.Client.get/put (blocking) and cairn.aio's (notifying).
  c.def(
      "get_kv",
      [](const PyClient& self, py::handle key, bool serializable) {
        GetCall call(key, serializable);
        Kv kv = self.Get()->kv();
        absl::StatusOr<GetResponse> r = StartAndWait<GetResponse>([&] { return call.Start(kv); });
        if (!r.ok()) Raise(r.status());
        return r->kvs.empty() ? py::none() : py::cast(std::move(r->kvs[0]));
      },
      py::arg("key"), py::arg("serializable") = false,
      "The key's KeyValue or None; blocks (GIL released).");
  c.def(
      "put_kv",
      [](const PyClient& self, py::handle key, py::handle value, int64_t lease, bool prev_kv) {
        PutCall call(key, value, lease, prev_kv);
        Kv kv = self.Get()->kv();
        absl::StatusOr<PutResponse> r = StartAndWait<PutResponse>([&] { return call.Start(kv); });
        if (!r.ok()) Raise(r.status());
        return r->has_prev_kv ? py::cast(std::move(r->prev_kv)) : py::none();
      },
      py::arg("key"), py::arg("value"), py::arg("lease") = 0, py::arg("prev_kv") = false,
      "Writes the key; the previous KeyValue when prev_kv (else None). Blocks (GIL released).");
  c.def(
      "get_kv_async",
      [](const PyClient& self, py::handle key, bool serializable,
         const std::shared_ptr<Notifier>& notifier, py::handle fut) {
        return Settling(GetCall(key, serializable), self.Get()->kv(), FirstKv, notifier, fut);
      },
      py::arg("key"), py::arg("serializable"), py::arg("notifier"), py::arg("future"),
      "get_kv's call as a Future; notifier.settle() sets the asyncio future from it.");
  c.def(
      "put_kv_async",
      [](const PyClient& self, py::handle key, py::handle value, int64_t lease, bool prev_kv,
         const std::shared_ptr<Notifier>& notifier, py::handle fut) {
        return Settling(PutCall(key, value, lease, prev_kv), self.Get()->kv(), PrevKv, notifier,
                        fut);
      },
      py::arg("key"), py::arg("value"), py::arg("lease"), py::arg("prev_kv"), py::arg("notifier"),
      py::arg("future"), "put_kv's call as a Future; notifier.settle() sets the asyncio future.");
  c.def(
      "put",
      [](const PyClient& self, py::object key, py::object value, int64_t lease, bool prev_kv,
         std::optional<double> timeout) {
        PutOptions o;
        o.lease = lease;
        o.prev_kv = prev_kv;
        std::string k = ToBytes(key, "key");
        std::string v = ToBytes(value, "value");
        CallOptions call = Call(timeout);
        Kv kv = self.Get()->kv();
        py::gil_scoped_release nogil;
        return PyFuture::From(kv.PutAsync(k, v, o, call), Cast<PutResponse>);
      },
      py::arg("key"), py::arg("value"), py::arg("lease") = 0, py::arg("prev_kv") = false,
      py::arg("timeout") = py::none());
  c.def(
      "delete",
      [](const PyClient& self, py::object key, std::optional<py::object> range_end, bool prefix,
         bool from_key, bool prev_kv, std::optional<double> timeout) {
        DeleteOptions o = MakeDelete(range_end, prefix, from_key, prev_kv);
        std::string k = ToBytes(key, "key");
        CallOptions call = Call(timeout);
        Kv kv = self.Get()->kv();
        py::gil_scoped_release nogil;
        return PyFuture::From(kv.DeleteAsync(k, o, call), Cast<DeleteResponse>);
      },
      py::arg("key"), py::arg("range_end") = py::none(), py::arg("prefix") = false,
      py::arg("from_key") = false, py::arg("prev_kv") = false, py::arg("timeout") = py::none());
  c.def(
      "commit",
      [](const PyClient& self, const std::vector<Compare>& compares, const std::vector<Op>& success,
         const std::vector<Op>& failure, std::optional<double> timeout) {
        Txn t = MakeTxn(compares, success, failure);
        CallOptions call = Call(timeout);
        Kv kv = self.Get()->kv();
        py::gil_scoped_release nogil;
        return PyFuture::From(kv.CommitAsync(t, call), Cast<TxnResponse>);
      },
      py::arg("compares"), py::arg("success"), py::arg("failure"), py::arg("timeout") = py::none());
  c.def(
      "compact",
      [](const PyClient& self, int64_t revision, bool physical, std::optional<double> timeout) {
        CallOptions call = Call(timeout);
        Kv kv = self.Get()->kv();
        py::gil_scoped_release nogil;
        return PyFuture::From(kv.CompactAsync(revision, physical, call),
                              [](const CompactResponse&) { return py::none(); });
      },
      py::arg("revision"), py::arg("physical") = false, py::arg("timeout") = py::none());
}

void BindLease(py::class_<PyClient>& c) {
  c.def(
      "lease_grant",
      [](const PyClient& self, int64_t ttl, int64_t id, std::optional<double> timeout) {
        if (ttl <= 0) throw py::value_error("ttl must be > 0");
        CallOptions call = Call(timeout);
        LeaseClient lc = self.Get()->lease();
        py::gil_scoped_release nogil;
        return PyFuture::From(lc.GrantAsync(ttl, id, call), Cast<LeaseGrantResponse>);
      },
      py::arg("ttl"), py::arg("id") = 0, py::arg("timeout") = py::none());
  c.def(
      "lease_revoke",
      [](const PyClient& self, int64_t id, std::optional<double> timeout) {
        CallOptions call = Call(timeout);
        LeaseClient lc = self.Get()->lease();
        py::gil_scoped_release nogil;
        return PyFuture::From(lc.RevokeAsync(id, call),
                              [](const LeaseRevokeResponse&) { return py::none(); });
      },
      py::arg("id"), py::arg("timeout") = py::none());
  c.def(
      "lease_time_to_live",
      [](const PyClient& self, int64_t id, bool keys, std::optional<double> timeout) {
        CallOptions call = Call(timeout);
        LeaseClient lc = self.Get()->lease();
        py::gil_scoped_release nogil;
        return PyFuture::From(lc.TimeToLiveAsync(id, keys, call), Cast<LeaseTimeToLiveResponse>);
      },
      py::arg("id"), py::arg("keys") = false, py::arg("timeout") = py::none());
  c.def(
      "lease_keep_alive",
      [](const PyClient& self, int64_t id) {
        LeaseClient lc = self.Get()->lease();
        std::unique_ptr<LeaseKeepAlive> k;
        {
          py::gil_scoped_release nogil;
          k = lc.KeepAlive(id);
        }
        return std::make_unique<PyKeepAlive>(std::move(k));
      },
      py::arg("id"));
}

void BindMaintenance(py::class_<PyClient>& c) {
  c.def(
      "status",
      [](const PyClient& self, const std::string& endpoint, std::optional<double> timeout) {
        CallOptions call = Call(timeout);
        MaintenanceClient mc = self.Get()->maintenance();
        py::gil_scoped_release nogil;
        return PyFuture::From(mc.StatusAsync(endpoint, call), Cast<StatusResponse>);
      },
      py::arg("endpoint") = "", py::arg("timeout") = py::none());
}

void BindWatch(py::module_& m, py::class_<PyClient>& c) {
  py::class_<PyWatch>(m, "Watch")
      .def("next", &PyWatch::Next, py::arg("timeout") = py::none())
      .def("poll", &PyWatch::Poll)
      .def("cancel", &PyWatch::Cancel)
      .def_property_readonly("next_revision", &PyWatch::next_revision);
  c.def(
      "watch",
      [](const PyClient& self, py::object key, std::optional<py::object> range_end, bool prefix,
         bool from_key, int64_t start_revision, bool prev_kv, bool filter_put, bool filter_delete,
         bool progress_notify, std::optional<py::object> notify,
         std::optional<py::object> on_response, std::shared_ptr<Notifier> notifier,
         uint64_t token) {
        WatchOptions o;
        if (range_end && !range_end->is_none()) o.range_end = ToBytes(*range_end, "range_end");
        o.prefix = prefix;
        o.from_key = from_key;
        o.start_revision = start_revision;
        o.prev_kv = prev_kv;
        o.filter_put = filter_put;
        o.filter_delete = filter_delete;
        o.progress_notify = progress_notify;
        return std::make_unique<PyWatch>(self.Get()->watch(), ToBytes(key, "key"), o, notify,
                                         on_response, std::move(notifier), token);
      },
      py::arg("key"), py::arg("range_end") = py::none(), py::arg("prefix") = false,
      py::arg("from_key") = false, py::arg("start_revision") = 0, py::arg("prev_kv") = false,
      py::arg("filter_put") = false, py::arg("filter_delete") = false,
      py::arg("progress_notify") = false, py::arg("notify") = py::none(),
      py::arg("on_response") = py::none(), py::arg("notifier") = py::none(), py::arg("token") = 0);
}

}  // namespace

// For recipes.cc: the C++ client behind a Python client object.
std::shared_ptr<Client> ClientOf(const py::object& client) {
  return client.cast<const PyClient&>().Get();
}

void BindClient(py::module_& m) {
  BindTypes(m);
  py::class_<PyKeepAlive>(m, "KeepAlive")
      .def("stop", &PyKeepAlive::Stop)
      .def_property_readonly("lost", &PyKeepAlive::lost)
      .def_property_readonly("ttl", &PyKeepAlive::ttl)
      .def_property_readonly("id", &PyKeepAlive::id);
  m.def(
      "op_get",
      [](py::object key, std::optional<py::object> range_end, bool prefix, int64_t limit,
         int64_t revision, bool keys_only, bool count_only) {
        return Op::Get(ToBytes(key, "key"), MakeGet(range_end, prefix, false, limit, revision, 0, 0,
                                                    false, keys_only, count_only));
      },
      py::arg("key"), py::arg("range_end") = py::none(), py::arg("prefix") = false,
      py::arg("limit") = 0, py::arg("revision") = 0, py::arg("keys_only") = false,
      py::arg("count_only") = false);
  m.def(
      "op_put",
      [](py::object key, py::object value, int64_t lease, bool prev_kv) {
        PutOptions o;
        o.lease = lease;
        o.prev_kv = prev_kv;
        return Op::Put(ToBytes(key, "key"), ToBytes(value, "value"), o);
      },
      py::arg("key"), py::arg("value"), py::arg("lease") = 0, py::arg("prev_kv") = false);
  m.def(
      "op_delete",
      [](py::object key, std::optional<py::object> range_end, bool prefix, bool prev_kv) {
        return Op::Delete(ToBytes(key, "key"), MakeDelete(range_end, prefix, false, prev_kv));
      },
      py::arg("key"), py::arg("range_end") = py::none(), py::arg("prefix") = false,
      py::arg("prev_kv") = false);
  m.def(
      "op_txn",
      [](const std::vector<Compare>& compares, const std::vector<Op>& success,
         const std::vector<Op>& failure) {
        return Op::Nested(MakeTxn(compares, success, failure));
      },
      py::arg("compares"), py::arg("success"), py::arg("failure"));
  py::class_<PyClient> c(m, "Client", "A connection to an etcd v3 cluster (etcd or cairn).");
  c.def(py::init<const std::vector<std::string>&, double, double, std::optional<std::string>,
                 std::optional<std::string>, std::optional<std::string>, std::optional<std::string>,
                 std::optional<std::string>, std::optional<std::string>>(),
        py::arg("endpoints"), py::arg("timeout") = 5.0, py::arg("dial_timeout") = 5.0,
        py::arg("user") = py::none(), py::arg("password") = py::none(),
        py::arg("ca_cert") = py::none(), py::arg("cert") = py::none(), py::arg("key") = py::none(),
        py::arg("namespace") = py::none())
      .def("close", &PyClient::Close)
      .def_property_readonly("closed", &PyClient::closed);
  BindKv(c);
  BindLease(c);
  BindMaintenance(c);
  BindWatch(m, c);
}

}  // namespace cairn::python
