"""The simulated datapath is what it claims: the guide's wiring and maps, readable through the agent's exec."""

import ctypes
import json
import subprocess
import time
from pathlib import Path

import pytest

from tests import simdatapath
from tests.conftest import need_sim_datapath
from tshoot.cluster import kube


@pytest.fixture(params=["1.9.1", "1.19.4"])
def guide(request, kubeapi, tmp_path):
    need_sim_datapath()
    sim = simdatapath.start(simdatapath.guide_scenario(request.param), kubeapi, tmp_path,
                            request.getfixturevalue("bpf_objects"))
    yield sim, kubeapi
    sim.teardown()


def test_guide_wiring_and_maps(guide, tshoot):
    sim, server = guide
    api = kube.api_client(str(server.kubeconfig))
    # the source pod, as the guide shows it: eth0@if24 with 10.0.2.99, routed via cilium_host 10.0.2.184
    code, out, _ = kube.exec_in_pod(api, "default", "net-tshoot-xbw6q", None, ["ip", "-j", "link", "show", "eth0"])
    link = json.loads(out)[0]
    assert (code, link["ifindex"], link["link_index"], link["address"]) == (0, 23, 24, "b2:10:ef:6b:fa:0a")
    code, out, _ = kube.exec_in_pod(api, "default", "net-tshoot-xbw6q", None, ["ip", "route", "get", "10.0.1.110"])
    assert "via 10.0.2.184 dev eth0 src 10.0.2.99" in out
    # the source node's ipcache, read in its agent, decodes to the guide's identity and tunnel endpoint
    agent = next(p for p in server.list("pods", "cilium", "k8s-app=cilium") if p["spec"]["nodeName"] == "k8s-guide-worker")
    version = sim.version_text
    lookup = tshoot("key", "ipcache", "10.0.1.110", "--bpftool", "--cilium-version", version).out.split()
    code, out, err = kube.exec_in_pod(api, "cilium", agent["metadata"]["name"], "cilium-agent", lookup)
    assert code == 0, err
    value = json.loads(tshoot("decode", "ipcache", "-", "-o", "json", "--cilium-version", version, input=out).out)["value"]
    assert (value["identity"], value["tunnel_endpoint"]) == (53731, "172.18.0.5")
    # and the destination node's lxc entry holds the guide's bytes
    agent3 = next(p for p in server.list("pods", "cilium", "k8s-app=cilium")
                  if p["spec"]["nodeName"] == "k8s-guide-control-plane")
    lookup = tshoot("key", "lxc", "10.0.1.110", "--bpftool", "--cilium-version", version).out.split()
    code, out, err = kube.exec_in_pod(api, "cilium", agent3["metadata"]["name"], "cilium-agent", lookup)
    value = json.loads(tshoot("decode", "lxc", "-", "-o", "json", "--cilium-version", version, input=out).out)["value"]
    assert (value["ifindex"], value["lxc_id"], value["mac"], value["node_mac"]) == (11, 2006, "6a:8c:ee:3a:73:d5",
                                                                                    "3e:43:da:fb:c7:04")
    code, out, _ = kube.exec_in_pod(api, "cilium", agent3["metadata"]["name"], "cilium-agent", ["bpftool", "net", "show"])
    assert "cilium_vxlan(5) clsact/ingress bpf_overlay.o:[from-overlay]" in out


def test_service_scenario_load_balancer_maps(kubeapi, tmp_path, request, tshoot):
    need_sim_datapath()
    sim = simdatapath.start(simdatapath.service_scenario("1.19.4"), kubeapi, tmp_path,
                            request.getfixturevalue("bpf_objects"))
    try:
        node = "k8s-guide-worker"

        def lookup(*key_args):
            path = tshoot("key", *key_args, "--bpftool").out.split()
            out = subprocess.run(["bpftool", *path[1:4], str(sim.map_path(node, path[4].rsplit("/", 1)[1])), *path[5:]],
                                 capture_output=True, text=True, check=True).stdout
            return json.loads(tshoot("decode", key_args[0], "-", "-o", "json", "--cilium-version", "1.19.4",
                                     input=out).out)["value"]

        master = lookup("lb4-services", "10.32.0.10:53/udp")
        assert (master["count"], master["rev_nat_index"]) == (2, 6)
        slot = lookup("lb4-services", "10.32.0.10:53/udp", "--slot", "2")
        backend = lookup("lb4-backends", str(slot["backend_id"]))
        assert (backend["address"], backend["port"]) == ("10.200.0.44", 53)
        assert lookup("ipcache", "10.200.0.44")["identity"] == 18203
    finally:
        sim.teardown()


