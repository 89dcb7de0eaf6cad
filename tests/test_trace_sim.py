"""`tshoot trace` and `tshoot drops` on the simulated Cilium cluster (tests/simdatapath.py), whose programs
forward and drop real packets as Cilium's datapath does: a cross-node ping followed hop by hop through both
nodes and the docker network between them, a Service connection with its DNAT and reverse NAT visible, a
policy drop named by the program that dropped it and counted by Cilium's own counters (through the agents),
and filters that must match or must not. Every printed field is checked against the packet sent and the
sim's own names and addresses; pods and nodes are `ip netns` namespaces, which tshoot trace names as
`ip netns` does."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests import simdatapath, simtraffic
from tests.conftest import need_tracer
from tests.test_trace import Trace

WORKER, CONTROL_PLANE = "k8s-guide-worker", "k8s-guide-control-plane"
SOURCE, DESTINATION = "net-tshoot-xbw6q", "net-tshoot-4gmzr"  # 10.0.2.99 on the worker -> 10.0.1.110
CLIENT, BACKEND = "client-7d9f8-x2v4q", "coredns-6f6b679f8f-qb5dn"  # seed 003: worker -> CoreDNS on the CP
KUBE_DNS = "10.32.0.10"
VXLAN_PORT = 8472  # simdatapath's cilium_vxlan (dstport 8472, Cilium's)
PING_DATA = 8 + len("kindlab-ping")  # tests/simtraffic.py's echo request: ICMP header and its payload
ETH, IP, UDP, VXLAN = 14, 20, 8, 8


@pytest.fixture
def guide(sim):
    need_tracer()
    return sim(simdatapath.guide_scenario("1.19.4"))


def ours(s, trace: Trace, count: int, timeout: float = 15) -> list[dict]:
    """The events of this sim's namespaces printed so far, once there are `count` of them (or the timeout
    passed) and half a second more for any that should not be there. Other tests on this machine run sims
    with the same addresses: their hops, also on this kernel, are left out by where they happened."""
    where = {s.underlay, *(n.netns for n in s.nodes.values()), *(p.netns for p in s.pods.values())}
    deadline = time.monotonic() + timeout
    while len([e for e in trace.events(settle=0) if e["where"] in where]) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    return [e for e in trace.events(settle=0) if e["where"] in where]


def traced_ping(s, kubeapi, source, address: str, count: int) -> tuple[list[dict], dict, Trace]:
    """One ping from the source pod to `address`, traced (host ADDRESS and icmp): this sim's `count` events
    (ours), the trace's summary, and the trace."""
    trace = Trace("host", address, "and", "icmp", "--kubeconfig", str(kubeapi.kubeconfig))
    try:
        assert simtraffic.ping(source.netns, address)
        events = ours(s, trace, count)
    finally:
        summary = trace.stop()
    return events, summary, trace


def consistent(summary: dict, trace: Trace) -> None:
    """The summary counts what the trace printed (other sims' hops included) and lost nothing."""
    printed = trace.events(settle=0)
    dropped = [e for e in printed if e["event"] == "dropped" and "normal" not in e["drop"]]
    assert (summary["events"], summary["dropped"], summary["lost"]) == (len(printed), len(dropped), 0), summary


def hop(e: dict) -> tuple:
    return (e["where"], e["device"], e["event"])


def links(netns: str) -> dict[str, dict]:
    return {link["ifname"]: link for link in json.loads(subprocess.run(
        ["ip", "-d", "-n", netns, "-j", "link", "show"], capture_output=True, text=True, check=True).stdout)}


def uplink(s, node: str) -> str:
    """The docker-network bridge's port of a node (its eth0's veth peer, in the underlay namespace): the sim
    names it u<the node's index>…."""
    index = list(s.nodes).index(node)
    return next(name for name, link in links(s.underlay).items()
                if link.get("master") == "br0" and name.startswith(f"u{index}"))


def crossing(s, source, destination) -> list[tuple]:
    """The hops of a packet from one pod to a pod on another node: out of the pod, into its lxc (from-container
    redirects it to cilium_vxlan: "redirected" there, before encapsulation), encapsulated out of the node's
    eth0, across the docker network's bridge, into the peer node's eth0, decapsulated on its cilium_vxlan, out
    of the destination's lxc (its policy program redirects it there: "redirected"), into the pod."""
    a, b = s.nodes[source.node], s.nodes[destination.node]
    return [
        (source.netns, "eth0", "transmitted"),
        (a.netns, source.lxc_name, "received"),
        (a.netns, "cilium_vxlan", "redirected"),
        (a.netns, "eth0", "encapsulated"),
        (s.underlay, uplink(s, source.node), "received"),
        (s.underlay, uplink(s, destination.node), "encapsulated"),
        (b.netns, "eth0", "received"),
        (b.netns, "cilium_vxlan", "decapsulated"),
        (b.netns, destination.lxc_name, "redirected"),
        (destination.netns, "eth0", "received"),
    ]


