"""tshoot net show / prog show, local backend, against a node datapath built in network namespaces
(tests/netnode.py): what bpftool (7.1, no tcx) reports must come out the same, and tcx on top."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests import netnode
from tests.conftest import bpftool, need_root, run_cli
from tshoot.inspect import netshow


@pytest.fixture(scope="module")
def node(datapath_node):
    return datapath_node


@pytest.fixture(scope="module")
def shown(node):
    """`tshoot net show -o json` of the node, as a user runs it."""
    result = run_cli("tshoot", "net", "show", "--netns", node.ns, "--bpffs", str(node.bpffs), "-o", "json")
    assert result.code == 0, result
    return json.loads(result.out)


def bpftool_net_json(node) -> dict:
    """bpftool -j net show in the node; bpftool prints the flow dissector as ["id":N], repaired here."""
    return netshow.bpftool_net_json(node.run("bpftool", "-j", "net", "show").stdout)


def hooks_of(shown: dict, name: str) -> list[dict]:
    return next(i for i in shown["interfaces"] if i["name"] == name)["hooks"]


def test_tc_and_xdp_agree_with_bpftool(node, shown):
    reference = bpftool_net_json(node)
    ours_tc = [(i["ifindex"], i["name"], h["attach"], h["tc_name"], h["prog_id"])
               for i in shown["interfaces"] for h in i["hooks"] if h["hook"] == "tc"]
    assert ours_tc == [(e["ifindex"], e["devname"], e["kind"], e["name"], e["id"]) for e in reference["tc"]]
    ours_xdp = [(i["ifindex"], i["name"], h["attach"], h["prog_id"])
                for i in shown["interfaces"] for h in i["hooks"] if h["hook"] == "xdp"]
    assert ours_xdp == [(e["ifindex"], e["devname"], e["mode"], e["id"]) for e in reference["xdp"]]
    assert len(ours_tc) == 8 and len(ours_xdp) == 1
    assert shown["flow_dissector"]["prog_id"] == reference["flow_dissector"][0]["id"]
    assert shown["flow_dissector"]["prog_name"] == "flow_dissect"


def test_tcx_hooks_are_listed_with_their_links(node, shown):
    """bpftool 7.1 cannot see tcx; the kernel's links (bpftool link show) say what must be there."""
    links = {link["pinned"][0]: link for link in json.loads(bpftool("-j", "-f", "link", "show").stdout)
             if link.get("pinned")}
    lxc2 = list(node.pods.values())[1]
    for dev, direction, program in (("eth0", "ingress", "cil_from_netdev"), ("eth0", "egress", "cil_to_netdev"),
                                    (lxc2, "ingress", "cil_from_container"), (lxc2, "egress", "cil_to_container")):
        link = links[str(node.bpffs / "links" / f"{dev}-{direction}")]
        hook = next(h for h in hooks_of(shown, dev) if h["hook"] == "tcx" and h["direction"] == direction)
        assert (hook["prog_id"], hook["link_id"], hook["prog_name"]) == (link["prog_id"], link["id"], program)
        assert hook["pinned"] == link["pinned"]
        assert hook["attach"] == f"tcx/{direction}"
    plain = [h for h in hooks_of(shown, "cilium_net") if h["hook"] == "tcx"]
    assert [(h["direction"], h["prog_id"], h["link_id"]) for h in plain] == [
        ("egress", node.prog_id("datapath/cil_from_host"), None)]


