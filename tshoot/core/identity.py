"""Security identities every agent knows without asking: the one table of reserved identities.

Numbers and names are Cilium's (pkg/identity/numericidentity.go, reservedIdentityNames): fixed, never
stored as CiliumIdentity objects. 0 is no identity (IdentityUnknown); in a policy key it is the wildcard
"any identity", which is why `any` parses as 0. world-ipv4/world-ipv6 exist since 1.14 and are used only
in dual-stack clusters (single-stack clusters use world for both).
"""

from __future__ import annotations

from tshoot.core.errors import FieldError

UNKNOWN, HOST, WORLD, UNMANAGED, HEALTH, INIT, REMOTE_NODE, KUBE_APISERVER, INGRESS = range(9)
WORLD_IPV4, WORLD_IPV6 = 9, 10

RESERVED = {
    UNKNOWN: ("unknown", "no identity (not resolved yet); in a policy key the wildcard: any identity"),
    HOST: ("host", "the local node: its own addresses, host-network pods"),
    WORLD: ("world", "anything outside the cluster"),
    UNMANAGED: ("unmanaged", "pods not managed by Cilium"),
    HEALTH: ("health", "the cilium-health endpoint of a node"),
    INIT: ("init", "endpoints whose labels are not resolved yet"),
    REMOTE_NODE: ("remote-node", "other nodes of the cluster (and their host-network pods)"),
    KUBE_APISERVER: ("kube-apiserver", "nodes running the kube-apiserver (Cilium 1.12+)"),
    INGRESS: ("ingress", "the source address of Cilium's Ingress/Gateway proxy (Cilium 1.12+)"),
    WORLD_IPV4: ("world-ipv4", "IPv4 outside the cluster, dual-stack clusters (Cilium 1.14+)"),
    WORLD_IPV6: ("world-ipv6", "IPv6 outside the cluster, dual-stack clusters (Cilium 1.14+)"),
}
ALIASES = {"any": UNKNOWN}  # what policy keys mean by 0
LOCAL_IDENTITY_FLAG = 1 << 24  # identities with this bit are node-local (CIDR, FQDN): never CiliumIdentity objects
CLUSTER_ID_SHIFT = 16  # identity >> 16 is the ClusterMesh cluster id


def reserved_name(number: int) -> str | None:
    """'host' for 1, … ; None for an identity that is not reserved."""
    entry = RESERVED.get(number)
    return entry[0] if entry else None


def reserved_labels(number: int) -> list[str] | None:
    """The label a reserved identity carries (['reserved:host']); None when it is not reserved."""
    name = reserved_name(number)
    return [f"reserved:{name}"] if name else None


def parse_identity(text: str, field: str = "identity") -> int:
    """A number (53731) or a reserved name (host, world, remote-node, any = 0). Errors name the field."""
    name = text.strip().lower()
    names = {entry[0]: number for number, entry in RESERVED.items()} | ALIASES
    if name in names:
        return names[name]
    if name.isdigit() and int(name) < 1 << 32:
        return int(name)
    raise FieldError(field, repr(text), f"expected a number (e.g. 53731) or a reserved identity ({', '.join(names)})")
