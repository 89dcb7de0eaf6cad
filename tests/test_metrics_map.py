"""cilium_metrics: a real per-CPU hash in a private bpffs, each CPU counting differently, read as Cilium's CLI
reads it (summed over CPUs), with each version's names for reasons, directions and source files.

The expected names are written here from Cilium's sources, not taken from tshoot's tables:
bpf/lib/common.h (v1.9: DROP_UNUSED3 -136; v1.10+: DROP_FRAG_NEEDED -136), bpf/lib/source_info.h
__id_for_file() (v1.16: 110 l3.h, 112 encap.h; v1.18: 110 local_delivery.h; v1.19: 101 drop.h, 111 encap.h),
pkg/monitor/api/drop.go (the texts)."""

from __future__ import annotations

import json
import struct

import pytest

from tests.conftest import bpftool
from tests.pinned import create_for
from tshoot.node import libbpf
from tshoot.maps import metrics
from tshoot.core.version import parse


def cpus() -> int:
    return libbpf.possible_cpus()


def key(reason: int, direction: int, line: int = 0, file: int = 0) -> bytes:
    """struct metrics_key as C lays it out (8 bytes: reason, dir:2|pad:6, then u16 line, u8 file, 3 reserved
    from 1.16; six reserved bytes before)."""
    return struct.pack("<BBHB3x", reason, direction, line, file)


def per_cpu(counts: list[tuple[int, int]]) -> bytes:
    """One struct metrics_value (u64 count, u64 bytes) per possible CPU."""
    return b"".join(struct.pack("<QQ", packets, size) for packets, size in counts)


@pytest.fixture
def metrics_map(bpffs):
    """cilium_metrics as 1.16+ pins it, with CPU i counting (i + 1) x the base counts of each entry."""
    path = create_for(bpffs, metrics.MAP, parse("1.16"))
    fd = libbpf.obj_get(str(path))
    n = cpus()
    entries = {
        key(133, 2, 1234, 2): (3, 294),  # DROP_POLICY, egress, bpf_lxc.c:1234
        key(0, 1, 88, 111): (10, 1000),  # REASON_FORWARDED, ingress, trace.h (1.16 numbering)
        key(136, 1, 40, 110): (1, 1500),  # DROP_FRAG_NEEDED, ingress, l3.h (1.16) / local_delivery.h (1.18)
    }
    try:
        for k, (packets, size) in entries.items():
            libbpf.update(fd, k, per_cpu([(packets * (i + 1), size * (i + 1)) for i in range(n)]))
    finally:
        import os

        os.close(fd)
    factor = n * (n + 1) // 2  # what the CPUs' counts add up to
    return bpffs, path, {k: (p * factor, b * factor) for k, (p, b) in entries.items()}


def _rows(out: str) -> dict:
    return {(r["key"]["code"], r["key"]["direction"]): r for r in json.loads(out)}


def test_dump_sums_every_cpu_and_names_as_1_16(tshoot, metrics_map):
    bpffs, _, sums = metrics_map
    r = tshoot("map", "dump", "metrics", "--backend", "local", "--bpffs", str(bpffs), "--cilium-version", "1.16.3",
               "-o", "json")
    assert r.code == 0, r.err
    rows = _rows(r.out)
    policy = rows[(133, "EGRESS")]
    assert policy["key"] == {"reason": "DROP_POLICY", "code": 133, "description": "Policy denied", "drop": True,
                             "direction": "EGRESS", "line": 1234, "file": "bpf_lxc.c"}
    assert policy["value"] == {"packets": sums[key(133, 2, 1234, 2)][0], "bytes": sums[key(133, 2, 1234, 2)][1]}
    forwarded = rows[(0, "INGRESS")]
    assert (forwarded["key"]["reason"], forwarded["key"]["drop"], forwarded["key"]["file"]) == \
        ("REASON_FORWARDED", False, "trace.h")
    assert forwarded["value"]["packets"] == sums[key(0, 1, 88, 111)][0]
    assert rows[(136, "INGRESS")]["key"]["file"] == "l3.h"
    assert rows[(136, "INGRESS")]["key"]["reason"] == "DROP_FRAG_NEEDED"


