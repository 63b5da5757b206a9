#!/usr/bin/env python3
"""Bad and hostile requests: each must fail with the exact S3 error code and
HTTP status, and must leave the stored data exactly as it was.

After every case the script re-reads the baseline object, and compares the
bucket list, every object listing (key, size, ETag) and the in-progress
multipart uploads with a snapshot taken at the start.

Where a crafted request is used, a positive control sends the same kind of
request correctly first, so a rejection proves the server noticed the fault
and not that the request was malformed in some other way.

Usage: python3 tests/robustness/bad_input.py   (HANGAR_BIN selects the binary)
"""
import base64
import datetime
import hashlib
import os
import socket
import sys
import urllib.parse
import time
import zlib

from botocore.exceptions import ClientError, ParamValidationError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (EMPTY_SHA256, KiB, Checks, Server, SigV4, err_of, error_code,  # noqa: E402
                    raw_request, sig_v2_headers, url_get)

BUCKET = "robust-bucket"
BASE_KEY = "base.bin"
BASE = os.urandom(150 * KiB)  # large enough to send as several aws-chunked chunks
TEN_KEY = "ten.bin"
TEN = b"0123456789"
EVIL = b"this must never be stored"

C = Checks("bad_input")


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def b64(b):
    return base64.b64encode(b).decode()


def crc32_b64(data):
    return b64(zlib.crc32(data).to_bytes(4, "big"))


def call(fn):
    """Runs a boto3 call: (status, code, message); status 200-ish on success."""
    try:
        r = fn()
        return r.get("ResponseMetadata", {}).get("HTTPStatusCode", 200), None, None
    except ClientError as e:
        return err_of(e)


def expect(label, fn, status, code):
    """A boto3 call must fail with exactly this status and code."""
    got = call(fn)
    C.check(f"{label} -> {status} {code}", got[0] == status and got[1] == code,
            f"got {got[0]} {got[1]}: {got[2]}")
    return got


def expect_raw(label, resp, status, code=None):
    """A raw response must have this status (and code, if given)."""
    st, _, body = resp
    got_code, msg = error_code(body)
    ok = st == status and (code is None or got_code == code)
    want = f"{status} {code}" if code else f"{status}"
    C.check(f"{label} -> {want}", ok, f"got {st} {got_code}: {msg}" if not ok else f"code {got_code}")
    return st, got_code


class State:
    """Snapshot of everything visible through S3, to prove a failed request changed nothing."""

    def __init__(self, s3):
        self.s3 = s3
        self.snap = self.take()

    def take(self):
        s3 = self.s3
        buckets = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
        objects, uploads = {}, {}
        for b in buckets:
            for page in s3.get_paginator("list_objects_v2").paginate(
                    Bucket=b, PaginationConfig={"MaxItems": 10000}):
                for o in page.get("Contents", []):
                    objects[(b, o["Key"])] = (o["Size"], o["ETag"])
            r = s3.list_multipart_uploads(Bucket=b)
            uploads[b] = sorted((u["Key"], u["UploadId"]) for u in r.get("Uploads", []))
        return {"buckets": buckets, "objects": objects, "uploads": uploads}

    def refresh(self):
        self.snap = self.take()

    def unchanged(self, label):
        """The baseline objects read back byte-exact and nothing else appeared or changed."""
        problems = []
        try:
            if self.s3.get_object(Bucket=BUCKET, Key=BASE_KEY)["Body"].read() != BASE:
                problems.append(f"{BASE_KEY} bytes changed")
            if self.s3.get_object(Bucket=BUCKET, Key=TEN_KEY)["Body"].read() != TEN:
                problems.append(f"{TEN_KEY} bytes changed")
            now_ = self.take()
        except ClientError as e:
            C.check(f"{label}: data unchanged", False, f"reading back failed: {err_of(e)}")
            return
        for part in ("buckets", "objects", "uploads"):
            if now_[part] != self.snap[part]:
                if part == "objects":
                    a, b = set(self.snap[part].items()), set(now_[part].items())
                    problems.append(f"objects: gone {sorted(a - b)} new {sorted(b - a)}")
                else:
                    problems.append(f"{part}: {self.snap[part]} -> {now_[part]}")
        C.check(f"{label}: data unchanged", not problems, "; ".join(problems))