def check_crossing(s, events: list[dict], source, destination, packets: list[dict], payload: int) -> None:
    """Every field of a crossing's hops: the devices' kinds and ifindexes as the kernel has them, the packet at
    each hop, the tunnel key on cilium_vxlan (the VNI = the source's identity, the peer node), the outer
    header (the nodes' eth0 addresses, Cilium's port, the VNI, named by its labels) exactly on the hops
    between the two nodes' eth0, the lengths as each tracepoint sees
    them (with the Ethernet header on transmit, without on receive), the cluster's names for the addresses,
    the namespace's inode, and one skb all the way."""
    a, b = s.nodes[source.node], s.nodes[destination.node]
    named = {pod.ip: f"{pod.namespace}/{pod.name}" for pod in s.pods.values()}
    assert [hop(e) for e in events] == crossing(s, source, destination)
    assert len(packets) == len(events)
    outer = {"src": a.spec.ip, "dst": b.spec.ip, "proto": "udp", "dport": VXLAN_PORT, "vni": source.identity}
    inner = IP + payload
    encapsulated = ETH + IP + UDP + VXLAN + ETH + inner
    for i, (e, packet) in enumerate(zip(events, packets)):
        netns = e["where"]
        link = links(netns)[e["device"]]
        assert (e["ifindex"], e["device_kind"]) == (link["ifindex"], link.get("linkinfo", {}).get("info_kind")
                                                    or "veth"), e
        assert e["packet"] == packet, e
        names = {k: named[packet[k]] for k in ("src", "dst") if packet[k] in named}
        tunnelled = 3 <= i <= 6
        if tunnelled:
            assert {k: e["outer"][k] for k in outer} == outer, e
            names |= {"outer_src": a.spec.name, "outer_dst": b.spec.name}
        else:
            assert "outer" not in e, e
        if i == 2:  # on cilium_vxlan, before encapsulation: the tunnel key from-container set (VNI, node)
            assert e["tunnel_key"] == {"vni": source.identity, "remote": b.spec.ip}, e
            names["remote"] = b.spec.name
        else:
            assert "tunnel_key" not in e, e
        if i == 2 or tunnelled:  # the VNI read as the identity's labels (from its CiliumIdentity)
            assert f"k8s:io.kubernetes.pod.namespace={source.namespace}" in e["names"].pop("identity"), e
        assert e["names"] == names, e
        # skb->redirected from where a program's bpf_redirect sent it until the next receive: on cilium_vxlan,
        # still on the VXLAN packet its encapsulation sends out of eth0 (named "encapsulated"), on the
        # destination's lxc; clear on the pods' routed transmits and on the bridge
        assert e.get("redirected", False) is (i in (2, 3, 8)), e
        sent = e["event"] in ("transmitted", "encapsulated", "redirected")
        assert e["len"] == (encapsulated if tunnelled else ETH + inner) - (0 if sent else ETH), e
        assert e["node"] is None  # `ip netns` namespaces, no kind node
        assert e["skb"] == events[0]["skb"]  # one buffer from the source pod to the destination pod
        assert e["netns"] == os.stat(f"/run/netns/{netns}").st_ino  # the namespace named is the event's


def test_a_cross_node_ping_hop_by_hop(guide, kubeapi):
    s = guide
    source, destination = s.pods[SOURCE], s.pods[DESTINATION]
    events, summary, trace = traced_ping(s, kubeapi, source, destination.ip, 20)
    request = [e for e in events if e["packet"].get("icmp_type") == 8]
    reply = [e for e in events if e["packet"].get("icmp_type") == 0 and e["event"] != "dropped"]
    echo = {"src": source.ip, "dst": destination.ip, "proto": "icmp", "icmp_type": 8, "icmp_code": 0}
    check_crossing(s, request, source, destination, [echo] * len(request), PING_DATA)
    check_crossing(s, reply, destination, source, [{**echo, "src": destination.ip, "dst": source.ip, "icmp_type": 0}]
                   * len(reply), PING_DATA)
    # the reply's copy for the ping's raw socket is freed as NO_SOCKET: shown, not counted as a drop
    freed = [e for e in events if e["event"] == "dropped"]
    assert all(hop(e) == (source.netns, "eth0", "dropped") and e["drop"]["reason"] == "NO_SOCKET"
               and "normal" in e["drop"] for e in freed)
    assert len({e["skb"] for e in events}) == 2 and not [e for e in events if e["event"] == "dropped"
                                                         and "normal" not in e["drop"]]
    consistent(summary, trace)


