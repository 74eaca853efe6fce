"""Operator output of the real `cairn` binary: at the default level a few lines at start (version,
member and cluster id, data dir, the URLs served, "ready to serve client requests") and one at a
clean stop; --log-format json writes one JSON object per line with etcd's zap fields; startup
errors name the flag or file at fault."""

import json
import os
import signal
import subprocess
import tempfile
import time

CAIRN = os.environ["CAIRN_BINARY"]


def start(args, data_dir):
    return subprocess.Popen([CAIRN, "--data-dir", data_dir, "--listen-client-urls",
                             "http://127.0.0.1:0"] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def collect(args, when_ready=None):
    with tempfile.TemporaryDirectory(prefix="cairn-ops-") as d:
        data = os.path.join(d, "data")
        p = start(args, data)
        lines = []
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = p.stderr.readline()
                if not line:
                    break
                lines.append(line.rstrip("\n"))
                if "ready to serve client requests" in line:
                    break
            if when_ready is not None:
                when_ready(lines)
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=60)
            lines += err.splitlines()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        return lines, p.returncode, data


def put_keys(lines):
    """Writes a few keys with etcdctl: requests log nothing at the default level."""
    served = [l for l in lines if "serving client requests on " in l]
    endpoint = served[0].split("serving client requests on ")[1]
    for i in range(3):
        subprocess.run(["etcdctl", "--endpoints", endpoint, "put", "k%d" % i, "v"], check=True,
                       capture_output=True, timeout=60, env=dict(os.environ, ETCDCTL_API="3"))


def test_default_output_is_a_few_lines_at_start_and_one_at_stop():
    lines, rc, data = collect([], when_ready=put_keys)
    assert rc == 0, lines
    text = "\n".join(lines)
    assert 4 <= len(lines) <= 10, lines
    assert "starting cairn " in text and "data-dir=" + data in text, text
    assert " of cluster " in text and "started" in text, text  # member and cluster ids
    assert "serving client requests on 127.0.0.1:" in text, text
    assert "ready to serve client requests" in text, text
    stops = [l for l in lines if "stopped cleanly" in l]
    assert len(stops) == 1 and lines[-1] == stops[0], lines
    assert all(l.startswith("time=") and " level=info " in l for l in lines), lines


def test_json_format_has_zap_fields():
    lines, rc, _ = collect(["--log-format", "json"])
    assert rc == 0, lines
    records = [json.loads(l) for l in lines]
    for r in records:
        assert set(r) >= {"level", "ts", "caller", "msg"}, r
        assert r["level"] == "info"
        assert r["ts"].endswith("Z") and "T" in r["ts"]
        assert ".cc:" in r["caller"], r
    msgs = [r["msg"] for r in records]
    assert "ready to serve client requests" in msgs, msgs
    assert msgs[-1].startswith("stopped cleanly"), msgs
    assert records[-1]["caller"].startswith("etcdserver/server.cc:"), records[-1]


def test_startup_errors_name_the_flag_or_file():
    bad_flag = subprocess.run([CAIRN, "--log-format", "xml"], capture_output=True, text=True,
                              timeout=60)
    assert bad_flag.returncode == 2
    assert "--log-format" in bad_flag.stderr, bad_flag.stderr
    with tempfile.TemporaryDirectory(prefix="cairn-ops-") as d:
        not_a_dir = os.path.join(d, "file")
        with open(not_a_dir, "w") as f:
            f.write("x")
        r = subprocess.run([CAIRN, "--data-dir", not_a_dir, "--listen-client-urls",
                            "http://127.0.0.1:0"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stderr
        assert not_a_dir in r.stderr and "level=error" in r.stderr, r.stderr
