"""cilium_lb4_reverse_nat / cilium_lb6_reverse_nat: rev-NAT index -> the service frontend replies come from.

A hash map. A connection to a service keeps the service's rev_nat_index in its conntrack entry; replies
are rewritten to come from the frontend this map holds. The key is the index as a network-order u16
(Go RevNat4Key.ToNetwork), the value the frontend address and network-order port. Unchanged 1.9-1.19.
Layouts mirror Cilium's bpf/lib/common.h struct lb4_reverse_nat, lb6_reverse_nat.
"""

from __future__ import annotations

from tshoot.core.addr import IPV4, IPV6, show_ip
from tshoot.core.errors import FieldError
from tshoot.core.layout import BE, Field, Layout
from tshoot.core.version import Range, Version
from tshoot.maps.base import CiliumMap, Pin
from tshoot.maps.common import ADDRESS_KIND, ADDRESS_SIZE, FAMILY_LABEL, family_address

KEY = Layout("__u16", 2, [Field("rev_nat_index", 0, 2, BE)])


class RevNat(CiliumMap):
    field_kinds = {"address": "address"}

    def __init__(self, family: str):
        v = "4" if family == IPV4 else "6"
        a = ADDRESS_SIZE[family]
        self.family = family
        self.short = f"lb{v}-revnat"
        self.summary = f"{FAMILY_LABEL[family]} rev-NAT index (service id) -> service frontend (hash)"
        self.pins = [Pin("1.9", f"cilium_lb{v}_reverse_nat", "hash", 65536)]
        self.keys = [(Range("1.9"), KEY)]
        self.values = [(Range("1.9"), Layout(f"lb{v}_reverse_nat", a + 2, [
            Field("address", 0, a, ADDRESS_KIND[family]),
            Field("port", a, 2, BE),
        ]))]

    def add_key_arguments(self, parser):
        parser.add_argument("rev_nat_index", metavar="REV_NAT_INDEX", type=int,
                            help="the service's rev-NAT index (its service id; rev_nat_index in a service value)")

    def key(self, version: Version, *, rev_nat_index: int) -> dict:
        if not 0 < rev_nat_index <= 0xFFFF:
            raise FieldError("rev_nat_index", rev_nat_index, "rev-NAT indexes are 1 to 65535")
        return {"rev_nat_index": rev_nat_index}

    def key_fields(self, raw, layout) -> dict:
        return {"rev_nat_index": raw["rev_nat_index"]}

    def key_raw(self, fields, layout) -> dict:
        return {"rev_nat_index": fields["rev_nat_index"]}

    def value_fields(self, raw, layout) -> dict:
        return {"address": show_ip(raw["address"]), "port": raw["port"]}

    def value_raw(self, fields, layout) -> dict:
        return {"address": family_address(self.family, fields["address"]), "port": fields["port"]}


LB4 = RevNat(IPV4)
LB6 = RevNat(IPV6)
