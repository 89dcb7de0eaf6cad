"""`tshoot walk … --trace` on the simulated cluster (tests/simdatapath.py): the walk's packet really sent from
the source pod through the API's exec, traced on this kernel, and set beside the walk's prediction."""

from __future__ import annotations

import json
import subprocess

from tests import simdatapath
from tests.conftest import need_tracer


def test_a_drop_the_walk_cannot_see_is_marked(sim, kubeapi, tshoot, bpf_objects):
    """A tc program dropping everything, put before from-container on the source pod's lxc: the maps still say
    "delivered", the real packet is dropped there, and the walk says so, naming the program."""
    need_tracer()
    s = sim(simdatapath.guide_scenario("1.19.4"))
    pod = s.pods["net-tshoot-xbw6q"]
    node_ns = s.nodes[pod.node].netns
    subprocess.run(["ip", "netns", "exec", node_ns, "tc", "filter", "add", "dev", pod.lxc_name, "ingress", "pref",
                    "1", "bpf", "da", "obj", str(bpf_objects["shot"]), "sec", "tc"], check=True)
    r = tshoot("walk", "net-tshoot-xbw6q", "10.0.1.110", "--trace", "--kubeconfig", str(kubeapi.kubeconfig),
               "-o", "json")
    result = json.loads(r.out)
    assert result["verdict"] == "delivered"  # what the maps say
    traced = result["trace"]
    assert traced["probe"] == ["ping", "-c", "1", "-W", "2", "10.0.1.110"]
    assert traced["hops"][0]["where"] == pod.netns and traced["hops"][0]["event"] == "transmitted"
    assert traced["observed"]["verdict"] == "dropped"
    assert (traced["observed"]["where"], traced["observed"]["device"]) == (node_ns, pod.lxc_name)
    assert traced["observed"]["drop"]["reason"] == "TC_INGRESS"
    assert traced["observed"]["drop"]["program"]["name"] == "kindlab_shot"
    assert traced["agrees"] is False and "dropped" in traced["disagreement"] and "kindlab_shot" in traced["disagreement"]
    assert r.code == 1  # a disagreement is a finding
    table = tshoot("walk", "net-tshoot-xbw6q", "10.0.1.110", "--trace", "--kubeconfig", str(kubeapi.kubeconfig))
    assert "DISAGREES" in table.out and "the real packet" in table.out


def test_trace_needs_the_source_pod(tshoot, sim, kubeapi):
    need_tracer()
    s = sim(simdatapath.guide_scenario("1.19.4"))
    node = s.nodes["k8s-guide-worker"]
    r = tshoot("walk", "10.0.2.99", "10.0.1.110", "--backend", "local", "--bpffs", str(node.bpffs), "--netns",
               node.netns, "--trace")
    assert r.code == 2 and "--pod-netns" in r.err
