"""Real pinned maps for the map tests: Cilium's geometry, filled through bpftool (batch mode: one process
for any number of entries)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.conftest import bpftool
from tshoot.maps.base import CiliumMap
from tshoot.core.version import Version

LPM_NO_PREALLOC = 1  # BPF_F_NO_PREALLOC: the kernel requires it for LPM tries (Cilium sets it too)


def create(bpffs: Path, name: str, map_type: str, key_size: int, value_size: int, max_entries: int = 1024) -> Path:
    path = bpffs / "tc" / "globals" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = LPM_NO_PREALLOC if map_type == "lpm_trie" else 0
    bpftool("map", "create", str(path), "type", map_type, "key", str(key_size), "value", str(value_size),
            "entries", str(max_entries), "name", name[:15], "flags", str(flags))
    return path


def create_for(bpffs: Path, cmap: CiliumMap, version: Version, max_entries: int = 1024, **params) -> Path:
    """The map as Cilium `version` pins it: its name, type, key and value sizes."""
    pin = cmap.pin(version)
    return create(bpffs, pin.name.format(**params), pin.map_type, cmap.layout_for("key", version).size,
                  cmap.layout_for("value", version).size, max_entries)


def fill(path: Path, entries) -> None:
    """Insert (key bytes, value bytes) pairs."""
    with tempfile.NamedTemporaryFile("w", suffix=".batch") as batch:
        for key, value in entries:
            batch.write(f"map update pinned {path} key hex {key.hex(' ')} value hex {value.hex(' ')}\n")
        batch.flush()
        bpftool("batch", "file", batch.name)


def oracle_maps(bpffs: Path, tmp_path: Path, version: str = "11600") -> Path:
    """The maps of kindlab's C oracle (bpf/oracle/cilium_maps.bpf.c: Cilium's structs, with BTF) as Cilium
    `version` (e.g. 11600 for 1.16) declares them, loaded and pinned: the directory of their pins (ipcache,
    ct4, metrics…)."""
    import shutil

    import pytest

    from tests.bpfobj import BPF_DIR, compile_bpf

    if shutil.which("clang") is None:
        pytest.skip("maps with BTF come from kindlab's C oracle, compiled with clang (scripts/install-test-deps)")
    obj = compile_bpf(BPF_DIR / "oracle" / "cilium_maps.bpf.c", tmp_path / "oracle.o", {"CILIUM_VERSION": version})
    bpftool("prog", "loadall", str(obj), str(bpffs / "oracle"), "pinmaps", str(bpffs / "oracle-maps"))
    return bpffs / "oracle-maps"
