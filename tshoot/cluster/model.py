"""The cluster as every command sees it: one model, indexed once.

Built from API objects as the server returns them (CiliumIdentity, Node, CiliumEndpoint, Pod, and the
cilium-config ConfigMap), either all at once (`Cluster.fetch`: one paginated list per resource, in
parallel: what a dump of 100k entries or a trace naming every address needs), from lists a caller already
has, or as it is asked (`Cluster(api)`: an identity by its name, a pod by the status.podIP field selector,
the nodes' list when a node address is first asked: what one lookup or one walk needs, a few small requests
where the lists of a 500-node cluster are megabytes). Without an API (a local walk, an offline command) the
model is empty and says only what needs no cluster: reserved identities.

What it answers, each from one index: identity -> labels (reserved ones by name, tshoot.core.identity),
node address -> node name, (node, endpoint id) -> pod, pod address -> pod, and the agents' configuration.
"""

from __future__ import annotations

import itertools
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


def _identity_labels(identity: dict) -> list[str]:
    labels = identity.get("security-labels") or {}
    return [f"{k}={v}" if v else k for k, v in sorted(labels.items())]


def _pod_addresses(pods: list[dict]) -> dict[str, tuple[str, str | None]]:
    """Pod address -> ("namespace/name", its node), every address of each pod (dual-stack podIPs)."""
    out: dict[str, tuple[str, str | None]] = {}
    for pod in pods:
        meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
        if spec.get("hostNetwork"):
            continue  # a host-network pod's address is its node's
        for entry in status.get("podIPs") or ([{"ip": status["podIP"]}] if status.get("podIP") else []):
            out[entry.get("ip", "")] = (f"{meta.get('namespace', '')}/{meta.get('name', '')}", spec.get("nodeName"))
    return out


def _pod_cidrs(nodes: list[dict], cilium_nodes: list[dict]) -> dict[str, list[str]]:
    """Pod CIDRs per node: what Cilium's IPAM gave (CiliumNode spec.ipam.podCIDRs), else Node.spec.podCIDRs
    (ipam mode kubernetes uses those)."""
    out = {n.get("metadata", {}).get("name", ""): list(n.get("spec", {}).get("podCIDRs") or []) for n in nodes}
    for cn in cilium_nodes:
        ipam = (cn.get("spec") or {}).get("ipam") or {}
        if ipam.get("podCIDRs"):
            out[cn.get("metadata", {}).get("name", "")] = list(ipam["podCIDRs"])
    return out


class Asked:
    """An index filled as it is asked: one targeted request per key (`one(key)`: the answer or None), each answer
    kept. Read like the dict it stands for (`.get(key)`); it is true, as a filled index is: there is a cluster
    to ask. A request that fails answers None: naming things never fails a command."""

    def __init__(self, one):
        self._one = one
        self._items: dict = {}
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            if key not in self._items:
                try:
                    self._items[key] = self._one(key)
                except TshootError:
                    self._items[key] = None
        found = self._items[key]
        return default if found is None else found

    def __bool__(self) -> bool:
        return True


