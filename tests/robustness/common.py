"""Shared helpers for the robustness scripts.

- Server: start/stop/kill a single-node server on a data dir (fresh temp dir
  unless one is given), waiting for ready.json and then GET /health.
- s3_client / admin: boto3 clients and the admin API.
- sigv4: a small, independent SigV4 signer (header, presigned query, and
  aws-chunked streaming) so that tests can craft requests byte by byte.
- raw_request: send exactly those bytes with http.client.
- Checks: prints "ok"/"FAIL" per check and gives the exit status.
"""
import base64
import datetime
import email.utils
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
HANGAR_BIN = os.environ.get("HANGAR_BIN", os.path.join(REPO_ROOT, "target/debug/hangar"))
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# No proxies: every request goes straight to 127.0.0.1.
URLOPEN = urllib.request.build_opener(urllib.request.ProxyHandler({})).open

# Keep any user/machine AWS configuration out of the way.
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _v in ("AWS_PROFILE", "AWS_CA_BUNDLE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
    os.environ.pop(_v, None)


class ServerError(Exception):
    pass


class Server:
    """One server process. `data_dir=None` means a fresh temp dir, removed by cleanup()."""

    def __init__(self, data_dir=None, bucket=None, prefix="hangar-robust."):
        self.bin = HANGAR_BIN
        self.own_dir = data_dir is None
        self.dir = data_dir or tempfile.mkdtemp(prefix=prefix)
        self.bucket = bucket
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.info = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, timeout=60):
        """Starts the server and waits (bounded) until it is usable. Returns ready.json."""
        if not os.access(self.bin, os.X_OK):
            raise SystemExit(f"server binary not found or not executable: {self.bin}")
        ready = os.path.join(self.dir, "ready.json")
        # A ready.json left by an earlier run on this dir would look ready too early.
        if os.path.exists(ready):
            os.unlink(ready)
        args = [self.bin, "server", "--data-dir", self.dir,
                "--s3-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
                "--rpc-addr", "127.0.0.1:0"]
        if self.bucket:
            args += ["--bucket", self.bucket]
        with open(self.log_path, "ab") as log:  # append: keep earlier runs' logs
            log.write(f"===== start {time.strftime('%H:%M:%S')} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise ServerError(f"server exited ({self.proc.returncode}) before ready.json\n"
                                  + self.log_tail())
            if time.monotonic() > deadline:
                raise ServerError(f"ready.json not written within {timeout} s\n" + self.log_tail())
            time.sleep(0.05)
        with open(ready) as f:
            self.info = json.load(f)
        while True:  # then /health must answer 200
            try:
                with URLOPEN(urllib.request.Request(
                        self.info["admin_endpoint"] + "/health",
                        headers={"Authorization": "Bearer " + self.info["admin_token"]}), timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ServerError("health did not return 200\n" + self.log_tail())
            time.sleep(0.1)
        return self.info

    def stop(self, timeout=20):
        """SIGTERM, bounded wait, SIGKILL as a last resort. True if it exited with 0."""
        if self.proc is None:
            return True
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            print(f"server did not stop within {timeout} s of SIGTERM", file=sys.stderr)
            return False
        if rc != 0:
            print(f"server exited with status {rc} after SIGTERM", file=sys.stderr)
        return rc == 0

    def kill(self):
        """SIGKILL (a crash, as far as the server can tell)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.readlines()[-n:]
        except OSError:
            return ""
        return f"----- last {n} lines of {self.log_path} -----\n" + "".join(lines) + "----- end -----\n"

    def log_panics(self):
        """Lines of server.log that report a panic (empty if none)."""
        try:
            with open(self.log_path, errors="replace") as f:
                return [line.rstrip() for line in f if "panicked" in line]
        except OSError:
            return []

    def stop_and_check(self, checks, when=""):
        """Stops the server (SIGTERM) and records that it exited cleanly and that
        its log reports no panic."""
        checks.check(f"server stops cleanly on SIGTERM{when}", self.stop())
        panics = self.log_panics()
        checks.check("no panic in server.log", not panics, "; ".join(panics[:3]))

    def cleanup(self):
        if self.proc is not None:
            self.kill()
        if self.own_dir and os.environ.get("HANGAR_KEEP_TMP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- clients ----

    def client(self, key_id=None, secret=None, **config):
        return s3_client(self.info, key_id, secret, **config)

    def admin(self, method, path, body=None):
        """Calls the admin API; returns the decoded JSON (or None for an empty body)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.info["admin_endpoint"] + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + self.info["admin_token"],
                                              "Content-Type": "application/json"})
        with URLOPEN(req, timeout=30) as r:
            raw = r.read()
        return json.loads(raw) if raw.strip() else None

    def create_key(self, name):
        """A new access key with no permissions. Returns (id, secret)."""
        k = self.admin("POST", "/v2/CreateKey", {"name": name})
        return k["accessKeyId"], k["secretAccessKey"]

    def allow(self, bucket, key_id, **perms):
        bid = self.admin("GET", "/v2/GetBucketInfo?globalAlias=" + urllib.parse.quote(bucket))["id"]
        self.admin("POST", "/v2/AllowBucketKey",
                   {"bucketId": bid, "accessKeyId": key_id, "permissions": perms})


