#!/usr/bin/env python3
"""Reads right after a partition heals, on a real cluster: no node may answer
from replicas that missed acknowledged writes.

The sequence that once returned stale values: 5 storage nodes in 3 zones
(a: n0 n1, b: n2 n3, c: n4), replication factor 3, 25 ms each way between
zones (a userspace relay, tests/cluster/relay.py), fsync off. n1 restarts
with its clock 31 s ahead (faketime); n4 is removed from the layout and
added back (versions live); a silent split cuts {n3, n4} (a zone and a
half) from {n0, n1, n2} for 16 s, longer than the 10 s after which QUIC
closes an idle connection, while writes go on through the majority side;
at the heal, n1 is killed and restarts with a correct clock, and reads go
through n3 and n4 at once. Every read that answers must return the last
acknowledged value; once settled, every node must, and every table
partition must have equal Merkle roots on its holders.

`HEAL_RUNS` (default 1) runs, each on a new cluster.
"""
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "robustness"))
from common import Checks  # noqa: E402
from harness import KEY_ID, KEY_SECRET, Node, check_roots_agree, form_cluster, free_port, wait_for  # noqa: E402

ZONES = ["a", "a", "b", "b", "c"]
MAJORITY, MINORITY, RESTARTED = [0, 1, 2], [3, 4], 1
BUCKETS, KEYS, WRITERS = 8, 32, 6
SPLIT_SECS = 16
# libfaketime, preloaded into the server itself (its `faketime` wrapper runs
# the program as a child, which a SIGKILL of the wrapper would leave alive).
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
CLOCK_AHEAD = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": "+31s", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def client(node, timeout=2):
    return boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{node.s3_port}", region_name="hangar",
        aws_access_key_id=KEY_ID, aws_secret_access_key=KEY_SECRET,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      connect_timeout=timeout, read_timeout=timeout))


def bucket_of(i):
    return f"heal-{i % BUCKETS}"


class Model:
    """Per key, what clients were told (bytes, or None once deleted); keys
    a failed request left uncertain for the rest of the run (a write that
    failed may still win, with a clock 31 s ahead)."""

    def __init__(self):
        self.expected, self.uncertain, self.lock = {}, set(), threading.Lock()

    def known(self):
        with self.lock:
            return {k: v for k, v in self.expected.items() if k not in self.uncertain}


def write(model, node, i, rng, timeout=2):
    key = f"k{i}"
    body = None if rng.random() < 0.2 else os.urandom(rng.choice([10, 60, 90]))
    try:
        c = client(node, timeout)
        if body is None:
            c.delete_object(Bucket=bucket_of(i), Key=key)
        else:
            c.put_object(Bucket=bucket_of(i), Key=key, Body=body)
        with model.lock:
            model.expected[key] = body
    except Exception:  # failed or no answer: either outcome is right
        with model.lock:
            model.uncertain.add(key)


def read(node, key, timeout=2):
    """The bytes of `key` (None: no such key), or raises."""
    c = client(node, timeout)
    try:
        return c.get_object(Bucket=bucket_of(int(key[1:])), Key=key)["Body"].read()
    except c.exceptions.NoSuchKey:
        return None


def describe(v):
    return "no such key" if v is None else f"{len(v)} bytes"


