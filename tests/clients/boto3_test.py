#!/usr/bin/env python3
"""End-to-end test with boto3 (default checksum behaviour) against a server.

Uses ENDPOINT / AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment
when ENDPOINT is set; otherwise starts its own server from $HANGAR_BIN (default:
<repo>/target/debug/hangar) in a fresh temp dir and stops it at the end.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
BUCKET = "boto3-test"
MiB = 1024 * 1024

# No proxies: every request goes straight to 127.0.0.1.
URLOPEN = urllib.request.build_opener(urllib.request.ProxyHandler({})).open


class Server:
    """A single-node server in a fresh temp dir (only used without ENDPOINT)."""

    def __init__(self):
        self.bin = os.environ.get("HANGAR_BIN", os.path.join(REPO_ROOT, "target/debug/hangar"))
        self.dir = tempfile.mkdtemp(prefix="hangar-boto3.")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None

    def start(self):
        if not os.access(self.bin, os.X_OK):
            raise SystemExit(f"server binary not found or not executable: {self.bin}")
        args = [self.bin, "server", "--data-dir", self.dir,
                "--s3-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
                "--rpc-addr", "127.0.0.1:0"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        ready = os.path.join(self.dir, "ready.json")
        deadline = time.monotonic() + 60  # ready.json appears within 60 s
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                self.fail(f"server exited ({self.proc.returncode}) before ready.json")
            if time.monotonic() > deadline:
                self.fail("ready.json not written within 60 s")
            time.sleep(0.1)
        with open(ready) as f:
            info = json.load(f)
        deadline = time.monotonic() + 60  # then health must answer 200
        while True:
            try:
                req = urllib.request.Request(info["admin_endpoint"] + "/health",
                                             headers={"Authorization": "Bearer " + info["admin_token"]})
                with URLOPEN(req, timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.fail("health did not return 200 within 60 s")
            time.sleep(0.5)
        os.environ["ENDPOINT"] = info["s3_endpoint"]
        os.environ["AWS_ACCESS_KEY_ID"] = info["access_key_id"]
        os.environ["AWS_SECRET_ACCESS_KEY"] = info["secret_access_key"]
        print(f"server pid {self.proc.pid} ready at {info['s3_endpoint']}", flush=True)

    def log_tail(self):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.readlines()[-50:]
            sys.stderr.write("----- last 50 lines of server.log -----\n" + "".join(lines)
                             + "----- end of server log -----\n")
        except OSError:
            pass

    def fail(self, msg):
        self.log_tail()
        self.stop()
        raise SystemExit(msg)

    def stop(self):
        """SIGTERM, wait up to 20 s, then SIGKILL. True if it exited cleanly."""
        if self.proc is None:
            return True
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            print("server did not stop within 20 s of SIGTERM", file=sys.stderr)
            return False
        if rc != 0:
            print(f"server exited with status {rc} after SIGTERM", file=sys.stderr)
            return False
        return True

    def cleanup(self):
        if os.environ.get("HANGAR_KEEP_TMP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def make_client(secret=None, signature_version="s3v4"):
    cfg = Config(
        region_name="hangar",
        s3={"addressing_style": "path"},
        signature_version=signature_version,
        retries={"max_attempts": 1, "mode": "standard"},  # surface errors, don't retry
        connect_timeout=10,
        read_timeout=120,
    )
    return boto3.client(
        "s3",
        endpoint_url=os.environ["ENDPOINT"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or os.environ["AWS_SECRET_ACCESS_KEY"],
        config=cfg,
    )


def err_code(e):
    return e.response.get("Error", {}).get("Code"), e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


# ---- tests (run in order; later ones rely on the bucket from the first) ----

def test_create_bucket(s3):
    # As with AWS outside us-east-1, the region is named in the request.
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "hangar"})
    s3.head_bucket(Bucket=BUCKET)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert BUCKET in names, names


def test_put_get(s3):
    body = os.urandom(12345)
    r = s3.put_object(Bucket=BUCKET, Key="pg/obj.bin", Body=body)
    assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest(), r["ETag"]
    g = s3.get_object(Bucket=BUCKET, Key="pg/obj.bin")
    assert g["Body"].read() == body
    assert g["ContentLength"] == len(body), g["ContentLength"]
    assert g["ETag"] == r["ETag"], (g["ETag"], r["ETag"])
    # Empty object too.
    s3.put_object(Bucket=BUCKET, Key="pg/empty", Body=b"")
    assert s3.get_object(Bucket=BUCKET, Key="pg/empty")["Body"].read() == b""


def test_get_ranges(s3):
    body = bytes(range(256)) * 4  # 1024 bytes
    s3.put_object(Bucket=BUCKET, Key="range.bin", Body=body)
    cases = [("bytes=0-9", body[:10], "bytes 0-9/1024"),
             ("bytes=-5", body[-5:], "bytes 1019-1023/1024"),
             ("bytes=10-", body[10:], "bytes 10-1023/1024")]
    for rng, want, content_range in cases:
        g = s3.get_object(Bucket=BUCKET, Key="range.bin", Range=rng)
        got = g["Body"].read()
        assert got == want, (rng, len(got), len(want))
        status = g["ResponseMetadata"]["HTTPStatusCode"]
        assert status == 206, (rng, status)
        assert g.get("ContentRange") == content_range, (rng, g.get("ContentRange"))
        assert g["ContentLength"] == len(want), (rng, g["ContentLength"])


def test_head(s3):
    body = b"hello head\n"
    s3.put_object(Bucket=BUCKET, Key="head.txt", Body=body, ContentType="text/plain",
                  Metadata={"color": "blue"})
    h = s3.head_object(Bucket=BUCKET, Key="head.txt")
    assert h["ContentLength"] == len(body), h
    assert h["ContentType"] == "text/plain", h["ContentType"]
    assert h["Metadata"] == {"color": "blue"}, h["Metadata"]
    assert h["ETag"] == '"%s"' % hashlib.md5(body).hexdigest(), h["ETag"]
    assert h.get("LastModified") is not None


def test_multipart(s3):
    key = "mpu/big.bin"
    parts_data = [os.urandom(5 * MiB) for _ in range(3)] + [os.urandom(1000)]
    up = s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    uid = up["UploadId"]
    parts = []
    for n, data in enumerate(parts_data, start=1):
        r = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n, Body=data)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    listed = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)
    assert [p["PartNumber"] for p in listed.get("Parts", [])] == [1, 2, 3, 4], listed.get("Parts")
    done = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                        MultipartUpload={"Parts": parts})
    assert done["ETag"].strip('"').endswith("-4"), done["ETag"]
    whole = b"".join(parts_data)
    h = s3.head_object(Bucket=BUCKET, Key=key)
    assert h["ContentLength"] == len(whole), h["ContentLength"]
    assert h["ETag"] == done["ETag"], (h["ETag"], done["ETag"])
    got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(whole).digest(), "multipart content differs"
    # A range crossing the part 1/2 boundary.
    g = s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=%d-%d" % (5 * MiB - 3, 5 * MiB + 2))
    assert g["Body"].read() == whole[5 * MiB - 3:5 * MiB + 3]


def test_abort_multipart(s3):
    up = s3.create_multipart_upload(Bucket=BUCKET, Key="mpu/aborted")
    s3.upload_part(Bucket=BUCKET, Key="mpu/aborted", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 100)
    s3.abort_multipart_upload(Bucket=BUCKET, Key="mpu/aborted", UploadId=up["UploadId"])
    try:
        s3.head_object(Bucket=BUCKET, Key="mpu/aborted")
        raise AssertionError("aborted upload produced an object")
    except ClientError as e:
        assert err_code(e)[1] == 404, err_code(e)


def test_copy_object(s3):
    body = os.urandom(70000)
    s3.put_object(Bucket=BUCKET, Key="copy/src", Body=body, Metadata={"origin": "src"})
    r = s3.copy_object(Bucket=BUCKET, Key="copy/dst", CopySource={"Bucket": BUCKET, "Key": "copy/src"})
    assert r["CopyObjectResult"]["ETag"] == '"%s"' % hashlib.md5(body).hexdigest(), r
    g = s3.get_object(Bucket=BUCKET, Key="copy/dst")
    assert g["Body"].read() == body
    assert g["Metadata"] == {"origin": "src"}, g["Metadata"]


def test_list_pagination(s3):
    want = ["page/k%02d" % i for i in range(25)]
    for k in want:
        s3.put_object(Bucket=BUCKET, Key=k, Body=k.encode())
    seen, token, pages = [], None, 0
    for _ in range(10):  # bounded: 3 pages expected
        kw = {"Bucket": BUCKET, "Prefix": "page/", "MaxKeys": 10}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_objects_v2(**kw)
        pages += 1
        contents = r.get("Contents", [])
        assert len(contents) <= 10, len(contents)
        assert r["KeyCount"] == len(contents), (r["KeyCount"], len(contents))
        seen += [c["Key"] for c in contents]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert pages == 3, pages
    assert seen == want, seen  # every key once, in order


def test_list_delimiter(s3):
    for k in ["tree/a/1", "tree/a/2", "tree/b/1", "tree/top"]:
        s3.put_object(Bucket=BUCKET, Key=k, Body=b"x")
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix="tree/", Delimiter="/")
    prefixes = [p["Prefix"] for p in r.get("CommonPrefixes", [])]
    keys = [c["Key"] for c in r.get("Contents", [])]
    assert prefixes == ["tree/a/", "tree/b/"], prefixes
    assert keys == ["tree/top"], keys
    # Top level of the bucket groups everything under prefixes.
    r = s3.list_objects_v2(Bucket=BUCKET, Delimiter="/")
    prefixes = [p["Prefix"] for p in r.get("CommonPrefixes", [])]
    assert "tree/" in prefixes and "page/" in prefixes, prefixes


def test_delete_objects(s3):
    keys = ["del/%d" % i for i in range(6)]
    for k in keys:
        s3.put_object(Bucket=BUCKET, Key=k, Body=b"d")
    r = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys[:3]]})
    assert sorted(d["Key"] for d in r.get("Deleted", [])) == keys[:3], r
    assert not r.get("Errors"), r.get("Errors")
    r = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys[3:]], "Quiet": True})
    assert not r.get("Deleted"), r.get("Deleted")
    assert not r.get("Errors"), r.get("Errors")
    left = s3.list_objects_v2(Bucket=BUCKET, Prefix="del/").get("Contents", [])
    assert left == [], left


def test_presigned_get(s3):
    body = os.urandom(3000)
    s3.put_object(Bucket=BUCKET, Key="presign/get.bin", Body=body)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "presign/get.bin"},
                                    ExpiresIn=300)
    with URLOPEN(url, timeout=60) as r:
        assert r.status == 200, r.status
        assert r.read() == body


def test_presigned_put(s3):
    body = os.urandom(4000)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "presign/put.bin"},
                                    ExpiresIn=300)
    # Explicit type: urllib would otherwise label the body as a form.
    req = urllib.request.Request(url, data=body, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    try:
        with URLOPEN(req, timeout=60) as r:
            assert r.status == 200, r.status
    except urllib.error.HTTPError as e:
        raise AssertionError(f"presigned PUT: HTTP {e.code}: {e.read()[:500]!r}")
    assert s3.get_object(Bucket=BUCKET, Key="presign/put.bin")["Body"].read() == body


def test_no_such_key(s3):
    try:
        s3.get_object(Bucket=BUCKET, Key="does/not/exist")
        raise AssertionError("get_object of a missing key succeeded")
    except ClientError as e:
        assert err_code(e) == ("NoSuchKey", 404), err_code(e)
        # The error body names the resource and the request, as S3's does.
        err, meta = e.response["Error"], e.response["ResponseMetadata"]
        assert err.get("Resource") == f"/{BUCKET}/does/not/exist", err
        assert meta["RequestId"] == meta["HTTPHeaders"]["x-amz-request-id"], meta
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "does/not/exist"})
    try:
        URLOPEN(url, timeout=30)
        raise AssertionError("presigned GET of a missing key succeeded")
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        rid = e.headers["x-amz-request-id"]
        assert e.code == 404 and f"<RequestId>{rid}</RequestId>" in body, (e.code, rid, body)
        assert f"<Resource>/{BUCKET}/does/not/exist</Resource>" in body, body
    try:
        s3.get_object(Bucket="no-such-bucket-here", Key="x")
        raise AssertionError("get_object in a missing bucket succeeded")
    except ClientError as e:
        assert err_code(e) == ("NoSuchBucket", 404), err_code(e)
    # A bucket name the protocol layer refuses before any handler still
    # gets a message (botocore shows "Unknown" without one).
    for name in ("b", "Bad_Name"):
        try:
            s3.create_bucket(Bucket=name)
            raise AssertionError(f"bucket {name!r} was created")
        except ClientError as e:
            assert err_code(e) == ("InvalidBucketName", 400), err_code(e)
            assert e.response["Error"].get("Message") == "The specified bucket is not valid.", e.response


def test_bad_secret(s3):
    bad = make_client(secret="x" * 40)
    try:
        bad.list_objects_v2(Bucket=BUCKET)
        raise AssertionError("request with a wrong secret succeeded")
    except ClientError as e:
        assert err_code(e) == ("SignatureDoesNotMatch", 403), err_code(e)


def test_sig_v2_bucket_requests(s3):
    """botocore's SigV2 signs a path-style bucket request as `/bucket/`."""
    v2 = make_client(signature_version="s3")
    b = "boto3-sigv2"
    v2.create_bucket(Bucket=b)
    v2.head_bucket(Bucket=b)
    v2.get_bucket_location(Bucket=b)
    v2.put_object(Bucket=b, Key="k", Body=b"signed with v2")
    assert [o["Key"] for o in v2.list_objects(Bucket=b)["Contents"]] == ["k"]
    assert v2.get_object(Bucket=b, Key="k")["Body"].read() == b"signed with v2"
    v2.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "k"}]})
    v2.delete_bucket(Bucket=b)
    # A wrong secret is still refused, whichever form of the path it signs.
    bad = make_client(secret="x" * 40, signature_version="s3")
    for call in (lambda: bad.list_objects(Bucket=BUCKET), lambda: bad.create_bucket(Bucket="boto3-sigv2-bad")):
        try:
            call()
            raise AssertionError("SigV2 request with a wrong secret succeeded")
        except ClientError as e:
            assert err_code(e) == ("SignatureDoesNotMatch", 403), err_code(e)


