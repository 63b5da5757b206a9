#!/usr/bin/env bash
# Runs every real-client end-to-end test, each against its own fresh server.
# Env: HANGAR_BIN (default <repo>/target/debug/hangar), HANGAR_SKIP_INSTALL=1,
#      HANGAR_CLIENT_TIMEOUT (seconds per client, default 600),
#      HANGAR_CLIENTS (space-separated subset, e.g. "rclone.sh boto3_test.py"),
#      HANGAR_TARGET_* (run against a node already running instead of a fresh
#      single-node server each: see _use_target in lib.sh).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
export HANGAR_BIN="${HANGAR_BIN:-$REPO_ROOT/target/debug/hangar}"
LIMIT="${HANGAR_CLIENT_TIMEOUT:-600}"

if [[ "${HANGAR_SKIP_INSTALL:-0}" != 1 ]]; then
  "$HERE/install.sh"
fi

[[ -x "$HANGAR_BIN" ]] || {
  echo "run-all: server binary not found: $HANGAR_BIN (build it first)" >&2
  exit 1
}

read -r -a CLIENTS <<<"${HANGAR_CLIENTS:-aws_cli.sh rclone.sh restic.sh s3cmd.sh boto3_test.py}"

passed=0
failed=0
failed_names=()
for c in "${CLIENTS[@]}"; do
  case "$c" in
    *.py) cmd=(python3 "$HERE/$c") ;;
    *) cmd=(bash "$HERE/$c") ;;
  esac
  echo "=== $c"
  start=$SECONDS
  rc=0
  # Each client gets a hard time limit; SIGKILL 30 s after SIGTERM if it hangs.
  # ENDPOINT is cleared so boto3_test.py starts its own server, unless a
  # running node is the target.
  if [[ -n "${HANGAR_TARGET_ENDPOINT:-}" ]]; then
    env ENDPOINT="$HANGAR_TARGET_ENDPOINT" AWS_ACCESS_KEY_ID="$HANGAR_TARGET_KEY_ID" \
      AWS_SECRET_ACCESS_KEY="$HANGAR_TARGET_SECRET" timeout -k 30 "$LIMIT" "${cmd[@]}" || rc=$?
  else
    env -u ENDPOINT timeout -k 30 "$LIMIT" "${cmd[@]}" || rc=$?
  fi
  if ((rc == 0)); then
    passed=$((passed + 1))
    echo "=== $c: ok ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    failed_names+=("$c")
    [[ $rc == 124 ]] && echo "=== $c: timed out after $LIMIT s"
    echo "=== $c: FAILED (exit $rc, $((SECONDS - start)) s)"
  fi
done

((failed == 0)) || echo "failed clients: ${failed_names[*]}"
echo "clients: $passed passed, $failed failed"
((failed == 0))
