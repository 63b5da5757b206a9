#!/usr/bin/env python3
"""Crash consistency: SIGKILL the server in the middle of concurrent uploads,
restart it on the same data dir, and check that

- it starts again without any manual repair,
- every upload that was acknowledged (HTTP 200), in any round so far, reads
  back byte-exact,
- the listing shows no object that was never attempted, and every listed
  object reads back with exactly the bytes that were sent for it (no torn or
  partial object is ever visible).

Each upload attempt uses a fresh key, so a listed key names exactly one
attempted body. Sizes are mixed (1 KiB, 100 KiB, 3 MiB, 9 MiB); half of the
9 MiB ones go through multipart with 5 MiB parts.

Env: HANGAR_BIN, HANGAR_CRASH_ROUNDS (20), HANGAR_CRASH_BUDGET_S (330: no new
round starts after this), HANGAR_CRASH_SEED (random).
"""
import hashlib
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid

from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import KiB, MiB, Checks, Server, ServerError, err_of  # noqa: E402

BUCKET = "crash-bucket"
ROUNDS = int(os.environ.get("HANGAR_CRASH_ROUNDS", "20"))
BUDGET_S = float(os.environ.get("HANGAR_CRASH_BUDGET_S", "330"))
SEED = int(os.environ.get("HANGAR_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
UPLOADS_PER_ROUND = 16
PART = 5 * MiB
# (size, multipart?), cycled over the 16 uploads of a round (4 x 1 KiB, 3 of each other kind).
KINDS = [(1 * KiB, False), (100 * KiB, False), (3 * MiB, False), (9 * MiB, False), (9 * MiB, True)]

C = Checks("crash")


class Attempt:
    def __init__(self, key, data, multipart):
        self.key, self.size, self.multipart = key, len(data), multipart
        self.sha = hashlib.sha256(data).hexdigest()
        self.data = data  # dropped once the upload thread is done
        self.acked = False
        self.error = None


def upload(s3, a):
    """One upload; sets a.acked only on a 200 for the final request."""
    try:
        if a.multipart:
            uid = s3.create_multipart_upload(Bucket=BUCKET, Key=a.key)["UploadId"]
            parts = []
            for n, off in enumerate(range(0, a.size, PART), start=1):
                r = s3.upload_part(Bucket=BUCKET, Key=a.key, UploadId=uid, PartNumber=n,
                                   Body=a.data[off:off + PART])
                parts.append({"PartNumber": n, "ETag": r["ETag"]})
            r = s3.complete_multipart_upload(Bucket=BUCKET, Key=a.key, UploadId=uid,
                                             MultipartUpload={"Parts": parts})
        else:
            r = s3.put_object(Bucket=BUCKET, Key=a.key, Body=a.data)
        a.acked = r["ResponseMetadata"]["HTTPStatusCode"] == 200
    except ClientError as e:  # an HTTP error response (not a dropped connection)
        a.error = ("http", err_of(e))
    except Exception as e:  # connection reset/refused once the server is killed
        a.error = ("conn", type(e).__name__)
    finally:
        a.data = None


def temp_files(data_dir):
    """Paths of temporary block files (`<hash>.tmp<n>`) under the data directory."""
    found = set()
    for root, _dirs, files in os.walk(os.path.join(data_dir, "blocks")):
        found.update(os.path.join(root, f) for f in files if ".tmp" in f)
    return found


def verify(srv, attempts, label):
    """Checks acknowledged and listed objects against what was sent. Returns problems found."""
    s3 = srv.client(max_pool_connections=4)
    listed = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, PaginationConfig={"MaxItems": 100000}):
        for o in page.get("Contents", []):
            listed[o["Key"]] = o["Size"]
    problems = []

    def read_sha(key):
        h = hashlib.sha256()
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        for chunk in iter(lambda: body.read(1 * MiB), b""):
            h.update(chunk)
        return h.hexdigest()

    for key, a in attempts.items():
        if a.acked and key not in listed:
            problems.append(f"acknowledged {key} not listed")
    for key, size in listed.items():
        a = attempts.get(key)
        if a is None:
            problems.append(f"listed {key} was never attempted")
            continue
        if size != a.size:
            problems.append(f"listed {key} size {size}, sent {a.size} (acked={a.acked})")
        try:
            got = read_sha(key)
        except ClientError as e:
            problems.append(f"listed {key} unreadable: {err_of(e)} (acked={a.acked})")
            continue
        if got != a.sha:
            problems.append(f"listed {key} bytes differ from those sent (acked={a.acked})")
    # Acknowledged but not listed: GET must still work (and the listing is wrong).
    for key, a in attempts.items():
        if a.acked and key not in listed:
            try:
                if read_sha(key) != a.sha:
                    problems.append(f"acknowledged {key} bytes differ")
            except ClientError as e:
                problems.append(f"acknowledged {key} unreadable: {err_of(e)}")
    n_acked = sum(a.acked for a in attempts.values())
    C.check(f"{label}: {n_acked} acknowledged objects byte-exact, {len(listed)} listed all consistent",
            not problems, "; ".join(problems[:8]) + (f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""))
    return len(listed)


def main():
    rng = random.Random(SEED)
    data_dir = tempfile.mkdtemp(prefix="hangar-crash.")
    srv = Server(data_dir=data_dir, bucket=BUCKET)
    attempts = {}
    t0 = time.monotonic()
    rounds_done = 0
    restart_times = []
    kills_mid_upload = 0  # rounds whose kill cut at least one upload short
    temps_left_by_kills = 0
    print(f"[crash] seed {SEED}, {ROUNDS} rounds, budget {BUDGET_S:.0f} s, binary {srv.bin}", flush=True)
    try:
        for rnd in range(ROUNDS + 1):
            # Start (the first time) or restart after the previous round's SIGKILL.
            temps_before = temp_files(data_dir)
            temps_left_by_kills += len(temps_before)
            ts = time.monotonic()
            try:
                srv.start()
            except ServerError as e:
                C.check(f"round {rnd}: server starts on the crashed data dir", False, str(e)[:2000])
                break
            restart_times.append(time.monotonic() - ts)
            if rnd > 0:
                C.check(f"round {rnd}: server restarted after SIGKILL", True,
                        f"ready in {restart_times[-1]:.2f} s")
                verify(srv, attempts, f"round {rnd}: after restart")
                if temps_before:
                    # The sweep after start removes what interrupted writes left.
                    deadline = time.monotonic() + 15
                    while temp_files(data_dir) & temps_before and time.monotonic() < deadline:
                        time.sleep(0.2)
                    stale = temp_files(data_dir) & temps_before
                    C.check(f"round {rnd}: {len(temps_before)} temporary files left by the kill are swept",
                            not stale, f"{len(stale)} still there")
            if rnd == ROUNDS:
                break
            if time.monotonic() - t0 > BUDGET_S:
                print(f"[crash] time budget reached after {rounds_done} rounds", flush=True)
                break

            # 16 uploads of mixed sizes, all at once.
            kinds = [KINDS[i % len(KINDS)] for i in range(UPLOADS_PER_ROUND)]
            rng.shuffle(kinds)
            batch = []
            for i, (size, mp) in enumerate(kinds):
                key = f"r{rnd:02d}/{i:02d}-{size}{'-mpu' if mp else ''}-{uuid.uuid4().hex[:12]}"
                a = Attempt(key, os.urandom(size), mp)
                attempts[key] = a
                batch.append(a)
            s3 = srv.client(max_pool_connections=UPLOADS_PER_ROUND + 4)
            threads = [threading.Thread(target=upload, args=(s3, a), daemon=True) for a in batch]
            # Short enough that most kills land while uploads are streaming.
            delay = rng.uniform(0.02, 0.6)
            for t in threads:
                t.start()
            time.sleep(delay)
            srv.kill()
            for t in threads:  # a killed server fails every request at once; bounded anyway
                t.join(timeout=30)
            stuck = sum(t.is_alive() for t in threads)
            C.check(f"round {rnd}: upload threads finish after the kill", stuck == 0, f"{stuck} still running")
            http_errors = [(a.key, a.error[1]) for a in batch if a.error and a.error[0] == "http"]
            C.check(f"round {rnd}: no HTTP error responses before the kill", not http_errors,
                    "; ".join(f"{k}: {e}" for k, e in http_errors[:4]))
            acked = sum(a.acked for a in batch)
            in_flight = sum(1 for a in batch if a.error and a.error[0] == "conn")
            kills_mid_upload += in_flight > 0
            print(f"[crash] round {rnd}: killed after {delay:.2f} s, {in_flight} in flight, "
                  f"{acked}/{len(batch)} acknowledged "
                  f"({', '.join(sorted(str(a.size) + ('m' if a.multipart else '') for a in batch if a.acked))})",
                  flush=True)
            rounds_done += 1

        srv.stop_and_check(C, " at the end")
    finally:
        srv.cleanup()
        if os.environ.get("HANGAR_KEEP_TMP") != "1":
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"[crash] keeping {data_dir}")

    by_kind = {}
    for a in attempts.values():
        k = f"{a.size // KiB} KiB{' multipart' if a.multipart else ''}"
        n_ok, n = by_kind.get(k, (0, 0))
        by_kind[k] = (n_ok + a.acked, n + 1)
    C.check(f"all {ROUNDS} rounds completed within the time budget", rounds_done == ROUNDS,
            f"{rounds_done} done")
    # Without kills that land mid-upload the rounds prove nothing about crashes.
    C.check("some kills cut uploads short", kills_mid_upload >= max(1, rounds_done // 8),
            f"{kills_mid_upload}/{rounds_done}")
    print(f"[crash] summary: rounds {rounds_done}, uploads attempted {len(attempts)}, acknowledged "
          f"{sum(a.acked for a in attempts.values())}, by kind (acked/attempted): "
          + ", ".join(f"{k}: {v[0]}/{v[1]}" for k, v in sorted(by_kind.items(), key=lambda kv: kv[0]))
          + f"; kills with uploads in flight: {kills_mid_upload}/{rounds_done}"
          + f"; temporary block files left by kills (then swept): {temps_left_by_kills}"
          + f"; restart time max {max(restart_times or [0]):.2f} s; elapsed {time.monotonic() - t0:.0f} s",
          flush=True)
    return C.summary()


if __name__ == "__main__":
    sys.exit(main())