def one_run(checks, root, run):
    label = f"heal run {run}"
    nodes = [Node(root, f"r{run}n{i}") for i in range(5)]
    for n in nodes:
        n.public_port = free_port(socket.SOCK_DGRAM)
    relay_conf = os.path.join(root, f"relay{run}.json")

    def relay(cut):
        tmp = relay_conf + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"nodes": [{"front": n.public_port, "rpc": n.rpc_port, "zone": z} for n, z in zip(nodes, ZONES)],
                       "one_way_ms": 25, "cut": cut}, f)
        os.replace(tmp, relay_conf)

    relay([])
    relay_proc = subprocess.Popen([sys.executable, os.path.join(HERE, "relay.py"), relay_conf])
    rng = random.Random(run)
    model = Model()
    try:
        form_cluster(nodes, ZONES)
        for b in range(BUCKETS):
            client(nodes[0], 10).create_bucket(Bucket=f"heal-{b}")
        for _ in range(40):
            write(model, nodes[rng.randrange(5)], rng.randrange(KEYS), rng)
        # n1 restarts with its clock 31 s ahead.
        restarted = nodes[RESTARTED]
        restarted.kill()
        restarted.env = CLOCK_AHEAD
        restarted.start()
        ids = {n.id for n in nodes}
        wait_for(30, lambda: all(n.up_ids() == ids for n in nodes))
        # n4 removed and added back: layout versions live.
        for args in (("layout", "remove", nodes[4].id[:12]), ("layout", "apply", "--version", "2"),
                     ("layout", "assign", nodes[4].id[:12], "-z", "c", "-c", "100G"),
                     ("layout", "apply", "--version", "3")):
            code, out = nodes[0].cli(*args)
            if code != 0:
                checks.check(f"{label}: {' '.join(args[:2])}", False, out[-300:])
                return
        for _ in range(20):
            write(model, nodes[rng.randrange(5)], rng.randrange(KEYS), rng)
        # The split, and writes through the majority side until the heal.
        relay([[nodes[i].rpc_port for i in MINORITY], [nodes[i].rpc_port for i in MAJORITY]])
        heal_at = time.time() + SPLIT_SECS

        def writer(w):
            # Each write waits 0.5 s at most, so the last ones are
            # acknowledged right before the heal.
            wrng = random.Random(run * 100 + w)
            while time.time() < heal_at:
                i = w + WRITERS * wrng.randrange(KEYS // WRITERS)
                write(model, nodes[wrng.choice(MAJORITY)], i, wrng, timeout=0.5)
        threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SPLIT_SECS + 30)
        # The heal; n1 killed at the same moment, back with a correct clock;
        # reads through the minority side at once.
        known = model.known()
        # What n1 holds as it is killed, to tell afterwards whether its restart
        # lost commits (it must not; anti-entropy may also have changed
        # something by then, so this is reported, not checked).
        roots_before = restarted.api("GET", "/v2/GetTableRoots")["tables"]
        relay([])
        restarted.kill()
        stale, answered = [], [0]

        def reader(n):
            end = time.time() + 8
            while time.time() < end:
                for key, want in known.items():
                    try:
                        got = read(nodes[n], key, timeout=0.5)
                    except Exception:  # no quorum yet: not an answer
                        continue
                    answered[0] += 1
                    if got != want:
                        stale.append(f"{key} through n{n} at heal+{time.time() - heal_at:.2f}s: "
                                     f"got {describe(got)}, expected {describe(want)}")
        readers = [threading.Thread(target=reader, args=(n,), daemon=True) for n in MINORITY]
        for t in readers:
            t.start()
        restarted.env = {}
        restarted.start()
        roots_after = {t["table"]: t["partitions"] for t in restarted.api("GET", "/v2/GetTableRoots")["tables"]}
        changed = [f"{t['table']}/{p}" for t in roots_before for p, r in t["partitions"].items()
                   if roots_after[t["table"]].get(p) != r]
        print(f"[heal] note {label}: table partitions of n1 that differ after its restart: {changed or 'none'}")
        for t in readers:
            t.join(60)
        checks.check(f"{label}: {answered[0]} reads of {len(known)} keys through n3 and n4 right after the heal, "
                     f"none stale", not stale, "; ".join(stale[:4]))
        # Settled: every node answers, and right.
        wrong = []

        def all_right():
            wrong.clear()
            for i, n in enumerate(nodes):
                for key, want in known.items():
                    try:
                        got = read(n, key)
                        if got != want:
                            wrong.append(f"{key}@n{i}: {describe(got)}")
                    except Exception as e:  # report if it lasts
                        wrong.append(f"{key}@n{i}: {type(e).__name__}")
            return not wrong
        t = wait_for(60, all_right, step=1)
        checks.check(f"{label}: once settled, every node reads every acknowledged value "
                     f"({len(known)} keys, {len(model.uncertain)} uncertain)", t is not None, "; ".join(wrong[:4]))
        check_roots_agree(checks, label, nodes)
    finally:
        for n in nodes:
            n.kill()
        relay_proc.kill()
        relay_proc.wait(10)


def main():
    checks = Checks("heal")
    if not os.path.exists(LIBFAKETIME):
        checks.check("libfaketime is installed (tests/clients/install.sh installs it)", False)
        return checks.summary()
    root = tempfile.mkdtemp(prefix="hangar-heal.")
    try:
        for run in range(int(os.environ.get("HEAL_RUNS", "1"))):
            one_run(checks, root, run)
    finally:
        if checks.failed or os.environ.get("HEAL_KEEP"):
            print(f"logs kept in {root}")
        else:
            subprocess.run(["rm", "-rf", root], check=False)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
