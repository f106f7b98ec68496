#!/usr/bin/env bash
# Installs what the side-by-side benchmark (bench/cmd/rshell-bench) needs:
# Debian's python3-rpyc (the RPyC classic server and client, for the system
# Python at /usr/bin/python3) and util-linux's taskset (CPU pinning).
# Idempotent: installs only what is missing; runs apt-get update at most once.
set -euo pipefail

PY=/usr/bin/python3
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

updated=0
apt_install() {
	if ! $SUDO apt-get install -y --no-install-recommends "$@"; then
		if [ "$updated" = 0 ]; then
			$SUDO apt-get update -qq
			updated=1
			$SUDO apt-get install -y --no-install-recommends "$@"
		else
			return 1
		fi
	fi
}

need=()
if ! command -v taskset >/dev/null 2>&1; then need+=(util-linux); fi
if [ ! -x "$PY" ]; then need+=(python3); fi
if [ ! -x "$PY" ] || ! "$PY" -c 'import rpyc' >/dev/null 2>&1; then need+=(python3-rpyc); fi
if [ "${#need[@]}" -gt 0 ]; then
	# apt-get install fails fast when the package lists are empty or stale:
	# update once and retry.
	if ! apt-cache show "${need[@]}" >/dev/null 2>&1; then
		$SUDO apt-get update -qq
		updated=1
	fi
	apt_install "${need[@]}"
fi

"$PY" -c 'import rpyc, sys; print("rpyc", rpyc.__version__, "for", sys.executable)'
server=""
for p in $(dpkg -L python3-rpyc 2>/dev/null | grep -E '/rpyc_classic(\.py)?$' || true) /usr/bin/rpyc_classic /usr/bin/rpyc_classic.py; do
	if [ -f "$p" ]; then server="$p"; break; fi
done
if [ -z "$server" ]; then
	echo "install-bench-deps: python3-rpyc is installed but its rpyc_classic server script was not found" >&2
	exit 1
fi
echo "rpyc_classic: $server"
echo "taskset: $(command -v taskset)"