def test_a_same_node_ping_is_redirected_to_the_destination_lxc(guide, kubeapi):
    """From-container delivers to a pod on its own node with bpf_redirect to the destination's lxc (bpf_lxc.c
    ipv4_local_delivery()): that transmit is "redirected" (the kernel's skb->redirected), the pods' own eth0
    transmits, routed by their stack, stay "transmitted"."""
    s = guide
    source = s.pods[SOURCE]
    neighbour = next(p for p in s.pods.values() if p.node == source.node and p is not source)
    node = s.nodes[source.node].netns
    events, summary, trace = traced_ping(s, kubeapi, source, neighbour.ip, 8)
    sent = [e for e in events if e["event"] != "dropped"]  # (the reply's raw-socket copy is freed as NO_SOCKET)
    one_way = lambda a, b: [(a.netns, "eth0", "transmitted"), (node, a.lxc_name, "received"),  # noqa: E731
                            (node, b.lxc_name, "redirected"), (b.netns, "eth0", "received")]
    assert [hop(e) for e in sent] == one_way(source, neighbour) + one_way(neighbour, source)
    for e in sent:
        assert e.get("redirected", False) is (e["event"] == "redirected"), e
        assert e["packet"]["icmp_type"] == (8 if e["packet"]["src"] == source.ip else 0), e
    redirected = [e for e in sent if e["event"] == "redirected"]
    assert [e["ifindex"] for e in redirected] == [neighbour.lxc_index, source.lxc_index]
    assert all("tunnel_key" not in e and "outer" not in e for e in sent)
    consistent(summary, trace)


def test_a_service_connection_shows_the_dnat_and_the_reverse_nat(sim, kubeapi):
    need_tracer()
    s = sim(simdatapath.service_scenario("1.19.4"))
    client, backend = s.pods[CLIENT], s.pods[BACKEND]
    # one backend left in kube-dns's frontend: slot 1, the CoreDNS on the other node
    s.update_map(WORKER, "lb4-services", {"address": KUBE_DNS, "port": 53, "proto": "UDP", "slot": 0,
                                          "scope": "external"},
                 {"backend_id": 0, "count": 1, "rev_nat_index": 6, "flags": [], "flags2": []})
    sport = 40053
    trace = Trace("--pod", f"default/{CLIENT}", "--proto", "udp", "--kubeconfig", str(kubeapi.kubeconfig))
    try:
        with simtraffic.Server(backend.netns, "udp", 53, "qb5dn"):
            assert simtraffic.exchange(client.netns, "udp", KUBE_DNS, 53, sport=sport) == f"qb5dn {client.ip} hello"
        events = ours(s, trace, 20)
    finally:
        summary = trace.stop()
    request = [e for e in events if e["packet"]["src"] == client.ip]
    reply = [e for e in events if e["packet"]["dst"] == client.ip]
    assert len(request) + len(reply) == len(events)
    # the packet leaves the pod for the ClusterIP and reaches its lxc so (the tracepoint fires before tc
    # ingress); from-container translated it: from cilium_vxlan on, it is addressed to the backend
    to_service = {"src": client.ip, "dst": KUBE_DNS, "proto": "udp", "sport": sport, "dport": 53}
    to_backend = {**to_service, "dst": backend.ip}
    check_crossing(s, request, client, backend, [to_service] * 2 + [to_backend] * 8, UDP + len("hello"))
    # the reply leaves the backend from its own address and is translated back in the client's policy program
    # (reverse NAT by the conntrack entry's rev-NAT index 6): the client's lxc sends it from the ClusterIP
    from_backend = {"src": backend.ip, "dst": client.ip, "proto": "udp", "sport": 53, "dport": sport}
    from_service = {**from_backend, "src": KUBE_DNS}
    check_crossing(s, reply, backend, client, [from_backend] * 8 + [from_service] * 2,
                   UDP + len(f"qb5dn {client.ip} hello"))
    assert not [e for e in events if e["event"] == "dropped"]
    consistent(summary, trace)


def tc_program(netns: str, device: str, direction: str) -> dict:
    """The program on a device's tc hook, as bpftool shows it."""
    shown = json.loads(subprocess.run(["ip", "netns", "exec", netns, "bpftool", "-j", "net", "show", "dev", device],
                                      capture_output=True, text=True, check=True).stdout)
    return next(h for entry in shown for h in entry.get("tc", []) if h["kind"] == f"clsact/{direction}")


