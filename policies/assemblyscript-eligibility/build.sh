#!/usr/bin/env bash
# Builds the AssemblyScript example policy into
# $CARGO_TARGET_DIR/policies/assemblyscript-eligibility.wasm (and .wasm.gz),
# default target dir ~/.cache/k8s-oci-operator/target, like policies/build.sh.
# Prints the output directory on its last line (the host's test reads it).
#
# node_modules lives outside the clone, in ~/.cache/k8s-oci-operator/npm/<hash
# of package-lock.json>: a clean clone (CI) reuses it, and a changed lock file
# gets a fresh directory instead of a half-updated one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name=assemblyscript-eligibility
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/k8s-oci-operator/target}"
out="$target_dir/policies"
mkdir -p "$out"

# Nothing to do when the inputs are those of the last build: the host's test
# runs this script too, after tests/run-all.sh already did (and then needs
# no Node.js).
inputs=$(cd "$here" && cat build.sh package.json package-lock.json assembly/*.ts | sha256sum | cut -c1-32)
if [ -f "$out/$name.wasm" ] && [ -f "$out/$name.wasm.gz" ] && [ "$(cat "$out/$name.inputs" 2>/dev/null)" = "$inputs" ]; then
  echo "$name: up to date, $(stat -c %s "$out/$name.wasm") bytes, $(stat -c %s "$out/$name.wasm.gz") gzipped" >&2
  echo "$out"
  exit 0
fi

fail() { echo "policies/$name/build.sh: $*" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null ||
  fail "needs Node.js >= 20 and npm (Debian/Ubuntu: apt-get install nodejs npm; .ci/run installs them)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
# AssemblyScript 0.28 declares engines node >= 20.
[ "$node_major" -ge 20 ] || fail "needs Node.js >= 20 (AssemblyScript 0.28), found $(node --version)"

lock=$(sha256sum "$here/package-lock.json" | cut -c1-16)
modules="$HOME/.cache/k8s-oci-operator/npm/$lock"
if [ ! -x "$modules/node_modules/.bin/asc" ]; then
  echo "$name: npm ci into $modules (once per package-lock.json)" >&2
  # Install beside the final directory and rename it into place, so an
  # interrupted install or a concurrent build never sees half of one.
  mkdir -p "$(dirname "$modules")"
  tmp=$(mktemp -d "$modules.tmp.XXXXXX")
  cp "$here/package.json" "$here/package-lock.json" "$tmp/"
  # --ignore-scripts: nothing the packages ship runs at install time.
  (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  mv -T "$tmp" "$modules" 2>/dev/null || rm -rf "$tmp"
fi

# Why each flag (README.md has more): --use abort= leaves out the env.abort
# import every AssemblyScript module has otherwise (the host refuses any
# import; a failed check traps instead); --runtime stub is a bump allocator
# without a collector, enough for an instance used once; -Ospeed optimises
# for time per decision, as the Rust examples do.
wasm="$out/$name.wasm"
(cd "$here" && "$modules/node_modules/.bin/asc" assembly/index.ts \
  --outFile "$wasm.tmp.$$" --use abort= --runtime stub -Ospeed)
# Replace only when changed, so watchers pointed at $out do not see churn.
if cmp -s "$wasm.tmp.$$" "$wasm" && [ -f "$wasm.gz" ]; then
  rm "$wasm.tmp.$$"
else
  mv "$wasm.tmp.$$" "$wasm"
  gzip -9 -n -c "$wasm" > "$wasm.gz.tmp.$$" && mv "$wasm.gz.tmp.$$" "$wasm.gz"
fi
echo "$inputs" > "$out/$name.inputs"
echo "$name: $(stat -c %s "$wasm") bytes, $(stat -c %s "$wasm.gz") gzipped" >&2
echo "$out"