def test_programs_are_named_sectioned_and_tagged_like_bpftool(node, shown):
    for interface in shown["interfaces"]:
        for hook in interface["hooks"]:
            program = json.loads(bpftool("-j", "prog", "show", "id", str(hook["prog_id"])).stdout)
            assert (hook["prog_name"], hook["tag"]) == (program["name"], program["tag"])
    lxc1 = list(node.pods.values())[0]
    assert [(h["section"], h["tc_name"]) for h in hooks_of(shown, lxc1)] == [
        ("from-container", "datapath.o:[from-container]")]
    sections = {(i["name"], h["hook"], h["direction"] or h["attach"]): h["section"]
                for i in shown["interfaces"] for h in i["hooks"]}
    assert sections[("cilium_host", "tc", "ingress")] == "to-host"
    assert sections[("cilium_vxlan", "tc", "egress")] == "to-overlay"
    assert sections[("eth0", "tcx", "ingress")] == "from-netdev"     # from the program name (tcx has no tc name)
    assert sections[("eth0", "xdp", "generic")] == "xdp"
    assert sections[("eth0", "tc", "htb")] == "tc"                      # foreign.o:[tc]: whatever tc loaded
    assert [h["attach"] for h in hooks_of(shown, "eth0")] == ["generic", "tcx/ingress", "tcx/egress", "htb"]


def test_each_interface_says_what_it_serves(node, shown):
    by_name = {i["name"]: i for i in shown["interfaces"]}
    for pod_ns, lxc in node.pods.items():
        interface = by_name[lxc]
        assert (interface["role"], interface["kind"]) == ("endpoint", "veth")
        assert interface["peer"]["netns"] == pod_ns and interface["peer"]["name"] == "eth0"
        assert interface["serves"] == f"pod netns {pod_ns} (eth0)"
    assert {n: by_name[n]["role"] for n in ("lxc_health", "cilium_host", "cilium_net", "cilium_vxlan", "eth0")} == {
        "lxc_health": "health", "cilium_host": "cilium_host", "cilium_net": "cilium_net",
        "cilium_vxlan": "overlay", "eth0": "uplink"}
    assert by_name["cilium_host"]["peer"]["name"] == "cilium_net"
    assert "lo" not in by_name  # no hook, no role: not worth a line
    assert shown["netns"] == node.ns and shown["backend"] == "local"


def test_walk_finds_the_program_behind_a_pods_eth0(node):
    """The guide's step: `ip link show eth0` in the pod prints eth0@ifN; N is the node-side lxc."""
    from tshoot.inspect import hooks_local as local

    show = local.net_show(node.ns, str(node.bpffs))
    for (pod_ns, lxc), kind in zip(node.pods.items(), ("tc", "tcx")):
        eth0 = json.loads(subprocess.run(["ip", "-n", pod_ns, "-j", "link", "show", "eth0"], capture_output=True,
                                         text=True, check=True).stdout)[0]
        interface = netshow.interface_by_ifindex(show, eth0["link_index"])
        assert interface.name == lxc
        hook = netshow.program_for(interface, "ingress")
        assert (hook.hook, hook.prog_name, hook.section) == (kind, "cil_from_container", "from-container")
    with pytest.raises(Exception, match="no interface with ifindex 9999"):
        netshow.interface_by_ifindex(show, 9999)


def test_raw_text_is_bpftool_text_with_tcx_lines_added(node, tshoot):
    result = tshoot("net", "show", "--netns", node.ns, "--raw")
    assert result.code == 0, result
    reference = node.run("bpftool", "net", "show").stdout
    lines = result.out.splitlines(keepends=True)
    assert "".join(line for line in lines if " tcx/" not in line) == reference
    tcx_lines = [line.rstrip("\n") for line in lines if " tcx/" in line]
    eth0 = node.ifindex("eth0")
    links = json.loads(bpftool("-j", "-f", "link", "show").stdout)
    ingress = next(link for link in links if str(node.bpffs / "links" / "eth0-ingress") in link.get("pinned", []))
    assert f"eth0({eth0}) tcx/ingress cil_from_netdev prog_id {ingress['prog_id']} link_id {ingress['id']} " in tcx_lines
    net = node.ifindex("cilium_net")
    assert f"cilium_net({net}) tcx/egress cil_from_host prog_id {node.prog_id('datapath/cil_from_host')} " in tcx_lines
    assert len(tcx_lines) == 5


