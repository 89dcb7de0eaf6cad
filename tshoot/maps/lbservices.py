"""cilium_lb4_services_v2 / cilium_lb6_services_v2: a service frontend and slot -> master entry or one backend.

A hash map. The datapath looks a packet up with {VIP, htons(dport), slot 0, proto, scope} and gets the
master entry, whose `count` is the number of backend slots; it then picks a slot s in 1..count and
looks up the same key with backend_slot = s, whose value's backend_id keys the backends map
(bpf/lib/lb.h lb4_lookup_service, lb4_select_backend_id). Before 1.17 the protocol in the key is always
0; from 1.17 it is the L4 protocol (the datapath retries with 0 for services stored without one).
`scope` is 1 only for the second lookup of services with separate internal backends.
rev_nat_index is a network-order u16 (Go HostToNetwork16); l7_lb_proxy_port is network order in
bytes 0-1 of the union although the C comment says host order.
Values are read by the role their key gives them (`role`: frontend for slot 0, backend for the others):
bytes 0-3 are a backend slot's backend_id but a frontend's affinity timeout (and LB algorithm from 1.17)
or L7 proxy port, and flags2 bit 6 names differ by role (Services.value_fields, flags2_names).
Layouts mirror Cilium's bpf/lib/common.h struct lb4_key, lb4_service (and their lb6_ twins).
"""

from __future__ import annotations

from tshoot.core.addr import IPV4, IPV6, parse_endpoint, parse_protocol, show_ip, show_protocol
from tshoot.core.errors import FieldError, UsageError
from tshoot.core.layout import BE, PAD, Field, Layout, flag_names, flag_value
from tshoot.core.version import Range, Version
from tshoot.maps.base import CiliumMap, Pin
from tshoot.maps.common import ADDRESS_KIND, ADDRESS_SIZE, FAMILY_LABEL, copy_optional, family_address

PROTO_IN_KEY = (1, 17, 0)  # --bpf-lb-proto-diff: the key carries the L4 protocol from 1.17

SCOPES = {0: "external", 1: "internal"}  # LB_LOOKUP_SCOPE_EXT / _INT

# An entry's role comes from its key: backend_slot 0 is the Service frontend ("master" entry), 1..count+qcount
# its backend slots (struct lb4_key's comment, bpf/lib/lb.h). The value's first word is a union read by role.
FRONTEND, BACKEND = "frontend", "backend"
ROLES = (FRONTEND, BACKEND)

# SVC_FLAG_* of lb{4,6}_service.flags (bpf/lib/lb.h). Bit 2 is SVC_FLAG_LOCAL_SCOPE up to 1.12 and
# SVC_FLAG_EXT_LOCAL_SCOPE from 1.13: the same externalTrafficPolicy=Local, one name here.
HOSTPORT = 8
FLAGS = {1: "external_ip", 2: "nodeport", 4: "ext_local_scope", HOSTPORT: "hostport", 16: "affinity",
         32: "loadbalancer", 64: "routable", 128: "source_range"}
# SVC_FLAG_* of flags2, per value layout (bits a version did not define read as bitN).
L7_LOADBALANCER = 4
_FLAGS2_1_12 = {1: "localredirect", 2: "nat_46x64", L7_LOADBALANCER: "l7_loadbalancer", 8: "loopback",
                16: "int_local_scope", 32: "two_scopes"}  # bits 3-5 from 1.13
FLAGS2 = {
    "1.9": {1: "localredirect"},
    "1.12": _FLAGS2_1_12,
    "1.17": {**_FLAGS2_1_12, 64: "quarantined", 128: "fwd_mode_dsr"},
}

