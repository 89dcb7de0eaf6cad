"""Output: annotated hex for one key or value, table cells, JSON and YAML. Heavy modules are imported lazily.

One convention for `-o json|yaml` in every command of `tshoot` and `lab`:
* JSON indented by 2, non-ASCII as is; YAML in block style, never wrapped (a label stays on one line);
* keys in the order the model gives them (a map entry's key before its value, an id before its labels),
  except API objects, printed as kubectl prints custom resources (keys sorted: what the guide shows);
* one node answering: its object; several nodes: a list of objects, each with its "node";
* the same thing has the same name everywhere: "node" is a node's name, "identity" a numeric identity,
  "labels" its labels.
A map dump (up to 512k entries) is the same JSON list with one entry per line (tshoot.cli.mapview).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tshoot.maps.base import Decoded

_TAGS = "abcdefghijklmnopqrstuvwxyz"


def annotated(which: str, data: bytes, decoded: Decoded, color: bool = False) -> str:
    """The bytes grouped by C member, a tag under each group, then one line per member.

        key: struct ipcache_key, 24 bytes
          40 00 00 00  00 00  00  01  0a 00 01 6e  00 00 00 00  …
          a            b      c   d   e            f
          a  0-3    lpm_key.prefixlen  40 00 00 00  64
    """
    segments = _segments(decoded.rows, len(data))
    hex_parts, tag_parts, lines = [], [], []
    for index, (offset, size, names_values) in enumerate(segments):
        tag = _TAGS[index % len(_TAGS)]
        chunk = data[offset : offset + size].hex(" ")
        hex_parts.append(_paint(chunk, index, color))
        tag_parts.append(_paint(tag.ljust(len(chunk)), index, color))
        span = f"{offset}" if size == 1 else f"{offset}-{offset + size - 1}"
        for n, (name, value) in enumerate(names_values):
            lines.append((tag if n == 0 else "", span if n == 0 else "", name, chunk if n == 0 else "", value))
    width_name = max(len(line[2]) for line in lines)
    width_hex = min(max(len(line[3]) for line in lines), 24)
    out = [f"{which}: {decoded.layout.c_type}, {len(data)} bytes",
           "  " + "  ".join(hex_parts), "  " + "  ".join(tag_parts).rstrip()]
    for tag, span, name, chunk, value in lines:
        if len(chunk) > width_hex:
            chunk = chunk[: width_hex - 1] + "…"
        out.append(f"  {_paint(tag, _TAGS.index(tag), color) if tag else ' '}  {span:<6} {name:<{width_name}}  "
                   f"{chunk:<{width_hex}}  {value}")
    return "\n".join(out)


def _segments(rows, size: int) -> list[tuple[int, int, list[tuple[str, str]]]]:
    """Group members by the bytes they occupy (bitfields share bytes) and add implicit padding."""
    by_span: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for offset, length, name, value in rows:
        by_span.setdefault((offset, length), []).append((name, value))
    segments, cursor = [], 0
    for (offset, length), members in sorted(by_span.items()):
        if offset > cursor:
            segments.append((cursor, offset - cursor, [("(padding)", "")]))
        if offset >= cursor:
            segments.append((offset, length, members))
            cursor = offset + length
    if cursor < size:
        segments.append((cursor, size - cursor, [("(padding)", "")]))
    return segments


_COLORS = ("36", "33", "32", "35", "34", "31")


def _paint(text: str, index: int, color: bool) -> str:
    return f"\x1b[{_COLORS[index % len(_COLORS)]}m{text}\x1b[0m" if color else text


def fields_line(fields: dict) -> str:
    return "  means: " + ", ".join(f"{k}={cell(v)}" for k, v in fields.items())


def cell(value) -> str:
    """A value as every table shows it: lists comma-joined, nothing as "-"."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "-"
    return "-" if value is None or value == "" else str(value)


def table(headers: list[str], rows: list[list[str]], gap: int = 2, right: tuple[str, ...] = ()) -> str:
    """Aligned columns, as kubectl prints them: never wrapped (a pipe gets whole values), a multi-line cell
    continuing on the lines below, the columns named in `right` (numbers) right-aligned. Plain text: rich's
    table layout takes seconds for the thousands of rows of a big cluster or map."""
    cells = _split(rows)
    widths = _widths(headers, cells)
    return "\n".join([_line(headers, headers, widths, gap, right)] + _body(headers, cells, widths, gap, right))


def _split(rows: list[list[str]]) -> list[list[list[str]]]:
    return [[str(c).split("\n") for c in row] for row in rows]


def _widths(headers: list[str], cells: list[list[list[str]]]) -> list[int]:
    return [max([len(h)] + [len(line) for row in cells for line in row[i]]) for i, h in enumerate(headers)]


def _line(headers: list[str], parts: list[str], widths: list[int], gap: int, right: tuple[str, ...]) -> str:
    return (" " * gap).join((str.rjust if h in right else str.ljust)(p, w)
                            for h, p, w in zip(headers, parts, widths)).rstrip()


def _body(headers, cells, widths, gap, right) -> list[str]:
    out = []
    for row in cells:
        for index in range(max((len(cell) for cell in row), default=1)):
            out.append(_line(headers, [cell[index] if index < len(cell) else "" for cell in row], widths, gap, right))
    return out


def print_table(headers: list[str], rows: list[list[str]], gap: int = 2, right: tuple[str, ...] = ()) -> None:
    """table() on stdout, its header bold on a terminal."""
    head, _, body = table(headers, rows, gap, right).partition("\n")
    sys.stdout.write((f"\x1b[1m{head}\x1b[0m" if use_color() else head) + "\n" + (body + "\n" if body else ""))


class StreamedTable:
    """A table printed as its rows come (nodes answering one after the other): the header with the first rows,
    every row aligned on the widths of the header and those first rows; a later, wider cell pushes the rest of
    its line right rather than holding every row back until the slowest node answers (kubectl get --watch
    prints alike)."""

    def __init__(self, headers: list[str], gap: int = 2, right: tuple[str, ...] = ()):
        self.headers, self.gap, self.right = headers, gap, right
        self.widths: list[int] | None = None

    def write(self, rows: list[list[str]]) -> None:
        if not rows:
            return
        cells = _split(rows)
        out = []
        if self.widths is None:
            self.widths = _widths(self.headers, cells)
            head = _line(self.headers, self.headers, self.widths, self.gap, self.right)
            out.append(f"\x1b[1m{head}\x1b[0m" if use_color() else head)
        out += _body(self.headers, cells, self.widths, self.gap, self.right)
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()


def use_color(stream=None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    import os

    stream = stream or sys.stdout
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def dump(obj, fmt: str, api_objects: bool = False) -> str:
    """obj as JSON or YAML, by the convention above (api_objects: keys sorted, as kubectl prints them)."""
    if fmt == "json":
        import json

        return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=api_objects)
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(obj, sort_keys=api_objects, default_flow_style=False, allow_unicode=True,
                              width=1 << 16).rstrip()
    raise ValueError(fmt)


def compact_json(obj) -> str:
    """JSON without spaces: bpftool -j's own layout (`--raw -o json`)."""
    import json

    return json.dumps(obj, separators=(",", ":"))