def test_raw_json_is_bpftool_json_with_tcx_entries_added(node, tshoot):
    result = tshoot("net", "show", "--netns", node.ns, "--raw", "-o", "json")
    assert result.code == 0, result
    ours = json.loads(result.out)[0]
    tcx = [e for e in ours["tc"] if e["kind"].startswith("tcx/")]
    ours["tc"] = [e for e in ours["tc"] if not e["kind"].startswith("tcx/")]
    assert ours == bpftool_net_json(node)
    assert {tuple(sorted(e)) for e in tcx} == {("devname", "ifindex", "kind", "link_flags", "link_id", "name",
                                               "prog_flags", "prog_id")}


def test_bpftool_json_reads_back_into_the_same_hooks(node):
    """The pod backend reads bpftool's JSON (tcx entries as bpftool >= 7.3 prints them) into the model."""
    from tshoot.inspect import hooks_local as local

    show = local.net_show(node.ns, str(node.bpffs))
    programs = {h.prog_id: {"name": h.prog_name, "tag": h.tag} for i in show.interfaces for h in i.hooks}
    devices = [{"ifindex": i.ifindex, "ifname": i.name} for i in show.interfaces]
    read = netshow.from_bpftool(devices, netshow.bpftool_json(show)[0], programs, links=[])
    key = [(i.ifindex, i.name, [(h.hook, h.attach, h.prog_id, h.prog_name, h.section, h.link_id) for h in i.hooks])
           for i in show.interfaces]
    assert [(i.ifindex, i.name, [(h.hook, h.attach, h.prog_id, h.prog_name, h.section, h.link_id) for h in i.hooks])
            for i in read] == key


def test_the_table_names_pods_programs_and_sections(node, tshoot):
    result = tshoot("net", "show", "--netns", node.ns)
    assert result.code == 0, result
    lxc1 = list(node.pods.values())[0]
    prog_id = next(e["id"] for e in bpftool_net_json(node)["tc"] if e["devname"] == lxc1)
    tag = json.loads(bpftool("-j", "prog", "show", "id", str(prog_id)).stdout)["tag"]
    row = next(line for line in result.out.splitlines() if lxc1 in line).split()
    assert row[:2] == [str(node.ifindex(lxc1)), lxc1]
    assert row[-5:] == [str(prog_id), "cil_from_container", "from-container", tag, "-"]
    assert "flow_dissector" in result.out and "the network namespace" in result.out


def test_prog_show_agrees_with_bpftool_and_names_maps(node, tshoot):
    prog_id = node.prog_id("hooks/cil_from_netdev")
    result = tshoot("prog", "show", str(prog_id), "-o", "json")
    assert result.code == 0, result
    ours = json.loads(result.out)
    reference = json.loads(bpftool("-j", "prog", "show", "id", str(prog_id)).stdout)
    assert (ours["id"], ours["type"], ours["name"], ours["tag"], ours["gpl"], ours["uid"], ours["xlated"],
            ours["jited"], ours["memlock"], ours["btf_id"]) == (
        reference["id"], reference["type"], reference["name"], reference["tag"], reference["gpl_compatible"],
        reference["uid"], reference["bytes_xlated"], reference["bytes_jited"], reference["bytes_memlock"],
        reference["btf_id"])
    assert abs(ours["loaded_at"] - reference["loaded_at"]) <= 1
    assert [m["id"] for m in ours["maps"]] == reference["map_ids"]
    names = {m["id"]: (m["name"], m["type"]) for m in ours["maps"]}
    for map_id in reference["map_ids"]:
        info = json.loads(bpftool("-j", "map", "show", "id", str(map_id)).stdout)
        assert names[map_id] == (info["name"], info["type"])
    assert sorted(n for n, _t in names.values()) == ["cilium_lxc", "cilium_metrics"]
    table = tshoot("prog", "show", str(prog_id))
    assert re.search(rf"\s{reference['map_ids'][0]}\s+\S+\s+\S+", table.out) and "percpu_array" in table.out


