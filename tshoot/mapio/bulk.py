"""Decoding whole maps fast: a dump of 100k entries must decode faster than bpftool prints it as hex.

Three things make that possible without a line of map-specific code:

* layouts compiled to `struct` formats: all of a dump's keys (or values) are unpacked by
  `Struct.iter_unpack` over the concatenated bytes, at C speed, instead of member by member;
* the layout chosen once per group of entries, not per entry (see `LayoutChoice`);
* decoded values memoized by their bytes: a map holds many entries with the same value
  (one identity and tunnel endpoint for every pod of a deployment on a node).

The map modules' own `key_fields`/`value_fields` still turn raw members into the fields users read, so
a dump reads exactly like `tshoot decode` of each entry (tests/test_map_local.py checks that on every map).
"""

from __future__ import annotations

import struct

from tshoot.core.errors import TshootError, UsageError
from tshoot.core.layout import BE, U, Layout
from tshoot.maps.base import CiliumMap
from tshoot.core.version import Version, show

_INT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


class CompiledLayout:
    """A Layout as one or more `struct.Struct`s covering it, and a generated function that builds the same
    dict `Layout.unpack` returns from their tuples.

    Members that overlap (union members, bitfields sharing bytes) cannot sit in one format, so the members'
    byte spans ("slots") are spread over as few formats as possible; big-endian integers get formats of
    their own because a format has one byte order. Bitfields are shifted out of their slot."""

    def __init__(self, layout: Layout):
        self.layout = layout
        slots: list[tuple[int, int, str]] = []  # (offset, size, order) with order 'little', 'big' or 'bytes'
        slot_of: dict[str, int] = {}
        for f in layout.fields:
            order = "little" if f.kind == U else "big" if f.kind == BE else "bytes"
            slot = (f.offset, f.size, order)
            if slot not in slots:
                slots.append(slot)
            slot_of[f.name] = slots.index(slot)
        groups: list[list[int]] = []  # slot indexes per struct format
        for index in sorted(range(len(slots)), key=lambda i: slots[i][0]):
            offset, size, order = slots[index]
            for group in groups:
                orders = {slots[i][2] for i in group} - {"bytes"}
                fits_order = order == "bytes" or not orders or orders == {order}
                overlaps = any(offset < slots[i][0] + slots[i][1] and slots[i][0] < offset + size for i in group)
                if fits_order and not overlaps:
                    group.append(index)
                    break
            else:
                groups.append([index])
        self.structs = []
        names_of_slot: dict[int, str] = {}
        unpack_lines = []
        for g, group in enumerate(groups):
            group.sort(key=lambda i: slots[i][0])
            orders = {slots[i][2] for i in group} - {"bytes"}
            fmt, cursor, names = ("<" if orders != {"big"} else ">"), 0, []
            for i in group:
                offset, size, order = slots[i]
                fmt += "x" * (offset - cursor)
                fmt += _INT_CODES[size] if order != "bytes" and size in _INT_CODES else f"{size}s"
                cursor = offset + size
                names_of_slot[i] = f"s{i}"
                names.append(f"s{i}")
            fmt += "x" * (layout.size - cursor)
            self.structs.append(struct.Struct(fmt))
            unpack_lines.append(f"    {', '.join(names)}, = t{g}")
        items = []
        for f in layout.fields:
            i = slot_of[f.name]
            offset, size, order = slots[i]
            value = names_of_slot[i]
            if order != "bytes" and size not in _INT_CODES:
                value = f"int.from_bytes({value}, {order!r})"
            if f.bits:
                low, width = f.bits
                value = f"(({value}) >> {low}) & {(1 << width) - 1}"
            items.append(f"{f.name!r}: {value}")
        args = ", ".join(f"t{g}" for g in range(len(groups)))
        source = f"def build({args}):\n" + "\n".join(unpack_lines) + f"\n    return {{{', '.join(items)}}}\n"
        namespace: dict = {}
        exec(compile(source, f"<layout {layout.c_name} {layout.size}>", "exec"), namespace)  # noqa: S102 (generated from Layout data only)
        self.build = namespace["build"]

    def unpack(self, data: bytes) -> dict:
        """The same dict as Layout.unpack(data)."""
        return self.build(*(s.unpack(data) for s in self.structs))

    def unpack_all(self, data: bytes):
        """An iterator of raw dicts, one per `layout.size` bytes of `data` (concatenated entries)."""
        build = self.build
        iters = [s.iter_unpack(data) for s in self.structs]
        if len(iters) == 1:
            return map(build, iters[0])
        return map(build, *iters)


_compiled: dict[int, CompiledLayout] = {}


def compiled(layout: Layout) -> CompiledLayout:
    c = _compiled.get(id(layout))
    if c is None:
        c = _compiled[id(layout)] = CompiledLayout(layout)
    return c


