"""cilium_lb4_backends{,_v2,_v3} / cilium_lb6_…: backend id -> the backend's address, port and state.

A hash map keyed by the backend_id a service slot holds (tshoot key lb4-services … --slot N). The key
was a u16 up to 1.10 (cilium_lb4_backends) and is a u32 from 1.11 (_v2); the value grew a cluster id
in 1.13 (_v3), widened it to u16 in 1.15, and added the topology zone in 1.16. The address and port
are network order; `flags` holds the backend state (BE_STATE_*) from 1.12.
Layouts mirror Cilium's bpf/lib/common.h struct lb4_backend, lb6_backend.
"""

from __future__ import annotations

from tshoot.core.addr import IPV4, IPV6, parse_protocol, show_ip, show_protocol
from tshoot.core.errors import FieldError, UsageError
from tshoot.core.layout import BE, PAD, U, Field, Layout
from tshoot.core.version import Range, Version, show
from tshoot.maps.base import CiliumMap, Pin
from tshoot.maps.common import ADDRESS_KIND, ADDRESS_SIZE, FAMILY_LABEL, copy_optional, family_address

# BE_STATE_* (bpf/lib/lb.h, 1.12+)
STATES = {0: "active", 1: "terminating", 2: "quarantined", 3: "maintenance"}

KEY_U16 = Layout("__u16", 2, [Field("backend_id", 0, 2)])
KEY_U32 = Layout("__u32", 4, [Field("backend_id", 0, 4)])
KEYS = [(Range("1.9-1.11"), KEY_U16), (Range("1.11"), KEY_U32)]


def _value(family: str, tail: list[tuple[str, int, str]]) -> Layout:
    """lb{4,6}_backend: address, port, proto, then `tail` members (name, size, kind) one after another."""
    a = ADDRESS_SIZE[family]
    fields = [Field("address", 0, a, ADDRESS_KIND[family]), Field("port", a, 2, BE), Field("proto", a + 2, 1)]
    offset = a + 3
    for name, size, kind in tail:
        fields.append(Field(name, offset, size, kind))
        offset += size
    return Layout("lb4_backend" if family == IPV4 else "lb6_backend", offset, fields)


_VALUE_TAILS = [
    (Range("1.9-1.12"), [("pad", 1, PAD)]),
    (Range("1.12-1.13"), [("flags", 1, U)]),
    (Range("1.13-1.15"), [("flags", 1, U), ("cluster_id", 1, U), ("pad", 3, PAD)]),
    (Range("1.15-1.16"), [("flags", 1, U), ("cluster_id", 2, U), ("pad", 2, PAD)]),
    (Range("1.16"), [("flags", 1, U), ("cluster_id", 2, U), ("zone", 1, U), ("pad", 1, PAD)]),
]


class Backends(CiliumMap):
    field_kinds = {"address": "address"}

    def __init__(self, family: str):
        v = "4" if family == IPV4 else "6"
        self.family = family
        self.short = f"lb{v}-backends"
        self.summary = f"{FAMILY_LABEL[family]} backend id -> backend address, port, state (hash)"
        self.pins = [Pin("1.9-1.11", f"cilium_lb{v}_backends", "hash", 65536),
                     Pin("1.11-1.13", f"cilium_lb{v}_backends_v2", "hash", 65536),
                     Pin("1.13", f"cilium_lb{v}_backends_v3", "hash", 65536)]
        self.keys = KEYS
        self.unset_values = {"flags": STATES[0]}
        self.values = [(versions, _value(family, tail)) for versions, tail in _VALUE_TAILS]

    def add_key_arguments(self, parser):
        parser.add_argument("backend_id", metavar="BACKEND_ID", type=int,
                            help="the backend id a service slot points at (its value's backend_id)")

    def key(self, version: Version, *, backend_id: int) -> dict:
        limit = (1 << (8 * self.layout_for("key", version).size)) - 1
        if not 0 < backend_id <= limit:
            raise FieldError("backend_id", backend_id, f"Cilium {show(version)} backend ids are 1 to {limit}")
        return {"backend_id": backend_id}

    def key_fields(self, raw, layout) -> dict:
        return {"backend_id": raw["backend_id"]}

    def key_raw(self, fields, layout) -> dict:
        return {"backend_id": fields["backend_id"]}

    def value_fields(self, raw, layout) -> dict:
        fields = {"address": show_ip(raw["address"]), "port": raw["port"], "proto": show_protocol(raw["proto"])}
        if "flags" in raw:
            fields["flags"] = STATES.get(raw["flags"], str(raw["flags"]))
        for optional in ("cluster_id", "zone"):
            if optional in raw:
                fields[optional] = raw[optional]
        return fields

    def value_raw(self, fields, layout) -> dict:
        raw = {"address": family_address(self.family, fields["address"]), "port": fields["port"], "proto": parse_protocol(fields.get("proto", "any"))}
        state = fields.get("flags", "active")
        if state != "active":
            if "flags" not in layout.by_name:
                raise UsageError("backend states (flags) exist from Cilium 1.12 on")
            code = {v: k for k, v in STATES.items()}.get(state)
            if code is None and not str(state).isdigit():
                raise UsageError(f"unknown backend state {state!r} (known: {', '.join(STATES.values())})")
            raw["flags"] = int(state) if code is None else code
        copy_optional(fields, layout, ("cluster_id", "zone"), raw)
        return raw


LB4 = Backends(IPV4)
LB6 = Backends(IPV6)
