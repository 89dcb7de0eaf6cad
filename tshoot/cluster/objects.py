"""Cilium's objects as a troubleshooter reads them: endpoints, identities, nodes, and who is behind an address.

Functions here fetch and join API objects and return plain rows (dicts); tshoot.cli.objects prints
them. Both CiliumEndpoint shapes are read: Cilium 1.9's (the guide's) and current releases' differ in
extra fields only (cni-attachment-id, named-ports, ownerReferences, IPv6 in addressing pairs), so
one reader covers both. `status.networking.node` is the node's IP in every release
(EndpointNetworking.NodeIP); a name there is accepted too.
"""

from __future__ import annotations

from typing import Callable, Iterable

from tshoot.core import addr
from tshoot.cluster import kube
from tshoot.cluster.model import canonical_ip, node_address_index
from tshoot.core.errors import TshootError
from tshoot.core.identity import CLUSTER_ID_SHIFT, LOCAL_IDENTITY_FLAG, RESERVED, reserved_labels


def reserved_identity(number: int) -> dict | None:
    if number not in RESERVED:
        return None
    name, meaning = RESERVED[number]
    return {"id": number, "reserved": name, "labels": reserved_labels(number), "namespace": "", "meaning": meaning}


def identity_view(obj: dict) -> dict:
    """A CiliumIdentity as a row: its number, its security labels ("k8s:key=value"), its namespace."""
    security = obj.get("security-labels") or {}
    labels = sorted(f"{k}={v}" if v else k for k, v in security.items())
    namespace = (obj.get("metadata", {}).get("labels") or {}).get("io.kubernetes.pod.namespace", "")
    return {"id": int(obj["metadata"]["name"]), "reserved": None, "labels": labels, "namespace": namespace,
            "meaning": ""}


def get_identity(api, number: int, timeout: float = kube.REQUEST_TIMEOUT) -> tuple[dict, dict | None]:
    """(row, the CiliumIdentity object or None for reserved identities)."""
    reserved = reserved_identity(number)
    if reserved:
        return reserved, None
    if number & LOCAL_IDENTITY_FLAG:
        raise TshootError(f"identity {number} is node-local (bit 24 set: a CIDR or FQDN identity); agents allocate "
                          f"those themselves and never store them as CiliumIdentity objects: ask the agent "
                          f"('cilium-dbg identity get {number}' in the agent pod)")
    try:
        obj = kube.get_object(api, kube.CILIUM_IDENTITIES, str(number), timeout=timeout)
    except kube.NotFound:
        cluster = number >> CLUSTER_ID_SHIFT
        where = (f" it belongs to ClusterMesh cluster id {cluster}, whose identities live in that cluster;"
                 if cluster else "")
        raise TshootError(f"identity {number} is not allocated in this cluster (no CiliumIdentity {number});{where} "
                          f"with identity-allocation-mode=kvstore identities live in etcd, not in the API") from None
    return identity_view(obj), obj


def reserved_identities() -> list[dict]:
    """The reserved identities' rows, known without a cluster."""
    return [reserved_identity(n) for n in RESERVED if n]


def list_identities(api, label_selector: str | None = None, reserved: bool = True,
                    timeout: float = kube.REQUEST_TIMEOUT) -> list[dict]:
    rows = reserved_identities() if reserved and not label_selector else []
    rows += sorted((identity_view(obj) for obj in kube.list_objects(api, kube.CILIUM_IDENTITIES,
                                                                    label_selector=label_selector, timeout=timeout)),
                   key=lambda row: row["id"])
    return rows


# --- endpoints -------------------------------------------------------------------------------------

def node_addresses(api, timeout: float = kube.REQUEST_TIMEOUT) -> dict[str, str]:
    """Node InternalIP/ExternalIP -> node name (tshoot.cluster.model's one index)."""
    return node_address_index(list(kube.list_objects(api, kube.NODES, timeout=timeout)))


def endpoint_view(cep: dict, nodes: dict[str, str]) -> dict:
    """A CiliumEndpoint as a row, from either shape."""
    status = cep.get("status") or {}
    networking = status.get("networking") or {}
    ipv4 = [pair["ipv4"] for pair in networking.get("addressing") or [] if pair.get("ipv4")]
    ipv6 = [pair["ipv6"] for pair in networking.get("addressing") or [] if pair.get("ipv6")]
    node = networking.get("node") or ""
    canonical = canonical_ip(node)
    identity = status.get("identity") or {}
    identifiers = status.get("external-identifiers") or {}
    meta = cep["metadata"]
    return {"namespace": meta.get("namespace", ""), "name": meta["name"], "endpoint_id": status.get("id"),
            "identity": identity.get("id"), "identity_labels": list(identity.get("labels") or []),
            "ipv4": ipv4, "ipv6": ipv6, "node": nodes.get(canonical, node) if canonical else node,
            "node_ip": node if canonical else "", "state": status.get("state", ""),
            "pod": identifiers.get("pod-name") or f"{meta.get('namespace')}/{identifiers.get('k8s-pod-name', '')}",
            "container_id": identifiers.get("container-id", "")}


