#!/usr/bin/env bash
# The project's test command: installs what the tests need on a fresh
# machine (idempotent), then runs every test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
go test -race -count=1 -timeout 20m ./... "$@"
