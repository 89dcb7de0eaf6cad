"""Pieces several Cilium maps share: address families, the clustermesh cluster id."""

from __future__ import annotations

from ..addr import IPV4, IPV6
from ..errors import UsageError
from ..layout import Layout
from ..version import Version, show

# ENDPOINT_KEY_IPV4 / ENDPOINT_KEY_IPV6 (bpf/lib/common.h, later eps.h)
FAMILY_CODE = {IPV4: 1, IPV6: 2}
FAMILY_NAME = {1: IPV4, 2: IPV6}


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