def list_endpoints(api, namespace: str | None, node: str | None = None,
                   timeout: float = kube.REQUEST_TIMEOUT) -> tuple[list[dict], list[dict]]:
    """(CiliumEndpoint objects, their rows), on one node (name or IP) when `node` is given."""
    nodes = node_addresses(api, timeout)
    if node and node not in nodes.values() and canonical_ip(node) not in nodes:
        raise kube.no_such_node(node, nodes.values())
    objs, rows = [], []
    for cep in kube.list_objects(api, kube.CILIUM_ENDPOINTS, namespace, timeout=timeout):
        row = endpoint_view(cep, nodes)
        if node and node not in (row["node"], row["node_ip"]) and canonical_ip(node) != canonical_ip(row["node_ip"]):
            continue
        objs.append(cep)
        rows.append(row)
    return objs, rows


def get_endpoint(api, name: str, namespace: str, timeout: float = kube.REQUEST_TIMEOUT) -> tuple[dict, dict]:
    obj = kube.get_object(api, kube.CILIUM_ENDPOINTS, name, namespace, timeout)
    return obj, endpoint_view(obj, node_addresses(api, timeout))


# --- nodes -----------------------------------------------------------------------------------------

def nodes_view(api, timeout: float = kube.REQUEST_TIMEOUT) -> list[dict]:
    """Nodes joined with their CiliumNodes: addresses, pod CIDRs, cilium_host, health and ingress addresses."""
    cilium_nodes = {cn["metadata"]["name"]: cn for cn in kube.list_objects(api, kube.CILIUM_NODES, timeout=timeout)}
    rows = []
    for node in kube.list_objects(api, kube.NODES, timeout=timeout):
        name = node["metadata"]["name"]
        rows.append(_node_row(name, node, cilium_nodes.pop(name, None)))
    rows += [_node_row(name, None, cn) for name, cn in cilium_nodes.items()]  # left behind by deleted nodes
    return sorted(rows, key=lambda row: row["name"])


def _node_row(name: str, node: dict | None, cilium_node: dict | None) -> dict:
    status = (node or {}).get("status", {})
    addresses = {a["type"]: a["address"] for a in status.get("addresses", [])}
    ready = next((c["status"] for c in status.get("conditions", []) if c.get("type") == "Ready"), None)
    labels = (node or {}).get("metadata", {}).get("labels", {})
    spec = (cilium_node or {}).get("spec", {})
    pairs = [(a.get("type"), a.get("ip")) for a in spec.get("addresses", [])]
    health, ingress = spec.get("health") or {}, spec.get("ingress") or {}
    problems = []
    if node is None:
        problems.append("no Node: a stale CiliumNode")
    elif cilium_node is None:
        problems.append("no CiliumNode: the agent has not registered this node")
    return {"name": name,
            "roles": sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")),
            "ready": {"True": "Ready", "False": "NotReady"}.get(ready, "Unknown") if node else "-",
            "internal_ip": addresses.get("InternalIP", "") or next((ip for t, ip in pairs if t == "InternalIP"), ""),
            "external_ip": addresses.get("ExternalIP", ""),
            "pod_cidrs": list(((spec.get("ipam") or {}).get("podCIDRs")) or (node or {}).get("spec", {}).get("podCIDRs", [])),
            "k8s_pod_cidrs": list((node or {}).get("spec", {}).get("podCIDRs", [])),
            "cilium_internal_ips": [ip for t, ip in pairs if t == "CiliumInternalIP"],
            "health_ips": [ip for ip in (health.get("ipv4"), health.get("ipv6")) if ip],
            "ingress_ips": [ip for ip in (ingress.get("ipv4"), ingress.get("ipv6")) if ip],
            "kubelet": status.get("nodeInfo", {}).get("kubeletVersion", ""),
            "problems": problems}


# --- whois -----------------------------------------------------------------------------------------

