#!/usr/bin/env bash
# Cross-builds the operator as static (musl) binaries for linux/amd64 and
# linux/arm64, stamped with the git commit, into dist/:
#
#   dist/linux-<arch>/k8s-oci-operator                 what the Containerfile copies
#   dist/release/k8s-oci-operator-<version>-linux-<arch>  the release's files
#   dist/release/SHA256SUMS
#
# Cross-linking uses zig (PyPI's ziglang) through cargo-zigbuild, so no system
# cross toolchain is needed. ARCHS="amd64" builds one architecture.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/k8s-oci-operator/target}
log() { printf '[dist] %s\n' "$*" >&2; }

if ! command -v cargo-zigbuild >/dev/null; then
  log "cargo-zigbuild is missing: cargo install cargo-zigbuild --locked"; exit 1
fi
if ! command -v zig >/dev/null && ! python3 -m ziglang version >/dev/null 2>&1; then
  log "zig is missing: pip install ziglang"; exit 1
fi

version=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "k8s-oci-operator"))')
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# A build from uncommitted changes must not pass for the commit.
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit=$commit-dirty
fi
export K8S_OCI_OPERATOR_COMMIT=$commit

triple() {
  case "$1" in
    amd64) echo x86_64-unknown-linux-musl ;;
    arm64) echo aarch64-unknown-linux-musl ;;
    *) log "unknown architecture $1 (amd64, arm64)"; exit 2 ;;
  esac
}

mkdir -p dist/release
# Files of another version would end up in SHA256SUMS.
find dist/release -name 'k8s-oci-operator-*' ! -name "k8s-oci-operator-$version-*" -delete
for arch in ${ARCHS:-amd64 arm64}; do
  target=$(triple "$arch")
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
  log "building $version ($commit) for linux/$arch ($target)"
  start=$SECONDS
  cargo zigbuild --locked --profile dist -p k8s-oci-operator --bin k8s-oci-operator --target "$target"
  bin=$CARGO_TARGET_DIR/$target/dist/k8s-oci-operator
  # Static means no program interpreter: a dynamic binary would not start in
  # an image that has no libc.
  if readelf -l "$bin" | grep -q 'program interpreter'; then
    log "$bin is dynamically linked"; exit 1
  fi
  mkdir -p "dist/linux-$arch"
  cp "$bin" "dist/linux-$arch/k8s-oci-operator"
  cp "$bin" "dist/release/k8s-oci-operator-$version-linux-$arch"
  log "linux/$arch: $(stat -c %s "$bin") bytes in $((SECONDS - start))s"
done
(cd dist/release && sha256sum k8s-oci-operator-* >SHA256SUMS)
log "binaries and SHA256SUMS in dist/release"