# From 1.17 a frontend's first word packs the service's LB algorithm in its top byte and the affinity timeout
# in the low 24 bits (bpf/lib/lb.h LB_ALGORITHM_SHIFT, AFFINITY_TIMEOUT_MASK, lb4_affinity_timeout(); v1.17).
# 0 leaves the choice to the agent's --bpf-lb-algorithm (Go loadbalancer.SVCLoadBalancingAlgorithmUndef).
LB_ALGORITHM_SHIFT = 24
AFFINITY_TIMEOUT_MASK = (1 << LB_ALGORITHM_SHIFT) - 1
LB_ALGORITHMS = {0: "default", 1: "random", 2: "maglev"}


def _key(family: str) -> Layout:
    a = ADDRESS_SIZE[family]
    return Layout("lb4_key" if family == IPV4 else "lb6_key", a + 8, [
        Field("address", 0, a, ADDRESS_KIND[family]),
        Field("dport", a, 2, BE),
        Field("backend_slot", a + 2, 2),
        Field("proto", a + 4, 1),
        Field("scope", a + 5, 1),
        Field("pad", a + 6, 2, PAD),
    ])


def _value(family: str, l7_port: bool, qcount: bool) -> Layout:
    return Layout("lb4_service" if family == IPV4 else "lb6_service", 12, [
        Field("backend_id", 0, 4),  # a backend slot's backend
        Field("affinity_timeout", 0, 4),  # a frontend's: seconds (from 1.17 the top byte is the LB algorithm)
        *([Field("l7_lb_proxy_port", 0, 4)] if l7_port else []),  # a frontend's, when L7-balanced (1.12+)
        Field("count", 4, 2),
        Field("rev_nat_index", 6, 2, BE),
        Field("flags", 8, 1),
        Field("flags2", 9, 1),
        Field("qcount", 10, 2) if qcount else Field("pad", 10, 2, PAD),
    ])


