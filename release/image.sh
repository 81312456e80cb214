#!/usr/bin/env bash
# Builds the operator's image for linux/amd64 and linux/arm64 from the
# Containerfile with buildah (no container daemon; root with the vfs storage
# driver, or rootless where user namespaces are allowed), from the binaries
# `make dist` wrote, and writes it as an OCI image index:
#
#   dist/image/                       OCI layout, tag <version>
#   dist/k8s-oci-operator-<version>.oci.tar   the same as one archive
#
# Prints each architecture's compressed size. buildah builds the Containerfile
# itself, so the file Docker and Podman users build is the one tested here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/k8s-oci-operator/target}
log() { printf '[image] %s\n' "$*" >&2; }
command -v buildah >/dev/null || { log "buildah is missing (Debian: apt-get install buildah)"; exit 1; }

version=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "k8s-oci-operator"))')
for arch in amd64 arm64; do
  [ -x "dist/linux-$arch/k8s-oci-operator" ] || { log "dist/linux-$arch/k8s-oci-operator is missing: make dist"; exit 1; }
done
# The revision is what the binaries were stamped with, not today's HEAD.
revision=$(dist/linux-amd64/k8s-oci-operator --version | sed -n 's/.*(commit \([^,]*\),.*/\1/p')
licenses=Apache-2.0
agpl=$(cargo tree --locked -q -p k8s-oci-operator -e normal -i oci-rust-sdk 2>/dev/null || true)
if [ -n "$agpl" ]; then
  licenses="Apache-2.0 AND AGPL-3.0"
fi
# The commit's time, so building one commit twice gives the same image.
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)

# Private, throwaway storage: nothing accumulates between builds.
store=$(mktemp -d "${TMPDIR:-/tmp}/k8s-oci-operator-buildah.XXXXXX")
trap 'buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs rm --all >/dev/null 2>&1 || true; rm -rf "$store"' EXIT
b() { buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs "$@"; }

list=localhost/k8s-oci-operator:$version
log "building $list for linux/amd64 and linux/arm64 (revision $revision)"
annotations=(
  --annotation "org.opencontainers.image.source=https://github.com/logmein/k8s-oci-operator"
  --annotation "org.opencontainers.image.revision=$revision"
  --annotation "org.opencontainers.image.version=$version"
  --annotation "org.opencontainers.image.licenses=$licenses"
)
b build --quiet --timestamp "$epoch" --omit-history --identity-label=false \
  --platform linux/amd64,linux/arm64 --manifest "$list" \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "LICENSES=$licenses" \
  "${annotations[@]}" -f Containerfile . >/dev/null

rm -rf dist/image "dist/k8s-oci-operator-$version.oci.tar"
b manifest push --quiet --all "$list" "oci:dist/image:$version"
b manifest push --quiet --all "$list" "oci-archive:dist/k8s-oci-operator-$version.oci.tar:$version"

# Compressed size per architecture: config plus layers, as a registry stores them.
python3 - "$version" <<'PY'
import json, sys
from pathlib import Path
layout = Path("dist/image")
blob = lambda d: json.loads((layout / "blobs" / "sha256" / d.split(":", 1)[1]).read_text())
top = json.loads((layout / "index.json").read_text())
ref = next(m for m in top["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == sys.argv[1])
for m in blob(ref["digest"])["manifests"]:
    manifest = blob(m["digest"])
    size = manifest["config"]["size"] + sum(l["size"] for l in manifest["layers"])
    print(f"[image] linux/{m['platform']['architecture']}: {size / 1e6:.1f} MB compressed ({m['digest']})", file=sys.stderr)
PY
log "OCI layout in dist/image (tag $version), archive dist/k8s-oci-operator-$version.oci.tar"
