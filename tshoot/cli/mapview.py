"""How `tshoot map` results look: tables of entries and maps, enrichment lines, and the JSON of a dump.

A dump can hold 100k entries: its JSON is encoded by orjson in one call per slice of entries (values and
their enrichment are shared objects, explained once), the slices rendered on every CPU (tshoot.mapio.forkmap),
one entry object per line.
"""

from __future__ import annotations

from tshoot.cli.render import cell, table
from tshoot.core.errors import TshootError
from tshoot.mapio.forkmap import render_slices
from tshoot.core.version import show


def dump_json(results, enricher, report) -> list:
    """The JSON list of every entry of every node's dump, in pieces to write one after the other with
    tshoot.mapio.forkmap.write_out (bytes, and spools of rendered entries). A node whose entries cannot be
    decoded is reported (report(node, message)) and left out, the others printed."""
    import orjson  # noqa: F401  (imported before render_slices forks: ~20 ms that no worker pays again)
    bodies = []
    for r in results:
        try:
            if r.limit is not None:  # few entries: decode only those
                slices = [_lines(r, enricher, r.keys, r.values)]
            else:
                slices = render_slices(r.total, lambda start, stop: _lines(r, enricher, *r.rows(start, stop)), b",\n")
        except TshootError as exc:
            report(r.node, str(exc))
            continue
        bodies += [s for s in slices if s]
    if not bodies:
        return [b"[]\n"]
    pieces = [b"[\n"]
    for body in bodies:
        pieces += [body, b",\n"]
    pieces[-1] = b"\n]\n"
    return pieces


def _lines(r, enricher, keys: list[dict], values: list[dict]) -> bytes:
    """Entry objects, comma-separated, one per line (no brackets)."""
    import orjson

    if not keys:
        return b""
    short, version, node = r.cmap.short, show(r.version) if r.version else None, r.node
    enriched = enricher.parts(node, values)
    key_parts = enricher.parts(node, keys)
    if any(key_parts):
        enriched = [{**k, **v} if k else v for k, v in zip(key_parts, enriched)]
    objs = [{"map": short, "cilium_version": version, "key": k, "value": v, "node": node, "enriched": e}
            for k, v, e in zip(keys, values, enriched)]
    # orjson writes no spaces: an entry starts exactly where '},{"map":' is (a string cannot hold an
    # unescaped quote, so the sequence never occurs inside one).
    return orjson.dumps(objs)[1:-1].replace(b'},{"map":', b'},\n{"map":')


def enriched_summary(enriched: dict) -> str:
    """{'identity': {'labels': [...]}, 'tunnel_endpoint': {'node': 'w2'}} -> 'identity k8s:…; tunnel_endpoint w2'."""
    parts = []
    for field, said in enriched.items():
        if "labels" in said:
            text = ",".join(said["labels"])
        elif "missing" in said:
            text = f"? {said['missing']}"
        else:
            text = " ".join(f"{k} {v}" if k not in ("name", "node", "interface") else str(v) for k, v in said.items())
        parts.append(f"{field}: {text}")
    return "; ".join(parts)


def enriched_lines(enriched: dict) -> list[str]:
    return [f"  {field}: {enriched_summary({field: said}).split(': ', 1)[1]}" for field, said in enriched.items()]


def entry_table(rows: list[tuple[str, dict, dict]], enricher, node_column: bool) -> str:
    """rows of (node, key fields, value fields) -> one table; key columns, value columns, what they are."""
    header, names = entry_columns(rows, node_column)
    return table(header, entry_cells(rows, enricher, node_column, names))


def entry_columns(rows: list[tuple[str, dict, dict]], node_column: bool) -> tuple[list[str], tuple[list, list]]:
    """(the header, (key field names, value field names)) of rows as entry_table shows them."""
    key_names = list(dict.fromkeys(name for _, k, _ in rows for name in k))
    value_names = list(dict.fromkeys(name for _, _, v in rows for name in v))
    header = (["NODE"] if node_column else []) + [n.upper() for n in key_names] + [n.upper() for n in value_names]
    return header + ["ENRICHED"], (key_names, value_names)


def entry_cells(rows: list[tuple[str, dict, dict]], enricher, node_column: bool, names: tuple[list, list]) -> list:
    key_names, value_names = names
    body = []
    for node, k, v in rows:
        cells = ([node] if node_column else []) + [cell(k.get(n)) for n in key_names] + [cell(v.get(n)) for n in value_names]
        body.append(cells + [enriched_summary(enricher.entry(node, k, v)) or "-"])
    return body


class StreamedEntries:
    """Entry rows of many nodes printed as each node answers (tshoot.cli.render.StreamedTable). The columns are
    the first answer's: every node reads the same map (a field that only a later node's layout has, during an
    upgrade across Cilium versions, is in -o json, not in the table)."""

    def __init__(self, enricher):
        self.enricher, self.names, self.out = enricher, None, None

    def write(self, rows: list[tuple[str, dict, dict]]) -> None:
        if not rows:
            return
        if self.out is None:
            from tshoot.cli.render import StreamedTable

            header, self.names = entry_columns(rows, node_column=True)
            self.out = StreamedTable(header)
        self.out.write(entry_cells(rows, self.enricher, True, self.names))


def list_rows(listings) -> list[dict]:
    rows = []
    for listing in listings:
        for info, layout in listing.maps:
            rows.append({"node": listing.node, **info.as_dict(), "layout": layout})
    return rows


def _layoutcell(layout: dict | None) -> str:
    if layout is None:
        return "- (not a map tshoot decodes)"
    if layout.get("problem"):
        return f"! {layout['problem']}"
    return f"{layout['key']}/{layout['value']} ({layout['by']})"


def list_table(listings, node_column: bool) -> str:
    header = (["NODE"] if node_column else []) + ["NAME", "TYPE", "KEY", "VALUE", "ENTRIES", "MAX", "LAYOUT", "PINNED"]
    body = []
    for listing in listings:
        for info, layout in listing.maps:
            body.append(([listing.node] if node_column else []) + [
                info.name, info.map_type, str(info.key_size), str(info.value_size),
                "-" if info.entries is None else str(info.entries), str(info.max_entries), _layoutcell(layout), info.path])
    return table(header, body)
