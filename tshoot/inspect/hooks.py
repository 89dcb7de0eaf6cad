"""Backends that find BPF hooks, programs and cgroup attachments: `local` (this machine, any network
namespace: netlink and bpf(2)) and `pod` (bpftool in a node's Cilium agent, through the Kubernetes API).
Both return the models of tshoot.inspect.netshow and tshoot.inspect.programs."""

from __future__ import annotations

from tshoot.core.errors import UsageError

BACKENDS = ("auto", "local", "pod")


def choose_backend(backend: str, node: str | None, all_nodes: bool, netns: str | None) -> str:
    """local or pod, from --backend, --node/--all-nodes and --netns; UsageError for combinations that
    cannot mean anything."""
    backend = backend.lower()
    if backend not in BACKENDS:
        raise UsageError(f"--backend {backend}: expected one of {', '.join(BACKENDS)}")
    if node and all_nodes:
        raise UsageError("--node and --all-nodes: give one of them")
    if backend == "auto":
        backend = "pod" if node or all_nodes else "local"
    if backend == "local" and (node or all_nodes):
        raise UsageError("--node/--all-nodes ask a cluster's Cilium agents: drop --backend local")
    if backend == "pod" and netns:
        raise UsageError("--netns is for the local backend (the Cilium agent runs in the node's own namespace)")
    if backend == "pod" and not (node or all_nodes):
        raise UsageError("the pod backend needs --node NAME" )
    return backend
