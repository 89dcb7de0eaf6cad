"""The pod backend end to end: tshoot -> local Kubernetes API server -> exec in the worker2 agent ->
bpftool and ip run for real in the node's network namespace (tests/netnode.py) with its bpffs on
/sys/fs/bpf -> the same model the local backend builds, pods named from CiliumEndpoints."""

from __future__ import annotations

import json

import pytest

from tests.conftest import bpftool
from tests.kubeapi import NodeExec, SimNode, objects
from tshoot.inspect import hooks_local as local

NODE = "k8s-guide-worker2"   # the guide's node of net-tshoot-l8vwz (eth0@if24 -> lxc473b3117af85)


@pytest.fixture
def cluster(kubeapi, datapath_node):
    # the guide's own CiliumEndpoint for net-tshoot-l8vwz: its container id names lxc473b3117af85
    lab = [o for o in objects.kind_cluster()
           if not (o.get("kind") == "CiliumEndpoint" and o["metadata"]["name"] == "net-tshoot-l8vwz")]
    kubeapi.add(*lab, objects.guide_endpoint(), datapath_node.endpoints[1])
    kubeapi.exec_handler = NodeExec(kubeapi, {NODE: SimNode(datapath_node.ns, datapath_node.bpffs)})
    return kubeapi


def pod_cli(tshoot, cluster, *args):
    return tshoot(*args, "--kubeconfig", str(cluster.kubeconfig))


def comparable(interface: dict) -> tuple:
    """What both backends must agree on (tcx aside: the agent's bpftool 7.1 cannot see it)."""
    hooks = [(h["hook"], h["attach"], h["direction"], h["prog_id"], h["prog_name"], h["tag"], h["section"], h["tc_name"])
             for h in interface["hooks"] if h["hook"] != "tcx"]
    peer = interface["peer"] and (interface["peer"]["ifindex"], interface["peer"]["netnsid"])
    return interface["ifindex"], interface["name"], interface["kind"], interface["role"], peer, hooks


def test_pod_backend_shows_what_the_local_backend_shows(cluster, datapath_node, tshoot):
    result = pod_cli(tshoot, cluster, "net", "show", "--node", NODE, "-o", "json")
    assert result.code == 0, result
    ours = json.loads(result.out)
    reference = local.net_show(datapath_node.ns, str(datapath_node.bpffs)).to_dict()
    assert [comparable(i) for i in ours["interfaces"]] == [comparable(i) for i in reference["interfaces"]]
    assert {k: ours["flow_dissector"][k] for k in ("prog_id", "prog_name", "tag")} == {
        k: reference["flow_dissector"][k] for k in ("prog_id", "prog_name", "tag")}
    assert (ours["node"], ours["backend"]) == (NODE, "pod")
    pods = {i["name"]: i["pod"] for i in ours["interfaces"] if i["pod"]}
    lxc1, lxc2 = datapath_node.pods.values()
    assert pods == {lxc1: {"namespace": "default", "name": "net-tshoot-l8vwz", "endpoint_id": 92},
                    lxc2: {"namespace": "default", "name": "net-tshoot-x7k2p", "endpoint_id": 1234}}
    served = {i["name"]: i["serves"] for i in ours["interfaces"]}
    assert served[lxc1] == "pod default/net-tshoot-l8vwz (endpoint 92)" and served["eth0"] == "node uplink (default route)"
    # the agent's bpftool (7.1) lists tcx links without saying where: every one is named in a note
    tcx_links = sorted({h["link_id"] for i in reference["interfaces"] for h in i["hooks"] if h["link_id"]})
    assert len(tcx_links) == 4
    assert [f"{link} (program" in " ".join(ours["notes"]) for link in tcx_links] == [True] * 4
    assert (ours["tcx_visible"], reference["tcx_visible"]) == (False, True)


def test_pod_raw_is_the_agents_bpftool_output(cluster, datapath_node, tshoot):
    result = pod_cli(tshoot, cluster, "net", "show", "--node", NODE, "--raw")
    assert result.code == 0, result
    assert result.out == datapath_node.run("bpftool", "net", "show").stdout


def test_the_table_puts_the_guides_pod_next_to_its_program(cluster, datapath_node, tshoot):
    result = pod_cli(tshoot, cluster, "net", "show", "--node", NODE)
    assert result.code == 0, result
    lxc1 = next(iter(datapath_node.pods.values()))
    line = next(line for line in result.out.splitlines() if lxc1 in line)
    assert "pod default/net-tshoot-l8vwz (endpoint 92)" in line and "cil_from_container  from-container" in line
    assert "note:" in result.err and "bpftool >= 7.3 can" in result.err
    lxc2 = list(datapath_node.pods.values())[1]   # attached with tcx only: not "no BPF hook"
    assert "no tc/XDP hook (tcx: see note)" in next(line for line in result.out.splitlines() if lxc2 in line)


def test_all_nodes_reports_each_failure_without_hiding_the_others(cluster, datapath_node, tshoot):
    cluster.exec_handler = NodeExec(cluster, {NODE: SimNode(datapath_node.ns, datapath_node.bpffs),
                                              "k8s-guide-worker": SimNode(datapath_node.ns, datapath_node.bpffs)})
    result = pod_cli(tshoot, cluster, "net", "show", "--all-nodes", "-o", "json")
    assert result.code == 1
    assert [s["node"] for s in json.loads(result.out)] == ["k8s-guide-worker", NODE]
    assert result.err.count("\n") == 1 and "node k8s-guide-control-plane:" in result.err
    table = pod_cli(tshoot, cluster, "net", "show", "--all-nodes")
    assert {line.split()[0] for line in table.out.splitlines()[1:] if line.startswith("k8s-")} == {
        "k8s-guide-worker", NODE}


