#!/usr/bin/env bash
# End-to-end test with the AWS CLI (aws s3 / aws s3api) against a fresh server.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v aws >/dev/null || die "aws CLI not installed (run install.sh)"
start_server # no --bucket: the bucket is created through S3 below

B=awscli-test
W="$(new_tmpdir)"
awss3() { aws --endpoint-url "$ENDPOINT" s3 "$@"; }
awsapi() { aws --endpoint-url "$ENDPOINT" s3api "$@"; }

# Local fixtures: empty, 1 KiB, 200 MiB (above the CLI's 8 MiB multipart threshold).
: >"$W/empty.bin"
gen_file "$W/small.bin" 1024
gen_file "$W/big.bin" 200M
# A small nested tree (30 files, text and binary, some empty-ish).
for i in $(seq 1 30); do
  d="$W/tree/d$((i % 3))/sub$((i % 4))"
  mkdir -p "$d"
  if ((i % 2)); then
    seq 1 $((i * 37)) >"$d/file$i.txt"
  else
    gen_file "$d/file$i.bin" $((i * 1000))
  fi
done
mkdir -p "$W/down"

t_mb() {
  awss3 mb "s3://$B"
  awsapi head-bucket --bucket "$B"
}

t_cp_roundtrip() { # cp NAME up then down and compare
  awss3 cp "$W/$1" "s3://$B/files/$1"
  awss3 cp "s3://$B/files/$1" "$W/down/$1"
  assert_same_file "$W/$1" "$W/down/$1"
}

t_head_object() {
  local len
  len="$(awsapi head-object --bucket "$B" --key files/small.bin --query ContentLength --output text)"
  assert_eq "$len" 1024 "ContentLength of files/small.bin"
  len="$(awsapi head-object --bucket "$B" --key files/big.bin --query ContentLength --output text)"
  assert_eq "$len" $((200 * 1024 * 1024)) "ContentLength of files/big.bin"
  # The 200 MiB upload went multipart: its ETag has a part-count suffix.
  awsapi head-object --bucket "$B" --key files/big.bin --query ETag --output text | tee /dev/stderr |
    grep -Eq -- '-[0-9]+"?$'
}

t_sync() {
  awss3 sync "$W/tree" "s3://$B/tree"
  awss3 sync "s3://$B/tree" "$W/tree-down"
  diff -r "$W/tree" "$W/tree-down"
  # A second sync uploads nothing (sizes and times match).
  local out
  out="$(awss3 sync "$W/tree" "s3://$B/tree")"
  assert_eq "$out" "" "second sync output"
}

t_ls() {
  local out n
  out="$(awss3 ls)"
  grep -q " $B\$" <<<"$out" || { echo "bucket $B not in 'aws s3 ls': $out" >&2; return 1; }
  out="$(awss3 ls "s3://$B/")"
  grep -q 'PRE files/' <<<"$out" || { echo "missing PRE files/ in: $out" >&2; return 1; }
  grep -q 'PRE tree/' <<<"$out" || { echo "missing PRE tree/ in: $out" >&2; return 1; }
  out="$(awss3 ls "s3://$B/files/")"
  grep -q ' 1024 small.bin$' <<<"$out" || { echo "small.bin not listed: $out" >&2; return 1; }
  n="$(awss3 ls --recursive "s3://$B/tree/" | wc -l)"
  assert_eq "$n" 30 "recursive listing count under tree/"
  n="$(awss3 ls --recursive "s3://$B" | wc -l)"
  assert_eq "$n" 33 "recursive listing count of bucket"
}

t_presign() {
  local url
  url="$(awss3 presign "s3://$B/files/small.bin" --expires-in 300)"
  echo "presigned: $url"
  curl -fsS --max-time 60 -o "$W/presigned.bin" "$url"
  assert_same_file "$W/small.bin" "$W/presigned.bin"
  # A wrong (but well-formed) signature must be refused: flip its last hex digit.
  local code last bad
  [[ "$url" =~ X-Amz-Signature=[0-9a-f]{64}$ ]] || { echo "signature is not the last parameter" >&2; return 1; }
  last="${url: -1}"
  bad="${url%?}$([[ "$last" == 0 ]] && echo 1 || echo 0)"
  code="$(curl -s -o "$W/tampered.xml" -w '%{http_code}' --max-time 60 "$bad")"
  cat "$W/tampered.xml"
  assert_eq "$code" 403 "HTTP status with a tampered signature"
  grep -q SignatureDoesNotMatch "$W/tampered.xml"
}

