"""One `tshoot map …` command's connections: which backends (nodes) it reads, the cluster it may ask for
enrichment, and running the work on every node at once (tshoot.node.fanout).

Backend choice: tshoot.node.choice's rule, as for every command; when it falls back to local on a machine
without a kubeconfig and without Cilium maps pinned, a one-line error says both ways.
"""

from __future__ import annotations

import os
import socket

from tshoot.cluster.enrich import Enricher
from tshoot.cluster.model import Cluster
from tshoot.core.errors import TshootError
from tshoot.node.backend import DEFAULT_BPFFS, PIN_DIR, Backend
from tshoot.node.choice import choose_backend, kubeconfig_reachable
from tshoot.node.fanout import DEFAULT_PARALLEL, DEFAULT_TIMEOUT, NodeFailure, fan_out


class Session:
    def __init__(self, backend: str = "auto", bpffs: str | None = None, node: str | None = None,
                 all_nodes: bool = False, kubeconfig: str | None = None, context: str | None = None,
                 namespace: str | None = None, parallel: int = DEFAULT_PARALLEL, timeout: float = DEFAULT_TIMEOUT,
                 verbose: bool = False, note=None, netns: str | None = None):
        local_only = "--bpffs" if bpffs else "--netns" if netns else None
        self.kind = choose_backend(backend, node, all_nodes, kubeconfig, local_only=local_only,
                                   hostname=socket.gethostname())
        self.bpffs, self.node, self.all_nodes = bpffs or DEFAULT_BPFFS, node, all_nodes
        self.explicit = backend != "auto" or local_only is not None
        self.kubeconfig, self.context, self.namespace = kubeconfig, context, namespace
        self.parallel, self.timeout = parallel, timeout
        self.verbose, self.note = verbose, note or (lambda text: None)
        self.netns = netns  # local backend: the node's network namespace
        self._clocks: dict[str, object] = {}
        self._config: dict | None = None
        self._api = None
        self._chosen: dict[str, Backend] = {}
        self._backends: list[Backend | NodeFailure] | None = None
        self._fetching = None  # the thread fetching the cluster snapshot while the nodes are read (run(enrich=))
        self._snapshot: tuple[Cluster | None, str | None] = (None, None)
        self._asked = False  # run(enrich="asked"): the cluster is asked what the answers name, nothing listed

    # --- backends ---------------------------------------------------------------------------------------
    def backends(self) -> list[Backend | NodeFailure]:
        """The nodes this command reads (found once: the agent pods are listed once per command)."""
        if self._backends is None:
            self._backends = self._find_backends()
        return self._backends

    def _find_backends(self) -> list[Backend | NodeFailure]:
        if self.kind == "local":
            from tshoot.node.local import LocalBackend

            if not self.explicit and not os.path.isdir(os.path.join(self.bpffs, PIN_DIR)):
                raise TshootError(f"no kubeconfig found and no Cilium maps pinned under {self.bpffs}/{PIN_DIR}: pass "
                                  f"--kubeconfig (or run 'make up'), or run on a node as root with --backend local")
            chosen: list = [LocalBackend(self.bpffs, netns=self.netns)]
        else:
            from tshoot.node.agent import pod_backends

            chosen = pod_backends(self.api(), self.node, self.namespace, self.timeout, self.note)
        self._chosen = {b.node: b for b in chosen}
        if self.verbose:
            self.note(f"{self.kind} backend; nodes: {', '.join(b.node for b in chosen)}")
        return chosen

    def api(self):
        if self._api is None:
            from tshoot.cluster.kube import api_client

            self._api = api_client(self.kubeconfig, self.context)
        return self._api

    def run(self, work, enrich: str | None = None, on_answer=None) -> list:
        """work(backend) on every node chosen, results in node order (tshoot.node.fanout.fan_out; on_answer(result)
        as each node answers). enrich, how enricher() will know the cluster: "every" (a dump naming thousands of
        entries): the whole snapshot, fetched meanwhile (its lists wait on the API server as the nodes' execs
        do, so the command waits for the longer, not the sum); "asked" (a lookup naming a few things): only
        what the answers name, asked when they are named (tshoot.cluster.model.Cluster(api))."""
        backends = self.backends()
        self._asked = enrich == "asked"
        if enrich == "every" and self.kind == "pod":
            import threading

            def fetch() -> None:
                self._snapshot = self._fetch()

            self._fetching = threading.Thread(target=fetch, daemon=True)
            self._fetching.start()
        return fan_out(backends, work, self.parallel, on_answer)

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
        if self._fetching is not None:
            self._fetching.join()
            cluster, problem = self._snapshot
        elif self._asked:
            if self._snapshot[0] is None and self._snapshot[1] is None:
                self._snapshot = self._fetch(asked=True)
            cluster, problem = self._snapshot
        else:
            cluster, problem = self._fetch()
        if problem and nodes:
            self.note(f"{problem}; identities other than reserved ones, nodes, pods and endpoints are not named")
        return Enricher(cluster, kinds, interfaces=self._interfaces,
                        clocks=(lambda node: self.clock(node, clock_mode)) if clocks else None)

    def _fetch(self, asked: bool = False) -> tuple[Cluster | None, str | None]:
        """(the cluster snapshot, or with `asked` the cluster that is asked as entries are named, None), or
        (None, why there is none)."""
        if self._api is None and not kubeconfig_reachable(self.kubeconfig):
            return None, "no cluster to ask (no kubeconfig)"
        try:
            return (Cluster(self.api()) if asked else Cluster.fetch(self.api())), None
        except TshootError as exc:
            return None, f"cluster not reachable for enrichment: {exc}"
        except Exception as exc:  # the API said no (403 on a resource, …): the entries stand without it
            return None, f"cluster not reachable for enrichment: {type(exc).__name__}: {str(exc).splitlines()[0]}"

    def _interfaces(self, node: str) -> dict[int, str]:
        backend = self._chosen[node]
        if backend.kind == "local" and self.netns is None:
            self.note("interface names are those of tshoot's own network namespace (no --netns given); a node "
                      "in its own namespace (kind, a container) numbers its interfaces there: give --netns")
        return backend.interfaces()