def s3_client(info, key_id=None, secret=None, **config):
    cfg = dict(region_name=info.get("region", "hangar"),
               s3={"addressing_style": "path"},
               signature_version="s3v4",
               retries={"max_attempts": 1, "mode": "standard"},  # surface errors, don't retry
               connect_timeout=10, read_timeout=120)
    cfg.update(config)
    return boto3.client("s3", endpoint_url=info["s3_endpoint"],
                        aws_access_key_id=key_id or info["access_key_id"],
                        aws_secret_access_key=secret or info["secret_access_key"],
                        config=Config(**cfg))


def err_of(e):
    """(HTTP status, S3 error code, message) of a botocore ClientError."""
    r = e.response
    return (r.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            r.get("Error", {}).get("Code"), r.get("Error", {}).get("Message"))


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------- SigV4 ----
# Written out here (not botocore) so requests can be signed for any time, with
# any payload hash, and streamed as signed aws-chunked bodies.

EMPTY_SHA256 = sha256_hex(b"")
AMZ_FMT = "%Y%m%dT%H%M%SZ"


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret, date, region, service="s3"):
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def _uri_encode(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def canonical_query(query):
    return "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(query.items()))


class SigV4:
    def __init__(self, info, key_id=None, secret=None):
        self.endpoint = info["s3_endpoint"]
        self.host = urllib.parse.urlsplit(self.endpoint).netloc
        self.region = info.get("region", "hangar")
        self.key_id = key_id or info["access_key_id"]
        self.secret = secret or info["secret_access_key"]

    def _scope(self, when):
        return f"{when.strftime('%Y%m%d')}/{self.region}/s3/aws4_request"

    def _signature(self, when, canonical_request):
        sts = "\n".join(["AWS4-HMAC-SHA256", when.strftime(AMZ_FMT), self._scope(when),
                         sha256_hex(canonical_request.encode())])
        return hmac.new(signing_key(self.secret, when.strftime("%Y%m%d"), self.region),
                        sts.encode(), hashlib.sha256).hexdigest()

    def sign(self, method, path, headers=None, payload_hash=EMPTY_SHA256, query=None, when=None):
        """Headers (incl. Host, X-Amz-Date, X-Amz-Content-Sha256, Authorization) for a request."""
        when = when or datetime.datetime.now(datetime.timezone.utc)
        h = {"host": self.host, "x-amz-date": when.strftime(AMZ_FMT),
             "x-amz-content-sha256": payload_hash}
        for k, v in (headers or {}).items():
            h[k.lower()] = str(v)
        names = sorted(h)
        creq = "\n".join([method, _uri_encode(path, safe="/-_.~"), canonical_query(query or {}),
                          "".join(f"{n}:{h[n].strip()}\n" for n in names), ";".join(names),
                          payload_hash])
        sig = self._signature(when, creq)
        h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.key_id}/{self._scope(when)}, "
                              f"SignedHeaders={';'.join(names)}, Signature={sig}")
        self.last_seed = sig  # the seed signature of a streaming upload
        self.last_when = when
        return h

    def presign(self, method, path, expires=3600, when=None):
        """A presigned URL (query-string auth)."""
        when = when or datetime.datetime.now(datetime.timezone.utc)
        q = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256",
             "X-Amz-Credential": f"{self.key_id}/{self._scope(when)}",
             "X-Amz-Date": when.strftime(AMZ_FMT), "X-Amz-Expires": str(expires),
             "X-Amz-SignedHeaders": "host"}
        creq = "\n".join([method, _uri_encode(path, safe="/-_.~"), canonical_query(q),
                          f"host:{self.host}\n", "host", "UNSIGNED-PAYLOAD"])
        q["X-Amz-Signature"] = self._signature(when, creq)
        return f"{self.endpoint}{_uri_encode(path, safe='/-_.~')}?{canonical_query(q)}"

    def chunk_signature(self, when, prev_sig, chunk):
        """Signature of one aws-chunked chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)."""
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", when.strftime(AMZ_FMT), self._scope(when),
                         prev_sig, EMPTY_SHA256, sha256_hex(chunk)])
        return hmac.new(signing_key(self.secret, when.strftime("%Y%m%d"), self.region),
                        sts.encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- SigV2 ----

def sig_v2_headers(info, method, path, headers=None, when=None, secret=None):
    """Headers of a SigV2 header-signed request (Authorization: AWS id:signature)."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    host = urllib.parse.urlsplit(info["s3_endpoint"]).netloc
    h = {"Host": host, "Date": email.utils.format_datetime(when, usegmt=True)}
    h.update(headers or {})
    lower = {k.lower(): str(v) for k, v in h.items()}
    amz = "".join(f"{k}:{lower[k].strip()}\n" for k in sorted(lower) if k.startswith("x-amz-"))
    sts = "\n".join([method, lower.get("content-md5", ""), lower.get("content-type", ""),
                     lower["date"]]) + "\n" + amz + path
    key = (secret or info["secret_access_key"]).encode()
    sig = base64.b64encode(hmac.new(key, sts.encode(), hashlib.sha1).digest()).decode()
    h["Authorization"] = f"AWS {info['access_key_id']}:{sig}"
    return h


def raw_request(endpoint, method, path_and_query, headers=None, body=b"", timeout=60):
    """Sends exactly these headers and body. Returns (status, headers dict, body bytes)."""
    u = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        # Host is given (and signed) by the caller; http.client must not add another.
        conn.putrequest(method, path_and_query, skip_host="host" in {k.lower() for k in hdrs},
                        skip_accept_encoding=True)
        if not any(k.lower() == "content-length" for k in hdrs) and \
                not any(k.lower() == "transfer-encoding" for k in hdrs):
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def error_code(body):
    """(Code, Message) from an S3 XML error body, or (None, None)."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None, None
    return root.findtext("Code"), root.findtext("Message")


def url_get(url, method="GET", data=None, timeout=60):
    """Plain HTTP (e.g. a presigned URL). Returns (status, body)."""
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with URLOPEN(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ---------------------------------------------------------------- checks ----

class Checks:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = []

    def check(self, label, cond, detail=""):
        if cond:
            self.passed += 1
            print(f"[{self.name}] ok   {label}" + (f"  ({detail})" if detail else ""), flush=True)
        else:
            self.failed.append(label)
            print(f"[{self.name}] FAIL {label}" + (f"  -- {detail}" if detail else ""), flush=True)
        return cond

    def summary(self):
        print(f"[{self.name}] summary: ok={self.passed} failed={len(self.failed)}", flush=True)
        for f in self.failed:
            print(f"[{self.name}]   failed: {f}", flush=True)
        return 1 if self.failed else 0
