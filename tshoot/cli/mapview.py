"""How `tshoot map` results look: tables of entries and maps, enrichment lines, and the JSON of a dump.

A dump can hold 100k entries, so its JSON is written without building one object per entry: each key is
encoded in one call of the C encoder for all keys, each distinct value once, and the constant parts once.
The output is a JSON list with one entry object per line.
"""

from __future__ import annotations

import json

from ..version import show

_SEP = "\x1e"  # a record separator no decoded field contains; checked, with a slow path if one ever does
_SEP_JSON = ', "\\u001e", '


def encode_many(objs: list) -> list[str]:
    """json.dumps of each object, in one pass of the C encoder over all of them."""
    if not objs:
        return []
    text = json.dumps([x for obj in objs for x in (obj, _SEP)], check_circular=False)
    parts = text[1 : -len(', "\\u001e"]')].split(_SEP_JSON)
    if len(parts) != len(objs):  # a field held the separator itself
        return [json.dumps(obj) for obj in objs]
    return parts


def dump_json(results, enricher):
    """Chunks of the JSON list of every entry of every node's dump."""
    yield "["
    first = True
    for r in results:
        if not r.keys:
            continue
        head = (f'{{"map": {json.dumps(r.cmap.short)}, "cilium_version": '
                f'{json.dumps(show(r.version) if r.version else None)}, "key": ')
        node = json.dumps(r.node)
        keys = encode_many(r.keys)
        key_parts = [enricher.key_part(r.node, k) for k in r.keys]
        key_parts_json = encode_many(key_parts) if any(key_parts) else None
        value_json: dict[int, tuple[str, str, dict]] = {}
        lines = []
        for i, value in enumerate(r.values):
            cached = value_json.get(id(value))
            if cached is None:
                part = enricher.value_part(r.node, value)
                cached = value_json[id(value)] = (json.dumps(value), json.dumps(part), part)
            vj, ej, part = cached
            if key_parts_json is not None and key_parts[i]:
                ej = key_parts_json[i] if not part else json.dumps({**key_parts[i], **part})
            lines.append(f'{head}{keys[i]}, "value": {vj}, "node": {node}, "enriched": {ej}}}')
        yield ("\n" if first else ",\n") + ",\n".join(lines)
        first = False
    yield "\n]\n" if not first else "]\n"


def _cell(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    return "-" if value is None else str(value)


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


def table(header: list[str], rows: list[list[str]]) -> str:
    """Plain aligned columns (a 100k-row dump must print in a blink; rich tables do not)."""
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) if rows else len(header[i]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def entry_table(rows: list[tuple[str, dict, dict]], enricher, node_column: bool) -> str:
    """rows of (node, key fields, value fields) -> one table; key columns, value columns, what they are."""
    key_names = list(dict.fromkeys(name for _, k, _ in rows for name in k))
    value_names = list(dict.fromkeys(name for _, _, v in rows for name in v))
    header = (["NODE"] if node_column else []) + [n.upper() for n in key_names] + [n.upper() for n in value_names] + ["ENRICHED"]
    body = []
    for node, k, v in rows:
        cells = ([node] if node_column else []) + [_cell(k.get(n)) for n in key_names] + [_cell(v.get(n)) for n in value_names]
        body.append(cells + [enriched_summary(enricher.entry(node, k, v)) or "-"])
    return table(header, body)


def list_rows(listings) -> list[dict]:
    rows = []
    for listing in listings:
        for info, layout in listing.maps:
            rows.append({"node": listing.node, **info.as_dict(), "layout": layout})
    return rows


def _layout_cell(layout: dict | None) -> str:
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
                "-" if info.entries is None else str(info.entries), str(info.max_entries), _layout_cell(layout), info.path])
    return table(header, body)
