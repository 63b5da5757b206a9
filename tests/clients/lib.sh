# shellcheck shell=bash
# Shared helpers for the real-client end-to-end tests.
# Source it from a client script:  . "$(dirname "$0")/lib.sh"
#
# Provides:
#   start_server [BUCKET]  start a fresh single-node server (own temp data dir),
#                          or, with HANGAR_TARGET_ENDPOINT set, use that
#                          running node (see _use_target)
#   stop_server            SIGTERM, bounded wait, SIGKILL as a last resort
#   step NAME CMD...       run one test step, count pass/fail, show output on failure
#   finish                 print the summary and exit non-zero on any failure
#   new_tmpdir             a scratch directory removed at exit
#   gen_file PATH SIZE     random file of SIZE bytes (suffixes K/M allowed)

CLIENTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CLIENTS_DIR/../.." && pwd)"
HANGAR_BIN="${HANGAR_BIN:-$REPO_ROOT/target/debug/hangar}"
TEST_NAME="${TEST_NAME:-$(basename "$0" .sh)}"

PASSED=0
FAILED=0
FAILED_NAMES=()
HANGAR_PID=""
HANGAR_DATA_DIR=""

log() { printf '[%s] %s\n' "$TEST_NAME" "$*"; }
die() {
  printf '[%s] FATAL: %s\n' "$TEST_NAME" "$*" >&2
  exit 1
}

# Everything this run writes lives under one root, removed at exit.
# (new_tmpdir runs in $(...) subshells, so it cannot record dirs in a variable.)
TEST_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/hangar-${TEST_NAME}.XXXXXX")"

new_tmpdir() { mktemp -d "$TEST_ROOT/d.XXXXXX"; }

# gen_file PATH SIZE: SIZE as accepted by head -c (e.g. 1024, 5M).
gen_file() {
  mkdir -p "$(dirname "$1")"
  head -c "$2" /dev/urandom >"$1"
}

server_log_tail() {
  if [[ -n "$HANGAR_DATA_DIR" && -f "$HANGAR_DATA_DIR/server.log" ]]; then
    echo "----- last 50 lines of $HANGAR_DATA_DIR/server.log -----" >&2
    tail -n 50 "$HANGAR_DATA_DIR/server.log" >&2
    echo "----- end of server log -----" >&2
  fi
}

# Reads one string field of ready.json.
_ready_field() { jq -er ".$1" "$HANGAR_DATA_DIR/ready.json"; }

# Exports what the clients read: endpoint, credentials, region, and an AWS
# config forcing path-style addressing.
_client_env() {
  case "$ENDPOINT" in http://127.0.0.1:*) ;; *) die "unexpected s3_endpoint: $ENDPOINT" ;; esac
  S3_HOSTPORT="${ENDPOINT#http://}"
  export ENDPOINT ADMIN_ENDPOINT ADMIN_TOKEN AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY BUCKET S3_HOSTPORT
  export AWS_DEFAULT_REGION=hangar AWS_REGION=hangar
  # Keep any user/machine AWS config out of the way; force path-style addressing.
  export AWS_CONFIG_FILE="$HANGAR_DATA_DIR/aws-config" AWS_SHARED_CREDENTIALS_FILE=/dev/null
  export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
  # Plain HTTP to 127.0.0.1: a machine-wide CA bundle setting is irrelevant, and
  # rclone's S3 SDK refuses to start when it is set.
  unset AWS_CA_BUNDLE
  printf '[default]\ns3 =\n    addressing_style = path\n' >"$AWS_CONFIG_FILE"
}

