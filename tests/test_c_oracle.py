"""The C compiler as the oracle: tshoot's Python layouts against kindlab's own C declarations.

bpf/oracle/cilium_maps.bpf.c declares every map tshoot decodes with BTF-typed keys and values, its
structs taken from bpf/include/kindlab/ (one header per layout era, written from the layout reference,
not from the Python). It is compiled once per Cilium version of interest (every version boundary and
the patch just before it) and loaded into a private bpffs. Then, per version:

* every key and value type's name, sizeof and member offsets (bitfields to the bit) read from BTF
  equal the Python Layout that version uses, and tshoot's BTF-based layout choice picks that layout;
* the kernel's map type and key/value sizes equal what tshoot says the version pins;
* entries encoded by tshoot from random semantic fields (hypothesis) are written into the real maps,
  and bpftool's BTF-formatted dump agrees with tshoot's decoding member by member (and, for fields
  that name a C member, the decoded value equals bpftool's reading in that member's byte order).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bpfobj import BPF_DIR, compile_bpf
from tests.conftest import bpftool, need_root
from tests.strategies import STRATEGIES
from tshoot.core.btf import describe, parse_types
from tshoot.core.layout import BE, U
from tshoot.maps import MAPS, metrics
from tshoot.maps.lbservices import AFFINITY_TIMEOUT_MASK, LB_ALGORITHM_SHIFT, LB_ALGORITHMS
from tshoot.core.version import Version

ORACLE = BPF_DIR / "oracle" / "cilium_maps.bpf.c"

# Every boundary of the layout reference's §2 cheat sheet, the last patch before each one inside a
# minor line, and the guide's versions (tkng's 1.10.3, the newest known 1.19.4). The test adds the
# first version of every range the Python tables use, so a boundary either side puts elsewhere shows.
REFERENCE_VERSIONS = [
    (1, 9, 0), (1, 9, 1), (1, 10, 3), (1, 11, 0), (1, 11, 13), (1, 11, 14), (1, 11, 19), (1, 11, 20),
    (1, 12, 0), (1, 12, 7), (1, 12, 8), (1, 12, 12), (1, 12, 13), (1, 13, 0), (1, 13, 5), (1, 13, 6),
    (1, 14, 0), (1, 14, 1), (1, 15, 0), (1, 16, 0), (1, 16, 3), (1, 16, 4), (1, 17, 0), (1, 18, 0),
    (1, 18, 1), (1, 18, 2), (1, 19, 0), (1, 19, 4),
]


def _python_boundaries() -> set[Version]:
    lows = set()
    for cmap in MAPS:
        for versions in [p.versions for p in cmap.pins] + [v for v, _ in cmap.keys] + [v for v, _ in cmap.values]:
            lows |= {low for low, _ in versions.intervals}
    return lows


VERSIONS = sorted(set(REFERENCE_VERSIONS) | _python_boundaries())


def label(version: Version) -> str:
    return ".".join(map(str, version))


def present(cmap, version: Version) -> bool:
    return any(version in pin.versions for pin in cmap.pins)


def var_name(cmap) -> str:
    return cmap.short.replace("-", "_")


class Loaded(dict):
    """{version: (BTF types, maps dir)}, with a short repr for hypothesis' failure reports."""

    def __repr__(self) -> str:
        return f"<oracle objects for {len(self)} Cilium versions>"


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    """Every version's object compiled and loaded into one private bpffs: {version: (BTF types, maps dir)}."""
    need_root()
    work = tmp_path_factory.mktemp("oracle")
    mnt = work / "bpffs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(mnt)], check=True)
    try:
        loaded = Loaded()
        for version in VERSIONS:
            name = f"v{label(version).replace('.', '_')}"
            obj = compile_bpf(ORACLE, work / f"{name}.o",
                              {"CILIUM_VERSION": str(version[0] * 10000 + version[1] * 100 + version[2])})
            types = parse_types(bpftool("-j", "btf", "dump", "file", str(obj)).stdout)
            (mnt / name).mkdir()
            bpftool("prog", "loadall", str(obj), str(mnt / name / "progs"), "pinmaps", str(mnt / name / "maps"))
            loaded[version] = (types, mnt / name / "maps")
        yield loaded
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def map_types(types: dict, name: str) -> tuple[int, int]:
    """The key and value type ids of the BTF-defined map variable `name` (its __type(key/value, …))."""
    var = next(t for t in types.values() if t["kind"] == "VAR" and t["name"] == name)
    members = {m["name"]: m["type_id"] for m in types[var["type_id"]]["members"]}
    return types[members["key"]]["type_id"], types[members["value"]]["type_id"]  # through the PTR