IpcacheLookup = Callable[[str], Iterable[dict]]
"""The ipcache side of whois, supplied by the map readers (tshoot.mapio.read.ipcache_entries), so that
whois needs no map code: called with the address, it returns
the matching ipcache entry of each node it could read: {"node": NAME, "prefix": "10.0.1.110/32",
"identity": 53731, "tunnel_endpoint": "172.18.0.5" or None}. whois names the identities and adds the rows."""


def whois(api, address: str, ipcache: IpcacheLookup | None = None, timeout: float = kube.REQUEST_TIMEOUT) -> dict:
    """Everything the API knows behind an address: endpoint and pod, node addresses, Services; else the pod
    CIDR it falls in, else the world. Rows: {"kind", "name", "node", "identity", "identity_labels", "detail"}."""
    family, raw = addr.parse_ip(address)
    wanted = addr.show_ip(raw)
    matches: list[dict] = []
    nodes = nodes_view(api, timeout)
    node_names = {canonical_ip(n["internal_ip"]): n["name"] for n in nodes if n["internal_ip"]}
    matches += _endpoint_matches(api, wanted, node_names, timeout)
    matches += _node_matches(api, wanted, nodes, timeout)
    matches += _service_matches(api, wanted, timeout)
    if not matches:
        matches += _cidr_matches(family, raw, nodes)
    if not matches:
        dual = 9 if family == addr.IPV4 else 10
        matches.append({"kind": "world", "name": wanted, "node": "", "identity": 2, "identity_labels": reserved_labels(2),
                        "detail": f"not an address of this cluster: identity world (2), or {RESERVED[dual][0]} "
                                  f"({dual}) in dual-stack clusters (Cilium 1.14+)"})
    result = {"address": wanted, "family": family, "matches": matches}
    if ipcache is not None:
        entries = list(ipcache(wanted))
        # One request per identity, not per node: on 500 nodes the answers are mostly one identity.
        labels = {number: _identity_labels(api, number, timeout) for number in {e.get("identity") for e in entries}}
        result["ipcache"] = [{**entry, "identity_labels": labels[entry.get("identity")]} for entry in entries]
    return result


def _endpoint_matches(api, wanted: str, node_names: dict[str, str], timeout: float) -> list[dict]:
    """Pods by the status.podIP field selector (one request), then their CiliumEndpoints; addresses that no pod
    reports as primary (IPv6 of dual-stack pods, stale endpoints) are searched in the CiliumEndpoints."""
    pods = [p for p in kube.list_objects(api, kube.PODS, None, field_selector=f"status.podIP={wanted}",
                                         timeout=timeout) if not p.get("spec", {}).get("hostNetwork")]
    rows, found = [], []  # found: (CiliumEndpoint, its pod or None)
    for pod in pods:
        meta = pod["metadata"]
        cep = _get_or_none(api, kube.CILIUM_ENDPOINTS, meta["name"], meta["namespace"], timeout)
        if cep is None:
            rows.append({"kind": "pod", "name": f"{meta['namespace']}/{meta['name']}",
                         "node": pod.get("spec", {}).get("nodeName", ""), "identity": None, "identity_labels": [],
                         "detail": "no CiliumEndpoint: not managed by Cilium (identity unmanaged 3 or init 5?)"})
        else:
            found.append((cep, pod))
    if not pods:
        for cep in kube.list_objects(api, kube.CILIUM_ENDPOINTS, None, timeout=timeout):
            pairs = (cep.get("status") or {}).get("networking", {}).get("addressing") or []
            if wanted in {canonical_ip(ip) for pair in pairs for ip in pair.values() if isinstance(ip, str)}:
                meta = cep["metadata"]
                found.append((cep, _get_or_none(api, kube.PODS, meta["name"], meta["namespace"], timeout)))
    for cep, pod in found:
        view = endpoint_view(cep, node_names)
        pod_ips = {canonical_ip(entry.get("ip", "")) for entry in (pod or {}).get("status", {}).get("podIPs") or []}
        stale = "" if wanted in pod_ips else (": its pod no longer has this address (a stale endpoint?)" if pod
                                              else ": its pod is gone (a stale endpoint?)")
        rows.append({"kind": "endpoint", "name": f"{view['namespace']}/{view['name']}", "node": view["node"],
                     "identity": view["identity"], "identity_labels": view["identity_labels"],
                     "detail": f"endpoint {view['endpoint_id']} ({view['state']}) of pod {view['pod']}{stale}"})
    return rows


def _get_or_none(api, resource: kube.Resource, name: str, namespace: str, timeout: float) -> dict | None:
    try:
        return kube.get_object(api, resource, name, namespace, timeout)
    except kube.NotFound:
        return None