def test_section_names_from_every_naming_scheme():
    assert netshow.section_of(None, "bpf_lxc.o:[from-container]") == "from-container"          # Cilium 1.9 (tc)
    assert netshow.section_of("cil_from_netdev", "cil_from_netdev-eth0") == "from-netdev"      # Cilium's loader
    assert netshow.section_of("cil_to_overlay") == "to-overlay"                                # tcx: no filter name
    assert netshow.section_of("other_tc", "foreign.o:[tc]") == "tc"
    assert netshow.section_of("handle_xgress") is None
    # tc's annotation for a program loaded from a pinned object is no section: the program's name says it
    assert netshow.section_of("cil_from_container", "bpf_lxc.o:[*fsobj]") == "from-container"
    assert netshow.section_of("handle_xgress", "bpf_lxc.o:[*fsobj]") is None


def test_an_uplink_is_recognised_by_ciliums_netdev_programs():
    """A device with from-netdev/to-netdev is one Cilium serves, whether or not the default route uses it."""
    hook = netshow.Hook(hook="tc", attach="clsact/ingress", prog_id=1, direction="ingress",
                        prog_name="cil_from_netdev", section="from-netdev")
    second = netshow.Interface(ifindex=3, name="eth1", kind="veth", hooks=[hook])
    netshow.classify(second, uplinks={"eth0"})
    assert (second.role, second.serves) == ("uplink", "node uplink (Cilium's from-netdev/to-netdev attached)")
    first = netshow.Interface(ifindex=2, name="eth0", kind="veth", hooks=[hook])
    netshow.classify(first, uplinks={"eth0"})
    assert first.serves.endswith(", default route")
    plain = netshow.Interface(ifindex=4, name="eth2", kind="veth")
    netshow.classify(plain, uplinks=set())
    assert plain.role == "other"


def test_the_guides_endpoint_names_the_guides_lxc():
    """sha256 of the guide's CiliumEndpoint container id gives the guide's lxc473b3117af85 (eth0@if24)."""
    assert "lxc473b3117af85" in netshow.lxc_names(netnode.GUIDE_ENDPOINT)
    show = netshow.NetShow(node="k8s-guide-worker2", netns=None, backend="pod",
                           interfaces=[netshow.Interface(ifindex=24, name="lxc473b3117af85", kind="veth"),
                                       netshow.Interface(ifindex=22, name="lxcb79e11918044", kind="veth")])
    netshow.attach_pods(show, [netnode.GUIDE_ENDPOINT])
    for interface in show.interfaces:
        netshow.classify(interface, set())
    served = [i for i in show.interfaces if i.pod and (i.pod.namespace, i.pod.name) == ("default", "net-tshoot-l8vwz")]
    assert [i.ifindex for i in served] == [24]
    assert show.interfaces[0].serves == "pod default/net-tshoot-l8vwz (endpoint 92)"
    assert show.interfaces[1].serves == "pod endpoint (unknown pod)"


def test_bpfsys_type_names_agree_with_libbpf():
    """The name tables (needed for types newer than the installed libbpf) match libbpf where it knows them."""
    import ctypes

    from tshoot.node import bpfsys, libbpf

    lib = libbpf.lib()
    for function, table in (("libbpf_bpf_attach_type_str", bpfsys.ATTACH_TYPES),
                            ("libbpf_bpf_prog_type_str", bpfsys.PROG_TYPES),
                            ("libbpf_bpf_map_type_str", bpfsys.MAP_TYPES),
                            ("libbpf_bpf_link_type_str", bpfsys.LINK_TYPES)):
        to_str = getattr(lib, function)
        to_str.restype, to_str.argtypes = ctypes.c_char_p, [ctypes.c_int]
        known = [(i, to_str(i).decode()) for i in range(len(table)) if to_str(i)]
        assert len(known) >= 10 and all(table[i] == name for i, name in known), function


