#!/usr/bin/env python3
"""A real cluster of `hangar server` processes on loopback.

- 5 nodes, each told only about node 0, all see each other within 10 s.
- The operator assigns 3 zones with the CLI and applies: every node shows the
  new layout version.
- Objects written through each node are read back intact, listed and deleted
  through every other node (replication factor 3).
- A node killed with SIGKILL is shown down within 5 s, and up again within 5 s
  of its restart; a node restarted on a new port is found again.
- A node with another rpc_secret never joins and learns nothing; garbage
  datagrams on a node's QUIC port change nothing; the admin API refuses missing
  and wrong tokens.

Every wait is bounded; every process is killed at the end.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "robustness"))
from common import Checks  # noqa: E402
from harness import (KEY_ID, KEY_SECRET, Node, check_clean_stops, check_roots_agree, cross_node_checks,  # noqa: E402
                     free_port, wait_for, fmt)


def main():
    checks = Checks("cluster")
    root = tempfile.mkdtemp(prefix="hangar-cluster.")
    nodes = [Node(root, f"n{i}") for i in range(5)]
    intruder = Node(root, "intruder", secret=os.urandom(32).hex())
    try:
        nodes[0].start()
        boot = f"{nodes[0].id}@127.0.0.1:{nodes[0].rpc_port}"
        code, out = nodes[0].cli("node", "id")
        checks.check("hangar node id prints id@addr", code == 0 and boot in out, out.strip())
        start = time.time()
        for n in nodes[1:]:
            n.bootstrap = [boot]
            n.start()
        ids = {n.id for n in nodes}
        t = wait_for(10, lambda: all(n.up_ids() == ids for n in nodes))
        checks.check("5 nodes told of one peer all see each other within 10 s", t is not None,
                     f"{time.time() - start:.1f} s after starting nodes 1-4")

        # The operator assigns 3 zones and applies.
        zones = ["paris", "paris", "lyon", "lyon", "brest"]
        ok = True
        for n, z in zip(nodes, zones):
            code, out = nodes[1].cli("layout", "assign", n.id[:12], "-z", z, "-c", "100G")
            ok = ok and code == 0
            if code != 0:
                print(out)
        code, show = nodes[2].cli("layout", "show")
        checks.check("layout show prints the staged diff", code == 0 and "brest" in show, show[-500:])
        code, out = nodes[3].cli("layout", "apply", "--version", "1")
        checks.check("layout assign and apply succeed", ok and code == 0, out[-300:])
        t = wait_for(10, lambda: all(n.status()["layoutVersion"] == 1 for n in nodes))
        checks.check("every node shows layout version 1", t is not None, fmt(t))

        def acked(version):
            trackers = nodes[0].api("GET", "/v2/GetClusterLayoutHistory")["updateTrackers"]
            return all(trackers.get(n.id, {}).get("ack", 0) >= version for n in nodes)
        t = wait_for(10, lambda: acked(1))
        checks.check("every node acknowledges layout version 1 within 10 s", t is not None, fmt(t))
        code, out = nodes[0].cli("layout", "history")
        checks.check("layout history shows the current version and each node's trackers",
                     code == 0 and "current" in out and "SYNC ACK" in out and nodes[4].id[:16] in out, out[-700:])
        # Objects through the 5 nodes of 3 zones (replication factor 3).
        for args in (("key", "import", KEY_ID, KEY_SECRET, "--name", "cluster-tests"),
                     ("key", "allow", KEY_ID, "--create-bucket")):
            code, out = nodes[0].cli(*args)
            checks.check(f"hangar {' '.join(args[:2])} succeeds", code == 0, out.strip()[-200:])
        cross_node_checks(checks, nodes, "five-nodes")
        check_roots_agree(checks, "after the cross-node checks", nodes)

        code, out = nodes[4].cli("status")
        checks.check("hangar status lists 5 nodes in 3 zones", code == 0 and all(z in out for z in zones)
                     and out.count("up") >= 5, out[-800:])

        # SIGKILL, then restart.
        victim = nodes[4]
        victim.kill()
        t = wait_for(10, lambda: all(victim.id not in n.up_ids() for n in nodes[:4]))
        checks.check("a SIGKILLed node is shown down within 5 s", t is not None and t <= 5, fmt(t))
        victim.start()
        t = wait_for(10, lambda: all(victim.id in n.up_ids() for n in nodes[:4]))
        checks.check("it is up again within 5 s of its restart", t is not None and t <= 5, fmt(t))

        # Restart on a new port.
        mover = nodes[3]
        mover.stop()
        mover.rpc_port = free_port(socket.SOCK_DGRAM)
        mover.bootstrap = []  # only its saved peer list
        mover.start()
        t = wait_for(10, lambda: all(mover.id in n.up_ids() for n in nodes if n is not mover))
        addrs = {n.name: next((x.get("addr") for x in n.status()["nodes"] if x["id"] == mover.id), None)
                 for n in nodes if n is not mover}
        checks.check("a node restarted on a new port is found again", t is not None
                     and all(a and a.endswith(f":{mover.rpc_port}") for a in addrs.values()), f"{fmt(t)} {addrs}")

        # A node with another secret.
        intruder.bootstrap = [boot]
        intruder.start()
        code, out = intruder.cli("node", "connect", f"{nodes[1].id}@127.0.0.1:{nodes[1].rpc_port}")
        checks.check("node connect with a wrong secret fails", code != 0, out.strip()[-200:])
        time.sleep(3)
        known = {x["id"] for x in nodes[0].status()["nodes"]}
        checks.check("the intruder is unknown to the cluster", intruder.id not in known)
        seen = {x["id"] for x in intruder.status()["nodes"]}
        checks.check("the intruder learned nothing", seen <= {intruder.id, nodes[0].id} and intruder.up_ids() == {intruder.id},
                     str(seen))

        # Garbage on the QUIC port.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for size in (0, 1, 50, 1200, 1400, 65000):
                s.sendto(os.urandom(size), ("127.0.0.1", nodes[0].rpc_port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            # A QUIC long-header Initial with a bogus body.
            s.sendto(bytes([0xc3, 0, 0, 0, 1, 8]) + os.urandom(8) + bytes([8]) + os.urandom(1200), ("127.0.0.1", nodes[0].rpc_port))
        time.sleep(1)
        checks.check("garbage datagrams change nothing", nodes[0].proc.poll() is None and nodes[0].up_ids() == ids)
        code, out = nodes[2].cli("node", "connect", f"{nodes[0].id}@127.0.0.1:{nodes[0].rpc_port}")
        checks.check("node connect to a member succeeds", code == 0, out.strip()[-200:])

        # Admin tokens.
        for label, token in (("missing", None), ("wrong", "not-the-token-xxxxxxxx")):
            try:
                nodes[0].api("GET", "/v2/GetClusterStatus", token=token)
                checks.check(f"admin API refuses a {label} token", False)
            except urllib.error.HTTPError as e:
                checks.check(f"admin API refuses a {label} token", e.code in (401, 403), str(e.code))

        check_clean_stops(checks, nodes + [intruder])
    finally:
        for n in nodes + [intruder]:
            n.kill()
        if checks.failed:
            print(f"logs kept in {root}")
        else:
            subprocess.run(["rm", "-rf", root], check=False)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
