#!/usr/bin/env bash
# `make bench`: the performance benchmark (issue 7). Builds the operator and the
# OCI emulator in release mode, starts the benchmark's own control plane
# (CLUSTER=bench tests/cluster/up.sh), installs the CRD and deploy/ (RBAC), makes a
# kubeconfig with the operator ServiceAccount's token, and runs the scenarios
# (k8s-oci-operator-bench), which start the emulator and the operator as
# separate processes. Everything started is stopped on exit, by recorded pid.
#
# Flags are passed on: tests/bench/run.sh --burst 200 --idle-ips 400 ...
# (or make bench BENCH_ARGS="--burst 200"); see --help. BENCH_KEEP=1 leaves
# the control plane running afterwards; BENCH_NO_BUILD=1 skips the builds;
# BENCH_NO_DOCS=1 leaves docs/benchmarks.md alone.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
dir=$root/.sandbox/bench
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/k8s-oci-operator/target}
# shellcheck source=../cluster/versions.sh
. "$root/tests/cluster/versions.sh"
export PATH=$SANDBOX_BIN:$PATH
log() { printf '[bench] %s\n' "$*" >&2; }

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  cargo run -q -p bench --bin k8s-oci-operator-bench -- --help
  exit 0
fi

# BENCH_NO_BUILD=1 measures the binaries already built (e.g. while the
# sources are being edited).
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  log "building the operator and the emulator (release) and the benchmark"
  cargo build -q --release -p k8s-oci-operator --bin k8s-oci-operator -p oci-emulator --bin oci-emulator
  cargo build -q -p bench --bin k8s-oci-operator-bench
  # Scenario 6: the example policies and the policy engine's micro-benchmark.
  policies/build.sh >/dev/null
  cargo build -q --release -p policy-bench
fi
mkdir -p "$dir"

stop_recorded() {
  # The benchmark stops its own children; this is the safety net if it died.
  for name in operator emulator; do
    f=$dir/$name.pid
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  if [ "${BENCH_KEEP:-0}" != 1 ]; then CLUSTER=bench tests/cluster/down.sh || true; fi
}
trap stop_recorded EXIT

# A fresh control plane each run: figures must not depend on a previous run's objects.
CLUSTER=bench tests/cluster/down.sh >/dev/null 2>&1 || true
CLUSTER=bench tests/cluster/up.sh
export KUBECONFIG=$dir/kubeconfig

kubectl apply -f config/crd/bases >/dev/null
kubectl wait --for=condition=Established crd/reservedips.oci.k8s.logmein.com --timeout=60s >/dev/null
kubectl apply -f deploy/ >/dev/null

# The operator talks to the API server as the deploy/ ServiceAccount, so the
# shipped RBAC is what it runs with (as in tests/sandbox/up.sh).
token=$(kubectl -n k8s-oci-operator create token k8s-oci-operator --duration=24h)
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
ca_file=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority}')
[ -n "$ca" ] || ca=$(base64 -w0 <"$ca_file")
umask 077
cat >"$dir/operator.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: bench, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: operator, user: {token: "$token"}}]
contexts: [{name: operator, context: {cluster: bench, user: operator}}]
current-context: operator
KC
umask 022

# BENCH_NO_DOCS=1 (experiments) leaves docs/benchmarks.md as it is.
docs=(--docs "$root/docs/benchmarks.md")
[ "${BENCH_NO_DOCS:-0}" = 1 ] && docs=()
"$CARGO_TARGET_DIR/debug/k8s-oci-operator-bench" \
  --dir "$dir" \
  --kubeconfig "$dir/kubeconfig" \
  --operator-kubeconfig "$dir/operator.kubeconfig" \
  --operator-bin "$CARGO_TARGET_DIR/release/k8s-oci-operator" \
  --emulator-bin "$CARGO_TARGET_DIR/release/oci-emulator" \
  --oci-config "$root/tests/oci-emulator/testdata/oci-config" \
  --public-key "$root/tests/oci-emulator/testdata/oci_api_key_public.pem" \
  --policy-bench-bin "$CARGO_TARGET_DIR/release/policy-bench" \
  --policy-dir "$CARGO_TARGET_DIR/policies" \
  "${docs[@]}" \
  "$@"