t_missing_key() {
  local out
  if out="$(awsapi get-object --bucket "$B" --key no/such/key "$W/missing.out" 2>&1)"; then
    echo "get-object of a missing key succeeded: $out" >&2
    return 1
  fi
  echo "$out"
  grep -q 'NoSuchKey' <<<"$out"
  if out="$(awss3 cp "s3://$B/no/such/key" "$W/missing.out" 2>&1)"; then
    echo "cp of a missing key succeeded: $out" >&2
    return 1
  fi
  echo "$out"
  grep -q '404' <<<"$out"
}

t_rm() {
  awss3 rm "s3://$B/files/small.bin"
  if awsapi head-object --bucket "$B" --key files/small.bin 2>"$W/rm.err"; then
    echo "object still there after rm" >&2
    return 1
  fi
  grep -q '404' "$W/rm.err" || { cat "$W/rm.err" >&2; return 1; }
  awss3 rm --recursive "s3://$B/tree/"
  local n
  n="$(awss3 ls --recursive "s3://$B/tree/" | wc -l || true)"
  assert_eq "$n" 0 "objects left under tree/ after rm --recursive"
  awss3 rm --recursive "s3://$B/"
  awss3 rb "s3://$B"
}

# An empty file before others on one keep-alive connection: the 0-byte PUT
# carries Expect: 100-continue, and botocore misreads the next response unless
# the server handles that exchange right. One request at a time (so the files
# share a connection), no retries and a short read timeout, so a stall fails
# the step instead of being retried away.
t_empty_file_first() {
  local cfg="$W/aws-config-serial" dir="$W/empty-first"
  mkdir -p "$dir/sub"
  : >"$dir/a-empty"
  : >"$dir/sub/a-empty"
  gen_file "$dir/b-small" 3000
  gen_file "$dir/sub/c-small" 100
  printf '[default]\ns3 =\n    addressing_style = path\n    max_concurrent_requests = 1\n' >"$cfg"
  AWS_CONFIG_FILE="$cfg" AWS_MAX_ATTEMPTS=1 aws --endpoint-url "$ENDPOINT" --cli-read-timeout 20 \
    s3 cp --recursive --only-show-errors "$dir" "s3://$B/empty-first/"
  AWS_CONFIG_FILE="$cfg" AWS_MAX_ATTEMPTS=1 aws --endpoint-url "$ENDPOINT" --cli-read-timeout 20 \
    s3 sync --only-show-errors "$dir" "s3://$B/empty-first-sync/"
  AWS_CONFIG_FILE="$cfg" AWS_MAX_ATTEMPTS=1 aws --endpoint-url "$ENDPOINT" --cli-read-timeout 20 \
    s3 cp --recursive --only-show-errors "s3://$B/empty-first-sync/" "$W/empty-first-down"
  diff -r "$dir" "$W/empty-first-down"
  awss3 rm --recursive --only-show-errors "s3://$B/empty-first/"
  awss3 rm --recursive --only-show-errors "s3://$B/empty-first-sync/"
}

# `rb --force` after an interrupted multipart upload: S3 deletes the bucket
# and the upload with it.
t_rb_force_with_incomplete_upload() {
  local b="$B-interrupted" id
  awss3 mb "s3://$b"
  awss3 cp "$W/small.bin" "s3://$b/done.bin"
  id="$(awsapi create-multipart-upload --bucket "$b" --key big.bin --query UploadId --output text)"
  awsapi upload-part --bucket "$b" --key big.bin --upload-id "$id" --part-number 1 --body "$W/small.bin" >/dev/null
  awss3 rb --force "s3://$b"
  if awsapi head-bucket --bucket "$b" 2>"$W/rb.err"; then
    echo "bucket $b still there after rb --force" >&2
    return 1
  fi
  grep -q '404' "$W/rb.err" || { cat "$W/rb.err" >&2; return 1; }
}

step "mb creates bucket" t_mb
step "cp 0-byte file up/down" t_cp_roundtrip empty.bin
step "cp 1 KiB file up/down" t_cp_roundtrip small.bin
step "cp 200 MiB file up/down (multipart)" t_cp_roundtrip big.bin
step "s3api head-object" t_head_object
step "sync tree up/down + diff -r" t_sync
step "cp/sync of a folder that starts with an empty file, one connection" t_empty_file_first
step "rb --force with an interrupted multipart upload" t_rb_force_with_incomplete_upload
step "ls (buckets, prefixes, recursive)" t_ls
step "presign + curl GET" t_presign
step "missing key gives NoSuchKey/404" t_missing_key
step "rm, rm --recursive, rb" t_rm
finish
