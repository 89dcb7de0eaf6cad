"""cilium_ct{4,6}_global (TCP) and cilium_ct_any{4,6}_global (everything else): connection tracking.

An LRU hash keyed by a 5-tuple plus flags, in the datapath's own convention (bpf/lib/conntrack.h
ct_lookup4, lb.h lb4_extract_tuple). The datapath fills `daddr`/`saddr` from the packet and loads the
packet's [sport, dport] into [tuple.dport, tuple.sport], so the tuple's port names are swapped; for
CT_EGRESS/CT_INGRESS it then looks up the reverse tuple and stores the forward entry reversed again
(ipv4_ct_tuple_reverse). For a flow A:a -> B:b the stored key is therefore

    egress / ingress:  daddr=A  saddr=B  dport=b  sport=a  flags=TUPLE_F_OUT (0) / TUPLE_F_IN (1)
    service (lb4_local, CT_SERVICE, not reversed):
                       daddr=B  saddr=A  dport=a  sport=b  flags=TUPLE_F_SERVICE (4)

ICMP echo keeps the identifier as a port (give it as the source port, 0 as the destination port);
ICMP errors are looked up with TUPLE_F_RELATED (2). The value's layout changed often (counters renamed
in 1.16, flag bits added 1.12-1.14, the u16 at byte 40 became reserved in 1.18 and nat_port in 1.19).
Layouts mirror Cilium's bpf/lib/common.h struct ipv4_ct_tuple, ipv6_ct_tuple, ct_entry.
"""

from __future__ import annotations

import _socket
import struct

from tshoot.core.addr import IPV4, IPV6, parse_endpoint, parse_protocol, show_ip, show_protocol
from tshoot.core.errors import FieldError, UsageError
from tshoot.core.layout import BE, IP6, PAD, Field, Layout, flag_names, flag_value
from tshoot.core.version import Range, Version
from tshoot.maps.base import CiliumMap, Pin
from tshoot.maps.common import ADDRESS_KIND, ADDRESS_SIZE, FAMILY_LABEL, copy_optional, family_address

TCP = 6
TUPLE_F_OUT, TUPLE_F_IN, TUPLE_F_RELATED, TUPLE_F_SERVICE = 0, 1, 2, 4
SERVICE, CONNECTION = "service", "connection"  # an entry's role, from its key's TUPLE_F_SERVICE
DIRECTIONS = {"egress": TUPLE_F_OUT, "ingress": TUPLE_F_IN, "service": TUPLE_F_SERVICE}
# TCP header flags, for tx_flags_seen / rx_flags_seen (union tcp_flags)
TCP_FLAGS = {1: "fin", 2: "syn", 4: "rst", 8: "psh", 16: "ack", 32: "urg", 64: "ece", 128: "cwr"}


def _key(family: str) -> Layout:
    a = ADDRESS_SIZE[family]
    kind = ADDRESS_KIND[family]
    return Layout("ipv4_ct_tuple" if family == IPV4 else "ipv6_ct_tuple", 2 * a + 6, [
        Field("daddr", 0, a, kind),
        Field("saddr", a, a, kind),
        Field("dport", 2 * a, 2, BE),
        Field("sport", 2 * a + 2, 2, BE),
        Field("nexthdr", 2 * a + 4, 1),
        Field("flags", 2 * a + 5, 1),
    ])


# --- ct_entry ----------------------------------------------------------------------------------
# Bytes 0-31: the counters, renamed in 1.16; byte 8 doubles as the service entry's backend id.
_COUNTERS_1_9 = [Field("rx_packets", 0, 8), Field("rx_bytes", 8, 8), Field("tx_packets", 16, 8),
                 Field("tx_bytes", 24, 8)]
_COUNTERS_1_11 = [*_COUNTERS_1_9, Field("backend_id", 8, 8)]  # union { rx_bytes; backend_id; }
_COUNTERS_1_16 = [Field("reserved0", 0, 8, PAD), Field("backend_id", 8, 8), Field("packets", 16, 8),
                  Field("bytes", 24, 8)]
_COUNTERS_1_19 = [Field("nat_addr", 0, 16, IP6), *_COUNTERS_1_16]  # union { nat_addr; {reserved0, backend_id}; }


def _flag_bits(*names: str, rest: str) -> list[Field]:
    """The u16 of 1-bit flags at byte 36: `names` from bit 0 up, `rest` the remaining (reserved) bits."""
    bits = [Field(name, 36, 2, bits=(bit, 1)) for bit, name in enumerate(names)]
    return [*bits, Field(rest, 36, 2, bits=(len(names), 16 - len(names)))]


