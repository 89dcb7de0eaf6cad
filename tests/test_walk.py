"""`tshoot walk` on a simulated cluster (tests/simdatapath.py): the guide's pod-to-pod walk across the VXLAN
tunnel and seed 003's Service walk, through the API server's real exec path into real kernel maps."""

import json
import subprocess

import pytest

from tests import simdatapath


def walk(tshoot, kubeapi, *args):
    r = tshoot("walk", *args, "--kubeconfig", str(kubeapi.kubeconfig), "-o", "json")
    assert r.out, r
    return r, json.loads(r.out)


def steps(result):
    return {s["title"]: s for s in result["steps"]}


@pytest.mark.parametrize("version", ["1.9.1", "1.16.15", "1.18.3", "1.19.4"])
def test_guide_walk_across_the_tunnel(sim, kubeapi, tshoot, version):
    sim(simdatapath.guide_scenario(version))
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    assert (r.code, result["verdict"]) == (0, "delivered"), result
    by = steps(result)
    pod = by["source pod: route and neighbour"]["result"]
    assert pod["interface"] == "eth0@if24" and pod["route"]["gateway"] == "10.0.2.184"
    lxc = by["source node: the pod's lxc device, its program, its endpoint"]["result"]
    assert lxc["lxc"] == {"name": "lxcda722d56d553", "ifindex": 24}
    assert lxc["program"]["section"] == "from-container"
    ipcache = by["source node: ipcache lookup of the destination"]["result"]
    assert (ipcache["identity"], ipcache["tunnel_endpoint"], ipcache["tunnel_node"]) == \
        (53731, "172.18.0.5", "k8s-guide-control-plane")
    assert "k8s:name=net-tshoot" in ipcache["labels"]
    decision = by["source node: forwarding decision"]["result"]
    assert decision["decision"] == "tunnel"
    overlay = by["destination node: from-overlay"]
    assert overlay["node"] == "k8s-guide-control-plane" and overlay["result"]["device"] == "cilium_vxlan(5)"
    entry = by["destination node: endpoint lookup (cilium_lxc)"]["result"]
    assert (entry["ifindex"], entry["lxc_id"], entry["mac"], entry["node_mac"]) == \
        (11, 2006, "6a:8c:ee:3a:73:d5", "3e:43:da:fb:c7:04")
    assert entry["pod"] == "default/net-tshoot-4gmzr"
    assert by["destination node: the destination endpoint's ingress policy"]["result"]["verdict"] == "allowed"
    # delivered: the forward counter of the destination's to-container (TO_LXC: REASON_FORWARDED, ingress)
    assert {k: result["counter"][k] for k in ("node", "reason", "code", "direction")} == \
        {"node": "k8s-guide-control-plane", "reason": "REASON_FORWARDED", "code": 0, "direction": "INGRESS"}
    # every lookup shows the command that ran in the agent
    assert any("bpftool map lookup pinned /sys/fs/bpf/tc/globals/cilium_ipcache" in c
               for c in by["source node: ipcache lookup of the destination"]["commands"])


def test_walk_to_a_pod_by_name_and_the_table(sim, kubeapi, tshoot):
    sim(simdatapath.guide_scenario("1.19.4"))
    r = tshoot("walk", "net-tshoot-xbw6q", "net-tshoot-4gmzr", "--kubeconfig", str(kubeapi.kubeconfig))
    assert r.code == 0, r
    assert "10.0.2.99 on k8s-guide-worker" in r.out and "delivered" in r.out.splitlines()[-1]
    assert "encapsulated in VXLAN to 172.18.0.5 (k8s-guide-control-plane)" in r.out


@pytest.mark.parametrize("version", ["1.9.1", "1.19.4"])  # the protocol joined the service key in 1.17
def test_service_walk_reproduces_seed_003(sim, kubeapi, tshoot, version):
    sim(simdatapath.service_scenario(version))
    r, result = walk(tshoot, kubeapi, "client-7d9f8-x2v4q", "10.32.0.10:53/udp", "--slot", "2")
    assert (r.code, result["verdict"]) == (0, "delivered"), result
    by = steps(result)
    lb = by["source node: is it a Service? (load balancer)"]["result"]
    assert lb["frontend"]["backends"] == 2 and lb["frontend"]["rev_nat_index"] == 6
    chosen = next(s for s in lb["slots"] if s["slot"] == lb["chosen"])
    assert (chosen["slot"], chosen["backend"]["address"], chosen["backend"]["port"]) == (2, "10.200.0.44", 53)
    assert lb["rev_nat"] == {"address": "10.32.0.10", "port": 53}
    ipcache = by["source node: ipcache lookup of the destination"]["result"]
    assert ipcache["identity"] == 18203 and ipcache["tunnel_endpoint"] is None
    assert by["source node: forwarding decision"]["result"]["decision"] == "local"
    assert by["delivery"]["result"]["pod"].startswith("kube-system/coredns-")


