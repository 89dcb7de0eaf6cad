"""Pieces several Cilium maps share: address families, the clustermesh cluster id."""

from __future__ import annotations

from tshoot.core.addr import IPV4, IPV6, parse_ip
from tshoot.core.errors import FieldError, UsageError
from tshoot.core.layout import IP4, IP6, PAD, Field, Layout
from tshoot.core.version import Version, show

# ENDPOINT_KEY_IPV4 / ENDPOINT_KEY_IPV6 (bpf/lib/common.h, later eps.h)
FAMILY_CODE = {IPV4: 1, IPV6: 2}
FAMILY_NAME = {1: IPV4, 2: IPV6}
FAMILY_LABEL = {IPV4: "IPv4", IPV6: "IPv6"}
# Maps with an lb4/lb6 (ct4/ct6) pair differ only in the address: its size and how it is read.
ADDRESS_SIZE = {IPV4: 4, IPV6: 16}
ADDRESS_KIND = {IPV4: IP4, IPV6: IP6}


def ip_union(offset: int, pads: tuple[str, str, str] = ("pad1", "pad2", "pad3"), prefix: str = "") -> list[Field]:
    """Cilium's `union { struct { __u32 ip4, pad1, pad2, pad3; }; union v6addr ip6; }` at `offset`
    (endpoint_key, tunnel_key; ipcache_key calls the pads pad4-pad6)."""
    return [Field(f"{prefix}ip4", offset, 4, IP4),
            *(Field(f"{prefix}{pad}", offset + 4 * (i + 1), 4, PAD) for i, pad in enumerate(pads)),
            Field(f"{prefix}ip6", offset, 16, IP6)]


def copy_optional(fields: dict, layout: Layout, names: tuple[str, ...], raw: dict) -> None:
    """Copy the fields only some layouts have into `raw`; refuse a value the layout has no room for."""
    for name in names:
        if fields.get(name):
            if name not in layout.by_name:
                raise UsageError(f"{name} does not exist in {layout.c_type} of these Cilium versions")
            raw[name] = fields[name]


def family_address(family: str, text: str) -> bytes:
    """The bytes of an address of the map's family; UsageError when it is the other family's."""
    found, address = parse_ip(text)
    if found != family:
        raise UsageError(f"{text} is an {FAMILY_LABEL[found]} address; this map holds {FAMILY_LABEL[family]} ones")
    return address


# Cluster ids a clustermesh can use: 1-255, or 1-511 from 1.15 with --max-connected-clusters=511, the only two
# values the agent accepts (pkg/clustermesh/types ClusterIDMax, ClusterInfo.InitClusterIDMax; v1.15+).
CLUSTER_ID_MAX = 255
CLUSTER_ID_EXT511 = 511
EXT511_SINCE = (1, 15, 0)


def add_cluster_id_argument(parser) -> None:
    parser.add_argument("--cluster-id", type=int, default=0, metavar="N",
                        help="clustermesh cluster id: 0 = the local cluster; 1-255 (1.14+), up to 511 from 1.15 "
                             "with max-connected-clusters=511")


def check_cluster_id(layout: Layout, cluster_id: int, version: Version, since: str = "1.14") -> None:
    """Refuse a cluster id the version's key cannot hold, or no cluster of that version can have.

    From 1.15 the key fields are u16 and the agent writes the keys of clusters up to 511 when the mesh runs with
    max-connected-clusters=511 (1.15.7's datapath still refuses ids above 255 in its own cluster-aware lookups,
    bpf/lib/eps.h ipcache_lookup4(), but the entries exist: tshoot builds the keys that are in the map)."""
    if not cluster_id:
        return
    field = layout.by_name.get("cluster_id")
    if field is None:
        raise FieldError("cluster_id", cluster_id, f"Cilium {show(version)} keys have no cluster_id (clustermesh ids "
                         f"need {since}+): leave it 0, or say the node runs {since} or newer")
    if version >= EXT511_SINCE:
        if not 0 < cluster_id <= CLUSTER_ID_EXT511:
            raise FieldError("cluster_id", cluster_id, f"Cilium {show(version)} cluster ids are 1 to {CLUSTER_ID_MAX}, "
                             f"or up to {CLUSTER_ID_EXT511} with max-connected-clusters={CLUSTER_ID_EXT511}")
    elif not 0 < cluster_id <= min(CLUSTER_ID_MAX, (1 << (8 * field.size)) - 1):
        raise FieldError("cluster_id", cluster_id, f"Cilium {show(version)} cluster ids are 1 to {CLUSTER_ID_MAX} "
                         f"(max-connected-clusters={CLUSTER_ID_EXT511} arrived in 1.15)")