def test_the_same_bytes_name_files_as_each_version_numbers_them(tshoot, metrics_map):
    bpffs, _, _ = metrics_map
    args = ("map", "dump", "metrics", "--backend", "local", "--bpffs", str(bpffs), "-o", "json")
    files = {v: {c: row["key"]["file"] for (c, _), row in _rows(tshoot(*args, "--cilium-version", v).out).items()}
             for v in ("1.16", "1.18", "1.19")}
    assert files["1.16"] == {133: "bpf_lxc.c", 0: "trace.h", 136: "l3.h"}
    assert files["1.18"] == {133: "bpf_lxc.c", 0: "trace.h", 136: "local_delivery.h"}
    assert files["1.19"] == {133: "bpf_lxc.c", 0: "encap.h", 136: "trace.h"}  # 1.19 renumbered the headers
    # Without a version the file ids that name different files in different releases cannot be read alone.
    r = tshoot(*args)
    assert r.code == 1 and "pass --cilium-version" in r.err.strip().splitlines()[-1]


def test_lookup_is_one_counter_summed(tshoot, metrics_map):
    bpffs, _, sums = metrics_map
    r = tshoot("map", "lookup", "metrics", "DROP_POLICY", "egress", "--line", "1234", "--file", "bpf_lxc.c",
               "--backend", "local", "--bpffs", str(bpffs), "--cilium-version", "1.17", "-o", "json")
    assert r.code == 0, r.err
    obj = json.loads(r.out)
    assert obj["key"]["reason"] == "DROP_POLICY" and obj["value"]["packets"] == sums[key(133, 2, 1234, 2)][0]
    # the name without its prefix, and the number, find the same counter
    for reason in ("policy", "133"):
        again = tshoot("map", "lookup", "metrics", reason, "egress", "--line", "1234", "--file", "2",
                       "--backend", "local", "--bpffs", str(bpffs), "--cilium-version", "1.17", "-o", "json")
        assert json.loads(again.out)["value"] == obj["value"], again.err
    missing = tshoot("map", "lookup", "metrics", "DROP_POLICY", "ingress", "--line", "1234", "--file", "bpf_lxc.c",
                     "--backend", "local", "--bpffs", str(bpffs), "--cilium-version", "1.17")
    assert missing.code == 1 and "no entry" in missing.err


def test_decode_reads_bpftool_per_cpu_output_text_and_json(tshoot, metrics_map):
    _, path, sums = metrics_map
    k = key(133, 2, 1234, 2)
    lookup = ["map", "lookup", "pinned", str(path), "key", "hex", *k.hex(" ").split()]
    for text in (bpftool(*lookup).stdout, bpftool("-j", *lookup).stdout):
        r = tshoot("decode", "metrics", "-", "--cilium-version", "1.16", "-o", "json", input=text)
        assert r.code == 0, r.err
        obj = json.loads(r.out)
        assert obj["value"] == {"packets": sums[k][0], "bytes": sums[k][1]}
        assert obj["key"]["file"] == "bpf_lxc.c" and obj["key"]["line"] == 1234


@pytest.mark.parametrize("version, name, text", [
    ("1.9", "DROP_UNUSED3", "CT: Missing TCP ACK flag"),  # bpf/lib/common.h v1.9
    ("1.16", "DROP_FRAG_NEEDED", "Fragmentation needed"),
])
def test_reason_names_follow_the_version(tshoot, version, name, text):
    r = tshoot("decode", "metrics", "--key", "88 01 00 00 00 00 00 00", "--cilium-version", version, "-o", "json")
    assert json.loads(r.out)["key"]["reason"] == name and json.loads(r.out)["key"]["description"] == text


def test_a_code_renamed_between_versions_needs_the_version(tshoot):
    r = tshoot("decode", "metrics", "--key", "88 01 00 00 00 00 00 00")
    assert r.code == 2 and "read differently" in r.err and "--cilium-version" in r.err
    # a code every version names alike decodes without one
    r = tshoot("decode", "metrics", "--key", "85 02 00 00 00 00 00 00", "-o", "json")
    assert r.code == 0 and json.loads(r.out)["key"]["reason"] == "DROP_POLICY"


def test_key_refuses_a_line_before_1_16(tshoot):
    r = tshoot("key", "metrics", "policy", "egress", "--line", "3", "--cilium-version", "1.15")
    assert r.code == 2 and "1.16" in r.err
    r = tshoot("key", "metrics", "DROP_EP_NOT_READY", "ingress", "--line", "1234", "--file", "bpf_lxc.c")
    assert r.code == 0 and r.out.split() == "cb 01 d2 04 02 00 00 00".split()