def test_walk_stops_at_a_policy_deny(sim, kubeapi, tshoot):
    s = sim(simdatapath.guide_scenario("1.19.4"))
    # remove the destination endpoint's allow-all ingress entry: nothing allows the source any more
    path = s.map_path("k8s-guide-control-plane", "cilium_policy_v2_02006")
    key = tshoot("key", "policy", "--identity", "0", "--direction", "ingress").out.split()
    subprocess.run(["bpftool", "map", "delete", "pinned", str(path), "key", "hex", *key], check=True)
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    assert (r.code, result["verdict"]) == (1, "stopped")
    assert "policy denies ingress for endpoint 2006" in result["reason"]
    assert result["steps"][-1]["title"] == "destination node: the destination endpoint's ingress policy"
    # the counter the drop increments there, as bpf_lxc.c's send_drop_notify counts it (1.19.4's names)
    assert result["counter"] == {"node": "k8s-guide-control-plane", "reason": "DROP_POLICY", "code": 133,
                                 "description": "Policy denied", "direction": "INGRESS", "program": "bpf_lxc.c"}


def test_walk_stops_without_a_service_backend(sim, kubeapi, tshoot):
    s = sim(simdatapath.service_scenario("1.19.4"))
    path = s.map_path("k8s-guide-worker", "cilium_lb4_services_v2")
    key = tshoot("key", "lb4-services", "10.32.0.10:53/udp").out.split()
    zero_count = subprocess.run(["bpftool", "map", "lookup", "pinned", str(path), "key", "hex", *key],
                                capture_output=True, text=True).stdout.split("value:")[1].split()
    zero_count[4:6] = ["00", "00"]  # count (u16 at bytes 4-5) = 0: the Service lost its backends
    subprocess.run(["bpftool", "map", "update", "pinned", str(path), "key", "hex", *key, "value", "hex",
                    *zero_count], check=True)
    r, result = walk(tshoot, kubeapi, "client-7d9f8-x2v4q", "10.32.0.10:53/udp")
    assert (r.code, result["verdict"]) == (1, "stopped") and "has no backend" in result["reason"]


def test_walk_errors_are_one_line(sim, kubeapi, tshoot):
    sim(simdatapath.guide_scenario("1.19.4"))
    r = tshoot("walk", "no-such-pod", "10.0.1.110", "--kubeconfig", str(kubeapi.kubeconfig))
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and "no-such-pod" in r.err
    r = tshoot("walk", "net-tshoot-xbw6q", "10.0.1.110:http", "--kubeconfig", str(kubeapi.kubeconfig))
    assert r.code == 2 and "is not ADDRESS:PORT" in r.err and len(r.err.strip().splitlines()) == 1


def test_local_backend_walks_one_node(sim, kubeapi, tshoot):
    s = sim(simdatapath.service_scenario("1.19.4"))
    node = s.nodes["k8s-guide-worker"]
    client = s.pods["client-7d9f8-x2v4q"]
    local = ["--backend", "local", "--bpffs", str(node.bpffs), "--netns", node.netns, "--pod-netns", client.netns,
             "--cilium-version", "1.19.4", "-o", "json"]
    r = tshoot("walk", client.ip, "10.32.0.10:53/udp", "--slot", "2", *local)
    result = json.loads(r.out)
    assert (r.code, result["verdict"]) == (0, "delivered"), result
    assert steps(result)["delivery"]["result"]["interface"] == s.pods["coredns-6f6b679f8f-wx7tl"].lxc_name
    # slot 1 is the CoreDNS pod on the other node: the local backend says where the walk would continue
    r = tshoot("walk", client.ip, "10.32.0.10:53/udp", "--slot", "1", *local)
    result = json.loads(r.out)
    assert (r.code, result["verdict"]) == (0, "left") and "cannot reach" in result["reason"]



def test_walk_stops_where_a_map_is_missing(sim, kubeapi, tshoot):
    s = sim(simdatapath.guide_scenario("1.19.4"))
    s.map_path("k8s-guide-control-plane", "cilium_lxc").unlink()  # the destination node lost its endpoint map
    r, result = walk(tshoot, kubeapi, "net-tshoot-xbw6q", "10.0.1.110")
    assert (r.code, result["verdict"]) == (1, "stopped")
    assert result["reason"].startswith("lxc on k8s-guide-control-plane: map cilium_lxc is not pinned")
    assert result["steps"][-1]["title"] == "destination node: endpoint lookup (cilium_lxc)"
