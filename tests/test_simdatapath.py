"""The simulated datapath is what it claims: the guide's wiring and maps, readable through the agent's exec."""

import json
import subprocess

import pytest

from tests import simdatapath
from tshoot.cluster import kube


@pytest.fixture(params=["1.9.1", "1.19.4"])
def guide(request, kubeapi, tmp_path, bpf_objects):
    sim = simdatapath.start(simdatapath.guide_scenario(request.param), kubeapi, tmp_path, bpf_objects)
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


def test_service_scenario_load_balancer_maps(kubeapi, tmp_path, bpf_objects, tshoot):
    sim = simdatapath.start(simdatapath.service_scenario("1.19.4"), kubeapi, tmp_path, bpf_objects)
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
