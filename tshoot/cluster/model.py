"""The cluster as every command sees it: one model, indexed once.

Built from API objects as the server returns them (CiliumIdentity, Node, CiliumEndpoint, Pod, and the
cilium-config ConfigMap), either all at once (`Cluster.fetch`: one paginated list per resource, in
parallel) or from lists a caller already has. Without an API (a local walk, an offline command) the
model is empty and says only what needs no cluster: reserved identities.

What it answers, each from one index: identity -> labels (reserved ones by name, tshoot.core.identity),
node address -> node name, (node, endpoint id) -> pod, pod address -> pod, and the agents' configuration.
"""

from __future__ import annotations

import threading

from tshoot.core import addr
from tshoot.core.errors import TshootError, UsageError
from tshoot.core.identity import reserved_labels

NODE_ADDRESS_TYPES = ("InternalIP", "ExternalIP")


def canonical_ip(text: str) -> str | None:
    """An address as tshoot prints it ('fd00:0::1' -> 'fd00::1'); None when it is not one."""
    try:
        return addr.show_ip(addr.parse_ip(text)[1])
    except UsageError:
        return None


def node_address_index(nodes: list[dict]) -> dict[str, str]:
    """Node InternalIP/ExternalIP (canonical) -> node name: the one index of node addresses."""
    out: dict[str, str] = {}
    for node in nodes:
        name = node.get("metadata", {}).get("name", "")
        for address in node.get("status", {}).get("addresses", []) or []:
            if address.get("type") in NODE_ADDRESS_TYPES and address.get("address"):
                out.setdefault(canonical_ip(address["address"]) or address["address"], name)
    return out


class Cluster:
    """The cluster objects commands name things with, indexed. `api` (optional) is the connection they came
    from; `endpoint_objects()` reads CiliumEndpoints lazily when they were not given."""

    def __init__(self, api=None, identities: list[dict] | None = None, nodes: list[dict] | None = None,
                 endpoints: list[dict] | None = None, pods: list[dict] | None = None, config: dict | None = None,
                 cilium_nodes: list[dict] | None = None):
        self.api = api
        self.config: dict[str, str] = dict(config or {})  # the cilium-config ConfigMap's data
        self.identity_labels: dict[int, list[str]] = {}
        for identity in identities or []:
            name = identity.get("metadata", {}).get("name", "")
            if name.isdigit():
                labels = identity.get("security-labels") or {}
                self.identity_labels[int(name)] = [f"{k}={v}" if v else k for k, v in sorted(labels.items())]
        self.node_by_ip = node_address_index(nodes or [])
        # Pod CIDRs per node: what Cilium's IPAM gave (CiliumNode spec.ipam.podCIDRs), else Node.spec.podCIDRs
        # (ipam mode kubernetes uses those).
        self.pod_cidrs: dict[str, list[str]] = {
            n.get("metadata", {}).get("name", ""): list(n.get("spec", {}).get("podCIDRs") or []) for n in nodes or []}
        for cn in cilium_nodes or []:
            ipam = (cn.get("spec") or {}).get("ipam") or {}
            if ipam.get("podCIDRs"):
                self.pod_cidrs[cn.get("metadata", {}).get("name", "")] = list(ipam["podCIDRs"])
        self.pod_by_ip: dict[str, str] = {}
        self.pod_node_by_ip: dict[str, str] = {}  # the node a pod address lives on (spec.nodeName)
        for pod in pods or []:
            meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
            if spec.get("hostNetwork"):
                continue  # a host-network pod's address is its node's
            for entry in status.get("podIPs") or ([{"ip": status["podIP"]}] if status.get("podIP") else []):
                self.pod_by_ip[entry.get("ip", "")] = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
                if spec.get("nodeName"):
                    self.pod_node_by_ip[entry.get("ip", "")] = spec["nodeName"]
        self._endpoints = endpoints
        self._endpoints_note: str | None = None
        self._endpoint_index: dict[tuple[str, int], str] | None = None
        self._lock = threading.Lock()

    @classmethod
    def fetch(cls, api) -> "Cluster":
        """One paginated list per resource (CiliumIdentity, Node, CiliumEndpoint, Pod, CiliumNode) and the
        cilium-config ConfigMap, fetched in parallel."""
        from concurrent.futures import ThreadPoolExecutor

        from tshoot.cluster import kube

        kinds = [kube.CILIUM_IDENTITIES, kube.NODES, kube.CILIUM_ENDPOINTS, kube.PODS, kube.CILIUM_NODES]
        with ThreadPoolExecutor(len(kinds) + 1) as pool:
            config = pool.submit(cilium_config, api)
            identities, nodes, endpoints, pods, cilium_nodes = pool.map(lambda kind: list(kube.list_objects(api, kind)),
                                                                        kinds)
            return cls(api, identities, nodes, endpoints, pods, config=config.result(), cilium_nodes=cilium_nodes)

    # --- identities ----------------------------------------------------------------------------------
    def labels(self, identity: int) -> list[str]:
        """The identity's labels: reserved ones by name, the others from their CiliumIdentity ([] unknown)."""
        return reserved_labels(identity) or self.identity_labels.get(identity, [])

    # --- endpoints -----------------------------------------------------------------------------------
    def endpoint_objects(self) -> tuple[list[dict], str | None]:
        """The CiliumEndpoints (read once, on first use) and, when they could not be read, why."""
        with self._lock:
            if self._endpoints is None:
                if self.api is None:
                    self._endpoints = []
                else:
                    from tshoot.cluster import kube

                    try:
                        self._endpoints = list(kube.list_objects(self.api, kube.CILIUM_ENDPOINTS))
                    except TshootError as exc:
                        self._endpoints, self._endpoints_note = [], f"pods not named: {exc}"
            return self._endpoints, self._endpoints_note

    def endpoint_pod(self, node: str, endpoint_id: int) -> str | None:
        """The pod ("ns/name") behind endpoint `endpoint_id` of `node`. CiliumEndpoint ids are per node; the
        CEP names its node by IP (status.networking.node; a name is accepted too)."""
        if self._endpoint_index is None:
            index = {}
            for cep in self.endpoint_objects()[0]:
                status = cep.get("status") or {}
                meta = cep.get("metadata", {})
                node_ip = (status.get("networking") or {}).get("node")
                if isinstance(status.get("id"), int) and node_ip:
                    on = self.node_by_ip.get(canonical_ip(node_ip) or node_ip, node_ip)
                    index[(on, status["id"])] = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
            self._endpoint_index = index
        return self._endpoint_index.get((node, endpoint_id))

    # --- configuration -------------------------------------------------------------------------------
    def setting(self, key: str) -> str | None:
        """A cilium-config key as the agents read it (None when absent: the agent's default applies)."""
        return self.config.get(key)


def cilium_config(api) -> dict[str, str]:
    """The cilium-config ConfigMap's data, from the namespace the agents run in; {} when there is none
    (every option then has the agent's default)."""
    from tshoot.cluster import cilium, kube

    for namespace in cilium.AGENT_NAMESPACES:
        try:
            return dict(kube.get_object(api, kube.CONFIGMAPS, "cilium-config", namespace).get("data") or {})
        except TshootError:
            continue
    return {}
