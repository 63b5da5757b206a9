#!/usr/bin/env python3
"""The real S3 clients against real clusters on loopback.

Each pass forms a fresh cluster and runs every real-client test (aws CLI,
rclone, restic, s3cmd, boto3) through one node:

- pass 1: 3 storage nodes in 3 zones (replication factor 3) plus a gateway
  node without capacity, through a storage node other than the one the key
  was created on;
- pass 2: the same, through the gateway, which stores nothing and forwards
  everything;
- pass 3: 5 storage nodes in 3 zones (replication factor 3), through the
  last one.

Before the clients, objects written through each node are read back (bytes
checked), listed and deleted through the others.

Every wait is bounded; every process is killed at the end.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "robustness"))
from common import Checks  # noqa: E402
from harness import KEY_ID, KEY_SECRET, TOKEN, Node, check_clean_stops, cross_node_checks, form_cluster  # noqa: E402

ZONES = ["paris", "lyon", "brest", None]
FIVE_ZONES = ["paris", "paris", "lyon", "lyon", "brest"]
CLIENT_LIMIT_SECS = 900


def run_clients(node):
    """Runs tests/clients/run-all.sh against `node`; returns (ok, output tail)."""
    env = dict(os.environ, HANGAR_SKIP_INSTALL="1",
               HANGAR_TARGET_ENDPOINT=f"http://127.0.0.1:{node.s3_port}",
               HANGAR_TARGET_ADMIN=node.admin_url, HANGAR_TARGET_ADMIN_TOKEN=TOKEN,
               HANGAR_TARGET_KEY_ID=KEY_ID, HANGAR_TARGET_SECRET=KEY_SECRET)
    script = os.path.join(HERE, "..", "clients", "run-all.sh")
    try:
        r = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=CLIENT_LIMIT_SECS)
    except subprocess.TimeoutExpired as e:
        return False, f"timed out after {CLIENT_LIMIT_SECS} s: {(e.stdout or '')[-2000:]}"
    out = r.stdout + r.stderr
    print(out, flush=True)
    return r.returncode == 0, "\n".join(l for l in out.splitlines() if l.startswith("clients:") or "FAILED" in l)


def one_pass(checks, root, label, through, zones=ZONES):
    nodes = [Node(root, f"{label}-n{i}") for i in range(len(zones))]
    try:
        form_cluster(nodes, zones)
        storage = sum(1 for z in zones if z)
        gateways = f" and {len(zones) - storage} gateway" if storage < len(zones) else ""
        checks.check(f"{label}: {storage} storage nodes (rf 3, 3 zones){gateways} form a cluster", True)
        cross_node_checks(checks, nodes, f"{label}-cross")
        ok, summary = run_clients(nodes[through])
        checks.check(f"{label}: every real client passes through {nodes[through].name}", ok, summary)
        check_clean_stops(checks, nodes, label)
    finally:
        for n in nodes:
            n.kill()


def main():
    checks = Checks("cluster-clients")
    root = tempfile.mkdtemp(prefix="hangar-cluster-clients.")
    try:
        one_pass(checks, root, "storage", through=1)
        one_pass(checks, root, "gateway", through=3)
        one_pass(checks, root, "five", through=4, zones=FIVE_ZONES)
    finally:
        if checks.failed:
            print(f"logs kept in {root}")
        else:
            subprocess.run(["rm", "-rf", root], check=False)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
