// Small helpers shared by the recipe bindings.
#pragma once

#include <optional>
#include <string>

#include "bindings/python/src/common.h"
#include "cairn/recipes/async.h"

namespace cairn::python {

// CallOptions with `timeout` seconds (None: the client's default); ValueError for <= 0.
inline CallOptions CallWithTimeout(std::optional<double> timeout) {
  CallOptions call;
  if (timeout) {
    if (*timeout <= 0) throw py::value_error("timeout must be > 0");
    call.timeout = std::chrono::milliseconds(static_cast<int64_t>(*timeout * 1000));
  }
  return call;
}

// A recipe name: ValueError when empty.
inline void CheckName(const std::string& name) {
  if (name.empty()) throw py::value_error("name must not be empty");
}

// Runs `f` with the GIL released (calls that talk to the server without waiting long).
template <typename F>
auto NoGil(F f) {
  py::gil_scoped_release nogil;
  return f();
}

inline void Check(const absl::Status& st) {
  if (!st.ok()) Raise(st);
}

// A call that completes with no value, as a Future of None; `owner` (the object the call was made
// on) lives until it completes.
template <typename Owner>
PyFuture NoneWhenDone(Future<recipes::Completed> f, std::shared_ptr<Owner> owner) {
  return PyFuture::From(std::move(f), [owner](const recipes::Completed&) { return py::none(); });
}

// The C++ client behind a Python `_cairn.Client` (CanceledError once closed).
std::shared_ptr<Client> ClientOf(const py::object& client);

void BindSync(py::module_& m);
void BindData(py::module_& m);
void BindAdmin(py::module_& m);

}  // namespace cairn::python
