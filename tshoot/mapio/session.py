"""One `tshoot map …` command's connections: which backends (nodes) it reads, the cluster it may ask for
enrichment, and running the work on every node at once.

Backend choice (--backend auto): with --node or --all-nodes, the pod backend; otherwise the pod backend on
every node when a kubeconfig is reachable (each node's maps differ: local endpoints, local ipcache entries),
else the local backend when this machine has Cilium maps pinned, else a one-line error saying both ways.
"""

from __future__ import annotations

import os
import socket

from tshoot.node.backend import PIN_DIR, Backend
from tshoot.cluster.enrich import Enricher
from tshoot.cluster.model import Cluster
from tshoot.core.errors import TshootError, UsageError
from tshoot.mapio.read import on_nodes


class Session:
    def __init__(self, backend: str = "auto", bpffs: str = "/sys/fs/bpf", node: str | None = None,
                 all_nodes: bool = False, kubeconfig: str | None = None, context: str | None = None,
                 namespace: str | None = None, workers: int = 32, verbose: bool = False, note=None,
                 netns: str | None = None):
        if node and all_nodes:
            raise UsageError("give --node NAME or --all-nodes, not both")
        self.kind, self.bpffs, self.node, self.all_nodes = backend, bpffs, node, all_nodes
        self.kubeconfig, self.context, self.namespace = kubeconfig, context, namespace
        self.workers, self.verbose, self.note = workers, verbose, note or (lambda text: None)
        self.netns = netns  # local backend: the node's network namespace
        self._clocks: dict[str, object] = {}
        self._config: dict | None = None
        self._api = None
        self._chosen: dict[str, Backend] = {}

    # --- backends ---------------------------------------------------------------------------------------
    def choose(self) -> str:
        if self.kind != "auto":
            return self.kind
        if self.node or self.all_nodes or _kubeconfig_reachable(self.kubeconfig):
            return "pod"
        if os.path.isdir(os.path.join(self.bpffs, PIN_DIR)):
            return "local"
        raise TshootError(f"no kubeconfig found and no Cilium maps pinned under {self.bpffs}/{PIN_DIR}: pass "
                          f"--kubeconfig (or run 'make up'), or run on a node as root with --backend local")

    def backends(self) -> list[Backend]:
        kind = self.choose()
        if kind == "local":
            from tshoot.node.local import LocalBackend

            if self.all_nodes:
                raise UsageError("--backend local reads this machine only: drop --all-nodes or use --backend pod")
            if self.node and self.node != socket.gethostname():
                raise UsageError(f"--backend local reads this machine ({socket.gethostname()}), not {self.node}: "
                                 f"drop --node or use --backend pod")
            chosen: list[Backend] = [LocalBackend(self.bpffs, netns=self.netns)]
        else:
            from tshoot.node.agent import agents

            if self.netns:
                raise UsageError("--netns names a namespace on this machine: it goes with --backend local")

            chosen = agents(self.api(), node=self.node, namespace=self.namespace, note=self.note)
        self._chosen = {b.node: b for b in chosen}
        if self.verbose:
            self.note(f"{kind} backend; nodes: {', '.join(b.node for b in chosen)}")
        return chosen

    def api(self):
        if self._api is None:
            from tshoot.cluster.kube import api_client

            self._api = api_client(self.kubeconfig, self.context)
        return self._api

    def run(self, work) -> list:
        return on_nodes(self.backends(), work, self.workers)

    # --- enrichment -------------------------------------------------------------------------------------
    def clock(self, node: str, mode: str | None):
        """The node's clock in conntrack units (tshoot.mapio.ctclock), read once per node."""
        from tshoot.mapio.ctclock import clock_source, node_clock

        if node not in self._clocks:
            backend = self._chosen[node]
            source = clock_source(mode, self.config() if backend.kind == "pod" else None, backend.version)
            self._clocks[node] = node_clock(backend.clock_samples, source)
            if self.verbose:
                self.note(f"{node}: conntrack lifetimes read with the {source.mode} clock ({source.said_by})")
        return self._clocks[node]

    def config(self) -> dict:
        """The cilium-config ConfigMap's data ({} when there is none)."""
        if self._config is None:
            from tshoot.cluster.model import cilium_config

            self._config = cilium_config(self.api())
        return self._config

    def enricher(self, results, kinds: dict[str, str], clock_mode: str | None = None, clocks: bool = False) -> Enricher:
        """One cluster snapshot for the whole command, when there is a cluster to ask."""
        nodes = {getattr(r, "node", None): r for r in results}
        cluster, problem = None, None
        if self._api is not None or _kubeconfig_reachable(self.kubeconfig):
            try:
                cluster = Cluster.fetch(self.api())
            except TshootError as exc:
                problem = f"cluster not reachable for enrichment: {exc}"
            except Exception as exc:  # the API said no (403 on a resource, …): the entries stand without it
                problem = f"cluster not reachable for enrichment: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        else:
            problem = "no cluster to ask (no kubeconfig)"
        if problem and nodes:
            self.note(f"{problem}; identities other than reserved ones, nodes, pods and endpoints are not named")
        return Enricher(cluster, kinds, interfaces=self._interfaces,
                        clocks=(lambda node: self.clock(node, clock_mode)) if clocks else None)

    def _interfaces(self, node: str) -> dict[int, str]:
        backend = self._chosen[node]
        if backend.kind == "local" and self.netns is None:
            self.note("interface names are those of tshoot's own network namespace (no --netns given); a node "
                      "in its own namespace (kind, a container) numbers its interfaces there: give --netns")
        return backend.interfaces()


def _kubeconfig_reachable(kubeconfig: str | None) -> bool:
    from tshoot.cluster.kube import kubeconfig_reachable  # tshoot.kube costs ~20 ms to import: not for --backend local

    return kubeconfig_reachable(kubeconfig)
