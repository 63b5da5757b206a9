#!/usr/bin/env bash
# End-to-end test with rclone's S3 backend against a fresh server.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v rclone >/dev/null || die "rclone not installed (run install.sh)"
start_server rclone-test

W="$(new_tmpdir)"
# The remote "h:" is defined entirely through the environment (no config file).
export RCLONE_CONFIG="$W/rclone.conf"
: >"$RCLONE_CONFIG"
export RCLONE_CONFIG_H_TYPE=s3 RCLONE_CONFIG_H_PROVIDER=Other
export RCLONE_CONFIG_H_ENDPOINT="$ENDPOINT" RCLONE_CONFIG_H_REGION=hangar
export RCLONE_CONFIG_H_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"
export RCLONE_CONFIG_H_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
export RCLONE_CONFIG_H_FORCE_PATH_STYLE=true
# Low cutoff so the 30 MiB file goes multipart (5 MiB chunks); no retries so
# errors surface instead of being papered over.
RC=(rclone --s3-upload-cutoff 10M --s3-chunk-size 5M --retries 1 --low-level-retries 2
  --contimeout 10s --timeout 60s)
R="h:$BUCKET"

# Source tree: nested small text/binary files plus one 30 MiB file.
for i in $(seq 1 40); do
  d="$W/src/a$((i % 4))/b$((i % 3))"
  mkdir -p "$d"
  if ((i % 2)); then seq 1 $((i * 50)) >"$d/t$i.txt"; else gen_file "$d/r$i.bin" $((i * 777)); fi
done
: >"$W/src/empty.txt"
gen_file "$W/src/large/big.bin" 30M

sorted_local() { (cd "$1" && find . -type f | sed 's|^\./||' | sort); }

t_copy() {
  "${RC[@]}" copy "$W/src" "$R/copy"
  "${RC[@]}" check --download "$W/src" "$R/copy"
}

t_lsf() {
  diff <(sorted_local "$W/src") <("${RC[@]}" lsf -R --files-only "$R/copy" | sort)
  # Directory view at the top level (from CommonPrefixes).
  diff <(printf '%s\n' a0/ a1/ a2/ a3/ empty.txt large/) <("${RC[@]}" lsf "$R/copy" | sort)
  # Size listing matches.
  local sz
  sz="$("${RC[@]}" lsf --format s "$R/copy/large")"
  assert_eq "$sz" $((30 * 1024 * 1024)) "size of large/big.bin"
}

t_sync() {
  # Change the source: edit, delete, add; then sync and verify the mirror.
  "${RC[@]}" sync "$W/src" "$R/sync"
  echo "changed" >>"$W/src/a1/b1/t1.txt"
  rm -f "$W/src/a2/b2/r2.bin"
  gen_file "$W/src/a0/new.bin" 12345
  "${RC[@]}" sync "$W/src" "$R/sync"
  "${RC[@]}" check --download "$W/src" "$R/sync"
  diff <(sorted_local "$W/src") <("${RC[@]}" lsf -R --files-only "$R/sync" | sort)
}

t_download() {
  "${RC[@]}" copy "$R/sync" "$W/back"
  diff -r "$W/src" "$W/back"
  # Server-side copy (CopyObject) of a single file.
  "${RC[@]}" copyto "$R/sync/a0/new.bin" "$R/copied/new.bin"
  "${RC[@]}" cat "$R/copied/new.bin" | cmp - "$W/src/a0/new.bin"
}

t_purge() {
  "${RC[@]}" purge "$R/copy"
  "${RC[@]}" purge "$R/sync"
  "${RC[@]}" purge "$R/copied"
  local left
  left="$("${RC[@]}" lsf -R "$R")"
  assert_eq "$left" "" "objects left after purge"
}

step "copy + check --download" t_copy
step "lsf listings" t_lsf
step "sync after edits + check --download" t_sync
step "copy back + diff -r, server-side copyto" t_download
step "purge" t_purge
finish