def main():
    srv = Server(bucket=BUCKET, prefix="hangar-bad-input.")
    try:
        info = srv.start()
        print(f"server pid {srv.pid} at {info['s3_endpoint']} ({srv.bin})", flush=True)
        run(srv, info)
        srv.stop_and_check(C)
        check_log_levels(srv.log_path)
    except Exception:
        print(srv.log_tail(), file=sys.stderr)
        raise
    finally:
        srv.cleanup()
    return C.summary()


def check_log_levels(path):
    """Every request above is the client's fault or asks for something
    unsupported: none is a server error, so none may be logged as one. The log
    goes to a file, so it carries no terminal colour codes either."""
    with open(path, "rb") as f:
        text = f.read().decode(errors="replace")
    errors = [line for line in text.splitlines() if " ERROR " in line]
    C.check("no ERROR line in server.log after client errors and 501s", not errors,
            f"{len(errors)} lines, first: {errors[:2]}")
    C.check("no ANSI colour codes in a log written to a file", "\x1b[" not in text)


def run(srv, info):
    s3 = srv.client()
    s3.put_object(Bucket=BUCKET, Key=BASE_KEY, Body=BASE)
    s3.put_object(Bucket=BUCKET, Key=TEN_KEY, Body=TEN)
    st = State(s3)
    sig = SigV4(info)
    ep = info["s3_endpoint"]
    path = f"/{BUCKET}/{BASE_KEY}"

    # ---- authentication ----

    bad = srv.client(secret="0" * 64)
    expect("wrong secret: PutObject", lambda: bad.put_object(Bucket=BUCKET, Key=BASE_KEY, Body=EVIL),
           403, "SignatureDoesNotMatch")
    expect("wrong secret: GetObject", lambda: bad.get_object(Bucket=BUCKET, Key=BASE_KEY),
           403, "SignatureDoesNotMatch")
    st.unchanged("wrong secret")

    unknown = srv.client(key_id="HKffffffffffffffffffffffff")
    expect("unknown access key id: PutObject",
           lambda: unknown.put_object(Bucket=BUCKET, Key=BASE_KEY, Body=EVIL), 403, "InvalidAccessKeyId")
    st.unchanged("unknown access key id")

    expect_raw("anonymous (unsigned) PutObject",
               raw_request(ep, "PUT", path, {"Host": sig.host}, EVIL), 403, "AccessDenied")
    st.unchanged("anonymous PutObject")

    # Tamper after signing, just before the bytes go out.
    def flip_signature(request, **_):
        auth = request.headers["Authorization"]
        auth = auth.decode() if isinstance(auth, bytes) else auth
        last = auth[-1]
        request.headers["Authorization"] = auth[:-1] + ("0" if last != "0" else "1")

    tampered = srv.client()
    tampered.meta.events.register("before-send.s3.PutObject", flip_signature)
    expect("tampered Authorization signature: PutObject",
           lambda: tampered.put_object(Bucket=BUCKET, Key=BASE_KEY, Body=EVIL), 403, "SignatureDoesNotMatch")
    st.unchanged("tampered signature")

    def change_meta(request, **_):
        request.headers["x-amz-meta-color"] = "red"  # signed as "blue"

    tampered2 = srv.client()
    tampered2.meta.events.register("before-send.s3.PutObject", change_meta)
    expect("signed header altered after signing: PutObject",
           lambda: tampered2.put_object(Bucket=BUCKET, Key=BASE_KEY, Body=EVIL, Metadata={"color": "blue"}),
           403, "SignatureDoesNotMatch")
    st.unchanged("signed header altered")

    # ---- presigned URLs ----

    # Positive controls: both boto3's and our own presigned URLs work when valid.
    good = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": BASE_KEY}, ExpiresIn=300)
    s, body = url_get(good)
    C.check("control: valid boto3 presigned GET -> 200", s == 200 and body == BASE, f"got {s}")
    s, body = url_get(sig.presign("GET", path))
    C.check("control: valid hand-signed presigned GET -> 200", s == 200 and body == BASE, f"got {s}")
    s, _ = url_get(sig.presign("PUT", path), method="PUT", data=BASE)
    C.check("control: valid hand-signed presigned PUT (same bytes) -> 200", s == 200, f"got {s}")

    exp_get = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": BASE_KEY}, ExpiresIn=1)
    exp_put = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": BASE_KEY}, ExpiresIn=1)
    time.sleep(2.5)
    for label, (s, body) in (("GET", url_get(exp_get)), ("PUT", url_get(exp_put, "PUT", EVIL))):
        code, msg = error_code(body)
        C.check(f"presigned URL expired: {label} -> 403", s == 403, f"got {s} {code}: {msg}")
        print(f"    presigned expired {label}: {s} {code}: {msg}")
    st.unchanged("presigned expired")

    future = now() + datetime.timedelta(minutes=20)
    for label, (s, body) in (("GET", url_get(sig.presign("GET", path, 3600, when=future))),
                             ("PUT", url_get(sig.presign("PUT", path, 3600, when=future), "PUT", EVIL))):
        code, msg = error_code(body)
        C.check(f"presigned URL not yet valid (+20 min): {label} -> 403", s == 403, f"got {s} {code}: {msg}")
        print(f"    presigned not-yet-valid {label}: {s} {code}: {msg}")
    st.unchanged("presigned not yet valid")

    s, body = url_get(sig.presign("GET", path, 604800))
    C.check("control: presigned URL valid for exactly 7 days -> 200", s == 200 and body == BASE, f"got {s}")
    for label, (s, body) in (("GET", url_get(sig.presign("GET", path, 604801))),
                             ("PUT", url_get(sig.presign("PUT", path, 604801), "PUT", EVIL))):
        code, msg = error_code(body)
        C.check(f"presigned URL valid for more than 7 days: {label} -> 400 AuthorizationQueryParametersError",
                s == 400 and code == "AuthorizationQueryParametersError", f"got {s} {code}: {msg}")
    st.unchanged("presigned longer than 7 days")

    # ---- 100 Continue ----

    for label, body in (("150 KiB body", BASE), ("empty body", b"")):
        key = f"/{BUCKET}/continue-{len(body)}"
        h = sig.sign("PUT", key, {"Expect": "100-continue", "Content-Length": str(len(body))},
                     payload_hash=hashlib.sha256(body).hexdigest())
        interim, status = expect_continue(ep, "PUT", key, h, body)
        C.check(f"Expect: 100-continue, {label}: final 200", status == 200,
                f"interim {interim}, final {status}")
        if body:
            C.check(f"Expect: 100-continue, {label}: 100 Continue before the body", interim == 100,
                    f"interim {interim}")
    st.refresh()  # the two controls above created objects
    h = sig.sign("PUT", path, {"Expect": "100-continue", "Content-Length": str(len(EVIL))},
                 payload_hash=hashlib.sha256(EVIL).hexdigest())
    h["authorization"] = h["authorization"][:-1] + ("0" if h["authorization"][-1] != "0" else "1")
    interim, status = expect_continue(ep, "PUT", path, h, EVIL)
    C.check("Expect: 100-continue with a bad signature: 403 without asking for the body",
            status == 403 and interim is None, f"interim {interim}, final {status}")
    st.unchanged("100 Continue")

    # ---- clock skew (header signing) ----

    h = sig.sign("PUT", path, payload_hash=hashlib.sha256(BASE).hexdigest())
    s, _, body = raw_request(ep, "PUT", path, h, BASE)
    C.check("control: hand-signed PUT at current time -> 200", s == 200, f"got {s} {error_code(body)}")
    for label, delta in (("-20 min", -20), ("+20 min", 20), ("-16 min", -16), ("+16 min", 16)):
        when = now() + datetime.timedelta(minutes=delta)
        h = sig.sign("PUT", path, payload_hash=hashlib.sha256(EVIL).hexdigest(), when=when)
        expect_raw(f"clock skew {label}: PutObject", raw_request(ep, "PUT", path, h, EVIL),
                   403, "RequestTimeTooSkewed")
    st.unchanged("clock skew")

    # ---- SigV2 header signing (older tools) ----

    s, _, body = raw_request(ep, "PUT", path, sig_v2_headers(info, "PUT", path), BASE)
    C.check("control: SigV2 header-signed PUT (same bytes) -> 200", s == 200,
            f"got {s} {error_code(body)}")
    s, _, body = raw_request(ep, "GET", path, sig_v2_headers(info, "GET", path))
    C.check("control: SigV2 header-signed GET -> 200", s == 200 and body == BASE, f"got {s}")
    expect_raw("SigV2 wrong secret: PutObject",
               raw_request(ep, "PUT", path, sig_v2_headers(info, "PUT", path, secret="0" * 64), EVIL),
               403, "SignatureDoesNotMatch")
    h = sig_v2_headers(info, "PUT", path, {"x-amz-meta-color": "blue"})
    h["x-amz-meta-color"] = "red"
    expect_raw("SigV2 signed header altered: PutObject", raw_request(ep, "PUT", path, h, EVIL),
               403, "SignatureDoesNotMatch")
    for label, delta in (("-20 min", -20), ("+20 min", 20)):
        h = sig_v2_headers(info, "PUT", path, when=now() + datetime.timedelta(minutes=delta))
        expect_raw(f"SigV2 clock skew {label}: PutObject", raw_request(ep, "PUT", path, h, EVIL),
                   403, "RequestTimeTooSkewed")
    st.unchanged("SigV2")

    # ---- payload integrity ----

    # Signed for one body, another sent: a different body of the same length
    # (so no length check can catch it) and a different length.
    same_len = bytearray(BASE)
    same_len[len(same_len) // 2] ^= 0xFF
    for label, sent in (("one byte flipped", bytes(same_len)), ("other body", EVIL)):
        h = sig.sign("PUT", path, payload_hash=hashlib.sha256(BASE).hexdigest())
        expect_raw(f"body != x-amz-content-sha256 ({label})", raw_request(ep, "PUT", path, h, sent),
                   400, "XAmzContentSHA256Mismatch")
    st.unchanged("x-amz-content-sha256 mismatch")

    expect("Content-MD5 mismatch: PutObject",
           lambda: s3.put_object(Bucket=BUCKET, Key=BASE_KEY, Body=EVIL,
                                 ContentMD5=b64(hashlib.md5(b"other").digest())), 400, "BadDigest")
    h = sig.sign("PUT", path, {"content-md5": b64(hashlib.md5(b"other").digest())},
                 hashlib.sha256(EVIL).hexdigest())
    expect_raw("Content-MD5 mismatch (raw): PutObject", raw_request(ep, "PUT", path, h, EVIL), 400, "BadDigest")
    h = sig.sign("PUT", path, {"content-md5": "not-an-md5"}, hashlib.sha256(EVIL).hexdigest())
    expect_raw("Content-MD5 malformed: PutObject", raw_request(ep, "PUT", path, h, EVIL), 400, "InvalidDigest")
    h = sig.sign("PUT", path, {"content-md5": ""}, hashlib.sha256(EVIL).hexdigest())
    expect_raw("Content-MD5 empty: PutObject", raw_request(ep, "PUT", path, h, EVIL), 400, "InvalidDigest")
    st.unchanged("Content-MD5 mismatch")

    for name, value in (("crc32", crc32_b64(b"other")),
                        ("sha256", b64(hashlib.sha256(b"other").digest()))):
        h = sig.sign("PUT", path, {f"x-amz-checksum-{name}": value}, hashlib.sha256(EVIL).hexdigest())
        s, code = expect_raw(f"x-amz-checksum-{name} mismatch: PutObject",
                             raw_request(ep, "PUT", path, h, EVIL), 400)
        C.check(f"x-amz-checksum-{name} mismatch code is BadDigest or InvalidRequest",
                code in ("BadDigest", "InvalidRequest"), f"got {code}")
        print(f"    x-amz-checksum-{name} mismatch: {s} {code}")
    st.unchanged("x-amz-checksum mismatch")

    aws_chunked(sig, ep, path, st)

    # ---- names and ranges ----

    for name in ("ab", "UPPER", "a..b"):
        try:
            got = call(lambda: s3.create_bucket(Bucket=name, CreateBucketConfiguration={
                "LocationConstraint": info["region"]}))
        except ParamValidationError as e:  # client-side refusal: send it raw instead
            got = None
            print(f"    boto3 refused bucket name {name!r} locally ({e}); sending raw")
        if got is None or got[0] is None:
            h = sig.sign("PUT", f"/{name}")
            st_, _, body = raw_request(ep, "PUT", f"/{name}", h)
            got = (st_,) + error_code(body)
        C.check(f"invalid bucket name {name!r}: CreateBucket -> 400 InvalidBucketName",
                got[0] == 400 and got[1] == "InvalidBucketName", f"got {got[0]} {got[1]}: {got[2]}")
    st.unchanged("invalid bucket names")

    k1024 = "k" * 1024
    got = call(lambda: s3.put_object(Bucket=BUCKET, Key=k1024, Body=b"x"))
    C.check("control: key of exactly 1024 bytes -> 200", got[0] == 200, f"got {got}")
    if got[0] == 200:
        s3.delete_object(Bucket=BUCKET, Key=k1024)
    expect("key of 1025 bytes: PutObject", lambda: s3.put_object(Bucket=BUCKET, Key="k" * 1025, Body=EVIL),
           400, "KeyTooLongError")
    # 342 three-byte characters: 342 characters, 1026 bytes.
    expect("key of 1026 bytes in 342 chars: PutObject",
           lambda: s3.put_object(Bucket=BUCKET, Key="\u20ac" * 342, Body=EVIL), 400, "KeyTooLongError")
    st.unchanged("key too long")

    expect("Range bytes=100-200 on a 10-byte object",
           lambda: s3.get_object(Bucket=BUCKET, Key=TEN_KEY, Range="bytes=100-200"), 416, "InvalidRange")
    st.unchanged("unsatisfiable range")

    # ---- missing things ----

    expect("GetObject in a missing bucket", lambda: s3.get_object(Bucket="no-such-bucket-here", Key="k"),
           404, "NoSuchBucket")
    expect("PutObject into a missing bucket",
           lambda: s3.put_object(Bucket="no-such-bucket-here", Key="k", Body=EVIL), 404, "NoSuchBucket")
    expect("ListObjectsV2 of a missing bucket", lambda: s3.list_objects_v2(Bucket="no-such-bucket-here"),
           404, "NoSuchBucket")
    expect("GetObject of a missing key", lambda: s3.get_object(Bucket=BUCKET, Key="no/such/key"),
           404, "NoSuchKey")
    expect("HeadObject of a missing key (no body: code is the status)",
           lambda: s3.head_object(Bucket=BUCKET, Key="no/such/key"), 404, "404")
    st.unchanged("missing bucket/key")

    fake = "made-up-upload-id"
    expect("UploadPart with a made-up upload id",
           lambda: s3.upload_part(Bucket=BUCKET, Key="mpu.bin", UploadId=fake, PartNumber=1, Body=EVIL),
           404, "NoSuchUpload")
    expect("CompleteMultipartUpload with a made-up upload id",
           lambda: s3.complete_multipart_upload(
               Bucket=BUCKET, Key="mpu.bin", UploadId=fake,
               MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"%s"' % hashlib.md5(EVIL).hexdigest()}]}),
           404, "NoSuchUpload")
    expect("ListParts with a made-up upload id",
           lambda: s3.list_parts(Bucket=BUCKET, Key="mpu.bin", UploadId=fake), 404, "NoSuchUpload")
    expect("AbortMultipartUpload with a made-up upload id",
           lambda: s3.abort_multipart_upload(Bucket=BUCKET, Key="mpu.bin", UploadId=fake), 404, "NoSuchUpload")
    # A well-formed id that no longer exists: an aborted upload.
    up = s3.create_multipart_upload(Bucket=BUCKET, Key="mpu.bin")["UploadId"]
    etag = s3.upload_part(Bucket=BUCKET, Key="mpu.bin", UploadId=up, PartNumber=1, Body=EVIL)["ETag"]
    s3.abort_multipart_upload(Bucket=BUCKET, Key="mpu.bin", UploadId=up)
    expect("UploadPart to an aborted upload",
           lambda: s3.upload_part(Bucket=BUCKET, Key="mpu.bin", UploadId=up, PartNumber=2, Body=EVIL),
           404, "NoSuchUpload")
    expect("CompleteMultipartUpload of an aborted upload",
           lambda: s3.complete_multipart_upload(Bucket=BUCKET, Key="mpu.bin", UploadId=up, MultipartUpload={
               "Parts": [{"PartNumber": 1, "ETag": etag}]}), 404, "NoSuchUpload")
    st.unchanged("NoSuchUpload")

    # ---- bucket lifecycle conflicts ----

    expect("DeleteBucket of a non-empty bucket", lambda: s3.delete_bucket(Bucket=BUCKET), 409, "BucketNotEmpty")
    st.unchanged("BucketNotEmpty")

    cfg = {"LocationConstraint": info["region"]}
    expect("CreateBucket of an existing own bucket (from --bucket)",
           lambda: s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration=cfg), 409, "BucketAlreadyOwnedByYou")
    second = "robust-second"
    got = call(lambda: s3.create_bucket(Bucket=second, CreateBucketConfiguration=cfg))
    C.check("control: CreateBucket of a new bucket -> 200", got[0] == 200, f"got {got}")
    expect("CreateBucket of the same bucket again (same key)",
           lambda: s3.create_bucket(Bucket=second, CreateBucketConfiguration=cfg), 409, "BucketAlreadyOwnedByYou")
    s3.delete_bucket(Bucket=second)
    st.unchanged("BucketAlreadyOwnedByYou")

    # ---- a second key without permission on the bucket ----

    kid, ksecret = srv.create_key("robust-no-perms")
    other = srv.client(key_id=kid, secret=ksecret)
    expect("key without permission: GetObject", lambda: other.get_object(Bucket=BUCKET, Key=BASE_KEY),
           403, "AccessDenied")
    expect("key without permission: PutObject",
           lambda: other.put_object(Bucket=BUCKET, Key=BASE_KEY, Body=EVIL), 403, "AccessDenied")
    expect("key without permission: PutObject (new key)",
           lambda: other.put_object(Bucket=BUCKET, Key="new-by-other", Body=EVIL), 403, "AccessDenied")
    expect("key without permission: ListObjectsV2", lambda: other.list_objects_v2(Bucket=BUCKET),
           403, "AccessDenied")
    expect("key without permission: DeleteObject", lambda: other.delete_object(Bucket=BUCKET, Key=BASE_KEY),
           403, "AccessDenied")
    expect("key without permission: DeleteBucket", lambda: other.delete_bucket(Bucket=BUCKET),
           403, "AccessDenied")
    st.unchanged("AccessDenied (no permission)")

    srv.allow(BUCKET, kid, read=True)
    got = call(lambda: other.get_object(Bucket=BUCKET, Key=BASE_KEY))
    C.check("control: read-only key: GetObject -> 200", got[0] == 200, f"got {got}")
    expect("read-only key: PutObject", lambda: other.put_object(Bucket=BUCKET, Key=BASE_KEY, Body=EVIL),
           403, "AccessDenied")
    expect("read-only key: DeleteObject", lambda: other.delete_object(Bucket=BUCKET, Key=BASE_KEY),
           403, "AccessDenied")
    st.unchanged("AccessDenied (read-only)")

    # ---- unsupported operations ----

    expect("PutBucketVersioning", lambda: s3.put_bucket_versioning(
        Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}), 501, "NotImplemented")
    expect("GetBucketPolicy", lambda: s3.get_bucket_policy(Bucket=BUCKET), 501, "NotImplemented")
    expect("PutObjectTagging", lambda: s3.put_object_tagging(
        Bucket=BUCKET, Key=BASE_KEY, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}), 501, "NotImplemented")
    expect("PutBucketLifecycleConfiguration", lambda: s3.put_bucket_lifecycle_configuration(
        Bucket=BUCKET, LifecycleConfiguration={"Rules": [{"ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""},
                                                          "Expiration": {"Days": 1}}]}), 501, "NotImplemented")
    st.unchanged("NotImplemented")


