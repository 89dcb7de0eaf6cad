"""cilium_policy_<EP> / cilium_policy_v2_<EP>: one endpoint's policy, {identity, direction, proto, port} -> verdict.

One map per endpoint, named with the endpoint's lxc_id on five digits (bpf.LocalMapName):
cilium_policy_02006 up to 1.16, cilium_policy_v2_02006 from 1.17.

* 1.9-1.13: a hash map with exact 8-byte keys {sec_label, dport, protocol, egress}; the datapath tries
  {id, port, proto}, then {0, port, proto}, {id, 0, 0} and {0, 0, 0} (bpf/lib/policy.h).
* 1.14 on: an LPM trie with 12-byte keys {prefixlen, sec_label, egress, protocol, dport}. prefixlen
  counts the 40 static bits (identity and direction byte), then 8 for the protocol and 16 for the port
  when they are not wildcards: 1.14-1.15 add 8 if proto != 0 and 16 more if the port is also set
  (policymap.NewKey); from 1.16 8 if proto or port is set, then 16 minus the port mask's trailing
  zeros, which is how 1.16.4+ stores port ranges as prefixes. Lookups use the full 64 bits.
dport is network order in every version (for ICMP rules it holds the ICMP type, htons(type)).
The value lost its packet/byte counters in 1.18 (cilium_policystats has them) and gained precedence
and a cookie in 1.19.
Layouts mirror Cilium's bpf/lib/common.h struct policy_key, policy_entry.
"""

from __future__ import annotations

from tshoot.core.addr import parse_protocol, show_protocol
from tshoot.core.errors import FieldError, UsageError
from tshoot.core.identity import parse_identity
from tshoot.core.layout import BE, PAD, Field, Layout
from tshoot.core.version import Range, Version, show
from tshoot.maps.base import CiliumMap, Pin

STATIC_PREFIX_BITS = 40  # sec_label + the direction byte
FULL_PREFIX = 64  # POLICY_FULL_PREFIX
PORT_RANGES = (1, 16, 4)  # lpm_prefix_length in the value: port ranges stored as prefixes
PREFIX_RULE_1_16 = (1, 16, 0)
MAX_ENDPOINT = 0xFFFF  # lxc_id is a u16

KEY_HASH = Layout("policy_key", 8, [
    Field("sec_label", 0, 4),
    Field("dport", 4, 2, BE),
    Field("protocol", 6, 1),
    Field("egress", 7, 1, bits=(0, 1)),
    Field("pad", 7, 1, bits=(1, 7)),
])
KEY_LPM = Layout("policy_key", 12, [
    Field("lpm_key.prefixlen", 0, 4),
    Field("sec_label", 4, 4),
    Field("egress", 8, 1, bits=(0, 1)),
    Field("pad", 8, 1, bits=(1, 7)),
    Field("protocol", 9, 1),
    Field("dport", 10, 2, BE),  # __u16 up to 1.17, __be16 from 1.18: the same network-order bytes
])


def _entry(size: int, byte2: list[Field], byte3: list[Field], rest: list[Field]) -> Layout:
    return Layout("policy_entry", size, [Field("proxy_port", 0, 2, BE), *byte2, *byte3, *rest])


_DENY = Field("deny", 2, 1, bits=(0, 1))
_COUNTERS = [Field("packets", 8, 8), Field("bytes", 16, 8)]
_BYTE2_PAD = [_DENY, Field("pad", 2, 1, bits=(1, 7))]
_BYTE2_WILDCARDS = [_DENY, Field("wildcard_protocol", 2, 1, bits=(1, 1)), Field("wildcard_dport", 2, 1, bits=(2, 1)),
                    Field("pad", 2, 1, bits=(3, 5))]
_BYTE2_PREFIX = [_DENY, Field("reserved", 2, 1, bits=(1, 2)), Field("lpm_prefix_length", 2, 1, bits=(3, 5))]
_AUTH_TYPE = [Field("auth_type", 3, 1)]
_AUTH_TYPE_7 = [Field("auth_type", 3, 1, bits=(0, 7)), Field("has_explicit_auth_type", 3, 1, bits=(7, 1))]
_PRIORITY = [Field("proxy_port_priority", 4, 1), Field("pad1", 5, 1, PAD), Field("pad2", 6, 2, PAD)]