# --- sizes and offsets -------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=label)
def test_every_struct_matches_the_python_layout(oracle, version):
    types, maps_dir = oracle[version]
    declared = {t["name"] for t in types.values() if t["kind"] == "VAR" and t["name"] not in ("_license",)}
    expected = {var_name(cmap) for cmap in MAPS if present(cmap, version)}
    assert declared == expected, f"C declares {sorted(declared)}, tshoot says Cilium {label(version)} has {sorted(expected)}"
    for cmap in MAPS:
        if not present(cmap, version):
            continue
        for which, type_id in zip(("key", "value"), map_types(types, var_name(cmap))):
            btf = describe(types, type_id)
            layout = cmap.layout_for(which, version)
            where = f"{cmap.short} {which} at {label(version)}"
            assert (btf.name, btf.size) == (layout.c_name, layout.size), where
            assert btf.members == layout.bit_positions(), where
            chosen = cmap.layout_from_btf(which, btf)
            if which == "key" and cmap is metrics.MAP:
                # one struct, several releases' reason and file names: BTF cannot choose, the version does
                assert chosen is None, where
                continue
            assert chosen is not None and chosen[0] is layout, where
            assert cmap.decode(which, bytes(layout.size), btf=btf).reason == chosen[2]
        info = json.loads(bpftool("-j", "map", "show", "pinned", str(maps_dir / var_name(cmap))).stdout)
        pin = cmap.pin(version)
        assert (info["type"], info["bytes_key"], info["bytes_value"]) == (
            pin.map_type, cmap.layout_for("key", version).size, cmap.layout_for("value", version).size), cmap.short


# --- what bpftool reads in entries tshoot wrote ------------------------------------------------


def _eras() -> list:
    """One case per map and distinct (key layout, value layout) pair, at the first version that uses it."""
    cases = []
    for cmap in MAPS:
        seen = set()
        for version in VERSIONS:
            if present(cmap, version):
                pair = (id(cmap.layout_for("key", version)), id(cmap.layout_for("value", version)))
                if pair not in seen:
                    seen.add(pair)
                    cases.append(pytest.param(cmap, version, id=f"{cmap.short}-{label(version)}"))
    return cases


def flatten(node, prefix: str = "", out: dict | None = None) -> dict:
    """bpftool's formatted object (parsed keeping repeated keys) -> {member path: value}.

    Anonymous struct/union members print as "" and add nothing to the path."""
    out = {} if out is None else out
    if isinstance(node, list) and node and isinstance(node[0], tuple):
        for name, child in node:
            flatten(child, f"{prefix}.{name}" if prefix and name else prefix or name, out)
    else:
        out[prefix] = node
    return out


def members_seen_by_bpftool(layout, formatted) -> dict:
    flat = flatten(formatted)
    if layout.scalar:
        return {layout.fields[0].name: flat[""]}
    # union v6addr prints p1..p4, d1, d2 and addr[16]: the address is the byte array
    return {f.name: flat[f.name] if f.name in flat else flat[f.name + ".addr"] for f in layout.fields}


def _number(value) -> int:
    """bpftool prints integers as numbers and bitfields as hex strings ("0x1")."""
    return int(value, 0) if isinstance(value, str) else value


