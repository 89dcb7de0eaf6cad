"""cilium_ipcache / cilium_ipcache_v2: every IP and CIDR the node knows -> security identity and tunnel endpoint.

An LPM trie. The datapath looks an address up with the full length (prefixlen 64 for IPv4, 160 for
IPv6) and gets the most specific entry; the agent stores a CIDR with prefixlen = 32 + CIDR bits,
because prefixlen also counts the 32 static bits (pad, cluster_id, family) between it and the address.
Layouts mirror Cilium's bpf/lib/maps.h struct ipcache_key and bpf/lib/common.h struct remote_endpoint_info;
the lookup mirrors bpf/lib/eps.h ipcache_lookup4/6.
"""

from __future__ import annotations

import _socket
import struct

from tshoot.core.addr import IPV4, IPV6, parse_prefix, show_ip
from tshoot.core.errors import UsageError
from tshoot.core.layout import IP4, PAD, Field, Layout, flag_names, flag_value
from tshoot.core.version import Range, Version
from tshoot.maps.base import CiliumMap, Pin
from tshoot.maps.common import FAMILY_CODE, FAMILY_NAME, add_cluster_id_argument, check_cluster_id, ip_union

STATIC_PREFIX_BITS = 32  # IPCACHE_STATIC_PREFIX: pad + cluster_id + family, counted by prefixlen


def _key(cluster_id: list[Field]) -> Layout:
    return Layout("ipcache_key", 24, [
        Field("lpm_key.prefixlen", 0, 4),
        *cluster_id,
        Field("family", 7, 1),
        *ip_union(8, ("pad4", "pad5", "pad6")),
    ])


KEY_1_9 = _key([Field("pad1", 4, 2, PAD), Field("pad2", 6, 1, PAD)])
KEY_1_14 = _key([Field("pad1", 4, 2, PAD), Field("cluster_id", 6, 1)])
KEY_1_15 = _key([Field("cluster_id", 4, 2), Field("pad1", 6, 1, PAD)])

# Layout A: the IPsec key right after the tunnel endpoint.
VALUE_A = Layout("remote_endpoint_info", 12, [
    Field("sec_label", 0, 4),
    Field("tunnel_endpoint", 4, 4, IP4),
    Field("key", 8, 1),
])


def _value_b(identity: str, at8: str) -> Layout:
    """Layout B: a u16 node_id (renamed pad in 1.11.20/1.12.13/1.13.6/1.14.1) pushed the key to byte 10;
    sec_label became sec_identity in 1.14. Four spellings of the same bytes."""
    return Layout("remote_endpoint_info", 12, [
        Field(identity, 0, 4),
        Field("tunnel_endpoint", 4, 4, IP4),
        Field(at8, 8, 2),
        Field("key", 10, 1),
    ])


VALUE_B_NODE_ID = _value_b("sec_label", "node_id")
VALUE_B_PAD = _value_b("sec_label", "pad")
VALUE_B_1_14 = _value_b("sec_identity", "node_id")
VALUE_B = _value_b("sec_identity", "pad")

# Layout C: B plus a flags byte.
VALUE_C = Layout("remote_endpoint_info", 12, [
    Field("sec_identity", 0, 4),
    Field("tunnel_endpoint", 4, 4, IP4),
    Field("pad", 8, 2),
    Field("key", 10, 1),
    Field("flag_skip_tunnel", 11, 1, bits=(0, 1)),
    Field("pad2", 11, 1, bits=(1, 7)),
])
# Layout D (cilium_ipcache_v2): an IPv4-or-IPv6 tunnel endpoint, flags saying which.
VALUE_D = Layout("remote_endpoint_info", 24, [
    Field("sec_identity", 0, 4),
    *ip_union(4, prefix="tunnel_endpoint."),
    Field("pad", 20, 2),
    Field("key", 22, 1),
    Field("flag_skip_tunnel", 23, 1, bits=(0, 1)),
    Field("flag_has_tunnel_ep", 23, 1, bits=(1, 1)),
    Field("flag_ipv6_tunnel_ep", 23, 1, bits=(2, 1)),
    Field("flag_remote_cluster", 23, 1, bits=(3, 1)),
    Field("pad2", 23, 1, bits=(4, 4)),
])

# Go's RemoteEndpointInfoFlags names, as `cilium bpf ipcache list` prints them.
FLAGS = {1: "skiptunnel", 2: "hastunnel", 4: "ipv6tunnel", 8: "remotecluster"}
_FLAG_MEMBERS = {1: "flag_skip_tunnel", 2: "flag_has_tunnel_ep", 4: "flag_ipv6_tunnel_ep", 8: "flag_remote_cluster"}


