# Pinned versions of the local control plane; sourced by the cluster scripts.
# Changing one means editing the matching go.mod beside this file too.
K8S_VERSION=v1.33.13
K8S_MAJOR=1
K8S_MINOR=33
ETCD_VERSION=v3.5.21
KWOK_VERSION=v0.7.0
# helm, for the chart's tests and `make manifests` (tests/cluster/helm/go.mod).
HELM_VERSION=v3.19.5
# crane, whose registry the publish test pushes to (tests/cluster/crane/go.mod).
CRANE_VERSION=v0.22.1
SANDBOX_CACHE=${SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-oci-operator}
SANDBOX_BIN=$SANDBOX_CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION
