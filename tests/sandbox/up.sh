#!/usr/bin/env bash
# Brings up the whole local sandbox in the background and returns when the
# operator is ready: the control plane (tests/cluster/up.sh), the OCI emulator
# seeded to match the kwok nodes, the CRD and deploy/ applied, and the
# operator running as a local process with the deploy/ ServiceAccount's
# credentials (so the shipped RBAC is what it runs with).
# Idempotent. Writes .sandbox/env (KUBECONFIG, PATH, OCI_EMULATOR_URL).
# OPERATOR_BIN and EMULATOR_BIN name binaries built already (no cargo build).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
sandbox=$root/.sandbox
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/k8s-oci-operator/target}
log() { printf '[sandbox-up] %s\n' "$*" >&2; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

CLUSTER=sandbox tests/cluster/up.sh
# shellcheck source=/dev/null
. "$sandbox/env"

operator_bin=${OPERATOR_BIN:-$CARGO_TARGET_DIR/debug/k8s-oci-operator}
emulator_bin=${EMULATOR_BIN:-$CARGO_TARGET_DIR/debug/oci-emulator}
if [ -z "${OPERATOR_BIN:-}${EMULATOR_BIN:-}" ]; then
  # Not quiet: on a fresh machine this is the long step, and cargo prints a line per crate.
  log "building the operator and the emulator (cargo; several minutes the first time)"
  build_start=$SECONDS
  cargo build --bin k8s-oci-operator --bin oci-emulator
  log "built in $((SECONDS - build_start))s"
fi

if ! alive "$sandbox/emulator.pid"; then
  log "starting the OCI emulator"
  "$emulator_bin" --listen 127.0.0.1:0 --seed tests/oci-emulator/seeds/sandbox.yaml \
    >"$sandbox/emulator.out" 2>"$sandbox/emulator.log" &
  echo $! >"$sandbox/emulator.pid"
  for _ in $(seq 100); do grep -q "listening on" "$sandbox/emulator.out" 2>/dev/null && break; sleep 0.1; done
fi
url=$(grep -o 'http://[0-9.:]*' "$sandbox/emulator.out" | head -1)
[ -n "$url" ] || { log "the emulator did not start; see .sandbox/emulator.log"; exit 1; }

log "installing the CRD and deploy/"
kubectl apply -f config/crd/bases >/dev/null
kubectl wait --for=condition=Established crd/reservedips.oci.k8s.logmein.com --timeout=30s >/dev/null
kubectl apply -f deploy/ >/dev/null
# As the platform team: the default namespace (where the examples go) may
# use the sandbox's BYOIP pool and target private IPs of node1's pod range
# (examples/byoip-pool.yaml, examples/private-ip.yaml). The seed's address
# 198.51.100.77 is handed to it by a tag in OCI (examples/specific-address.yaml).
kubectl annotate namespace default --overwrite >/dev/null \
  oci.k8s.logmein.com/public-ip-pools=ocid1.publicippool.oc1.sandbox.pool1 \
  oci.k8s.logmein.com/private-ip-targets=10.0.66.0/24

if ! alive "$sandbox/operator.pid"; then
  # The operator talks to the API server as the deploy/ ServiceAccount.
  token=$(kubectl -n k8s-oci-operator create token k8s-oci-operator --duration=24h)
  server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  ca_file=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority}')
  [ -n "$ca" ] || ca=$(base64 -w0 <"$ca_file")
  cat >"$sandbox/operator.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: sandbox, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: operator, user: {token: "$token"}}]
contexts: [{name: operator, context: {cluster: sandbox, user: operator}}]
current-context: operator
KC
  health_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  echo "$health_port" >"$sandbox/operator.port"
  log "starting the operator"
  # POD_NAME names it in Events (reportingInstance) and as a Lease holder.
  KUBECONFIG=$sandbox/operator.kubeconfig \
  POD_NAME=sandbox-operator \
  POD_NAMESPACE=k8s-oci-operator \
  OCI_COMPARTMENT_ID=ocid1.compartment.oc1..sandbox \
  CLUSTER_ID=sandbox \
  OCI_CONFIG_FILE=$root/tests/oci-emulator/testdata/oci-config \
  OCI_ENDPOINT=$url \
  OCI_SUBNET_IDS=ocid1.subnet.oc1.sandbox.pods,ocid1.subnet.oc1.sandbox.nodes \
  HEALTH_ADDR=127.0.0.1:$health_port \
  RUST_LOG=${RUST_LOG:-info,kube=warn} \
    "$operator_bin" run >"$sandbox/operator.log" 2>&1 &
  echo $! >"$sandbox/operator.pid"
fi
port=$(cat "$sandbox/operator.port")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { log "the operator is not ready; see .sandbox/operator.log"; tail -20 "$sandbox/operator.log" >&2; exit 1; }

echo "export OCI_EMULATOR_URL=$url" >>"$sandbox/env"
log "ready: source .sandbox/env; operator log in .sandbox/operator.log, emulator state at $url/_emulator/state"
