#!/usr/bin/env python3
"""Faults on a real cluster: 4 storage nodes in 3 zones (a: n0 n1, b: n2,
c: n3), replication factor 3, so every partition has one copy per zone.

Clients write through live nodes while, one after the other:

1. n2 is killed with SIGKILL, then restarted;
2. the whole zone a (n0, n1) is killed, then restarted;
3. n3 is cut off silently (its packets dropped with iptables, nothing
   refused): requests through the other nodes keep succeeding, p99 < 2 s;
4. a block file on n2 is corrupted: reads through n2 return the right bytes
   and the file is restored;
5. n1's metadata directory is deleted while it is down: it comes back as
   itself and rebuilds its metadata from the others;
6. a node is added, another removed and a capacity changed while clients
   write: every acknowledged object stays readable, and the old layout
   versions retire;
   n2 gets a second data directory and `hangar repair rebalance` moves
   about half of its blocks there; `hangar repair versions` releases nothing
   in use;
7. everything is deleted: the data directories empty after the grace delays.

After each fault heals: no acknowledged write is lost, no read returns wrong
bytes, every node lists the same objects, and every table partition has
equal Merkle roots on all its holders. Every wait and loop is bounded.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "robustness"))
from common import Checks  # noqa: E402
from harness import Node, check_clean_stops, check_roots_agree, form_cluster, s3, wait_for, fmt  # noqa: E402

BUCKET = "faults"
ZONES = ["a", "a", "b", "c"]
SIZES = [100, 20_000, 1_500_000]


class Writer:
    """Writes objects through `nodes` in turn from a thread, at most `limit`
    of them, recording what each acknowledged write stored and how long every
    request took."""

    def __init__(self, nodes, prefix, limit=400):
        self.nodes = list(nodes)
        self.prefix = prefix
        self.limit = limit
        self.acked = {}  # key -> md5 of the body
        self.failed = 0
        self.latencies = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        clients = [s3(n) for n in self.nodes]
        i = 0
        while not self.stop.is_set() and i < self.limit:
            key = f"{self.prefix}/{i:05d}"
            body = os.urandom(SIZES[i % len(SIZES)])
            c = clients[i % len(clients)]
            start = time.time()
            try:
                c.put_object(Bucket=BUCKET, Key=key, Body=body)
                self.acked[key] = hashlib.md5(body).hexdigest()
            except Exception:  # the fault may fail some writes; never the acknowledged ones
                self.failed += 1
            self.latencies.append(time.time() - start)
            i += 1
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(120)

    def p99(self):
        if not self.latencies:
            return 0.0
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def verify(checks, label, nodes, acked):
    """Every acknowledged object reads back byte-exact through every node in
    `nodes`, every node lists them all, and the replicas of every table
    partition converge to equal Merkle roots."""
    wrong, missing = [], []
    for n in nodes:
        c = s3(n)
        for key, md5 in acked.items():
            try:
                got = hashlib.md5(c.get_object(Bucket=BUCKET, Key=key)["Body"].read()).hexdigest()
                if got != md5:
                    wrong.append(f"{key}@{n.name}")
            except Exception as e:  # report, keep checking
                missing.append(f"{key}@{n.name}: {e}")
    checks.check(f"{label}: {len(acked)} acknowledged objects read back byte-exact through {len(nodes)} nodes",
                 not wrong and not missing, "; ".join((wrong + missing)[:3]))
    listings = {}
    for n in nodes:
        keys, token = set(), None
        for _ in range(1000):
            args = {"Bucket": BUCKET, "MaxKeys": 1000}
            if token:
                args["ContinuationToken"] = token
            r = s3(n).list_objects_v2(**args)
            keys |= {o["Key"] for o in r.get("Contents", [])}
            if not r.get("IsTruncated"):
                break
            token = r["NextContinuationToken"]
        listings[n.name] = keys
    same = len({frozenset(v) for v in listings.values()}) == 1
    covers = all(set(acked) <= v for v in listings.values())
    checks.check(f"{label}: every node lists the same objects, all acknowledged ones among them", same and covers,
                 str({k: len(v) for k, v in listings.items()}))
    check_roots_agree(checks, label, nodes)


class Cut:
    """Drops every packet to and from a node's RPC port (silent, not refused)."""

    def __init__(self, node):
        self.rules = [["OUTPUT", "-p", "udp", "--dport", str(node.rpc_port), "-j", "DROP"],
                      ["OUTPUT", "-p", "udp", "--sport", str(node.rpc_port), "-j", "DROP"]]

    def __enter__(self):
        for r in self.rules:
            subprocess.run(["iptables", "-I", *r], check=True)
        return self

    def __exit__(self, *exc):
        for r in self.rules:
            subprocess.run(["iptables", "-D", *r], check=False)