@pytest.mark.parametrize("args, code, message", [
    (["net", "show", "--netns", "kl-no-such-ns"], 1, "network namespace 'kl-no-such-ns' not found"),
    (["net", "show", "--bpffs", "/tmp"], 1, "--bpffs /tmp: not a bpffs mount (mount one: mount -t bpf bpf /tmp)"),
    (["net", "show", "--node", "a", "--all-nodes"], 2, "--node and --all-nodes: give one of them"),
    (["net", "show", "--node", "a", "--netns", "x"], 2, "--netns is for the local backend"),
    (["net", "show", "--backend", "nowhere"], 2, "--backend nowhere: expected one of auto, local, pod"),
    (["net", "show", "-o", "xml"], 2, "'xml' is not one of table, json, yaml"),
    (["prog", "show", "2147483647"], 1, "program 2147483647: no such id on this machine"),
    (["prog", "show", "0"], 2, "Invalid value for 'ID'"),
])
def test_failures_are_one_line(args, code, message, tshoot):
    need_root()
    result = tshoot(*args)
    assert (result.code, result.out) == (code, "")
    assert result.err.count("\n") == 1 and message in result.err, result.err


@pytest.mark.parametrize("args, message", [
    (["prog", "show", "1"], "permission denied (reading BPF objects needs root"),
    (["net", "show"], "permission denied (reading BPF objects needs root"),
    (["net", "show", "--netns", "NODE"], "permission denied (run with sudo)"),
])
def test_without_root_it_says_so(node, args, message):
    """As the unprivileged user nobody: the bpf(2) queries and setns(2) are refused."""
    from tests.conftest import BIN

    argv = [node.ns if a == "NODE" else a for a in args]
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(BIN / "tshoot"), *argv],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"})
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


def test_prog_show_names_maps_by_their_pins_and_runs_with_bpf_stats(node, tshoot):
    """Maps are named by their pinned names where pinned (kernel names stop at 15 characters); run count and
    time appear when kernel.bpf_stats_enabled is on, and the output says how to turn it on when it is off."""
    from pathlib import Path

    prog_id = node.prog_id("hooks/cil_from_netdev")
    reference = json.loads(bpftool("-j", "prog", "show", "id", str(prog_id)).stdout)
    names = {json.loads(bpftool("-j", "map", "show", "id", str(i)).stdout)["name"]: i for i in reference["map_ids"]}
    pin = Path(node.bpffs) / "tc" / "globals" / "cilium_lxc_pinned_for_b16"
    pin.parent.mkdir(parents=True, exist_ok=True)
    bpftool("map", "pin", "id", str(names["cilium_lxc"]), str(pin))
    sysctl = Path("/proc/sys/kernel/bpf_stats_enabled")
    before = sysctl.read_text().strip()
    try:
        sysctl.write_text("0")
        off = tshoot("prog", "show", str(prog_id), "--bpffs", str(node.bpffs), "-o", "json")
        shown = json.loads(off.out)
        pinned = {m["id"]: m["pinned"] for m in shown["maps"]}
        assert pinned[names["cilium_lxc"]] == "cilium_lxc_pinned_for_b16" and pinned[names["cilium_metrics"]] is None
        assert shown["run_count"] is None and "kernel.bpf_stats_enabled=1" in shown["notes"][-1]
        table = tshoot("prog", "show", str(prog_id), "--bpffs", str(node.bpffs))
        assert "cilium_lxc_pinned_for_b16" in table.out and "kernel BPF statistics off" in table.out
        assert "sysctl -w kernel.bpf_stats_enabled=1" in table.err
        sysctl.write_text("1")
        on = json.loads(tshoot("prog", "show", str(prog_id), "--bpffs", str(node.bpffs), "-o", "json").out)
        assert isinstance(on["run_count"], int) and isinstance(on["run_time_ns"], int) and not on["notes"]
        net = json.loads(run_cli("tshoot", "net", "show", "--netns", node.ns, "--bpffs", str(node.bpffs),
                                 "-o", "json").out)
        counted = [h for i in net["interfaces"] for h in i["hooks"]]
        assert counted and all(isinstance(h["run_count"], int) for h in counted)
    finally:
        sysctl.write_text(before)
        pin.unlink()