def test_prog_show_through_the_agent(cluster, datapath_node, tshoot):
    prog_id = datapath_node.prog_id("hooks/cil_from_netdev")
    # one of its maps pinned under a name longer than the kernel keeps (15 characters), as Cilium's are
    map_id = json.loads(bpftool("-j", "prog", "show", "id", str(prog_id)).stdout)["map_ids"][0]
    pin = datapath_node.bpffs / "cilium_lxc_pinned_in_full"
    bpftool("map", "pin", "id", str(map_id), str(pin))
    try:
        result = pod_cli(tshoot, cluster, "prog", "show", str(prog_id), "--node", NODE, "-o", "json")
        reference = local.prog_show(prog_id, str(datapath_node.bpffs)).to_dict()  # maps named by their pins too
    finally:
        pin.unlink()
    assert result.code == 0, result
    ours = json.loads(result.out)
    assert ours["node"] == NODE
    for key in ("id", "type", "name", "tag", "gpl", "uid", "xlated", "jited", "memlock", "btf_id", "maps"):
        assert ours[key] == reference[key], key
    assert [m["pinned"] for m in ours["maps"] if m["id"] == map_id] == [pin.name]  # the pin's name, in full
    assert abs(ours["loaded_at"] - reference["loaded_at"]) <= 1


def test_an_image_without_ip_still_shows_the_hooks_named_by_interface_name(cluster, datapath_node, tshoot):
    """net show's commands run in one exec: `ip` missing from the image (the shell's exit 127) leaves the
    bpftool answers whole and says why interfaces are classified by name only, in one round trip."""
    cluster.exec_handler = NodeExec(cluster, {NODE: SimNode(datapath_node.ns, datapath_node.bpffs)}, missing=("ip",))
    before = len(cluster.requests_to("/api/v1/namespaces/cilium/pods/*/exec"))
    result = pod_cli(tshoot, cluster, "net", "show", "--node", NODE, "-o", "json")
    assert result.code == 0, result
    assert len(cluster.requests_to("/api/v1/namespaces/cilium/pods/*/exec")) == before + 1
    shown = json.loads(result.out)
    assert any(i["hooks"] for i in shown["interfaces"])
    notes = [n for n in shown["notes"] if n.startswith("no interface details (ip is not in the agent image")]
    assert len(notes) == 1 and "exit 127" in notes[0] and notes[0].endswith("interfaces classified by name only"), \
        shown["notes"]


@pytest.mark.parametrize("setup, args, message", [
    (None, ["net", "show", "--node", "k8s-guide-nowhere"], "no node named 'k8s-guide-nowhere'"),
    ("forbid", ["net", "show", "--node", NODE], "403 Forbidden"),
    # net show's commands run in one exec, by a shell, which does not find bpftool on its PATH
    ("no-bpftool", ["net", "show", "--node", NODE], "bpftool is not in the agent image of cilium/"),
    ("no-bpftool", ["prog", "show", "1", "--node", NODE], 'exec: "bpftool": executable file not found'),
    (None, ["prog", "show", "2147483647", "--node", NODE], "bpftool prog show id 2147483647: get by id (2147483647): No such file or directory"),
])
def test_pod_failures_are_one_line(setup, args, message, cluster, datapath_node, tshoot):
    if setup == "forbid":
        cluster.fail("*/exec", 403)
    elif setup == "no-bpftool":
        cluster.exec_handler = NodeExec(cluster, {NODE: SimNode(datapath_node.ns, datapath_node.bpffs)},
                                        missing=("bpftool",))
    result = pod_cli(tshoot, cluster, *args)
    assert (result.code, result.out) == (1, "")
    assert result.err.count("\n") == 1 and message in result.err, result.err


def test_a_node_that_does_not_answer_in_time_is_reported_and_does_not_hold_back_the_others(
        cluster, datapath_node, tshoot):
    import time

    nodes = NodeExec(cluster, {NODE: SimNode(datapath_node.ns, datapath_node.bpffs),
                               "k8s-guide-worker": SimNode(datapath_node.ns, datapath_node.bpffs)})

    def handler(namespace, pod, container, argv):
        if cluster.get("pods", name=pod, namespace=namespace)["spec"]["nodeName"] == "k8s-guide-control-plane":
            time.sleep(8)  # an agent that hangs
        return nodes(namespace, pod, container, argv)

    cluster.exec_handler = handler
    started = time.monotonic()
    result = pod_cli(tshoot, cluster, "net", "show", "--all-nodes", "--timeout", "1500ms", "-o", "json")
    took = time.monotonic() - started
    assert result.code == 1
    assert [s["node"] for s in json.loads(result.out)] == ["k8s-guide-worker", NODE]
    assert result.err.count("\n") == 1 and result.err.startswith("tshoot: k8s-guide-control-plane: "), result.err
    assert "1.5" in result.err and took < 7, (took, result.err)
