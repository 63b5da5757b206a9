#!/usr/bin/env python3
"""Server memory (RSS) under load, from /proc/<pid>/status (VmRSS, VmHWM).

Phases:
  idle        RSS 2 s after the server is ready
  8x64MiB     8 concurrent clients each upload a 64 MiB object; measured twice:
              boto3 upload_file (multipart, default settings) and put_object
              with a file object (one 64 MiB PUT each); then RSS 5 s later,
              which must be back under 64 MB (memory given back)
  4GiB        one 4 GiB object: a single PUT, then a GET read to the end;
              the body is generated on the fly, so client disk use stays small
              (the server stores the 4 GiB; skipped with < 12 GiB free)

Each load phase runs on a freshly restarted server (same data dir, after a
2 s settle), so memory kept by one phase does not count against the next; the
RSS at the start of each phase is reported as rss_before.

The peak of each phase is VmHWM after resetting it (echo 5 > clear_refs) at the
start of the phase; a 10 ms VmRSS sampler is kept as a cross-check (and is
used if the reset is not possible).

Thresholds (MB = 1,000,000 bytes), from env with defaults:
  HANGAR_MEM_IDLE_MB=22  HANGAR_MEM_8X64_MB=110  HANGAR_MEM_4G_MB=100
HANGAR_MEM_SKIP_4G=1 skips the 4 GiB phase.
"""
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time

from boto3.s3.transfer import TransferConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import GiB, MiB, Checks, Server  # noqa: E402

BUCKET = "mem-bucket"
MB = 1000 * 1000
LIMITS_MB = {
    "idle": float(os.environ.get("HANGAR_MEM_IDLE_MB", "22")),
    "8x64": float(os.environ.get("HANGAR_MEM_8X64_MB", "110")),
    "4g": float(os.environ.get("HANGAR_MEM_4G_MB", "100")),
    # RSS 5 s after a load: memory must be given back, not kept at the peak.
    "after": float(os.environ.get("HANGAR_MEM_AFTER_MB", "64")),
}
BIG = 4 * GiB
NEED_FREE = 12 * GiB

C = Checks("memory")