class LayoutChoice:
    """Which layout reads each entry of a map whose version is not known.

    `CiliumMap.decode` without a version tries every layout of the right size and accepts them when they
    read the bytes alike. Doing that per entry would triple a dump's cost, but it need not be done per entry:
    layouts of the same size differ only in the bytes covered by members that are not placed identically in
    all of them (the "differing bytes": cluster_id at 4-6 of an ipcache key, bytes 8-11 of a 12-byte
    ipcache value). Entries equal in those bytes are read alike or differently by the same layouts, so the
    choice is made once per distinct pattern of differing bytes, on its first entry, by `CiliumMap.decode`
    itself (same rules, same errors)."""

    def __init__(self, cmap: CiliumMap, which: str, size: int, version: Version | None, btf=None):
        self.cmap, self.which, self.size, self.version = cmap, which, size, version
        table = cmap.keys if which == "key" else cmap.values
        fitting = self.fitting = [(versions, layout) for versions, layout in table if layout.size == size]
        found = cmap.layout_from_btf(which, btf) if btf is not None else None
        if found is not None:  # the map says which struct it holds (same rule as CiliumMap.decode)
            layout, _, reason = found
            if layout.size != size:
                raise TshootError(f"the map's BTF says {which}s are {layout.size} bytes, the map's are {size}")
            self.fixed: Layout | None = layout
            self.reasons = {id(layout): reason}
            return
        if version is not None:
            layout = cmap.layout_for(which, version)
            if layout.size != size:
                raise TshootError(size_mismatch(cmap, which, version, size))
            self.fixed = layout
            self.reasons = {id(layout): f"Cilium {show(version)} uses struct {layout.c_name}"}
            return
        if not fitting:
            raise TshootError(size_mismatch(cmap, which, None, size))
        layouts = list({id(layout): layout for _, layout in fitting}.values())
        self.fixed = layouts[0] if len(layouts) == 1 else None
        self.reasons = {}
        if self.fixed is not None:
            versions = ", ".join(v.label() for v, _ in fitting)
            self.reasons[id(self.fixed)] = f"only Cilium {versions} use {size}-byte {which}s"
            return
        placement: dict[tuple, set[int]] = {}
        coded: set[tuple] = set()
        for layout in layouts:
            for f in layout.fields:
                placement.setdefault((f.offset, f.size, f.kind, f.bits), set()).add(id(layout))
                if f.name in cmap.coded_members:
                    coded.add((f.offset, f.size, f.kind, f.bits))
        differing = set()
        for (offset, length, kind, bits), users in placement.items():
            if len(users) < len(layouts) or self._read_differently(offset, length, kind, bits,
                                                                    (offset, length, kind, bits) in coded):
                differing.update(range(offset, offset + length))
        fmt, cursor = "", 0
        for b in sorted(differing):
            fmt += "x" * (b - cursor) + "s"
            cursor = b + 1
        fmt += "x" * (size - cursor)
        self.differing = sorted(differing)
        self.signature = struct.Struct(fmt)
        self.by_signature: dict[tuple, Layout] = {}

    def _read_differently(self, offset: int, length: int, kind: str, bits, coded: bool = False) -> bool:
        """Whether a member placed alike in every fitting layout is still read differently by some of them
        (the same flag bits named per version): an integer probed with each of its bits set alone, and all
        set — a code whose names change per version (CiliumMap.coded_members: a metrics reason, a source file
        id) with every value; an address or other bytes (never flags) with a first byte set, and all bytes set."""
        if kind in (U, BE):
            width = bits[1] if bits else 8 * length
            order = "big" if kind == BE else "little"
            shift = bits[0] if bits else 0
            values = range(1, 1 << width) if coded else [1 << i for i in range(width)] + [(1 << width) - 1]
            probes = [((p << shift).to_bytes(length, order)) for p in values]
        else:
            probes = [b"\x01" + bytes(length - 1), b"\xff" * length]
        for probe in probes:
            data = bytearray(self.size)
            data[offset : offset + length] = probe
            try:
                self.cmap.decode(self.which, bytes(data), None)
            except Exception:  # UsageError "read differently", or a layout that cannot read the probe at all
                return True
        return False

    def layouts(self, data: bytes, role: str | None = None) -> Layout | list[Layout]:
        """The layout reading every entry of `data` (concatenated entries), or one layout per entry when
        they differ; `role`: the entries' role in maps with roles (their keys say it), read in it."""
        if self.fixed is not None:
            return self.fixed
        if data and self._alike(data):  # the usual case: one signature for all, found without an object per entry
            signature = (role, *self.signature.unpack_from(data))
            if signature not in self.by_signature:
                self.by_signature[signature] = self._choose(data[: self.size], role)
            return self.by_signature[signature]
        signatures = [(role, *s) for s in self.signature.iter_unpack(data)]
        for signature in dict.fromkeys(signatures):
            if signature not in self.by_signature:
                at = signatures.index(signature) * self.size
                self.by_signature[signature] = self._choose(data[at : at + self.size], role)
        chosen = {id(self.by_signature[s]): self.by_signature[s] for s in dict.fromkeys(signatures)}
        if len(chosen) <= 1:
            return next(iter(chosen.values()), self.fixed or next(iter(self.by_signature.values()), None))
        return [self.by_signature[s] for s in signatures]

    def _alike(self, data: bytes) -> bool:
        """Whether every entry has the same differing bytes: each such byte's column (data[offset::size],
        a slice at C speed) is that byte repeated."""
        count = len(data) // self.size
        for offset in self.differing:
            column = data[offset :: self.size]
            if column != column[:1] * count:
                return False
        return True

    def _choose(self, entry: bytes, role: str | None = None) -> Layout:
        try:
            decoded = self.cmap.decode(self.which, entry, None, role=role)
        except UsageError as exc:
            raise TshootError(f"{exc} (entry {entry.hex(' ')})") from None
        self.reasons[id(decoded.layout)] = decoded.reason
        return decoded.layout