class Services(CiliumMap):
    unset_values = {"lb_algorithm": LB_ALGORITHMS[0]}  # what older layouts' bytes mean: the agent's algorithm
    field_kinds = {"address": "address"}

    def __init__(self, family: str):
        v = "4" if family == IPV4 else "6"
        self.family = family
        self.short = f"lb{v}-services"
        self.summary = f"{FAMILY_LABEL[family]} service frontend + backend slot -> master entry or backend id (hash)"
        self.pins = [Pin("1.9", f"cilium_lb{v}_services_v2", "hash", 65536)]
        self.key_layout = _key(family)
        self.keys = [(Range("1.9"), self.key_layout)]
        self.value_1_9 = _value(family, l7_port=False, qcount=False)
        self.value_1_12 = _value(family, l7_port=True, qcount=False)
        self.value_1_17 = _value(family, l7_port=True, qcount=True)
        self.values = [(Range("1.9-1.12"), self.value_1_9), (Range("1.12-1.17"), self.value_1_12),
                       (Range("1.17"), self.value_1_17)]
        self.example = "10.96.0.10:53/udp" if family == IPV4 else "[fd00:10:96::a]:53/udp"

    def add_key_arguments(self, parser):
        parser.add_argument("frontend", metavar="ADDRESS:PORT[/PROTO]",
                            help=f"the service frontend, e.g. {self.example} (a ClusterIP, NodePort, …); "
                                 "/tcp is assumed from 1.17 when no protocol is given (Kubernetes' default); "
                                 "give /any for clusters running with --bpf-lb-proto-diff=false")
        parser.add_argument("--slot", type=int, default=0, metavar="N",
                            help="0 = the master entry (default); 1..count = the backend slots")
        parser.add_argument("--scope", choices=list(SCOPES.values()), default="external",
                            help="internal: the second lookup of services with internalTrafficPolicy=Local")

    def key(self, version: Version, *, frontend: str, slot: int = 0, scope: str = "external") -> dict:
        family, address, port, proto = parse_endpoint(frontend, "tcp")
        if family != self.family:
            other = "lb6-services" if self.family == IPV4 else "lb4-services"
            raise FieldError("frontend", repr(frontend), f"an {FAMILY_LABEL[family]} frontend: use {other}")
        if not 0 <= slot <= 0xFFFF:
            raise FieldError("slot", slot, "slots are 0 (the master entry) to 65535")
        return {"address": show_ip(address), "port": port,
                "proto": show_protocol(proto if version >= PROTO_IN_KEY else 0), "slot": slot, "scope": scope}

    def key_fields(self, raw, layout) -> dict:
        return {"address": show_ip(raw["address"]), "port": raw["dport"], "proto": show_protocol(raw["proto"]),
                "slot": raw["backend_slot"], "scope": SCOPES.get(raw["scope"], str(raw["scope"]))}

    def key_raw(self, fields, layout) -> dict:
        address = family_address(self.family, fields["address"])
        scope = {v: k for k, v in SCOPES.items()}.get(fields["scope"])
        return {"address": address, "dport": fields["port"], "backend_slot": fields["slot"],
                "proto": parse_protocol(fields["proto"]),
                "scope": int(fields["scope"]) if scope is None else scope}

    def value_role(self, key_fields: dict) -> str:
        return FRONTEND if key_fields["slot"] == 0 else BACKEND

    def flags2_names(self, layout: Layout, role: str, flags: int) -> dict[int, str]:
        """flags2's bit names for an entry of this role. From 1.17 bit 6 is SVC_FLAG_QUARANTINED on a backend
        slot and SVC_FLAG_SOURCE_RANGE_DENY on a frontend; from 1.18 bit 3 is SVC_FLAG_LOOPBACK on a HostPort
        frontend and SVC_FLAG_L7_DELEGATE otherwise (bpf/lib/lb.h, flags2 enum; v1.17, v1.18)."""
        if layout is self.value_1_17:
            table = dict(FLAGS2["1.17"])
            if role == FRONTEND:
                table[64] = "source_range_deny"
            if not flags & HOSTPORT:
                table[8] = "l7_delegate"
            return table
        return FLAGS2["1.12" if layout is self.value_1_12 else "1.9"]

    def role_from_value(self, raw: dict, layout: Layout) -> str:
        """The role of a value decoded without its key, from what only a frontend holds, read alike in every
        layout (so that the layouts of one size agree on it): backend slots (or quarantined ones) to count, the
        L7 load-balancer flag, a top byte in the first word (an LB algorithm: backend ids stay far below 2^24,
        and so does an affinity timeout, which Kubernetes caps at a day); a zero first word is no backend id
        (they start at 1). Else a backend slot."""
        word = raw["backend_id"]
        if raw["count"] or raw.get("qcount") or word == 0 or word >> LB_ALGORITHM_SHIFT:
            return FRONTEND
        return FRONTEND if raw["flags2"] & L7_LOADBALANCER else BACKEND

    def shown_members(self, raw: dict, layout: Layout) -> dict[str, str]:
        if layout is not self.value_1_17 or "affinity_timeout" not in raw:
            return {}
        word = raw["affinity_timeout"]
        algorithm = word >> LB_ALGORITHM_SHIFT
        return {"affinity_timeout": f"{word}: lb_algorithm {LB_ALGORITHMS.get(algorithm, algorithm)} (top byte), "
                                    f"{word & AFFINITY_TIMEOUT_MASK} s"}

    def value_fields(self, raw, layout, role: str | None = None) -> dict:
        role = role or self.role_from_value(raw, layout)
        word = raw["backend_id"]
        fields: dict = {"role": role}
        if role == BACKEND:
            fields["backend_id"] = word
        elif "l7_lb_proxy_port" in raw and raw["flags2"] & L7_LOADBALANCER:
            fields["l7_lb_proxy_port"] = _l7_port(word)
        elif layout is self.value_1_17:
            algorithm = word >> LB_ALGORITHM_SHIFT
            fields["lb_algorithm"] = LB_ALGORITHMS.get(algorithm, str(algorithm))
            fields["affinity_timeout"] = word & AFFINITY_TIMEOUT_MASK
        else:
            fields["affinity_timeout"] = word
        fields.update(count=raw["count"], rev_nat_index=raw["rev_nat_index"], flags=flag_names(raw["flags"], FLAGS),
                      flags2=flag_names(raw["flags2"], self.flags2_names(layout, role, raw["flags"])))
        if "qcount" in raw:
            fields["qcount"] = raw["qcount"]
        return fields

    def value_raw(self, fields, layout) -> dict:
        flags = flag_value(fields.get("flags", []), FLAGS)
        given = [name for name in ("backend_id", "affinity_timeout", "lb_algorithm", "l7_lb_proxy_port") if name in fields]
        role = fields.get("role") or (BACKEND if "backend_id" in fields else FRONTEND)
        if role not in ROLES:
            raise UsageError(f"role {role!r}: an entry is a {FRONTEND} (slot 0) or a {BACKEND} (slot 1..count)")
        mixed = [n for n in given if (n == "backend_id") != (role == BACKEND)] or \
            (["l7_lb_proxy_port", "affinity_timeout"] if {"l7_lb_proxy_port", "affinity_timeout"} <= set(given) else [])
        if mixed:
            raise UsageError(f"{', '.join(mixed)} cannot be given for a {role}: bytes 0-3 hold a backend slot's "
                             f"backend_id, or a frontend's affinity_timeout (and lb_algorithm from 1.17) or "
                             f"l7_lb_proxy_port")
        if role == BACKEND:
            word = fields.get("backend_id", 0)
        elif "l7_lb_proxy_port" in fields:
            word = _l7_union(fields["l7_lb_proxy_port"])
        else:
            word = fields.get("affinity_timeout", 0)
            if layout is self.value_1_17:
                algorithm = fields.get("lb_algorithm", "default")
                code = {v: k for k, v in LB_ALGORITHMS.items()}.get(algorithm)
                code = int(algorithm) if code is None and str(algorithm).isdigit() else code
                if code is None or not 0 <= code <= 0xFF or not 0 <= word <= AFFINITY_TIMEOUT_MASK:
                    raise UsageError(f"lb_algorithm {algorithm!r} / affinity_timeout {word}: the algorithm is one of "
                                     f"{', '.join(LB_ALGORITHMS.values())} (or 0-255), the timeout 0-{AFFINITY_TIMEOUT_MASK} s")
                word |= code << LB_ALGORITHM_SHIFT
            elif "lb_algorithm" in fields:
                raise UsageError("lb_algorithm is stored in the frontend from Cilium 1.17")
        raw = {"backend_id": word, "count": fields.get("count", 0), "rev_nat_index": fields.get("rev_nat_index", 0),
               "flags": flags, "flags2": flag_value(fields.get("flags2", []), self.flags2_names(layout, role, flags))}
        copy_optional(fields, layout, ("qcount",), raw)
        return raw

    def unused_members(self, raw, layout, role: str | None = None) -> set[str]:
        if layout is self.key_layout:
            return set()
        # Show the union member this entry's role uses (a value without its key: the role its bytes tell).
        union = {"backend_id", "affinity_timeout", "l7_lb_proxy_port"} & set(raw)
        role = role or self.role_from_value(raw, layout)
        if role == BACKEND:
            return union - {"backend_id"}
        if "l7_lb_proxy_port" in raw and raw["flags2"] & L7_LOADBALANCER:
            return union - {"l7_lb_proxy_port"}
        return union - {"affinity_timeout"}

def _l7_port(union: int) -> int:
    """The proxy port Go stores as uint32(HostToNetwork16(port)): network order in bytes 0-1."""
    return int.from_bytes(union.to_bytes(4, "little")[:2], "big")


def _l7_union(port: int) -> int:
    return int.from_bytes(port.to_bytes(2, "big") + b"\0\0", "little")


LB4 = Services(IPV4)
LB6 = Services(IPV6)
