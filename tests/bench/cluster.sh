#!/usr/bin/env bash
# The benchmark's own local control plane, separate from the one of
# `make cluster-up` (another kwokctl cluster name and work directory), so the
# benchmark and the tests can run side by side. Modeled on tests/cluster/up.sh,
# using the same cached binaries; the benchmark creates its own fake nodes.
#
#   tests/bench/cluster.sh up     start it; writes .sandbox/bench/{kubeconfig,cluster.pids}
#   tests/bench/cluster.sh down   stop every recorded process and remove its data
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../cluster/versions.sh
. "$root/tests/cluster/versions.sh"

dir=$root/.sandbox/bench
name=k8s-oci-operator-bench
export KWOK_WORKDIR=$dir/kwok
kubeconfig=$dir/kubeconfig
export PATH=$SANDBOX_BIN:$PATH
log() { printf '[bench-cluster] %s\n' "$*" >&2; }
ready() { kubectl --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1; }

down() {
  if [ -x "$SANDBOX_BIN/kwokctl" ] && [ -d "$KWOK_WORKDIR/clusters/$name" ]; then
    kwokctl delete cluster --name "$name" >/dev/null 2>&1 || true
  fi
  # Whatever kwokctl missed, stop by recorded pid: TERM, then KILL.
  local pids alive p sig left=""
  # (Globs that match nothing and missing files are normal here, hence `|| true`.)
  pids=$(for f in "$dir/cluster.pids" "$KWOK_WORKDIR"/clusters/*/pids/*.pid; do if [ -f "$f" ]; then cat "$f"; echo; fi; done | sort -u) || true
  for sig in TERM KILL; do
    alive=""
    for p in $pids; do if kill -0 "$p" 2>/dev/null; then alive="$alive $p"; fi; done
    [ -z "$alive" ] && break
    # shellcheck disable=SC2086
    kill -"$sig" $alive 2>/dev/null || true
    sleep 1
  done
  # A SIGKILLed process can take a moment to be gone: a few seconds' grace.
  for _ in 1 2 3 4 5; do
    left=""
    for p in $pids; do if kill -0 "$p" 2>/dev/null; then left="$left $p"; fi; done
    [ -z "$left" ] && break
    sleep 1
  done
  rm -rf "$KWOK_WORKDIR" "$kubeconfig" "$dir/cluster.pids" "$dir/cluster.ready" "$dir/kwokctl-create.log"
  if [ -n "$left" ]; then log "still running:$left"; return 1; fi
  log "stopped"
}

up() {
  [ -x "$SANDBOX_BIN/kwokctl" ] || "$root/tests/cluster/build.sh" >/dev/null
  mkdir -p "$dir"
  if [ -f "$dir/cluster.ready" ] && ready; then log "already up"; return 0; fi
  local start=$SECONDS
  down >/dev/null 2>&1 || true
  log "starting control plane $K8S_VERSION (etcd $ETCD_VERSION, kwok $KWOK_VERSION) as $name"
  KWOK_KUBE_VERSION=$K8S_VERSION kwokctl create cluster \
    --name "$name" \
    --runtime binary \
    --etcd-binary "$SANDBOX_BIN/etcd" \
    --kube-apiserver-binary "$SANDBOX_BIN/kube-apiserver" \
    --kube-controller-manager-binary "$SANDBOX_BIN/kube-controller-manager" \
    --kube-scheduler-binary "$SANDBOX_BIN/kube-scheduler" \
    --kwok-controller-binary "$SANDBOX_BIN/kwok" \
    --kube-authorization=true \
    --disable-qps-limits \
    --kubeconfig "$kubeconfig" \
    --wait 3m >"$dir/kwokctl-create.log" 2>&1 || {
    log "kwokctl create failed; its output:"; cat "$dir/kwokctl-create.log" >&2; return 1; }
  for f in "$KWOK_WORKDIR/clusters/$name"/pids/*.pid; do cat "$f"; echo; done >"$dir/cluster.pids"
  until ready; do
    if [ $((SECONDS - start)) -gt 180 ]; then log "apiserver not ready after 180s"; return 1; fi
    sleep 0.5
  done
  # Pods need the "default" ServiceAccount, made once kube-controller-manager runs.
  until kubectl --kubeconfig "$kubeconfig" -n default get serviceaccount default >/dev/null 2>&1; do
    if [ $((SECONDS - start)) -gt 240 ]; then log "default service account missing after 240s"; return 1; fi
    sleep 0.5
  done
  touch "$dir/cluster.ready"
  log "ready in $((SECONDS - start))s (KUBECONFIG=$kubeconfig)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