def data_bytes(node):
    """Bytes of block files under the node's data directory (not its identity
    copy, nor files set aside as corrupt, which are kept for the operator)."""
    total = 0
    for d in data_dirs(node):
        for root, _, files in os.walk(d):
            for f in files:
                if not f.startswith("node_key") and not f.endswith(".corrupted"):
                    total += os.path.getsize(os.path.join(root, f))
    return total


def data_dirs(node):
    return [os.path.join(node.dir, d) for d, _ in node.data_dirs or [("data", 1)]]


def block_files(node, subdir=None):
    out = []
    for d in [os.path.join(node.dir, subdir)] if subdir else data_dirs(node):
        for root, _, files in os.walk(d):
            out += [os.path.join(root, f) for f in files if len(f) == 64]
    return out


def worker_progress(node, name):
    for w in node.api("GET", "/v2/GetWorkerStatus")["workers"]:
        if w["name"] == name:
            return w["progress"]
    return ""


def main():
    checks = Checks("faults")
    root = tempfile.mkdtemp(prefix="hangar-faults.")
    nodes = [Node(root, f"n{i}") for i in range(4)]
    spare = Node(root, "n4")
    for n in nodes + [spare]:
        n.extra = "block_gc_delay_secs = 2"
    acked = {}
    try:
        form_cluster(nodes, ZONES)
        spare.bootstrap = nodes[0].bootstrap or [f"{nodes[0].id}@127.0.0.1:{nodes[0].rpc_port}"]
        s3(nodes[0]).create_bucket(Bucket=BUCKET)

        # 1. One node killed during writes.
        with Writer([nodes[0], nodes[1], nodes[3]], "kill-one") as w:
            time.sleep(2)
            nodes[2].kill()
            time.sleep(3)
            nodes[2].start()
            time.sleep(2)
        acked.update(w.acked)
        checks.check("1: writes keep succeeding with one node killed", w.failed == 0 and len(w.acked) > 20,
                     f"{len(w.acked)} acknowledged, {w.failed} failed")
        verify(checks, "1", nodes, acked)

        # 2. A whole zone killed during writes.
        with Writer([nodes[2], nodes[3]], "kill-zone") as w:
            time.sleep(2)
            nodes[0].kill()
            nodes[1].kill()
            time.sleep(4)
            nodes[0].start()
            nodes[1].start()
            time.sleep(2)
        acked.update(w.acked)
        checks.check("2: writes through the other zones keep succeeding with zone a killed",
                     w.failed == 0 and len(w.acked) > 20, f"{len(w.acked)} acknowledged, {w.failed} failed")
        verify(checks, "2", nodes, acked)

        # 3. A zone cut off silently.
        with Cut(nodes[3]):
            with Writer([nodes[0], nodes[1], nodes[2]], "cut", limit=150) as w:
                time.sleep(8)
            reads_ok = all(hashlib.md5(s3(nodes[0]).get_object(Bucket=BUCKET, Key=k)["Body"].read()).hexdigest() == m
                           for k, m in list(w.acked.items())[:20])
        acked.update(w.acked)
        checks.check("3: requests through the other zones succeed while zone c is cut off silently",
                     w.failed == 0 and reads_ok and len(w.acked) > 10, f"{len(w.acked)} acknowledged, {w.failed} failed")
        checks.check("3: their p99 latency stays under 2 s", w.p99() < 2.0, f"p99 {w.p99():.3f} s")
        time.sleep(5)  # the cut node is seen up again
        verify(checks, "3", nodes, acked)

        # 4. A corrupted block file.
        key = next(k for k in acked if k.endswith(("2", "5", "8")) and k.startswith("kill-one"))
        files = block_files(nodes[2])
        big = max(files, key=os.path.getsize)
        with open(big, "r+b") as f:
            f.seek(os.path.getsize(big) // 2)
            f.write(b"\x00garbage\x00" * 8)
        bad_reads = 0
        for k, m in acked.items():
            try:
                if hashlib.md5(s3(nodes[2]).get_object(Bucket=BUCKET, Key=k)["Body"].read()).hexdigest() != m:
                    bad_reads += 1
            except Exception:
                bad_reads += 1
        checks.check("4: with a corrupted block file on n2, every read through n2 returns the right bytes",
                     bad_reads == 0, f"{bad_reads} bad reads ({key})")
        code, out = nodes[2].cli("repair", "scrub")
        checks.check("4: hangar repair scrub starts", code == 0, out.strip()[-200:])
        t = wait_for(30, lambda: os.path.exists(big) and not open(big, "rb").read().count(b"\x00garbage\x00"))
        checks.check("4: the corrupted block is restored on n2", t is not None, fmt(t))

        # 5. Metadata directory deleted while the node is down.
        victim = nodes[1]
        victim.kill()
        old_id = victim.id
        subprocess.run(["rm", "-rf", os.path.join(victim.dir, "meta")], check=True)
        victim.start()
        checks.check("5: the node comes back as itself", victim.id == old_id, f"{victim.id[:16]} vs {old_id[:16]}")
        t = wait_for(60, lambda: "metadata rebuilt from the other nodes" in victim.log_tail(400))
        checks.check("5: it rebuilds its metadata from the others and says so", t is not None, fmt(t))
        verify(checks, "5", nodes, acked)

        # 6. Layout changes under writes.
        spare.start()
        with Writer([nodes[0], nodes[2]], "layout", limit=300) as w:
            code1, out1 = nodes[0].cli("layout", "assign", spare.id[:12], "-z", "c", "-c", "100G")
            code2, out2 = nodes[0].cli("layout", "remove", nodes[3].id[:12])
            code3, out3 = nodes[0].cli("layout", "assign", nodes[0].id[:12], "-z", "a", "-c", "200G")
            code4, out4 = nodes[0].cli("layout", "apply", "--version", "2")
            checks.check("6: add, remove and capacity change applied as version 2",
                         code1 == code2 == code3 == code4 == 0, (out1 + out2 + out3 + out4)[-400:])
            # Reads of what was acknowledged before keep working meanwhile.
            sample = list(acked.items())[::7]
            bad = [k for k, m in sample
                   if hashlib.md5(s3(nodes[2]).get_object(Bucket=BUCKET, Key=k)["Body"].read()).hexdigest() != m]
            checks.check("6: acknowledged objects stay readable during the change", not bad, str(bad[:3]))
            time.sleep(4)
        acked.update(w.acked)
        checks.check("6: writes keep succeeding during the change", w.failed == 0, f"{len(w.acked)} ok, {w.failed} failed")

        def retired():
            h = nodes[0].api("GET", "/v2/GetClusterLayoutHistory")
            return h["currentVersion"] == 2 and all(v["status"] != "draining" for v in h["versions"])
        t = wait_for(120, retired, step=1)
        checks.check("6: version 1 retires once every node synced version 2", t is not None, fmt(t))
        live = [nodes[0], nodes[1], nodes[2], spare]
        verify(checks, "6", live, acked)
        t = wait_for(60, lambda: data_bytes(nodes[3]) < 1 << 20, step=1)
        checks.check("6: the removed node drops the data it no longer holds", t is not None,
                     f"{fmt(t)}, {data_bytes(nodes[3])} bytes left")

        # 6b. A second data directory for n2, then a rebalance.
        n2 = nodes[2]
        n2.stop()
        n2.data_dirs = [("data", 1000), ("data2", 1000)]
        n2.start()
        before = len(block_files(n2, "data"))
        code, out = n2.cli("repair", "rebalance")
        t = wait_for(60, lambda: "last pass" in worker_progress(n2, "rebalance"))
        moved = len(block_files(n2, "data2"))
        checks.check("6b: hangar repair rebalance moves about half of n2's blocks to its new data directory",
                     code == 0 and t is not None and before > 20 and 0.25 * before < moved < 0.75 * before,
                     f"{moved} of {before} moved in {fmt(t)}: {worker_progress(n2, 'rebalance')}; {out.strip()[-200:]}")
        code, out = n2.cli("repair", "versions")
        t = wait_for(60, lambda: "last pass" in worker_progress(n2, "repair-versions"))
        progress = worker_progress(n2, "repair-versions")
        checks.check("6b: hangar repair versions runs and releases nothing in use",
                     code == 0 and t is not None and " 0 released" in progress, f"{progress}; {out.strip()[-200:]}")
        verify(checks, "6b", live, acked)

        # 7. Delete everything.
        before = sum(data_bytes(n) for n in live)
        c = s3(nodes[0])
        for k in acked:
            c.delete_object(Bucket=BUCKET, Key=k)
        t = wait_for(120, lambda: sum(data_bytes(n) for n in live) < 1 << 20, step=1)
        after = sum(data_bytes(n) for n in live)
        checks.check("7: after deleting everything, the data directories empty within the grace delays",
                     t is not None, f"{before} -> {after} bytes in {fmt(t)}")

        check_clean_stops(checks, nodes + [spare])
    finally:
        for n in nodes + [spare]:
            n.kill()
        if checks.failed:
            print(f"logs kept in {root}")
        else:
            subprocess.run(["rm", "-rf", root], check=False)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
