#!/usr/bin/python3
"""Checks that Cairn's .proto files carry etcd's message, field names, numbers and types.

The reference is the descriptor set that Debian's python3-etcd3 ships (etcd 3.3's API). Every
message and field there must exist in ours with the same number, type and label. The one
documented difference: etcd 3.5 changed AuthRoleRevokePermissionRequest.key/range_end from string
to bytes (same wire encoding); Cairn follows 3.5.

usage: check_proto_fields.py OURS.pb   (a FileDescriptorSet from protoc --include_imports)
"""
import sys

from google.protobuf import descriptor_pb2
from etcd3.etcdrpc import auth_pb2, kv_pb2, rpc_pb2

STRING, BYTES = 9, 12
ALLOWED = {("etcdserverpb.AuthRoleRevokePermissionRequest", "key"),
           ("etcdserverpb.AuthRoleRevokePermissionRequest", "range_end")}


def collect(messages, prefix, out):
    for m in messages:
        name = prefix + m.name
        out[name] = {f.name: (f.number, f.type, f.label) for f in m.field}
        collect(m.nested_type, name + ".", out)


def main():
    ours_set = descriptor_pb2.FileDescriptorSet()
    with open(sys.argv[1], "rb") as f:
        ours_set.ParseFromString(f.read())
    ours, ours_services = {}, {}
    for fd in ours_set.file:
        collect(fd.message_type, fd.package + ".", ours)
        for s in fd.service:
            ours_services[fd.package + "." + s.name] = [m.name for m in s.method]
    problems, checked = [], 0
    for mod in (rpc_pb2, kv_pb2, auth_pb2):
        fd = descriptor_pb2.FileDescriptorProto()
        mod.DESCRIPTOR.CopyToProto(fd)
        ref = {}
        collect(fd.message_type, fd.package + ".", ref)
        for msg, fields in ref.items():
            if msg not in ours:
                problems.append(f"missing message {msg}")
                continue
            for field, want in fields.items():
                checked += 1
                got = ours[msg].get(field)
                if got == want:
                    continue
                if (msg, field) in ALLOWED and got and got[0] == want[0] and \
                        {got[1], want[1]} == {STRING, BYTES}:
                    continue
                problems.append(f"{msg}.{field}: ours {got}, etcd {want}")
        for s in fd.service:
            full = fd.package + "." + s.name
            for method in s.method:
                if method.name not in ours_services.get(full, []):
                    problems.append(f"missing rpc {full}/{method.name}")
    for p in problems:
        print(p)
    print(f"{checked} fields checked: {checked - len(problems)} passed, {len(problems)} failed")
    return 1 if problems or checked < 150 else 0


if __name__ == "__main__":
    sys.exit(main())
