"""What every Cilium map module provides, and the layout choice they share.

A map module (ipcache.py, lxc.py, …) is the Python twin of Cilium's pkg/maps/<map>: its pinned names
per version, its key and value layouts per version, how a key is built from what a user types,
and how raw members become the fields users read. Layout choice lives here, once:

* the map's own BTF, when it has one (`decode(…, btf=BTFStruct)`, see tshoot.core.btf): the layout whose
  struct name, size and every member position equal the BTF type's;
* else a version given (or detected from the agent image) picks the layout valid for it;
* else every layout of the right size is tried, and if they all read the bytes the same way (fields
  only some layouts have are zero), the oldest is used; otherwise the user is asked.
Every Decoded says which rule chose its layout and why (`Decoded.reason`, printed by `-v`).

Names: `find()` in tshoot.maps accepts short names and pinned names; a pinned name also tells which
versions it belongs to (`default_version`, `check_name`), since several maps were renamed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from tshoot.core.btf import BTFStruct
from tshoot.core.errors import UsageError
from tshoot.core.layout import U, Layout
from tshoot.core.version import NEWEST_KNOWN, Range, Version, newest, show


class Absent(UsageError):
    """The version asked for has no such map (or no such layout): a usage error when the version was typed,
    a fact about the node when it was read from the agent (tshoot.mapio.read says so)."""


class Pin:
    """How a range of versions pins the map: name (a template for per-endpoint maps), type, size.

    A template has one integer parameter, e.g. "cilium_policy_v2_{endpoint:05d}"."""

    def __init__(self, versions: str, name: str, map_type: str, max_entries: int):
        self.versions, self.name, self.map_type, self.max_entries = Range(versions), name, map_type, max_entries
        prefix, brace, rest = name.partition("{")
        self._prefix, self._param = prefix, rest.split(":", 1)[0].split("}", 1)[0] if brace else None

    def display(self) -> str:
        """The name as people write a template: cilium_policy_v2_<endpoint>."""
        return self.name if self._param is None else f"{self._prefix}<{self._param}>"

    def match(self, name: str) -> dict | None:
        """The parameters spelled in `name` ({} for a plain name), or None when `name` is not this pin's."""
        if self._param is None:
            return {} if name == self.name else None
        digits = name[len(self._prefix):]
        return {self._param: int(digits)} if name.startswith(self._prefix) and digits.isdigit() else None


class Decoded:
    """One decoded key or value. (Plain classes, not dataclasses: importing dataclasses costs start-up time.)"""

    def __init__(self, fields: dict, layout: Layout, raw: dict, versions: list[Range], rows: list, reason: str):
        self.fields = fields  # what users read: {"prefix": "10.0.1.110/32", …}
        self.layout = layout
        self.raw = raw  # C member -> raw value
        self.versions = versions  # the version ranges whose layout reads these bytes this way
        self.rows = rows  # (offset, size, member, shown value) for tables and annotated hex
        self.reason = reason  # why this layout was chosen (shown with -v)


def _empty(value, unset=None) -> bool:
    return value in (0, None, [], "", False) or (unset is not None and value == unset)