def _node_matches(api, wanted: str, nodes: list[dict], timeout: float) -> list[dict]:
    rows = []
    apiserver = _kubernetes_endpoint_ips(api, timeout)
    for node in nodes:
        roles = {"internal_ip": "InternalIP", "external_ip": "ExternalIP"}
        for field, label in roles.items():
            if canonical_ip(node[field] or "") == wanted:
                extra = ", kube-apiserver (7) where agents know it serves the API" if wanted in apiserver else ""
                rows.append({"kind": "node", "name": node["name"], "node": node["name"], "identity": 1,
                             "identity_labels": reserved_labels(1),
                             "detail": f"{label} of node {node['name']}: identity host (1) on the node itself, "
                                       f"remote-node (6) elsewhere{extra}; host-network pods share it"})
        for field, kind, identity, what in (
                ("cilium_internal_ips", "cilium-host", 1, "cilium_host address (CiliumInternalIP), the pods' gateway"),
                ("health_ips", "health", 4, "cilium-health endpoint"),
                ("ingress_ips", "ingress", 8, "Ingress/Gateway proxy source address")):
            if wanted in {canonical_ip(ip) for ip in node[field]}:
                rows.append({"kind": kind, "name": node["name"], "node": node["name"], "identity": identity,
                             "identity_labels": reserved_labels(identity), "detail": f"{what} of node {node['name']}"})
    return rows


def _kubernetes_endpoint_ips(api, timeout: float) -> set[str]:
    try:
        endpoints = kube.get_object(api, kube.ENDPOINTS, "kubernetes", "default", timeout)
    except TshootError:
        return set()  # not readable or absent: only a hint is lost
    return {canonical_ip(a["ip"]) for subset in endpoints.get("subsets") or [] for a in subset.get("addresses") or []}


def _service_matches(api, wanted: str, timeout: float) -> list[dict]:
    rows = []
    for svc in kube.list_objects(api, kube.SERVICES, None, timeout=timeout):
        spec = svc.get("spec", {})
        ips = set(spec.get("clusterIPs") or [spec.get("clusterIP")]) | set(spec.get("externalIPs") or [])
        ips |= {i.get("ip") for i in (svc.get("status", {}).get("loadBalancer", {}).get("ingress") or [])}
        if wanted not in {canonical_ip(ip) for ip in ips if ip and ip != "None"}:
            continue
        ports = ", ".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" + (f" ({p['name']})" if p.get("name") else "")
                          for p in spec.get("ports", []))
        meta = svc["metadata"]
        rows.append({"kind": "service", "name": f"{meta['namespace']}/{meta['name']}", "node": "", "identity": None,
                     "identity_labels": [],
                     "detail": f"{spec.get('type', 'ClusterIP')} {ports or 'no ports'}; backends: "
                               f"{_backends(api, meta['namespace'], meta['name'], timeout)} (a Service address has "
                               f"no identity: the datapath translates it to a backend first)"})
    return rows


def _backends(api, namespace: str, name: str, timeout: float) -> str:
    try:
        endpoints = kube.get_object(api, kube.ENDPOINTS, name, namespace, timeout)
    except TshootError:
        return "unknown (no Endpoints object readable)"
    addresses = []
    for subset in endpoints.get("subsets") or []:
        ports = sorted({str(p.get("port")) for p in subset.get("ports") or []})
        for address in subset.get("addresses") or []:
            target = (address.get("targetRef") or {}).get("name")
            addresses.append(f"{address['ip']}:{'/'.join(ports)}" + (f" ({target})" if target else ""))
    return ", ".join(addresses) or "none ready"


def _cidr_matches(family: str, raw: bytes, nodes: list[dict]) -> list[dict]:
    rows = []
    address = addr.show_ip(raw)
    for node in nodes:
        for cidr in node["pod_cidrs"]:
            if addr.in_prefix(address, cidr):
                rows.append({"kind": "pod-cidr", "name": cidr, "node": node["name"], "identity": None,
                             "identity_labels": [],
                             "detail": f"inside the pod CIDR of node {node['name']}, but no pod or endpoint has it "
                                       f"(unallocated, or its pod is gone)"})
    return rows


def _identity_labels(api, number: int | None, timeout: float) -> list[str]:
    if number is None:
        return []
    try:
        row, _ = get_identity(api, number, timeout)
    except TshootError:
        return []  # unknown to the API (local or kvstore identity): the number alone is shown
    return row["labels"]
