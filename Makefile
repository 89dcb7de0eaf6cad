# kindlab: the guide's lab targets, each a thin call into the `lab` CLI (the work lives in lab/ and tshoot/).
VENV    ?= .venv
PY      := $(VENV)/bin/python
LAB     := $(VENV)/bin/lab
TSHOOT  := $(VENV)/bin/tshoot
NODE    ?= k8s-guide-control-plane
PYTEST_ARGS ?=
export KUBECONFIG ?= $(CURDIR)/kubeconfig

.DEFAULT_GOAL := help
.PHONY: help lab setup check up down cilium cilium-wait cilium-check cilium-connectivity cilium-restart cilium-unhook \
        nuke-all-pods nuke-kube-proxy tshoot test test-deps bench

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml scripts/venv
	@scripts/venv $(VENV)

setup: $(VENV)/.installed ## create the virtualenv and install kindlab (lab, tshoot)

lab: setup ## the whole guide in one go: cluster, Cilium, wait, restart pods, remove kube-proxy, wait, check
	@$(LAB) up
	@$(LAB) cilium install
	@$(LAB) cilium wait
	@$(LAB) nuke pods
	@$(LAB) nuke kube-proxy
	@$(LAB) cilium wait
	@$(LAB) cilium check

check: setup ## check this machine: docker, kind, kubectl, helm, kernel, cgroups, bpffs, inotify
	@$(LAB) doctor

up: setup ## create the kind cluster k8s-guide (reused when healthy), write ./kubeconfig
	@$(LAB) up

down: setup ## delete the kind cluster (offers cilium-unhook first)
	@$(LAB) down

cilium: setup ## install Cilium (VXLAN, kube-proxy replacement) and the net-tshoot DaemonSet
	@$(LAB) cilium install

cilium-wait: setup ## wait until every Cilium agent is ready, with progress per node
	@$(LAB) cilium wait

cilium-check: setup ## cilium status in every agent, as one table
	@$(LAB) cilium check

cilium-connectivity: setup ## the guide's paths with real packets (pod, node, Service, NodePort, world, DNS); failures walked
	@$(LAB) check connectivity

cilium-restart: setup ## restart the Cilium agents and wait for them
	@$(LAB) cilium restart

cilium-unhook: setup ## detach Cilium's cgroup programs from the host (do this before leaving the lab)
	@$(LAB) cilium unhook

nuke-all-pods: setup ## restart every pod so it gets its network from Cilium
	@$(LAB) nuke pods

nuke-kube-proxy: setup ## delete kube-proxy and its rules (KUBE-* iptables chains, nftables tables) on every node
	@$(LAB) nuke kube-proxy

tshoot: setup ## a shell in the net-tshoot pod on NODE (NODE=k8s-guide-worker2 make tshoot)
	@$(LAB) shell --node $(NODE)

test-deps:
	@scripts/install-test-deps

test: test-deps ## install what the tests need (apt when root, venv, kubectl 1.34, dockerd) and run the whole suite
	@scripts/venv $(VENV)
	@scripts/install-kubectl $(VENV)/bin
	@$(PY) -m tests.dockerd
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup ## run the speed benchmarks (ratios against a reference in the same run)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
