"""/metrics as a real Prometheus parser reads it (Debian's python3-prometheus-client): the text a
real member renders (written by cairn_metrics_dump before and after some requests) parses, has
etcd's names and buckets, and its counters moved with the requests."""

import os
import subprocess
import tempfile

from prometheus_client.parser import text_string_to_metric_families


def parse(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family
    return families


def value(families, name, sample_name=None, **labels):
    family = families[name]
    total = 0.0
    found = False
    for s in family.samples:
        if s.name == (sample_name or name) and all(s.labels.get(k) == v for k, v in labels.items()):
            total += s.value
            found = True
    assert found, (name, sample_name, labels)
    return total


def dump():
    tmp = tempfile.mkdtemp(prefix="cairn-metrics-")
    before, after = os.path.join(tmp, "before.txt"), os.path.join(tmp, "after.txt")
    subprocess.run([os.environ["CAIRN_METRICS_DUMP"], before, after], check=True, timeout=120)
    return parse(before), parse(after)


BEFORE, AFTER = dump()


def test_families_have_etcd_names_and_types():
    expected = {
        # prometheus_client strips _total from counter family names.
        "etcd_server_has_leader": "gauge",
        "etcd_server_is_leader": "gauge",
        "etcd_server_leader_changes_seen": "counter",
        "etcd_server_proposals_committed_total": "gauge",
        "etcd_server_proposals_applied_total": "gauge",
        "etcd_server_proposals_pending": "gauge",
        "etcd_server_proposals_failed": "counter",
        "etcd_disk_wal_fsync_duration_seconds": "histogram",
        "etcd_disk_backend_commit_duration_seconds": "histogram",
        "etcd_mvcc_db_total_size_in_bytes": "gauge",
        "etcd_debugging_mvcc_keys_total": "gauge",
        "etcd_mvcc_watcher_total": "gauge",
        "grpc_server_handled": "counter",
        "grpc_server_started": "counter",
        "process_cpu_seconds": "counter",
        "process_resident_memory_bytes": "gauge",
        "process_open_fds": "gauge",
        "process_max_fds": "gauge",
        "process_start_time_seconds": "gauge",
    }
    for name, kind in expected.items():
        assert name in AFTER, name
        assert AFTER[name].type == kind, (name, AFTER[name].type)


def test_histograms_have_etcds_buckets():
    for name in ("etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds"):
        buckets = [s for s in AFTER[name].samples if s.name == name + "_bucket"]
        les = [s.labels["le"] for s in buckets]
        # etcd's buckets: 0.001 * 2^i, 14 of them, then +Inf.
        assert les[:-1] == ["0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064",
                            "0.128", "0.256", "0.512", "1.024", "2.048", "4.096", "8.192"]
        assert les[-1] == "+Inf"
        counts = [s.value for s in buckets]
        assert counts == sorted(counts), "buckets are cumulative"
        assert counts[-1] == value(AFTER, name, name + "_count")


def test_counters_moved_with_the_requests():
    member = {"grpc_service": "etcdserverpb.KV", "grpc_type": "unary"}
    put_ok_before = value(BEFORE, "grpc_server_handled", "grpc_server_handled_total",
                          grpc_method="Put", grpc_code="OK", **member)
    put_ok_after = value(AFTER, "grpc_server_handled", "grpc_server_handled_total",
                         grpc_method="Put", grpc_code="OK", **member)
    assert put_ok_after - put_ok_before == 20
    assert value(AFTER, "grpc_server_handled", "grpc_server_handled_total", grpc_method="Put",
                 grpc_code="InvalidArgument", **member) == 1
    assert value(AFTER, "grpc_server_started", "grpc_server_started_total", grpc_method="Put",
                 **member) == 21
    assert value(AFTER, "grpc_server_handled", "grpc_server_handled_total", grpc_method="Range",
                 grpc_code="OK", **member) == 1
    applied = "etcd_server_proposals_applied_total"
    assert value(AFTER, applied) >= value(BEFORE, applied) + 20
    fsyncs = ("etcd_disk_wal_fsync_duration_seconds", "etcd_disk_wal_fsync_duration_seconds_count")
    assert value(AFTER, *fsyncs) > value(BEFORE, *fsyncs)
    commits = ("etcd_disk_backend_commit_duration_seconds",
               "etcd_disk_backend_commit_duration_seconds_count")
    assert value(AFTER, *commits) >= value(BEFORE, *commits) + 20
    assert value(AFTER, "etcd_debugging_mvcc_keys_total") >= 20
    assert value(AFTER, "etcd_mvcc_watcher_total") == 1
    assert value(AFTER, "etcd_server_has_leader") == 1
    assert value(AFTER, "etcd_server_is_leader") == 1
    assert value(AFTER, "etcd_server_leader_changes_seen", "etcd_server_leader_changes_seen_total") >= 1
    assert value(AFTER, "process_open_fds") > 0
    assert value(AFTER, "process_resident_memory_bytes") > 0
