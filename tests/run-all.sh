#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, unit tests, the OCI
# emulator's contract tests, and the tests on the local control plane. Starts
# the control plane when it is not up, and stops it again if it started it.
# Ends with one summary line over all test binaries.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/k8s-oci-operator/target}
log() { printf '\n[test] %s\n' "$*" >&2; }

log "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

started_cluster=false
cleanup() { if $started_cluster; then tests/cluster/down.sh || true; fi; }
trap cleanup EXIT

if [ -f .sandbox/kubeconfig ] && tests/cluster/up.sh 2>/dev/null; then
  log "using the running control plane"
else
  log "starting the control plane"
  started_cluster=true
  tests/cluster/up.sh
fi
# shellcheck source=/dev/null
. .sandbox/env

out=$(mktemp)
# The reliability scenarios append their rows here (issue 6's table).
RELIABILITY_REPORT=$(mktemp)
export RELIABILITY_REPORT
log "cargo test (unit, contract and cluster tests)"
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e

log "reliability scenarios (leaked, double-allocated and lost public IPs)"
# Built by the cargo test above (cargo test builds the packages' binaries).
"$CARGO_TARGET_DIR/debug/reliability-table" "$RELIABILITY_REPORT" || status=1
rm -f "$RELIABILITY_REPORT"

# cargo prints one "test result:" line per test binary; add them up.
summary=$(awk '/^test result:/ {
  for (i = 1; i <= NF; i++) {
    if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i
  }
  n++
} END { printf "test summary: %d passed; %d failed; %d ignored; %d test binaries; %s", p, f, g, n, (f == 0 ? "ok" : "FAILED") }' "$out")
rm -f "$out"
# Stop what we started before the summary, so it is the last line printed.
cleanup
trap - EXIT
printf '\n%s\n' "$summary"
exit "$status"
