#!/usr/bin/env bash
# rshell builds against a patched copy of go.starlark.net in
# third_party/starlark-go (go.mod replaces the module with it). The patch,
# third_party/starlark-go.patch, makes big repeats and string
# concatenations copy in pieces between which the thread's step hook runs,
# calls a hook before big lists and tuples are allocated, and makes Go-side
# iteration of big dicts read their buckets in memory
# order (see third_party/starlark-go/RSHELL.md).
#
#   scripts/vendor-starlark.sh update   rebuild third_party/starlark-go from the
#                                      pinned upstream version and the patch
#   scripts/vendor-starlark.sh check    fail if third_party/starlark-go is not
#                                      exactly that; run upstream's own tests
#                                      on the patched module
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=${1:-check}
version=$(go list -m -f '{{.Version}}' go.starlark.net)
src=$(go mod download -json "go.starlark.net@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "vendor-starlark: cannot download go.starlark.net@$version" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/." "$work/full"
chmod -R u+w "$work/full"
(cd "$work/full" && git apply -p1 "$root/third_party/starlark-go.patch")

# The packages rshell imports and what they import; no tests, no tools.
pkgs="starlark syntax resolve internal/compile internal/spell lib/json lib/math lib/time starlarkstruct"
mkdir -p "$work/tree"
cp "$work/full/LICENSE" "$work/full/go.mod" "$work/full/go.sum" "$work/tree/"
for p in $pkgs; do
  mkdir -p "$work/tree/$p"
  find "$work/full/$p" -maxdepth 1 -name '*.go' ! -name '*_test.go' -exec cp {} "$work/tree/$p/" \;
done
cp third_party/starlark-go/RSHELL.md "$work/tree/" 2>/dev/null || true

case "$mode" in
update)
  rm -rf third_party/starlark-go.new
  cp -r "$work/tree" third_party/starlark-go.new
  [ -f third_party/starlark-go/RSHELL.md ] && cp third_party/starlark-go/RSHELL.md third_party/starlark-go.new/
  rm -rf third_party/starlark-go
  mv third_party/starlark-go.new third_party/starlark-go
  echo "third_party/starlark-go: go.starlark.net@$version with third_party/starlark-go.patch"
  ;;
check)
  if ! diff -r "$work/tree" third_party/starlark-go >/dev/null; then
    diff -r "$work/tree" third_party/starlark-go | head -20 >&2 || true
    echo "vendor-starlark: third_party/starlark-go is not go.starlark.net@$version plus the patch; run scripts/vendor-starlark.sh update" >&2
    exit 1
  fi
  (cd "$work/full" && go test -count=1 ./starlark/ ./syntax/ ./resolve/ ./internal/compile/ ./lib/... ./starlarkstruct/)
  ;;
*)
  echo "usage: scripts/vendor-starlark.sh [check|update]" >&2
  exit 2
  ;;
esac
