#!/usr/bin/env bash
# End-to-end test with restic's S3 backend against a fresh server.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v restic >/dev/null || die "restic not installed (run install.sh)"
start_server restic-test

W="$(new_tmpdir)"
export RESTIC_REPOSITORY="s3:$ENDPOINT/$BUCKET/repo"
export RESTIC_PASSWORD="hangar-restic-test-password"
export RESTIC_CACHE_DIR="$W/cache"
RS=(restic --quiet)

# ~100 MiB of mixed data: many small text and binary files plus a few large ones.
D="$W/data"
for i in $(seq 1 300); do
  d="$D/dir$((i % 10))/sub$((i % 7))"
  mkdir -p "$d"
  case $((i % 3)) in
    0) seq "$i" $((i * 40)) >"$d/f$i.txt" ;;
    1) gen_file "$d/f$i.bin" $((i * 97 % 20000 + 1)) ;;
    2) seq 1 $((i * 3)) | sed "s/.*/line & of file $i, some compressible text/" >"$d/f$i.log" ;;
  esac
done
: >"$D/empty"
mkdir -p "$D/large"
gen_file "$D/large/a.bin" 40M
gen_file "$D/large/b.bin" 35M
gen_file "$D/large/c.bin" 20M
seq 1 500000 >"$D/large/numbers.txt"

t_init() { "${RS[@]}" init; }

t_backup1() { "${RS[@]}" backup --host hangar-test "$D"; }

t_backup2() {
  # Modify some files: append, overwrite part of a large file, delete, add.
  echo "appended" >>"$D/dir1/sub1/f1.bin"
  dd if=/dev/urandom of="$D/large/b.bin" bs=1M count=3 seek=10 conv=notrunc status=none
  rm -f "$D/dir2/sub2/f2.log"
  gen_file "$D/new/fresh.bin" 3M
  "${RS[@]}" backup --host hangar-test "$D"
  local n
  n="$("${RS[@]}" snapshots --json | jq length)"
  assert_eq "$n" 2 "snapshot count"
}

t_check() { "${RS[@]}" check --read-data; }

t_restore() { # DIR: restore latest into DIR and compare with the source
  "${RS[@]}" restore latest --target "$1"
  # restic restores under the full original path.
  diff -r "$D" "$1$D"
}

t_forget() {
  "${RS[@]}" forget --keep-last 1 --prune
  local n
  n="$("${RS[@]}" snapshots --json | jq length)"
  assert_eq "$n" 1 "snapshot count after forget"
}

step "init repository" t_init
step "first backup (~100 MiB)" t_backup1
step "second backup after edits" t_backup2
step "check --read-data" t_check
step "restore latest + diff -r" t_restore "$W/restore1"
step "forget --keep-last 1 --prune" t_forget
step "check --read-data after prune" t_check
step "restore after prune + diff -r" t_restore "$W/restore2"
finish
