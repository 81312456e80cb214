#!/usr/bin/env bash
# The README's walk-through on the local sandbox, end to end: brings the
# sandbox up, allocates a ReservedIP, assigns it to a pod, and shows both.
# Leaves the sandbox running; `make sandbox-down` stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
demo_start=$SECONDS
tests/sandbox/up.sh
# shellcheck source=/dev/null
. .sandbox/env
step() { printf '\n$ %s\n' "$*"; "$@"; }

step kubectl apply -f examples/example.yaml
kubectl wait --for=jsonpath='{.status.state}'=allocated reservedip/my-reserved-ip --timeout=60s >/dev/null
step kubectl get reservedip my-reserved-ip

step kubectl apply -f examples/pod.yaml
kubectl wait --for=condition=Ready pod/some-pod --timeout=60s >/dev/null
step kubectl apply -f examples/example-assigned.yaml
kubectl wait --for=condition=Ready reservedip/my-reserved-ip --timeout=60s >/dev/null
step kubectl get reservedip my-reserved-ip -o wide

cat <<MSG

[demo] done in $((SECONDS - demo_start))s. The sandbox is still running. In another terminal:
  source .sandbox/env
  kubectl describe reservedip my-reserved-ip      # conditions and events
  curl -s \$OCI_EMULATOR_URL/_emulator/state       # what OCI (the emulator) holds
  kubectl delete reservedip my-reserved-ip         # unassign and release in one step
  make sandbox-down                                # stop everything
MSG
