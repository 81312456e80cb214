#!/usr/bin/env bash
# Builds the example policies to small WebAssembly modules (plus .wasm.gz for
# ConfigMaps) in $CARGO_TARGET_DIR/policies (default: <repo>/target/policies).
# Usage: policies/build.sh [crate-dir ...]     (default: every example policy)
# Prints the output directory on its last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$target_dir/policies"
mkdir -p "$out"

if [ "$#" -gt 0 ]; then crates=("$@"); else crates=(tag-defaults team-pool pod-label-eligibility); fi

args=()
for c in "${crates[@]}"; do args+=(-p "policy-$c"); done

# Release settings, passed on the command line so the workspace's own release
# profile (used for the operator) is unchanged. opt-level 3 rather than "z":
# guest code runs about 20% faster per decision, and the modules stay near
# 70 KB gzipped, far below a ConfigMap's 1 MiB (docs/benchmarks.md).
# Own target dir: no waiting on the lock of the operator's (often busy) build,
# and these settings never mix with the operator's artifacts.
build_dir="$target_dir/wasm-policies"
cargo build --manifest-path "$root/Cargo.toml" --release --target wasm32-unknown-unknown \
  --target-dir "$build_dir" \
  --config 'profile.release.opt-level=3' \
  --config 'profile.release.lto=true' \
  --config 'profile.release.codegen-units=1' \
  --config 'profile.release.panic="abort"' \
  --config 'profile.release.strip=true' \
  "${args[@]}" >&2

for c in "${crates[@]}"; do
  name="policy_${c//-/_}"
  src="$build_dir/wasm32-unknown-unknown/release/$name.wasm"
  # Copy only when changed, so watchers pointed at $out do not see churn.
  if ! cmp -s "$src" "$out/$c.wasm"; then
    cp "$src" "$out/$c.wasm.tmp" && mv "$out/$c.wasm.tmp" "$out/$c.wasm"
    gzip -9 -n -c "$out/$c.wasm" > "$out/$c.wasm.gz.tmp" && mv "$out/$c.wasm.gz.tmp" "$out/$c.wasm.gz"
  fi
  echo "$c: $(stat -c %s "$out/$c.wasm") bytes, $(stat -c %s "$out/$c.wasm.gz") gzipped" >&2
done
echo "$out"
