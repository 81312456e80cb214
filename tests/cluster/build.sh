#!/usr/bin/env bash
# Builds the local control plane's binaries, and helm for the chart, from their
# Go modules, once, into a cache outside the clone. Re-running is cheap: each
# binary is skipped when present.
#
#   tests/cluster/build.sh            # prints the bin directory on its last line
#   tests/cluster/build.sh helm       # helm only (make helm, make manifests)
#
# Versions are pinned by the go.mod files beside this script.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.sh
. "$here/versions.sh"

mkdir -p "$SANDBOX_BIN"
export GOFLAGS=-mod=mod
# Go 1.24 is what these modules declare; a newer local Go builds them too.
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

log() { printf '[build] %s\n' "$*" >&2; }

built=0
total_start=$SECONDS
build() { # build <module dir> <output name> <package> [ldflags]
  local dir=$1 out=$2 pkg=$3 ldflags=${4:-}
  if [ -x "$SANDBOX_BIN/$out" ]; then return; fi
  built=$((built + 1))
  # go build downloads the module's dependencies first, then compiles in silence:
  # this line and the one after it are the progress a first run shows.
  log "building $out from $pkg (first time only; the Kubernetes ones take minutes)"
  local start=$SECONDS
  (cd "$here/$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$SANDBOX_BIN/$out.tmp" "$pkg")
  mv "$SANDBOX_BIN/$out.tmp" "$SANDBOX_BIN/$out"
  log "built $out in $((SECONDS - start))s"
}

# Without these stamps /version says v0.0.0-master, and kubectl warns about skew.
stamp() {
  local p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf -- '-X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean ' \
      "$p" "$K8S_VERSION" "$p" "$K8S_MAJOR" "$p" "$K8S_MINOR" "$p"
  done
}

if [ "${1:-}" != helm ]; then
  build etcd etcd go.etcd.io/etcd/server/v3
  build kwok kwok sigs.k8s.io/kwok/cmd/kwok
  build kwok kwokctl sigs.k8s.io/kwok/cmd/kwokctl
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    build k8s "$c" "k8s.io/kubernetes/cmd/$c" "$(stamp)"
  done
fi
# helm: the tests lint, render and install deploy/chart with it, and `make
# manifests` renders deploy/ from it. Named by its version (bin/helm links to
# it), so bumping HELM_VERSION builds the new one next to the cached cluster.
helm_stamp() {
  local p=helm.sh/helm/v3 k8s
  # The Kubernetes version helm assumes without a cluster (lint, template): its
  # client-go's, as helm's own Makefile stamps it (v0.34.2 -> 1.34).
  k8s=$(cd "$here/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)
  k8s=${k8s#v0.}; k8s=${k8s%%.*}
  printf -- '-X %s/internal/version.version=%s -X %s/internal/version.gitTreeState=clean ' "$p" "$HELM_VERSION" "$p"
  printf -- '-X %s/pkg/chartutil.k8sVersionMajor=1 -X %s/pkg/chartutil.k8sVersionMinor=%s ' "$p" "$p" "$k8s"
  printf -- '-X %s/pkg/lint/rules.k8sVersionMajor=1 -X %s/pkg/lint/rules.k8sVersionMinor=%s' "$p" "$p" "$k8s"
}
if [ ! -x "$SANDBOX_BIN/helm-$HELM_VERSION" ]; then
  build helm "helm-$HELM_VERSION" helm.sh/helm/v3/cmd/helm "$(helm_stamp)"
fi
ln -sfn "helm-$HELM_VERSION" "$SANDBOX_BIN/helm"
# crane: its in-memory registry stands in for ghcr.io in the publish test.
if [ "${1:-}" != helm ] && [ ! -x "$SANDBOX_BIN/crane-$CRANE_VERSION" ]; then
  build crane "crane-$CRANE_VERSION" github.com/google/go-containerregistry/cmd/crane
fi
[ "${1:-}" = helm ] || ln -sfn "crane-$CRANE_VERSION" "$SANDBOX_BIN/crane"
if [ "$built" -gt 0 ]; then log "built $built binaries in $((SECONDS - total_start))s into $SANDBOX_BIN"; fi
echo "$SANDBOX_BIN"
