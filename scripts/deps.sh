#!/usr/bin/env bash
# scripts/deps.sh — owns the build/test dependencies (Debian 12 packages).
# Idempotent and fast: if every package is installed it prints one line and
# does nothing else; otherwise apt-get update + install of the missing ones.
# Works unattended (CI=true, no stdin) as root, or through sudo.
set -euo pipefail

PKGS=(
  postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap
  libtap-parser-sourcehandler-pgtap-perl pgbouncer
  postgresql-15-plproxy
  clang libclang-rt-14-dev make gcc
)

missing=()
for p in "${PKGS[@]}"; do
  # `dpkg -s` also succeeds for removed-but-configured packages: check Status.
  if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed$'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps: missing ${missing[*]}; run as root or install sudo" >&2; exit 1; }
  SUDO=(sudo -n)
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -q -o DPkg::Lock::Timeout=600)
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "${APT[@]}" update </dev/null
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}" </dev/null
echo "deps: done"
