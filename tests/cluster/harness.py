"""Shared by the cluster tests: `hangar server` processes on loopback, each
with its own directory, ports and configuration file, driven through the
admin API and the CLI. Every wait is bounded."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "robustness"))
from common import HANGAR_BIN  # noqa: E402

SECRET = os.urandom(32).hex()
TOKEN = "cluster-test-admin-token-" + os.urandom(8).hex()
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({})).open


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, root, name, secret=SECRET):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.secret = secret
        self.rpc_port = free_port(socket.SOCK_DGRAM)
        self.s3_port = free_port()
        self.admin_port = free_port()
        self.bootstrap = []
        self.proc = None
        self.id = None
        self.extra = ""  # more top-level configuration lines
        self.data_dirs = None  # [(subdirectory, capacity)] in place of the one "data"
        self.public_port = None  # a relay in front of rpc_port, if any
        self.fsync = False  # metadata_fsync and data_fsync
        self.env = {}  # more environment for the server (e.g. LD_PRELOAD of libfaketime)

    @property
    def admin_url(self):
        return f"http://127.0.0.1:{self.admin_port}"

    def write_config(self):
        peers = ", ".join(f'"{p}"' for p in self.bootstrap)
        if self.data_dirs:
            dirs = ", ".join(f'{{ path = "{self.dir}/{d}", capacity_bytes = {c} }}' for d, c in self.data_dirs)
            data = f"data_dir = [{dirs}]"
        else:
            data = f'data_dir = "{self.dir}/data"'
        with open(os.path.join(self.dir, "hangar.toml"), "w") as f:
            f.write(f"""
metadata_dir = "{self.dir}/meta"
{data}
metadata_fsync = {str(self.fsync).lower()}
data_fsync = {str(self.fsync).lower()}
rpc_secret = "{self.secret}"
rpc_bind_addr = "127.0.0.1:{self.rpc_port}"
bootstrap_peers = [{peers}]
{f'rpc_public_addr = "127.0.0.1:{self.public_port}"' if self.public_port else ""}
{self.extra}
[s3_api]
bind_addr = "127.0.0.1:{self.s3_port}"
[admin]
bind_addr = "127.0.0.1:{self.admin_port}"
admin_token = "{TOKEN}"
""")

    def start(self, attempts=3):
        """Starts the server and waits for its admin API. Ports are picked free
        beforehand, so another process may take one first: a start that fails
        on an address in use is retried with new ports (the RPC port only on a
        node's first start, since peers know it afterwards)."""
        for attempt in range(attempts):
            self.write_config()
            log = open(os.path.join(self.dir, "server.log"), "ab")
            self.proc = subprocess.Popen([HANGAR_BIN, "server", "--config", os.path.join(self.dir, "hangar.toml")],
                                         stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
            deadline = time.time() + 30
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    info = self.api("GET", "/v2/GetNodeInfo?node=self")["success"]
                    self.id = next(iter(info.values()))["nodeId"]
                    return
                except (OSError, urllib.error.URLError, KeyError, StopIteration):
                    time.sleep(0.1)
            else:
                raise SystemExit(f"{self.name} did not start: {self.log_tail()}")
            tail = self.log_tail()
            if "in use" not in tail.lower() or attempt + 1 == attempts:
                raise SystemExit(f"{self.name} exited: {tail}")
            print(f"[cluster] note {self.name}: a port was taken before the server bound it; retrying with new ports")
            self.s3_port, self.admin_port = free_port(), free_port()
            if self.id is None:
                self.rpc_port = free_port(socket.SOCK_DGRAM)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20) == 0
            except subprocess.TimeoutExpired:
                self.kill()
                return False
        return True

    def log_tail(self, n=30):
        """The last `n` lines of the server log, backtrace frames left out (an
        error's backtrace would otherwise hide its message)."""
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        frame = re.compile(r"^\s+(\d+: |at )")
        return "\n".join([l for l in lines if not frame.match(l)][-n:])

    def api(self, method, path, body=None, token=TOKEN):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.admin_url + path, data=data, method=method)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with OPENER(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def status(self):
        return self.api("GET", "/v2/GetClusterStatus")

    def up_ids(self):
        try:
            return {n["id"] for n in self.status()["nodes"] if n["isUp"]}
        except (OSError, urllib.error.URLError):
            return set()

    def cli(self, *args):
        env = dict(os.environ, HANGAR_ADMIN_URL=self.admin_url, HANGAR_ADMIN_TOKEN=TOKEN)
        r = subprocess.run([HANGAR_BIN, *args], env=env, capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout + r.stderr


def wait_for(limit, cond, step=0.1):
    """Seconds until cond() held, or None if it did not within `limit`."""
    start = time.time()
    while time.time() - start < limit:
        if cond():
            return time.time() - start
        time.sleep(step)
    return None


def fmt(t):
    return "never" if t is None else f"{t:.1f} s"


KEY_ID = "HKclustertests0001"
KEY_SECRET = "cluster-tests-secret-" + os.urandom(8).hex()


def form_cluster(nodes, zones, wait=20):
    """Starts `nodes` (the first bootstraps the others), assigns each the zone
    in `zones` (None: a gateway), applies layout version 1, and imports a key
    allowed to create buckets. Raises SystemExit on any failure."""
    nodes[0].start()
    boot = f"{nodes[0].id}@127.0.0.1:{nodes[0].public_port or nodes[0].rpc_port}"
    for n in nodes[1:]:
        n.bootstrap = [boot]
        n.start()
    ids = {n.id for n in nodes}
    if wait_for(wait, lambda: all(n.up_ids() == ids for n in nodes)) is None:
        raise SystemExit("the nodes did not all see each other")
    for n, z in zip(nodes, zones):
        role = ["-z", z or "dc0", "-g"] if z is None else ["-z", z, "-c", "100G"]
        code, out = nodes[0].cli("layout", "assign", n.id[:12], *role)
        if code != 0:
            raise SystemExit(f"layout assign {n.name}: {out}")
    code, out = nodes[0].cli("layout", "apply", "--version", "1")
    if code != 0:
        raise SystemExit(f"layout apply: {out}")
    if wait_for(wait, lambda: all(n.status()["layoutVersion"] == 1 for n in nodes)) is None:
        raise SystemExit("layout version 1 did not reach every node")
    for args in (("key", "import", KEY_ID, KEY_SECRET, "--name", "cluster-tests"),
                 ("key", "allow", KEY_ID, "--create-bucket")):
        code, out = nodes[0].cli(*args)
        if code != 0:
            raise SystemExit(f"{' '.join(args[:2])}: {out}")


def s3(node):
    """A boto3 client for `node`'s S3 endpoint, signing with the test key."""
    import boto3
    from botocore.config import Config
    return boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{node.s3_port}", region_name="hangar",
        aws_access_key_id=KEY_ID, aws_secret_access_key=KEY_SECRET,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      connect_timeout=5, read_timeout=30))


