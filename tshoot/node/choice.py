"""Which way a command reaches nodes (`--backend`), one rule for every command that reads BPF state:

* `pod`: bpftool in each node's Cilium agent, through the Kubernetes API (tshoot.node.agent);
* `local`: this machine, as root (libbpf and bpf(2): tshoot.node.local, tshoot.inspect.hooks_local);
* `auto` (the default): local when an option that only this machine can answer is given (--netns, --bpffs);
  else pod when --node or --all-nodes is given or a kubeconfig is reachable (the nodes' maps and hooks
  differ, and a laptop's own are not the cluster's); else local.

A pod-backend command without --node asks every node. A question about one node's objects (`prog show ID`,
`cgroup show`) cannot be asked of every node: there auto means pod only with --node.
"""

from __future__ import annotations

from tshoot.core.errors import UsageError

BACKENDS = ("auto", "local", "pod")
BACKEND_HELP = ("local: this machine (root); pod: bpftool in the nodes' Cilium agents through the Kubernetes API; "
                "auto (default): pod with --node/--all-nodes or when a kubeconfig is reachable, else local")


def choose_backend(backend: str, node: str | None = None, all_nodes: bool = False, kubeconfig: str | None = None,
                   local_only: str | None = None, hostname: str | None = None, one_node: bool = False) -> str:
    """local or pod. `local_only` names a given option only the local backend can answer ("--netns");
    `hostname`, when given, is this machine's name: --node naming it is fine with --backend local;
    `one_node`: the question is about one node's objects (--node is then needed to ask a cluster).
    UsageError for combinations that cannot mean anything."""
    backend = backend.lower()
    if backend not in BACKENDS:
        raise UsageError(f"--backend {backend}: expected one of {', '.join(BACKENDS)}")
    if node and all_nodes:
        raise UsageError("--node and --all-nodes: give one of them")
    if backend == "auto":
        if local_only and not (node or all_nodes):
            backend = "local"
        elif node or all_nodes or (not one_node and kubeconfig_reachable(kubeconfig)):
            backend = "pod"
        else:
            backend = "local"
    if backend == "local" and (all_nodes or (node and node != hostname)):
        here = f" ({hostname})" if hostname else ""
        raise UsageError(f"--backend local reads this machine{here}: drop --backend local to ask the nodes' Cilium "
                         f"agents, or drop --node/--all-nodes")
    if backend == "pod" and local_only:
        raise UsageError(f"{local_only} is for the local backend (the Cilium agent runs in the node's own namespace)")
    if backend == "pod" and one_node and not node:
        raise UsageError("the pod backend needs --node NAME (this question is about one node's objects)")
    return backend


def kubeconfig_reachable(kubeconfig: str | None) -> bool:
    from tshoot.cluster.kube import kubeconfig_reachable  # ~20 ms to import: not for a plain local command

    return kubeconfig_reachable(kubeconfig)
