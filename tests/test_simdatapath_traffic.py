"""The simulated cluster moves real packets (bpf/progs/cilium/datapath.bpf.c on tests/simdatapath.py):
pod to pod on a node and across nodes through VXLAN, pod to a Service's backend on another node and the
reverse-NATed reply, pod to the internet behind the node's masquerade; and taking away a policy entry, a
Service backend, an ipcache entry or an endpoint's policy program drops the packet where Cilium's
datapath drops it, counted in cilium_metrics under Cilium's reason and direction."""

import json
import subprocess

import pytest

from tests import simdatapath, simtraffic
from tests.simtraffic import METRIC_EGRESS, METRIC_INGRESS
from tshoot.maps import find

VERSIONS = ["1.9.1", "1.19.4"]
ALL_ERAS = ["1.9.1", "1.16.15", "1.18.3", "1.19.4"]  # where a version boundary decides the drop
WORKER, CONTROL_PLANE = "k8s-guide-worker", "k8s-guide-control-plane"
CLIENT, LOCAL_DNS, REMOTE_DNS = "client-7d9f8-x2v4q", "coredns-6f6b679f8f-wx7tl", "coredns-6f6b679f8f-qb5dn"
KUBE_DNS = "10.32.0.10"


def dns_scenario(version: str) -> dict:
    """Seed 003's cluster, kube-dns serving 53/TCP too (as it does): the client and one CoreDNS on the
    worker, the other CoreDNS (the Service's slot 1) on the control plane."""
    scenario = simdatapath.service_scenario(version)
    for obj in scenario["objects"]:
        if obj.get("kind") == "Service" and obj["metadata"]["name"] == "kube-dns":
            obj["spec"]["ports"].append({"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53})
    return scenario


def delta(before, after, key) -> int:
    return after[key] - before[key]


def pod_counter(sim, name):
    pod = sim.pods[name]
    return simtraffic.rx_packets(pod.netns, "eth0")


@pytest.mark.parametrize("version", VERSIONS)
def test_pod_to_pod_on_a_node_and_across_nodes(sim, version):
    s = sim(dns_scenario(version))
    client = s.pods[CLIENT]
    forwarded = (simtraffic.REASON_FORWARDED, METRIC_EGRESS), (simtraffic.REASON_FORWARDED, METRIC_INGRESS)
    for name, tag in ((LOCAL_DNS, "local"), (REMOTE_DNS, "remote")):
        target = s.pods[name]
        before = pod_counter(s, name)
        counted = {node: simtraffic.metrics(s.map_path(node, "cilium_metrics")) for node in (WORKER, CONTROL_PLANE)}
        assert simtraffic.ping(client.netns, target.ip, count=3), name
        with simtraffic.Server(target.netns, "tcp", 8080, tag):
            # no NAT between pods: the server sees the client's own address
            assert simtraffic.exchange(client.netns, "tcp", target.ip, 8080) == f"{tag} {client.ip} hello"
        assert pod_counter(s, name) - before >= 3 + 3  # three echo requests, the TCP handshake and data
        # Forwards are counted too (trace.h): into an lxc as ingress, out of the client's lxc (to the
        # overlay) as egress; a local delivery is counted once, on the way in.
        after = {node: simtraffic.metrics(s.map_path(node, "cilium_metrics")) for node in (WORKER, CONTROL_PLANE)}
        target_node = target.node
        assert delta(counted[target_node], after[target_node], forwarded[1]) >= 6
        if target_node != WORKER:
            assert delta(counted[WORKER], after[WORKER], forwarded[0]) >= 6


@pytest.mark.parametrize("version", VERSIONS)
def test_service_to_a_backend_on_another_node_and_back(sim, version):
    s = sim(dns_scenario(version))
    client, backend = s.pods[CLIENT], s.pods[REMOTE_DNS]
    # One backend left in the frontend: slot 1, the CoreDNS on the control plane.
    proto = "ANY" if s.version < (1, 17, 0) else "UDP"
    for p in {proto, "ANY" if s.version < (1, 17, 0) else "TCP"}:
        s.update_map(WORKER, "lb4-services", {"address": KUBE_DNS, "port": 53, "proto": p, "slot": 0,
                                              "scope": "external"},
                     {"backend_id": 0, "count": 1, "rev_nat_index": 6, "flags": [], "flags2": []})
    before = pod_counter(s, REMOTE_DNS)
    with simtraffic.Server(backend.netns, "udp", 53, "qb5dn"), simtraffic.Server(backend.netns, "tcp", 53, "qb5dn"):
        # DNAT to the backend (it sees the client's address), and the reply comes back from the Service's
        # address: the client's sockets are connected to 10.32.0.10:53 and take nothing else.
        assert simtraffic.exchange(client.netns, "udp", KUBE_DNS, 53) == f"qb5dn {client.ip} hello"
        assert simtraffic.exchange(client.netns, "tcp", KUBE_DNS, 53) == f"qb5dn {client.ip} hello"
    assert pod_counter(s, REMOTE_DNS) - before >= 2
    # the flow's conntrack entries on the client's node: the Service entry (TUPLE_F_SERVICE) for the VIP
    dump = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "pinned",
                                      str(s.map_path(WORKER, "cilium_ct_any4_global"))],
                                     capture_output=True, text=True, check=True).stdout)
    keys = [bytes(int(b, 16) for b in entry["key"]) for entry in dump]
    assert any(k[:4] == bytes([10, 32, 0, 10]) and k[13] == 4 for k in keys), keys


