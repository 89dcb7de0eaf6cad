"""The BPF stand-ins compile and carry the program names Cilium uses (the other tests rely on it)."""

import json

from tests.conftest import bpftool


def test_objects_compile_with_cilium_program_names(bpf_objects, bpffs):
    pins = bpffs / "datapath"
    bpftool("prog", "loadall", str(bpf_objects["datapath"]), str(pins), "type", "classifier")
    names = sorted(p.name for p in pins.iterdir())
    assert "cil_from_container" in names and "cil_to_overlay" in names
    info = json.loads(bpftool("-j", "prog", "show", "pinned", str(pins / "cil_from_container")).stdout)
    assert info["type"] == "sched_cls" and info["name"] == "cil_from_container"