VALUES = [
    (Range("1.9-1.13"), _entry(24, _BYTE2_PAD, [Field("pad0", 3, 1, PAD)],
                               [Field("pad1", 4, 2, PAD), Field("pad2", 6, 2, PAD), *_COUNTERS])),
    (Range("1.13-1.14"), _entry(24, _BYTE2_PAD, _AUTH_TYPE,
                                [Field("pad1", 4, 2, PAD), Field("pad2", 6, 2, PAD), *_COUNTERS])),
    (Range("1.14-1.16.4"), _entry(24, _BYTE2_WILDCARDS, _AUTH_TYPE,
                                  [Field("pad1", 4, 2, PAD), Field("pad2", 6, 2, PAD), *_COUNTERS])),
    (Range("1.16.4-1.17"), _entry(24, _BYTE2_PREFIX, _AUTH_TYPE, [Field("pad1", 4, 4, PAD), *_COUNTERS])),
    (Range("1.17-1.18"), _entry(24, _BYTE2_PREFIX, _AUTH_TYPE_7, [*_PRIORITY, *_COUNTERS])),
    (Range("1.18-1.19"), _entry(8, _BYTE2_PREFIX, _AUTH_TYPE_7, _PRIORITY)),
    (Range("1.19"), _entry(12, _BYTE2_PREFIX, _AUTH_TYPE_7, [Field("precedence", 4, 4), Field("cookie", 8, 4)])),
]


def prefix_len(version: Version, protocol: int, port: int, port_end: int) -> int:
    """The LPM prefixlen the agent stores for a rule (module docstring)."""
    bits = STATIC_PREFIX_BITS
    if version < PREFIX_RULE_1_16:
        if protocol:
            bits += 8 + (16 if port else 0)
        return bits
    if protocol or port:
        bits += 8
    if port:
        block = port_end - port + 1  # a power of two: port_blocks() checked it
        bits += 16 - (block.bit_length() - 1)
    return bits


def port_blocks(low: int, high: int) -> list[tuple[int, int]]:
    """A port range as the aligned power-of-two blocks one prefix each can hold (80-90: 80-87, 88-89, 90)."""
    blocks = []
    while low <= high:
        size = low & -low if low else 1 << 16
        while low + size - 1 > high:
            size >>= 1
        blocks.append((low, low + size - 1))
        low += size
    return blocks