def expect_continue(endpoint, method, path, headers, body, timeout=10):
    """Sends headers with Expect: 100-continue, waits (bounded) for an interim
    100 response before sending the body. Returns (interim status or None, final
    status)."""
    u = urllib.parse.urlsplit(endpoint)
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as sock:
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode())
        f = sock.makefile("rb")
        status = int(f.readline().split()[1])
        while f.readline() not in (b"\r\n", b""):  # rest of this response's head
            pass
        if status != 100:
            return None, status
        sock.sendall(body)
        final = int(f.readline().split()[1])
        return 100, final


def aws_chunked(sig, ep, path, st):
    """Streaming uploads: signed chunks (one altered) and unsigned with a trailing checksum."""
    chunks = [BASE[:64 * KiB], BASE[64 * KiB:128 * KiB], BASE[128 * KiB:]]

    def signed_body(parts, alter=False):
        when = now()
        enc_len = sum(len(f"{len(c):x};chunk-signature=".encode()) + 64 + 2 + len(c) + 2 for c in parts + [b""])
        h = sig.sign("PUT", path, {"content-encoding": "aws-chunked",
                                   "x-amz-decoded-content-length": str(len(BASE)),
                                   "content-length": str(enc_len)},
                     "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", when=when)
        prev, out = sig.last_seed, []
        for i, c in enumerate(parts + [b""]):
            prev = sig.chunk_signature(when, prev, c)
            if alter and i == 1:  # the data changes, its signature does not
                c = bytearray(c)
                c[100] ^= 0x01
                c = bytes(c)
            out.append(f"{len(c):x};chunk-signature={prev}\r\n".encode() + c + b"\r\n")
        body = b"".join(out)
        assert len(body) == enc_len
        return h, body

    h, body = signed_body(chunks)
    s, _, rb = raw_request(ep, "PUT", path, h, body)
    C.check("control: signed aws-chunked PUT (same bytes) -> 200", s == 200, f"got {s} {error_code(rb)}")
    h, body = signed_body(chunks, alter=True)
    s, _, rb = raw_request(ep, "PUT", path, h, body)
    code, msg = error_code(rb)
    C.check("signed aws-chunked PUT with one chunk's data altered -> 4xx", 400 <= s < 500, f"got {s} {code}: {msg}")
    print(f"    altered signed chunk: {s} {code}: {msg}")
    st.unchanged("altered aws-chunked chunk")

    def unsigned_body(crc):
        trailer = f"x-amz-checksum-crc32:{crc}\r\n".encode()
        body = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n" + trailer + b"\r\n"
        h = sig.sign("PUT", path, {"content-encoding": "aws-chunked",
                                   "x-amz-decoded-content-length": str(len(BASE)),
                                   "x-amz-trailer": "x-amz-checksum-crc32",
                                   "content-length": str(len(body))},
                     "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        return h, body

    h, body = unsigned_body(crc32_b64(BASE))
    s, _, rb = raw_request(ep, "PUT", path, h, body)
    C.check("control: unsigned aws-chunked PUT with correct trailing crc32 -> 200", s == 200,
            f"got {s} {error_code(rb)}")
    h, body = unsigned_body(crc32_b64(EVIL))
    s, _, rb = raw_request(ep, "PUT", path, h, body)
    code, msg = error_code(rb)
    C.check("unsigned aws-chunked PUT with wrong trailing crc32 -> 4xx", 400 <= s < 500, f"got {s} {code}: {msg}")
    print(f"    wrong trailing crc32: {s} {code}: {msg}")
    st.unchanged("wrong aws-chunked trailer")


if __name__ == "__main__":
    sys.exit(main())