def test_not_modified_carries_validators(s3):
    """RFC 9110 §15.4.5: a 304 sends the ETag (and the caching headers)."""
    etag = s3.put_object(Bucket=BUCKET, Key="cond/304", Body=b"abc", CacheControl="max-age=60")["ETag"]
    last = s3.head_object(Bucket=BUCKET, Key="cond/304")["ResponseMetadata"]["HTTPHeaders"]["last-modified"]
    for call in (lambda: s3.get_object(Bucket=BUCKET, Key="cond/304", IfNoneMatch=etag),
                 lambda: s3.head_object(Bucket=BUCKET, Key="cond/304", IfNoneMatch=etag)):
        try:
            call()
            raise AssertionError("If-None-Match with the current ETag did not answer 304")
        except ClientError as e:
            meta = e.response["ResponseMetadata"]
            assert meta["HTTPStatusCode"] == 304, meta
            h = meta["HTTPHeaders"]
            assert h.get("etag") == etag, h
            assert h.get("last-modified") == last, h
            assert h.get("cache-control") == "max-age=60", h


def test_stored_headers_are_byte_exact(s3):
    s3.put_object(Bucket=BUCKET, Key="hdr/enc", Body=b"x", ContentEncoding="deflate, gzip",
                  ContentType="text/plain; charset=utf-8")
    for r in (s3.head_object(Bucket=BUCKET, Key="hdr/enc"), s3.get_object(Bucket=BUCKET, Key="hdr/enc")):
        assert r["ContentEncoding"] == "deflate, gzip", r["ContentEncoding"]
        assert r["ContentType"] == "text/plain; charset=utf-8", r["ContentType"]


