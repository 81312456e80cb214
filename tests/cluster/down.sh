#!/usr/bin/env bash
# Stops every process of a local control plane by the pids up.sh recorded and
# removes its data. CLUSTER=sandbox|test|bench picks which one
# (tests/cluster/instance.sh). Safe to run when nothing is up.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=versions.sh
. "$here/versions.sh"
# shellcheck source=instance.sh
. "$here/instance.sh"

export KWOK_WORKDIR=$cluster_dir/kwok
export PATH=$SANDBOX_BIN:$PATH

if [ -x "$SANDBOX_BIN/kwokctl" ] && [ -d "$KWOK_WORKDIR/clusters/$cluster_name" ]; then
  kwokctl delete cluster --name "$cluster_name" >/dev/null 2>&1 || true
fi

# Whatever kwokctl missed, stop by recorded pid: TERM, then KILL.
pids=$(for f in "$cluster_dir/cluster.pids" "$KWOK_WORKDIR"/clusters/*/pids/*.pid; do [ -f "$f" ] && { cat "$f"; echo; }; done | sort -u)
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
rm -rf "$KWOK_WORKDIR" "$cluster_dir/kubeconfig" "$cluster_dir/env" "$cluster_dir/cluster.pids" "$cluster_dir/cluster.ready" "$cluster_dir/kwokctl-create.log"
if [ -n "$left" ]; then echo "[cluster-down $CLUSTER] still running:$left" >&2; exit 1; fi
echo "[cluster-down $CLUSTER] stopped" >&2
