#!/usr/bin/env bash
# Proves that a policy crate outside this repository can use the SDK and the
# harness: copies policies/template to a temporary directory outside the
# repository, points its two git dependencies at this checkout by path,
# builds its module as policies/README.md says, and runs its tests (native,
# and the module in the operator's engine).
# Usage: sdk/check-template.sh
# Target dir: $TEMPLATE_TARGET_DIR, default ~/.cache/k8s-oci-operator/target-template
# (kept between runs: the first run builds the operator for the engine test).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${TEMPLATE_TARGET_DIR:-$HOME/.cache/k8s-oci-operator/target-template}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case "$work/" in
  "$root"/*) echo "the temporary directory $work is inside the repository" >&2; exit 1 ;;
esac

crate="$work/my-policy"
cp -r "$root/policies/template" "$crate"
rm -rf "$crate/target" "$crate/Cargo.lock"
cd "$crate"
sed -i \
  -e "/^k8s-oci-operator-policy-sdk = /s|git = \"[^\"]*\"|path = \"$root/sdk\"|" \
  -e "/^k8s-oci-operator-policy-harness = /s|git = \"[^\"]*\"|path = \"$root/sdk/harness\"|" \
  Cargo.toml
if grep -n 'git = ' Cargo.toml >&2; then
  echo "the template's dependencies are no longer where this script expects them" >&2
  exit 1
fi
# The operator's lock file: the versions its own tests use, and no network.
cp "$root/Cargo.lock" .

export CARGO_TARGET_DIR="$target"
echo "[template] cargo wasm (cargo build --release --target wasm32-unknown-unknown) in $crate" >&2
cargo wasm
wasm="$target/wasm32-unknown-unknown/release/my_policy.wasm"
size=$(stat -c %s "$wasm")
gzipped=$(gzip -9 -n -c "$wasm" | wc -c)
echo "[template] my_policy.wasm: $size bytes, $gzipped gzipped" >&2
# What a ConfigMap holds (binaryData, 1 MiB in all).
if [ "$gzipped" -ge $((1 << 20)) ]; then
  echo "the module does not fit a ConfigMap gzipped" >&2
  exit 1
fi

echo "[template] cargo test (native tests, and the module in the operator's engine)" >&2
cargo test