_BASE_BITS = ("rx_closing", "tx_closing", "nat46", "lb_loopback", "seen_non_syn", "node_port", "proxy_redirect", "dsr")
_BITS_1_9 = _flag_bits(*_BASE_BITS, rest="reserved")
_BITS_1_12 = _flag_bits(*_BASE_BITS, "from_l7lb", rest="reserved")
_BITS_1_13 = _flag_bits(*_BASE_BITS, "from_l7lb", "auth_required", rest="reserved")
_BITS_1_14 = _flag_bits(*_BASE_BITS, "from_l7lb", "reserved1", "from_tunnel", rest="reserved")
_BITS_1_15 = _flag_bits("rx_closing", "tx_closing", "unused_nat46", *_BASE_BITS[3:], "from_l7lb", "reserved1",
                        "from_tunnel", rest="reserved")
_BITS_1_16 = _flag_bits("rx_closing", "tx_closing", "reserved1", "lb_loopback", "seen_non_syn", "node_port",
                        "proxy_redirect", "dsr_internal", "from_l7lb", "reserved2", "from_tunnel", rest="reserved3")

_IFINDEX = Field("ifindex", 40, 2)
_RESERVED4 = Field("reserved4", 40, 2, PAD)
_NAT_PORT = Field("nat_port", 40, 2, BE)


def _entry(counters: list[Field], bits: list[Field], at40: Field) -> Layout:
    return Layout("ct_entry", 56, [
        *counters,
        Field("lifetime", 32, 4),
        *bits,
        Field("rev_nat_index", 38, 2, BE),
        at40,
        Field("tx_flags_seen", 42, 1),
        Field("rx_flags_seen", 43, 1),
        Field("src_sec_id", 44, 4),
        Field("last_tx_report", 48, 4),
        Field("last_rx_report", 52, 4),
    ])


VALUES = [
    (Range("1.9-1.11"), _entry(_COUNTERS_1_9, _BITS_1_9, _IFINDEX)),
    (Range("1.11-1.12"), _entry(_COUNTERS_1_11, _BITS_1_9, _IFINDEX)),
    (Range("1.12-1.13"), _entry(_COUNTERS_1_11, _BITS_1_12, _IFINDEX)),
    (Range("1.13-1.14"), _entry(_COUNTERS_1_11, _BITS_1_13, _IFINDEX)),
    (Range("1.14-1.15"), _entry(_COUNTERS_1_11, _BITS_1_14, _IFINDEX)),
    (Range("1.15-1.16"), _entry(_COUNTERS_1_11, _BITS_1_15, _IFINDEX)),
    (Range("1.16-1.18"), _entry(_COUNTERS_1_16, _BITS_1_16, _IFINDEX)),
    (Range("1.18-1.19"), _entry(_COUNTERS_1_16, _BITS_1_16, _RESERVED4)),
    (Range("1.19"), _entry(_COUNTERS_1_19, _BITS_1_16, _NAT_PORT)),
]

# What users read, in this order; each layout has some of them (the 1.19 nat_addr is not decoded). Up to
# 1.15 bytes 8-15 are a connection's rx_bytes but a service entry's (TUPLE_F_SERVICE) backend id: 1.9/1.10
# store it there without a member of its own (ct_create4(): `entry.rx_bytes = ct_state->backend_id`), 1.11
# names the union (bpf/lib/conntrack.h, struct ct_entry). Read by the key's role, not as Go's CtEntry
# prints it (rx_bytes for both).
_COUNTER_NAMES = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "backend_id", "packets", "bytes")
_PLAIN = ("lifetime", "rev_nat_index", "ifindex", "nat_port", "src_sec_id", "last_tx_report", "last_rx_report")


def flag_members(layout: Layout) -> list[Field]:
    """The named 1-bit flags of a ct_entry layout (reserved bits left out)."""
    return [f for f in layout.fields if f.bits and f.bits[1] == 1 and not f.name.startswith("reserved")]


# A dump's keys read by columns (Conntrack.fields_many): a 512k-entry map spends a Python call per key otherwise.
_KEY_ROWS = {IPV4: struct.Struct("!4s4sHHBB"), IPV6: struct.Struct("!16s16sHHBB")}  # daddr saddr dport sport nexthdr flags
_PROTOCOL_NAMES = [show_protocol(number) for number in range(256)]
_DIRECTIONS = ["service" if flags & TUPLE_F_SERVICE else "ingress" if flags & TUPLE_F_IN else "egress"
               for flags in range(256)]
