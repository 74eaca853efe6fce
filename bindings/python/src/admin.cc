// Bindings of the SDK's administration clients: cluster membership, maintenance and auth.
// Membership, maintenance (but the snapshot) and auth calls return a Future; the snapshot is a
// blocking call run with the GIL released (the SDK streams it into a file).
#include "bindings/python/src/common.h"
#include "bindings/python/src/recipes_util.h"

namespace cairn::python {
namespace {

template <typename T>
T Value(absl::StatusOr<T> r) {
  if (!r.ok()) Raise(r.status());
  return std::move(*r);
}

py::dict MemberDict(const Member& m) {
  py::dict d;
  d["id"] = m.id;
  d["name"] = m.name;
  d["peer_urls"] = m.peer_urls;
  d["client_urls"] = m.client_urls;
  d["is_learner"] = m.is_learner;
  return d;
}

py::list Members(const std::vector<Member>& ms) {
  py::list out;
  for (const auto& m : ms) out.append(MemberDict(m));
  return out;
}

// Membership and maintenance calls return a Future (the SDK's async forms complete it on a
// client thread): blocking Python calls result(), cairn.aio awaits it through the loop's eventfd.
py::object MembersOf(const std::vector<Member>& ms) { return Members(ms); }

void BindCluster(py::module_& m) {
  m.def("member_list", [](py::object client) {
    ClusterClient c = ClientOf(client)->cluster();
    return PyFuture::From(NoGil([&] { return c.MemberListAsync(); }),
                          [](const MemberListResponse& r) { return MembersOf(r.members); });
  });
  m.def(
      "member_add",
      [](py::object client, std::vector<std::string> urls, bool learner) {
        if (urls.empty()) throw py::value_error("peer_urls must not be empty");
        ClusterClient c = ClientOf(client)->cluster();
        return PyFuture::From(NoGil([&] { return c.MemberAddAsync(urls, learner); }),
                              [](const MemberAddResponse& r) -> py::object {
                                return py::make_tuple(MemberDict(r.member), Members(r.members));
                              });
      },
      py::arg("client"), py::arg("peer_urls"), py::arg("learner") = false);
  auto changed = [](const MemberChangeResponse& r) { return MembersOf(r.members); };
  m.def("member_remove", [changed](py::object client, uint64_t id) {
    ClusterClient c = ClientOf(client)->cluster();
    return PyFuture::From(NoGil([&] { return c.MemberRemoveAsync(id); }), changed);
  });
  m.def("member_update", [changed](py::object client, uint64_t id, std::vector<std::string> urls) {
    ClusterClient c = ClientOf(client)->cluster();
    return PyFuture::From(NoGil([&] { return c.MemberUpdateAsync(id, urls); }), changed);
  });
  m.def("member_promote", [changed](py::object client, uint64_t id) {
    ClusterClient c = ClientOf(client)->cluster();
    return PyFuture::From(NoGil([&] { return c.MemberPromoteAsync(id); }), changed);
  });
}

py::object NoneOf(const EmptyResponse&) { return py::none(); }

void BindMaintenance(py::module_& m) {
  m.def(
      "defragment",
      [](py::object client, const std::string& endpoint) {
        MaintenanceClient c = ClientOf(client)->maintenance();
        return PyFuture::From(NoGil([&] { return c.DefragmentAsync(endpoint); }), NoneOf);
      },
      py::arg("client"), py::arg("endpoint") = "");
  m.def(
      "hash_kv",
      [](py::object client, const std::string& endpoint, int64_t revision) {
        MaintenanceClient c = ClientOf(client)->maintenance();
        return PyFuture::From(NoGil([&] { return c.HashKvAsync(endpoint, revision); }),
                              [](const HashKvResponse& r) -> py::object {
                                return py::make_tuple(r.hash, r.compact_revision,
                                                      r.header.revision);
                              });
      },
      py::arg("client"), py::arg("endpoint") = "", py::arg("revision") = 0);
  // Streams into a file: the SDK's Snapshot is blocking (cairn.aio runs it on the executor).
  m.def(
      "snapshot",
      [](py::object client, const std::string& path, const std::string& endpoint,
         std::optional<double> timeout) {
        if (path.empty()) throw py::value_error("path must not be empty");
        MaintenanceClient c = ClientOf(client)->maintenance();
        CallOptions call = CallWithTimeout(timeout);
        auto r = Value(NoGil([&] { return c.Snapshot(path, endpoint, call); }));
        return py::make_tuple(r.bytes, r.sha256_hex);
      },
      py::arg("client"), py::arg("path"), py::arg("endpoint") = "",
      py::arg("timeout") = py::none());
  m.def(
      "alarms",
      [](py::object client, int action, uint64_t member, int alarm) {
        if (action < 0 || action > 2 || alarm < 0 || alarm > 2) {
          throw py::value_error("bad alarm action or type");
        }
        MaintenanceClient c = ClientOf(client)->maintenance();
        return PyFuture::From(
            NoGil([&] {
              return c.AlarmAsync(static_cast<AlarmAction>(action), member,
                                  static_cast<AlarmType>(alarm));
            }),
            [](const AlarmResponse& r) -> py::object {
              py::list out;
              for (const auto& a : r.alarms) {
                out.append(py::make_tuple(a.member_id, static_cast<int>(a.alarm)));
              }
              return out;
            });
      },
      py::arg("client"), py::arg("action") = 0, py::arg("member") = 0, py::arg("alarm") = 0);
  m.def("move_leader", [](py::object client, uint64_t target) {
    MaintenanceClient c = ClientOf(client)->maintenance();
    return PyFuture::From(NoGil([&] { return c.MoveLeaderAsync(target); }), NoneOf);
  });
}

py::object AuthNone(const AuthResponse&) { return py::none(); }
py::object NamesOf(const AuthListResponse& r) { return py::cast(r.names); }

void BindAuth(py::module_& m) {
  // Every auth call returns a Future, as membership's do (the SDK's *Async forms).
  m.def("auth_enable", [](py::object client) {
    AuthClient a = ClientOf(client)->auth();
    return PyFuture::From(NoGil([&] { return a.AuthEnableAsync(); }), AuthNone);
  });
  m.def("auth_disable", [](py::object client) {
    AuthClient a = ClientOf(client)->auth();
    return PyFuture::From(NoGil([&] { return a.AuthDisableAsync(); }), AuthNone);
  });
  m.def("auth_status", [](py::object client) {
    AuthClient a = ClientOf(client)->auth();
    return PyFuture::From(NoGil([&] { return a.AuthStatusAsync(); }),
                          [](const AuthStatusResponse& r) { return py::bool_(r.enabled); });
  });
  m.def(
      "user_add",
      [](py::object client, const std::string& name, std::optional<std::string> password) {
        AuthClient a = ClientOf(client)->auth();
        return PyFuture::From(
            NoGil([&] { return a.UserAddAsync(name, password.value_or(""), !password); }),
            AuthNone);
      },
      py::arg("client"), py::arg("name"), py::arg("password") = py::none());
  m.def("user_get", [](py::object client, const std::string& name) {
    AuthClient a = ClientOf(client)->auth();
    return PyFuture::From(NoGil([&] { return a.UserGetAsync(name); }),
                          [](const AuthUserGetResponse& r) { return py::cast(r.roles); });
  });
  m.def("user_list", [](py::object client) {
    AuthClient a = ClientOf(client)->auth();
    return PyFuture::From(NoGil([&] { return a.UserListAsync(); }), NamesOf);
  });
  m.def("user_delete", [](py::object client, const std::string& name) {
    AuthClient a = ClientOf(client)->auth();
    return PyFuture::From(NoGil([&] { return a.UserDeleteAsync(name); }), AuthNone);
  });
  m.def("user_change_password",
        [](py::object client, const std::string& name, const std::string& password) {
          AuthClient a = ClientOf(client)->auth();
          return PyFuture::From(NoGil([&] { return a.UserChangePasswordAsync(name, password); }),
                                AuthNone);
        });
  m.def("user_grant_role", [](py::object client, const std::string& user, const std::string& role) {
    AuthClient a = ClientOf(client)->auth();
    return PyFuture::From(NoGil([&] { return a.UserGrantRoleAsync(user, role); }), AuthNone);
  });
  m.def("user_revoke_role",
        [](py::object client, const std::string& user, const std::string& role) {
          AuthClient a = ClientOf(client)->auth();
          return PyFuture::From(NoGil([&] { return a.UserRevokeRoleAsync(user, role); }), AuthNone);
        });
  m.def("role_add", [](py::object client, const std::string& name) {
    AuthClient a = ClientOf(client)->auth();
    return PyFuture::From(NoGil([&] { return a.RoleAddAsync(name); }), AuthNone);
  });
  m.def("role_get", [](py::object client, const std::string& name) {
    AuthClient a = ClientOf(client)->auth();
    return PyFuture::From(
        NoGil([&] { return a.RoleGetAsync(name); }), [](const AuthRoleGetResponse& r) {
          py::list out;
          for (const auto& p : r.permissions) {
            out.append(
                py::make_tuple(static_cast<int>(p.type), py::bytes(p.key), py::bytes(p.range_end)));
          }
          return out;
        });
  });
  m.def("role_list", [](py::object client) {
    AuthClient a = ClientOf(client)->auth();
    return PyFuture::From(NoGil([&] { return a.RoleListAsync(); }), NamesOf);
  });
  m.def("role_delete", [](py::object client, const std::string& name) {
    AuthClient a = ClientOf(client)->auth();
    return PyFuture::From(NoGil([&] { return a.RoleDeleteAsync(name); }), AuthNone);
  });
  m.def(
      "role_grant_permission",
      [](py::object client, const std::string& role, int type, py::object key,
         std::optional<py::object> range_end) {
        if (type < 0 || type > 2) throw py::value_error("bad permission type");
        Permission p;
        p.type = static_cast<PermissionType>(type);
        p.key = ToBytes(key, "key");
        if (range_end && !range_end->is_none()) p.range_end = ToBytes(*range_end, "range_end");
        AuthClient a = ClientOf(client)->auth();
        return PyFuture::From(NoGil([&] { return a.RoleGrantPermissionAsync(role, p); }), AuthNone);
      },
      py::arg("client"), py::arg("role"), py::arg("type"), py::arg("key"),
      py::arg("range_end") = py::none());
  m.def(
      "role_revoke_permission",
      [](py::object client, const std::string& role, py::object key,
         std::optional<py::object> range_end) {
        std::string k = ToBytes(key, "key");
        std::string end =
            range_end && !range_end->is_none() ? ToBytes(*range_end, "range_end") : "";
        AuthClient a = ClientOf(client)->auth();
        return PyFuture::From(NoGil([&] { return a.RoleRevokePermissionAsync(role, k, end); }),
                              AuthNone);
      },
      py::arg("client"), py::arg("role"), py::arg("key"), py::arg("range_end") = py::none());
}

}  // namespace

void BindAdmin(py::module_& m) {
  BindCluster(m);
  BindMaintenance(m);
  BindAuth(m);
}

}  // namespace cairn::python
