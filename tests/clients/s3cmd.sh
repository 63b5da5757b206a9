#!/usr/bin/env bash
# End-to-end test with s3cmd against a fresh server.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v s3cmd >/dev/null || die "s3cmd not installed (run install.sh)"
start_server # no --bucket: s3cmd mb creates it

B=s3cmd-test
W="$(new_tmpdir)"
# host_bucket without %(bucket)s means path-style requests to host_base.
cat >"$W/s3cfg" <<EOF
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = $S3_HOSTPORT
host_bucket = $S3_HOSTPORT
bucket_location = hangar
use_https = False
signature_v2 = False
check_ssl_certificate = False
multipart_chunk_size_mb = 5
socket_timeout = 60
progress_meter = False
EOF
S3C=(s3cmd -c "$W/s3cfg")

gen_file "$W/small.bin" 4096
gen_file "$W/mid.bin" 17M # > 15 MiB: s3cmd sends it as multipart (5 MiB chunks)
for i in $(seq 1 25); do
  d="$W/tree/x$((i % 3))/y$((i % 2))"
  mkdir -p "$d"
  if ((i % 2)); then seq 1 $((i * 20)) >"$d/n$i.txt"; else gen_file "$d/b$i.bin" $((i * 512)); fi
done

t_mb() {
  "${S3C[@]}" mb "s3://$B"
  "${S3C[@]}" ls | grep -q "s3://$B\$"
}

t_put_get() { # NAME
  "${S3C[@]}" put "$W/$1" "s3://$B/obj/$1"
  "${S3C[@]}" get --force "s3://$B/obj/$1" "$W/got-$1"
  assert_same_file "$W/$1" "$W/got-$1"
}

t_ls_info() {
  local out
  out="$("${S3C[@]}" ls "s3://$B/obj/")"
  echo "$out"
  grep -q "s3://$B/obj/small.bin\$" <<<"$out"
  grep -q "s3://$B/obj/mid.bin\$" <<<"$out"
  out="$("${S3C[@]}" ls "s3://$B/")"
  grep -q "DIR .*s3://$B/obj/\$" <<<"$out" || { echo "no DIR obj/ in: $out" >&2; return 1; }
  out="$("${S3C[@]}" info "s3://$B/obj/small.bin")"
  echo "$out"
  grep -Eq 'File size: *4096' <<<"$out"
}

t_sync() {
  "${S3C[@]}" sync "$W/tree/" "s3://$B/tree/"
  "${S3C[@]}" sync "s3://$B/tree/" "$W/tree-down/"
  diff -r "$W/tree" "$W/tree-down"
  # Nothing changed, so a second upload sync transfers nothing.
  local out
  out="$("${S3C[@]}" sync "$W/tree/" "s3://$B/tree/")"
  echo "$out"
  if grep -q "upload:" <<<"$out"; then
    echo "second sync re-uploaded files" >&2
    return 1
  fi
  # Local deletion is mirrored with --delete-removed.
  rm -f "$W/tree/x1/y1/n1.txt"
  "${S3C[@]}" sync --delete-removed "$W/tree/" "s3://$B/tree/"
  local n
  n="$("${S3C[@]}" ls -r "s3://$B/tree/" | wc -l)"
  assert_eq "$n" 24 "objects under tree/ after sync --delete-removed"
}

t_signurl() {
  # Note: s3cmd signurl produces a SigV2 query-string URL (AWSAccessKeyId/Expires/Signature).
  local url code
  url="$("${S3C[@]}" signurl "s3://$B/obj/small.bin" +300)"
  echo "signed url: $url"
  code="$(curl -s -o "$W/signed.bin" -w '%{http_code}' --max-time 60 "$url")"
  if [[ "$code" != 200 ]]; then
    echo "GET of s3cmd signurl (SigV2 presigned) returned HTTP $code:" >&2
    cat "$W/signed.bin" >&2
    return 1
  fi
  assert_same_file "$W/small.bin" "$W/signed.bin"
}

t_signature_v2() {
  # Older setups run s3cmd with signature_v2 = True: header-signed SigV2.
  "${S3C[@]}" --signature-v2 put "$W/mid.bin" "s3://$B/v2/mid.bin"
  "${S3C[@]}" --signature-v2 get --force "s3://$B/v2/mid.bin" "$W/got-v2.bin"
  assert_same_file "$W/mid.bin" "$W/got-v2.bin"
  "${S3C[@]}" --signature-v2 ls "s3://$B/v2/" | grep -q "s3://$B/v2/mid.bin\$"
  "${S3C[@]}" --signature-v2 del "s3://$B/v2/mid.bin"
}

t_del() {
  "${S3C[@]}" del "s3://$B/obj/small.bin"
  if "${S3C[@]}" info "s3://$B/obj/small.bin" 2>"$W/del.err"; then
    echo "object still there after del" >&2
    return 1
  fi
  cat "$W/del.err"
  "${S3C[@]}" del --recursive --force "s3://$B/"
  local n
  n="$("${S3C[@]}" ls -r "s3://$B/" | wc -l)"
  assert_eq "$n" 0 "objects left after del --recursive"
  "${S3C[@]}" rb "s3://$B"
}

step "mb + ls buckets" t_mb
step "put/get 4 KiB" t_put_get small.bin
step "put/get 17 MiB (multipart)" t_put_get mid.bin
step "ls + info" t_ls_info
step "sync tree up/down + diff -r" t_sync
step "signurl + curl GET" t_signurl
step "put/get/ls/del with SigV2 header signing" t_signature_v2
step "del, del --recursive, rb" t_del
finish