class IPCache(CiliumMap):
    short = "ipcache"
    summary = "IP/CIDR -> security identity, tunnel endpoint (LPM trie)"
    field_kinds = {"prefix": "address", "identity": "identity", "tunnel_endpoint": "node_address"}
    columns = ("key", "value")
    pins = [
        Pin("1.9-1.18", "cilium_ipcache", "lpm_trie", 512000),
        Pin("1.18", "cilium_ipcache_v2", "lpm_trie", 512000),
    ]
    keys = [(Range("1.9-1.14"), KEY_1_9), (Range("1.14-1.15"), KEY_1_14), (Range("1.15"), KEY_1_15)]
    values = [
        (Range("1.9-1.11.14 1.12-1.12.8"), VALUE_A),
        (Range("1.11.14-1.11.20 1.12.8-1.12.13 1.13-1.13.6"), VALUE_B_NODE_ID),
        (Range("1.11.20-1.12 1.12.13-1.13 1.13.6-1.14"), VALUE_B_PAD),
        (Range("1.14-1.14.1"), VALUE_B_1_14),
        (Range("1.14.1-1.16"), VALUE_B),
        (Range("1.16-1.18"), VALUE_C),
        (Range("1.18"), VALUE_D),
    ]

    def add_key_arguments(self, parser):
        parser.add_argument("address", metavar="ADDRESS[/LEN]",
                            help="an IP (looked up as the datapath does, /32 or /128) or a CIDR as the agent stores it")
        add_cluster_id_argument(parser)

    def key(self, version: Version, *, address: str, cluster_id: int = 0) -> dict:
        family, network, plen = parse_prefix(address)
        check_cluster_id(self.layout_for("key", version), cluster_id, version)
        return {"prefix": f"{show_ip(network)}/{plen}", "family": family, "cluster_id": cluster_id}

    def key_fields(self, raw, layout) -> dict:
        address = raw["ip6"]
        return _keys([(raw["lpm_key.prefixlen"], raw.get("cluster_id", 0), raw["family"], address[:4], address[4:])])[0]

    def key_raw(self, fields, layout) -> dict:
        family, address, plen = parse_prefix(fields["prefix"])
        raw = {"lpm_key.prefixlen": STATIC_PREFIX_BITS + plen, "family": FAMILY_CODE[family],
               "ip4" if family == IPV4 else "ip6": address}
        if fields.get("cluster_id"):
            raw["cluster_id"] = fields["cluster_id"]
        return raw

    def value_fields(self, raw, layout) -> dict:
        flags = 0
        for bit, member in _FLAG_MEMBERS.items():
            flags |= bit if raw.get(member) else 0
        if layout is VALUE_D:
            return _values_v2([(raw["sec_identity"], raw["tunnel_endpoint.ip6"], raw["key"], flags)])[0]
        return _values([(raw.get("sec_label", raw.get("sec_identity")), raw["tunnel_endpoint"], raw["key"], flags)],
                       0b1111)[0]

    def value_raw(self, fields, layout) -> dict:
        raw = {layout.fields[0].name: fields["identity"], "key": fields.get("encrypt_key", 0)}
        flags = flag_value(fields.get("flags", []), FLAGS)
        endpoint = fields.get("tunnel_endpoint")
        if layout is VALUE_D:
            if endpoint:
                family, address, _ = parse_prefix(endpoint)
                raw["tunnel_endpoint.ip6" if family == IPV6 else "tunnel_endpoint.ip4"] = address
                flags |= 2 | (4 if family == IPV6 else 0)
        elif endpoint:
            family, address, _ = parse_prefix(endpoint)
            if family != IPV4:
                raise UsageError(f"this ipcache layout holds only IPv4 tunnel endpoints, not {endpoint}")
            raw["tunnel_endpoint"] = address
        for bit, member in _FLAG_MEMBERS.items():
            if flags & bit:
                if member not in layout.by_name:
                    raise UsageError(f"flag {FLAGS[bit]} does not exist in this ipcache layout")
                raw[member] = 1
        return raw

    def fields_many(self, which, layout, data) -> list[dict]:
        rows = _COLUMNS[id(layout)].iter_unpack(data)
        if which == "key":
            if layout is KEY_1_9:  # no cluster_id member: cluster 0
                rows = ((plen, 0, family, ip4, rest) for plen, family, ip4, rest in rows)
            return _keys(rows)
        if layout is VALUE_D:
            return _values_v2(rows)
        return _values(rows, 0b1 if layout is VALUE_C else 0)  # C's flags byte: only its lowest bit is a flag

    def unused_members(self, raw, layout) -> set[str]:
        if layout in (KEY_1_9, KEY_1_14, KEY_1_15):
            return {"ip4", "pad4", "pad5", "pad6"} if raw["family"] == 2 else {"ip6"}
        if layout is VALUE_D:
            if raw["flag_ipv6_tunnel_ep"]:
                return {"tunnel_endpoint.ip4", "tunnel_endpoint.pad1", "tunnel_endpoint.pad2", "tunnel_endpoint.pad3"}
            return {"tunnel_endpoint.ip6"}
        return set()