def _bytes(value, size: int) -> bytes:
    """A non-bitfield member as bytes: an integer (host order), or an array (__u8 addr[16], __u32 pad[4])."""
    if isinstance(value, list):
        return b"".join(_number(x).to_bytes(size // len(value), "little") for x in value)
    return _number(value).to_bytes(size, "little")


def check_members(layout, data: bytes, formatted, where: str) -> dict:
    """Each Python member read from `data` equals bpftool's reading of the C member; returns bpftool's values."""
    seen = members_seen_by_bpftool(layout, formatted)
    for f in layout.fields:
        value = seen[f.name]
        if f.bits:
            assert _number(value) == f.read(data), f"{where}: {f.name} (bits {f.bits})"
        else:
            got = _bytes(value, f.size)
            assert got == data[f.offset : f.end], f"{where}: {f.name} at {f.offset}-{f.end - 1}"
    return seen


# Decoded fields whose C member holds more than the value: the L7 proxy port is the u32 union member's
# low two bytes in network order (Go: uint32(HostToNetwork16(port)); reference §1, gotcha 2); from 1.17 a
# frontend's affinity_timeout member keeps the LB algorithm in its top byte (bpf/lib/lb.h LB_ALGORITHM_SHIFT).
DERIVED = {"l7_lb_proxy_port": lambda member, fields: int.from_bytes(member.to_bytes(4, "little")[:2], "big"),
           "affinity_timeout": lambda member, fields: member & AFFINITY_TIMEOUT_MASK if "lb_algorithm" in fields
           else member}


def check_semantics(layout, fields: dict, seen: dict, where: str) -> None:
    """Decoded integers named after a C member equal bpftool's integer, byte-swapped for network order."""
    for f in layout.fields:
        value = fields.get(f.name)
        if isinstance(value, bool) or not isinstance(value, int) or f.kind not in (U, BE):
            continue
        number = _number(seen[f.name])
        if f.kind == BE:
            number = int.from_bytes(number.to_bytes(f.size, "little"), "big")
        if f.name in DERIVED:
            number = DERIVED[f.name](number, fields)
        assert value == number, f"{where}: {f.name}"
    if "lb_algorithm" in fields:  # the top byte of the member bpftool reads, by name
        code = _number(seen["affinity_timeout"]) >> LB_ALGORITHM_SHIFT
        assert fields["lb_algorithm"] == LB_ALGORITHMS.get(code, str(code)), f"{where}: lb_algorithm"


def _batch(commands: list[str]) -> None:
    proc = subprocess.run(["bpftool", "batch", "file", "-"], input="\n".join(commands) + "\n",
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("cmap, version", _eras())
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_bpftool_reads_what_tshoot_writes(oracle, cmap, version, data):
    _, maps_dir = oracle[version]
    path = maps_dir / var_name(cmap)
    key_layout, value_layout = cmap.layout_for("key", version), cmap.layout_for("value", version)
    strategies = STRATEGIES[cmap.short]
    def entry(key_fields):  # a value in the role its key gives it (a Service frontend or backend slot, …)
        role = cmap.value_role(key_fields)
        value = strategies["value"](value_layout, **({"role": role} if role else {}))
        return value.map(lambda value_fields: (key_fields, value_fields))

    drawn = data.draw(st.lists(strategies["key"](key_layout).flatmap(entry), min_size=1, max_size=8))
    expected = {}
    for key_fields, value_fields in drawn:
        key = cmap.encode("key", key_fields, version)
        expected[key] = (cmap.encode("value", value_fields, version), key_fields, value_fields)
    _batch([f"map update pinned {path} key hex {k.hex(' ')} value hex {v.hex(' ')}" for k, (v, _, _) in expected.items()])
    try:
        dump = json.loads(bpftool("-j", "map", "dump", "pinned", str(path)).stdout,
                          object_pairs_hook=lambda pairs: pairs)
        entries = [dict(entry) for entry in dump]
        keys = [bytes(int(b, 16) for b in e["key"]) for e in entries]
        assert sorted(keys) == sorted(expected)
        for entry, key in zip(entries, keys):
            value, key_fields, value_fields = expected[key]
            formatted = dict(entry["formatted"])
            where = f"{cmap.short} at {label(version)}"
            if cmap.per_cpu:  # bpftool wrote the value to every CPU and prints each CPU's
                per_cpu = [dict(v) for v in entry["values"]]
                assert len(per_cpu) > 0 and all(bytes(int(b, 16) for b in v["value"]) == value for v in per_cpu)
                formatted_value = dict(formatted["values"][0])["value"]
            else:
                assert bytes(int(b, 16) for b in entry["value"]) == value
                formatted_value = formatted["value"]
            seen_key = check_members(key_layout, key, formatted["key"], f"{where} key")
            seen_value = check_members(value_layout, value, formatted_value, f"{where} value")
            decoded_key = cmap.decode("key", key, version).fields
            decoded_value = cmap.decode("value", value, version, role=cmap.value_role(decoded_key)).fields
            assert (decoded_key, decoded_value) == (key_fields, value_fields)
            check_semantics(key_layout, decoded_key, seen_key, f"{where} key")
            check_semantics(value_layout, decoded_value, seen_value, f"{where} value")
    finally:
        _batch([f"map delete pinned {path} key hex {k.hex(' ')}" for k in expected])