def test_delete_bucket_with_incomplete_upload(s3):
    """S3 deletes a bucket whose only content is an unfinished multipart upload."""
    b = "boto3-interrupted"
    s3.create_bucket(Bucket=b)
    up = s3.create_multipart_upload(Bucket=b, Key="big")["UploadId"]
    s3.upload_part(Bucket=b, Key="big", UploadId=up, PartNumber=1, Body=os.urandom(1000))
    s3.put_object(Bucket=b, Key="obj", Body=b"1")
    try:
        s3.delete_bucket(Bucket=b)
        raise AssertionError("a bucket holding an object was deleted")
    except ClientError as e:
        assert err_code(e) == ("BucketNotEmpty", 409), err_code(e)
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", [])] == [up]
    s3.delete_object(Bucket=b, Key="obj")
    s3.delete_bucket(Bucket=b)
    try:
        s3.head_bucket(Bucket=b)
        raise AssertionError("bucket still there")
    except ClientError as e:
        assert err_code(e)[1] == 404, err_code(e)


TESTS = [test_create_bucket, test_put_get, test_get_ranges, test_head, test_multipart,
         test_abort_multipart, test_copy_object, test_list_pagination, test_list_delimiter,
         test_delete_objects, test_presigned_get, test_presigned_put, test_no_such_key,
         test_bad_secret, test_sig_v2_bucket_requests, test_not_modified_carries_validators,
         test_stored_headers_are_byte_exact, test_delete_bucket_with_incomplete_upload]


def main():
    server = None
    if not os.environ.get("ENDPOINT"):
        server = Server()
        server.start()
    ok = failed = 0
    try:
        s3 = make_client()
        for t in TESTS:
            name = t.__name__
            try:
                t(s3)
                ok += 1
                print(f"{name} ... ok", flush=True)
            except Exception:  # report and keep going
                failed += 1
                print(f"{name} ... FAIL", flush=True)
                traceback.print_exc(file=sys.stdout)
                sys.stdout.flush()
    finally:
        if server is not None:
            if server.stop():
                ok += 1
                print("server stops cleanly on SIGTERM ... ok")
            else:
                failed += 1
                print("server stops cleanly on SIGTERM ... FAIL")
            if failed:
                server.log_tail()
            server.cleanup()
    print(f"boto3 summary: steps ok={ok} failed={failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
