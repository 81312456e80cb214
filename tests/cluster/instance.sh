# Which local control plane a script works on; sourced by the cluster scripts.
#
# Three can run side by side, each with its own kwokctl cluster name, work
# directory and ports (kwokctl picks free ones), so `make test` and
# `make bench` never share a control plane with the sandbox's operator:
#
#   CLUSTER=sandbox (default)  .sandbox/        make cluster-up, sandbox-up, demo
#   CLUSTER=test               .sandbox/test/   make test, make reliability
#   CLUSTER=bench              .sandbox/bench/  make bench (no nodes: it makes its own)
#
# Sets: cluster_name, cluster_dir, cluster_nodes (true/false).
CLUSTER=${CLUSTER:-sandbox}
case "$CLUSTER" in
  sandbox) cluster_name=k8s-oci-operator; cluster_dir=$root/.sandbox; cluster_nodes=true ;;
  test) cluster_name=k8s-oci-operator-test; cluster_dir=$root/.sandbox/test; cluster_nodes=true ;;
  bench) cluster_name=k8s-oci-operator-bench; cluster_dir=$root/.sandbox/bench; cluster_nodes=false ;;
  *) echo "CLUSTER must be sandbox, test or bench (got '$CLUSTER')" >&2; exit 2 ;;
esac
