#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, unit tests, the OCI
# emulator's contract tests, the image's tests (it builds the release
# binaries and the image first), and the tests on the tests' own local control
# plane (tests/test-cluster.sh: never the sandbox's). Prints each phase's time
# as it goes and ends with one summary line over all test binaries.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/k8s-oci-operator/target}
log() { printf '\n[test] %s\n' "$*" >&2; }
run_start=$SECONDS
phase_start=$SECONDS
phase() { # phase <name>: ends the previous phase with its time, starts the next
  log "$(printf '%s (previous phase %ss, %ss in all)' "$1" $((SECONDS - phase_start)) $((SECONDS - run_start)))"
  phase_start=$SECONDS
}

# A fresh machine with rustup has the toolchain but maybe not the parts the
# tests need: rustfmt, clippy and the wasm32 target of the example policies.
if command -v rustup >/dev/null; then
  missing=$(comm -23 <(echo wasm32-unknown-unknown) <(rustup target list --installed | sort))
  if [ -n "$missing" ] || ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    log "adding rustfmt, clippy and the wasm32-unknown-unknown target (once)"
    rustup component add rustfmt clippy
    rustup target add wasm32-unknown-unknown
  fi
fi

log "formatting and lints (clippy builds the workspace first: minutes on a fresh machine)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The optional oci-rust-sdk signer (AGPL-3.0, cargo feature oci-rust-sdk) is
# linted too; the default build, which releases use, must hold no trace of it.
cargo clippy -p k8s-oci-operator --features oci-rust-sdk --all-targets -- -D warnings
if cargo tree -p k8s-oci-operator -e normal --prefix none | grep -q '^oci-rust-sdk '; then
  echo "oci-rust-sdk is linked by the default build (releases must be free of AGPL code)" >&2
  exit 1
fi

phase "the AssemblyScript example policy (npm packages cached under ~/.cache/k8s-oci-operator/npm)"
# Built here so a missing Node.js fails early and the host's test, which runs
# the same script, finds the module up to date.
policies/assemblyscript-eligibility/build.sh >/dev/null

phase "release binaries and image (make dist image: the image tests run what they contain)"
release/dist.sh
release/image.sh

phase "control plane"
# shellcheck source=test-cluster.sh
. tests/test-cluster.sh

out=$(mktemp)
# The reliability scenarios append their rows here (issue 6's table).
RELIABILITY_REPORT=$(mktemp)
export RELIABILITY_REPORT
# The tenancy attacks append theirs here (issue 12's table).
TENANCY_REPORT=$(mktemp)
export TENANCY_REPORT
phase "cargo test (unit, contract and cluster tests; builds the test binaries first)"
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e

phase "the build with the oci-rust-sdk feature: unit tests, and the contract tests (both signers, every auth mode) against the emulator"
set +e
cargo test -p k8s-oci-operator --features oci-rust-sdk --lib 2>&1 | tee -a "$out" | tail -3
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
cargo test -p oci-emulator --features k8s-oci-operator/oci-rust-sdk --test contract 2>&1 | tee -a "$out" | tail -3
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
set -e

# --- A policy crate outside the repository (issue 16, item 5) ---
phase "a policy crate outside the repository: policies/template copied out, the SDK and the harness by path, its module built, its native and engine tests run (own target dir; the first run builds the operator there)"
set +e
sdk/check-template.sh 2>&1 | tee -a "$out" | tail -5
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
set -e
# --- end of the policy crate outside the repository ---

phase "reliability scenarios (leaked, double-allocated and lost public IPs)"
# Built by the cargo test above (cargo test builds the packages' binaries).
"$CARGO_TARGET_DIR/debug/reliability-table" "$RELIABILITY_REPORT" || status=1
rm -f "$RELIABILITY_REPORT"

phase "tenancy table (attacks by a tenant: refused, OCI untouched)"
"$CARGO_TARGET_DIR/debug/tenancy-table" "$TENANCY_REPORT" || status=1
rm -f "$TENANCY_REPORT"

# cargo prints one "test result:" line per test binary; add them up.
summary=$(awk '/^test result:/ {
  for (i = 1; i <= NF; i++) {
    if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i
  }
  n++
} END { printf "test summary: %d passed; %d failed; %d ignored; %d test binaries; %s", p, f, g, n, (f == 0 ? "ok" : "FAILED") }' "$out")
rm -f "$out"
# Stop what we started before the summary, so it is the last line printed.
stop_test_cluster
trap - EXIT
log "done in $((SECONDS - run_start))s"
printf '\n%s\n' "$summary"
exit "$status"
