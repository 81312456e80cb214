#!/usr/bin/env bash
# Publishes a built release to an OCI registry: the image index `make image`
# wrote (dist/image, every architecture, digests preserved) and the Helm chart
# (packaged at the same version).
#
#   REGISTRY=ghcr.io/logmein release/publish.sh
#
# Log in first (skopeo login, helm registry login). PLAIN_HTTP=true talks to a
# registry without TLS (the tests' local one). Prints what it pushed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '[publish] %s\n' "$*" >&2; }
: "${REGISTRY:?set REGISTRY, e.g. ghcr.io/logmein}"
# shellcheck source=../tests/cluster/versions.sh
. tests/cluster/versions.sh
helm=${HELM:-$(command -v helm || echo "$SANDBOX_BIN/helm")}

version=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "k8s-oci-operator"))')
[ -f dist/image/index.json ] || { log "no image in dist/image: make dist image"; exit 1; }
# From a release workflow: the tag must name the version being published.
if [ -n "${TAG:-}" ] && [ "$TAG" != "v$version" ]; then
  log "tag $TAG does not match the version v$version (Cargo.toml)"; exit 1
fi

tls=() plain=()
if [ "${PLAIN_HTTP:-false}" = true ]; then tls=(--dest-tls-verify=false); plain=(--plain-http); fi

image=$REGISTRY/k8s-oci-operator:$version
log "pushing the image index to $image"
skopeo copy --quiet --all --preserve-digests "${tls[@]}" "oci:dist/image:$version" "docker://$image"

log "packaging and pushing the chart to oci://$REGISTRY/charts"
rm -rf dist/chart && mkdir -p dist/chart
"$helm" package deploy/chart/k8s-oci-operator --version "$version" --app-version "$version" -d dist/chart >/dev/null
"$helm" push "${plain[@]}" "dist/chart/k8s-oci-operator-$version.tgz" "oci://$REGISTRY/charts"
log "published $image and oci://$REGISTRY/charts/k8s-oci-operator:$version"
