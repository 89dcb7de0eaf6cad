"""cilium_tunnel_map (1.9-1.17): a remote node's pod CIDR -> that node's IP, the VXLAN/Geneve outer destination.

A hash map keyed by the CIDR's network address (no prefix length): the datapath masks the
destination with the cluster's pod-CIDR mask (`key.ip4 = daddr & IPV4_MASK`, IPv6: /96) and looks
that up. Until 1.11.13 / 1.12.7 key and value were both `struct endpoint_key` (the value's `key` byte
is the IPsec key); then `tunnel_key` got a clustermesh cluster id (u8 at 17, u16 at 18 from 1.15) and
`tunnel_value` a node_id, renamed pad in 1.11.20 / 1.12.13 / 1.13.6 / 1.14.1. Removed in 1.18.0: the
tunnel endpoint lives in the ipcache value since.
Layouts mirror Cilium's bpf/lib/common.h struct tunnel_key, tunnel_value.
"""

from __future__ import annotations

from tshoot.core.addr import IPV6, parse_prefix, show_ip
from tshoot.core.layout import PAD, Field, Layout
from tshoot.core.version import Range, Version
from tshoot.maps.base import CiliumMap, Pin
from tshoot.maps.common import FAMILY_CODE, FAMILY_NAME, add_cluster_id_argument, check_cluster_id, copy_optional, ip_union
from tshoot.maps.lxc import KEY_1_9 as ENDPOINT_KEY


def _tunnel(c_name: str, tail: list[Field]) -> Layout:
    return Layout(c_name, 20, [
        *ip_union(0),
        Field("family", 16, 1),
        *tail,
    ])


KEY_1_11_14 = _tunnel("tunnel_key", [Field("cluster_id", 17, 1), Field("pad", 18, 2, PAD)])
KEY_1_15 = _tunnel("tunnel_key", [Field("pad", 17, 1, PAD), Field("cluster_id", 18, 2)])
VALUE_NODE_ID = _tunnel("tunnel_value", [Field("key", 17, 1), Field("node_id", 18, 2)])
VALUE = _tunnel("tunnel_value", [Field("key", 17, 1), Field("pad", 18, 2, PAD)])

ENDPOINT_KEY_ERA = "1.9-1.11.14 1.12-1.12.8"


class Tunnel(CiliumMap):
    field_kinds = {"endpoint": "node_address"}
    short = "tunnel"
    summary = "remote node's pod CIDR -> node IP, the overlay's outer destination (hash; 1.9-1.17)"
    pins = [Pin("1.9-1.18", "cilium_tunnel_map", "hash", 65536)]
    absent_hint = ("it was removed in 1.18.0, the tunnel endpoint is in the ipcache value "
                   "(tshoot key ipcache POD-IP); for an older cluster pass --cilium-version 1.17 or lower")
    keys = [(Range(ENDPOINT_KEY_ERA), ENDPOINT_KEY), (Range("1.11.14-1.12 1.12.8-1.15"), KEY_1_11_14),
            (Range("1.15-1.18"), KEY_1_15)]
    values = [(Range(ENDPOINT_KEY_ERA), ENDPOINT_KEY),
              (Range("1.11.14-1.11.20 1.12.8-1.12.13 1.13-1.13.6 1.14-1.14.1"), VALUE_NODE_ID),
              (Range("1.11.20-1.12 1.12.13-1.13 1.13.6-1.14 1.14.1-1.18"), VALUE)]

    def add_key_arguments(self, parser):
        parser.add_argument("cidr", metavar="CIDR",
                            help="the remote node's pod CIDR (10.0.1.0/24), or a pod IP with that length "
                                 "(10.0.1.110/24); the key holds the masked address")
        add_cluster_id_argument(parser)

    def key(self, version: Version, *, cidr: str, cluster_id: int = 0) -> dict:
        family, address, _ = parse_prefix(cidr)
        check_cluster_id(self.layout_for("key", version), cluster_id, version, since="1.12.8")
        return {"ip": show_ip(address), "family": family, "cluster_id": cluster_id}

    def key_fields(self, raw, layout) -> dict:
        family = FAMILY_NAME.get(raw["family"], raw["family"])
        return {"ip": show_ip(raw["ip6"] if family == IPV6 else raw["ip4"]), "family": family,
                "cluster_id": raw.get("cluster_id", 0)}

    def key_raw(self, fields, layout) -> dict:
        raw = _address(fields["ip"])
        if fields.get("cluster_id"):
            raw["cluster_id"] = fields["cluster_id"]
        return raw

    def value_fields(self, raw, layout) -> dict:
        family = FAMILY_NAME.get(raw["family"], raw["family"])
        fields = {"endpoint": show_ip(raw["ip6"] if family == IPV6 else raw["ip4"]), "encrypt_key": raw["key"]}
        if "node_id" in raw:
            fields["node_id"] = raw["node_id"]
        return fields

    def value_raw(self, fields, layout) -> dict:
        raw = {**_address(fields["endpoint"]), "key": fields.get("encrypt_key", 0)}
        copy_optional(fields, layout, ("node_id",), raw)
        return raw

    def unused_members(self, raw, layout) -> set[str]:
        return {"ip4", "pad1", "pad2", "pad3"} if raw["family"] == FAMILY_CODE[IPV6] else {"ip6"}


def _address(text: str) -> dict:
    family, address, _ = parse_prefix(text)
    return {"ip6" if family == IPV6 else "ip4": address, "family": FAMILY_CODE[family]}


MAP = Tunnel()