# Points the client at a node that is already running (a cluster's, say)
# instead of starting one. Env: HANGAR_TARGET_ENDPOINT, HANGAR_TARGET_ADMIN,
# HANGAR_TARGET_ADMIN_TOKEN, HANGAR_TARGET_KEY_ID, HANGAR_TARGET_SECRET. The
# bucket, if any, is created through the admin API for that key.
_use_target() {
  local bucket="$1"
  ENDPOINT="$HANGAR_TARGET_ENDPOINT"
  ADMIN_ENDPOINT="$HANGAR_TARGET_ADMIN"
  ADMIN_TOKEN="$HANGAR_TARGET_ADMIN_TOKEN"
  AWS_ACCESS_KEY_ID="$HANGAR_TARGET_KEY_ID"
  AWS_SECRET_ACCESS_KEY="$HANGAR_TARGET_SECRET"
  BUCKET="$bucket"
  HANGAR_DATA_DIR="$(new_tmpdir)"
  if [[ -n "$bucket" ]]; then
    HANGAR_ADMIN_URL="$ADMIN_ENDPOINT" HANGAR_ADMIN_TOKEN="$ADMIN_TOKEN" \
      "$HANGAR_BIN" bucket create "$bucket" >/dev/null || die "cannot create bucket $bucket"
    HANGAR_ADMIN_URL="$ADMIN_ENDPOINT" HANGAR_ADMIN_TOKEN="$ADMIN_TOKEN" \
      "$HANGAR_BIN" bucket allow "$bucket" --key "$AWS_ACCESS_KEY_ID" --read --write --owner >/dev/null ||
      die "cannot allow the key on bucket $bucket"
  fi
}

start_server() {
  local bucket="${1:-}"
  if [[ -n "${HANGAR_TARGET_ENDPOINT:-}" ]]; then
    _use_target "$bucket"
    _client_env
    log "using running node: s3=$ENDPOINT admin=$ADMIN_ENDPOINT bucket=${BUCKET:-<none>}"
    return
  fi
  [[ -x "$HANGAR_BIN" ]] || die "server binary not found or not executable: $HANGAR_BIN"
  HANGAR_DATA_DIR="$(new_tmpdir)"
  local args=(server --data-dir "$HANGAR_DATA_DIR"
    --s3-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --rpc-addr 127.0.0.1:0)
  [[ -n "$bucket" ]] && args+=(--bucket "$bucket")
  "$HANGAR_BIN" "${args[@]}" >"$HANGAR_DATA_DIR/server.log" 2>&1 &
  HANGAR_PID=$!
  log "server pid $HANGAR_PID, data dir $HANGAR_DATA_DIR"

  # ready.json appears atomically once listeners are bound; wait at most 60 s.
  local i
  for ((i = 0; i < 600; i++)); do
    [[ -s "$HANGAR_DATA_DIR/ready.json" ]] && break
    if ! kill -0 "$HANGAR_PID" 2>/dev/null; then
      server_log_tail
      die "server exited before writing ready.json"
    fi
    sleep 0.1
  done
  if [[ ! -s "$HANGAR_DATA_DIR/ready.json" ]]; then
    server_log_tail
    die "ready.json not written within 60 s"
  fi

  ENDPOINT="$(_ready_field s3_endpoint)" || die "ready.json lacks s3_endpoint"
  ADMIN_ENDPOINT="$(_ready_field admin_endpoint)" || die "ready.json lacks admin_endpoint"
  ADMIN_TOKEN="$(_ready_field admin_token)" || die "ready.json lacks admin_token"
  AWS_ACCESS_KEY_ID="$(_ready_field access_key_id)" || die "ready.json lacks access_key_id"
  AWS_SECRET_ACCESS_KEY="$(_ready_field secret_access_key)" || die "ready.json lacks secret_access_key"
  BUCKET="$(jq -r '.bucket // empty' "$HANGAR_DATA_DIR/ready.json")"
  _client_env

  # Then wait (at most 60 s) for the health endpoint to answer 200.
  local code=""
  for ((i = 0; i < 120; i++)); do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
      -H "Authorization: Bearer $ADMIN_TOKEN" "$ADMIN_ENDPOINT/health" || true)"
    [[ "$code" == 200 ]] && break
    kill -0 "$HANGAR_PID" 2>/dev/null || { server_log_tail; die "server exited during startup"; }
    sleep 0.5
  done
  if [[ "$code" != 200 ]]; then
    server_log_tail
    die "health check did not return 200 within 60 s (last: $code)"
  fi
  log "server ready: s3=$ENDPOINT admin=$ADMIN_ENDPOINT bucket=${BUCKET:-<none>}"
}

