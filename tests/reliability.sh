#!/usr/bin/env bash
# The reliability suite of issue 6 at full size: crashes at every chosen point
# (CRASH_HITS per point, default 3), SIGKILLs at random moments
# (SIGKILL_ROUNDS, default 200), OCI faults, lost answers, failover, an API
# server outage, conflicts, eventual consistency, private-IP reuse, tenancy,
# hostile input and secrets. Prints the table: scenario, lifecycles,
# kills/faults injected, converged, leaked, double-allocated, lost.
# (`make test` runs the same scenarios at CI size and prints the same table.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/k8s-oci-operator/target}
export CRASH_HITS=${CRASH_HITS:-3} SIGKILL_ROUNDS=${SIGKILL_ROUNDS:-200}

log() { printf '[reliability] %s\n' "$*" >&2; }
# shellcheck source=test-cluster.sh
. tests/test-cluster.sh

RELIABILITY_REPORT=$(mktemp)
export RELIABILITY_REPORT
set +e
cargo test -p integration-tests --no-fail-fast \
  --test crash_points --test process --test reliability --test eventual_consistency \
  --test private_ip_reuse --test conflicts --test apiserver_outage \
  --test tenancy --test hostile_input --test secrets --test uninstall
status=$?
set -e
echo
# Built by the cargo test above (cargo test builds the packages' binaries).
"$CARGO_TARGET_DIR/debug/reliability-table" "$RELIABILITY_REPORT" || status=1
rm -f "$RELIABILITY_REPORT"
exit "$status"
