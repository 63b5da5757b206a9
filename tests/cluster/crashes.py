#!/usr/bin/env python3
"""Killed processes on a real cluster: no acknowledged object is lost, and no
object is listed that cannot be read, in both metadata durability modes.

1. Killed coordinators. 5 storage nodes in 3 zones (a: n0 n1, b: n2 n3,
   c: n4) and a gateway, replication factor 3, a release delay of 3 s.
   Objects of about 600 KB are PUT through the gateway or through n1, sent
   over about a second as a client on a slow link does; the node is then
   SIGKILLed either right after the 200 of its last PUT, or at a random
   instant while a PUT is under way; it restarts at once. 20 rounds with
   fsync off, 20 with fsync on. Once the release delay has passed
   several times over: every acknowledged object reads back byte-exact
   through every node, and every object a node lists can be read through
   every node.
2. Every node killed at once. 5 storage nodes in 3 zones with fsync off take
   a burst of acknowledged PUTs through all of them; at the last 200, every
   node is SIGKILLed; they all restart. 10 rounds: every object acknowledged
   so far reads back byte-exact.

Every wait and loop is bounded.
"""
import hashlib
import http.client
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "robustness"))
from common import Checks  # noqa: E402
from harness import Node, form_cluster, s3, wait_for, fmt  # noqa: E402

BUCKET = "crashes"
ZONES = ["a", "a", "b", "b", "c"]
RELEASE_DELAY_SECS = 3
OBJECT_SIZE = 600_000


def md5(b):
    return hashlib.md5(b).hexdigest()


def all_up(nodes):
    ids = {n.id for n in nodes}
    return wait_for(30, lambda: all(n.up_ids() == ids for n in nodes))


def restart(node, nodes):
    node.start()
    return all_up(nodes)


def listing(node):
    keys, token = set(), None
    for _ in range(100):
        args = {"Bucket": BUCKET, "MaxKeys": 1000}
        if token:
            args["ContinuationToken"] = token
        r = s3(node).list_objects_v2(**args)
        keys |= {o["Key"] for o in r.get("Contents", [])}
        if not r.get("IsTruncated"):
            break
        token = r["NextContinuationToken"]
    return keys


