# The one front door for humans and CI. `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

# Caches live outside the clone so a fresh clone (and CI) reuses them.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/k8s-oci-operator/target

.PHONY: help
help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build every crate of the workspace
	cargo build --workspace --all-targets

.PHONY: dist
dist: ## Static binaries for linux/amd64 and linux/arm64 (musl, zig) and SHA256SUMS in dist/release
	release/dist.sh

.PHONY: image
image: ## The multi-arch image (OCI image index) from the Containerfile with buildah, into dist/image; run `make dist` first
	release/image.sh

.PHONY: publish
publish: ## Push dist/image and the chart to REGISTRY (e.g. ghcr.io/logmein); TAG=v<version> is checked when given
	release/publish.sh

.PHONY: lint
lint: ## cargo fmt --check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

.PHONY: fmt
fmt: ## Format the code
	cargo fmt --all

.PHONY: crd
crd: ## Regenerate config/crd/bases (and the chart's copy in crds/) from the Rust types
	cargo run -q -p k8s-oci-operator -- crd > config/crd/bases/oci.k8s.logmein.com_reservedips.yaml
	cp config/crd/bases/oci.k8s.logmein.com_reservedips.yaml deploy/chart/k8s-oci-operator/crds/

.PHONY: helm
helm: ## Build helm from its Go module (once, cached), for the chart and `make manifests`
	tests/cluster/build.sh helm

.PHONY: manifests
manifests: ## Render deploy/*.yaml from the Helm chart in deploy/chart (a test fails when they differ)
	deploy/chart/render-manifests.sh

.PHONY: cluster-binaries
cluster-binaries: ## Build etcd, kube-*, kubectl and kwok from their Go modules (once, cached)
	tests/cluster/build.sh

.PHONY: cluster-up
cluster-up: ## Start the local control plane in the background; writes .sandbox/env (CLUSTER=test: the tests' own, .sandbox/test/env)
	tests/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local control plane (by recorded pids) and remove its data (CLUSTER=test: the tests' own)
	tests/cluster/down.sh

.PHONY: sandbox-up
sandbox-up: ## Control plane + OCI emulator + operator in the background; writes .sandbox/env
	tests/sandbox/up.sh

.PHONY: sandbox-down
sandbox-down: ## Stop the operator, the emulator and the control plane (by recorded pids)
	tests/sandbox/down.sh

.PHONY: demo
demo: ## The README walk-through end to end on the local sandbox (leaves it running)
	tests/sandbox/demo.sh

.PHONY: test
test: ## Run every test: lint, unit, emulator contract and cluster tests (on their own control plane, never the sandbox's)
	tests/run-all.sh

.PHONY: reliability
reliability: ## Reliability suite at full size (crash points, SIGKILLs, faults, failover...) and its table
	tests/reliability.sh

.PHONY: bench
bench: ## Performance benchmark (own control plane + emulator + release operator); results in .sandbox/bench, docs/benchmarks.md
	tests/bench/run.sh $(BENCH_ARGS)
