"""`tshoot maps`: the Cilium maps a version pins, with their names, types and sizes."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tshoot.core.command import Output, check_output, console


def maps(
    cilium_version: Annotated[Optional[str], typer.Option(
        "--cilium-version", metavar="X.Y[.Z]", help="the agent's version (its image tag); default: the newest known")] = None,
    output: Output = "table",
) -> None:
    """List the maps tshoot decodes as a Cilium version pins them: short name (what `tshoot key` and
    `tshoot decode` take), pinned name under /sys/fs/bpf/tc/globals, map type, key and value sizes
    in bytes, default max entries.

    Examples:

      tshoot maps --cilium-version 1.9.1

      tshoot maps --cilium-version 1.17 -o json
    """
    from tshoot.cli import render
    from tshoot.core import version as versions
    from tshoot.maps import MAPS

    fmt = check_output(output)
    version = versions.parse(cilium_version) if cilium_version else versions.NEWEST_KNOWN
    entries = [entry for entry in (cmap.catalog_entry(version) for cmap in MAPS) if entry]
    absent = [cmap.short for cmap in MAPS if cmap.catalog_entry(version) is None]
    if fmt != "table":
        typer.echo(render.dump({"cilium_version": versions.show(version), "maps": entries}, fmt))
        return
    from rich.table import Table

    table = Table(title=f"Cilium {versions.show(version)} maps", title_justify="left", box=None, pad_edge=False)
    for column, justify in (("MAP", "left"), ("PINNED NAME", "left"), ("TYPE", "left"), ("KEY", "right"),
                            ("VALUE", "right"), ("MAX ENTRIES", "right")):
        table.add_column(column, justify=justify, no_wrap=True)
    for e in entries:  # (the one-line summaries are in -o json/yaml and in 'tshoot key MAP --help')
        table.add_row(e["map"], e["pinned_name"], e["type"], str(e["key_size"]), str(e["value_size"]),
                      str(e["max_entries"]))
    out = console()
    out.print(table)
    if absent:
        out.print(f"not in Cilium {versions.show(version)}: {', '.join(absent)}")