class CiliumMap(ABC):
    short: str = ""
    aliases: tuple[str, ...] = ()
    summary: str = ""
    pins: list[Pin] = []
    keys: list[tuple[Range, Layout]] = []
    values: list[tuple[Range, Layout]] = []
    absent_hint: str = ""  # what to do instead in versions without this map (said in the error)
    # What fields name, for enrichment (tshoot.cluster.enrich.KINDS): {"identity": "identity",
    # "tunnel_endpoint": "node_address", …}. tests/test_map_names.py checks every name is a field of the map.
    field_kinds: dict[str, str] = {}
    # Field values that mean "nothing set" besides 0/None/[]/False (a backend's state "active" is byte 0),
    # so that a field only newer layouts have does not make equal bytes look ambiguous.
    unset_values: dict = {}
    # A per-CPU map (cilium_metrics): the kernel answers a lookup with one value per possible CPU, each rounded
    # up to 8 bytes, and bpftool prints them all; fold_cpus sums them into the one value users read.
    per_cpu: bool = False
    # Members holding codes whose names change between versions (a metrics reason): a dump without a version
    # checks each of their values for layouts that name it differently (tshoot.mapio.bulk.LayoutChoice).
    coded_members: tuple[str, ...] = ()
    # Which of "key" and "value" fields_many reads by columns (the others are read entry by entry, equal values
    # once: tshoot.mapio.bulk.BulkDecoder).
    columns: tuple[str, ...] = ()

    # --- names -------------------------------------------------------------------------------
    def pin(self, version: Version) -> Pin:
        for pin in self.pins:
            if version in pin.versions:
                return pin
        raise Absent(self._absent(version))

    def pinned_name(self, version: Version, **params) -> str:
        return self.pin(version).name.format(**params)

    def match_pinned(self, name: str) -> dict | None:
        """Parameters hidden in a pinned name ({} for a plain name), or None if it is not this map's."""
        for pin in self.pins:
            params = pin.match(name)
            if params is not None:
                return params
        return None

    def pinned_versions(self, name: str) -> Range | None:
        """The versions that pin a map under `name` (None for a short name such as "ipcache")."""
        ranges = [p.versions for p in self.pins if p.match(name) is not None]
        return Range(" ".join(r.spec for r in ranges)) if ranges else None

    def default_version(self, name: str) -> Version:
        """The version to assume when none is given: the newest known for a short name, the newest that
        pins `name` for a pinned name (cilium_lb4_backends -> 1.10)."""
        pins = [p for p in self.pins if p.match(name) is not None]
        return min(NEWEST_KNOWN, max(newest(p.versions) for p in pins)) if pins else NEWEST_KNOWN

    def check_name(self, name: str, version: Version) -> None:
        """Refuse a pinned name the given version does not use (cilium_policy_02006 on 1.19)."""
        params = self.match_pinned(name)
        if params is None or name == self.pinned_name(version, **params):
            return
        used = ", ".join(p.versions.label() for p in self.pins if p.match(name) is not None)
        raise UsageError(f"{name} is the name Cilium {used} pins; Cilium {show(version)} pins "
                         f"{self.pinned_name(version, **params)} (give the name or --cilium-version the node runs)")

    def catalog_entry(self, version: Version) -> dict | None:
        """What `tshoot maps` lists for this map in `version`, or None when the version has no such map."""
        pin = next((p for p in self.pins if version in p.versions), None)
        if pin is None:
            return None
        return {"map": self.short, "pinned_name": pin.display(), "type": pin.map_type,
                "key_size": self.layout_for("key", version).size, "value_size": self.layout_for("value", version).size,
                "max_entries": pin.max_entries, "summary": self.summary}

    def _absent(self, version: Version) -> str:
        known = "; ".join(f"{p.name} in {p.versions.label()}" for p in self.pins)
        hint = f": {self.absent_hint}" if self.absent_hint else ""
        return f"Cilium {show(version)} has no {self.short} map ({known}){hint}"

    def fold_cpus(self, data: bytes) -> bytes:
        """A per-CPU map's value -> one value whose integer members are the sums over CPUs (what Cilium's CLI
        prints), each sum wrapping at its member's width as the counter would. `data` of a single value's size
        is returned as it is; every value layout of a per-CPU map has the same size."""
        layout = self.values[0][1]
        if len(data) == layout.size:
            return data
        stride = (layout.size + 7) // 8 * 8
        if len(data) % stride:
            raise UsageError(f"{self.short} values are {layout.size} bytes per CPU (stride {stride}); "
                             f"got {len(data)} bytes, not a whole number of CPUs")
        cpus = [layout.unpack(data[i : i + layout.size]) for i in range(0, len(data), stride)]
        summed = {f.name: sum(cpu[f.name] for cpu in cpus) % (1 << (8 * f.size)) if f.kind == U else cpus[0][f.name]
                  for f in layout.fields}
        return layout.pack(summed)

    # --- keys from what users give -------------------------------------------------------------
    @abstractmethod
    def add_key_arguments(self, parser) -> None:
        """Declare this map's key fields for a command line (`tshoot key <map>`, `map lookup`), through
        argparse's add_argument; each argument's dest is the name of a keyword argument of `key()`."""

    @abstractmethod
    def key(self, version: Version, **fields) -> dict:
        """Semantic key fields from typed keyword arguments (validated for `version`); a wrong value raises
        tshoot.core.errors.FieldError naming the keyword argument."""

    def datapath_keys(self, fields: dict, version: Version | None) -> list[dict]:
        """The keys the datapath asks, in order, for what `fields` describes; the first entry found decides.
        One key for most maps (an LPM trie answers it with its longest covering prefix). `version` None:
        the newest layouts' way."""
        return [fields]

    # --- semantic <-> raw, per layout ---------------------------------------------------------
    @abstractmethod
    def key_fields(self, raw: dict, layout: Layout) -> dict:
        """See the module docstring."""

    @abstractmethod
    def value_fields(self, raw: dict, layout: Layout) -> dict:
        """See the module docstring."""

    @abstractmethod
    def key_raw(self, fields: dict, layout: Layout) -> dict:
        """See the module docstring."""

    @abstractmethod
    def value_raw(self, fields: dict, layout: Layout) -> dict:
        """See the module docstring."""

    def unused_members(self, raw: dict, layout: Layout) -> set[str]:
        """Union members that do not apply to these bytes (an ip6 member when the family is IPv4)."""
        return set()

    def shown_members(self, raw: dict, layout: Layout) -> dict[str, str]:
        """How to show members that pack several values (member -> text) in annotated bytes; the rest show
        their number."""
        return {}

    def value_role(self, key_fields: dict) -> str | None:
        """The role a key gives its value, in maps whose value members mean different things by role (a
        Service frontend's first word is not a backend id); None in the others. A map with roles takes
        `role=` in value_fields and unused_members (None there: the role the value's own bytes tell)."""
        return None

    def _by_role(self, role: str | None) -> dict:
        return {} if role is None else {"role": role}

    def converter(self, which: str, role: str | None = None):
        """raw members -> fields for keys or values (values in `role`, when the map has roles)."""
        if which == "key":
            return self.key_fields
        if role is None:
            return self.value_fields
        return lambda raw, layout: self.value_fields(raw, layout, role=role)

    def fields_many(self, which: str, layout: Layout, data: bytes) -> list[dict] | None:
        """The fields of every entry in `data` (entries of `layout.size` bytes back to back) in one pass, as
        key_fields/value_fields would give them one by one; None lets tshoot.mapio.bulk do it entry by entry.

        A map whose dumps run to 100k entries (the ipcache) or 512k (conntrack keys) reads its few members by
        columns here (`columns` says which)."""
        return None

    # --- layout choice ----------------------------------------------------------------------------
    def layout_for(self, which: str, version: Version) -> Layout:
        for versions, layout in self._table(which):
            if version in versions:
                return layout
        raise Absent(self._absent(version))

    def layout_from_btf(self, which: str, btf: BTFStruct) -> tuple[Layout, list[Range], str] | None:
        """The layout a map's BTF type describes (same struct name, size and member positions), with
        the versions that use it and the reason; None when no layout matches."""
        table = self._table(which)
        for versions, layout in table:
            if layout.c_name == btf.name and layout.size == btf.size and layout.bit_positions() == btf.members:
                used = [v for v, lay in table if lay is layout]
                return layout, used, (f"the map's BTF describes {which} type {btf.name} ({btf.size} bytes, "
                                      f"{len(btf.members)} members) exactly as Cilium "
                                      f"{', '.join(v.label() for v in used)} lay it out")
        return None

    def encode(self, which: str, fields: dict, version: Version) -> bytes:
        layout = self.layout_for(which, version)
        convert = self.key_raw if which == "key" else self.value_raw
        return layout.pack(convert(fields, layout))

    def decode(self, which: str, data: bytes, version: Version | None = None,
               btf: BTFStruct | None = None, within: Range | None = None, role: str | None = None) -> Decoded:
        """Decode a key or value; the layout comes from `btf`, else `version`, else the size (module docstring)
        among the layouts of the versions `within` (those that pin the map under the name given, say).
        `role`: the value's role as its key tells it (value_role), for maps that have roles."""
        note = ""
        if btf is not None:
            found = self.layout_from_btf(which, btf)
            if found is not None:
                layout, versions, reason = found
                if layout.size != len(data):
                    raise UsageError(f"the map's BTF says {which}s are {layout.size} bytes, got {len(data)}")
                return self._decoded(which, layout, data, versions, reason, role)
            note = f"the map's BTF {which} type {btf.name} ({btf.size} bytes) matches no layout tshoot knows, so "
        decoded = self._decode_by_version(which, data, version, role) if version else \
            self._decode_by_size(which, data, within, role)
        decoded.reason = note + decoded.reason
        return decoded

    def _decode_by_version(self, which: str, data: bytes, version: Version, role: str | None = None) -> Decoded:
        table = self._table(which)
        layout = self.layout_for(which, version)
        if layout.size != len(data):
            fits = "; ".join(f"Cilium {v.label()}" for v, lay in table if lay.size == len(data)) or "no known version"
            raise UsageError(
                f"{self.short} {which} of Cilium {show(version)} is {layout.size} bytes, got {len(data)} "
                f"({len(data)} bytes fits {fits})"
            )
        versions = [v for v, lay in table if lay is layout]
        return self._decoded(which, layout, data, versions, f"Cilium {show(version)} uses {layout.c_type}", role)

    def _decode_by_size(self, which: str, data: bytes, within: Range | None = None, role: str | None = None) -> Decoded:
        table = self._table(which)
        if within is not None:
            table = [(narrowed, layout) for versions, layout in table
                     if (narrowed := versions.intersect(within)) is not None]
        convert = self.converter(which, role)
        fitting = [(v, layout) for v, layout in table if layout.size == len(data)]
        if not fitting:
            sizes = ", ".join(sorted({f"{lay.size}" for _, lay in table}, key=int))
            among = f"Cilium {within.label()}" if within is not None else "Cilium 1.9-1.19"
            raise UsageError(f"no {self.short} {which} layout is {len(data)} bytes ({among} use {sizes} bytes)")
        # Several versions may share one layout object; decode each distinct layout once.
        distinct: dict[int, tuple[Layout, list[Range]]] = {}
        for versions, layout in fitting:
            distinct.setdefault(id(layout), (layout, []))[1].append(versions)
        readings = [(layout, vs, convert(layout.unpack(data), layout)) for layout, vs in distinct.values()]
        first = readings[0][2]
        for layout, vs, fields in readings[1:]:
            for name in set(first) | set(fields):
                a, b = first.get(name), fields.get(name)
                unset = self.unset_values.get(name)
                if a != b and not (name not in first and _empty(b, unset)) and not (name not in fields and _empty(a, unset)):
                    choices = " or ".join(f"Cilium {', '.join(v.label() for v in vv)}" for _, vv, _ in readings)
                    raise UsageError(
                        f"these {len(data)} bytes read differently as {choices} ({name}: {a} vs {b}); "
                        f"pass --cilium-version"
                    )
        layout, _, _ = min(readings, key=lambda r: len(r[2]))
        all_versions = [v for _, vs, _ in readings for v in vs]
        reason = (
            f"no version given; {len(data)}-byte {which}s fit Cilium "
            f"{', '.join(v.label() for v in all_versions)}, and every layout of that size reads these bytes alike"
        )
        return self._decoded(which, layout, data, all_versions, reason, role)

    def _decoded(self, which: str, layout: Layout, data: bytes, versions, reason: str,
                 role: str | None = None) -> Decoded:
        convert = self.converter(which, role)
        raw = layout.unpack(data)
        unused = self.unused_members(raw, layout, **self._by_role(role))
        shown = self.shown_members(raw, layout)
        rows = [
            (f.offset, f.size, f.name + (f" (bits {f.bits[0]}-{f.bits[0] + f.bits[1] - 1})" if f.bits else ""),
             shown.get(f.name) or f.show(raw[f.name]))
            for f in layout.fields
            if f.name not in unused
        ]
        return Decoded(convert(raw, layout), layout, raw, versions, rows, reason)

    def _table(self, which: str) -> list[tuple[Range, Layout]]:
        if which not in ("key", "value"):
            raise ValueError(which)
        return self.keys if which == "key" else self.values
