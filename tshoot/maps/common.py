"""Pieces several Cilium maps share: address families, the clustermesh cluster id."""

from __future__ import annotations

from ..addr import IPV4, IPV6, parse_ip
from ..errors import UsageError
from ..layout import IP4, IP6, Layout
from ..version import Version, show

# ENDPOINT_KEY_IPV4 / ENDPOINT_KEY_IPV6 (bpf/lib/common.h, later eps.h)
FAMILY_CODE = {IPV4: 1, IPV6: 2}
FAMILY_NAME = {1: IPV4, 2: IPV6}
FAMILY_LABEL = {IPV4: "IPv4", IPV6: "IPv6"}
# Maps with an lb4/lb6 (ct4/ct6) pair differ only in the address: its size and how it is read.
ADDRESS_SIZE = {IPV4: 4, IPV6: 16}
ADDRESS_KIND = {IPV4: IP4, IPV6: IP6}


def family_address(family: str, text: str) -> bytes:
    """The bytes of an address of the map's family; UsageError when it is the other family's."""
    found, address = parse_ip(text)
    if found != family:
        raise UsageError(f"{text} is an {FAMILY_LABEL[found]} address; this map holds {FAMILY_LABEL[family]} ones")
    return address


def add_cluster_id_argument(parser) -> None:
    parser.add_argument("--cluster-id", type=int, default=0, metavar="N",
                        help="clustermesh cluster id (0 = the local cluster; 1.14+)")


def check_cluster_id(layout: Layout, cluster_id: int, version: Version) -> None:
    """Refuse a cluster id the version's key cannot hold (or its datapath would reject)."""
    if not cluster_id:
        return
    field = layout.by_name.get("cluster_id")
    if field is None:
        raise UsageError(f"Cilium {show(version)} keys have no cluster_id (clustermesh ids need 1.14+): "
                         f"drop --cluster-id or pass --cilium-version 1.14 or newer")
    limit = (1 << (8 * field.size)) - 1
    if version[:2] == (1, 15):
        limit = 255  # the field is u16 but the 1.15 datapath rejects ids above UINT8_MAX
    if not 0 < cluster_id <= limit:
        raise UsageError(f"--cluster-id {cluster_id}: Cilium {show(version)} holds cluster ids 0 to {limit}")
