"""The servers and the load generator of the benchmark scripts (compare.py, large_delete.py,
perf_profile.py, compaction_stall.py): start cairn, etcd or the do-nothing server on fresh data
dirs and ephemeral loopback ports (Target), run cairn-bench against them (run_bench), and kill
every process started, also on error or interrupt. Python stdlib only.
"""
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ---------------------------------------------------------------------------------------------
# Processes


_children = []  # every Popen we started and have not reaped


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the child gets SIGKILL when this driver dies, even by SIGKILL.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def spawn(cmd, log_path=None, env=None, stdout=None, stderr=None):
    out = open(log_path, "ab") if log_path else stdout
    p = subprocess.Popen(cmd, stdout=out if out is not None else subprocess.DEVNULL,
                         stderr=stderr if stderr is not None else (out or subprocess.DEVNULL),
                         env=env, preexec_fn=_die_with_parent)
    _children.append(p)
    return p


def stop_process(p, timeout=15):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in _children:
        _children.remove(p)


def kill_all_children():
    for p in list(_children):
        try:
            p.kill()
            p.wait(timeout=5)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
    _children.clear()


def _on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def free_ports(n):
    """Ports picked by binding 127.0.0.1:0 (released before the server binds: a race is
    possible; start() retries with new ports)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def rss_bytes(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# ---------------------------------------------------------------------------------------------
# Targets


class Target:
    """One server under test: `kind` is cairn, etcd or noop; `members` 1 or 3."""

    def __init__(self, kind, members, args, workdir, auth="none"):
        self.kind, self.members, self.args = kind, members, args
        self.auth = auth  # none, simple or jwt (see enable_auth)
        self.workdir = workdir
        self.procs = []
        self.endpoints = []
        self.data_dirs = []
        self.cmds = []
        self.logs, self.log_offsets = [], []
        self.error = ""

    def _commands(self, client_ports, peer_ports, token):
        names = ["m%d" % i for i in range(self.members)]
        cluster = ",".join("%s=http://127.0.0.1:%d" % (n, p) for n, p in zip(names, peer_ports))
        cmds = []
        for i, name in enumerate(names):
            client = "http://127.0.0.1:%d" % client_ports[i]
            peer = "http://127.0.0.1:%d" % peer_ports[i]
            common = ["--name", name, "--data-dir", self.data_dirs[i],
                      "--listen-client-urls", client, "--advertise-client-urls", client,
                      "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
                      "--initial-cluster-state", "new", "--initial-cluster-token", token]
            if self.auth == "jwt":
                common += ["--auth-token", jwt_spec(self.args)]
            if self.kind == "etcd":
                cmds.append([self.args.etcd] + common + [
                    "--listen-peer-urls", peer, "--logger", "zap", "--log-level", "error",
                    "--quota-backend-bytes", str(8 * 1024 ** 3)])
            else:
                # info: the line cairn logs at stop carries its WAL entry and fsync counts (the
                # fallback when /metrics is not served on the client URL).
                # The same quota as etcd's above: the 10M-key loads pass the 2 GiB default.
                cmd = [self.args.cairn] + common + ["--log-level", "info",
                                                    "--quota-backend-bytes", str(8 * 1024 ** 3)]
                if self.members > 1:
                    cmd += ["--listen-peer-urls", peer]
                cmds.append(cmd)
        return cmds

    def start(self, reuse_data=False):
        """Starts the target and waits until a linearizable read succeeds. Returns the seconds
        from exec to ready, or None (then self.error says why)."""
        if self.kind == "noop":
            log = os.path.join(self.workdir, "noop.log")
            p = spawn([self.args.noop, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                      stderr=open(log, "ab"))
            line = p.stdout.readline().decode().strip()
            if not line.startswith("listening on "):
                self.error = "noop server did not start"
                return None
            self.procs = [p]
            self.endpoints = [line[len("listening on "):]]
            return 0.0
        for attempt in range(3):
            if not reuse_data:
                for d in self.data_dirs:
                    shutil.rmtree(d, ignore_errors=True)
                self.data_dirs = [os.path.join(self.workdir, "%s-m%d-%d" % (self.kind, i, attempt))
                                  for i in range(self.members)]
                ports = free_ports(2 * self.members)
                self.cmds = self._commands(ports[:self.members], ports[self.members:],
                                           "bench-%d-%d" % (os.getpid(), attempt))
                self.endpoints = ["127.0.0.1:%d" % p for p in ports[:self.members]]
            t0 = time.monotonic()
            self.logs = [os.path.join(self.workdir, "%s-m%d.log" % (self.kind, i))
                         for i in range(len(self.cmds))]
            self.log_offsets = [os.path.getsize(p) if os.path.exists(p) else 0 for p in self.logs]
            self.procs = [spawn(c, log_path=p) for c, p in zip(self.cmds, self.logs)]
            ready = self._wait_ready(self.args.start_timeout)
            if ready:
                return time.monotonic() - t0
            self.stop()
            if reuse_data:
                break
        return None

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                self.error = "%s exited with status %d at start (%d members)" % (
                    self.kind, dead[0].returncode, self.members)
                return False
            r = run_bench(self.args, self.endpoints, "range", ["--total=1", "--dial-timeout=0.5"],
                          quiet=True)
            if r and r.get("ops", {}).get("ok") == 1:
                return True
            time.sleep(0.05)
        self.error = "%s not ready within %.0f s" % (self.kind, timeout)
        return False

    def enable_auth(self):
        """With auth (simple or jwt): users root and bench (read-write on every key from "0",
        which covers the generated keys: a real permission check, not root's shortcut), then
        auth enable. Returns cairn-bench's flags for bench, or None (self.error says why)."""
        if self.auth == "none":
            return []
        for cmd in (["user", "add", "root:rootpw"], ["user", "grant-role", "root", "root"],
                    ["role", "add", "bench"],
                    ["role", "grant-permission", "bench", "readwrite", "0", "--from-key"],
                    ["user", "add", "bench:benchpw"], ["user", "grant-role", "bench", "bench"],
                    ["auth", "enable"]):
            p = subprocess.run([self.args.etcdctl, "--endpoints=" + ",".join(self.endpoints)] + cmd,
                               capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                self.error = "etcdctl %s: %s" % (" ".join(cmd), p.stderr.strip())
                return None
        return ["--user=bench:benchpw"]

    def stop(self):
        for p in self.procs:
            stop_process(p)
        self.procs = []

    def cleanup(self):
        self.stop()
        for d in self.data_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self.data_dirs = []

    def metrics_wal_counts(self):
        """etcd or cairn, running: (entries, fsyncs) summed over members since start, from
        /metrics on the client URLs (the commit index, which every member's WAL holds, and the
        WAL fsync histogram's count; both export etcd's names). None if /metrics is not served."""
        entries = fsyncs = 0
        for ep in self.endpoints:
            try:
                with urllib.request.urlopen("http://%s/metrics" % ep, timeout=5) as r:
                    text = r.read().decode()
            except (OSError, http.client.HTTPException, UnicodeDecodeError):
                # A port that speaks only HTTP/2 (gRPC) answers HTTP/1.1 with garbage.
                return None
            m = dict(re.findall(r"^(etcd_server_proposals_committed_total|"
                                r"etcd_disk_wal_fsync_duration_seconds_count) (\S+)$", text, re.M))
            if len(m) != 2:
                return None
            entries += float(m["etcd_server_proposals_committed_total"])
            fsyncs += float(m["etcd_disk_wal_fsync_duration_seconds_count"])
        return entries, fsyncs

    def cairn_wal_counts(self):
        """cairn, stopped: (entries, fsyncs) summed over members since start, from the line each
        member logs when it stops. The fallback for a cairn that does not serve /metrics."""
        entries = fsyncs = 0
        for path, offset in zip(self.logs, self.log_offsets):
            with open(path, "rb") as f:
                f.seek(offset)
                found = re.findall(rb"wrote (\d+) WAL entries in (\d+) WAL fsyncs", f.read())
            if not found:
                return None
            entries += int(found[-1][0])
            fsyncs += int(found[-1][1])
        return entries, fsyncs

    def rss(self):
        vals = [rss_bytes(p.pid) for p in self.procs]
        return sum(v for v in vals if v is not None) if vals else None

    def settled_rss(self, timeout=10.0, interval=0.1):
        """RSS once it has stopped moving: two samples `interval` apart that differ by less than
        RSS_SETTLED_BYTES (a server frees and maps memory for a moment after a load or a
        start). After `timeout` without that, the last sample (memory still moving)."""
        deadline = time.monotonic() + timeout
        last = self.rss()
        while time.monotonic() < deadline:
            time.sleep(interval)
            now = self.rss()
            if last is not None and now is not None and abs(now - last) < RSS_SETTLED_BYTES:
                return now
            last = now
        return last


RSS_SETTLED_BYTES = 256 << 10


# ---------------------------------------------------------------------------------------------
# cairn-bench runs


def run_bench(args, endpoints, workload, flags, quiet=False, timeout=900, on_created=None):
    """Runs cairn-bench and returns its JSON result (None if it produced none). on_created() is
    called once the watch workload reports every watcher created (it needs --hold-ms)."""
    fd, path = tempfile.mkstemp(prefix="cairn-bench-", suffix=".json", dir=args.workdir_root)
    os.close(fd)
    cmd = [args.bench, "--endpoints=" + ",".join(endpoints), "--json=" + path] + flags + [workload]
    try:
        p = run_watching_stderr(cmd, timeout, on_created) if on_created else subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout)
        if not quiet and p.returncode not in (0, 1):
            sys.stderr.write("cairn-bench failed (%d): %s\n%s" % (p.returncode, cmd, p.stderr))
        with open(path) as f:
            text = f.read().strip()
        return json.loads(text) if text else None
    except (subprocess.TimeoutExpired, ValueError, OSError) as e:
        if not quiet:
            sys.stderr.write("cairn-bench %s: %s\n" % (workload, e))
        return None
    finally:
        os.unlink(path)


def run_watching_stderr(cmd, timeout, on_created):
    """subprocess.run for cairn-bench watch, calling on_created() at "watchers created"."""
    p = spawn(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = []
    try:
        deadline = time.monotonic() + timeout
        for line in p.stderr:
            err.append(line.decode(errors="replace"))
            if b"watchers created" in line:
                on_created()
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(cmd, timeout)
        p.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        stop_process(p)
    return subprocess.CompletedProcess(cmd, p.returncode, "", "".join(err))


# Preloads: (workload, flags) runs of cairn-bench before the measured one.
def preload_keys(count, prefix="", val_size=256, key_size=8):
    txn_ops = 100 if count >= 100 else count
    return [("txn-put", ["--txn-ops=%d" % txn_ops, "--total=%d" % (count // txn_ops),
                         "--sequential-keys", "--key-space-size=%d" % count,
                         "--key-size=%d" % key_size, "--val-size=%d" % val_size,
                         "--key-prefix=" + prefix, "--clients=10", "--conns=2"])]


def summarize_run(res):
    """The figures of one run, or a dict with 'na' set."""
    if res is None:
        return {"na": "no result"}
    if res.get("error"):
        return {"na": "error: " + res["error"]}
    main = res["events"] if "events" in res else res["ops"]
    errors = dict(res["ops"]["errors"])
    if "events" in res:
        for k, v in res["events"]["errors"].items():
            errors[k] = errors.get(k, 0) + v
    if main["ok"] == 0:
        if "UNIMPLEMENTED" in errors:
            return {"na": "n/a (unimplemented)", "errors": errors}
        if "events" in res and res.get("events_expected", 0) > 0 and not errors:
            return {"na": "n/a (no events delivered)", "errors": errors}
        return {"na": "n/a (no successful op)", "errors": errors}
    lat = main["latency_ms"]
    out = {"throughput": main["throughput"], "p50": lat["p50"], "p90": lat["p90"],
           "p99": lat["p99"], "p99.9": lat["p99.9"], "max": lat["max"], "ok": main["ok"],
           "errors": errors,
           "events_missing": (res.get("events_expected", 0) - main["ok"]) if "events" in res
           else 0}
    if "events" in res:  # the puts of a watch workload
        puts = res["ops"]
        out.update({"put_throughput": puts["throughput"], "put_p50": puts["latency_ms"]["p50"],
                    "put_p99": puts["latency_ms"]["p99"]})
    return out


def jwt_spec(a):
    """--auth-token for jwt runs: an RS256 key pair made once by openssl in the work dir."""
    key = os.path.join(a.workdir_root, "jwt.key")
    pub = os.path.join(a.workdir_root, "jwt.pub")
    if not os.path.exists(pub):
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", key], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True,
                       capture_output=True)
    return "jwt,pub-key=%s,priv-key=%s,sign-method=RS256" % (pub, key)


def log(msg):
    sys.stderr.write(time.strftime("%H:%M:%S ") + msg + "\n")
    sys.stderr.flush()