def status(pid):
    """VmRSS and VmHWM of pid, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) * 1024  # reported in kB (KiB)
    return out["VmRSS"], out["VmHWM"]


class Peak:
    """Peak RSS over a phase: VmHWM reset at the start, plus a sampler."""

    def __init__(self, pid):
        self.pid = pid
        try:  # "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.sampled = status(pid)[0]
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()

    def _sample(self):
        while not self._stop.wait(0.01):
            try:
                self.sampled = max(self.sampled, status(self.pid)[0])
            except OSError:
                return

    def finish(self):
        self._stop.set()
        self._t.join(timeout=5)
        rss, hwm = status(self.pid)
        self.sampled = max(self.sampled, rss)
        # RSS counters are batched per thread, so take the larger of the two.
        peak = max(hwm, self.sampled) if self.hwm_reset else self.sampled
        return {"peak_bytes": peak, "peak_sampled_bytes": self.sampled,
                "peak_source": "max(VmHWM after reset, sampled)" if self.hwm_reset else "VmRSS sampled every 10 ms"}


class PatternReader(io.RawIOBase):
    """A seekable read-only file of `size` bytes: a random block repeated.

    The period is 64 MiB + 4093 bytes, so equal runs never line up with
    power-of-two block boundaries and the server cannot store less than it got.
    """

    def __init__(self, size, seed_block):
        self.size, self.block, self.pos = size, seed_block, 0
        self.period = len(seed_block)

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, off, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, min(self.size, base + off))
        return self.pos

    def __len__(self):
        return self.size

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos, 8 * MiB)
        if n <= 0:
            return b""
        out = bytearray()
        while len(out) < n:
            off = (self.pos + len(out)) % self.period
            out += self.block[off:off + n - len(out)]
        self.pos += n
        return bytes(out)

    def readinto(self, b):
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


def build_kind(binary):
    parts = os.path.normpath(binary).split(os.sep)
    if "debug" in parts:
        return "debug"
    if "release" in parts:
        return "release"
    return "unknown"


def mb(b):
    return round(b / MB, 1)


def main():
    srv = Server(bucket=BUCKET, prefix="hangar-memory.")
    scratch = tempfile.mkdtemp(prefix="hangar-memory-src.")
    result = {"binary": srv.bin, "build": build_kind(srv.bin),
              "note": "measurement of this build; MB = 1,000,000 bytes",
              "limits_mb": LIMITS_MB}
    t_start = time.monotonic()
    try:
        srv.start()
        pid = srv.pid
        print(f"[memory] server pid {pid} ({result['build']} build: {srv.bin})", flush=True)

        # ---- idle ----
        time.sleep(2)
        rss, hwm = status(pid)
        result["idle"] = {"rss_bytes": rss, "hwm_bytes": hwm, "rss_mb": mb(rss)}
        C.check(f"idle RSS {mb(rss)} MB <= {LIMITS_MB['idle']} MB", rss <= LIMITS_MB["idle"] * MB)

        # ---- 8 x 64 MiB ----
        src = os.path.join(scratch, "random-64MiB")
        with open(src, "wb") as f:
            f.write(os.urandom(64 * MiB))
        with open(src, "rb") as f:
            src_md5 = hashlib.md5(f.read()).hexdigest()

        def upload_file(s3, key):
            # Default multipart settings: 8 MiB parts, up to 10 at once, so up to
            # 80 part uploads are in the server at the same time.
            s3.upload_file(src, BUCKET, key, Config=TransferConfig())

        def put_file(s3, key):
            with open(src, "rb") as f:
                s3.put_object(Bucket=BUCKET, Key=key, Body=f)

        for name, fn in (("8x64MiB_upload_file", upload_file), ("8x64MiB_put_object", put_file)):
            pid, before = restart(srv)
            clients = [srv.client(max_pool_connections=16) for _ in range(8)]
            keys = [f"{name}/{i}" for i in range(8)]
            errors = []

            def run(s3, key):
                try:
                    fn(s3, key)
                except Exception as e:  # reported below
                    errors.append(f"{key}: {type(e).__name__}: {e}")

            peak = Peak(pid)
            t0 = time.monotonic()
            threads = [threading.Thread(target=run, args=(c, k)) for c, k in zip(clients, keys)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=600)
            secs = time.monotonic() - t0
            ph = peak.finish()
            C.check(f"{name}: all 8 uploads succeeded", not errors and not any(t.is_alive() for t in threads),
                    "; ".join(errors[:3]))
            s3 = clients[0]
            sizes = [s3.head_object(Bucket=BUCKET, Key=k)["ContentLength"] for k in keys] if not errors else []
            C.check(f"{name}: stored sizes are 64 MiB", sizes == [64 * MiB] * 8, str(sizes))
            if name.endswith("put_object") and not errors:
                etag = s3.head_object(Bucket=BUCKET, Key=keys[0])["ETag"].strip('"')
                C.check(f"{name}: ETag is the MD5 of the data", etag == src_md5, f"{etag} vs {src_md5}")
            time.sleep(5)
            after = status(pid)[0]
            ph.update({"rss_before_bytes": before, "seconds": round(secs, 1), "peak_mb": mb(ph["peak_bytes"]),
                       "rss_5s_after_bytes": after, "rss_5s_after_mb": mb(after)})
            result[name] = ph
            C.check(f"{name}: peak RSS {ph['peak_mb']} MB <= {LIMITS_MB['8x64']} MB",
                    ph["peak_bytes"] <= LIMITS_MB["8x64"] * MB,
                    f"sampled peak {mb(ph['peak_sampled_bytes'])} MB")
            C.check(f"{name}: RSS 5 s after the load {mb(after)} MB <= {LIMITS_MB['after']} MB (given back)",
                    after <= LIMITS_MB["after"] * MB)
            for k in keys:
                s3.delete_object(Bucket=BUCKET, Key=k)
        os.unlink(src)

        # ---- 4 GiB ----
        free = shutil.disk_usage(srv.dir).free
        if os.environ.get("HANGAR_MEM_SKIP_4G") == "1":
            result["4GiB"] = {"skipped": "HANGAR_MEM_SKIP_4G=1"}
            print("[memory] SKIP 4 GiB phase: HANGAR_MEM_SKIP_4G=1", flush=True)
        elif free < NEED_FREE:
            result["4GiB"] = {"skipped": f"only {free / GiB:.1f} GiB free under {srv.dir}, need 12"}
            print(f"[memory] SKIP 4 GiB phase: only {free / GiB:.1f} GiB free under {srv.dir} (need 12 GiB)",
                  flush=True)
        else:
            pid, before = restart(srv)
            result["4GiB"] = big_object(srv, pid)
            result["4GiB"]["rss_before_bytes"] = before
        result["total_seconds"] = round(time.monotonic() - t_start, 1)

        srv.stop_and_check(C)
    except Exception:
        print(srv.log_tail(), file=sys.stderr)
        raise
    finally:
        srv.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result, indent=2), flush=True)
    return C.summary()


def restart(srv):
    """SIGTERM the server, start it again on the same data dir, let it settle 2 s."""
    C.check("server stops cleanly on SIGTERM (between phases)", srv.stop())
    srv.start()
    time.sleep(2)
    return srv.pid, status(srv.pid)[0]


def big_object(srv, pid):
    reader = PatternReader(BIG, os.urandom(64 * MiB + 4093))
    want = hashlib.sha256()
    for chunk in iter(lambda: reader.read(8 * MiB), b""):
        want.update(chunk)
    reader.seek(0)
    s3 = srv.client(read_timeout=600)
    key = "big/4GiB"
    out = {"size_bytes": BIG}

    peak = Peak(pid)
    t0 = time.monotonic()
    try:
        s3.put_object(Bucket=BUCKET, Key=key, Body=reader)
        up_ok, up_err = True, ""
    except Exception as e:
        up_ok, up_err = False, f"{type(e).__name__}: {e}"
    out["upload_seconds"] = round(time.monotonic() - t0, 1)
    C.check("4GiB: single PUT succeeded", up_ok, up_err)
    ph = peak.finish()
    out["upload"] = dict(ph, peak_mb=mb(ph["peak_bytes"]))

    if up_ok:
        peak = Peak(pid)
        t0 = time.monotonic()
        got, n = hashlib.sha256(), 0
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        for chunk in iter(lambda: body.read(1 * MiB), b""):
            got.update(chunk)
            n += len(chunk)
        out["download_seconds"] = round(time.monotonic() - t0, 1)
        ph = peak.finish()
        out["download"] = dict(ph, peak_mb=mb(ph["peak_bytes"]))
        C.check("4GiB: GET returns the same 4 GiB", n == BIG and got.hexdigest() == want.hexdigest(),
                f"{n} bytes")
    time.sleep(5)
    out["rss_5s_after_bytes"] = status(pid)[0]
    out["rss_5s_after_mb"] = mb(out["rss_5s_after_bytes"])
    C.check(f"4GiB: RSS 5 s after the load {out['rss_5s_after_mb']} MB <= {LIMITS_MB['after']} MB (given back)",
            out["rss_5s_after_bytes"] <= LIMITS_MB["after"] * MB)
    out["peak_bytes"] = max(out["upload"]["peak_bytes"], out.get("download", {}).get("peak_bytes", 0))
    out["peak_mb"] = mb(out["peak_bytes"])
    C.check(f"4GiB: peak RSS {out['peak_mb']} MB <= {LIMITS_MB['4g']} MB (upload {out['upload']['peak_mb']}, "
            f"download {out.get('download', {}).get('peak_mb')})", out["peak_bytes"] <= LIMITS_MB["4g"] * MB)
    try:
        s3.delete_object(Bucket=BUCKET, Key=key)
    except Exception as e:
        print(f"[memory] deleting {key} failed: {e}", flush=True)
    return out


if __name__ == "__main__":
    sys.exit(main())