def cross_node_checks(checks, nodes, bucket):
    """Writes through each node and reads, lists and deletes through the
    others: any node serves any request, and read-after-write holds."""
    clients = [s3(n) for n in nodes]
    clients[0].create_bucket(Bucket=bucket)
    for i, c in enumerate(clients):
        c.head_bucket(Bucket=bucket)
    bodies = {}
    for i, c in enumerate(clients):
        for size in (10, 50_000, 3 << 20):
            key = f"from-{nodes[i].name}/{size}"
            bodies[key] = os.urandom(size)
            c.put_object(Bucket=bucket, Key=key, Body=bodies[key])
    wrong = []
    for j, c in enumerate(clients):
        for key, body in bodies.items():
            got = c.get_object(Bucket=bucket, Key=key)["Body"].read()
            if got != body:
                wrong.append(f"{key} via {nodes[j].name}")
    checks.check(f"{len(bodies)} objects written through {len(nodes)} nodes read back intact through every node",
                 not wrong, ", ".join(wrong[:5]))
    listings = []
    for c in clients:
        keys = sorted(o["Key"] for o in c.list_objects_v2(Bucket=bucket).get("Contents", []))
        listings.append(keys)
    checks.check("every node lists every object at once", all(l == sorted(bodies) for l in listings),
                 str([len(l) for l in listings]))
    # Delete through a node other than the writer; gone everywhere at once.
    for i, key in enumerate(sorted(bodies)):
        clients[(i + 1) % len(clients)].delete_object(Bucket=bucket, Key=key)
    left = [len(c.list_objects_v2(Bucket=bucket).get("Contents", [])) for c in clients]
    checks.check("objects deleted through other nodes are gone from every listing", left == [0] * len(clients), str(left))
    missing = 0
    for c in clients:
        try:
            c.get_object(Bucket=bucket, Key=sorted(bodies)[0])
        except c.exceptions.NoSuchKey:
            missing += 1
    checks.check("a deleted object is NoSuchKey through every node", missing == len(clients), f"{missing}/{len(clients)}")
    clients[-1].delete_bucket(Bucket=bucket)
    gone = []
    for c in clients:
        try:
            c.head_bucket(Bucket=bucket)
            gone.append(False)
        except Exception:  # 404 through botocore's generic ClientError
            gone.append(True)
    checks.check("a bucket deleted through one node is gone through every node", all(gone), str(gone))


TABLES = 7
PARTITIONS = 256


def roots_disagreement(nodes):
    """The (table, partition) pairs whose holders among `nodes` report
    different Merkle summary roots (GET /v2/GetTableRoots), and how many
    pairs were reported at all."""
    seen = {}
    for n in nodes:
        for t in n.api("GET", "/v2/GetTableRoots")["tables"]:
            for p, root in t["partitions"].items():
                seen.setdefault((t["table"], int(p)), set()).add(root)
    return sorted(k for k, roots in seen.items() if len(roots) > 1), len(seen)


def check_roots_agree(checks, label, nodes, limit=90):
    """Starts an anti-entropy pass on every node, then checks that every
    table partition's holders reach equal Merkle roots within `limit` s."""
    for n in nodes:
        n.cli("repair", "tables")
    bad, covered = [], [0]

    def agree():
        bad[:], covered[0] = roots_disagreement(nodes)
        return not bad and covered[0] == TABLES * PARTITIONS
    t = wait_for(limit, agree, step=1)
    checks.check(f"{label}: every table partition has equal Merkle roots on all its holders", t is not None,
                 f"{fmt(t)}; {covered[0]} partitions of {TABLES} tables compared; differing: {bad[:4]}")


def check_clean_stops(checks, nodes, label=""):
    """Stops every node with SIGTERM and checks each stops cleanly without a
    panic in its log."""
    prefix = f"{label}: " if label else ""
    for n in nodes:
        checks.check(f"{prefix}{n.name} stops cleanly", n.stop())
        panics = [l for l in n.log_tail(100000).splitlines() if "panic" in l.lower()]
        checks.check(f"{prefix}no panic in {n.name}'s log", not panics, "; ".join(panics[:2]))
