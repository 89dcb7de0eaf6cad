"""What every Cilium map module provides, and the layout choice they share.

A map module (ipcache.py, lxc.py, …) is the Python twin of Cilium's pkg/maps/<map>: its pinned names
per version, its key and value layouts per version, how a key is built from what a user types,
and how raw members become the fields users read. Layout choice lives here, once:

* a version given (or detected from the agent image) picks the layout valid for it;
* without a version, every layout of the right size is tried, and if they all read the bytes the same
  way (fields only some layouts have are zero), the oldest is used; otherwise the user is asked.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod

from ..errors import UsageError
from ..layout import Layout
from ..version import Range, Version, show


class Pin:
    """How a range of versions pins the map: name (a template for per-endpoint maps), type, size."""

    def __init__(self, versions: str, name: str, map_type: str, max_entries: int):
        self.versions, self.name, self.map_type, self.max_entries = Range(versions), name, map_type, max_entries


class Decoded:
    """One decoded key or value. (Plain classes, not dataclasses: importing dataclasses costs start-up time.)"""

    def __init__(self, fields: dict, layout: Layout, raw: dict, versions: list[Range], rows: list, reason: str):
        self.fields = fields  # what users read: {"prefix": "10.0.1.110/32", …}
        self.layout = layout
        self.raw = raw  # C member -> raw value
        self.versions = versions  # the version ranges whose layout reads these bytes this way
        self.rows = rows  # (offset, size, member, shown value) for tables and annotated hex
        self.reason = reason  # why this layout was chosen (shown with -v)


def _empty(value) -> bool:
    return value in (0, None, [], "", False)


class CiliumMap(ABC):
    short: str = ""
    aliases: tuple[str, ...] = ()
    summary: str = ""
    pins: list[Pin] = []
    keys: list[tuple[Range, Layout]] = []
    values: list[tuple[Range, Layout]] = []

    # --- names -------------------------------------------------------------------------------
    def pin(self, version: Version) -> Pin:
        for pin in self.pins:
            if version in pin.versions:
                return pin
        known = "; ".join(f"{p.name} in {p.versions.label()}" for p in self.pins)
        raise UsageError(f"Cilium {show(version)} has no {self.short} map ({known})")

    def pinned_name(self, version: Version, **params) -> str:
        return self.pin(version).name.format(**params)

    def match_pinned(self, name: str) -> dict | None:
        """Parameters hidden in a pinned name ({} for a plain name), or None if it is not this map's."""
        return {} if any(p.name == name for p in self.pins) else None

    # --- keys from the command line ---------------------------------------------------------
    @abstractmethod
    def add_key_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this map's key arguments (an address, a port, --slot …) to `tshoot key <map>`."""

    @abstractmethod
    def key_from_args(self, args: argparse.Namespace, version: Version) -> dict:
        """Semantic key fields from parsed arguments (validated for `version`)."""

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

    # --- layout choice ----------------------------------------------------------------------------
    def layout_for(self, which: str, version: Version) -> Layout:
        for versions, layout in self._table(which):
            if version in versions:
                return layout
        raise UsageError(f"Cilium {show(version)} has no {self.short} map")

    def encode(self, which: str, fields: dict, version: Version) -> bytes:
        layout = self.layout_for(which, version)
        convert = self.key_raw if which == "key" else self.value_raw
        return layout.pack(convert(fields, layout))

    def decode(self, which: str, data: bytes, version: Version | None = None) -> Decoded:
        table = self._table(which)
        convert = self.key_fields if which == "key" else self.value_fields
        fitting = [(v, layout) for v, layout in table if layout.size == len(data)]
        if version is not None:
            layout = self.layout_for(which, version)
            if layout.size != len(data):
                fits = "; ".join(f"Cilium {v.label()}" for v, _ in fitting) or "no known version"
                raise UsageError(
                    f"{self.short} {which} of Cilium {show(version)} is {layout.size} bytes, got {len(data)} "
                    f"({len(data)} bytes fits {fits})"
                )
            versions = [v for v, lay in table if lay is layout]
            return self._decoded(layout, data, versions, convert, f"Cilium {show(version)} uses struct {layout.c_name}")
        if not fitting:
            sizes = ", ".join(sorted({f"{lay.size}" for _, lay in table}, key=int))
            raise UsageError(f"no {self.short} {which} layout is {len(data)} bytes (Cilium 1.9-1.19 use {sizes} bytes)")
        # Several versions may share one layout object; decode each distinct layout once.
        distinct: dict[int, tuple[Layout, list[Range]]] = {}
        for versions, layout in fitting:
            distinct.setdefault(id(layout), (layout, []))[1].append(versions)
        readings = [(layout, vs, convert(layout.unpack(data), layout)) for layout, vs in distinct.values()]
        first = readings[0][2]
        for layout, vs, fields in readings[1:]:
            for name in set(first) | set(fields):
                a, b = first.get(name), fields.get(name)
                if a != b and not (name not in first and _empty(b)) and not (name not in fields and _empty(a)):
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
        return self._decoded(layout, data, all_versions, convert, reason)

    def _decoded(self, layout: Layout, data: bytes, versions, convert, reason: str) -> Decoded:
        raw = layout.unpack(data)
        unused = self.unused_members(raw, layout)
        rows = [
            (f.offset, f.size, f.name + (f" (bits {f.bits[0]}-{f.bits[0] + f.bits[1] - 1})" if f.bits else ""),
             f.show(raw[f.name]))
            for f in layout.fields
            if f.name not in unused
        ]
        return Decoded(convert(raw, layout), layout, raw, versions, rows, reason)

    def _table(self, which: str) -> list[tuple[Range, Layout]]:
        if which not in ("key", "value"):
            raise ValueError(which)
        return self.keys if which == "key" else self.values