@pytest.mark.parametrize("version", VERSIONS)
def test_pod_to_the_internet_is_masqueraded(sim, version):
    s = sim(dns_scenario(version))
    client = s.pods[CLIENT]
    assert simtraffic.ping(client.netns, simdatapath.INTERNET_IP, count=2)
    with simtraffic.Server(s.internet, "tcp", 80, "www"):
        node_ip = s.nodes[WORKER].spec.ip  # iptables MASQUERADE on the node: the internet sees the node
        assert simtraffic.exchange(client.netns, "tcp", simdatapath.INTERNET_IP, 80) == f"www {node_ip} hello"


def assert_dropped(s, node, netns, address, reason, direction):
    path = s.map_path(node, "cilium_metrics")
    before = simtraffic.metrics(path)
    assert not simtraffic.ping(netns, address, count=2, wait=0.5)
    after = simtraffic.metrics(path)
    assert delta(before, after, (reason, direction)) >= 2, (before, after)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_no_policy_entry_drops(sim, version, direction):
    s = sim(dns_scenario(version))
    client, target = s.pods[CLIENT], s.pods[LOCAL_DNS]
    # the destination's ingress allow-all (checked in its policy program) or the source's egress one
    # (checked in its from-container)
    owner = target if direction == "ingress" else client
    s.update_map(WORKER, "policy", {"identity": 0, "direction": direction, "protocol": "ANY", "port": 0},
                 endpoint=owner.endpoint_id)
    assert_dropped(s, WORKER, client.netns, target.ip, simtraffic.DROP_POLICY,
                   METRIC_INGRESS if direction == "ingress" else METRIC_EGRESS)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_service_without_backends_drops(sim, version):
    s = sim(dns_scenario(version))
    path = s.map_path(WORKER, find("lb4-backends")[0].pin(s.version).name)
    for entry in json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "pinned", str(path)],
                                           capture_output=True, text=True, check=True).stdout):
        subprocess.run(["bpftool", "map", "delete", "pinned", str(path), "key", "hex",
                        *(b.removeprefix("0x") for b in entry["key"])], check=True)
    metrics_path = s.map_path(WORKER, "cilium_metrics")
    before = simtraffic.metrics(metrics_path)
    # lb4_local(): the slot's backend is gone -> DROP_NO_SERVICE, in every version
    assert simtraffic.exchange(s.pods[CLIENT].netns, "udp", KUBE_DNS, 53, timeout=0.5) is None
    after = simtraffic.metrics(metrics_path)
    assert delta(before, after, (simtraffic.DROP_NO_SERVICE, METRIC_EGRESS)) >= 1, (before, after)


@pytest.mark.parametrize("version", ALL_ERAS)
def test_a_missing_ipcache_entry_is_unroutable(sim, version):
    s = sim(dns_scenario(version))
    client, target = s.pods[CLIENT], s.pods[REMOTE_DNS]
    s.update_map(WORKER, "ipcache", {"prefix": target.ip})
    if s.version < (1, 18, 0):
        # the ipcache says world, without a tunnel endpoint: cilium_tunnel_map by the pod CIDR still
        # knows the node (encap_and_redirect_lxc), the packet is delivered
        assert simtraffic.ping(client.netns, target.ip)
        s.update_map(WORKER, "tunnel", {"ip": s.nodes[CONTROL_PLANE].spec.pod_cidr.split("/")[0]})
    # to the stack, routed to cilium_host, where bpf_host finds nothing but the world: DROP_UNROUTABLE
    assert_dropped(s, WORKER, client.netns, target.ip, simtraffic.DROP_UNROUTABLE, METRIC_INGRESS)


@pytest.mark.parametrize("version", ALL_ERAS)
def test_an_empty_policy_slot_drops(sim, version):
    s = sim(dns_scenario(version))
    reason = simtraffic.DROP_EP_NOT_READY if s.version >= (1, 16, 0) else simtraffic.DROP_MISSED_TAIL_CALL
    client = s.pods[CLIENT]
    for node, name, direction in ((WORKER, LOCAL_DNS, METRIC_EGRESS), (CONTROL_PLANE, REMOTE_DNS, METRIC_INGRESS)):
        target = s.pods[name]
        subprocess.run(["bpftool", "map", "delete", "pinned", str(s.map_path(node, "cilium_call_policy")), "key",
                        "hex", *target.endpoint_id.to_bytes(4, "little").hex(" ").split()], check=True)
        # local delivery from the client's lxc (egress) or from the overlay (ingress)
        assert_dropped(s, node, client.netns, target.ip, reason, direction)
