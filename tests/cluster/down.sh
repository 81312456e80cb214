#!/usr/bin/env bash
# Stops every process of the local control plane by the pids up.sh recorded and
# removes its data. Safe to run when nothing is up.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=versions.sh
. "$here/versions.sh"

sandbox=$root/.sandbox
export KWOK_WORKDIR=$sandbox/kwok
export PATH=$SANDBOX_BIN:$PATH

if [ -x "$SANDBOX_BIN/kwokctl" ] && [ -d "$KWOK_WORKDIR/clusters/k8s-oci-operator" ]; then
  kwokctl delete cluster --name k8s-oci-operator >/dev/null 2>&1 || true
fi

# Whatever kwokctl missed, stop by recorded pid: TERM, then KILL.
pids=$(for f in "$sandbox/cluster.pids" "$KWOK_WORKDIR"/clusters/*/pids/*.pid; do [ -f "$f" ] && { cat "$f"; echo; }; done | sort -u)
for sig in TERM KILL; do
  alive=""
  for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
  [ -z "$alive" ] && break
  # shellcheck disable=SC2086
  kill -"$sig" $alive 2>/dev/null
  sleep 1
done
# A SIGKILLed process can take a moment to be gone (reaped, or finishing a
# write it cannot be interrupted in): give it a few seconds before failing.
for _ in 1 2 3 4 5; do
  left=""
  for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
  [ -z "$left" ] && break
  sleep 1
done
rm -rf "$KWOK_WORKDIR" "$sandbox/kubeconfig" "$sandbox/env" "$sandbox/cluster.pids" "$sandbox/cluster.ready" "$sandbox/kwokctl-create.log"
if [ -n "$left" ]; then echo "[cluster-down] still running:$left" >&2; exit 1; fi
echo "[cluster-down] stopped" >&2
