"""cilium_lxc (alias endpoints): each local endpoint IP -> its veth ifindex, endpoint id (lxc_id) and MACs.

A hash map, one entry per local endpoint address (IPv4 and IPv6 separately), plus the node's own
addresses flagged `host`. The datapath builds the key as `{.ip4 = daddr, .family = ENDPOINT_KEY_IPV4}`
with everything else zero (bpf/lib/eps.h __lookup_ip4_endpoint). The name never changed from 1.9 to 1.19.
Layouts mirror Cilium's bpf/lib/common.h struct endpoint_key, endpoint_info.
"""

from __future__ import annotations

from tshoot.core.addr import IPV4, IPV6, parse_ip, show_ip
from tshoot.core.errors import FieldError
from tshoot.core.layout import MAC, PAD, Field, Layout, flag_names, flag_value, format_mac, parse_mac
from tshoot.core.version import Range, Version
from tshoot.maps.base import CiliumMap, Pin
from tshoot.maps.common import FAMILY_CODE, FAMILY_NAME, add_cluster_id_argument, check_cluster_id, copy_optional, ip_union


def _key(tail: list[Field]) -> Layout:
    return Layout("endpoint_key", 20, [
        *ip_union(0),
        Field("family", 16, 1),
        Field("key", 17, 1),
        *tail,
    ])


KEY_1_9 = _key([Field("pad5", 18, 2, PAD)])
KEY_1_14 = _key([Field("cluster_id", 18, 1), Field("pad", 19, 1, PAD)])
KEY_1_15 = _key([Field("cluster_id", 18, 2)])

_HEAD = [
    Field("ifindex", 0, 4),
    Field("unused", 4, 2, PAD),  # used to be sec_label
    Field("lxc_id", 6, 2),
    Field("flags", 8, 4),
    # bytes 12-15: implicit padding, mac_t is 8-aligned
    Field("mac", 16, 8, MAC),
    Field("node_mac", 24, 8, MAC),
]
VALUE_1_9 = Layout("endpoint_info", 48, [*_HEAD, Field("pad", 32, 16, PAD)])
VALUE_1_14 = Layout("endpoint_info", 48, [*_HEAD, Field("sec_id", 32, 4), Field("pad", 36, 12, PAD)])
VALUE_1_17 = Layout("endpoint_info", 48, [
    *_HEAD, Field("sec_id", 32, 4), Field("parent_ifindex", 36, 4), Field("pad", 40, 8, PAD)])

# ENDPOINT_F_* (bpf/lib/common.h, later eps.h)
FLAGS = {1: "host", 2: "athostns", 4: "no_snat_v4", 8: "no_snat_v6"}


class Endpoints(CiliumMap):
    short = "lxc"
    aliases = ("endpoints",)
    summary = "local endpoint IP -> veth ifindex, lxc_id, MACs (hash)"
    field_kinds = {"ip": "address", "ifindex": "interface", "parent_ifindex": "interface", "lxc_id": "endpoint",
                   "sec_id": "identity"}
    pins = [Pin("1.9", "cilium_lxc", "hash", 65535)]
    keys = [(Range("1.9-1.14"), KEY_1_9), (Range("1.14-1.15"), KEY_1_14), (Range("1.15"), KEY_1_15)]
    values = [(Range("1.9-1.14"), VALUE_1_9), (Range("1.14-1.17"), VALUE_1_14), (Range("1.17"), VALUE_1_17)]

    def add_key_arguments(self, parser):
        parser.add_argument("address", metavar="ADDRESS", help="a local endpoint's IPv4 or IPv6 address")
        add_cluster_id_argument(parser)

    def key(self, version: Version, *, address: str, cluster_id: int = 0) -> dict:
        ip, slash, plen = address.partition("/")
        family, raw = parse_ip(ip)
        if slash and plen != ("32" if family == IPV4 else "128"):
            raise FieldError("address", repr(address), "the lxc map is keyed by single addresses, not prefixes "
                             "(expected e.g. 10.0.1.110)")
        check_cluster_id(self.layout_for("key", version), cluster_id, version)
        return {"ip": show_ip(raw), "family": family, "cluster_id": cluster_id}

    def key_fields(self, raw, layout) -> dict:
        family = FAMILY_NAME.get(raw["family"], raw["family"])
        return {
            "ip": show_ip(raw["ip6"] if family == IPV6 else raw["ip4"]),
            "family": family,
            "cluster_id": raw.get("cluster_id", 0),
        }

    def key_raw(self, fields, layout) -> dict:
        family, address = parse_ip(fields["ip"])
        raw = {"ip4" if family == IPV4 else "ip6": address, "family": FAMILY_CODE[family]}
        if fields.get("cluster_id"):
            raw["cluster_id"] = fields["cluster_id"]
        return raw

    def value_fields(self, raw, layout) -> dict:
        fields = {
            "ifindex": raw["ifindex"],
            "lxc_id": raw["lxc_id"],
            "flags": flag_names(raw["flags"], FLAGS),
            "mac": format_mac(raw["mac"]),
            "node_mac": format_mac(raw["node_mac"]),
        }
        for optional in ("sec_id", "parent_ifindex"):
            if optional in raw:
                fields[optional] = raw[optional]
        return fields

    def value_raw(self, fields, layout) -> dict:
        raw = {
            "ifindex": fields["ifindex"],
            "lxc_id": fields["lxc_id"],
            "flags": flag_value(fields.get("flags", []), FLAGS),
            "mac": parse_mac(fields["mac"]),
            "node_mac": parse_mac(fields["node_mac"]),
        }
        copy_optional(fields, layout, ("sec_id", "parent_ifindex"), raw)
        return raw

    def unused_members(self, raw, layout) -> set[str]:
        if layout in (KEY_1_9, KEY_1_14, KEY_1_15):
            return {"ip4", "pad1", "pad2", "pad3"} if raw["family"] == 2 else {"ip6"}
        return set()


MAP = Endpoints()
