#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks use, when missing:
# tmux (terminal tests by hand and in docs), iproute2 (ip: the network
# namespace test in cmd/rshell, run as root), then the benchmark's own needs
# (python3-rpyc, taskset) through install-bench-deps.sh. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
missing=()
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
./install-bench-deps.sh >/dev/null
