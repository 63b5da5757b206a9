#!/usr/bin/env bash
# Installs the real S3 clients used by the end-to-end tests (Debian, as root),
# make, which building jemalloc (the server's allocator) needs, iptables,
# with which the fault tests cut nodes off silently, and faketime, whose
# library runs a node with its clock off.
# Idempotent: only installs what is missing.
set -euo pipefail

APT_PKGS=(rclone restic s3cmd curl jq make iptables faketime)
# Binary provided by each apt package, in the same order.
APT_BINS=(rclone restic s3cmd curl jq make iptables faketime)

missing=()
for i in "${!APT_PKGS[@]}"; do
  command -v "${APT_BINS[$i]}" >/dev/null 2>&1 || missing+=("${APT_PKGS[$i]}")
done

if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  # Refresh the package lists once, only if they are empty (fresh machine).
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    $SUDO apt-get update
  fi
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"; then
    # Stale lists can make install fail; refresh once and retry.
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
  fi
fi

# Python side: aws CLI (v1, from PyPI) and boto3.
py_missing=()
command -v aws >/dev/null 2>&1 || py_missing+=(awscli)
python3 -c 'import boto3' >/dev/null 2>&1 || py_missing+=(boto3)
if ((${#py_missing[@]})); then
  python3 -m pip install --quiet "${py_missing[@]}" ||
    python3 -m pip install --quiet --break-system-packages "${py_missing[@]}"
fi

# Verify everything is present now.
fail=0
for b in "${APT_BINS[@]}" aws; do
  if ! command -v "$b" >/dev/null 2>&1; then
    echo "install.sh: missing after install: $b" >&2
    fail=1
  fi
done
python3 -c 'import boto3' || { echo "install.sh: python3 cannot import boto3" >&2; fail=1; }
((fail == 0)) || exit 1

echo "rclone: $(rclone version 2>/dev/null | head -1)"
echo "restic: $(restic version 2>/dev/null | head -1)"
echo "s3cmd: $(s3cmd --version 2>/dev/null | head -1)"
echo "curl: $(curl --version | head -1)"
echo "jq: $(jq --version)"
echo "aws: $(aws --version 2>&1 | head -1)"
echo "boto3: $(python3 -c 'import boto3; print(boto3.__version__)')"
