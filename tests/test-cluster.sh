# Sourced by tests/run-all.sh and tests/reliability.sh: the tests' own control
# plane (CLUSTER=test, .sandbox/test/), apart from the sandbox's, so an operator
# left running by `make demo` never sees a test's objects and the tests never
# see it. Reuses that control plane when it is already up (make cluster-up
# CLUSTER=test), otherwise starts it; stop_test_cluster stops it only if this
# run started it. Needs `log` defined by the caller.
started_test_cluster=false
stop_test_cluster() {
  if $started_test_cluster; then CLUSTER=test tests/cluster/down.sh || true; fi
  started_test_cluster=false
}
trap stop_test_cluster EXIT
if [ -f .sandbox/test/cluster.ready ] && CLUSTER=test tests/cluster/up.sh 2>/dev/null; then
  log "using the running test control plane (.sandbox/test)"
else
  log "starting the test control plane (.sandbox/test; the sandbox's, if up, is left alone)"
  started_test_cluster=true
  CLUSTER=test tests/cluster/up.sh
fi
# shellcheck source=/dev/null
. .sandbox/test/env