# The conversions, by columns: a dump has 100k entries and a Python call per entry would be a third of its
# time, so each is one comprehension over the unpacked rows; one entry is a dump of one.
def _keys(rows) -> list[dict]:
    """rows: (prefixlen, cluster_id, family code, the address's first 4 bytes (ip4), its other 12)."""
    ntop, af_inet, static = _ntop, _AF_INET, STATIC_PREFIX_BITS
    return [{"prefix": f"{ntop(af_inet, ip4)}/{plen - static}", "family": IPV4, "cluster_id": cluster_id}
            if family == _IPV4_CODE else _other_key(plen, cluster_id, family, ip4 + rest)
            for plen, cluster_id, family, ip4, rest in rows]


def _other_key(prefixlen: int, cluster_id: int, family_code: int, address: bytes) -> dict:
    family = FAMILY_NAME.get(family_code, family_code)
    prefix = f"{show_ip(address)}/{prefixlen - STATIC_PREFIX_BITS}" if family == IPV6 else None
    return {"prefix": prefix, "family": family, "cluster_id": cluster_id}


def _values(rows, flag_bits: int) -> list[dict]:
    """Layouts A-C, rows: (identity, IPv4 tunnel endpoint (all zero when there is none), key, the byte that
    holds flags where the layout has them: flag_bits says which of its bits are flags)."""
    names, known, no_ip = _FLAG_NAMES, _NODE_IPS.get, _NO_IP4
    return [{"identity": identity, "tunnel_endpoint": (known(tunnel) or _node_ip(tunnel)) if tunnel != no_ip else None,
             "encrypt_key": key, "flags": names[flags & flag_bits]} for identity, tunnel, key, flags in rows]


def _values_v2(rows) -> list[dict]:
    """Layout D, rows: (identity, 16 tunnel endpoint bytes, key, flags byte); flags say whether there is an
    endpoint (2) and whether it is IPv6 (4)."""
    names = _FLAG_NAMES
    return [{"identity": identity,
             "tunnel_endpoint": (show_ip(tunnel) if flags & 4 else _node_ip(tunnel[:4])) if flags & 2 else None,
             "encrypt_key": key, "flags": names[flags & 0b1111]} for identity, tunnel, key, flags in rows]


def _node_ip(raw: bytes) -> str:
    """A tunnel endpoint as text. There are as many as nodes, so a dump formats each once, not per entry."""
    text = _NODE_IPS.get(raw)
    if text is None:
        text = _ntop(_AF_INET, raw)
        if len(_NODE_IPS) < 65536:
            _NODE_IPS[raw] = text
    return text


_NODE_IPS: dict[bytes, str] = {}
# Every value of the four flag bits, named once: entries with the same flags share one (read-only) list, as
# entries with the same value bytes share one dict.
_FLAG_NAMES = {flags: flag_names(flags, FLAGS) for flags in range(16)}
_ntop, _AF_INET, _NO_IP4, _IPV4_CODE = _socket.inet_ntop, _socket.AF_INET, bytes(4), FAMILY_CODE[IPV4]
_COLUMNS = {
    id(KEY_1_9): struct.Struct("<I3xB4s12s"),  # prefixlen, family, address (ip4 and the rest)
    id(KEY_1_14): struct.Struct("<I2xBB4s12s"),  # prefixlen, cluster_id (u8 @6), family, address
    id(KEY_1_15): struct.Struct("<IHxB4s12s"),  # prefixlen, cluster_id (u16 @4), family, address
    # identity, tunnel endpoint, key, and the byte after it (flags in C, padding before: _values masks it off)
    id(VALUE_A): struct.Struct("<I4sBB2x"),  # key @8
    **{id(v): struct.Struct("<I4s2xBB") for v in (VALUE_B_NODE_ID, VALUE_B_PAD, VALUE_B_1_14, VALUE_B, VALUE_C)},  # key @10
    id(VALUE_D): struct.Struct("<I16s2xBB"),  # identity, 16-byte tunnel endpoint, key @22, flags byte @23
}

MAP = IPCache()
