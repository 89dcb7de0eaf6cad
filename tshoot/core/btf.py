"""What a map's BTF says about its key or value type, read from `bpftool -j btf dump …`.

A map created with BTF (Cilium's maps declared in C with `__type(key, struct …)`) carries its key and
value types: struct name, sizeof, and where each member sits. tshoot uses that to pick a layout
without trusting a version number (tshoot.maps.base.CiliumMap.layout_from_btf).

`describe(types, type_id)` flattens a type the way tshoot.core.layout names members: nested structs give
dotted paths ("lpm_key.prefixlen"), anonymous structs and unions add nothing to the path, and
`union v6addr` (an IPv6 address) is one 16-byte member.
"""

from __future__ import annotations

from tshoot.core.errors import TshootError

# Named types tshoot reads as one member rather than by their parts.
LEAF_AGGREGATES = ("v6addr",)


class BTFStruct:
    """A key or value type as BTF describes it.

    `members` maps each leaf member's path to (bit offset, bit size); a bitfield's size is its width,
    any other member's is 8 × sizeof. Zero-sized members (`__u8 data[0]`) are left out."""

    def __init__(self, name: str, size: int, members: dict[str, tuple[int, int]]):
        self.name, self.size, self.members = name, size, members

    def __repr__(self) -> str:
        return f"BTFStruct({self.name!r}, {self.size}, {len(self.members)} members)"


def parse_types(text: str) -> dict[int, dict]:
    """`bpftool -j btf dump file X.o` / `… btf dump id N` output -> {type id: type}."""
    import json

    try:
        return {t["id"]: t for t in json.loads(text)["types"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise TshootError(f"cannot read bpftool's BTF dump ({exc})") from None


def describe(types: dict[int, dict], type_id: int) -> BTFStruct:
    """The struct, union or scalar `type_id` as a BTFStruct."""
    resolved = _resolve(types, type_id)
    members: dict[str, tuple[int, int]] = {}
    if resolved["kind"] in ("STRUCT", "UNION") and resolved["name"] not in LEAF_AGGREGATES:
        _walk(types, resolved, "", 0, members)
        name = resolved["name"]
    else:
        members[""] = (0, 8 * _sizeof(types, type_id))
        name = _name(types, type_id)
    return BTFStruct(name, _sizeof(types, type_id), members)


def _walk(types, aggregate: dict, prefix: str, base: int, out: dict) -> None:
    for member in aggregate["members"]:
        name = "" if member["name"] == "(anon)" else member["name"]
        path = f"{prefix}.{name}" if prefix and name else (prefix or name)
        offset = base + member["bits_offset"]
        target = _resolve(types, member["type_id"])
        if member.get("bitfield_size"):
            out[path] = (offset, member["bitfield_size"])
        elif target["kind"] in ("STRUCT", "UNION") and target["name"] not in LEAF_AGGREGATES:
            _walk(types, target, path, offset, out)
        else:
            size = _sizeof(types, member["type_id"])
            if size:
                out[path] = (offset, 8 * size)


def _resolve(types, type_id: int) -> dict:
    """Through typedefs and qualifiers to the type that has a shape."""
    t = types[type_id]
    while t["kind"] in ("TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"):
        t = types[t["type_id"]]
    return t


def _name(types, type_id: int) -> str:
    """The name a C programmer wrote: a typedef's own name (__u16), else the type's."""
    t = types[type_id]
    while t["kind"] in ("CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"):
        t = types[t["type_id"]]
    return t["name"]


def _sizeof(types, type_id: int) -> int:
    t = _resolve(types, type_id)
    if t["kind"] == "ARRAY":
        return t["nr_elems"] * _sizeof(types, t["type_id"])
    return t.get("size", 0)