class Policy(CiliumMap):
    field_kinds = {"identity": "identity"}
    short = "policy"
    summary = "one endpoint's policy: remote identity, direction, protocol, port -> allow/deny, proxy port"
    pins = [
        Pin("1.9-1.14", "cilium_policy_{endpoint:05d}", "hash", 16384),
        Pin("1.14-1.17", "cilium_policy_{endpoint:05d}", "lpm_trie", 16384),
        Pin("1.17", "cilium_policy_v2_{endpoint:05d}", "lpm_trie", 16384),
    ]
    keys = [(Range("1.9-1.14"), KEY_HASH), (Range("1.14"), KEY_LPM)]
    values = VALUES

    def pinned_name(self, version: Version, **params) -> str:
        if params.get("endpoint") is None:
            raise FieldError("endpoint", None, "policy maps are per endpoint: give the endpoint's id (its lxc_id, e.g. "
                             "2006) or the map's pinned name, e.g. cilium_policy_v2_02006")
        return super().pinned_name(version, **params)

    def add_key_arguments(self, parser):
        parser.add_argument("--identity", required=True, metavar="N",
                            help="the remote security identity (0 or 'any' = any; reserved names such as world, "
                                 "host, remote-node are accepted)")
        parser.add_argument("--direction", choices=["ingress", "egress"], default="ingress",
                            help="ingress (default): traffic to the endpoint from N; egress: from the endpoint to N")
        parser.add_argument("--proto", default="any", metavar="tcp|udp|sctp|icmp|N",
                            help="L4 protocol (default any)")
        parser.add_argument("--port", default="0", metavar="P[-Q]",
                            help="destination port (ICMP: the type); 0 = any; a range P-Q from 1.16.4 when it is "
                                 "one aligned block such as 8080-8083")
        parser.add_argument("--endpoint", type=int, metavar="ID",
                            help="the endpoint's id (lxc_id): names the map for --bpftool")

    def key(self, version: Version, *, identity: int | str, direction: str = "ingress", proto: int | str = "any",
            port: int | str = 0, endpoint: int | None = None) -> dict:
        """The key of a rule for `identity` (a number or a reserved name; 0/any = any identity), `proto` and
        `port` (a port, or an aligned range "8080-8083" from 1.16.4; 0 = any)."""
        remote = parse_identity(str(identity))
        protocol = parse_protocol(str(proto))
        low, high = _ports(str(port))
        if endpoint is not None and not 0 <= endpoint <= MAX_ENDPOINT:
            raise FieldError("endpoint", endpoint, f"endpoint ids are 0 to {MAX_ENDPOINT}")
        if low and not protocol:
            raise FieldError("port", port, "a port needs a protocol: Cilium keys ports per protocol", fix=("proto", "tcp"))
        if low != high:
            if version < PORT_RANGES:
                raise FieldError("port", port, f"port ranges are stored as prefixes from Cilium 1.16.4; Cilium "
                                 f"{show(version)} has one entry per port")
            blocks = port_blocks(low, high)
            if len(blocks) > 1:
                shown = ", ".join(f"{lo}-{hi}" if lo != hi else f"{lo}" for lo, hi in blocks)
                raise FieldError("port", port, f"not one prefix: Cilium stores it as {len(blocks)} entries ({shown}); "
                                 f"build one key per block")
        fields = {"identity": remote, "direction": direction, "protocol": show_protocol(protocol), "port": low}
        if self.layout_for("key", version) is KEY_LPM:
            fields["port_end"] = high
            fields["prefix_len"] = prefix_len(version, protocol, low, high)
        return fields

    def datapath_keys(self, fields: dict, version: Version | None) -> list[dict]:
        """What bpf/lib/policy.h (__policy_can_access) asks for a packet from (ingress) or to (egress) that
        identity with that protocol and port, most specific first. Hash maps (up to 1.13) hold exact keys:
        {id, proto, port}, {any, proto, port}, {id, any}, {any, any}. LPM tries (1.14 on) are asked with
        every bit of {id, proto, port}, then of {any, proto, port}; the longest prefix answers each. A port
        range is a rule's key, not a packet's: it is asked as it is."""
        identity, protocol, port = fields["identity"], fields["protocol"], fields["port"]
        if fields.get("port_end", port) != port:
            return [fields]
        hashed = version is not None and self.layout_for("key", version) is KEY_HASH
        tries = [(identity, protocol, port), (0, protocol, port)]
        if hashed:
            tries += [(identity, show_protocol(0), 0), (0, show_protocol(0), 0)]
        keys = []
        for remote, proto, dport in dict.fromkeys(tries):  # without a port, protocol or identity some are the same
            key = {"identity": remote, "direction": fields["direction"], "protocol": proto, "port": dport}
            if not hashed:
                key.update(port_end=dport, prefix_len=FULL_PREFIX)
            keys.append(key)
        return keys

    def key_fields(self, raw, layout) -> dict:
        fields = {"identity": raw["sec_label"], "direction": "egress" if raw["egress"] else "ingress"}
        if layout is KEY_HASH:
            return {**fields, "protocol": show_protocol(raw["protocol"]), "port": raw["dport"]}
        # Bits past prefixlen are wildcards: they do not take part in the match, whatever they hold.
        l4_bits = raw["lpm_key.prefixlen"] - STATIC_PREFIX_BITS
        protocol = raw["protocol"] if l4_bits >= 8 else 0
        port_bits = min(max(l4_bits - 8, 0), 16)
        mask = (0xFFFF << (16 - port_bits)) & 0xFFFF
        port = raw["dport"] & mask
        port_end = port | (~mask & 0xFFFF) if port else 0
        return {**fields, "protocol": show_protocol(protocol), "port": port, "port_end": port_end,
                "prefix_len": raw["lpm_key.prefixlen"]}

    def key_raw(self, fields, layout) -> dict:
        raw = {"sec_label": fields["identity"], "egress": 1 if fields["direction"] == "egress" else 0,
               "protocol": parse_protocol(fields["protocol"]), "dport": fields["port"]}
        if layout is KEY_LPM:
            port_end = fields.get("port_end", fields["port"])
            raw["lpm_key.prefixlen"] = fields.get("prefix_len") or prefix_len(
                PREFIX_RULE_1_16, raw["protocol"], fields["port"], port_end)
        return raw

    def value_fields(self, raw, layout) -> dict:
        fields = {}
        for f in layout.fields:
            if f.kind == PAD or f.name in ("pad", "reserved"):
                continue
            fields[f.name] = bool(raw[f.name]) if f.bits and f.bits[1] == 1 else raw[f.name]
        return fields

    def value_raw(self, fields, layout) -> dict:
        raw = {}
        for name, value in fields.items():
            if name not in layout.by_name:
                raise UsageError(f"{name} does not exist in the policy_entry layout of these versions")
            raw[name] = int(value)
        return raw


def _ports(text: str) -> tuple[int, int]:
    low, dash, high = text.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        raise FieldError("port", repr(text), "expected a port (80) or a range (8080-8083)")
    low_port, high_port = int(low), int(high) if dash else int(low)
    if not 0 <= low_port <= high_port <= 0xFFFF or (dash and low_port == 0):
        raise FieldError("port", repr(text), "ports are 1 to 65535, low before high (0 alone means any port)")
    return low_port, high_port


MAP = Policy()