def size_mismatch(cmap: CiliumMap, which: str, version: Version | None, size: int) -> str:
    """'ipcache value of Cilium 1.17 is 12 bytes, the map's are 24 (24 bytes: Cilium 1.18.0–1.19.x)'."""
    table = cmap.keys if which == "key" else cmap.values
    fits = [versions for versions, layout in table if layout.size == size]
    fitting = "; ".join(f"Cilium {v.label()}" for v in fits) if fits else "no Cilium version tshoot knows"
    if version is None:
        sizes = ", ".join(str(s) for s in sorted({layout.size for _, layout in table}))
        return f"the map's {which}s are {size} bytes, but {cmap.short} {which}s are {sizes} bytes in Cilium 1.9-1.19"
    expected = cmap.layout_for(which, version).size
    return (f"{cmap.short} {which}s of Cilium {show(version)} are {expected} bytes, the map's are {size} "
            f"({size} bytes fits {fitting}): pass the agent's version with --cilium-version")


class BulkDecoder:
    """Decodes all entries of one map: fields for keys and values, in the map module's words."""

    def __init__(self, cmap: CiliumMap, version: Version | None, key_size: int, value_size: int, btf=None):
        """btf: the map's (key, value) BTF types (tshoot.core.btf.BTFStruct or None), when it carries BTF."""
        self.cmap, self.version = cmap, version
        key_btf, value_btf = btf or (None, None)
        self.key_choice = LayoutChoice(cmap, "key", key_size, version, key_btf)
        self.value_choice = LayoutChoice(cmap, "value", value_size, version, value_btf)
        self.key_size, self.value_size = key_size, value_size
        self.by_columns = "value" in cmap.columns
        self.has_roles = type(cmap).value_role is not CiliumMap.value_role

    def keys(self, data: bytes) -> list[dict]:
        """The fields of every key in `data` (concatenated keys)."""
        return self._decode("key", self.key_choice, data, self.key_size)

    def value_list(self, data: bytes, keys: list[dict] | None = None) -> list[dict]:
        """The fields of every value in `data`, each read in the role its key's fields (`keys`) give it in maps
        with roles (CiliumMap.value_role). Entry by entry, equal values of equal roles are decoded once and
        share one (read-only) dict (per call, not per dump: a slice's memo is freed with the slice); a map that
        reads its values by columns does it faster than equal values could be found."""
        size = self.value_size
        if self.by_columns:
            return self._decode("value", self.value_choice, data, size)
        entries = [data[i : i + size] for i in range(0, len(data), size)]
        if self.has_roles and keys is not None:
            roles = [self.cmap.value_role(k) for k in keys]
            by_role: dict = {}
            for role, value in zip(roles, entries):
                by_role.setdefault(role, {})[value] = None
            memo = {}
            for role, distinct in by_role.items():
                decoded = self._decode("value", self.value_choice, b"".join(distinct), size, role)
                memo.update(((role, v), fields) for v, fields in zip(distinct, decoded))
            return [memo[role, v] for role, v in zip(roles, entries)]
        distinct = list(dict.fromkeys(entries))
        memo = dict(zip(distinct, self._decode("value", self.value_choice, b"".join(distinct), size)))
        return [memo[v] for v in entries]

    def _decode(self, which: str, choice: LayoutChoice, data: bytes, size: int, role: str | None = None) -> list[dict]:
        if not data:
            return []
        per_entry = choice.layouts(data, role)
        if isinstance(per_entry, Layout):
            return self._with_layout(which, per_entry, data, role)
        # Entries read with different layouts: decode each layout's entries together, then put them back in order.
        groups: dict[int, tuple[Layout, list[int]]] = {}
        for index, layout in enumerate(per_entry):
            groups.setdefault(id(layout), (layout, []))[1].append(index)
        out: list = [None] * len(per_entry)
        for layout, indexes in groups.values():
            chunk = b"".join(data[i * size : (i + 1) * size] for i in indexes)
            for index, fields in zip(indexes, self._with_layout(which, layout, chunk, role)):
                out[index] = fields
        return out

    def _with_layout(self, which: str, layout: Layout, data: bytes, role: str | None = None) -> list[dict]:
        fields = self.cmap.fields_many(which, layout, data)
        if fields is None:
            convert = self.cmap.converter(which, role)
            fields = [convert(raw, layout) for raw in compiled(layout).unpack_all(data)]
        return fields

    def reasons(self) -> list[str]:
        return [f"key layout: {r}" for r in self.key_choice.reasons.values()] + \
               [f"value layout: {r}" for r in self.value_choice.reasons.values()]
