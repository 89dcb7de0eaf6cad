"""`tshoot trace` for real: the CO-RE tracer attached to this kernel while packets cross a two-node VXLAN
overlay in network namespaces (tests/tracetopo.py), every printed field checked against the packet sent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import need_root, need_tracer
from tests.tracetopo import VNI, VXLAN_PORT, Overlay

pytestmark = pytest.mark.root


@pytest.fixture
def overlay():
    need_tracer()
    topo = Overlay()
    try:
        yield topo.build()
    finally:
        topo.destroy()


class Trace:
    """`tshoot trace … -o json` running; events read as they are printed."""

    def __init__(self, *args: str, timeout: float = 20):
        self.proc = subprocess.Popen([sys.executable, "-m", "tshoot.main", "trace", *args, "-o", "json",
                                      "--timeout", str(timeout)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        assert "attached" in line, line + self.proc.stderr.read()
        self.lines: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def events(self, settle: float = 1.0) -> list[dict]:
        """The events printed so far (after `settle` seconds for the last hops to be drained)."""
        time.sleep(settle)
        return [e for e in self.lines if "summary" not in e]

    def stop(self) -> dict:
        """Ctrl-C: the summary line."""
        self.proc.send_signal(2)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        return next(e["summary"] for e in self.lines if "summary" in e)


def _hop(e: dict) -> tuple:
    return (e["where"], e["device"], e["event"])


def test_a_ping_across_the_overlay_hop_by_hop(overlay):
    a, b = overlay.pod_ip["A"], overlay.pod_ip["B"]
    ns, vx = overlay.ns, overlay.vx
    trace = Trace(f"host {b} and icmp")
    try:
        assert overlay.ping("A", b).returncode == 0
        events = trace.events()
    finally:
        summary = trace.stop()
    request = [e for e in events if e["packet"].get("icmp_type") == 8]
    reply = [e for e in events if e["packet"].get("icmp_type") == 0]
    assert [_hop(e) for e in request] == [
        (ns["podA"], "eth0", "transmitted"),
        (ns["nodeA"], overlay.lxc["A"], "received"),
        (ns["nodeA"], vx, "transmitted"),
        (ns["nodeA"], "eth0", "encapsulated"),
        (ns["nodeB"], "eth0", "received"),
        (ns["nodeB"], vx, "decapsulated"),
        (ns["nodeB"], overlay.lxc["B"], "transmitted"),
        (ns["podB"], "eth0", "received"),
    ]
    assert [_hop(e) for e in reply if e["event"] != "dropped"] == [
        (ns["podB"], "eth0", "transmitted"),
        (ns["nodeB"], overlay.lxc["B"], "received"),
        (ns["nodeB"], vx, "transmitted"),
        (ns["nodeB"], "eth0", "encapsulated"),
        (ns["nodeA"], "eth0", "received"),
        (ns["nodeA"], vx, "decapsulated"),
        (ns["nodeA"], overlay.lxc["A"], "transmitted"),
        (ns["podA"], "eth0", "received"),
    ]
    for e in request:
        assert e["packet"] == {"src": a, "dst": b, "proto": "icmp", "icmp_type": 8, "icmp_code": 0}
        assert e["device_kind"] == {"eth0": "veth", vx: "vxlan"}.get(e["device"], "veth")
    for e in reply:
        assert (e["packet"]["src"], e["packet"]["dst"]) == (b, a)
    # On the underlay the packet is the outer one: node addresses, Cilium's port, the VNI (the identity).
    outer = {"src": overlay.node_ip["A"], "dst": overlay.node_ip["B"], "proto": "udp", "dport": VXLAN_PORT,
             "vni": VNI}
    for e in request[3:5]:
        assert {k: e["outer"][k] for k in outer} == outer
    assert all("outer" not in e for e in request[:3] + request[5:])
    # Forwarded by the nodes' IP routing, not by a BPF redirect: the kernel's skb->redirected is clear on every hop.
    assert not [e for e in events if "redirected" in e or e["event"] == "redirected"], events
    # Lengths as each tracepoint sees them: with the Ethernet header on transmit, without on receive
    # (84 = 20 IPv4 + 64 ICMP for ping's 56 data bytes; 50 more bytes of VXLAN encapsulation on the underlay).
    assert (request[0]["len"], request[-1]["len"], request[3]["len"]) == (98, 84, 148)
    # One packet (the same skb) on each side of the veths; the reply's copy for ping's raw socket is not a drop.
    assert summary["dropped"] == 0 and summary["lost"] == 0 and summary["events"] == len(events)
    normal = [e for e in events if e["event"] == "dropped"]
    assert all(e["drop"]["reason"] == "NO_SOCKET" and "normal" in e["drop"] for e in normal)


def test_a_tc_program_dropping_is_named_with_the_kernel_reason(overlay, bpf_objects):
    node, lxc = overlay.ns["nodeA"], overlay.lxc["A"]
    # The program drops ARP too: the pod knows its gateway's MAC beforehand, so its IPv4 packet leaves.
    mac = json.loads(subprocess.run(["ip", "-n", node, "-j", "link", "show", lxc], check=True, capture_output=True,
                                    text=True).stdout)[0]["address"]
    subprocess.run(["ip", "-n", overlay.ns["podA"], "neigh", "replace", overlay.gw_ip["A"], "lladdr", mac, "dev",
                    "eth0", "nud", "permanent"], check=True)
    subprocess.run(["ip", "netns", "exec", node, "tc", "qdisc", "add", "dev", lxc, "clsact"], check=True)
    subprocess.run(["ip", "netns", "exec", node, "tc", "filter", "add", "dev", lxc, "ingress", "bpf", "da", "obj",
                    str(bpf_objects["shot"]), "sec", "tc"], check=True)
    shown = json.loads(subprocess.run(["ip", "netns", "exec", node, "bpftool", "-j", "net", "show", "dev", lxc],
                                      check=True, capture_output=True, text=True).stdout)
    prog_id = shown[0]["tc"][0]["id"]
    b = overlay.pod_ip["B"]
    trace = Trace(f"host {b}")
    try:
        assert overlay.ping("A", b).returncode != 0  # dropped
        events = trace.events()
    finally:
        summary = trace.stop()
    drops = [e for e in events if e["event"] == "dropped"]
    assert drops, events
    drop = drops[0]
    assert (drop["where"], drop["device"], drop["packet"]["src"], drop["packet"]["dst"]) == \
        (node, lxc, overlay.pod_ip["A"], b)
    assert drop["drop"]["reason"] == "TC_INGRESS"
    assert drop["drop"]["location"].startswith("__netif_receive_skb_core")
    assert drop["drop"]["program"] == {"id": prog_id, "name": "kindlab_shot", "hook": "tc", "direction": "ingress",
                                       "interface": lxc, "section": drop["drop"]["program"]["section"]}
    # the packet never got further than the pod's veth: received there (the tracepoint fires before tc
    # ingress runs), then dropped
    assert {_hop(e) for e in events} == {(overlay.ns["podA"], "eth0", "transmitted"), (node, lxc, "received"),
                                         (node, lxc, "dropped")}
    assert summary["dropped"] == len(drops)


def _udp(overlay, source: str, target: str, port: int) -> None:
    subprocess.run(["ip", "netns", "exec", overlay.ns[f"pod{source}"], sys.executable, "-c",
                    "import socket,sys; socket.socket(2, 2).sendto(b'x' * 32, (sys.argv[1], int(sys.argv[2])))",
                    target, str(port)], check=True)


def test_filters_that_match_and_filters_that_must_not(overlay):
    a, b, x = overlay.pod_ip["A"], overlay.pod_ip["B"], overlay.x
    traces = {
        "port": Trace(f"udp and port 5555 and net 10.{x}.0.0/16"),
        "other_port": Trace(f"udp and port 5556 and net 10.{x}.0.0/16"),
        "from_b": Trace("--from", b, "--proto", "udp"),
        "not_udp": Trace(f"not udp and net 10.{x}.0.0/16"),
        "to_b_5555": Trace("--to", b, "--port", "5555"),
    }
    try:
        _udp(overlay, "A", b, 5555)
        time.sleep(1.5)
        events = {name: t.events(settle=0) for name, t in traces.items()}
    finally:
        for t in traces.values():
            t.stop()
    hops = events["port"]
    assert len(hops) == 9  # the 8 hops to pod B, then the drop: nothing listens on 5555
    assert all(e["packet"] == {"src": a, "dst": b, "proto": "udp", "sport": e["packet"]["sport"], "dport": 5555}
               for e in hops)
    assert hops[3]["event"] == "encapsulated" and hops[3]["outer"]["vni"] == VNI
    dropped = hops[-1]
    assert (dropped["where"], dropped["device"], dropped["event"]) == (overlay.ns["podB"], "eth0", "dropped")
    assert dropped["drop"]["reason"] == "NO_SOCKET" and dropped["drop"]["location"].startswith("__udp4_lib_rcv")
    assert "normal" not in dropped["drop"]
    untimed = lambda evs: [{k: v for k, v in e.items() if k != "time"} for e in evs]  # noqa: E731
    assert untimed(events["to_b_5555"]) == untimed(hops)  # each tracer counts time from its own start
    assert events["other_port"] == [] and events["from_b"] == []
    # not udp: only pod B's kernel answering the closed port (ICMP port unreachable), back across the overlay
    answer = events["not_udp"]
    assert answer and all(e["packet"] == {"src": b, "dst": a, "proto": "icmp", "icmp_type": 3, "icmp_code": 3}
                          for e in answer)
    assert _hop(answer[0]) == (overlay.ns["podB"], "eth0", "transmitted")


def test_without_root_one_line_saying_how(tshoot):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run tshoot as another user")
    proc = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                           sys.executable, "-m", "tshoot.main", "trace", "host", "10.0.0.1"],
                          capture_output=True, text=True, cwd="/")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "needs root" in proc.stderr and "sudo tshoot trace" in proc.stderr


def test_names_from_the_cluster(kubeapi_cluster):
    """With a kubeconfig, addresses are named as the cluster names them: the guide's pods on its two nodes,
    the node addresses of the overlay hop, and the VNI as the identity it carries."""
    need_tracer()
    from tests.kubeapi.objects import GUIDE_IDENTITY

    topo = Overlay(x=0, hosts=(110, 99), node_ips=("172.18.0.5", "172.18.0.4")).build()
    try:
        trace = Trace("host", "10.0.2.99", "and", "icmp", "--kubeconfig", str(kubeapi_cluster.kubeconfig))
        try:
            assert topo.ping("A", "10.0.2.99").returncode == 0
            events = trace.events()
        finally:
            trace.stop()
    finally:
        topo.destroy()
    request = [e for e in events if e["packet"].get("icmp_type") == 8]
    assert len(request) == 8
    assert all(e["names"]["src"] == "default/net-tshoot-4gmzr" and e["names"]["dst"] == "default/net-tshoot-xbw6q"
               for e in request)
    encapsulated = request[3]
    labels = next(i for i in kubeapi_cluster.list("ciliumidentities") if i["metadata"]["name"] == str(GUIDE_IDENTITY))
    assert (encapsulated["names"]["outer_src"], encapsulated["names"]["outer_dst"]) == \
        ("k8s-guide-control-plane", "k8s-guide-worker")
    assert encapsulated["names"]["identity"] == [f"{k}={v}" for k, v in sorted(labels["security-labels"].items())]


def test_pods_are_found_in_the_cluster(tshoot, kubeapi_cluster):
    """--pod / --from / --to name pods; their addresses come from the cluster (-v shows the filter)."""
    need_tracer()
    r = tshoot("trace", "--pod", "default/net-tshoot-4gmzr", "--to", "net-tshoot-xbw6q", "--kubeconfig",
               str(kubeapi_cluster.kubeconfig), "--timeout", "0.5", "-v")
    assert r.code == 0, r.err
    assert "filter (host 10.0.1.110) and (dst host 10.0.2.99)" in r.err
    r = tshoot("trace", "--pod", "default/nope", "--kubeconfig", str(kubeapi_cluster.kubeconfig), "--timeout", "0.5")
    assert r.code != 0 and r.err.count("\n") == 1 and "nope" in r.err


def test_without_clang_one_line_naming_the_packages(tmp_path):
    """First use compiles the program: without clang (and nothing cached) one line says what to install."""
    need_root()
    env = {**os.environ, "PATH": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "tshoot.main", "trace", "host", "10.0.0.1", "--timeout", "1"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "clang is missing: apt-get install clang libbpf-dev" in proc.stderr