def test_a_policy_drop_is_named_by_its_program_and_counted_by_tshoot_drops(guide, kubeapi, tshoot):
    s = guide
    source, destination = s.pods[SOURCE], s.pods[DESTINATION]
    node = s.nodes[WORKER]
    # the source endpoint's egress allow-all entry gone: its from-container (bpf_lxc, tc ingress of its lxc)
    # denies the echo request with DROP_POLICY (bpf/lib/policy.h policy_can_egress4())
    s.update_map(WORKER, "policy", {"identity": 0, "direction": "egress", "protocol": "ANY", "port": 0},
                 endpoint=source.endpoint_id)
    trace = Trace("--from", f"default/{SOURCE}", "--kubeconfig", str(kubeapi.kubeconfig))
    try:
        assert not simtraffic.ping(source.netns, destination.ip, count=2, wait=0.5)
        events = ours(s, trace, 6)
    finally:
        summary = trace.stop()
    program = tc_program(node.netns, source.lxc_name, "ingress")  # tc's filter: bpf_lxc.o:[from-container]
    name = json.loads(subprocess.run(["bpftool", "-j", "prog", "show", "id", str(program["id"])], capture_output=True,
                                     text=True, check=True).stdout)["name"]
    assert (program["name"], name) == ("bpf_lxc.o:[from-container]", "cil_from_container")
    request = {"src": source.ip, "dst": destination.ip, "proto": "icmp", "icmp_type": 8, "icmp_code": 0}
    assert [hop(e) for e in events] == [(source.netns, "eth0", "transmitted"), (node.netns, source.lxc_name, "received"),
                                        (node.netns, source.lxc_name, "dropped")] * 2
    assert all(e["packet"] == request for e in events)
    for drop in events[2::3]:
        # freed where tc ingress runs: past the Ethernet header, as on receive
        assert drop["ifindex"] == source.lxc_index and drop["len"] == IP + PING_DATA
        assert drop["drop"]["reason"] == "TC_INGRESS"  # the kernel's: tc ingress returned TC_ACT_SHOT
        assert drop["drop"]["location"].startswith("__netif_receive_skb_core")
        assert drop["drop"]["program"] == {"id": program["id"], "name": name, "hook": "tc",
                                           "direction": "ingress", "interface": source.lxc_name,
                                           "section": "from-container"}
    assert all(len({e["skb"] for e in events[i:i + 3]}) == 1 for i in (0, 3))  # one buffer each (freed, reused)
    consistent(summary, trace)
    # Cilium's own account of the same two packets, read on every node through its agent
    r = tshoot("drops", "--kubeconfig", str(kubeapi.kubeconfig), "--drops-only", "-o", "json")
    assert r.code == 0, r.err
    rows = [(x["node"], x["reason"], x["direction"], x["file"], x["packets"], x["bytes"]) for x in json.loads(r.out)]
    # (the pods' IPv6 router solicitations are counted too, as DROP_UNKNOWN_L3: the lab has no IPv6)
    assert [row for row in rows if row[1] != "DROP_UNKNOWN_L3"] == \
        [(WORKER, "DROP_POLICY", "EGRESS", "bpf_lxc.c", 2, 2 * (ETH + IP + PING_DATA))], rows


def test_filters_that_match_and_filters_that_must_not(guide, kubeapi):
    s = guide
    source, destination = s.pods[SOURCE], s.pods[DESTINATION]
    cluster = ("--kubeconfig", str(kubeapi.kubeconfig))
    traces = {
        "there": Trace("--from", f"default/{SOURCE}", "--to", DESTINATION, *cluster),
        "back": Trace("--from", destination.ip, "--to", source.ip, "--proto", "icmp"),
        "pcap": Trace(f"icmp and net 10.0.0.0/16 and not host {s.nodes[WORKER].spec.router_ip}"),
        "udp": Trace("--pod", f"default/{SOURCE}", "--proto", "udp", *cluster),
        "port": Trace("host", source.ip, "and", "port", "53"),
        "other_pod": Trace("--pod", "default/net-tshoot-l8vwz", *cluster),
        "reversed": Trace("--from", DESTINATION, "--to", SOURCE, "--proto", "tcp", *cluster),
    }
    try:
        assert simtraffic.ping(source.netns, destination.ip)
        events = {name: ours(s, t, {"there": 10, "back": 10, "pcap": 20}.get(name, 0)) for name, t in traces.items()}
    finally:
        for t in traces.values():
            t.stop()
    there, back = events["there"], events["back"]
    assert [hop(e) for e in there] == crossing(s, source, destination)
    assert all((e["packet"]["src"], e["packet"]["dst"], e["packet"]["icmp_type"]) == (source.ip, destination.ip, 8)
               for e in there)
    replied = [e for e in back if e["event"] != "dropped"]
    assert [hop(e) for e in replied] == crossing(s, destination, source)
    untimed = lambda evs: [{k: v for k, v in e.items() if k not in ("time", "names")} for e in evs]  # noqa: E731
    assert untimed(events["pcap"]) == untimed(there + back)  # each tracer counts time from its own start
    assert events["udp"] == events["port"] == events["other_pod"] == events["reversed"] == []