def slow_put(node, key, body, seconds):
    """PUTs `body` through a presigned URL, sending it in 6 pieces spread over
    `seconds`, as a client on a slow link does. Returns the HTTP status, or
    None if the connection broke."""
    url = s3(node).generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=600)
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        piece = -(-len(body) // 6)
        for i in range(0, len(body), piece):
            conn.send(body[i:i + piece])
            time.sleep(seconds / 6)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def read_md5(client, key):
    return md5(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def check_everything(checks, label, nodes, acked):
    """Every acknowledged object byte-exact through every node; every listed
    object readable through every node."""
    wrong = []
    for n in nodes:
        c = s3(n)
        for key, want in acked.items():
            try:
                got = read_md5(c, key)
                if got != want:
                    wrong.append(f"{key}@{n.name}: other bytes")
            except Exception as e:  # report, keep checking
                wrong.append(f"{key}@{n.name}: {type(e).__name__} {e}"[:160])
    checks.check(f"{label}: {len(acked)} acknowledged objects read back byte-exact through {len(nodes)} nodes",
                 not wrong, "; ".join(wrong[:3]) + (f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""))
    listed = set()
    for n in nodes:
        listed |= listing(n)
    unreadable = []
    for n in nodes:
        c = s3(n)
        for key in sorted(listed):
            try:
                c.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            except Exception as e:  # report, keep checking
                unreadable.append(f"{key}@{n.name}: {type(e).__name__} {e}"[:160])
    checks.check(f"{label}: every one of the {len(listed)} listed objects is readable through every node",
                 not unreadable, "; ".join(unreadable[:3]))


def killed_coordinators(checks, root, fsync, rounds=20):
    label = f"killed coordinators, fsync {'on' if fsync else 'off'}"
    nodes = [Node(root, f"{'s' if fsync else 'n'}{i}") for i in range(5)]
    gateway = Node(root, "gw-sync" if fsync else "gw")
    everyone = nodes + [gateway]
    for n in everyone:
        n.fsync = fsync
        n.extra = f"block_gc_delay_secs = {RELEASE_DELAY_SECS}"
    rng = random.Random(42 + fsync)
    acked = {}
    kills = {"after the 200": 0, "during a PUT": 0}
    try:
        form_cluster(everyone, ZONES + [None])
        s3(nodes[0]).create_bucket(Bucket=BUCKET)
        for r in range(rounds):
            coordinator = gateway if r % 2 == 0 else nodes[1]
            if rng.random() < 0.5:
                # Killed right after the 200 of its last PUT.
                for i in range(rng.randint(1, 2)):
                    key = f"r{r:02d}/after-{i}"
                    body = os.urandom(OBJECT_SIZE)
                    status = slow_put(coordinator, key, body, 1.2)
                    if status != 200:
                        checks.check(f"{label}: round {r}: a PUT before the kill succeeds", False, str(status))
                        return
                    acked[key] = md5(body)
                coordinator.kill()
                kills["after the 200"] += 1
            else:
                # Killed at a random instant of a PUT.
                key = f"r{r:02d}/during"
                body = os.urandom(OBJECT_SIZE)
                outcome = {}
                t = threading.Thread(target=lambda: outcome.update(status=slow_put(coordinator, key, body, 1.2)),
                                     daemon=True)
                t.start()
                time.sleep(rng.uniform(0, 1.6))
                coordinator.kill()
                t.join(60)
                if outcome.get("status") == 200:
                    acked[key] = md5(body)
                kills["during a PUT"] += 1
            if restart(coordinator, everyone) is None:
                checks.check(f"{label}: round {r}: the killed node is back", False, coordinator.log_tail(10))
                return
        # Releases are due after 3 s, asked again 3 s later when in doubt;
        # block files go 3 s after their last reference.
        time.sleep(6 * RELEASE_DELAY_SECS)
        checks.check(f"{label}: {rounds} rounds, {kills['after the 200']} kills right after the 200, "
                     f"{kills['during a PUT']} during a PUT", True)
        check_everything(checks, label, everyone, acked)
    finally:
        for n in everyone:
            n.kill()


def kill_all(checks, root, rounds=10):
    label = "every node killed at once, fsync off"
    nodes = [Node(root, f"k{i}") for i in range(5)]
    acked = {}
    lock = threading.Lock()
    try:
        form_cluster(nodes, ZONES)
        s3(nodes[0]).create_bucket(Bucket=BUCKET)
        for r in range(rounds):
            def burst(w):
                c = s3(nodes[w % len(nodes)])
                for i in range(8):
                    key = f"burst{r:02d}/{w}-{i}"
                    body = os.urandom([2_000, 100_000][i % 2])
                    try:
                        c.put_object(Bucket=BUCKET, Key=key, Body=body)
                        with lock:
                            acked[key] = md5(body)
                    except Exception:  # the bursts stop at the kill
                        pass
            writers = [threading.Thread(target=burst, args=(w,), daemon=True) for w in range(5)]
            for t in writers:
                t.start()
            for t in writers:
                t.join(60)
            for n in nodes:
                n.proc.kill()
            for n in nodes:
                n.proc.wait(10)
            for n in nodes:
                n.start()
            if all_up(nodes) is None:
                checks.check(f"{label}: round {r}: every node is back", False)
                return
            c = s3(nodes[r % len(nodes)])
            lost = []
            for key, want in acked.items():
                try:
                    if read_md5(c, key) != want:
                        lost.append(key)
                except Exception as e:  # report below
                    lost.append(f"{key}: {type(e).__name__}")
            if lost:
                checks.check(f"{label}: round {r}: no acknowledged write lost", False,
                             f"{len(lost)} of {len(acked)}: {lost[:3]}")
                return
        checks.check(f"{label}: {rounds} rounds, {len(acked)} acknowledged objects all read back byte-exact",
                     len(acked) >= rounds * 20, f"{len(acked)} acknowledged")
    finally:
        for n in nodes:
            n.kill()


def main():
    checks = Checks("crashes")
    root = tempfile.mkdtemp(prefix="hangar-crashes.")
    try:
        started = time.time()
        killed_coordinators(checks, root, fsync=False)
        killed_coordinators(checks, root, fsync=True)
        kill_all(checks, root)
        print(f"[crashes] took {fmt(time.time() - started)}")
    finally:
        if checks.failed:
            print(f"logs kept in {root}")
        else:
            subprocess.run(["rm", "-rf", root], check=False)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