class Cluster:
    """The cluster objects commands name things with, indexed. `api` (optional) is the connection they came
    from: what was not given as a list is asked of it when first needed (module docstring);
    `endpoint_objects()` reads CiliumEndpoints on first use."""

    def __init__(self, api=None, identities: list[dict] | None = None, nodes: list[dict] | None = None,
                 endpoints: list[dict] | None = None, pods: list[dict] | None = None, config: dict | None = None,
                 cilium_nodes: list[dict] | None = None):
        self.api = api
        asked = api is not None
        self._config = dict(config) if config is not None else None if asked else {}
        self.identity_labels: dict[int, list[str]] | Asked = (
            Asked(self._identity) if asked and identities is None else
            {int(i["metadata"]["name"]): _identity_labels(i) for i in identities or []
             if str(i.get("metadata", {}).get("name", "")).isdigit()})
        self.node_by_ip: dict[str, str] | Asked = (
            Asked(self._node_at) if asked and nodes is None else node_address_index(nodes or []))
        self._node_index: dict[str, str] | None = None
        self.pod_cidrs: dict[str, list[str]] | Asked = (
            Asked(self._node_pod_cidrs) if asked and nodes is None else _pod_cidrs(nodes or [], cilium_nodes or []))
        self.pod_by_ip: dict[str, str] | Asked = (
            Asked(lambda address: self._pod_at(address)[0]) if asked and pods is None
            else {address: name for address, (name, _) in _pod_addresses(pods or []).items()})
        self.pod_node_by_ip: dict[str, str] | Asked = (  # the node a pod address lives on (spec.nodeName)
            Asked(lambda address: self._pod_at(address)[1]) if asked and pods is None
            else {address: node for address, (_, node) in _pod_addresses(pods or []).items() if node})
        self._pods_at: dict[str, tuple[str | None, str | None]] = {}
        self._endpoints = endpoints
        self._endpoints_note: str | None = None
        self._endpoint_index: dict[tuple[str, int], str] | None = None
        self._lock = threading.Lock()

    @property
    def asks(self) -> bool:
        """Whether naming things asks the API (some index is filled as it is asked, not listed)."""
        return any(isinstance(index, Asked) for index in (self.identity_labels, self.node_by_ip, self.pod_by_ip,
                                                          self.pod_node_by_ip))

    # --- what is asked of the API when a list was not given ------------------------------------------
    def _identity(self, number: int) -> list[str] | None:
        from tshoot.cluster import kube

        if not isinstance(number, int) or number <= 0:
            return None
        try:
            return _identity_labels(kube.get_object(self.api, kube.CILIUM_IDENTITIES, str(number)))
        except kube.NotFound:
            return None

    def _node_at(self, address: str) -> str | None:
        """The Node with that address. Its name is asked first of the node's host-network pods (kubelet gives
        them the node's InternalIPs as status.podIPs; every Cilium node runs its agent so), then that Node is
        read to confirm it holds the address (a pod outlives a deleted Node): two small requests. Else the list
        of nodes (on a big cluster, megabytes: Node objects carry their images), once."""
        from tshoot.cluster import kube

        pods = kube.list_objects(self.api, kube.PODS, None, field_selector=f"status.podIP={address},spec.hostNetwork=true",
                                 limit=1)
        for pod in itertools.islice(pods, 1):  # one is enough: every host-network pod of a node has its addresses
            name = pod.get("spec", {}).get("nodeName")
            try:
                if name and node_address_index([kube.get_object(self.api, kube.NODES, name)]).get(address):
                    return name
            except kube.NotFound:
                return None  # its node is gone: no Node has the address
        if self._node_index is None:
            self._node_index = node_address_index(list(kube.list_objects(self.api, kube.NODES)))
        return self._node_index.get(address)

    def _pod_at(self, address: str) -> tuple[str | None, str | None]:
        """(the pod with that address, its node), asked once: status.podIP is the field the API selects pods by
        (the primary address; a dual-stack pod's second address is found in CiliumEndpoints instead, as whois
        does)."""
        from tshoot.cluster import kube

        if address not in self._pods_at:
            pods = kube.list_objects(self.api, kube.PODS, None, field_selector=f"status.podIP={address}")
            self._pods_at[address] = _pod_addresses(list(pods)).get(address, (None, None))
        return self._pods_at[address]

    def _node_pod_cidrs(self, node: str) -> list[str] | None:
        from tshoot.cluster import kube

        def get(resource) -> list[dict]:
            try:
                return [kube.get_object(self.api, resource, node)]
            except kube.NotFound:
                return []

        return _pod_cidrs(get(kube.NODES), get(kube.CILIUM_NODES)).get(node)

    @property
    def config(self) -> dict[str, str]:
        """The cilium-config ConfigMap's data (asked once, when first read)."""
        if self._config is None:
            with self._lock:
                if self._config is None:
                    self._config = cilium_config(self.api)
        return self._config

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
