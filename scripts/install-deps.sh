#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks use, when missing.
# Safe to run again; does nothing when everything is there.
set -euo pipefail
need=()
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
/usr/bin/python3 -c 'import rpyc' >/dev/null 2>&1 || need+=(python3-rpyc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "installing: ${need[*]}" >&2
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