# Stops the server; returns non-zero if it did not exit cleanly on SIGTERM.
stop_server() {
  [[ -n "$HANGAR_PID" ]] || return 0
  local pid="$HANGAR_PID" rc=0 i
  HANGAR_PID=""
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do # 200 x 0.1 s = 20 s
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "[$TEST_NAME] server did not stop within 20 s of SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    server_log_tail
    return 1
  fi
  wait "$pid" 2>/dev/null || rc=$?
  if ((rc != 0)); then
    echo "[$TEST_NAME] server exited with status $rc after SIGTERM" >&2
    server_log_tail
    return 1
  fi
  log "server stopped cleanly"
}

_cleanup() {
  local rc=$?
  if [[ -n "$HANGAR_PID" ]]; then
    kill -KILL "$HANGAR_PID" 2>/dev/null || true
    wait "$HANGAR_PID" 2>/dev/null || true
  fi
  # Keep scratch dirs for inspection when asked to.
  if [[ "${HANGAR_KEEP_TMP:-0}" == 1 ]]; then
    echo "[$TEST_NAME] keeping temp dir: $TEST_ROOT" >&2
  else
    rm -rf "$TEST_ROOT"
  fi
  exit "$rc"
}
trap _cleanup EXIT
# Say where a top-level command failed instead of exiting silently.
trap 'echo "[$TEST_NAME] error: line $LINENO: $BASH_COMMAND (exit $?)" >&2' ERR
trap 'exit 130' INT TERM

# step NAME CMD...: runs CMD in a subshell with errexit on; output goes to a
# per-step log shown only on failure. Steps share state only through files.
step() {
  local name="$1" out rc
  shift
  out="$(mktemp "$TEST_ROOT/step.XXXXXX")"
  set +e
  (
    set -euo pipefail
    "$@"
  ) >"$out" 2>&1
  rc=$?
  set -e
  if ((rc == 0)); then
    PASSED=$((PASSED + 1))
    log "ok   $name"
  else
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
    log "FAIL $name (exit $rc)"
    sed 's/^/    | /' "$out" | tail -n 40
  fi
  rm -f "$out"
  return 0
}

# Asserts, for use inside steps.
assert_eq() {
  [[ "$1" == "$2" ]] || {
    echo "assertion failed: ${3:-values differ}: got '$1', want '$2'" >&2
    return 1
  }
}
assert_same_file() {
  cmp "$1" "$2" || {
    echo "files differ: $1 vs $2 (sizes $(stat -c %s "$1") vs $(stat -c %s "$2" 2>/dev/null || echo missing))" >&2
    return 1
  }
}

# finish: stops the server (counted as a step) and prints the summary.
# stop_server must run in this shell: the server is this shell's child.
finish() {
  if [[ -n "$HANGAR_PID" ]]; then
    local log_path="$HANGAR_DATA_DIR/server.log"
    if stop_server; then
      PASSED=$((PASSED + 1))
      log "ok   server stops cleanly on SIGTERM"
    else
      FAILED=$((FAILED + 1))
      FAILED_NAMES+=("server stops cleanly on SIGTERM")
      log "FAIL server stops cleanly on SIGTERM"
      log_path=""
    fi
    # Show the server's side of any failure (unless already shown above).
    if ((FAILED > 0)) && [[ -n "$log_path" ]]; then server_log_tail; fi
  fi
  log "summary: steps ok=$PASSED failed=$FAILED"
  if ((FAILED > 0)); then
    log "failed steps: $(printf '%s; ' "${FAILED_NAMES[@]}")"
    exit 1
  fi
  exit 0
}