def two_nodes_two_pods(version: str) -> dict:
    """Seed 003's two nodes with two pods each: the client and a CoreDNS on the worker, the other CoreDNS and
    a web pod on the control plane."""
    from tests.kubeapi import objects

    scenario = simdatapath.service_scenario(version)
    control_plane = scenario["nodes"][0]
    labels = {"app": "web"}
    web = objects.pod("web-5c9f7d-kq2xz", "default", control_plane, labels, [("web", objects.NETSHOOT_IMAGE)],
                      ip="10.200.1.80")
    security = objects.pod_identity_labels("default", labels)
    scenario["objects"] += [web, objects.identity(31337, security),
                            objects.endpoint(web, control_plane.ip, 900, 31337, security)]
    return scenario


def _live_ids(kind: str) -> set[int]:
    """Every prog or map id the kernel holds, by BPF_{PROG,MAP}_GET_NEXT_ID (which takes no reference)."""
    from tshoot.node import libbpf

    walk = getattr(libbpf.lib(), f"bpf_{kind}_get_next_id")
    ids, current = set(), ctypes.c_uint32(0)
    while walk(current.value, ctypes.byref(current)) == 0:
        ids.add(current.value)
    return ids


def _owned(sim) -> tuple[set[int], set[int]]:
    """The programs and maps the sim's datapath holds: what tc attached in its nodes, the policy programs in
    cilium_call_policy, every pinned map and every map those programs use."""
    progs, maps = set(), set()
    for node in sim.nodes.values():
        shown = json.loads(subprocess.run(["ip", "netns", "exec", node.netns, "bpftool", "-j", "net", "show"],
                                          capture_output=True, text=True, check=True).stdout)
        progs |= {hook["id"] for entry in shown for hook in entry.get("tc", [])}
        slots = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "pinned",
                                           str(node.globals / "cilium_call_policy")],
                                          capture_output=True, text=True, check=True).stdout)
        progs |= {int.from_bytes(bytes(int(b, 16) for b in slot["value"]), "little") for slot in slots}
        for pin in node.globals.iterdir():
            maps.add(json.loads(subprocess.run(["bpftool", "-j", "map", "show", "pinned", str(pin)],
                                               capture_output=True, text=True, check=True).stdout)["id"])
    for prog in progs:
        maps |= set(json.loads(subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog)], capture_output=True,
                                              text=True, check=True).stdout).get("map_ids", []))
    return progs, maps


@pytest.mark.parametrize("version", ["1.9.1", "1.19.4"])
def test_two_nodes_two_pods_each_up_and_down_in_two_seconds_leaving_nothing(tmp_path, request, version):
    need_sim_datapath()
    bpf_objects = request.getfixturevalue("bpf_objects")
    scenario = two_nodes_two_pods(version)
    simdatapath.datapath_objects(tuple(map(int, version.split("."))), bpf_objects["datapath"].parent)  # once a session
    sim = simdatapath.SimDatapath(version, scenario["nodes"], scenario["objects"], tmp_path, bpf_objects,
                                  service_ids=scenario["service_ids"])
    started = time.monotonic()
    try:
        sim.build()
        built = time.monotonic()
        assert sorted(len(node.pods) for node in sim.nodes.values()) == [2, 2]
        progs, maps = _owned(sim)
        # the node programs on each node, every endpoint's from-container and its policy program in its slot
        node_hooks = sum(len(hooks) for dev, hooks in simdatapath.ATTACH.items() if dev != "lxc")
        assert len(progs) == 2 * node_hooks + 4 * 2
        inventoried = time.monotonic()
    finally:
        sim.teardown()
    elapsed = time.monotonic() - started - (inventoried - built)  # the inventory above is not the sim's time
    assert elapsed <= 2.0, f"build and teardown took {elapsed:.2f}s"
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not [ns for ns in sim._namespaces if ns in namespaces.split()]
    mounts = Path("/proc/self/mountinfo").read_text()
    assert not [node.bpffs for node in sim.nodes.values() if f" {node.bpffs} " in mounts]
    # The kernel frees a deleted namespace's devices (and so their tc programs) in the background, in one
    # cleanup queue for the whole machine (busy when other tests churn namespaces). Ids are
    # walked without opening the objects: opening a prog array by id after its last user reference is gone
    # re-arms its clearing and leaks it (kernel 6.18), so `bpftool map show` would cause what it looks for.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left_progs, left_maps = progs & _live_ids("prog"), maps & _live_ids("map")
        if not left_progs and not left_maps:
            break
        time.sleep(0.1)
    assert (left_progs, left_maps) == (set(), set())