_RELATED = [bool(flags & TUPLE_F_RELATED) for flags in range(256)]


def _show_ip4(raw: bytes) -> str:
    return _socket.inet_ntop(_socket.AF_INET, raw)


class Conntrack(CiliumMap):
    field_kinds = {"src_addr": "address", "dst_addr": "address", "ifindex": "interface", "src_sec_id": "identity",
                   "lifetime": "lifetime"}
    columns = ("key",)

    def __init__(self, family: str, tcp: bool):
        v = "4" if family == IPV4 else "6"
        self.family, self.tcp = family, tcp
        self.short = f"ct{v}" if tcp else f"ct-any{v}"
        what = "TCP" if tcp else "non-TCP (UDP, ICMP, SCTP, …)"
        self.summary = f"{FAMILY_LABEL[family]} {what} connections: 5-tuple + direction -> conntrack entry (LRU hash)"
        self.pins = [Pin("1.9", f"cilium_ct{v}_global" if tcp else f"cilium_ct_any{v}_global", "lru_hash",
                         524288 if tcp else 262144)]
        self.keys = [(Range("1.9"), _key(family))]
        self.values = VALUES
        self.example = "10.0.0.1:40000 10.0.0.2:80" if family == IPV4 else "[fd00::1]:40000 [fd00::2]:80"

    def add_key_arguments(self, parser):
        parser.add_argument("src", metavar="SRC:PORT", help=f"the flow's source as sent, e.g. {self.example.split()[0]}")
        parser.add_argument("dst", metavar="DST:PORT", help="the flow's destination as sent (for a service entry: "
                                                            "the frontend); ICMP echo: SRC:ID DST:0")
        parser.add_argument("--proto", default="tcp" if self.tcp else "udp",
                            help=f"L4 protocol (default {'tcp' if self.tcp else 'udp'}); "
                                 f"{self.short} holds {'TCP only' if self.tcp else 'everything but TCP'}")
        parser.add_argument("--direction", choices=list(DIRECTIONS), default="egress",
                            help="egress: opened by the local endpoint (TUPLE_F_OUT, default); ingress: accepted by "
                                 "it (TUPLE_F_IN); service: the service entry lb4_local creates (TUPLE_F_SERVICE)")
        parser.add_argument("--related", action="store_true",
                            help="the entry ICMP errors about the flow look up (TUPLE_F_RELATED)")

    def key(self, version: Version, *, src: str, dst: str, proto: str | int | None = None, direction: str = "egress",
            related: bool = False) -> dict:
        ends = []
        for name, text in (("src", src), ("dst", dst)):
            family, address, port, _ = parse_endpoint(text)
            if family != self.family:
                other = self.short.replace("4", "6") if self.family == IPV4 else self.short.replace("6", "4")
                raise FieldError(name, repr(text), f"an {FAMILY_LABEL[family]} address: {FAMILY_LABEL[family]} "
                                 f"connections are in {other}")
            ends.append((show_ip(address), port))
        protocol = parse_protocol(str(proto if proto is not None else ("tcp" if self.tcp else "udp")))
        if (protocol == TCP) != self.tcp:
            v = "4" if self.family == IPV4 else "6"
            right = f"ct{v}" if protocol == TCP else f"ct-any{v}"
            raise FieldError("proto", show_protocol(protocol), f"{show_protocol(protocol)} connections are in {right}, "
                             f"not {self.short} "
                             f"(ct{v} holds TCP, ct-any{v} everything else)")
        (src_addr, sport), (dst_addr, dport) = ends
        return {"src_addr": src_addr, "src_port": sport, "dst_addr": dst_addr, "dst_port": dport,
                "proto": show_protocol(protocol), "direction": direction, "related": related}

    def key_fields(self, raw, layout) -> dict:
        flags = raw["flags"]
        direction = "service" if flags & TUPLE_F_SERVICE else "ingress" if flags & TUPLE_F_IN else "egress"
        if direction == "service":  # not reversed: daddr is the frontend, dport the client's port
            src, sport, dst, dport = raw["saddr"], raw["dport"], raw["daddr"], raw["sport"]
        else:
            src, sport, dst, dport = raw["daddr"], raw["sport"], raw["saddr"], raw["dport"]
        return {"src_addr": show_ip(src), "src_port": sport, "dst_addr": show_ip(dst), "dst_port": dport,
                "proto": show_protocol(raw["nexthdr"]), "direction": direction,
                "related": bool(flags & TUPLE_F_RELATED)}

    def fields_many(self, which, layout, data) -> list[dict] | None:
        """Keys as key_fields reads them (a service entry is not reversed); values entry by entry."""
        if which != "key":
            return None
        show = _show_ip4 if self.family == IPV4 else show_ip
        names, directions, related = _PROTOCOL_NAMES, _DIRECTIONS, _RELATED
        return [{"src_addr": show(saddr), "src_port": dport, "dst_addr": show(daddr), "dst_port": sport,
                 "proto": names[nexthdr], "direction": "service", "related": related[flags]}
                if flags & TUPLE_F_SERVICE else
                {"src_addr": show(daddr), "src_port": sport, "dst_addr": show(saddr), "dst_port": dport,
                 "proto": names[nexthdr], "direction": directions[flags], "related": related[flags]}
                for daddr, saddr, dport, sport, nexthdr, flags in _KEY_ROWS[self.family].iter_unpack(data)]

    def key_raw(self, fields, layout) -> dict:
        src = family_address(self.family, fields["src_addr"])
        dst = family_address(self.family, fields["dst_addr"])
        flags = DIRECTIONS[fields["direction"]] | (TUPLE_F_RELATED if fields.get("related") else 0)
        raw = {"nexthdr": parse_protocol(fields["proto"]), "flags": flags}
        if fields["direction"] == "service":
            raw.update(daddr=dst, saddr=src, dport=fields["src_port"], sport=fields["dst_port"])
        else:
            raw.update(daddr=src, saddr=dst, dport=fields["dst_port"], sport=fields["src_port"])
        return raw

    def value_role(self, key_fields: dict) -> str:
        return SERVICE if key_fields["direction"] == "service" else CONNECTION

    def value_fields(self, raw, layout, role: str | None = None) -> dict:
        fields = {}
        service = role == SERVICE and "rx_bytes" in raw  # the backend id in rx_bytes' bytes (up to 1.15)
        for name in _COUNTER_NAMES:
            if name in raw and not (name == "backend_id" and "rx_bytes" in raw):
                fields["backend_id" if service and name == "rx_bytes" else name] = raw[name]
        fields["flags"] = [f.name for f in flag_members(layout) if raw[f.name]]
        for name in _PLAIN:
            if name in raw:
                fields[name] = raw[name]
        fields["tx_flags_seen"] = flag_names(raw["tx_flags_seen"], TCP_FLAGS)
        fields["rx_flags_seen"] = flag_names(raw["rx_flags_seen"], TCP_FLAGS)
        return fields

    def value_raw(self, fields, layout) -> dict:
        raw = {}
        if "rx_bytes" in layout.by_name and "backend_id" in fields:  # a service entry up to 1.15
            if "rx_bytes" in fields:
                raise UsageError("rx_bytes and backend_id share bytes 8-15 up to Cilium 1.15: give one of them")
            fields = {**{k: v for k, v in fields.items() if k != "backend_id"}, "rx_bytes": fields["backend_id"]}
        copy_optional(fields, layout, (*_COUNTER_NAMES, *_PLAIN), raw)
        known = {f.name for f in flag_members(layout)}
        for name in fields.get("flags", []):
            if name not in known:
                raise UsageError(f"unknown conntrack flag {name!r} for this layout (known: {', '.join(sorted(known))})")
            raw[name] = 1
        raw["tx_flags_seen"] = flag_value(fields.get("tx_flags_seen", []), TCP_FLAGS)
        raw["rx_flags_seen"] = flag_value(fields.get("rx_flags_seen", []), TCP_FLAGS)
        return raw

    def unused_members(self, raw, layout, role: str | None = None) -> set[str]:
        # 1.19 overlays a NAT address on bytes 0-15; shown when it holds one (bytes 0-7 are otherwise zero).
        if "nat_addr" in raw and not any(raw["nat_addr"][:8]):
            return {"nat_addr"}
        if "nat_addr" in raw:
            return {"reserved0", "backend_id"}
        if "rx_bytes" in raw and "backend_id" in raw:  # the 1.11-1.15 union: the member this entry's role uses
            return {"rx_bytes"} if role == SERVICE else {"backend_id"}
        return set()


CT4 = Conntrack(IPV4, tcp=True)
CT_ANY4 = Conntrack(IPV4, tcp=False)
CT6 = Conntrack(IPV6, tcp=True)
CT_ANY6 = Conntrack(IPV6, tcp=False)
